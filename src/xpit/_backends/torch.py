"""PyTorch custom operators for the family: the compiled kernels, with the family's own gradients.

Imported only when a torch tensor reaches a public function (``import xpit`` never
imports torch). Each function is a ``torch.library.custom_op`` in the ``xpit``
namespace (``torch.ops.xpit.sigmoid`` ...), with

- a forward that runs the compiled kernels on the tensor's own memory, zero-copy:
  on the CPU the NumPy ufunc on a view of it (through the array interface, see
  ``_Memory``; non-contiguous tensors pass their strides through), threaded like
  NumPy's fast path, into a result laid out like the input (as ``torch.empty_like``,
  which is also the fake implementation); on a CUDA device the CuPy kernel
  on a DLPack view, launched on the tensor's current stream, writing into a tensor
  from PyTorch's allocator. bfloat16 has no NumPy or CuPy dtype: it is computed in
  float32 and rounded back. Where neither applies (no extension built, CuPy missing,
  another device) the array-API reference runs in torch on the tensor's own device.
- a fake implementation (``torch.empty_like``), so ``torch.compile`` and meta
  tensors see the op as one opaque node: no graph break, no tracing of xpit's
  dispatcher;
- an autograd formula that runs one more operator of this module, so that double
  backward works and differentiates the family's own derivatives. The backward
  passes are fused kernels ``g f'(x)`` (one pass, the bits of ``g * f'(x)``):
  sigmoid' = sigmoid_grad, log_sigmoid' = sigmoid(-x), softplus' = sigmoid,
  logit'(p) = 1 / p / (1 - p); and sigmoid_grad' = sigmoid_grad(x) tanh(-x / 2),
  sigmoid_backward(s, g) = g s (1 - s): (g (1 - 2s), s (1 - s)).

Why ``g / p / (1 - p)`` is accurate for logit: for p >= 1/2, ``1 - p`` is exact
(Sterbenz), for p < 1/2 it is rounded once with relative error <= 2**-53, so the
result is within about 1.5 ULP of ``g / (p (1 - p))`` for every p in [0, 1]; nothing
cancels. (``sigmoid_grad(logit(p))`` would add logit's own error, amplified by
``|x|`` in the tails.)

Outputs of 4 MiB and more on the CPU are advised to the kernel as huge-page memory
(``madvise(MADV_HUGEPAGE)``, what NumPy does for its own arrays): writing a fresh
40 MB result otherwise costs a page fault per 4 KiB, more than the kernel itself.
"""

import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd import forward_ad as _forward_ad_state

from xpit import _registry
from xpit._backends import cupy as cupy_backend
from xpit._backends import numpy as numpy_backend
from xpit._chunks import cpu_chunk_length, usable_cores
from xpit.kernels import reference

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def takes(x: object) -> bool:
    """Whether the custom operators compute ``x``: a floating torch tensor of a dtype they have."""
    return isinstance(x, Tensor) and x.dtype in _FLOATS


# --- memory ------------------------------------------------------------------------------------

_HUGE_PAGE = 1 << 21
_ADVISE_BYTES = 1 << 22  # NumPy's threshold for the same advice


@functools.cache
def _madvise() -> Callable[[int, int], object] | None:
    """libc's ``madvise`` and MADV_HUGEPAGE, or None where there is no such thing (not Linux)."""
    import mmap

    if not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_HUGEPAGE"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.madvise
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    call.restype = ctypes.c_int
    return functools.partial(lambda f, start, length: f(start, length, mmap.MADV_HUGEPAGE),
                             call)


