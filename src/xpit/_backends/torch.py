"""PyTorch custom operators for the family: the compiled kernels, with the family's own gradients.

Imported only when a torch tensor reaches a public function (``import xpit`` never
imports torch). Each function is a ``torch.library.custom_op`` in the ``xpit``
namespace (``torch.ops.xpit.sigmoid`` ...), with

- a forward that runs the compiled NumPy ufunc on the CPU tensor's own memory
  (``tensor.numpy()`` is a zero-copy view; non-contiguous tensors pass their
  strides through it), threaded like NumPy's fast path. bfloat16 has no NumPy
  dtype: it is computed in float32 and rounded back. Where the extension is not
  built, or for a tensor on another device, the array-API reference runs in torch
  on the tensor's own device instead. (CUDA: the reference for now; the fused
  CuPy kernels via DLPack are a later step.)
- a fake implementation (``torch.empty_like``), so ``torch.compile`` and meta
  tensors see the op as one opaque node: no graph break, no tracing of xpit's
  dispatcher;
- an autograd formula written with these same operators, so that double backward
  works and differentiates the family's own derivatives:
  sigmoid' = sigmoid_grad, log_sigmoid' = sigmoid(-x), softplus' = sigmoid,
  logit'(p) = 1 / p / (1 - p), sigmoid_grad' = sigmoid_grad(x) * tanh(-x / 2),
  and for sigmoid_backward(s, g) = g s (1 - s): (g (1 - 2s), s (1 - s)).

Why ``1 / p / (1 - p)`` is accurate for logit: for p >= 1/2, ``1 - p`` is exact
(Sterbenz), for p < 1/2 it is rounded once with relative error <= 2**-53, so the
result is within about 1.5 ULP of ``1 / (p (1 - p))`` for every p in [0, 1]; nothing
cancels. (``sigmoid_grad(logit(p))`` would add logit's own error, amplified by
``|x|`` in the tails.)
"""

import functools

import numpy as np
import torch
from torch import Tensor

from xpit._backends import numpy as numpy_backend
from xpit._chunks import usable_cores
from xpit.kernels import reference

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def takes(x: object) -> bool:
    """Whether the custom operators compute ``x``: a floating torch tensor of a dtype they have."""
    return isinstance(x, Tensor) and x.dtype in _FLOATS


# --- the forward kernels -----------------------------------------------------------------------

def _xp():
    import array_api_compat.torch as xp

    return xp


def _on_cpu_compiled(*tensors: Tensor) -> bool:
    return (numpy_backend.compiled()[0] is not None
            and all(t.device.type == "cpu" for t in tensors))


