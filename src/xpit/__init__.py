"""xpit: the logistic (sigmoid) family, numerically careful, on any array-API backend.

An array is computed by its own library on its own device (NumPy, CuPy,
PyTorch, JAX, Dask, array-api-strict) and comes back as the same kind of
array. Host data (NumPy arrays, scalars, sequences) is computed by the selected
backend: NumPy by default, or CuPy on the GPU with ``XPIT_BACKEND=cupy``,
:func:`set_backend`, :func:`use_backend` or ``backend=``, falling back to NumPy
with one warning where no GPU is usable.

>>> import numpy as np, xpit
>>> xpit.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
array([0. , 0.5, 1. ])
"""

from typing import Any

from xpit import _registry, batch
from xpit._backends import cupy as _cupy_backend
from xpit._backends import numpy as _numpy_backend
from xpit._config import (
    BackendFallbackWarning,
    BackendUnavailableError,
    set_backend,
    use_backend,
)
from xpit._dispatch import BackendInfo, get_backend
from xpit._family import (
    binary_cross_entropy_with_logits,
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
from xpit._registry import Backend, register_backend
from xpit.batch import batch_sigmoid

_registry.register_backend(_numpy_backend.BACKEND)
_registry.register_backend(_cupy_backend.BACKEND)

__all__ = [
    "Backend",
    "BackendFallbackWarning",
    "BackendInfo",
    "BackendUnavailableError",
    "__version__",
    "batch",
    "batch_sigmoid",
    "binary_cross_entropy_with_logits",
    "get_backend",
    "log1mexp",
    "log_sigmoid",
    "logdiffexp",
    "logexpm1",
    "logit",
    "logitexp",
    "register_backend",
    "set_backend",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_grad",
    "softplus",
    "ufuncs",
    "use_backend",
]


def __dir__() -> list[str]:
    return __all__


def __getattr__(name: str) -> Any:
    # xpit.ufuncs is imported on first use, as scipy.special is: it needs the compiled
    # extension, which importing xpit never requires.
    if name == "ufuncs":
        import importlib

        return importlib.import_module("xpit.ufuncs")
    # The version comes from the package metadata, read on first use: importing
    # importlib.metadata would add a third to the cost of `import xpit`.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("xpit")
        except PackageNotFoundError:  # a source tree that was never installed
            found = "0+unknown"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module 'xpit' has no attribute {name!r}")
