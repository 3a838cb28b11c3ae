"""PyTorch modules of the logistic family, with PyTorch's names and conventions.

``import xpit`` never imports PyTorch; ``import xpit.torch`` does. Each module runs xpit's
operators (``xpit._backends.torch``): the fused kernels forward and backward, the family's
own gradients, one opaque node under ``torch.compile(fullgraph=True)``.

>>> import torch
>>> from xpit.torch import AdaptiveSigmoid, BCEWithLogitsLoss
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 1), AdaptiveSigmoid())
>>> model[1]
AdaptiveSigmoid(num_parameters=1, alpha=1.0, beta=0.0)
>>> loss = BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))
>>> loss(torch.zeros(2, 1), torch.ones(2, 1))
tensor(2.0794)
"""

from __future__ import annotations

import functools
import math
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

import xpit

__all__ = ["AdaptiveSigmoid", "BCEWithLogitsLoss", "LogSigmoid", "Sigmoid", "Softplus"]


@functools.cache
def _operators() -> ModuleType:
    """xpit's PyTorch operators, registered on first use (as the first tensor does)."""
    from xpit._backends import torch as operators

    return operators


def _positive(cls: str, name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"xpit.torch.{cls}: {name} must be a positive finite number, "
                        f"got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"xpit.torch.{cls}: {name} must be a positive finite number, "
                         f"got {value!r}")
    return value


class Sigmoid(nn.Module):
    """``sigmoid(x / temperature)``, elementwise: ``torch.nn.Sigmoid`` with a temperature.

    Parameters
    ----------
    temperature : float, default 1.0
        Positive; above 1 flattens the curve, below 1 sharpens it. A fixed
        hyperparameter (see :class:`AdaptiveSigmoid` for a learned slope).

    Examples
    --------
    >>> import torch
    >>> from xpit.torch import Sigmoid
    >>> Sigmoid(temperature=2.0)(torch.tensor([0.0, 2.0]))
    tensor([0.5000, 0.7311])
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = _positive("Sigmoid", "temperature", temperature)

    def forward(self, x: Tensor) -> Tensor:
        return xpit.sigmoid(x if self.temperature == 1.0 else x / self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class AdaptiveSigmoid(nn.Module):
    """``sigmoid(alpha * x + beta)`` with a learned slope ``alpha`` and shift ``beta``.

    One pair for the whole input, or one per channel (dimension 1 of the input), as
    ``torch.nn.PReLU`` has one slope or one per channel.

    Parameters
    ----------
    alpha, beta : float, default 1.0 and 0.0
        Initial values of the parameters.
    num_parameters : int, default 1
        1, or the number of channels of the input.
    device, dtype : optional
        Of the parameters, as for any PyTorch module.

    Attributes
    ----------
    alpha, beta : torch.nn.Parameter
        Of shape ``(num_parameters,)``.

    Examples
    --------
    >>> import torch
    >>> from xpit.torch import AdaptiveSigmoid
    >>> layer = AdaptiveSigmoid(alpha=2.0, beta=-1.0, num_parameters=3)
    >>> layer(torch.zeros(4, 3)).shape
    torch.Size([4, 3])
    >>> layer.alpha
    Parameter containing:
    tensor([2., 2., 2.], requires_grad=True)
    """

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, num_parameters: int = 1, *,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) or (
                num_parameters < 1):
            raise ValueError("xpit.torch.AdaptiveSigmoid: num_parameters must be a positive "
                             f"integer, got {num_parameters!r}")
        self.num_parameters = num_parameters
        self.init_alpha, self.init_beta = float(alpha), float(beta)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.alpha = nn.Parameter(torch.empty(num_parameters, **factory))
        self.beta = nn.Parameter(torch.empty(num_parameters, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``alpha`` and ``beta`` back to their initial values.

        Examples
        --------
        >>> import torch
        >>> from xpit.torch import AdaptiveSigmoid
        >>> layer = AdaptiveSigmoid(alpha=2.0)
        >>> with torch.no_grad():
        ...     _ = layer.alpha.zero_()
        >>> layer.reset_parameters()
        >>> layer.alpha
        Parameter containing:
        tensor([2.], requires_grad=True)
        """
        with torch.no_grad():
            self.alpha.fill_(self.init_alpha)
            self.beta.fill_(self.init_beta)

    def forward(self, x: Tensor) -> Tensor:
        alpha: Tensor = self.alpha
        beta: Tensor = self.beta
        if self.num_parameters == 1:
            alpha, beta = alpha.reshape(()), beta.reshape(())
        else:
            if x.dim() < 2 or x.shape[1] != self.num_parameters:
                raise ValueError(f"xpit.torch.AdaptiveSigmoid: the input has shape "
                                 f"{tuple(x.shape)}, but num_parameters={self.num_parameters} "
                                 "needs that many channels in dimension 1")
            channel = (-1,) + (1,) * (x.dim() - 2)
            alpha, beta = alpha.reshape(channel), beta.reshape(channel)
        return xpit.sigmoid(torch.addcmul(beta, alpha, x))

    def extra_repr(self) -> str:
        return (f"num_parameters={self.num_parameters}, alpha={self.init_alpha}, "
                f"beta={self.init_beta}")


