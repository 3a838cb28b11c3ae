"""The host backend: NumPy arrays are computed by NumPy itself, on the CPU.

NumPy 2 is an array-API namespace on its own, so kernels receive ``numpy``
directly; that skips array-api-compat's wrapper on the common path.

This module also runs NumPy's fast path: the compiled ufuncs of
:mod:`xpit.ufuncs` (the formulas of ``kernels/family.h``, one pass over
memory), on cache-sized chunks over a pool of threads for large arrays (the
ufuncs release the GIL). Where the extension was not built, NumPy data is
computed by the array-API reference kernels instead, chunk by chunk, after one
:class:`xpit.BackendFallbackWarning`.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

import numpy as np

from xpit._chunks import chunk_slices, cpu_chunk_length
from xpit._config import BackendFallbackWarning
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


# --- the compiled kernels ----------------------------------------------------------------------

@functools.cache
def compiled() -> tuple[ModuleType | None, str]:
    """The compiled ufunc module and a line saying which CPU path it runs, or (None, why not)."""
    try:
        from xpit.kernels import _ufuncs
    except ImportError as exc:
        return None, (f"not available ({exc!r}); NumPy arrays are computed by the array-API "
                      "reference kernels (slower); rebuild xpit with a C compiler")
    return _ufuncs, f"compiled ufuncs, CPU path {_ufuncs.cpu_path}"


_warned = False


def _reference_chunk(name: str) -> Callable[[np.ndarray, np.ndarray], None]:
    """``out[...] = name(x)`` by the array-API reference, warning once per process."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"xpit: the compiled kernels are {compiled()[1]}", BackendFallbackWarning,
                      stacklevel=5)
    from xpit._dtypes import float_dtypes
    from xpit.kernels import reference

    kernel = getattr(reference, name)

    def run(x: np.ndarray, out: np.ndarray) -> None:
        work = float_dtypes(name, "x", np, out.dtype, "cpu").work
        with np.errstate(all="ignore"):  # underflow to subnormals, logit outside [0, 1]
            out[...] = kernel(np, x.astype(work))

    return run


def chunk_kernel(name: str) -> Callable[..., None]:
    """``kernel(*inputs, out)`` writing ``name(*inputs)`` into ``out`` (any layout, out in the
    result dtype). ``sigmoid_backward`` with one input is its local derivative (grad 1).
    A kernel of two results (``sigmoid_with_grad``, compiled only) takes ``(x, out1, out2)``."""
    module = compiled()[0]
    if module is None:
        return _reference_chunk(name)
    ufunc = getattr(module, name)
    if ufunc.nout == 2:
        return lambda x, out1, out2: ufunc(x, out=(out1, out2))
    if ufunc.nin > 1:  # sigmoid_backward(s) is sigmoid_backward(s, 1), the same bits
        def several(x: np.ndarray, *rest: Any) -> None:  # the other inputs, then out
            *others, out = rest
            ufunc(x, *(others or [1.0]), out=out, dtype=out.dtype)

        return several
    return lambda x, out: ufunc(x, out=out, dtype=out.dtype)


# --- the executor ------------------------------------------------------------------------------

