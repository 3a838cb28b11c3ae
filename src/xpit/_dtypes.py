"""Dtype rules: which floating dtype a result has, and which precision computes it.

- float32 and float64 stay what they are; float16 and bfloat16 too.
- Integers and booleans become the namespace's default floating dtype.
- Anything else (complex, strings, objects, extended precision) is a ``TypeError``.

The *working* dtype is what the kernels compute in: float16 and bfloat16 in
float32, float32 in float64 where the namespace has it on that device (so
float32 results are correctly rounded up to a fraction of an ULP), float64 in
float64.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np


class FloatDtypes(NamedTuple):
    """The dtype a result is returned in, and the dtype it is computed in."""

    out: Any
    work: Any


@lru_cache(maxsize=64)
def _namespace_floats(xp: Any, device: Any) -> tuple[Any, bool]:
    """(default floating dtype, whether float64 exists) for a namespace on a device."""
    info = xp.__array_namespace_info__()
    default = info.default_dtypes(device=device)["real floating"]
    has64 = "float64" in info.dtypes(device=device, kind="real floating")
    return default, has64


def has_float64(xp: Any, device: Any) -> bool:
    """Whether the namespace has float64 on this device (not JAX without x64, not MPS)."""
    return _namespace_floats(xp, device)[1]


def _is_half(xp: Any, dtype: Any) -> bool:
    return any(dtype == getattr(xp, name, None) for name in ("float16", "bfloat16"))


_NUMPY_FLOATS = {np.dtype(np.float64): FloatDtypes(np.dtype(np.float64), np.dtype(np.float64)),
                 np.dtype(np.float32): FloatDtypes(np.dtype(np.float32), np.dtype(np.float64))}


def float_dtypes(func: str, arg: str, xp: Any, dtype: Any, device: Any) -> FloatDtypes:
    """Output and working dtypes for argument ``arg`` of ``xpit.func``, or a ``TypeError``."""
    if xp is np and dtype in _NUMPY_FLOATS:  # the common case, without the checks below
        return _NUMPY_FLOATS[dtype]
    if not getattr(dtype, "isnative", True):  # byte-swapped NumPy data: results are native
        dtype = dtype.newbyteorder("=")
    if dtype == xp.float64:
        return FloatDtypes(dtype, dtype)
    if dtype == xp.float32:
        return FloatDtypes(dtype, xp.float64 if has_float64(xp, device) else dtype)
    if _is_half(xp, dtype):
        return FloatDtypes(dtype, xp.float32)
    try:
        integral = xp.isdtype(dtype, ("integral", "bool"))
    except (TypeError, ValueError):  # a dtype the namespace itself does not know
        integral = False
    if integral:
        default = _namespace_floats(xp, device)[0]
        return float_dtypes(func, arg, xp, default, device)
    raise TypeError(f"xpit.{func}: argument {arg!r} has unsupported dtype {dtype}; expected "
                    "float16, bfloat16, float32, float64, an integer or a boolean dtype")