def _host(t: Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor (bfloat16 through a float32 copy)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def _unary(name: str, x: Tensor) -> Tensor:
    if x.numel() == 0:
        return torch.empty_like(x)
    if _on_cpu_compiled(x):
        out = torch.empty_like(x, dtype=torch.float32 if x.dtype == torch.bfloat16 else x.dtype)
        numpy_backend.compute(name, _host(x), out.numpy(), workers=usable_cores())
        return out if x.dtype != torch.bfloat16 else out.to(torch.bfloat16)
    return _reference(getattr(reference, name), x)


def _binary(name: str, kernel, a: Tensor, b: Tensor) -> Tensor:
    if a.numel() == 0:
        return torch.empty_like(a)
    if _on_cpu_compiled(a, b):
        y = getattr(numpy_backend.compiled()[0], name)(_host(a), _host(b))
        return torch.from_numpy(np.asarray(y)).to(a.dtype)
    return _reference(kernel, a, b)


def _reference(kernel, *tensors: Tensor) -> Tensor:
    """The array-API kernel in torch, on the tensors' own device (half types in float32)."""
    dtype = tensors[0].dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    y = kernel(_xp(), *(t.detach().to(work) for t in tensors))
    return y.to(dtype)


# --- the operators -----------------------------------------------------------------------------

@torch.library.custom_op("xpit::sigmoid", mutates_args=())
def sigmoid(x: Tensor) -> Tensor:
    return _unary("sigmoid", x)


@torch.library.custom_op("xpit::sigmoid_grad", mutates_args=())
def sigmoid_grad(x: Tensor) -> Tensor:
    return _unary("sigmoid_grad", x)


@torch.library.custom_op("xpit::log_sigmoid", mutates_args=())
def log_sigmoid(x: Tensor) -> Tensor:
    return _unary("log_sigmoid", x)


@torch.library.custom_op("xpit::softplus", mutates_args=())
def softplus(x: Tensor) -> Tensor:
    return _unary("softplus", x)


@torch.library.custom_op("xpit::logit", mutates_args=())
def logit(p: Tensor) -> Tensor:
    return _unary("logit", p)


@torch.library.custom_op("xpit::sigmoid_backward", mutates_args=())
def sigmoid_backward(s: Tensor, grad: Tensor) -> Tensor:
    return _binary("sigmoid_backward", reference.sigmoid_backward, s, grad)


@torch.library.custom_op("xpit::bce_with_logits", mutates_args=())
def bce_with_logits(z: Tensor, t: Tensor) -> Tensor:
    """The elementwise binary cross-entropy with logits (no reduction)."""
    return _binary("bce_with_logits", functools.partial(
        reference.binary_cross_entropy_with_logits, reduction="none"), z, t)


for _op in (sigmoid, sigmoid_grad, log_sigmoid, softplus, logit):
    _op.register_fake(lambda x: torch.empty_like(x))
for _op in (sigmoid_backward, bce_with_logits):
    _op.register_fake(lambda a, b: torch.empty_like(a))


# --- the gradients -----------------------------------------------------------------------------

def _save_inputs(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _sigmoid_bw(ctx, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return grad * sigmoid_grad(x)


def _sigmoid_grad_bw(ctx, grad: Tensor) -> Tensor:
    # d/dx s(1 - s) = s(1 - s)(1 - 2s), and 1 - 2 sigmoid(x) = tanh(-x / 2) without cancellation
    (x,) = ctx.saved_tensors
    return grad * (sigmoid_grad(x) * torch.tanh(-0.5 * x))


def _log_sigmoid_bw(ctx, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return grad * sigmoid(-x)


def _softplus_bw(ctx, grad: Tensor) -> Tensor:
    (x,) = ctx.saved_tensors
    return grad * sigmoid(x)


def _logit_bw(ctx, grad: Tensor) -> Tensor:
    (p,) = ctx.saved_tensors
    # Two divisions, not one by p * (1 - p): the same accuracy, and the second derivative
    # near 0 overflows to -inf (its true value) instead of becoming inf - inf = NaN.
    return grad / p / (1.0 - p)


def _sigmoid_backward_bw(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
    s, g = ctx.saved_tensors
    return grad * g * (1.0 - 2.0 * s), sigmoid_backward(s, grad)


def _bce_bw(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
    # d/dz = sigmoid(z) - t; d/dt = log_sigmoid(-z) - log_sigmoid(z) = -z
    z, t = ctx.saved_tensors
    return grad * (sigmoid(z) - t), grad * -z


for _op, _bw in ((sigmoid, _sigmoid_bw), (sigmoid_grad, _sigmoid_grad_bw),
                 (log_sigmoid, _log_sigmoid_bw), (softplus, _softplus_bw), (logit, _logit_bw),
                 (sigmoid_backward, _sigmoid_backward_bw), (bce_with_logits, _bce_bw)):
    _op.register_autograd(_bw, setup_context=_save_inputs)


# --- the public entry points -------------------------------------------------------------------

UNARY = {"sigmoid": sigmoid, "sigmoid_grad": sigmoid_grad, "log_sigmoid": log_sigmoid,
         "softplus": softplus, "logit": logit}


def sigmoid_backward_of(s: Tensor, grad: Tensor | None) -> Tensor:
    """``sigmoid_backward(s, grad)``; without ``grad``, the local derivative ``s (1 - s)``."""
    return sigmoid_backward(s, torch.ones_like(s) if grad is None else grad)


def elementwise(name: str, x: Tensor) -> Tensor:
    """The one-array function ``name`` of :data:`xpit._family.ELEMENTWISE` on a tensor."""
    return sigmoid_backward_of(x, None) if name == "sigmoid_backward" else UNARY[name](x)


def bce(z: Tensor, t: Tensor, reduction: str) -> Tensor:
    """Binary cross-entropy with logits: the elementwise op, then the reduction in torch."""
    if not t.is_floating_point():
        t = t.to(z.dtype)
    return reference.reduce_loss(torch, bce_with_logits(z, t), reduction)
