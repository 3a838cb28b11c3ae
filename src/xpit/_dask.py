"""Dask arrays: the family mapped over the blocks with ``map_blocks``, lazily.

Each block is computed by its own library (NumPy blocks by NumPy's fast path,
CuPy blocks on their GPU), through the same public code path as an eager call,
so ``.compute()`` equals the NumPy result bit for bit. Dask is imported only
here, and only when a Dask array arrives.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np


def _block_backend(block: Any) -> str | None:
    # A NumPy block belongs to the Dask array, not to the host-data selection:
    # it is computed by NumPy even where XPIT_BACKEND=cupy.
    return "numpy" if isinstance(block, np.ndarray) else None


def _unary_block(func: str, block: Any) -> Any:
    from xpit._family import elementwise

    return elementwise(func, block, _block_backend(block))


def _binary_block(func: str, options: dict, a: Any, b: Any) -> Any:
    import xpit

    return getattr(xpit, func)(a, b, backend=_block_backend(a), **options)


def map_elementwise(func: str, a: Any, dtype: Any) -> Any:
    """``func`` over the blocks of one Dask array, as a lazy Dask array of ``dtype``."""
    import dask.array as da

    return da.map_blocks(partial(_unary_block, func), a, dtype=dtype,
                         meta=da.utils.meta_from_array(a, dtype=dtype))


def map_binary(func: str, a: Any, b: Any, dtype: Any, options: dict) -> Any:
    """A two-array function over aligned blocks; a reduction is then done by Dask."""
    import dask.array as da

    b = b.rechunk(a.chunks)  # blocks pair up one to one
    reduction = options.get("reduction")
    blockwise = dict(options, reduction="none") if reduction else options
    result = da.map_blocks(partial(_binary_block, func, blockwise), a, b, dtype=dtype,
                           meta=da.utils.meta_from_array(a, dtype=dtype))
    if reduction == "sum":
        return result.sum()
    if reduction == "mean":
        return result.sum() / result.size  # an empty mean is NaN, as in the eager call
    return result
