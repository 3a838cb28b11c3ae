"""Dask arrays: the family mapped over the blocks with ``map_blocks``, lazily.

The caller (:mod:`xpit._family`) hands in the function to run on each block,
so every block is computed by its own library through the same public code
path as an eager call (NumPy blocks by the compiled ufuncs, CuPy blocks on
their GPU), and ``.compute()`` equals the NumPy result bit for bit. Dask is
imported only here, and only when a Dask array arrives; this module imports
nothing else of xpit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def map_elementwise(block_fn: Callable[[Any], Any], a: Any, dtype: Any) -> Any:
    """``block_fn`` over the blocks of one Dask array, as a lazy Dask array of ``dtype``."""
    import dask.array as da

    return da.map_blocks(block_fn, a, dtype=dtype,
                         meta=da.utils.meta_from_array(a, dtype=dtype))


def map_binary(block_fn: Callable[..., Any], a: Any, b: Any, dtype: Any,
               reduction: str | None, extras: Sequence[Any] = ()) -> Any:
    """An elementwise two-array ``block_fn`` over aligned blocks, then Dask's reduction.

    ``extras`` (a loss's weights) are broadcast to ``a``'s shape and blocks first and
    passed to ``block_fn`` after ``a`` and ``b``."""
    import dask.array as da

    b = b.rechunk(a.chunks)  # blocks pair up one to one
    extras = [da.broadcast_to(da.asarray(e), a.shape).rechunk(a.chunks) for e in extras]
    result = da.map_blocks(block_fn, a, b, *extras, dtype=dtype,
                           meta=da.utils.meta_from_array(a, dtype=dtype))
    if reduction == "sum":
        return result.sum()
    if reduction == "mean":
        return result.sum() / result.size  # an empty mean is NaN, as in the eager call
    return result
