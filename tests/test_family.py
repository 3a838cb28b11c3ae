"""Behaviour of the public functions on every namespace and device in the matrix.

Each test builds its input in the target's namespace, on the target's device,
and checks the result's namespace, device, dtype and shape before its values
(``array_api_extra.testing`` does both). Expected values are computed by NumPy
from the same data, so a test can only pass when the target really computed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from array_api_extra.testing import assert_close, assert_equal

import xpit

UNARY = ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "log1mexp", "logexpm1",
         "logitexp"]
LOG_SPACE = ("log1mexp", "logexpm1", "logitexp")  # of x <= 0 (logexpm1: of y >= 0)


def _domain(name, data):
    """NumPy data moved into the domain of ``name`` (logit's is left to the caller)."""
    if name in LOG_SPACE:
        return np.abs(data) if name == "logexpm1" else -np.abs(data)
    return data


def _rtol(target, name, dtype="float64"):
    """Agreement with NumPy's compiled result: a few ULP; JAX's float64 log1p (hence logit's
    atanh and the log-space members) is up to 130 ULP off (test_accuracy.JAX_CONTRACT)."""
    if target.name == "jax" and dtype == "float64" and (name == "logit" or name in LOG_SPACE):
        return 3e-14
    return 4 * float(np.finfo(dtype).eps)

# Exact limits, and the tail values that the textbook formulas get wrong.
SPECIAL_VALUES = {
    "sigmoid": [(0.0, 0.5), (np.inf, 1.0), (-np.inf, 0.0), (1000.0, 1.0), (-1000.0, 0.0),
                (-700.0, 9.859676543759770e-305), (36.0, 1.0 - 2.319522830243569e-16),
                (np.nan, np.nan)],
    "sigmoid_grad": [(0.0, 0.25), (np.inf, 0.0), (-np.inf, 0.0), (40.0, 4.248354255291589e-18),
                     (-40.0, 4.248354255291589e-18), (np.nan, np.nan)],
    "log_sigmoid": [(0.0, -math.log(2.0)), (-1000.0, -1000.0), (1000.0, 0.0), (-np.inf, -np.inf),
                    (np.inf, 0.0), (50.0, -1.9287498479639178e-22), (np.nan, np.nan)],
    "softplus": [(0.0, math.log(2.0)), (1000.0, 1000.0), (-1000.0, 0.0), (np.inf, np.inf),
                 (-np.inf, 0.0), (-50.0, 1.9287498479639178e-22), (np.nan, np.nan)],
    "logit": [(0.5, 0.0), (0.0, -np.inf), (1.0, np.inf), (-0.5, np.nan), (1.5, np.nan),
              (0.25, -math.log(3.0)), (0.75, math.log(3.0)), (np.inf, np.nan), (np.nan, np.nan)],
    "log1mexp": [(0.0, -np.inf), (-np.inf, -0.0), (1.0, np.nan), (-math.log(2.0), -math.log(2.0)),
                 (-1e-20, -46.051701859880914), (-50.0, -1.9287498479639178e-22),
                 (np.nan, np.nan)],
    "logexpm1": [(0.0, -np.inf), (np.inf, np.inf), (-1.0, np.nan), (1000.0, 1000.0),
                 (1e-10, -23.025850929890456), (math.log(3.0), math.log(2.0)),
                 (np.nan, np.nan)],
    "logitexp": [(0.0, np.inf), (-np.inf, -np.inf), (1.0, np.nan), (-1000.0, -1000.0),
                 (math.log(0.75), math.log(3.0)), (math.log(0.25), -math.log(3.0)),
                 (np.nan, np.nan)],
}


@pytest.mark.parametrize("name", UNARY)
def test_special_values(target, name):
    x = [v for v, _ in SPECIAL_VALUES[name]]
    expected = np.asarray([e for _, e in SPECIAL_VALUES[name]])
    result = getattr(xpit, name)(target.asarray(x, "float64"))
    assert_close(result, target.asarray(expected, "float64"), rtol=2 * np.finfo(np.float64).eps)


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_namespace_device_dtype_shape_are_kept(target, name, dtype):
    rng = np.random.default_rng(0)
    data = (rng.uniform(0.01, 0.99, (3, 4)) if name == "logit"
            else _domain(name, rng.normal(0, 5, (3, 4))))
    x = target.asarray(data, dtype)
    result = getattr(xpit, name)(x)
    expected = getattr(xpit, name)(data.astype(dtype))  # the NumPy computation
    assert_close(result, target.asarray(expected), rtol=_rtol(target, name, dtype))


@pytest.mark.parametrize("name", UNARY)
def test_half_precision_is_kept(target, name):
    dtype = "float16"
    if not hasattr(target.xp, dtype):
        pytest.skip(f"{target.name} has no float16")
    values = _domain(name, np.asarray([0.1, 0.5, 0.9]))
    x = target.asarray(values, dtype)
    result = getattr(xpit, name)(x)
    assert result.dtype == target.xp.float16
    expected = getattr(xpit, name)(values.astype(np.float16).astype(np.float64)).astype(
        np.float16)
    assert_close(target.to_numpy(result), expected, rtol=float(np.finfo(np.float16).eps))


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", ["int8", "int64", "uint8", "bool"])
def test_integers_and_booleans_become_the_default_float(target, name, dtype):
    x = target.asarray([0, 1, 1], dtype)
    result = getattr(xpit, name)(x)
    info = target.xp.__array_namespace_info__()
    default = info.default_dtypes(device=target.device)["real floating"]
    assert result.dtype == default
    expected = getattr(xpit, name)(np.asarray([0.0, 1.0, 1.0], dtype=target.to_numpy(result).dtype))
    assert_close(target.to_numpy(result), expected, rtol=4 * float(np.finfo(np.float32).eps))


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 0, 3), (2, 3, 4, 1)])
def test_any_shape(target, name, shape):
    rng = np.random.default_rng(1)
    data = _domain(name, rng.uniform(0.05, 0.95, shape))
    result = getattr(xpit, name)(target.asarray(data))
    assert tuple(result.shape) == shape
    # JAX's float64 log1p and atanh are up to 129 ULP off on part of this range
    # (jax-ml/jax#39707; see test_accuracy.JAX_CONTRACT)
    assert_close(result, target.asarray(getattr(xpit, name)(data)), rtol=_rtol(target, name))


