"""JAX arrays: the custom_jvp functions' values, derivatives and transformations.

Derivatives are checked against exact ones from mpmath (50 digits) at the points of
``test_torch.py`` (0, ±1e-300, ±1, ±30, ±700, ±1e4; logit near 0, 1/2 and 1),
through ``grad``, ``jvp`` and ``vjp``, first and second order, and with
``jax.test_util.check_grads`` (finite differences, both modes, order 2) where
finite differences mean something. The session runs in JAX's 64-bit mode (see
``conftest.py``); JAX's default 32-bit mode is checked with that mode off.

XLA flushes subnormals to zero on the CPU, so the float32 points keep every result
and derivative normal (|x| <= 80 instead of 700 where the value is exp(-|x|)).
"""

import math

import mpmath
import numpy as np
import pytest

import xpit
from xpit import batch
from xpit._mpreference import MP_DERIVATIVES, derivative_points

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jax_test_util = pytest.importorskip("jax.test_util")

if not jax.config.jax_enable_x64:
    pytest.skip("JAX_ENABLE_X64 is off in the environment; these tests need float64",
                allow_module_level=True)

mpmath.mp.dps = 50



# f', f'' exactly, for each one-input function.
EXACT = MP_DERIVATIVES
UNARY = list(EXACT)
LOG_SPACE = ("log1mexp", "logexpm1", "logitexp")  # of x <= 0 (logexpm1: of y >= 0)


def _domain(name, x):
    """Values of the real line ``x`` (a NumPy array) moved into the domain of ``name``."""
    if name in LOG_SPACE:
        return np.abs(x) if name == "logexpm1" else -np.abs(x)
    return x


def _x64(on):
    """JAX's 64-bit mode as a context manager (``jax.experimental`` before JAX 0.7)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(on)
    from jax import experimental

    return experimental.enable_x64(on)


def _ulps(actual, exact, dtype=np.float64):
    """|actual - exact| in units of ``dtype``'s spacing at exact (exact an mpmath number)."""
    if exact == 0:
        return 0.0 if actual == 0 else math.inf
    info = np.finfo(dtype)
    rounded = dtype(float(exact))
    spacing = float(np.spacing(np.abs(rounded))) if abs(exact) >= info.smallest_normal else float(
        info.smallest_subnormal)
    return float(abs(mpmath.mpf(float(actual)) - exact) / spacing)


def _derivatives(f, x):
    """First and second derivatives of an elementwise ``f`` at every element of ``x``."""
    def d1(v):
        return jax.grad(lambda w: f(w).sum())(v)

    return d1(x), jax.grad(lambda v: d1(v).sum())(x)


def _check_exact(name, points, g, h, dtype, bound1, bound2):
    d1, d2 = EXACT[name]
    huge = float(np.finfo(dtype).max)
    for xi, gi, hi in zip(points, np.asarray(g).tolist(), np.asarray(h).tolist(), strict=True):
        exact1, exact2 = d1(mpmath.mpf(xi)), d2(mpmath.mpf(xi))
        if abs(exact1) <= huge:
            assert _ulps(gi, exact1, dtype) <= bound1, (name, xi, gi, exact1)
        if abs(exact2) > huge:  # beyond the dtype: must overflow to inf of the right sign
            assert math.isinf(hi) and (hi > 0) == (exact2 > 0), (name, xi, hi)
        else:
            assert _ulps(hi, exact2, dtype) <= bound2, (name, xi, hi, exact2)


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


# --- derivatives against mpmath ------------------------------------------------------------------

@pytest.mark.parametrize("name", UNARY)
def test_derivatives_match_mpmath_float64(name):
    """grad, jvp and vjp give the same first derivative, within a few ULP of the exact one,
    and the second derivative too."""
    f = getattr(xpit, name)
    points = derivative_points(name)
    x = jnp.asarray(points, dtype=jnp.float64)
    g, h = _derivatives(f, x)
    _check_exact(name, points, g, h, np.float64, 4, 8)
    ones = jnp.ones_like(x)
    y, tangent = jax.jvp(f, (x,), (ones,))
    _same_bits(y, f(x))
    _same_bits(tangent, g)
    y, pullback = jax.vjp(f, x)
    _same_bits(pullback(ones)[0], g)


