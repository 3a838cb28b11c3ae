"""Hypothesis properties of the family, over the whole float64 and float32 lines."""

from __future__ import annotations

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