def _empty_cpu(like: Tensor, dtype: torch.dtype) -> Tensor:
    """A fresh CPU tensor laid out like ``like``; a large one on huge pages."""
    out = torch.empty_like(like, dtype=dtype)  # the input's layout, as the fake gives
    if out.nbytes >= _ADVISE_BYTES and (advise := _madvise()) is not None:
        start = -(-out.data_ptr() // _HUGE_PAGE) * _HUGE_PAGE  # the aligned 2 MiB pages inside
        stop = (out.data_ptr() + out.nbytes) // _HUGE_PAGE * _HUGE_PAGE
        if stop > start:
            advise(start, stop - start)  # advice only: a failure changes nothing
    return out


# --- the forward kernels -----------------------------------------------------------------------

def _xp() -> Any:
    import array_api_compat.torch as xp

    return xp


_NUMPY_DTYPES: dict[torch.dtype, np.dtype[Any]]
_NUMPY_DTYPES = {torch.float16: np.dtype(np.float16), torch.float32: np.dtype(np.float32),
                 torch.float64: np.dtype(np.float64)}
_TYPESTR = {t: d.str for t, d in _NUMPY_DTYPES.items()}


class _Memory:
    """A CPU tensor's memory as NumPy's array interface: a view without ``Tensor.numpy()``,
    which would mark the tensor's storage as never resizable again, a lasting change to the
    caller's tensor. The view holds the tensor, so the memory lives as long as it does."""

    __slots__ = ("__array_interface__", "tensor")

    def __init__(self, t: Tensor, *, writable: bool) -> None:
        self.tensor = t
        size = t.element_size()
        self.__array_interface__ = {
            "version": 3, "typestr": _TYPESTR[t.dtype], "data": (t.data_ptr(), not writable),
            "shape": tuple(t.shape),
            "strides": None if t.is_contiguous() else tuple(k * size for k in t.stride())}


def _host(t: Tensor, *, writable: bool = False) -> np.ndarray:
    """A NumPy view of a CPU tensor (bfloat16, and a lazily negated view, through a copy)."""
    if t.is_neg():  # e.g. the imaginary part of a conjugate: memory holds -t
        t = t.resolve_neg()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return np.asarray(_Memory(t, writable=writable))


@functools.cache
def _cupy_usable() -> bool:
    return _registry.probe("cupy")[0]


def _on_cuda(name: str, tensors: tuple[Tensor, ...], work: torch.dtype) -> Tensor:
    """The CuPy kernel on DLPack views, on the tensors' device and current stream."""
    import cupy

    device = tensors[0].device
    out = torch.empty_like(tensors[0], dtype=work)  # the input's layout, as the fake gives
    stream = torch.cuda.current_stream(device)
    if hasattr(cupy.cuda.Stream, "from_external"):  # CuPy 14: ExternalStream is deprecated
        on_stream = cupy.cuda.Stream.from_external(stream)
    else:
        on_stream = cupy.cuda.ExternalStream(stream.cuda_stream, device.index)
    with cupy.cuda.Device(device.index), on_stream:
        arrays = [cupy.from_dlpack(t.detach().resolve_neg().to(work)) for t in tensors]
        cupy_backend.fused(name, *arrays, out=cupy.from_dlpack(out))
    return out


_TYPECODE = {torch.float16: "e", torch.float32: "f", torch.float64: "d"}


# The extension's entry for raw memory where it has threads of its own (not on Windows),
# else None; read once.
_EXTENSION = numpy_backend.compiled()[0]
_RAW_ENTRY: Callable[..., None] | None = (
    _EXTENSION._contiguous if _EXTENSION is not None and _EXTENSION._threads else None)


def _scalars(tensors: tuple[Tensor, ...], dtype: torch.dtype) -> int | None:
    """For the extension's entry for raw memory, which checks nothing: a bit set for each
    tensor that is one element expanded (all strides 0: a scalar weight broadcast against
    the logits), or None unless every tensor is that or contiguous, on the CPU, of the
    first's shape, of ``dtype``, its values as they are, and the extension has threads here."""
    first = tensors[0]
    if _RAW_ENTRY is None and usable_cores() > 1:
        return None  # no threads in C here (Windows): NumPy views and Python's pool
    mask = 0
    for j, t in enumerate(tensors):
        if t.dtype != dtype or t.is_neg() or t.shape != first.shape or not t.is_cpu:
            return None
        if not t.is_contiguous():
            if any(t.stride()):
                return None
            mask |= 1 << j
    return mask


def _contiguous(module: Any, name: str, dtype: torch.dtype, scalars: int, *tensors: Tensor) -> None:
    """Kernel ``name`` on CPU tensors of one dtype and shape (inputs, then outputs), each
    contiguous or, where its bit in ``scalars`` is set, one element expanded, through the
    extension's entry for raw memory: no NumPy view, and the chunks split over the
    extension's own threads (see ``_ufuncs._contiguous``)."""
    n, workers = tensors[-1].numel(), usable_cores()
    chunk = cpu_chunk_length(n, tensors[-1].element_size(), None, workers)
    module._contiguous(name, _TYPECODE[dtype], n, chunk, workers, scalars,
                       *[t.data_ptr() for t in tensors])


def _compute(name: str, *tensors: Tensor) -> Tensor:
    """``name`` of the compiled family on tensors of one shape, device and dtype."""
    x = tensors[0]
    dtype = x.dtype
    work = torch.float32 if dtype == torch.bfloat16 else dtype
    if x.numel() == 0:
        return torch.empty_like(x)
    if x.is_cpu and (module := numpy_backend.compiled()[0]) is not None:
        out = _empty_cpu(x, work)
        if dtype in _TYPECODE and (scalars := _scalars(tensors, dtype)) is not None:
            _contiguous(module, name, dtype, scalars, *tensors, out)
        else:
            arrays = [_host(t) for t in tensors]
            numpy_backend.compute(name, arrays[0], _host(out, writable=True),
                                  others=tuple(arrays[1:]), workers=usable_cores())
    elif x.is_cuda and _cupy_usable():
        out = _on_cuda(name, tensors, work)
    else:
        return _reference(name, *tensors)
    return out if dtype == work else out.to(dtype)


# The array-API reference of each operator, for tensors the compiled kernels do not take.
_REFERENCE: dict[str, Callable[..., Tensor]] = {
    "bce_with_logits": functools.partial(reference.binary_cross_entropy_with_logits,
                                         reduction="none"),
    "bce_with_logits_pos": lambda xp, z, t, w: reference.binary_cross_entropy_with_logits(
        xp, z, t, "none", pos_weight=w),
    "bce_with_logits_grad": lambda xp, z, t: (
        (1.0 - t) * reference.sigmoid(xp, z) - t * reference.sigmoid(xp, -z)),
    "bce_with_logits_pos_grad": lambda xp, z, t, w: (
        (1.0 - t) * reference.sigmoid(xp, z) - (w * t) * reference.sigmoid(xp, -z)),
    "sigmoid_vjp": lambda xp, x, g: g * reference.sigmoid_grad(xp, x),
    "log_sigmoid_vjp": lambda xp, x, g: g * reference.sigmoid(xp, -x),
    "softplus_vjp": lambda xp, x, g: g * reference.sigmoid(xp, x),
    "logit_vjp": lambda xp, p, g: xp.where((p >= 0) & (p <= 1), g / p / (1.0 - p), xp.nan),
    # 1 - e^x as 0 - expm1(x): +0.0 at x = +-0, as in the C kernels; NaN above 0
    "log1mexp_vjp": lambda xp, x, g: xp.where(x > 0, xp.nan,
                                              g * -(xp.exp(x) / (0.0 - xp.expm1(x)))),
    "logitexp_vjp": lambda xp, x, g: xp.where(x > 0, xp.nan, g / (0.0 - xp.expm1(x))),
}


def _reference(name: str, *tensors: Tensor) -> Tensor:
    """The array-API kernel in torch, on the tensors' own device (half types in float32)."""
    kernel = _REFERENCE.get(name) or getattr(reference, name)
    dtype = tensors[0].dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    y = kernel(_xp(), *(t.detach().to(work) for t in tensors))
    return y.to(dtype)


# --- the operators -----------------------------------------------------------------------------
# torch.ops.xpit.<name>: one custom operator per kernel, for torch.compile (and anyone who
# wants the operator itself). The *_vjp operators are the backward passes grad * f'(x).

@torch.library.custom_op("xpit::sigmoid", mutates_args=())
def sigmoid(x: Tensor) -> Tensor:
    return _compute("sigmoid", x)


@torch.library.custom_op("xpit::sigmoid_grad", mutates_args=())
def sigmoid_grad(x: Tensor) -> Tensor:
    return _compute("sigmoid_grad", x)


@torch.library.custom_op("xpit::log_sigmoid", mutates_args=())
def log_sigmoid(x: Tensor) -> Tensor:
    return _compute("log_sigmoid", x)


@torch.library.custom_op("xpit::softplus", mutates_args=())
def softplus(x: Tensor) -> Tensor:
    return _compute("softplus", x)


@torch.library.custom_op("xpit::logit", mutates_args=())
def logit(p: Tensor) -> Tensor:
    return _compute("logit", p)


@torch.library.custom_op("xpit::sigmoid_backward", mutates_args=())
def sigmoid_backward(s: Tensor, grad: Tensor) -> Tensor:
    return _compute("sigmoid_backward", s, grad)


@torch.library.custom_op("xpit::bce_with_logits", mutates_args=())
def bce_with_logits(z: Tensor, t: Tensor) -> Tensor:
    """The elementwise binary cross-entropy with logits (no reduction)."""
    return _compute("bce_with_logits", z, t)


@torch.library.custom_op("xpit::bce_with_logits_pos", mutates_args=())
def bce_with_logits_pos(z: Tensor, t: Tensor, w: Tensor) -> Tensor:
    """The elementwise binary cross-entropy with logits, positive class weighted by ``w``."""
    return _compute("bce_with_logits_pos", z, t, w)


@torch.library.custom_op("xpit::bce_with_logits_grad", mutates_args=())
def bce_with_logits_grad(z: Tensor, t: Tensor) -> Tensor:
    """``(1 - t) sigmoid(z) - t sigmoid(-z)``: d/dz of :func:`bce_with_logits`, both tails exact."""
    return _compute("bce_with_logits_grad", z, t)


@torch.library.custom_op("xpit::bce_with_logits_pos_grad", mutates_args=())
def bce_with_logits_pos_grad(z: Tensor, t: Tensor, w: Tensor) -> Tensor:
    """``(1 - t) sigmoid(z) - w t sigmoid(-z)``: d/dz of :func:`bce_with_logits_pos`."""
    return _compute("bce_with_logits_pos_grad", z, t, w)


@torch.library.custom_op("xpit::sigmoid_vjp", mutates_args=())
def sigmoid_vjp(x: Tensor, grad: Tensor) -> Tensor:
    """``grad * sigmoid_grad(x)`` in one pass: the backward of :func:`sigmoid`."""
    return _compute("sigmoid_vjp", x, grad)


@torch.library.custom_op("xpit::log_sigmoid_vjp", mutates_args=())
def log_sigmoid_vjp(x: Tensor, grad: Tensor) -> Tensor:
    """``grad * sigmoid(-x)`` in one pass: the backward of :func:`log_sigmoid`."""
    return _compute("log_sigmoid_vjp", x, grad)


@torch.library.custom_op("xpit::softplus_vjp", mutates_args=())
def softplus_vjp(x: Tensor, grad: Tensor) -> Tensor:
    """``grad * sigmoid(x)`` in one pass: the backward of :func:`softplus`."""
    return _compute("softplus_vjp", x, grad)


@torch.library.custom_op("xpit::logit_vjp", mutates_args=())
def logit_vjp(p: Tensor, grad: Tensor) -> Tensor:
    """``grad / p / (1 - p)`` in one pass: the backward of :func:`logit`."""
    return _compute("logit_vjp", p, grad)


@torch.library.custom_op("xpit::log1mexp", mutates_args=())
def log1mexp(x: Tensor) -> Tensor:
    return _compute("log1mexp", x)


@torch.library.custom_op("xpit::logexpm1", mutates_args=())
def logexpm1(y: Tensor) -> Tensor:
    return _compute("logexpm1", y)


@torch.library.custom_op("xpit::logitexp", mutates_args=())
def logitexp(x: Tensor) -> Tensor:
    return _compute("logitexp", x)


@torch.library.custom_op("xpit::logdiffexp", mutates_args=())
def _logdiffexp(a: Tensor, b: Tensor) -> Tensor:
    """``log(exp(a) - exp(b))`` of two tensors of one shape (:func:`logdiffexp` broadcasts)."""
    return _compute("logdiffexp", a, b)


@torch.library.custom_op("xpit::log1mexp_vjp", mutates_args=())
def log1mexp_vjp(x: Tensor, grad: Tensor) -> Tensor:
    """``grad * -exp(x) / (1 - exp(x))``: the backward of :func:`log1mexp`."""
    return _compute("log1mexp_vjp", x, grad)


@torch.library.custom_op("xpit::logitexp_vjp", mutates_args=())
def logitexp_vjp(x: Tensor, grad: Tensor) -> Tensor:
    """``grad / (1 - exp(x))``: the backward of :func:`logitexp` (and of logexpm1 at -y)."""
    return _compute("logitexp_vjp", x, grad)


OPS = {op._name: op for op in (
    sigmoid, sigmoid_grad, log_sigmoid, softplus, logit, sigmoid_backward, bce_with_logits,
    bce_with_logits_pos, bce_with_logits_grad, bce_with_logits_pos_grad, sigmoid_vjp,
    log_sigmoid_vjp, softplus_vjp, logit_vjp, log1mexp, logexpm1, logitexp, _logdiffexp,
    log1mexp_vjp, logitexp_vjp)}
for _op in OPS.values():
    _op.register_fake(lambda first, *rest: torch.empty_like(first))


# --- eager autograd ------------------------------------------------------------------------------
# Outside torch.compile, an operator's dispatch costs tens of microseconds per call, more than
# the kernel on 10^5 elements. So eager code takes the cheapest path that still records what
# it must (:func:`call`): the kernel itself when nothing needs recording; a
# ``torch.autograd.Function`` with the same gradients when autograd or a ``torch.func``
# transform does (a Function with ``setup_context`` and ``vmap`` also supports
# ``torch.func.grad``, which PyTorch's operator-level autograd does not); the operator while
# ``torch.compile`` traces (Dynamo cannot trace into the kernels, an operator is opaque).
# Every path runs the same kernels and the same backward functions, so the same bits.

_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)