class LogSigmoid(nn.Module):
    """``log(sigmoid(x))``, elementwise: ``torch.nn.LogSigmoid`` with xpit's kernels.

    Parameters
    ----------
    *args, **kwargs
        None are taken: the signature is ``torch.nn.Module``'s, and ``LogSigmoid()``
        has no parameters.

    Examples
    --------
    >>> import torch
    >>> from xpit.torch import LogSigmoid
    >>> LogSigmoid()(torch.tensor([-1000.0, 0.0]))
    tensor([-1000.0000,    -0.6931])
    """

    def forward(self, x: Tensor) -> Tensor:
        return xpit.log_sigmoid(x)


class Softplus(nn.Module):
    """``log(1 + exp(beta * x)) / beta``, elementwise: ``torch.nn.Softplus``, exact everywhere.

    PyTorch's switches to ``x`` above ``threshold`` (20 by default); this one needs no
    threshold: ``softplus`` never overflows, and is within 1 ULP for every input.

    Parameters
    ----------
    beta : float, default 1.0
        Positive; larger values bring the curve closer to ``relu``.

    Examples
    --------
    >>> import torch
    >>> from xpit.torch import Softplus
    >>> Softplus(beta=2.0)(torch.tensor([0.0, 1000.0]))
    tensor([3.4657e-01, 1.0000e+03])
    """

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = _positive("Softplus", "beta", beta)

    def forward(self, x: Tensor) -> Tensor:
        if self.beta == 1.0:
            return xpit.softplus(x)
        return xpit.softplus(x * self.beta) / self.beta

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


class BCEWithLogitsLoss(nn.Module):
    """Binary cross-entropy on logits: ``torch.nn.BCEWithLogitsLoss``, with xpit's kernel.

    Stable for any logits: infinite logits whose targets agree give 0 (PyTorch's gives NaN
    when ``pos_weight`` is set), and the gradient is the family's own. ``weight`` and
    ``pos_weight`` are buffers: they follow the module's device and dtype and its
    ``state_dict``. See :func:`xpit.binary_cross_entropy_with_logits`.

    Parameters
    ----------
    weight : Tensor, optional
        A weight per element's loss, broadcast against the input.
    pos_weight : Tensor, optional
        A weight of the positive term per class (last dimension), e.g.
        ``negatives / positives`` for an imbalanced class.
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Examples
    --------
    >>> import torch
    >>> from xpit.torch import BCEWithLogitsLoss
    >>> BCEWithLogitsLoss(reduction="none")(torch.tensor([0.0, 40.0]), torch.tensor([1.0, 0.0]))
    tensor([ 0.6931, 40.0000])
    """

    weight: Tensor | None  # buffers, registered in __init__
    pos_weight: Tensor | None

    def __init__(self, weight: Tensor | None = None, pos_weight: Tensor | None = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"xpit.torch.BCEWithLogitsLoss: invalid reduction {reduction!r}; "
                             "expected one of 'mean', 'sum', 'none'")
        for name, value in (("weight", weight), ("pos_weight", pos_weight)):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"xpit.torch.BCEWithLogitsLoss: {name} must be a tensor or "
                                f"None, got {type(value).__name__}")
        self.reduction = reduction
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # PyTorch's argument names
        # A training step's call takes the shortest path (the same bits); torch.compile
        # traces the public function, which gives it one operator.
        # The buffers as self.weight would read them, without nn.Module.__getattr__ (1 us
        # each), unless one was replaced (by a Parameter, a parametrization ...).
        buffers = self._buffers
        weight = buffers["weight"] if "weight" in buffers else self.weight
        pos_weight = buffers["pos_weight"] if "pos_weight" in buffers else self.pos_weight
        if weight is None and not torch.compiler.is_compiling():
            loss: Tensor | None = _operators().step_loss(input, target, pos_weight,
                                                         self.reduction)
            if loss is not None:
                return loss
        return xpit.binary_cross_entropy_with_logits(
            input, target, weight=weight, pos_weight=pos_weight, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
