"""The host backend: NumPy arrays are computed by NumPy itself, on the CPU.

NumPy 2 is an array-API namespace on its own, so kernels receive ``numpy``
directly; that skips array-api-compat's wrapper on the common path.

This module also holds NumPy's fast path: the same formulas as
:mod:`xpit._kernels`, operation for operation, but executed in place with
``out=`` on cache-sized chunks, in preallocated per-thread scratch buffers,
on a pool of threads (NumPy's ufuncs release the GIL). Because every
floating-point operation is the same, the results are the reference's bit for
bit (``tests/test_batch.py`` checks that); the reference's ``where`` branches are
picked with ``maximum``/``minimum``, which select the same values without the
cost of a masked operation. Two exceptions, held to the ULP contract instead:
float32 ``sigmoid`` and ``sigmoid_grad`` have kernels of their own (below), and
arrays of a few elements go through :mod:`xpit._scalar`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from xpit import _scalar
from xpit._chunks import CPU_CHUNK_BYTES, chunk_length, chunk_slices
from xpit._registry import Backend


def _namespace(x: object) -> object:
    return np


def _probe() -> tuple[bool, str]:
    return True, f"NumPy {np.__version__} on the CPU"


BACKEND = Backend(
    name="numpy",
    array_types=("numpy.ndarray", "numpy.generic"),
    namespace=_namespace,
    probe=_probe,
    to_device=np.asarray,
    to_host=np.asarray,
    version=lambda: np.__version__,
    devices=lambda: ["cpu"],
)


# --- the fast kernels: (x, out, s) with x, out 1-D contiguous in the working dtype ------------
# Each writes ``out`` only in its last operation, whose operands are scratch buffers, so
# ``out`` may be ``x`` itself. ``s`` holds scratch rows ``s.e, s.d, s.r, s.t`` of x's length.

def _exp_neg_abs(x: np.ndarray, s: _Rows) -> None:
    np.copysign(x, -1.0, out=s.e)  # -|x| in one pass
    np.exp(s.e, out=s.e)  # e = exp(-|x|)
    np.add(s.e, 1.0, out=s.d)  # d = 1 + e, rounded
    np.subtract(s.d, 1.0, out=s.r)
    np.subtract(s.e, s.r, out=s.r)  # r = e - (d - 1): the exact rounding error of d


def _sigmoid(x: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    _exp_neg_abs(x, s)
    _sigmoid_from_exp(x, out, s)


def _sigmoid_from_exp(x: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    """The sigmoid once ``s.e``, ``s.d`` and ``s.r`` hold e, 1 + e and its rounding error."""
    np.greater_equal(x, 0.0, out=s.t)
    np.maximum(s.t, s.e, out=s.t)  # where(x >= 0, 1, e), since e <= 1; NaN stays NaN
    np.divide(s.t, s.d, out=s.t)
    np.divide(s.r, s.d, out=s.r)
    np.multiply(s.t, s.r, out=s.r)
    np.subtract(s.t, s.r, out=out)


def _sigmoid_grad(x: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    _exp_neg_abs(x, s)
    _sigmoid_grad_from_exp(out, s)


def _sigmoid_grad_from_exp(out: np.ndarray, s: _Rows) -> None:
    """The derivative once ``s.e``, ``s.d`` and ``s.r`` hold e, 1 + e and its rounding error."""
    np.divide(s.e, s.d, out=s.t)
    np.divide(s.t, s.d, out=s.t)
    np.multiply(s.r, 2.0, out=s.r)
    np.divide(s.r, s.d, out=s.r)
    np.multiply(s.t, s.r, out=s.r)
    np.subtract(s.t, s.r, out=out)


def _log1p_exp_neg_abs(x: np.ndarray, s: _Rows) -> None:
    np.copysign(x, -1.0, out=s.e)
    np.exp(s.e, out=s.e)
    np.log1p(s.e, out=s.e)


def _log_sigmoid(x: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    _log1p_exp_neg_abs(x, s)
    np.minimum(x, 0.0, out=s.t)  # where(x < 0, x, 0), up to the sign of a zero that is
    np.subtract(s.t, s.e, out=out)  # then subtracted from a nonzero number


def _softplus(x: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    _log1p_exp_neg_abs(x, s)
    np.maximum(x, 0.0, out=s.t)
    np.add(s.t, s.e, out=out)


def _logit(p: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    np.multiply(p, 2.0, out=s.t)
    np.subtract(s.t, 1.0, out=s.t)
    np.arctanh(s.t, out=s.t)
    np.multiply(s.t, 2.0, out=s.t)  # central = 2 atanh(2p - 1)
    np.log(p, out=s.e)
    np.negative(p, out=s.d)
    np.log1p(s.d, out=s.d)
    np.subtract(s.e, s.d, out=s.e)  # low = log(p) - log1p(-p)
    mask = np.greater_equal(p, 0.25, out=s.mask)
    np.copyto(out, s.e)
    np.copyto(out, s.t, where=mask)


def _sigmoid_backward(x: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    np.subtract(1.0, x, out=s.t)
    np.multiply(x, s.t, out=out)


FAST_KERNELS: dict[str, Callable[[np.ndarray, np.ndarray, Any], None]] = {
    "sigmoid": _sigmoid,
    "sigmoid_grad": _sigmoid_grad,
    "log_sigmoid": _log_sigmoid,
    "softplus": _softplus,
    "logit": _logit,
    "sigmoid_backward": _sigmoid_backward,
}


# float32 input: the exponential in float64, everything else in float32. That halves
# the cost of computing all of it in float64 (the reference's way) and stays within
# 2 ULP, where NumPy's own float32 exp (about 2.5 ULP on AVX-512) would take the
# result past the 3 ULP contract (3.2 ULP on a 16-million-point sweep). Not the
# reference's bits, so the tests hold these to the contract instead.

def _exp_neg_abs_f32(x: np.ndarray, s: _Rows) -> None:
    np.copysign(x, -1.0, out=s.t)
    wide = _scratch.wide(x.size)
    np.exp(s.t, out=wide, dtype=np.float64)
    np.copyto(s.e, wide, casting="same_kind")  # e = exp(-|x|), correctly rounded to float32
    np.add(s.e, 1.0, out=s.d)
    np.subtract(s.d, 1.0, out=s.r)
    np.subtract(s.e, s.r, out=s.r)


def _sigmoid_f32(x: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    _exp_neg_abs_f32(x, s)
    _sigmoid_from_exp(x, out, s)


def _sigmoid_grad_f32(x: np.ndarray, out: np.ndarray, s: _Rows) -> None:
    _exp_neg_abs_f32(x, s)
    _sigmoid_grad_from_exp(out, s)


FLOAT32_KERNELS = {"sigmoid": _sigmoid_f32, "sigmoid_grad": _sigmoid_grad_f32}


# --- scratch buffers ---------------------------------------------------------------------------

# Scratch rows larger than this are not kept between calls (a huge chunk_size
# must not leave gigabytes behind in every pool thread).
_KEEP_BYTES = 4 << 20
# The default chunk shrinks on machines with many cores so that the six scratch
# rows of all threads together stay within this: the extra memory of a call.
SCRATCH_BUDGET = 12 << 20


class _Rows:
    """Scratch rows of one length: inputs cast in, outputs cast out, four temporaries, a mask."""

    def __init__(self, block: np.ndarray, mask: np.ndarray, n: int) -> None:
        self.x_in, self.x_out, self.e, self.d, self.r, self.t = (row[:n] for row in block)
        self.mask = mask[:n]


class _Scratch(threading.local):
    def __init__(self) -> None:
        self.blocks: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}
        self.last: dict[np.dtype, _Rows] = {}  # the last rows cut, reused for the same n

    def rows(self, n: int, dtype: np.dtype) -> _Rows:
        last = self.last.get(dtype)
        if last is not None and last.e.size == n:
            return last
        cached = self.blocks.get(dtype)
        if cached is None or cached[0].shape[1] < n:
            cached = (np.empty((6, n), dtype), np.empty(n, dtype=bool))
            if n * dtype.itemsize > _KEEP_BYTES:
                return _Rows(*cached, n)
            self.blocks[dtype] = cached
        rows = self.last[dtype] = _Rows(*cached, n)
        return rows

    def wide(self, n: int) -> np.ndarray:
        """A float64 row of ``n`` elements (for the float32 kernels' exponential)."""
        row = getattr(self, "wide_row", None)
        if row is None or row.size < n:
            row = np.empty(n)
            if n * 8 > _KEEP_BYTES:
                return row
            self.wide_row = row
        return row[:n]


_scratch = _Scratch()


def _run_chunk(kernel: Callable[..., None], x: np.ndarray, out: np.ndarray,
               work: np.dtype) -> None:
    """``out[...] = kernel(x)`` for one chunk (any layout), through the working dtype."""
    n = x.size
    s = _scratch.rows(n, work)
    direct_in = x.ndim == 1 and x.dtype == work and x.flags.c_contiguous
    direct_out = out.ndim == 1 and out.dtype == work and out.flags.c_contiguous
    xw = x if direct_in else s.x_in
    ow = out if direct_out else s.x_out
    if not direct_in:
        np.copyto(xw.reshape(x.shape), x, casting="unsafe")  # the reference's astype
    kernel(xw, ow, s)
    if not direct_out:
        np.copyto(out, ow.reshape(out.shape), casting="unsafe")


# --- the executor ------------------------------------------------------------------------------

_pools: dict[int, Any] = {}
_pools_lock = threading.Lock()


def _pool(threads: int) -> Any:
    """A ThreadPoolExecutor of ``threads`` threads, made on first need and kept."""
    from concurrent.futures import ThreadPoolExecutor  # not at import: it costs 4 ms

    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="xpit-worker")
        return _pools[threads]