@pytest.mark.parametrize("x64", [True, False], ids=["x64", "x32"])
@pytest.mark.parametrize("name", UNARY)
def test_derivatives_match_mpmath_float32(name, x64):
    """float32, computed in float64 in 64-bit mode and in float32 in JAX's default mode."""
    f = getattr(xpit, name)
    points = derivative_points(name, single=True)
    with _x64(x64):
        x = jnp.asarray(points, dtype=jnp.float32)
        g, h = _derivatives(f, x)
    assert g.dtype == h.dtype == jnp.float32
    _check_exact(name, points, g, h, np.float32, 4, 8)


def test_exact_gradients_at_zero():
    """The issue's examples: softplus' = sigmoid, 0.5 at 0 (it was -0.5), in each mode."""
    for x64 in (True, False):
        with _x64(x64):
            assert jax.grad(xpit.softplus)(0.0) == 0.5
            assert jax.grad(xpit.sigmoid)(0.0) == 0.25
            assert jax.grad(xpit.log_sigmoid)(0.0) == 0.5
            assert jax.grad(lambda z: xpit.softplus(-z))(0.0) == -0.5  # the sign is kept
            assert jax.grad(jax.grad(xpit.softplus))(0.0) == 0.25
            for dtype in (jnp.float32, jnp.float64) if x64 else (jnp.float32,):
                z = jnp.zeros(3, dtype=dtype)
                for f, value in ((xpit.softplus, 0.5), (xpit.log_sigmoid, 0.5),
                                 (xpit.sigmoid, 0.25)):
                    g = jax.grad(lambda v, f=f: f(v).sum())(z)
                    assert g.dtype == dtype and bool((g == value).all()), (f, dtype, g)


@pytest.mark.parametrize("name", UNARY)
def test_check_grads_both_modes_second_order(name):
    f = getattr(xpit, name)
    x = jnp.asarray([0.25, 0.5, 0.75] if name == "logit" else
                    _domain(name, np.array([-6.0, -1.0, 0.1, 0.5, 4.0])), dtype=jnp.float64)
    jax_test_util.check_grads(f, (x,), order=2, modes=("fwd", "rev"))
    # The Jacobian of an elementwise function is diagonal, forward or reverse.
    g = jax.grad(lambda v: f(v).sum())(x)
    _same_bits(jnp.diagonal(jax.jacfwd(f)(x)), g)
    _same_bits(jnp.diagonal(jax.jacrev(f)(x)), g)


# --- transformations keep the bits ---------------------------------------------------------------

