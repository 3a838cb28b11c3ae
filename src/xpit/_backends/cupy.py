"""The CuPy backend: CuPy arrays on a CUDA device, and host data sent there on request.

This is the only module that imports CuPy, and only inside functions: importing
xpit never imports CuPy. ``cupy-cuda12x`` imports fine on a machine without a
driver, so "importable" is not "usable": the probe asks for a device and runs a
tiny kernel of ours before saying yes.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

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


# --- fused kernels: one launch and one pass over memory per call ------------------------------
# The formulas of xpit._kernels, in double precision whatever the input (float32
# results are then correctly rounded but for a fraction of an ULP); a chain of
# array-API calls would be a dozen launches and a dozen passes. CUDA's exp, log1p,
# log and atanh are within 1-2 ULP in double, so the results stay within 1 ULP of
# the reference; tests/test_gpu.py checks that on a GPU.

_EXP_NEG_ABS = """
    double e = exp(-fabs(v));
    double d = 1.0 + e;
    double r = e - (d - 1.0);
"""
_BODIES = {
    "sigmoid": _EXP_NEG_ABS + """
    double t = (v >= 0.0 ? 1.0 : e) / d;
    y = (T)(t - t * (r / d));""",
    "sigmoid_grad": _EXP_NEG_ABS + """
    double t = (e / d) / d;
    y = (T)(t - t * (2.0 * r / d));""",
    "log_sigmoid": """
    y = (T)((v < 0.0 ? v : 0.0) - log1p(exp(-fabs(v))));""",
    "softplus": """
    y = (T)((v > 0.0 ? v : 0.0) + log1p(exp(-fabs(v))));""",
    "logit": """
    double central = 2.0 * atanh(2.0 * v - 1.0);
    double low = log(v) - log1p(-v);
    y = (T)(v >= 0.25 ? central : low);""",
    "sigmoid_backward": """
    y = (T)(v * (1.0 - v));""",
}
FUSED_DTYPES = ("float32", "float64")


@functools.cache
def fused_kernel(func: str) -> Any:
    """The ``cupy.ElementwiseKernel`` of one function, built on first use and kept."""
    body = "double v = (double)x;" + _BODIES[func]
    return _cupy().ElementwiseKernel("T x", "T y", body, f"xpit_{func}")


def fused(func: str, x: Any) -> Any:
    """``func(x)`` for a float32 or float64 CuPy array, in one kernel launch."""
    return fused_kernel(func)(x)


def offload(func: str, x: Any, out: Any, work: Any, chunk_size: int | None,
            advance: Any = None) -> None:
    """``out[:] = func(x)`` for 1-D C-contiguous NumPy arrays, computed on the current GPU.

    Chunks alternate between two CUDA streams, each with a pinned host buffer
    in and out and a device buffer, in the order of
    :func:`xpit._chunks.pipeline_schedule`: while the host copies chunk ``i``
    into pinned memory and queues its upload, kernel and download, the GPU is
    still moving or computing chunk ``i - 1`` on the other stream. GPU memory
    stays bounded by the chunk size, so ``x`` may be larger than the GPU.
    """
    cupy = _cupy()
    import cupyx

    from xpit import _kernels
    from xpit._chunks import GPU_CHUNK_BYTES, chunk_length, chunk_slices, pipeline_schedule

    kernel = getattr(_kernels, func)
    length = chunk_length(max(x.itemsize, out.itemsize), chunk_size,
                          target_bytes=GPU_CHUNK_BYTES)
    slices = chunk_slices(x.size, length)
    length = min(length, x.size)
    streams = [cupy.cuda.Stream(non_blocking=True) for _ in range(2)]
    pinned_in = [cupyx.empty_pinned(length, x.dtype) for _ in streams]
    pinned_out = [cupyx.empty_pinned(length, out.dtype) for _ in streams]
    device_in = [cupy.empty(length, x.dtype) for _ in streams]
    in_flight: list[Any] = [None] * len(streams)  # results kept alive until drained
    xp = _namespace(device_in[0])
    for step, i, s in pipeline_schedule(len(slices), len(streams)):
        sl = slices[i]
        k = sl.stop - sl.start
        if step == "stage":
            np.copyto(pinned_in[s][:k], x[sl])
            with streams[s]:
                chunk = device_in[s][:k]
                chunk.set(pinned_in[s][:k])
                if func in _BODIES and chunk.dtype == out.dtype and str(out.dtype) in \
                        FUSED_DTYPES:
                    y = fused(func, chunk)
                else:
                    y = xp.astype(kernel(xp, xp.astype(chunk, work, copy=False)), out.dtype,
                                  copy=False)
                y.get(out=pinned_out[s][:k], blocking=False)
                in_flight[s] = y
        else:
            streams[s].synchronize()
            out[sl] = pinned_out[s][:k]
            in_flight[s] = None
            if advance is not None:
                advance(k)
