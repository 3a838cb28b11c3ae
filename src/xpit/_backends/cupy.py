"""The CuPy backend: CuPy arrays on a CUDA device, and host data sent there on request.

This is the only module that imports CuPy, and only inside functions: importing
xpit never imports CuPy. ``cupy-cuda12x`` imports fine on a machine without a
driver, so "importable" is not "usable": the probe asks for a device and runs a
tiny kernel of ours before saying yes.
"""

from __future__ import annotations

from typing import Any

from xpit._registry import Backend


def _cupy() -> Any:
    import cupy

    return cupy


def _namespace(x: object) -> Any:
    import array_api_compat

    return array_api_compat.array_namespace(x)


def _probe() -> tuple[bool, str]:
    try:
        cupy = _cupy()
    except Exception as exc:
        return False, f"CuPy is not installed or failed to import ({exc!r}); install xpit[gpu]"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            return False, "CuPy found no CUDA device"
        add_one = cupy.ElementwiseKernel("T x", "T y", "y = x + 1", "xpit_probe_add_one")
        got = cupy.asnumpy(add_one(cupy.arange(4, dtype=cupy.float32))).tolist()
        if got != [1.0, 2.0, 3.0, 4.0]:
            return False, f"a test kernel on the GPU returned {got} instead of [1, 2, 3, 4]"
    except Exception as exc:
        return False, f"CuPy is installed but no CUDA device is usable: {exc!r}"
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    return True, f"{count} CUDA device(s), device 0: {name}"


def _to_device(x: Any) -> Any:
    return _cupy().asarray(x)


def _to_host(x: Any) -> Any:
    return _cupy().asnumpy(x)


def _version() -> str | None:
    return _cupy().__version__


def _devices() -> list[str]:
    return [f"cuda:{i}" for i in range(_cupy().cuda.runtime.getDeviceCount())]


BACKEND = Backend(
    name="cupy",
    array_types=("cupy.ndarray",),
    namespace=_namespace,
    probe=_probe,
    to_device=_to_device,
    to_host=_to_host,
    version=_version,
    devices=_devices,
    accelerator=True,
)