def _sample(name, dtype):
    rng = np.random.default_rng(3)
    if name == "logit":
        x = np.concatenate([rng.uniform(0, 1, 500), [0.0, 0.25, 0.5, 1.0, 1e-20, 1 - 2**-24]])
    else:
        x = _domain(name, np.concatenate([rng.normal(size=500) * 30,
                                          [0.0, -0.0, 1e-30, 30.0, -30.0, 80.0, -80.0, 1e4,
                                           -1e4]]))
    return jnp.asarray(x, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", UNARY)
def test_jit_and_vmap_give_the_bits_of_eager(name, dtype):
    f = getattr(xpit, name)
    x = _sample(name, dtype)
    y = f(x)
    assert y.dtype == x.dtype
    _same_bits(jax.jit(f)(x), y)
    _same_bits(jax.vmap(f)(x), y)
    _same_bits(jax.jit(jax.vmap(f))(x.reshape(-1, 1))[:, 0], y)
    g = jax.grad(lambda v: f(v).sum())(x)
    _same_bits(jax.vmap(jax.grad(f))(x), g)
    _same_bits(jax.jit(jax.vmap(jax.grad(f)))(x), g)
    _same_bits(jax.jit(jax.grad(lambda v: f(v).sum()))(x), g)


def test_under_tracing_the_custom_jvp_functions_run():
    """A tracer (jit, grad, vmap) is routed like a concrete array: one custom_jvp call."""
    x = jnp.linspace(-3.0, 3.0, 7)
    for name in UNARY:
        assert "custom_jvp_call" in str(jax.make_jaxpr(getattr(xpit, name))(x)), name
    assert "custom_jvp_call" in str(jax.make_jaxpr(xpit.sigmoid_backward)(x, x))
    assert "custom_jvp_call" in str(jax.make_jaxpr(xpit.sigmoid_backward)(x))
    jaxpr = jax.make_jaxpr(lambda z: xpit.binary_cross_entropy_with_logits(
        z, jnp.zeros(7, dtype=jnp.int32)))(x)
    assert "custom_jvp_call" in str(jaxpr)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grad_of_sigmoid_is_sigmoid_grad_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    x = jnp.asarray(np.concatenate([rng.standard_normal(1000) * 40,
                                    [0.0, -0.0, 1e-30, -88.0, 89.0, -700.0, 710.0]]), dtype=dtype)
    expected = xpit.sigmoid_grad(x)
    _same_bits(jax.grad(lambda v: xpit.sigmoid(v).sum())(x), expected)
    _same_bits(jax.jit(jax.grad(lambda v: xpit.sigmoid(v).sum()))(x), expected)


# --- sigmoid_backward and the binary cross-entropy -----------------------------------------------

def test_sigmoid_backward_gradients():
    s = jnp.asarray([0.1, 0.5, 0.9, 1e-300])
    g = jnp.asarray([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(xpit.sigmoid_backward(s, g), g * s * (1 - s), rtol=1e-15)
    np.testing.assert_allclose(xpit.sigmoid_backward(s), s * (1 - s), rtol=1e-15)
    ds, dg = jax.grad(lambda a, b: xpit.sigmoid_backward(a, b).sum(), argnums=(0, 1))(s, g)
    np.testing.assert_allclose(ds, g * (1 - 2 * s), rtol=1e-15)
    np.testing.assert_allclose(dg, s * (1 - s), rtol=1e-15)
    # The one-argument form differentiates s(1 - s) with the same rule.
    np.testing.assert_allclose(jax.grad(lambda a: xpit.sigmoid_backward(a).sum())(s),
                               1 - 2 * s, rtol=1e-15)
    # A tangent for one argument only (the other one's is a symbolic zero).
    _, t = jax.jvp(lambda b: xpit.sigmoid_backward(s, b), (g,), (jnp.ones_like(g),))
    np.testing.assert_allclose(t, s * (1 - s), rtol=1e-15)
    moderate = (s[:3], g[:3])
    jax_test_util.check_grads(xpit.sigmoid_backward, moderate, order=2, modes=("fwd", "rev"))
    both = jax.grad(lambda a, b: xpit.sigmoid_backward(a, b).sum(), argnums=(0, 1))
    for eager, jitted in zip(both(s, g), jax.jit(both)(s, g), strict=True):
        _same_bits(jitted, eager)
    _same_bits(jax.vmap(xpit.sigmoid_backward)(s, g), xpit.sigmoid_backward(s, g))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_and_its_gradients(reduction):
    rng = np.random.default_rng(1)
    z_np, t_np = rng.standard_normal(50) * 10, rng.uniform(0, 1, 50)
    z, t = jnp.asarray(z_np), jnp.asarray(t_np)

    def loss(a, b):
        return xpit.binary_cross_entropy_with_logits(a, b, reduction=reduction)

    expected = xpit.binary_cross_entropy_with_logits(z_np, t_np, reduction=reduction)
    np.testing.assert_allclose(loss(z, t), expected, rtol=1e-14)
    scale = 1 / z.size if reduction == "mean" else 1.0
    gz, gt = jax.grad(lambda a, b: loss(a, b).sum(), argnums=(0, 1))(z, t)
    np.testing.assert_allclose(gz, (xpit.sigmoid(z_np) - t_np) * scale, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(gt, -z_np * scale, rtol=1e-15)
    _, tangent = jax.jvp(lambda b: loss(z, b), (t,), (jnp.ones_like(t),))  # t alone
    np.testing.assert_allclose(tangent, (-z_np * scale) if reduction == "none"
                               else np.sum(-z_np * scale), rtol=1e-13)
    jax_test_util.check_grads(loss, (z[:8] / 4, t[:8]), order=2, modes=("fwd", "rev"))
    _same_bits(jax.jit(loss)(z, t), loss(z, t))  # the reduction too
    both = jax.grad(lambda a, b: loss(a, b).sum(), argnums=(0, 1))
    for eager, jitted in zip(both(z, t), jax.jit(both)(z, t), strict=True):
        _same_bits(jitted, eager)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_weighted_bce_and_its_gradients(reduction):
    """weight and pos_weight (PyTorch's meaning, broadcast): the loss, its closed-form
    gradients in logits, targets and pos_weight (correct at z = 0, where differentiating the
    formula's |z| would not be), check_grads in all four, jit bit for bit."""
    rng = np.random.default_rng(2)
    z_np, t_np = rng.standard_normal((6, 3)) * 8, rng.uniform(0, 1, (6, 3))
    z_np[0, 0] = 0.0
    w_np, p_np = rng.uniform(0.5, 2.0, (6, 1)), np.array([0.5, 1.0, 7.0])
    z, t, w, p = (jnp.asarray(a) for a in (z_np, t_np, w_np, p_np))

    def loss(a, b, c, d):
        return xpit.binary_cross_entropy_with_logits(a, b, weight=c, pos_weight=d,
                                                     reduction=reduction)

    expected = xpit.binary_cross_entropy_with_logits(z_np, t_np, weight=w_np, pos_weight=p_np,
                                                     reduction=reduction)
    np.testing.assert_allclose(loss(z, t, w, p), expected, rtol=1e-14)
    scale = w_np / z.size if reduction == "mean" else w_np
    gz, gt, gp = jax.grad(lambda *a: loss(*a).sum(), argnums=(0, 1, 3))(z, t, w, p)
    s, lw = np.asarray(xpit.sigmoid(z_np)), 1 + (p_np - 1) * t_np
    np.testing.assert_allclose(gz, scale * (lw * s - p_np * t_np), rtol=1e-13, atol=1e-300)
    below = np.asarray(xpit.softplus(-z_np))
    np.testing.assert_allclose(gt, scale * ((p_np - 1) * below - z_np), rtol=1e-13)
    np.testing.assert_allclose(gp, np.sum(scale * t_np * below, axis=0), rtol=1e-13)
    jax_test_util.check_grads(loss, (z / 4, t, w, p), order=2, modes=("fwd", "rev"))
    _same_bits(jax.jit(loss)(z, t, w, p), loss(z, t, w, p))
    huge = jnp.asarray([np.inf, -np.inf, 1e300])
    assert np.all(np.asarray(loss(huge, jnp.asarray([1.0, 0.0, 1.0]), 2.0, 3.0)) == 0.0)


def test_a_tracer_and_a_concrete_array_of_another_dtype_meet():
    """A tracer has no device to compare: the dispatcher must not call them "different
    devices" (float32 targets with float64 logits take the promoting path)."""
    z, t = jnp.asarray([0.0, 1.0]), jnp.asarray([0.0, 1.0], dtype=jnp.float32)
    g = jax.grad(lambda a: xpit.binary_cross_entropy_with_logits(a, t))(z)
    np.testing.assert_allclose(g, (xpit.sigmoid(z) - t.astype(z.dtype)) / 2, rtol=1e-15)


def test_bce_integer_and_boolean_targets_take_the_logits_dtype():
    z = jnp.asarray([-1e300, 0.0, 3.0])
    for t in (jnp.asarray([0, 1, 1]), jnp.asarray([False, True, True])):
        loss = xpit.binary_cross_entropy_with_logits(z, t, reduction="none")
        assert loss.dtype == jnp.float64
        assert float(loss[0]) == 0.0 and float(loss[1]) == math.log(2)
        g = jax.grad(lambda a, t=t: xpit.binary_cross_entropy_with_logits(a, t))(z)
        np.testing.assert_allclose(g, ((1 - t) * xpit.sigmoid(z) - t * xpit.sigmoid(-z)) / 3,
                                   rtol=1e-15)  # sigmoid(z) - t, without its cancellation
    z32 = jnp.asarray([0.0, 1.0], dtype=jnp.float32)
    assert xpit.binary_cross_entropy_with_logits(z32, jnp.asarray([0, 1])).dtype == jnp.float32
    with pytest.raises(ValueError, match="reduction"):
        xpit.binary_cross_entropy_with_logits(z, z, reduction="avg")


# --- dtypes and routing --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", UNARY)
def test_half_precision_within_one_ulp(name, dtype):
    x = jnp.asarray(np.linspace(0.001, 0.999, 999) if name == "logit"
                    else _domain(name, np.linspace(-20, 20, 1001)), dtype=dtype)
    f = getattr(xpit, name)
    y = f(x)
    assert y.dtype == x.dtype and y.shape == x.shape
    rounded = np.asarray(f(x.astype(jnp.float64)).astype(dtype).astype(jnp.float64))
    info = jnp.finfo(dtype)
    ulp = np.maximum(np.abs(rounded), float(info.smallest_normal)) * float(info.eps)
    got = np.asarray(y.astype(jnp.float64))
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf
        assert np.all((got == rounded) | (np.abs(got - rounded) <= ulp))
    assert jax.grad(lambda v: f(v).sum())(x).dtype == x.dtype


def test_other_inputs_keep_their_paths():
    assert type(xpit.sigmoid(0.0)) is np.float64  # a Python float is host data
    assert isinstance(xpit.sigmoid(np.zeros(2)), np.ndarray)
    y = xpit.sigmoid(jnp.asarray([0, 1]))  # integers: the default float, the same bits
    assert y.dtype == jnp.float64
    _same_bits(y, xpit.sigmoid(jnp.asarray([0.0, 1.0])))
    # A grad of another dtype is promoted by the dispatcher, as for any array library.
    s = jnp.asarray([0.25, 0.5], dtype=jnp.float32)
    assert xpit.sigmoid_backward(s, jnp.ones(2)).dtype == jnp.float64


def test_out_is_refused_naming_the_function():
    x = jnp.zeros(3)
    with pytest.raises(TypeError, match=r"xpit\.batch\.apply: out cannot be a JAX array"):
        batch.apply("sigmoid", x, out=jnp.zeros(3))


# --- logdiffexp: two inputs that broadcast -----------------------------------------------------

def test_logdiffexp_gradients_and_broadcasting():
    """d/da = -1 / expm1(b - a), d/db = -1 / expm1(a - b) against mpmath at differences down
    to -1e-300 and -700; check_grads (both modes, order 2); broadcasting; jit keeps the bits."""
    for d in (-1e-300, -1e-10, -0.5, -30.0, -700.0):
        ga, gb = jax.grad(xpit.logdiffexp, argnums=(0, 1))(0.0, d)
        assert _ulps(ga, -1 / mpmath.expm1(mpmath.mpf(d))) <= 4, d
        assert _ulps(gb, -1 / mpmath.expm1(-mpmath.mpf(d))) <= 4, d
    a = jnp.asarray([0.0, 1.0, 5.0, 30.0])
    b = jnp.asarray([[-1.0], [-3.0]])
    jax_test_util.check_grads(xpit.logdiffexp, (a, b), order=2, modes=("fwd", "rev"))
    y = xpit.logdiffexp(a, b)
    assert y.shape == (2, 4)
    _same_bits(jax.jit(xpit.logdiffexp)(a, b), y)
    np.testing.assert_allclose(np.asarray(y), xpit.logdiffexp(np.asarray(a), np.asarray(b)),
                               rtol=4e-15)  # the array-API reference: a few ULP
    assert xpit.logdiffexp(jnp.asarray(-jnp.inf), jnp.asarray(-jnp.inf)) == -jnp.inf


def test_log_space_derivatives_at_the_end_of_the_domain():
    """As on PyTorch: the signs of the limits from inside the domain at +-0 and a == b."""
    for zero in (0.0, -0.0):
        assert float(jax.grad(xpit.log1mexp)(zero)) == -math.inf
        assert float(jax.grad(xpit.logitexp)(zero)) == math.inf
        assert float(jax.grad(xpit.logexpm1)(zero)) == math.inf
    assert math.isnan(float(jax.grad(xpit.log1mexp)(1.0)))
    ga, gb = jax.grad(xpit.logdiffexp, argnums=(0, 1))(1.0, 1.0)
    assert (float(ga), float(gb)) == (math.inf, -math.inf)
