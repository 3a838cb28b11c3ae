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
    version: str = _cupy().__version__
    return version


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
# The formulas are not written here: every kernel calls a function of the shared C
# header ``xpit/kernels/family.h`` (the one the NumPy ufuncs compile too), which
# builds exp/log1p/log from IEEE operations and writes each multiply-add as fma().
# Compiled by NVRTC with contraction off and IEEE division and square root, the
# GPU returns the bits of the CPU ufuncs ``xpit.ufuncs.*``; tests/test_gpu.py checks
# that on a GPU, tests/test_nvrtc.py checks the PTX anywhere NVRTC loads.

# xpit name -> (function of family.h, number of inputs, whether it has a float version
# ``<name>f``). The one place that maps names: kernels, sources and tests read it.
KERNELS: dict[str, tuple[str, int, bool]] = {
    "sigmoid": ("xpit_sigmoid", 1, True),
    "sigmoid_grad": ("xpit_sigmoid_grad", 1, True),
    "log_sigmoid": ("xpit_log_sigmoid", 1, True),
    "softplus": ("xpit_softplus", 1, True),
    "logit": ("xpit_logit", 1, True),
    "sigmoid_backward": ("xpit_sigmoid_backward", 2, False),  # (s, grad)
    "bce_with_logits": ("xpit_bce", 2, True),  # (logits, targets): the elementwise loss
    "bce_with_logits_pos": ("xpit_bce_pos", 3, True),  # (logits, targets, pos_weight)
    # ... and their derivatives with respect to the logits (the backward passes, grad 1):
    "bce_with_logits_grad": ("xpit_bce_grad", 2, True),
    "bce_with_logits_pos_grad": ("xpit_bce_pos_grad", 3, True),
    # The backward passes g f'(x) of PyTorch's operators, (x, grad) -> grad * f'(x):
    "sigmoid_vjp": ("xpit_sigmoid_vjp", 2, True),
    "log_sigmoid_vjp": ("xpit_log_sigmoid_vjp", 2, True),
    "softplus_vjp": ("xpit_softplus_vjp", 2, True),
    "logit_vjp": ("xpit_logit_vjp", 2, True),
    # The log-space members:
    "log1mexp": ("xpit_log1mexp", 1, True),
    "logexpm1": ("xpit_logexpm1", 1, True),
    "logitexp": ("xpit_logitexp", 1, True),
    "logdiffexp": ("xpit_logdiffexp", 2, True),  # (a, b)
    "log1mexp_vjp": ("xpit_log1mexp_vjp", 2, True),  # (x, grad): grad * log1mexp'(x)
    "logitexp_vjp": ("xpit_logitexp_vjp", 2, True),  # (x, grad): grad * logitexp'(x)
}
FUSED_DTYPES = ("float16", "float32", "float64")
_CTYPES = {"float16": "float16", "float32": "float", "float64": "double"}  # as CuPy names them

# NVRTC options of every kernel: no contraction of a * b + c into an fma (the header
# writes the fma()s it wants), no flush to zero, IEEE division and square root.
NVRTC_OPTIONS = ("--fmad=false", "--ftz=false", "--prec-div=true", "--prec-sqrt=true")
# What a CUDA includer of family.h defines first: the functions become device functions.
CUDA_PREFIX = "#define XPIT_FUNC static __device__ __forceinline__\n"
HEADER = "family.h"


@functools.cache
def header_source() -> str:
    """The text of the shared header, as shipped inside the package."""
    from importlib import resources

    return (resources.files("xpit") / "kernels" / HEADER).read_text(encoding="utf-8")


def kernel_name(func: str, dtype: str) -> str:
    """The name of the CUDA kernel of ``func`` for one dtype, e.g. ``xpit_sigmoid_float32``."""
    return f"xpit_{func}_{dtype}"


def _check(func: str, dtype: str | None = None) -> tuple[str, int, bool]:
    """The entry of ``func`` in :data:`KERNELS`, or the error saying there is none."""
    if func not in KERNELS:
        raise ValueError(f"no fused CuPy kernel for {func!r}; expected one of "
                         f"{', '.join(map(repr, KERNELS))}")
    if dtype is not None and dtype not in FUSED_DTYPES:
        raise TypeError(f"no fused CuPy kernel of {func!r} for dtype {dtype}; expected one of "
                        f"{', '.join(FUSED_DTYPES)}")
    return KERNELS[func]


def _inputs(func: str) -> list[str]:
    return [f"x{k}" for k in range(KERNELS[func][1])]


