"""How an array is computed once its route is known (see :mod:`xpit._dispatch`).

NumPy data runs the compiled ufuncs (:mod:`xpit._backends.numpy`); a CuPy array,
or host data sent to the GPU, one fused kernel per call (:mod:`xpit._backends.cupy`);
an array of any other library the array-API reference in its own namespace
(:mod:`xpit.kernels.reference`). This module holds the last two, one-shot and in
chunks; the public functions (:mod:`xpit._family`) validate and route, then call it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from xpit._backends import cupy as cupy_backend
from xpit._chunks import GPU_CHUNK_BYTES, chunk_length, chunk_slices
from xpit._dispatch import Route
from xpit.kernels import reference

Array = Any


def run_reference(route: Route, kernel: Callable[..., Array], arrays: list[Array],
                  work: Any, out_dtype: Any, **options: Any) -> Array:
    """Run an array-API kernel: on the arrays' own library, or on the backend computing
    host data (moved there and back)."""
    backend, xp = route.backend, route.xp
    # The kernels never overflow, but a result in the subnormal range raises
    # NumPy's underflow flag, and logit outside [0, 1] its invalid flag: neither
    # is an error here, so a caller's np.errstate(all="raise") must not see them.
    with np.errstate(all="ignore"):
        if backend is not None and backend.name != "numpy":
            arrays = [backend.to_device(a) for a in arrays]
            xp = backend.namespace(arrays[0])
        y = kernel(xp, *(xp.astype(a, work, copy=False) for a in arrays), **options)
        y = xp.astype(y, out_dtype, copy=False)
        if backend is not None and backend.name != "numpy":
            y = backend.to_host(y)
    return y


def takes_fused(route: Route, out_dtype: Any) -> bool:
    """Whether the call runs on CuPy's fused kernels: a CuPy array, or host data sent to the
    GPU, with a result dtype they have."""
    return route.name == "cupy" and str(out_dtype) in cupy_backend.FUSED_DTYPES


def fused(route: Route, func: str, arrays: list[Array], out_dtype: Any) -> Array:
    """``func`` of the compiled family on the GPU, in one launch: the arrays (host data is
    moved there first) cast to the result dtype, as the NumPy ufuncs' loops see them."""
    to_device = route.backend.to_device if route.backend is not None else (lambda v: v)
    return cupy_backend.fused(func, *(to_device(a).astype(out_dtype, copy=False)
                                      for a in arrays))


def compute_array(route: Route, func: str, a: Array, work: Any, out_dtype: Any) -> Array:
    """``func(a)`` for an array that NumPy's fast path does not take: one fused kernel on
    CuPy (for a CuPy array, or host data sent to the GPU and back), else the array-API
    kernel in the array's own library. A floating torch tensor runs xpit's PyTorch custom
    operator (:mod:`xpit._backends.torch`), as the public functions do, so the same bits;
    a JAX array xpit's ``jax.custom_jvp`` function (:mod:`xpit._backends.jax`)."""
    if route.name == "torch" and route.backend is None and a.dtype == out_dtype:
        from xpit._backends import torch as torch_backend

        if torch_backend.takes(a):
            return torch_backend.elementwise(func, a)
    if route.name == "jax.numpy" and route.backend is None:  # integers too, cast first
        from xpit._backends import jax as jax_backend

        return jax_backend.elementwise(func, a.astype(out_dtype))
    if takes_fused(route, out_dtype):
        y = fused(route, func, [a], out_dtype)
        return y if route.backend is None else route.backend.to_host(y)
    return run_reference(route, getattr(reference, func), [a], work, out_dtype)


def chunked_reference(func: str, route: Route, a: Any, out: Any, out_dtype: Any, work: Any,
                      chunk_size: int | None, advance: Callable[[int], object] | None) -> Any:
    """The array-API kernel in chunks: host data streamed through another backend, or an
    array of its own library written chunk by chunk into ``out``."""
    backend = route.backend
    if backend is not None:  # host data computed elsewhere: stream it through
        result = out if out is not None and out.flags.c_contiguous else np.empty(a.shape,
                                                                                  out_dtype)
        source = np.ascontiguousarray(a).reshape(-1)
        if backend.name == "cupy":
            cupy_backend.offload(func, source, result.reshape(-1), work, chunk_size, advance)
        else:
            flat = result.reshape(-1)
            length = chunk_length(max(a.itemsize, flat.itemsize), chunk_size,
                                  target_bytes=GPU_CHUNK_BYTES)
            for sl in chunk_slices(source.size, length):
                flat[sl] = compute_array(route, func, source[sl], work, out_dtype)
                if advance is not None:
                    advance(sl.stop - sl.start)
        if out is not None and result is not out:
            np.copyto(out, result)
            result = out
        return result if out is not None else route.finish(result)

    # An array of its own library: whole rows of the leading axis at a time.
    if a.ndim == 0:
        y = compute_array(route, func, a, work, out_dtype)
        if out is None:
            return y
        out[...] = y
        return out
    row = max(1, math.prod(a.shape[1:]))
    itemsize = route.xp.finfo(out_dtype).bits // 8
    length = chunk_length(itemsize, chunk_size, target_bytes=GPU_CHUNK_BYTES)
    parts = []
    for sl in chunk_slices(a.shape[0], max(1, length // row)):
        y = compute_array(route, func, a[sl, ...], work, out_dtype)
        if out is not None:
            try:
                out[sl, ...] = y
            except TypeError as exc:
                raise TypeError(f"xpit.batch.apply: cannot write into out ({exc}); "
                                f"{type(out).__name__} arrays are immutable, leave out=None"
                                ) from None
        else:
            parts.append(y)
        if advance is not None:
            advance(math.prod(y.shape))
    if out is not None:
        return out
    return parts[0] if len(parts) == 1 else route.xp.concat(parts, axis=0)
