"""The types of the public signatures: what a call gives back for what it is given.

Read by type checkers only (the public modules import it under ``TYPE_CHECKING``), so it
costs ``import xpit`` nothing. The rule it writes down is the dispatch rule of
:mod:`xpit._dispatch`:

- a NumPy array gives a NumPy array of the result's dtype: float16, float32 and float64
  stay what they are, integers and booleans become float64. (A 0-d array gives a NumPy
  scalar at run time, as NumPy's own ufuncs do; NumPy's type stubs write both as arrays,
  and so does xpit.)
- a Python number, or a NumPy integer or boolean scalar, gives ``numpy.float64``; a NumPy
  floating scalar gives a scalar of its own type;
- an array of any other library (PyTorch, JAX, CuPy, Dask, array-api-strict) gives an
  array of the same type: :data:`ArrayT`, bound to :class:`ArrayAPIArray`;
- a sequence (host data) gives a NumPy array of a floating dtype.

CuPy and other libraries without type information are ``Any`` to a checker, and so is
what comes back for them.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

__all__ = ["ArrayAPIArray", "ArrayT", "FloatT", "HostData", "Real", "Unary"]


class ArrayAPIArray(Protocol):
    """An array of any library, as xpit's signatures need it: something with a shape and a
    dtype (a PyTorch tensor, a JAX or CuPy array, a Dask or array-api-strict array)."""

    @property
    def shape(self) -> object: ...

    @property
    def dtype(self) -> object: ...


ArrayT = TypeVar("ArrayT", bound=ArrayAPIArray)
"""An array of a library other than NumPy: what comes back is of the same type."""

FloatT = TypeVar("FloatT", bound=np.floating[Any])
"""A NumPy floating type, kept by the result (float16, float32, float64)."""

Real = float | np.integer[Any] | np.bool
"""Python numbers (``int`` and ``bool`` included) and NumPy integer and boolean scalars:
computed in float64."""

HostData = npt.ArrayLike
"""Anything NumPy reads as an array (a list, a tuple, a scalar ...): host data."""


class Unary(Protocol):
    """A one-array function of the family (:func:`xpit.sigmoid` and its kind)."""

    __name__: str

    @overload
    def __call__(self, x: Real, /, *, backend: str | None = None) -> np.float64: ...
    @overload
    def __call__(self, x: FloatT, /, *, backend: str | None = None) -> FloatT: ...
    @overload
    def __call__(self, x: npt.NDArray[FloatT], /, *,
                 backend: str | None = None) -> npt.NDArray[FloatT]: ...
    @overload
    def __call__(self, x: npt.NDArray[np.integer[Any] | np.bool], /, *,
                 backend: str | None = None) -> npt.NDArray[np.float64]: ...
    @overload
    def __call__(self, x: ArrayT, /, *, backend: str | None = None) -> ArrayT: ...
    @overload
    def __call__(self, x: HostData, /, *,
                 backend: str | None = None) -> npt.NDArray[np.floating[Any]]: ...