@pytest.mark.parametrize("name", UNARY)
def test_views_are_read_and_inputs_never_modified(name):
    base = np.linspace(0.01, 0.99, 60).reshape(6, 10)
    views = [base[::2, ::3], base[::-1, ::-2], base.T, np.asfortranarray(base)]
    for view in views:
        before = view.copy()
        view.flags.writeable = False  # read-only input
        result = getattr(xpit, name)(view)
        assert_equal(result, getattr(xpit, name)(np.ascontiguousarray(before)))
        assert_equal(view, before)


def test_python_scalars_give_numpy_float64_scalars():
    for name in UNARY:
        result = getattr(xpit, name)(0.25)
        assert type(result) is np.float64, name
    assert type(xpit.sigmoid(3)) is np.float64
    assert type(xpit.sigmoid(True)) is np.float64
    assert type(xpit.sigmoid(np.float32(1.0))) is np.float32
    assert isinstance(xpit.sigmoid([1.0, 2.0]), np.ndarray)


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("bad", [None, "text", b"bytes", {"a": 1}, object()])
def test_non_arrays_are_a_type_error(name, bad):
    with pytest.raises(TypeError, match=rf"xpit\.{name}: argument '(x|p|y)'"):
        getattr(xpit, name)(bad)


@pytest.mark.parametrize("name", UNARY)
def test_unsupported_dtypes_are_a_type_error_naming_function_and_dtype(target, name):
    if target.is_host:
        bad = [np.asarray([1 + 2j]), np.asarray(["a"]), np.asarray([object()]),
               np.asarray([1.0], dtype=np.longdouble), 1 + 2j,
               np.asarray(["2020-01-01"], dtype="datetime64[D]")]
    else:
        bad = [target.xp.asarray([1 + 2j], device=target.device)]
    for value in bad:
        with pytest.raises(TypeError, match=rf"xpit\.{name}: argument '(x|p|y)'.*dtype"):
            getattr(xpit, name)(value)


def test_no_floating_point_errors_even_under_errstate_raise(target):
    # Warnings are errors in this suite, and the caller asks NumPy (which also
    # computes array-api-strict) to raise on every floating-point flag.
    x = [-1e308, -1000.0, -745.5, -740.0, -100.0, 0.0, 100.0, 740.0, 1e308, np.inf, -np.inf,
         np.nan]
    p = [-1.0, 0.0, 1e-320, 1e-30, 0.5, 1.0, 2.0, np.nan, np.inf]
    dtypes = [d for d in ("float16", "float32", "float64") if hasattr(target.xp, d)]
    with np.errstate(all="ignore"):  # the test's own casts to float16 overflow
        inputs = [(target.asarray(np.asarray(x).astype(d)), target.asarray(np.asarray(p).astype(d)))
                  for d in dtypes]
    with np.errstate(all="raise"):
        for xs, ps in inputs:
            for name in ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus"]:
                getattr(xpit, name)(xs)
            xpit.logit(ps)
            xpit.binary_cross_entropy_with_logits(xs, xpit.sigmoid(xs))
            xpit.sigmoid_backward(xpit.sigmoid(xs), xs)


# --- sigmoid_backward ---------------------------------------------------------------------

