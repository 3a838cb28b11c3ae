"""The logistic family, written once against the array API: the numerical reference.

Every function takes the namespace ``xp`` first and arrays already in their
working dtype (see :mod:`xpit._dtypes`), and uses nothing but ``xp.*`` calls
and Python scalars, so the same code runs on NumPy, CuPy, PyTorch, JAX, Dask
and array-api-strict and never creates an array on another device. Kernels
never infer a namespace, import, warn or read configuration; the public layer
(:mod:`xpit._family`) does that once and then calls them.

The formulas avoid the textbook traps:

- ``exp`` is only ever taken of ``-|x|``, so it never overflows;
- ``1 + e`` is rounded, so its exact rounding error ``r = e - ((1 + e) - 1)``
  (Fast2Sum, valid because ``0 <= e <= 1``) is carried as a correction term;
  this keeps float64 within about 1.2 ULP where the plain formula reaches 2;
- logit near 1/2 is ``2 atanh(2p - 1)`` (``2p - 1`` is exact there), not
  ``log(p / (1 - p))``, which loses dozens of ULP to cancellation;
- the gradient is ``e / (1 + e)**2``, never ``s * (1 - s)``, which is 0 in
  the tails where the true value is a normal number;
- the log-space members switch between ``expm1`` and ``exp`` forms where the
  other would cancel (Mächler, "Accurately computing log(1 - exp(-|a|))", 2012),
  and ``log(e^y - 1)`` near its zero ``y = ln 2`` is ``log1p(2 expm1(y - ln 2))``
  with ``y - ln 2`` exact.
"""

from __future__ import annotations

from typing import Any

Array = Any
_LN2 = 0.6931471805599453
_LN2_HI = float.fromhex("0x1.62e42fefa39efp-1")  # ln 2 = _LN2_HI + _LN2_LO to 2**-106
_LN2_LO = float.fromhex("0x1.abc9e3b39803fp-56")


def _exp_neg_abs(xp: Any, x: Array) -> tuple[Array, Array, Array]:
    """``e = exp(-|x|)``, ``d = fl(1 + e)`` and the exact rounding error ``r = (1 + e) - d``."""
    e = xp.exp(-xp.abs(x))
    d = 1.0 + e
    r = e - (d - 1.0)
    return e, d, r


def sigmoid(xp: Any, x: Array) -> Array:
    """``1 / (1 + exp(-x))``: ``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` below."""
    e, d, r = _exp_neg_abs(xp, x)
    t = xp.where(x >= 0, xp.ones_like(e), e) / d
    return t - t * (r / d)  # 1 / (d + r) = (1 / d) * (1 - r / d) to first order


def sigmoid_grad(xp: Any, x: Array) -> Array:
    """``sigmoid(x) * sigmoid(-x) = e / (1 + e)**2``, with ``e = exp(-|x|)``."""
    e, d, r = _exp_neg_abs(xp, x)
    t = (e / d) / d
    return t - t * (2.0 * r / d)


def sigmoid_backward(xp: Any, s: Array, grad: Array | None = None) -> Array:
    """The backward pass from the forward output ``s``: ``grad * s * (1 - s)``, no ``exp``."""
    ds = s * (1.0 - s)
    return ds if grad is None else grad * ds


def log_sigmoid(xp: Any, x: Array) -> Array:
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``."""
    low = xp.where(x < 0, x, xp.zeros_like(x))
    return low - xp.log1p(xp.exp(-xp.abs(x)))


def softplus(xp: Any, x: Array) -> Array:
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``."""
    high = xp.where(x > 0, x, xp.zeros_like(x))
    return high + xp.log1p(xp.exp(-xp.abs(x)))


def logit(xp: Any, p: Array) -> Array:
    """``log(p / (1 - p))``: ``2 atanh(2p - 1)`` for p >= 1/4, ``log(p) - log1p(-p)`` below.

    Both branches give NaN outside [0, 1] and for NaN, -inf at 0 and inf at 1.
    """
    central = 2.0 * xp.atanh(2.0 * p - 1.0)  # 2p - 1 is exact for p in [1/4, 1]
    low = xp.log(p) - xp.log1p(-p)  # no cancellation below 1/4: |log p| > 4.8 |log1p(-p)|
    return xp.where(p >= 0.25, central, low)