def _recorded() -> bool:
    """Whether something below Python records or intercepts every operation: TorchScript
    tracing, a ``TorchDispatchMode`` (``make_fx``, FlopCounterMode ...): then only the
    operator is visible to it, never the kernel behind it."""
    return torch._C._get_tracing_state() is not None or torch._C._len_torch_dispatch_stack() > 0


def _forward_ad() -> bool:
    return _forward_ad_state._current_level >= 0


# Tensors whose type changes nothing in dispatch (a Parameter is a plain tensor with a flag);
# any other subclass (FakeTensor, FunctionalTensor, DTensor ...) goes through the operator.
_PLAIN = frozenset((Tensor, torch.nn.Parameter))


def _path(tensors: tuple[Tensor, ...]) -> dict[str, Any] | None:
    """How a call on ``tensors`` must run: ``OPS`` (the operators: traced, or FakeTensor,
    FunctionalTensor ...), ``TRANSFORMABLE`` (the Functions for ``torch.func`` and forward
    AD), ``FUNCTIONS`` (the classic Functions: autograd records), or None (nothing needs to
    see the call: the kernel alone)."""
    if (torch.compiler.is_compiling() or _recorded()
            or any(type(t) not in _PLAIN for t in tensors)):
        return OPS
    if _transforms_active() or _forward_ad():
        return TRANSFORMABLE
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return FUNCTIONS
    return None


