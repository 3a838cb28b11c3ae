"""Hypothesis properties of the family, over the whole float64 and float32 lines."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xpit

FLOAT64 = st.floats(allow_nan=False, allow_infinity=True, width=64)
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
EPS = float(np.finfo(np.float64).eps)


@settings(max_examples=300, deadline=None)
@given(FLOAT64)
def test_sigmoid_is_a_probability_and_symmetric(x):
    s, t = xpit.sigmoid(x), xpit.sigmoid(-x)
    assert 0.0 <= s <= 1.0
    assert abs((s + t) - 1.0) <= 2 * EPS  # sigmoid(-x) == 1 - sigmoid(x) within rounding


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, st.integers(2, 50), elements=FLOAT64))
def test_sigmoid_log_sigmoid_softplus_are_monotone(x):
    x = np.sort(x)
    for name in ("sigmoid", "log_sigmoid", "softplus"):
        y = getattr(xpit, name)(x)
        assert np.all(y[1:] >= y[:-1]), name


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-30, max_value=30))
def test_logit_inverts_sigmoid(x):
    # |d logit / ds| = 1 / (s (1 - s)) amplifies the rounding of s: allow for it.
    s = xpit.sigmoid(x)
    tolerance = 4 * EPS * (1 + abs(x)) / (1 - s if s > 0.5 else 1.0)
    assert abs(xpit.logit(s) - x) <= max(tolerance, 4 * EPS * abs(x))


@settings(max_examples=300, deadline=None)
@given(FINITE)
def test_softplus_log_sigmoid_and_grad_identities(x):
    assert xpit.softplus(x) == -xpit.log_sigmoid(-x)
    assert xpit.softplus(x) >= max(x, 0.0)
    grad = xpit.sigmoid_grad(x)
    assert 0.0 <= grad <= 0.25
    assert grad == xpit.sigmoid_grad(-x)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(0, 20),
                  elements=st.floats(allow_nan=True, allow_infinity=True, width=32)))
def test_float32_in_float32_out_never_modified(x):
    before = x.copy()
    for name in ("sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit"):
        y = getattr(xpit, name)(x)
        assert y.dtype == np.float32 and y.shape == x.shape
        if name != "logit":  # NaN in, NaN out; nothing else is NaN
            np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_array_equal(x, before)


@settings(max_examples=200, deadline=None)
@given(FINITE, st.floats(0, 1))
def test_bce_is_non_negative_and_minimal_at_the_target(z, t):
    loss = xpit.binary_cross_entropy_with_logits(np.asarray([z]), np.asarray([t]))
    assert np.isfinite(loss)
    # Its lower bound is the entropy of t, reached at z = logit(t).
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nan_to_num(t * np.log(t)) - np.nan_to_num((1 - t) * np.log1p(-t))
    assert loss >= entropy - 1e-12 * max(1.0, abs(z))


# --- the log-space members ----------------------------------------------------------------------

def _within_ulps(got: float, want: float, n: int) -> bool:
    return abs(got - want) <= n * math.ulp(want)


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=0.5, allow_nan=False, allow_infinity=False, width=64))
def test_softplus_inverts_logexpm1(y):
    # Well conditioned for y >= 0.5: d softplus / dx = sigmoid(x) >= 0.39 there.
    assert _within_ulps(xpit.softplus(xpit.logexpm1(y)), y, 2)


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=-1.0, max_value=708.0, width=64))
def test_log1mexp_of_log_sigmoid_is_log_sigmoid_of_minus_x(x):
    # 1 - sigmoid(x) = sigmoid(-x), in log space. Above 708 log_sigmoid(x) = -e^-x is
    # subnormal (fewer digits than the round trip needs) and above 745 it is -0.0: the
    # information is gone before log1mexp sees it.
    assert _within_ulps(xpit.log1mexp(xpit.log_sigmoid(x)), xpit.log_sigmoid(-x), 2)


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, st.integers(2, 50),
                  elements=st.floats(max_value=0.0, allow_nan=False, width=64)))
def test_log_space_members_are_monotone_with_their_signs(x):
    x = np.sort(x)
    m, q = xpit.log1mexp(x), xpit.logitexp(x)
    assert np.all(m[1:] <= m[:-1]) and np.all(m <= 0)  # 1 - e^x falls as x rises
    assert np.all(q[1:] >= q[:-1])
    y = np.sort(-x)
    e = xpit.logexpm1(y)
    assert np.all(e[1:] >= e[:-1]) and np.all(e <= y)  # log(e^y - 1) < y


@settings(max_examples=300, deadline=None)
@given(st.floats(-700.0, 700.0), st.floats(1.0, 1000.0))
def test_logdiffexp_undoes_logaddexp(b, gap):
    # a = logaddexp(b, b - gap), then logdiffexp(a, b - gap) = b. With the gap at least 1 the
    # rounding of a is amplified at most 1 / (1 - e^-1) times: a few ULP of max(|a|, 1).
    low = b - gap
    a = np.logaddexp(b, low)
    got = xpit.logdiffexp(a, low)
    assert abs(got - b) <= 4 * math.ulp(max(abs(a), 1.0))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(0, 20),
                  elements=st.floats(allow_nan=True, allow_infinity=True, width=32)))
def test_log_space_float32_in_float32_out_never_modified(x):
    before = x.copy()
    for name in ("log1mexp", "logexpm1", "logitexp"):
        y = getattr(xpit, name)(x)
        assert y.dtype == np.float32 and y.shape == x.shape
    y = xpit.logdiffexp(x, x[::-1])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(x, before)