def log1mexp(xp: Any, x: Array) -> Array:
    """``log(1 - exp(x))`` for x <= 0: ``log(-expm1(x))`` above -ln 2, ``log1p(-exp(x))`` below.

    -inf at 0, -0.0 at -inf, NaN above 0 (``log`` of a negative number)."""
    return xp.where(x > -_LN2, xp.log(-xp.expm1(x)), xp.log1p(-xp.exp(x)))


def logexpm1(xp: Any, y: Array) -> Array:
    """``log(exp(y) - 1)`` for y >= 0, the inverse of softplus, in three pieces:
    ``log(expm1(y))`` below ln(2)/2 (expm1 < 0.42: the log cannot cancel),
    ``log1p(2 expm1(y - ln 2))`` up to 2 ln 2 (``e^y - 2``, exact near the zero at ln 2:
    ``y - _LN2_HI`` is exact there), ``y + log1p(-exp(-y))`` above (never overflows)."""
    low = xp.log(xp.expm1(y))
    # expm1(r - lo) = expm1(r) - lo e^r to far below an ULP (lo = 2.3e-17); written with
    # expm1 between the two constants, which XLA would otherwise fold into one
    r = y - _LN2_HI
    mid = xp.log1p(2.0 * (xp.expm1(r) - _LN2_LO * xp.exp(r)))
    high = y + xp.log1p(-xp.exp(-y))
    return xp.where(y < 0.5 * _LN2, low, xp.where(y <= 2.0 * _LN2, mid, high))


def logitexp(xp: Any, x: Array) -> Array:
    """``logit(exp(x)) = log(exp(x) / (1 - exp(x)))`` for x <= 0, as ``-logexpm1(-x)``."""
    return -logexpm1(xp, -x)


def logdiffexp(xp: Any, a: Array, b: Array) -> Array:
    """``log(exp(a) - exp(b)) = a + log1mexp(b - a)`` for a >= b: -inf where a == b (also
    both -inf), NaN where a < b or a == b == inf, ``a`` where b is -inf."""
    both_zero = (a == -xp.inf) & (b == -xp.inf)  # e^a - e^b = 0 - 0: b - a would be NaN
    r = a + log1mexp(xp, b - a)
    return xp.where(both_zero, xp.full_like(r, -xp.inf), r)


def binary_cross_entropy_with_logits(xp: Any, z: Array, t: Array, reduction: str,
                                     weight: Array | None = None,
                                     pos_weight: Array | None = None) -> Array:
    """``-weight (pos_weight t log sigmoid(z) + (1 - t) log sigmoid(-z))``, elementwise, then
    reduced; ``weight`` and ``pos_weight`` (PyTorch's meaning) broadcast against ``z``.

    Written as ``|z| c + ((1 - t) + pos_weight t) log1p(exp(-|z|))`` with ``c = 1 - t`` for
    z >= 0 and ``c = pos_weight t`` below: no term overflows for any finite z, and a zero
    ``c`` gives exactly 0 even for infinite z (where ``0 * inf`` would be NaN).
    """
    positive = t if pos_weight is None else pos_weight * t
    c = xp.where(z >= 0, 1.0 - t, positive)
    linear = xp.where(c == 0, xp.zeros_like(c), xp.abs(z) * c)
    log_term = xp.log1p(xp.exp(-xp.abs(z)))
    if pos_weight is not None:  # (1 - t) + w t: no cancellation for a small weight
        log_term = ((1.0 - t) + pos_weight * t) * log_term
    loss = linear + log_term
    return reduce_loss(xp, loss if weight is None else weight * loss, reduction)


def reduce_loss(xp: Any, loss: Array, reduction: str) -> Array:
    """The elementwise ``loss`` itself (``"none"``), its sum, or its mean."""
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    n = 1
    for size in loss.shape:
        n *= size
    return total / n  # an empty mean is 0 / 0 = NaN, as in PyTorch