def operation(func: str, dtype: str) -> str:
    """The loop body of a kernel: ``y`` from the inputs ``x0`` (and ``x1``), one header call.

    float64 calls the double function; float32 its float version where the header
    has one (computed in double, rounded once), else the double function rounded
    once; float16 the double function, converted exactly to double and rounded once
    back (``cvt.rn.f16.f64``).
    """
    c_name, _, has_float = _check(func, dtype)
    inputs = _inputs(func)
    if dtype == "float32" and has_float:
        return f"y = {c_name}f({', '.join(inputs)});"
    if dtype == "float64":
        return f"y = {c_name}({', '.join(inputs)});"
    args = ", ".join(f"(double){x}" for x in inputs)
    return f"y = ({_CTYPES[dtype]})({c_name}({args}));"


# For a translation unit of its own; CuPy's kernels have CuPy's float16 class, which
# converts like __half: exactly to float, and from double by cvt.rn.f16.f64.
_STANDALONE_HALF = "#include <cuda_fp16.h>\ntypedef __half float16;\n"
_LOOP = """
extern "C" __global__ void {name}({params}, {ctype}* __restrict__ out, long long n)
{{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {{
{loads}
        {ctype} y;
        {body}
        out[i] = y;
    }}
}}
"""


def cuda_source(dtype: str, funcs: tuple[str, ...] | list[str] | None = None) -> str:
    """A complete CUDA translation unit: the header and one ``extern "C" __global__``
    kernel per function (all of them by default), each a grid-stride loop over ``n``
    elements around the very body the CuPy kernel runs (:func:`operation`).

    For compiling without CuPy or a GPU (tests/test_nvrtc.py reads its PTX). float16
    needs ``cuda_fp16.h`` on the include path, as CuPy's float16 does.
    """
    ctype = _CTYPES[dtype]
    parts = [CUDA_PREFIX, header_source(), "\n"]
    if dtype == "float16":
        parts.append(_STANDALONE_HALF)
    for func in KERNELS if funcs is None else funcs:
        inputs = _inputs(func)
        parts.append(_LOOP.format(
            name=kernel_name(func, dtype), ctype=ctype, body=operation(func, dtype),
            params=", ".join(f"const {ctype}* __restrict__ in{k}" for k in range(len(inputs))),
            loads="\n".join(f"        const {ctype} {x} = in{k}[i];"
                            for k, x in enumerate(inputs))))
    return "".join(parts)


def kernel_source(func: str, dtype: str) -> str:
    """The CUDA source of one kernel, as a translation unit of its own: see :func:`cuda_source`."""
    _check(func, dtype)
    return cuda_source(dtype, (func,))


@functools.cache
def fused_kernel(func: str, dtype: str) -> Any:
    """The ``cupy.ElementwiseKernel`` of one function and dtype, built on first use and kept.

    Its preamble is the shipped header (after :data:`CUDA_PREFIX`), its body one call
    of a header function; CuPy compiles it on the first call, for the device at hand.
    """
    inputs = _inputs(func)
    return _cupy().ElementwiseKernel(
        ", ".join(f"{dtype} {x}" for x in inputs), f"{dtype} y", operation(func, dtype),
        kernel_name(func, dtype), preamble=CUDA_PREFIX + header_source(),
        options=NVRTC_OPTIONS)


def fused(func: str, *arrays: Any, out: Any = None) -> Any:
    """``func(*arrays)`` for float16, float32 or float64 CuPy arrays, in one kernel launch.

    One array for the one-input functions; ``sigmoid_backward`` takes ``(s,)`` or
    ``(s, grad)``; ``bce_with_logits`` takes ``(logits, targets)``, the ``*_vjp``
    backward passes ``(x, grad)``. Arrays of different dtypes are computed in their
    common dtype; shapes broadcast. ``out``, a CuPy array of the result's shape and
    dtype (e.g. a DLPack view of a torch tensor), receives the result if given.
    """
    nin = _check(func)[1]
    cupy = _cupy()
    if func == "sigmoid_backward" and len(arrays) == 1:
        arrays = (arrays[0], arrays[0].dtype.type(1))  # grad * ds is exactly ds for grad = 1
    if len(arrays) != nin:
        raise TypeError(f"the fused kernel of {func!r} takes {nin} array(s), got {len(arrays)}")
    dtype = cupy.result_type(*arrays)
    _check(func, str(dtype))
    arrays = tuple(a.astype(dtype, copy=False) if isinstance(a, cupy.ndarray) else a
                   for a in arrays)
    kernel = fused_kernel(func, str(dtype))
    return kernel(*arrays) if out is None else kernel(*arrays, out)


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

    from xpit._chunks import GPU_CHUNK_BYTES, chunk_length, chunk_slices, pipeline_schedule
    from xpit.kernels import reference

    kernel = getattr(reference, func)
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
                if func in KERNELS and str(out.dtype) in FUSED_DTYPES:
                    y = fused(func, chunk.astype(out.dtype, copy=False))  # ints as the ufuncs
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