def test_sigmoid_backward(target):
    rng = np.random.default_rng(2)
    s, g = rng.uniform(0, 1, (4, 5)), rng.normal(size=(4, 5))
    result = xpit.sigmoid_backward(target.asarray(s), target.asarray(g))
    assert_close(result, target.asarray(g * s * (1 - s)), rtol=1e-15)
    local = xpit.sigmoid_backward(target.asarray(s))
    assert_close(local, target.asarray(s * (1 - s)), rtol=1e-15)


def test_sigmoid_backward_matches_sigmoid_grad_from_the_forward_output():
    # For x <= 0, 1 - s is exact, so the cheap form keeps full accuracy there.
    x = np.linspace(-30, 0, 301)
    assert_close(xpit.sigmoid_backward(xpit.sigmoid(x)), xpit.sigmoid_grad(x), rtol=1e-15)


def test_sigmoid_backward_dtypes(target):
    s32 = target.asarray([0.25, 0.5], "float32")
    assert xpit.sigmoid_backward(s32, target.asarray([1, 2], "int64")).dtype == target.xp.float32
    assert xpit.sigmoid_backward(s32, target.asarray([1, 2], "float64")).dtype == target.xp.float64


def test_sigmoid_backward_shape_mismatch():
    with pytest.raises(ValueError, match=r"sigmoid_backward: 'grad' has shape \(3,\) but 's'"):
        xpit.sigmoid_backward(np.ones(2) / 2, np.ones(3))


# --- binary cross-entropy -------------------------------------------------------------------

def _bce_reference(z, t):
    # softplus(z) - z t, with NumPy's own logaddexp: independent of xpit's formula.
    return np.logaddexp(0.0, z) - z * t


def test_bce_matches_the_definition_in_the_bulk(target):
    rng = np.random.default_rng(3)
    z, t = rng.normal(0, 4, (10, 3)), rng.uniform(0, 1, (10, 3))
    expected = _bce_reference(z, t)
    bce = xpit.binary_cross_entropy_with_logits
    zt, tt = target.asarray(z), target.asarray(t)
    assert_close(bce(zt, tt, reduction="none"), target.asarray(expected), rtol=1e-12)
    assert_close(bce(zt, tt, reduction="sum"), target.asarray(expected.sum()), rtol=1e-12)
    assert_close(bce(zt, tt), target.asarray(expected.mean()), rtol=1e-12)


def test_bce_is_stable_for_huge_logits(target):
    z = target.asarray([1e300, -1e300, 1e300, -1e300, 1e300, np.inf, -np.inf, np.inf])
    t = target.asarray([1.0, 0.0, 0.0, 1.0, 0.25, 1.0, 0.0, 0.0])
    result = xpit.binary_cross_entropy_with_logits(z, t, reduction="none")
    expected = [0.0, 0.0, 1e300, 1e300, 0.75e300, 0.0, 0.0, np.inf]
    assert_equal(result, target.asarray(expected))


def test_bce_targets_take_the_logits_dtype(target):
    z = target.asarray([0.0, 2.0], "float32")
    bce = xpit.binary_cross_entropy_with_logits
    for t in (target.asarray([0, 1], "int64"), target.asarray([False, True], "bool")):
        assert bce(z, t, reduction="none").dtype == target.xp.float32
    assert bce(z, target.asarray([0, 1], "float64")).dtype == target.xp.float64


def _weighted_bce_reference(z, t, weight, pos_weight):
    """PyTorch's definition, in mpmath (50 digits)."""
    import mpmath

    with mpmath.workdps(50):
        def one(zi, ti, wi, pi):
            zi, ti = mpmath.mpf(zi), mpmath.mpf(ti)
            log_s = -mpmath.log1p(mpmath.exp(-zi))
            log_1ms = -mpmath.log1p(mpmath.exp(zi))
            return float(-wi * (pi * ti * log_s + (1 - ti) * log_1ms))

        zb, tb, wb, pb = np.broadcast_arrays(z, t, weight, pos_weight)
        return np.vectorize(one)(zb, tb, wb, pb)


