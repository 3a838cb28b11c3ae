"""JAX: the family as ``jax.custom_jvp`` functions, with the family's own derivatives.

Imported only when a JAX array or tracer reaches a public function (``import xpit``
never imports JAX). Each function is a ``jax.custom_jvp`` whose

- primal is the array-API reference kernel (:mod:`xpit.kernels.reference`) in
  ``jax.numpy``, under xpit's dtype rule: float16 and bfloat16 computed in float32
  and rounded back, float32 in float64 when 64-bit mode is on (else in float32),
  float64 in float64. The kernel is one ``jax.jit`` computation, so a call gives the
  same bits eagerly, under ``jit`` and under ``vmap``: XLA compiles the same
  operations either way (XLA's algebraic simplifier folds the kernels' Fast2Sum
  correction ``e - ((1 + e) - 1)`` to 0 in compiled code, so running them op by
  op eagerly would give other bits than ``jit``);
- JVP rule is the family's own derivative, written with these same functions, so
  that ``grad``, ``jvp``/``vjp``, ``jacfwd``/``jacrev`` and derivatives of any
  order differentiate the family's derivatives, never the kernels' branches:
  sigmoid' = sigmoid_grad, sigmoid_grad' = sigmoid_grad(x) tanh(-x / 2),
  log_sigmoid' = sigmoid(-x), softplus' = sigmoid (0.5 at 0),
  logit'(p) = 1 / p / (1 - p), sigmoid_backward(s, g) = g s (1 - s) with partials
  (g (1 - 2s), s (1 - s)), and the elementwise binary cross-entropy with logits
  with d/dz = sigmoid(z) - t and d/dt = -z (its reduction is differentiated by JAX).

The tangent is always the incoming tangent times a coefficient computed from the
primals (a coefficient of several operations is one jit computation too, so that
derivatives also keep their bits under ``jit``), which JAX transposes for reverse
mode; the two-argument rules take
symbolic zeros, so an argument that is not differentiated costs nothing.
:mod:`xpit._backends.torch` states why each derivative is accurate; the same
arguments hold here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from xpit.kernels import reference

_FLOATS = frozenset(jnp.dtype(name) for name in ("float16", "bfloat16", "float32", "float64"))
_HALF = frozenset((jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)))
# A JVP rule takes (primals, tangents) and gives back (primal out, tangent out).
Args = tuple[Any, ...]
Jvp = tuple[Any, Any]


def takes(x: object) -> bool:
    """Whether these functions compute ``x``: a floating JAX array or tracer of a dtype
    xpit has (float16, bfloat16, float32, float64)."""
    return isinstance(x, jax.Array) and x.dtype in _FLOATS


# --- the forward kernels -----------------------------------------------------------------------

def _work(dtype: Any) -> Any:
    """xpit's working dtype (:mod:`xpit._dtypes`), read from JAX's mode at trace time."""
    if dtype in _HALF:
        return jnp.dtype(jnp.float32)
    if dtype == jnp.float32:  # float64 exactly when 64-bit mode is on
        return jax.dtypes.canonicalize_dtype(jnp.float64)
    return dtype


def _primal(kernel: Callable[..., Any], name: str, **options: Any) -> Callable[..., Any]:
    """The reference ``kernel`` in jax.numpy as one jitted computation, in the working dtype."""
    def run(*arrays: Any) -> Any:
        dtype = arrays[0].dtype
        work = _work(dtype)
        return kernel(jnp, *(a.astype(work) for a in arrays), **options).astype(dtype)

    run.__name__ = run.__qualname__ = name
    return jax.jit(run)


# --- the functions and their derivatives -------------------------------------------------------

sigmoid = jax.custom_jvp(_primal(reference.sigmoid, "sigmoid"))
sigmoid_grad = jax.custom_jvp(_primal(reference.sigmoid_grad, "sigmoid_grad"))
log_sigmoid = jax.custom_jvp(_primal(reference.log_sigmoid, "log_sigmoid"))
softplus = jax.custom_jvp(_primal(reference.softplus, "softplus"))
logit = jax.custom_jvp(_primal(reference.logit, "logit"))
sigmoid_backward = jax.custom_jvp(_primal(reference.sigmoid_backward, "sigmoid_backward"))
bce_with_logits = jax.custom_jvp(_primal(reference.binary_cross_entropy_with_logits,
                                         "bce_with_logits", reduction="none"))
bce_with_logits_pos = jax.custom_jvp(_primal(
    lambda xp, z, t, w: reference.binary_cross_entropy_with_logits(xp, z, t, "none",
                                                                   pos_weight=w),
    "bce_with_logits_pos"))


log1mexp = jax.custom_jvp(_primal(reference.log1mexp, "log1mexp"))
logexpm1 = jax.custom_jvp(_primal(reference.logexpm1, "logexpm1"))
logitexp = jax.custom_jvp(_primal(reference.logitexp, "logitexp"))
_logdiffexp = jax.custom_jvp(_primal(reference.logdiffexp, "logdiffexp"))


@sigmoid.defjvp
def _sigmoid_jvp(primals: Args, tangents: Args) -> Jvp:
    (x,), (dx,) = primals, tangents
    return sigmoid(x), dx * sigmoid_grad(x)


@jax.jit
def _sigmoid_grad_slope(x: Any) -> Any:
    # d/dx s(1 - s) = s(1 - s)(1 - 2s), and 1 - 2 sigmoid(x) = tanh(-x / 2) without cancellation
    return sigmoid_grad(x) * jnp.tanh(-0.5 * x)


@sigmoid_grad.defjvp
def _sigmoid_grad_jvp(primals: Args, tangents: Args) -> Jvp:
    (x,), (dx,) = primals, tangents
    return sigmoid_grad(x), dx * _sigmoid_grad_slope(x)


@log_sigmoid.defjvp
def _log_sigmoid_jvp(primals: Args, tangents: Args) -> Jvp:
    (x,), (dx,) = primals, tangents
    return log_sigmoid(x), dx * sigmoid(-x)


@softplus.defjvp
def _softplus_jvp(primals: Args, tangents: Args) -> Jvp:
    (x,), (dx,) = primals, tangents
    return softplus(x), dx * sigmoid(x)


@jax.jit
def _logit_slope(p: Any) -> Any:
    # 1 / p / (1 - p), as in the PyTorch backward: no cancellation, and the second derivative
    # at 0 is -inf (its true value). One jit computation, so that XLA's rewriting of the two
    # divisions gives the same bits eagerly and under jit.
    return jnp.where((p >= 0) & (p <= 1), 1.0 / p / (1.0 - p), jnp.nan)  # NaN as logit


@logit.defjvp
def _logit_jvp(primals: Args, tangents: Args) -> Jvp:
    (p,), (dp,) = primals, tangents
    return logit(p), dp * _logit_slope(p)


# The log-space members' derivatives, with E = e^x and w = 1 - E = -expm1(x) for x <= 0:
# log1mexp' = -E / w and logitexp' = 1 / w (logexpm1'(y) = logitexp'(-y)). Both ratios are
# custom_jvp functions whose derivative is their product, (E / w)' = (1 / w)' = E / w^2, so
# derivatives of any order are products, never differences: JAX's own rule for expm1
# (expm1(x) + 1) loses every digit of e^-30, and 1 / expm1(-x)^2 overflows below -355.
def _w(x: Any) -> Any:
    """1 - e^x as 0 - expm1(x): +0.0 at x = +-0 (so the slopes are -inf and inf there, as the
    C kernels give); NaN above 0, outside the domain."""
    return jnp.where(x > 0, jnp.nan, 0.0 - jnp.expm1(x))


_exp_over_w = jax.custom_jvp(jax.jit(lambda x: jnp.exp(x) / _w(x)))
_one_over_w = jax.custom_jvp(jax.jit(lambda x: 1.0 / _w(x)))


def _ratios_jvp(f: Any) -> Callable[[Args, Args], Jvp]:
    def jvp(primals: Args, tangents: Args) -> Jvp:
        (x,), (dx,) = primals, tangents
        return f(x), dx * (_exp_over_w(x) * _one_over_w(x))

    return jvp


_exp_over_w.defjvp(_ratios_jvp(_exp_over_w))
_one_over_w.defjvp(_ratios_jvp(_one_over_w))


@log1mexp.defjvp
def _log1mexp_jvp(primals: Args, tangents: Args) -> Jvp:
    (x,), (dx,) = primals, tangents
    return log1mexp(x), dx * -_exp_over_w(x)


@logexpm1.defjvp
def _logexpm1_jvp(primals: Args, tangents: Args) -> Jvp:
    (y,), (dy,) = primals, tangents
    return logexpm1(y), dy * _one_over_w(-y)


@logitexp.defjvp
def _logitexp_jvp(primals: Args, tangents: Args) -> Jvp:
    (x,), (dx,) = primals, tangents
    return logitexp(x), dx * _one_over_w(x)


def _logdiffexp_jvp(primals: Args, tangents: Args) -> Jvp:
    # d/da = e^a / (e^a - e^b) = logitexp'(b - a), d/db = log1mexp'(b - a)
    (a, b), (da, db) = primals, tangents
    d = b - a
    slope_a, slope_b = _one_over_w(d), -_exp_over_w(d)
    return _logdiffexp(a, b), _add(
        None if isinstance(da, SymbolicZero) else da * slope_a,
        None if isinstance(db, SymbolicZero) else db * slope_b)


def _add(*terms: Any) -> Any:
    """The sum of the tangent terms that are not symbolic zeros (at least one is not)."""
    present = [t for t in terms if t is not None]
    return present[0] if len(present) == 1 else present[0] + present[1]


@jax.jit
def _sigmoid_backward_slope(s: Any, g: Any) -> Any:
    return g * (1.0 - 2.0 * s)  # d/ds of g s (1 - s)


def _sigmoid_backward_jvp(primals: Args, tangents: Args) -> Jvp:
    (s, g), (ds, dg) = primals, tangents
    return sigmoid_backward(s, g), _add(
        None if isinstance(ds, SymbolicZero) else ds * _sigmoid_backward_slope(s, g),
        None if isinstance(dg, SymbolicZero) else dg * sigmoid_backward(s, jnp.ones_like(s)))


@jax.jit
def _bce_slope(z: Any, t: Any) -> Any:
    return (1.0 - t) * sigmoid(z) - t * sigmoid(-z)  # d/dz = sigmoid(z) - t, exact in the tails


def _bce_jvp(primals: Args, tangents: Args) -> Jvp:
    # d/dz = sigmoid(z) - t; d/dt = log_sigmoid(-z) - log_sigmoid(z) = -z
    (z, t), (dz, dt) = primals, tangents
    return bce_with_logits(z, t), _add(
        None if isinstance(dz, SymbolicZero) else dz * _bce_slope(z, t),
        None if isinstance(dt, SymbolicZero) else dt * -z)


@jax.jit
def _bce_pos_slopes(z: Any, t: Any, w: Any) -> tuple[Any, Any, Any]:
    # d/dz = (1 - t) sigmoid(z) - w t sigmoid(-z) (each term exact in the tails),
    # d/dt = w softplus(-z) - softplus(z) = (w - 1) softplus(-z) - z, d/dw = t softplus(-z).
    below = softplus(-z)
    return (1.0 - t) * sigmoid(z) - (w * t) * sigmoid(-z), (w - 1.0) * below - z, t * below


def _bce_pos_jvp(primals: Args, tangents: Args) -> Jvp:
    (z, t, w), (dz, dt, dw) = primals, tangents
    slopes = _bce_pos_slopes(z, t, w)
    terms = [None if isinstance(d, SymbolicZero) else d * slope
             for d, slope in zip((dz, dt, dw), slopes, strict=True)]
    present = [term for term in terms if term is not None]
    return bce_with_logits_pos(z, t, w), functools.reduce(lambda a, b: a + b, present)


sigmoid_backward.defjvp(_sigmoid_backward_jvp, symbolic_zeros=True)
_logdiffexp.defjvp(_logdiffexp_jvp, symbolic_zeros=True)
bce_with_logits.defjvp(_bce_jvp, symbolic_zeros=True)
bce_with_logits_pos.defjvp(_bce_pos_jvp, symbolic_zeros=True)


# --- the public entry points -------------------------------------------------------------------

UNARY = {"sigmoid": sigmoid, "sigmoid_grad": sigmoid_grad, "log_sigmoid": log_sigmoid,
         "softplus": softplus, "logit": logit, "log1mexp": log1mexp, "logexpm1": logexpm1,
         "logitexp": logitexp}


def logdiffexp(a: Any, b: Any) -> Any:
    """``log(exp(a) - exp(b))`` of two JAX arrays of one dtype, broadcast as jax.numpy does."""
    if a.shape != b.shape:
        a, b = jnp.broadcast_arrays(a, b)
    return _logdiffexp(a, b)


def _labels(dtype: Any) -> bool:
    return dtype == jnp.bool_ or jnp.issubdtype(dtype, jnp.integer)


def pairs_with(a: Any, b: Any, *, labels: bool = False) -> bool:
    """Whether ``b`` goes with ``a`` into a two-argument function here: a JAX array of the
    same shape, dtype (or, with ``labels``, an integer or boolean one) and, for concrete
    arrays, devices. Anything else is left to the dispatcher, which promotes or explains."""
    if not (isinstance(b, jax.Array) and b.shape == a.shape and (
            (takes(b) and b.dtype == a.dtype) or (labels and _labels(b.dtype)))):
        return False
    if isinstance(a, jax.core.Tracer) or isinstance(b, jax.core.Tracer):
        return True  # traced: no devices to compare, JAX places them itself
    return bool(a.devices() == b.devices())


def sigmoid_backward_of(s: Any, grad: Any | None) -> Any:
    """``sigmoid_backward(s, grad)``; without ``grad``, the local derivative ``s (1 - s)``."""
    return sigmoid_backward(s, jnp.ones_like(s) if grad is None else grad)


def elementwise(name: str, x: Any) -> Any:
    """The one-array function ``name`` of :data:`xpit._family.ELEMENTWISE` on a JAX array."""
    return sigmoid_backward_of(x, None) if name == "sigmoid_backward" else UNARY[name](x)


@functools.partial(jax.jit, static_argnames="reduction")
def bce(z: Any, t: Any, reduction: str, weight: Any = None, pos_weight: Any = None) -> Any:
    """Binary cross-entropy with logits: the elementwise function (with ``pos_weight``, its
    weighted form), times ``weight``, then the reduction in JAX, as one jit computation (XLA
    sums a fused reduction in its own order: the same bits eagerly and under jit). Integer
    and boolean targets take the logits' dtype (they have no tangent); the weights
    broadcast against the logits."""
    if _labels(t.dtype):
        t = t.astype(z.dtype)
    if pos_weight is None:
        loss = bce_with_logits(z, t)
    else:
        w = jnp.broadcast_to(jnp.asarray(pos_weight, dtype=z.dtype), z.shape)
        loss = bce_with_logits_pos(z, t, w)
    if weight is not None:
        loss = loss * jnp.asarray(weight, dtype=z.dtype)
    return reference.reduce_loss(jnp, loss, reduction)
