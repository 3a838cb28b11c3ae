"""The family for one Python float, with the ``math`` module: the small-input fast path.

A NumPy ufunc call on a scalar costs about a microsecond, ten of them more
than a whole ``scipy.special.expit`` call; a Python float needs none. These are
the formulas of :mod:`xpit._kernels`, operation for operation, in double
precision; only ``exp`` and ``log1p`` come from the C library instead of
NumPy, so a result may differ from that of a larger array by an ULP or two,
within the same ULP contract (``tests/test_accuracy.py`` checks both).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Up to this many elements, these beat NumPy's ufuncs (a dozen calls of ~0.4 us each).
TINY = 8


def _exp_neg_abs(x: float) -> tuple[float, float, float]:
    e = math.exp(-abs(x))
    d = 1.0 + e
    return e, d, e - (d - 1.0)


def sigmoid(x: float) -> float:
    e = math.exp(-abs(x))  # _exp_neg_abs inlined: this is the hottest path of all
    d = 1.0 + e
    t = (1.0 if x >= 0 else e) / d
    return t - t * ((e - (d - 1.0)) / d)


def sigmoid_grad(x: float) -> float:
    e, d, r = _exp_neg_abs(x)
    t = (e / d) / d
    return t - t * (2.0 * r / d)


def log_sigmoid(x: float) -> float:
    return (x if x < 0 else 0.0) - math.log1p(math.exp(-abs(x)))


def softplus(x: float) -> float:
    return (x if x > 0 else 0.0) + math.log1p(math.exp(-abs(x)))


def sigmoid_backward(s: float) -> float:
    return s * (1.0 - s)


def map_array(fn: Callable[[float], float], x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``fn`` over a small array, computed in double precision, rounded to ``dtype``."""
    y = np.array([fn(v) for v in x.ravel().tolist()], dtype=dtype)
    return y if x.ndim == 1 else y.reshape(x.shape)


FUNCTIONS = {"sigmoid": sigmoid, "sigmoid_grad": sigmoid_grad, "log_sigmoid": log_sigmoid,
             "softplus": softplus, "sigmoid_backward": sigmoid_backward}