def test_bce_weight_and_pos_weight_broadcast(target):
    """PyTorch's meaning: ``weight`` scales each element's loss, ``pos_weight`` the positive
    term, both broadcast against the logits (one per sample, one per class); on every backend."""
    rng = np.random.default_rng(4)
    z, t = rng.normal(0, 6, (8, 3)), rng.uniform(0, 1, (8, 3))
    weight, pos_weight = rng.uniform(0, 2, (8, 1)), np.array([0.5, 1.0, 7.0])
    expected = _weighted_bce_reference(z, t, weight, pos_weight)
    bce = xpit.binary_cross_entropy_with_logits
    zt, tt, wt, pt = (target.asarray(a) for a in (z, t, weight, pos_weight))
    assert_close(bce(zt, tt, weight=wt, pos_weight=pt, reduction="none"),
                 target.asarray(expected), rtol=1e-13)
    assert_close(bce(zt, tt, weight=wt, pos_weight=pt), target.asarray(expected.mean()),
                 rtol=1e-13)
    assert_close(bce(zt, tt, pos_weight=pt, reduction="sum"),
                 target.asarray(_weighted_bce_reference(z, t, 1.0, pos_weight).sum()), rtol=1e-13)
    assert_close(bce(zt, tt, weight=wt, reduction="none"),
                 target.asarray(_weighted_bce_reference(z, t, weight, 1.0)), rtol=1e-13)
    assert_equal(bce(zt, tt, pos_weight=1.0, reduction="none"), bce(zt, tt, reduction="none"))
    huge = target.asarray([np.inf, -np.inf, 1e300, -1e300, np.inf])
    labels = target.asarray([1.0, 0.0, 1.0, 0.0, 0.0])
    assert_equal(bce(huge, labels, pos_weight=3.0, weight=2.0, reduction="none"),
                 target.asarray([0.0, 0.0, 0.0, 0.0, np.inf]))


def test_bce_weights_that_do_not_broadcast_are_named(target):
    bce = xpit.binary_cross_entropy_with_logits
    z = target.asarray(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"'pos_weight' has shape \(2,\), which does not broadcast "
                                         r"to the shape \(4, 3\) of 'logits'"):
        bce(z, z, pos_weight=target.asarray(np.ones(2)))
    with pytest.raises(ValueError, match=r"'weight' has shape \(2, 4, 3\)"):
        bce(z, z, weight=target.asarray(np.ones((2, 4, 3))))
    with pytest.raises(TypeError, match=r"argument 'weight' must be an array"):
        bce(z, z, weight="heavy")
    with pytest.raises(TypeError, match=r"argument 'weight' has unsupported dtype \S*complex"):
        bce(z, z, weight=target.asarray(np.ones(3, dtype=complex)))
    assert_equal(bce(z, z, pos_weight=np.float32(2.0), reduction="none"),
                 bce(z, z, pos_weight=2.0, reduction="none"))  # a NumPy scalar is a number


def test_bce_empty_mean_is_nan_without_warning():
    assert np.isnan(xpit.binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0)))
    assert xpit.binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0), reduction="sum") == 0


def test_bce_rejects_bad_arguments():
    bce = xpit.binary_cross_entropy_with_logits
    with pytest.raises(ValueError, match=r"'targets' has shape \(2,\) but 'logits' has shape"):
        bce(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"invalid reduction 'avg'; expected one of 'mean'"):
        bce(np.zeros(3), np.zeros(3), reduction="avg")
    with pytest.raises(TypeError, match=r"argument 'targets' must be an array"):
        bce(np.zeros(3), None)
    with pytest.raises(TypeError, match=r"argument 'targets' has unsupported dtype complex"):
        bce(np.zeros(1), np.ones(1, dtype=complex))


# --- logdiffexp: the two-argument log-space member ------------------------------------------

def test_logdiffexp_on_every_namespace_broadcasts(target):
    a = np.asarray([0.0, 1.0, 5.0, 700.0, -np.inf, np.inf])
    b = np.asarray([[-1.0], [-30.0], [-np.inf]])
    result = xpit.logdiffexp(target.asarray(a), target.asarray(b))
    assert tuple(result.shape) == (3, 6)
    expected = xpit.logdiffexp(a, b)
    assert expected[2, 4] == -np.inf and np.isnan(expected[:2, 4]).all()  # e^-inf - e^b
    assert_close(result, target.asarray(expected), rtol=_rtol(target, "log1mexp"))
    with pytest.raises(ValueError, match=r"xpit\.logdiffexp: 'a' has shape \(2,\) and 'b'"):
        xpit.logdiffexp(target.asarray([0.0, 1.0]), target.asarray([0.0, 1.0, 2.0]))


def test_logdiffexp_scalars_integers_and_special_values():
    assert type(xpit.logdiffexp(1.0, 0.0)) is np.float64
    assert xpit.logdiffexp(np.float32(1.0), 0).dtype == np.float32  # b takes a's dtype
    inf, nan = np.inf, np.nan
    a = [0.0, -inf, inf, 1.0, 1.0, inf, nan, 1e308]
    b = [-inf, -inf, inf, 1.0, 2.0, 1.0, 0.0, -1e308]
    np.testing.assert_array_equal(xpit.logdiffexp(a, b),
                                  [0.0, -inf, nan, -inf, nan, inf, nan, 1e308])
    with pytest.raises(TypeError, match=r"xpit\.logdiffexp: argument 'b'"):
        xpit.logdiffexp(1.0, "text")
