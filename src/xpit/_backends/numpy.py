"""The host backend: NumPy arrays are computed by NumPy itself, on the CPU.

NumPy 2 is an array-API namespace on its own, so the kernels receive ``numpy``
directly; that skips array-api-compat's wrapper (a quarter of a second to
import) on the common path.
"""

from __future__ import annotations

import numpy as np

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
