"""The backend matrix and the test-only knobs.

``target`` runs a test on every array namespace and device available here:

- ``numpy``;
- ``strict`` and ``strict-device1``: array-api-strict on its default device and
  on ``Device("device1")``. It refuses to mix devices, so it catches any array
  created on the wrong device: the stand-in for a GPU in CI;
- ``torch``: PyTorch on the CPU, when installed;
- ``jax``: JAX on its default device (the CPU here), when installed, with float64
  enabled (see below);
- ``cupy``: CuPy, when the probe says a CUDA device is usable (else skipped
  with the probe's reason).

JAX computes in float32 only unless 64-bit mode is on, and its mode is global and
read when an array is made: this file sets ``JAX_ENABLE_X64=1`` before anything
imports JAX (unless the environment already decides), so every test in the session
sees one mode and float64 is tested like on the other targets, without importing
JAX into sessions that do not use it. JAX's default 32-bit mode is tested in
``test_jax.py`` with ``jax.enable_x64(False)``.

``XPIT_TEST_TARGETS=numpy,torch`` restricts the matrix. Tests marked ``gpu``
are skipped with the probe's reason when no CUDA device is usable.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from xpit import _registry

os.environ.setdefault("JAX_ENABLE_X64", "1")  # see the module docstring; jax reads it at import


@dataclass(frozen=True)
class Target:
    """One namespace on one device, and how to move NumPy data there and back."""

    name: str
    xp: Any
    device: Any
    is_host: bool  # NumPy: a Python scalar or list gives the same as an array

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """A NumPy array (or list) as an array of this target, with ``dtype`` a NumPy dtype name."""
        a = np.asarray(a)
        if dtype is not None:
            a = a.astype(dtype)
        if self.name == "torch":  # torch.asarray keeps float16 and the buffer as is
            return self.xp.asarray(np.array(a, order="C", copy=True), device=self.device)
        return self.xp.asarray(a, device=self.device)

    def dtype(self, name: str) -> Any:
        return getattr(self.xp, name)

    def to_numpy(self, a: Any) -> np.ndarray:
        if self.name == "cupy":
            return a.get()
        if self.name == "torch":
            return a.detach().cpu().numpy()
        if self.name.startswith("strict"):
            import array_api_strict

            return np.from_dlpack(a.to_device(array_api_strict.Device("CPU_DEVICE")))
        return np.asarray(a)


def _cupy_reason() -> str:
    return _registry.probe("cupy")[1]


def _make_targets() -> list[Any]:
    params: list[Any] = []
    wanted = os.environ.get("XPIT_TEST_TARGETS", "").replace(" ", "")
    chosen = set(wanted.split(",")) if wanted else None

    def add(name: str, factory: Callable[[], Target] | None, reason: str = "") -> None:
        if chosen is not None and name not in chosen:
            return
        marks = [] if factory is not None else [pytest.mark.skip(reason=reason)]
        params.append(pytest.param(factory, id=name, marks=marks))

    add("numpy", lambda: Target("numpy", np, "cpu", True))
    if importlib.util.find_spec("array_api_strict"):
        def strict(device_name: str | None) -> Target:
            import array_api_strict as s

            device = s.Device(device_name) if device_name else s.Device()
            return Target("strict" if device_name is None else f"strict-{device_name}", s,
                          device, False)

        add("strict", lambda: strict(None))
        add("strict-device1", lambda: strict("device1"))
    else:
        add("strict", None, "array-api-strict is not installed")
    if importlib.util.find_spec("torch"):
        def torch_target() -> Target:
            import array_api_compat.torch as xp
            import torch

            return Target("torch", xp, torch.device("cpu"), False)

        add("torch", torch_target)
    else:
        add("torch", None, "PyTorch is not installed")
    if importlib.util.find_spec("jax"):
        def jax_target() -> Target:
            import jax
            import jax.numpy as xp

            if not jax.config.jax_enable_x64:
                pytest.skip("JAX_ENABLE_X64 is off in the environment; the matrix needs float64")
            return Target("jax", xp, jax.devices()[0], False)

        add("jax", jax_target)
    else:
        add("jax", None, "JAX is not installed")
    if _registry.probe("cupy")[0]:
        def cupy_target() -> Target:
            import array_api_compat.cupy as xp
            import cupy

            return Target("cupy", xp, cupy.cuda.Device(0), False)

        add("cupy", cupy_target)
    else:
        add("cupy", None, f"no usable CUDA device: {_cupy_reason()}")
    return params


@pytest.fixture(params=_make_targets())
def target(request: pytest.FixtureRequest) -> Target:
    """Every available namespace and device (see the module docstring)."""
    return request.param()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    usable, reason = _registry.probe("cupy")
    if usable:
        return
    skip = pytest.mark.skip(reason=f"gpu test: no usable CUDA device: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