def _flat_views(x: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Flat views of both arrays in the same element order, or None if their layouts differ."""
    order = ("C" if x.flags.c_contiguous and out.flags.c_contiguous else
             "F" if x.flags.f_contiguous and out.flags.f_contiguous else None)
    return None if order is None else (x.reshape(-1, order=order), out.reshape(-1, order=order))


def _chunks(x: np.ndarray, out: np.ndarray, length: int
            ) -> tuple[list[slice], Callable[[slice], tuple[np.ndarray, np.ndarray]]]:
    """Slices, and how to cut both arrays by them: flat views when the layouts agree,
    else blocks of whole rows along the leading axis (copied in and out of scratch)."""
    views = _flat_views(x, out)
    if views is not None:
        xf, of = views
        return chunk_slices(x.size, length), lambda sl: (xf[sl], of[sl])
    row = x.size // x.shape[0]
    return chunk_slices(x.shape[0], max(1, length // row)), lambda sl: (x[sl], out[sl])


def compute(name: str, x: np.ndarray, out: np.ndarray, work: np.dtype, *,
            chunk_size: int | None = None, workers: int = 1,
            advance: Callable[[int], object] | None = None) -> None:
    """Write ``name(x)`` into ``out`` (same shape), in chunks, on ``workers`` threads.

    ``advance(n)`` is called after each chunk with its number of elements.
    ``out`` may be ``x`` itself; it must not overlap ``x`` otherwise.
    """
    if x.size == 0:
        return
    if x.size <= _scalar.TINY and work == np.float64 and name in _scalar.FUNCTIONS:
        # A few elements: Python's math module, in double precision like the reference.
        out[...] = _scalar.map_array(_scalar.FUNCTIONS[name], x, np.dtype(np.float64))
        return
    kernel = FAST_KERNELS[name]
    work = np.dtype(work)
    length = chunk_length(work.itemsize, chunk_size, target_bytes=CPU_CHUNK_BYTES)
    if chunk_size is None:  # keep every thread's scratch together within the budget
        length = min(length, max(4096, SCRATCH_BUDGET // (workers * 6 * work.itemsize)))
    if x.dtype == np.float32 and out.dtype == np.float32 and name in FLOAT32_KERNELS:
        kernel, work = FLOAT32_KERNELS[name], np.dtype(np.float32)  # chunks sized as float64
    if x.size <= length and advance is None:  # one chunk, here and now, without threads
        with np.errstate(all="ignore"):
            _run_chunk(kernel, *(_flat_views(x, out) or (x, out)), work)
        return
    slices, cut = _chunks(x, out, length)

    def run(sl: slice) -> None:
        xc, oc = cut(sl)
        _run_chunk(kernel, xc, oc, work)
        if advance is not None:
            advance(xc.size)

    # Threads take the next chunk from a shared counter (atomic under the GIL),
    # so fast and slow threads balance; the calling thread works too.
    counter, stop = itertools.count(), threading.Event()

    def worker() -> None:
        # Subnormal results raise the underflow flag and logit outside [0, 1] the
        # invalid one; neither is an error here. np.errstate is per thread.
        with np.errstate(all="ignore"):
            while not stop.is_set() and (i := next(counter)) < len(slices):
                run(slices[i])

    threads = min(workers, len(slices))
    if threads <= 1:
        worker()
        return

    futures = [_pool(threads - 1).submit(worker) for _ in range(threads - 1)]
    try:
        worker()
    finally:
        stop.set()  # on an error or interrupt here, the others stop after their chunk
        for future in futures:
            future.result()