_pool_state: dict[str, Any] = {"executor": None, "size": 0}
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child (a DataLoader worker ...) the parent's pool threads do not exist,
    and a lock held by one of them never opens: start afresh."""
    global _pool_lock
    _pool_state.update(executor=None, size=0)
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pool)


def _pool(threads: int) -> Any:
    """xpit's one pool of helper threads (at least ``threads``), made on first need and kept.

    Every call and every batch shares it, so xpit never runs more helper threads than
    the largest ``workers`` asked for; asking for more replaces it with a larger one.
    """
    from concurrent.futures import ThreadPoolExecutor  # not at import: it costs 4 ms

    with _pool_lock:
        if _pool_state["size"] < threads:
            previous = _pool_state["executor"]
            _pool_state.update(executor=ThreadPoolExecutor(
                threads, thread_name_prefix="xpit-worker"), size=threads)
            if previous is not None:
                previous.shutdown(wait=False)  # its running tasks finish; its threads end
        return _pool_state["executor"]


def _flat_views(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...] | None:
    """Flat views of all arrays in the same element order, or None if their layouts differ."""
    order: Literal["C", "F"] | None
    order = ("C" if all(a.flags.c_contiguous for a in arrays) else
             "F" if all(a.flags.f_contiguous for a in arrays) else None)
    return None if order is None else tuple(a.reshape(-1, order=order) for a in arrays)


def _chunks(arrays: tuple[np.ndarray, ...], length: int
            ) -> tuple[list[slice], Callable[[slice], tuple[np.ndarray, ...]]]:
    """Slices, and how to cut all arrays (of one shape) by them: flat views when the layouts
    agree, else blocks of whole rows along the leading axis."""
    views = _flat_views(arrays)
    size, shape = arrays[0].size, arrays[0].shape
    if views is not None:
        return chunk_slices(size, length), lambda sl: tuple(v[sl] for v in views)
    row = size // shape[0]
    return (chunk_slices(shape[0], max(1, length // row)),
            lambda sl: tuple(a[sl] for a in arrays))


def _in_raw_memory(name: str, arrays: tuple[np.ndarray, ...], length: int, workers: int) -> bool:
    """Run the chunks in the extension's own threads (``_ufuncs._contiguous``: a chunk reaches
    a thread in microseconds, where Python's pool takes tens) when every array is aligned,
    native, contiguous memory of one dtype, shape and layout (what the entry asks of its
    callers) and the extension has threads here; False (nothing done) otherwise."""
    module, dtype, shape = compiled()[0], arrays[0].dtype, arrays[0].shape
    if (module is None or (workers > 1 and not module._threads) or dtype.char not in "efd"
            or not dtype.isnative or not arrays[-1].flags.writeable
            or any(a.dtype != dtype or a.shape != shape or not a.flags.aligned for a in arrays)
            or _flat_views(arrays) is None):
        return False
    ufunc = getattr(module, name)
    if ufunc.nin + ufunc.nout != len(arrays):  # sigmoid_backward(s) without its gradient
        return False
    module._contiguous(name, dtype.char, arrays[0].size, length, workers, 0,
                       *[a.__array_interface__["data"][0] for a in arrays])
    return True


def compute(name: str, x: np.ndarray, out: np.ndarray, *, others: tuple[np.ndarray, ...] = (),
            second_out: np.ndarray | None = None, chunk_size: int | None = None,
            workers: int = 1, advance: Callable[[int], object] | None = None) -> None:
    """Write ``name(x, *others)`` into ``out``, in chunks, on ``workers`` threads.

    The arrays have one shape. ``advance(n)`` is called after each chunk with its number
    of elements. ``out`` may be an input itself; it must not overlap one otherwise.
    ``second_out`` takes the second result of a kernel that has two.
    """
    if x.size == 0:
        return
    kernel = chunk_kernel(name)
    arrays = (x, *others, out) + (() if second_out is None else (second_out,))
    itemsize = max(a.itemsize for a in arrays)
    length = cpu_chunk_length(x.size, itemsize, chunk_size, workers)
    if x.size <= length and advance is None:  # one chunk, here and now, without threads
        kernel(*arrays)
        return
    if advance is None and _in_raw_memory(name, arrays, length, workers):
        return
    slices, cut = _chunks(arrays, length)

    def run(sl: slice) -> None:
        parts = cut(sl)
        kernel(*parts)
        if advance is not None:
            advance(parts[0].size)

    # Threads take the next chunk from a shared counter (atomic under the GIL),
    # so fast and slow threads balance; the calling thread works too.
    counter, stop = itertools.count(), threading.Event()

    def worker() -> None:
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