def call(name: str, *tensors: Tensor) -> Tensor:
    """Kernel ``name`` on tensors of one shape, dtype and device, differentiable."""
    return _run(_path(tensors), name, tensors)


def _run(path: dict[str, Any] | None, name: str, tensors: tuple[Tensor, ...]) -> Tensor:
    """Kernel ``name`` on ``tensors`` the way :func:`_path` said."""
    if path is None:
        return _compute(name, *tensors)
    return OPS[name](*tensors) if path is OPS else path[name].apply(*tensors)  # type: ignore[no-any-return]  # torch types an operator's and Function.apply's result Any


def _vmap_rule(apply: Callable[..., Tensor]) -> Callable[..., tuple[Tensor, int]]:
    """The vmap rule of an elementwise kernel: batch dimensions moved (or broadcast) to 0."""
    def rule(info: Any, in_dims: tuple[int | None, ...], *tensors: Tensor) -> tuple[Tensor, int]:
        # (the tuple *tensors rebound to a list, only to be unpacked again)
        tensors = [t.movedim(d, 0) if d is not None else t.expand(info.batch_size, *t.shape)  # type: ignore[assignment]
                   for t, d in zip(tensors, in_dims, strict=True)]
        return apply(*tensors), 0

    return rule


# --- the gradients -----------------------------------------------------------------------------
# Each backward runs more kernels through call(), so it is differentiable again.

def _needed(ctx: Any, *gradients: Callable[[], Tensor]) -> tuple[Tensor | None, ...]:
    """The gradients autograd asks for, each computed only then (given as functions)."""
    return tuple(g() if want else None
                 for g, want in zip(gradients, ctx.needs_input_grad, strict=True))


def _sigmoid_grad_of(x: Tensor, grad: Tensor) -> Tensor:
    # d/dx s(1 - s) = s(1 - s)(1 - 2s), and 1 - 2 sigmoid(x) = tanh(-x / 2) without cancellation
    return grad * (call("sigmoid_grad", x) * torch.tanh(-0.5 * x))


