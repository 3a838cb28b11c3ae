"""What a type checker sees come back from xpit's public functions: checked by mypy, not run.

``mypy`` (configured in pyproject.toml, run by ci/test) checks each ``assert_type``: NumPy
in gives NumPy out with the result's dtype, Python and NumPy scalars give NumPy scalars,
and an array of another library comes back as the same type. Importing this file runs
nothing (pytest's doctest collection imports it); the functions are never called.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import xpit

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type

if TYPE_CHECKING:
    import dask.array as da
    import jax
    import torch
    from numpy.typing import NDArray


def numpy_arrays(f64: NDArray[np.float64], f32: NDArray[np.float32], f16: NDArray[np.float16],
                 i64: NDArray[np.int64], b: NDArray[np.bool], unknown: np.ndarray) -> None:
    for f in (xpit.sigmoid, xpit.sigmoid_grad, xpit.log_sigmoid, xpit.softplus, xpit.logit,
              xpit.log1mexp, xpit.logexpm1, xpit.logitexp):
        assert_type(f(f64), NDArray[np.float64])
        assert_type(f(f32), NDArray[np.float32])  # float32 stays float32
        assert_type(f(f16), NDArray[np.float16])
        assert_type(f(i64), NDArray[np.float64])  # integers and booleans become float64
        assert_type(f(b), NDArray[np.float64])
        assert_type(f(f64, backend="cupy"), NDArray[np.float64])  # host data comes back
        _: np.ndarray = f(unknown)  # an array of unknown dtype: still an array
    assert_type(xpit.sigmoid_backward(f32), NDArray[np.float32])
    assert_type(xpit.sigmoid_backward(f32, f32), NDArray[np.float32])
    assert_type(xpit.sigmoid_backward(f32, f64), NDArray[np.floating[Any]])
    assert_type(xpit.logdiffexp(f64, f64), NDArray[np.float64])
    assert_type(xpit.logdiffexp(f32, 0.5), NDArray[np.floating[Any]])
    assert_type(xpit.logdiffexp(0.0, f32), NDArray[np.floating[Any]])
    # The loss: a NumPy scalar when reduced, an array with reduction="none".
    assert_type(xpit.binary_cross_entropy_with_logits(f64, i64), np.floating[Any])
    assert_type(xpit.binary_cross_entropy_with_logits(f64, f64, reduction="sum"),
                np.floating[Any])
    assert_type(xpit.binary_cross_entropy_with_logits(f32, f32, reduction="none",
                                                      pos_weight=f32),
                NDArray[np.floating[Any]])
    # The batch functions: as the one-shot ones, or out= itself.
    assert_type(xpit.batch_sigmoid(f32, chunk_size=1024), NDArray[np.float32])
    assert_type(xpit.batch.apply("logit", i64), NDArray[np.float64])
    assert_type(xpit.batch.apply(xpit.softplus, f64, out=f64), NDArray[np.float64])
    assert_type(xpit.batch.apply_file("sigmoid", "in.npy", Path("out.npy")), Path)


def scalars(f: float, i: int, b: bool, n32: np.float32, n64: np.float64, ni: np.int8) -> None:
    assert_type(xpit.sigmoid(f), np.float64)  # xpit.sigmoid(-700.0) is np.float64(9.86e-305)
    assert_type(xpit.sigmoid(i), np.float64)
    assert_type(xpit.sigmoid(b), np.float64)
    assert_type(xpit.sigmoid(n64), np.float64)
    assert_type(xpit.sigmoid(n32), np.float32)  # a NumPy floating scalar keeps its type
    assert_type(xpit.softplus(ni), np.float64)
    assert_type(xpit.logdiffexp(f, i), np.float64)
    assert_type(xpit.logdiffexp(n32, n32), np.float32)
    assert_type(xpit.logdiffexp(n32, f), np.floating[Any])
    assert_type(xpit.sigmoid_backward(0.25), np.float64)
    assert_type(xpit.binary_cross_entropy_with_logits(f, 1, reduction="none"), np.float64)
    assert_type(xpit.batch.apply("sigmoid", f), np.float64)


def host_data(values: list[float], rows: list[list[int]]) -> None:
    assert_type(xpit.sigmoid(values), NDArray[np.floating[Any]])
    assert_type(xpit.logit(rows), NDArray[np.floating[Any]])
    assert_type(xpit.logdiffexp(values, values), NDArray[np.floating[Any]])
    assert_type(xpit.binary_cross_entropy_with_logits(values, values, reduction="none"),
                NDArray[np.floating[Any]])
    assert_type(xpit.binary_cross_entropy_with_logits(values, values), np.floating[Any])


def other_libraries(t: torch.Tensor, j: jax.Array, d: da.Array, cupy_array: Any) -> None:
    # The input's own library computes it, and the result is of the input's type.
    assert_type(xpit.sigmoid(t), torch.Tensor)
    assert_type(xpit.logit(j), jax.Array)
    assert_type(xpit.softplus(d), da.Array)
    assert_type(xpit.sigmoid_backward(t, t), torch.Tensor)
    assert_type(xpit.logdiffexp(j, 0.0), jax.Array)
    assert_type(xpit.binary_cross_entropy_with_logits(t, t, pos_weight=t), torch.Tensor)
    assert_type(xpit.binary_cross_entropy_with_logits(j, j, reduction="none"), jax.Array)
    assert_type(xpit.batch_sigmoid(t), torch.Tensor)
    assert_type(xpit.batch.apply("sigmoid", d, chunk_size=1 << 20), da.Array)
    # CuPy ships no types: its arrays are Any to a checker, and so is what comes back.
    assert_type(xpit.sigmoid(cupy_array), Any)


def rejected(f64: NDArray[np.float64]) -> None:
    # Calls a checker must refuse (each ignore is used, or strict mypy reports it unused).
    xpit.sigmoid(f64, backend=1)  # type: ignore[call-overload]
    xpit.sigmoid(f64, f64)  # type: ignore[call-overload]
    xpit.sigmoid(x=f64)  # type: ignore[call-overload]
