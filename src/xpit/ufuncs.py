"""The logistic family as NumPy ufuncs, compiled from the same C header as the GPU kernels.

Real :class:`numpy.ufunc` objects, like those of :mod:`scipy.special`: ``out=``,
``where=``, broadcasting, ``casting=`` and the ufunc methods come with them. float16,
float32 and float64 keep their dtype and are computed in float64, rounded once; the
loops release the GIL and use the best instruction set of the CPU (AVX-512, AVX2+FMA
or baseline x86-64), every one giving the same bits.

>>> import numpy as np
>>> from xpit.ufuncs import sigmoid, logit
>>> x = np.array([-2.0, 0.0, 2.0], dtype=np.float32)
>>> sigmoid(x)
array([0.11920292, 0.5       , 0.8807971 ], dtype=float32)
>>> logit(sigmoid(x))
array([-2.,  0.,  2.], dtype=float32)

They take NumPy input only; :mod:`xpit`'s functions take any array-API input.
Importing this module needs the compiled extension ``xpit.kernels._ufuncs``.
"""

from __future__ import annotations

try:
    from xpit.kernels._ufuncs import (
        bce_with_logits,
        log1mexp,
        log_sigmoid,
        logdiffexp,
        logexpm1,
        logit,
        logitexp,
        sigmoid,
        sigmoid_backward,
        sigmoid_grad,
        softplus,
    )
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "xpit.ufuncs needs the compiled extension xpit.kernels._ufuncs, which could not be "
        f"imported ({exc}). Build it from a source checkout with a C compiler (gcc, clang or "
        "MSVC) and `pip install -e .`; the rest of xpit works without it."
    ) from exc

__all__ = [
    "bce_with_logits",
    "log1mexp",
    "log_sigmoid",
    "logdiffexp",
    "logexpm1",
    "logit",
    "logitexp",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_grad",
    "softplus",
]

# The ufuncs' docstrings (written in C) hold examples: run them with this module's doctests.
__test__ = {name: globals()[name].__doc__ for name in __all__}


def __dir__() -> list[str]:
    return list(__all__)