def _sigmoid_bw(ctx: Any, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return call("sigmoid_vjp", x, grad)


def _sigmoid_grad_bw(ctx: Any, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return _sigmoid_grad_of(x, grad)


def _log_sigmoid_bw(ctx: Any, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return call("log_sigmoid_vjp", x, grad)


def _softplus_bw(ctx: Any, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return call("softplus_vjp", x, grad)


def _logit_bw(ctx: Any, grad: Tensor) -> Tensor:
    (p,) = ctx.saved_tensors
    return call("logit_vjp", p, grad)


def _sigmoid_backward_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    s, g = ctx.saved_tensors  # d/ds g s (1 - s) = g (1 - 2s); d/dg = s (1 - s)
    return _needed(ctx, lambda: grad * g * (1.0 - 2.0 * s),
                   lambda: call("sigmoid_backward", s, grad))


def _bce_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    # d/dz = sigmoid(z) - t, computed as (1 - t) sigmoid(z) - t sigmoid(-z) (no cancellation
    # in the tails); d/dt = log_sigmoid(-z) - log_sigmoid(z) = -z
    z, t = ctx.saved_tensors
    return _needed(ctx, lambda: grad * call("bce_with_logits_grad", z, t), lambda: grad * -z)


def _bce_grad_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    # d/dz [(1 - t) s(z) - t s(-z)] = sigmoid'(z); d/dt = -s(z) - s(-z) = -1
    z, _ = ctx.saved_tensors
    return _needed(ctx, lambda: call("sigmoid_vjp", z, grad), lambda: -grad)


def _bce_pos_grad_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    # d/dz [(1 - t) s(z) - w t s(-z)] = ((1 - t) + w t) sigmoid'(z);
    # d/dt = -s(z) - w s(-z); d/dw = -t s(-z)
    z, t, w = ctx.saved_tensors
    below = call("sigmoid", -z)
    return _needed(ctx, lambda: call("sigmoid_vjp", z, grad * ((1.0 - t) + w * t)),
                   lambda: -grad * (call("sigmoid", z) + w * below),
                   lambda: -grad * t * below)


def _bce_pos_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    # With w the positive-class weight and lw = (1 - t) + w t, the factor of log1p(exp(-|z|)):
    # d/dz = (1 - t) sigmoid(z) - w t sigmoid(-z) (= lw sigmoid(z) - w t, which cancels);
    # d/dt = w softplus(-z) - softplus(z) = (w - 1) softplus(-z) - z; d/dw = t softplus(-z).
    z, t, w = ctx.saved_tensors
    return _needed(ctx, lambda: grad * call("bce_with_logits_pos_grad", z, t, w),
                   lambda: grad * ((w - 1.0) * call("softplus", -z) - z),
                   lambda: grad * t * call("softplus", -z))


def _sigmoid_vjp_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    x, g = ctx.saved_tensors  # d/dx = g sigmoid''(x); d/dg = sigmoid'(x)
    return _needed(ctx, lambda: _sigmoid_grad_of(x, grad * g),
                   lambda: call("sigmoid_vjp", x, grad))


def _log_sigmoid_vjp_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    x, g = ctx.saved_tensors  # d/dx g sigmoid(-x) = -g sigmoid'(x)
    return _needed(ctx, lambda: call("sigmoid_vjp", x, -(grad * g)),
                   lambda: call("log_sigmoid_vjp", x, grad))


def _softplus_vjp_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    x, g = ctx.saved_tensors  # d/dx g sigmoid(x) = g sigmoid'(x)
    return _needed(ctx, lambda: call("sigmoid_vjp", x, grad * g),
                   lambda: call("softplus_vjp", x, grad))


def _logit_vjp_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    p, g = ctx.saved_tensors  # d/dp g / (p (1 - p)) = g (2p - 1) / (p (1 - p))^2
    return _needed(ctx, lambda: call("logit_vjp", p, call("logit_vjp", p, grad * g)
                                     * (2.0 * p - 1.0)),
                   lambda: call("logit_vjp", p, grad))


# The log-space members: with E = e^x and w = 1 - E (x <= 0), log1mexp' = -E / w and
# logitexp' = 1 / w, two fused kernels; logexpm1'(y) = logitexp'(-y); logdiffexp's partials
# are logitexp'(b - a) and log1mexp'(b - a). Their own derivatives are products of the two,
# log1mexp'' = log1mexp' logitexp' and logitexp'' = -logitexp' log1mexp', never a
# difference: no cancellation at any order (torch's expm1 backward, exp(x) = expm1(x) + 1,
# would lose every digit of e^-30, and 1 / expm1(-x)^2 overflows for x < -355).

def _log1mexp_bw(ctx: Any, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return call("log1mexp_vjp", x, grad)


def _logexpm1_bw(ctx: Any, grad: Tensor) -> Tensor:
    (y,) = ctx.saved_tensors
    return call("logitexp_vjp", -y, grad)


def _logitexp_bw(ctx: Any, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return call("logitexp_vjp", x, grad)


def _logdiffexp_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    a, b = ctx.saved_tensors
    d = b - a
    return _needed(ctx, lambda: call("logitexp_vjp", d, grad),
                   lambda: call("log1mexp_vjp", d, grad))


def _log1mexp_vjp_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    x, g = ctx.saved_tensors  # d/dx g log1mexp'(x) = g log1mexp'(x) logitexp'(x)
    return _needed(ctx, lambda: call("logitexp_vjp", x, call("log1mexp_vjp", x, grad * g)),
                   lambda: call("log1mexp_vjp", x, grad))


def _logitexp_vjp_bw(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
    x, g = ctx.saved_tensors  # d/dx g logitexp'(x) = -g logitexp'(x) log1mexp'(x)
    return _needed(ctx, lambda: -call("log1mexp_vjp", x, call("logitexp_vjp", x, grad * g)),
                   lambda: call("logitexp_vjp", x, grad))


_BACKWARD: dict[str, Callable[[Any, Tensor], Any]]
_BACKWARD = {"sigmoid": _sigmoid_bw, "sigmoid_grad": _sigmoid_grad_bw,
             "log_sigmoid": _log_sigmoid_bw, "softplus": _softplus_bw, "logit": _logit_bw,
             "sigmoid_backward": _sigmoid_backward_bw, "bce_with_logits": _bce_bw,
             "bce_with_logits_pos": _bce_pos_bw, "bce_with_logits_grad": _bce_grad_bw,
             "bce_with_logits_pos_grad": _bce_pos_grad_bw,
             "sigmoid_vjp": _sigmoid_vjp_bw, "log_sigmoid_vjp": _log_sigmoid_vjp_bw,
             "softplus_vjp": _softplus_vjp_bw, "logit_vjp": _logit_vjp_bw,
             "log1mexp": _log1mexp_bw, "logexpm1": _logexpm1_bw, "logitexp": _logitexp_bw,
             "logdiffexp": _logdiffexp_bw, "log1mexp_vjp": _log1mexp_vjp_bw,
             "logitexp_vjp": _logitexp_vjp_bw}


def _save_inputs(ctx: Any, inputs: tuple[Tensor, ...], output: Tensor) -> None:
    ctx.save_for_backward(*inputs)


class _Partial:
    """What a backward function reads of ``ctx``: the saved tensors, and which gradients to
    compute (that of input ``index`` alone, or those flagged in ``needs``)."""

    def __init__(self, saved: tuple[Tensor, ...], index: int | None = None, *,
                 needs: tuple[bool, ...] = ()) -> None:
        self.saved_tensors = saved
        self.needs_input_grad = needs or tuple(i == index for i in range(len(saved)))


def _jvp(name: str) -> Callable[..., Any]:
    """Forward mode from the backward function: every kernel is elementwise (its Jacobian
    diagonal), so the tangent of input i contributes what the backward pass gives for input
    i with the tangent as the incoming gradient."""
    def jvp(ctx: Any, *tangents: Tensor | None) -> Any:
        total = None
        for i, tangent in enumerate(tangents):
            if tangent is None:
                continue
            term = _BACKWARD[name](_Partial(ctx.forward_inputs, i), tangent)
            term = term[i] if isinstance(term, tuple) else term
            total = term if total is None else total + term
        return total

    return jvp


def _save_for_both(ctx: Any, inputs: tuple[Tensor, ...], output: Tensor) -> None:
    ctx.save_for_backward(*inputs)
    ctx.forward_inputs = inputs


def _functions(name: str) -> tuple[Any, Any]:
    """The eager ``torch.autograd.Function``s of kernel ``name``, with its operator's gradient:
    one in the classic form (``forward(ctx, ...)``: PyTorch binds no signature per call, about
    40 microseconds cheaper), and one with ``setup_context``, ``vmap`` and ``jvp`` for
    ``torch.func`` transforms and forward-mode AD, which need that form."""
    backward = staticmethod(_BACKWARD[name])

    def classic_forward(ctx: Any, *tensors: Tensor) -> Tensor:
        ctx.save_for_backward(*tensors)
        return _compute(name, *tensors)

    def forward(*tensors: Tensor) -> Tensor:
        return _compute(name, *tensors)

    classic = type(f"Xpit_{name}", (torch.autograd.Function,),
                   {"forward": staticmethod(classic_forward), "backward": backward})
    transformable: Any = type(f"Xpit_{name}_func", (torch.autograd.Function,), {
        "forward": staticmethod(forward), "setup_context": staticmethod(_save_for_both),
        "backward": backward, "jvp": staticmethod(_jvp(name))})
    transformable.vmap = staticmethod(_vmap_rule(transformable.apply))
    return classic, transformable


def _sigmoid_with_grad(x: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(sigmoid(x), sigmoid_grad(x))`` by one kernel (one exp), for a float32 CPU tensor
    of up to 4 MiB; None for any other, whose backward recomputes from x. Measured (fwd+bwd,
    2 cores): it saves 8-12 % of float32 up to 2^20 elements, is even at 2^22, and loses
    50 % at 10^7, where the second result's fresh memory costs more than an exp; float64
    shares no exp between the two kernels and loses at every size."""
    if not (x.is_cpu and x.dtype == torch.float32 and 0 < x.nbytes <= _ADVISE_BYTES
            and numpy_backend.compiled()[0] is not None):
        return None
    s, d = _empty_cpu(x, x.dtype), _empty_cpu(x, x.dtype)
    if x.is_contiguous() and _scalars((x,), x.dtype) == 0:
        _contiguous(numpy_backend.compiled()[0], "sigmoid_with_grad", x.dtype, 0, x, s, d)
    else:
        numpy_backend.compute("sigmoid_with_grad", _host(x), _host(s, writable=True),
                              second_out=_host(d, writable=True), workers=usable_cores())
    return s, d


class Xpit_sigmoid(torch.autograd.Function):  # the name autograd shows: Xpit_sigmoidBackward
    """The eager sigmoid while autograd records. For a float32 CPU tensor of up to 4 MiB (a
    layer's activations) the forward also writes ``sigmoid_grad(x)`` (it shares the exp), so
    the backward is ``grad * sigmoid_grad(x)``, one multiplication, the bits of the fused
    ``sigmoid_vjp`` (float32 rounds the product once either way); it keeps one more tensor
    of x's size until the backward. Otherwise, and under ``create_graph=True``, the backward
    is the ``sigmoid_vjp`` kernel (differentiable again)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        pair = _sigmoid_with_grad(x)
        if pair is None:
            ctx.save_for_backward(x, None)
            return _compute("sigmoid", x)
        ctx.save_for_backward(x, pair[1])
        return pair[0]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        d: Tensor | None
        x, d = ctx.saved_tensors
        if d is None or torch.is_grad_enabled():
            return call("sigmoid_vjp", x, grad)
        return grad * d


class _ReducedBCE(torch.autograd.Function):
    """A training step's loss: ``bce_with_logits[_pos]`` and its mean or sum as one node,
    whose backward is the gradient kernel times one scalar. On a batch of 10^3 logits the
    Python around the kernels costs more than they do, and this is the shortest path
    (``benchmarks/training.py``; the raw kernel calls and the mean's division are written
    out here rather than in helpers: in a training step the model's matrix products leave
    this Python cache-cold, and each call costs more there than it measures alone). The
    bits of the two nodes (the elementwise loss, then the reduction); the gradients of the
    targets and ``pos_weight``, and a backward under ``create_graph=True``, are the
    elementwise loss's own (differentiable again).

    ``plan``: the kernel's name, whether the reduction is the mean, and ``launch``: None,
    or the arguments of the extension's entry for raw memory after the kernel's name
    (:func:`step_loss` has checked the tensors: :func:`_in_raw_layout`'s predicate, and
    no gradient needed for the targets and ``pos_weight``); the kernels then run on that
    memory directly, ``pos_weight`` read as one number. The backward checks the tensors
    again as they come back (a saved-tensor hook may change them). (One argument,
    not three: each argument of ``apply`` costs Python in every step.)"""

    @staticmethod
    def forward(ctx: Any, plan: tuple[str, bool, tuple[Any, ...] | None], z: Tensor, t: Tensor,
                *pos_weight: Tensor) -> Tensor:
        name, mean, launch = ctx.plan = plan
        ctx.save_for_backward(z, t, *pos_weight)
        if launch is None:
            loss = _compute(name, z, t, *pos_weight)
        else:
            loss = torch.empty_like(z)
            _RAW_ENTRY(name, *launch, z.data_ptr(), t.data_ptr(),  # type: ignore[misc]  # launch: the entry exists
                       *map(Tensor.data_ptr, pos_weight), loss.data_ptr())
        total = loss.sum()
        return torch.div(total, _divisor(z.numel(), z.dtype), out=total) if mean else total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        name, mean, launch = ctx.plan
        saved = ctx.saved_tensors
        z, t, pos_weight = saved[0], saved[1], saved[2:]
        scale = torch.div(grad, _divisor(z.numel(), z.dtype)) if mean else grad  # as mean's
        needs = ctx.needs_input_grad[1:]
        if torch.is_grad_enabled() or True in needs[1:]:
            saved = (z, t, *(w.reshape(()).expand(z.shape) if w.shape != z.shape else w
                             for w in pos_weight))
            partial = _Partial(saved, needs=needs)
            return (None, *_BACKWARD[name](partial, scale.expand(z.shape)))
        if launch is not None and _in_raw_layout(z, t, *pos_weight) and (
                z.numel() == launch[1] and _TYPECODE[z.dtype] == launch[0]):
            gradient = torch.empty_like(z)
            _RAW_ENTRY(name + "_grad", *launch, z.data_ptr(), t.data_ptr(),  # type: ignore[misc]  # launch: the entry exists
                       *map(Tensor.data_ptr, pos_weight), gradient.data_ptr())
        else:  # the general path, or a saved-tensor hook gave them back in another layout
            gradient = _compute(name + "_grad", z, t, *pos_weight)
        try:
            gradient.mul_(scale)
        except RuntimeError:  # a batch of gradients (is_grads_batched=True): not in place
            gradient = gradient * scale
        return (None, gradient, None, None) if pos_weight else (None, gradient, None)


@functools.lru_cache(maxsize=64)
def _divisor(n: int, dtype: torch.dtype) -> Tensor | int:
    """What to divide by for ``x / n`` with torch's bits, ``x`` a 0-d tensor of ``dtype``
    (the mean of ``n`` elements): in float32 and float64 a 0-d CPU tensor of ``n`` (torch
    converts ``n`` to the dtype and divides, but wrapping a Python number costs 2
    microseconds a call; on the CPU whatever the default device, so that it can be cached),
    in any other dtype ``n`` itself (float16 and bfloat16: torch divides in float32, where
    ``n`` is exact up to 2**24, and ``n`` in the dtype would be rounded)."""
    if dtype not in (torch.float32, torch.float64):
        return n
    return torch.tensor(n, dtype=dtype, device="cpu")


FUNCTIONS, TRANSFORMABLE = {}, {}
for _name in OPS:
    FUNCTIONS[_name], TRANSFORMABLE[_name] = _functions(_name)
FUNCTIONS["sigmoid"] = Xpit_sigmoid
for _name, _op in OPS.items():
    _op.register_autograd(_BACKWARD[_name], setup_context=_save_inputs)
    torch.library.register_vmap(_op, _vmap_rule(_op))


# --- the public entry points -------------------------------------------------------------------

def _in_raw_layout(z: Tensor, t: Tensor, *pos_weight: Tensor) -> bool:
    """Whether the loss's kernels may run on these tensors' memory directly: plain tensors
    (no subclass) on the CPU, logits and targets contiguous of one dtype the kernels have
    and one shape, ``pos_weight`` (if given) one element of that dtype, values as they are
    (no lazily negated view)."""
    if (type(z) not in _PLAIN or type(t) not in _PLAIN or z.dtype not in _TYPECODE
            or t.dtype != z.dtype or not (z.is_cpu and t.is_cpu and z.is_contiguous()
                                          and t.is_contiguous())
            or t.shape != z.shape or z.is_neg() or t.is_neg()):
        return False
    if not pos_weight:
        return True
    w = pos_weight[0]  # one element: contiguous whatever its shape
    return (type(w) in _PLAIN and w.numel() == 1 and w.dtype == z.dtype and w.is_cpu
            and not w.is_neg())


@functools.lru_cache(maxsize=64)
def _launch(n: int, dtype: torch.dtype, weighted: bool) -> tuple[Any, ...]:
    """The raw entry's arguments after the kernel's name for the loss of ``n`` elements:
    typecode, count, chunk, threads, and the scalar mask (``pos_weight``, the third input,
    read as one number). Cached: a model's batches have a few sizes."""
    workers = usable_cores()
    return (_TYPECODE[dtype], n, cpu_chunk_length(n, dtype.itemsize, None, workers), workers,
            0b100 if weighted else 0)


def step_loss(z: Tensor, t: Tensor, pos_weight: Tensor | None, reduction: str) -> Tensor | None:
    """The loss of a training step by the shortest path, for ``xpit.torch.BCEWithLogitsLoss``:
    contiguous CPU tensors of one dtype and shape, logits that need a gradient and targets
    that do not, a one-element ``pos_weight`` (needing no gradient) or none, no weight per
    element, ``mean`` or ``sum``, eager autograd (no ``torch.compile``, tracing, dispatch
    mode, ``torch.func`` transform or forward AD). Every check the public function would
    make passes on its face, so none of its work is needed: ``_ReducedBCE`` directly, the
    kernels on raw memory. None where any of that does not hold (the caller takes the
    public function)."""
    if (reduction not in ("mean", "sum") or _RAW_ENTRY is None
            or not (z.requires_grad and torch.is_grad_enabled()) or t.requires_grad
            or torch.compiler.is_compiling() or _transforms_active()
            or torch._C._get_tracing_state() is not None or torch._C._len_torch_dispatch_stack()
            or _forward_ad_state._current_level >= 0 or (n := z.numel()) == 0
            # _in_raw_layout(z, t), written out (a call less: see _ReducedBCE)
            or type(z) not in _PLAIN or type(t) not in _PLAIN or z.dtype not in _TYPECODE
            or t.dtype != z.dtype or not (z.is_cpu and t.is_cpu and z.is_contiguous()
                                          and t.is_contiguous())
            or t.shape != z.shape or z.is_neg() or t.is_neg()):
        return None  # (_recorded() and _forward_ad() written out too)
    if pos_weight is None:
        plan = ("bce_with_logits", reduction == "mean", _launch(n, z.dtype, False))
        return _ReducedBCE.apply(plan, z, t)  # type: ignore[no-any-return, no-untyped-call]  # apply: as in _run
    if (pos_weight.requires_grad or pos_weight.dim() > z.dim() or type(pos_weight) not in _PLAIN
            or pos_weight.numel() != 1 or pos_weight.dtype != z.dtype or not pos_weight.is_cpu
            or pos_weight.is_neg()):
        return None
    plan = ("bce_with_logits_pos", reduction == "mean", _launch(n, z.dtype, True))
    return _ReducedBCE.apply(plan, z, t, pos_weight)  # type: ignore[no-any-return, no-untyped-call]  # apply: as in _run


def elementwise(name: str, x: Tensor) -> Tensor:
    """The one-array function ``name`` of :data:`xpit._family.ELEMENTWISE` on a tensor."""
    return sigmoid_backward_of(x, None) if name == "sigmoid_backward" else call(name, x)


def sigmoid_backward_of(s: Tensor, grad: Tensor | None) -> Tensor:
    """``sigmoid_backward(s, grad)``; without ``grad``, the local derivative ``s (1 - s)``."""
    return call("sigmoid_backward", s, torch.ones_like(s) if grad is None else grad)


def logdiffexp(a: Tensor, b: Tensor) -> Tensor:
    """``log(exp(a) - exp(b))``, broadcast as torch broadcasts (the expansions' backward sums
    the gradients back to each input's shape)."""
    if a.shape != b.shape:
        a, b = torch.broadcast_tensors(a, b)
    return call("logdiffexp", a, b)


def bce(z: Tensor, t: Tensor, reduction: str, weight: Tensor | float | None = None,
        pos_weight: Tensor | float | None = None) -> Tensor:
    """Binary cross-entropy with logits: the elementwise kernel, then ``weight`` and the
    reduction in torch (their gradients are torch's own: a product and a sum)."""
    if not t.is_floating_point():
        t = t.to(z.dtype)
    inputs: tuple[Tensor, ...] = (z, t)
    if pos_weight is not None:  # the expansion's backward sums its gradient back to its shape
        pos_weight = torch.as_tensor(pos_weight, dtype=z.dtype, device=z.device)
        if pos_weight.numel() == 1:  # all strides 0: the kernels read it as one number
            pos_weight = pos_weight.reshape(())
        inputs += (pos_weight.expand(z.shape),)
    name = "bce_with_logits" if pos_weight is None else "bce_with_logits_pos"
    path = _path(inputs)
    if weight is None and reduction != "none" and path is FUNCTIONS:
        return _ReducedBCE.apply((name, reduction == "mean", None), *inputs)  # type: ignore[no-any-return, no-untyped-call]  # a training step's loss (apply: as in _run)
    loss = _run(path, name, inputs)
    if weight is not None:
        loss = loss * torch.as_tensor(weight, dtype=z.dtype, device=z.device)
    return reference.reduce_loss(torch, loss, reduction)  # type: ignore[no-any-return]
