"""Accuracy against a 128-bit mpmath reference (see ``reference.py`` for the recipe).

The contract, in ULP of the result's dtype at the exact value:

========================================  ===================  =====================
function                                  compiled (NumPy)     array-API reference
                                          float64   float32    float64   float32
========================================  ========  =========  ========  ==========
sigmoid, log_sigmoid, softplus, logit     1         1          2         3
sigmoid_grad                              1.5       1          4         4
log1mexp                                  1         1          2         3
logexpm1, logitexp                        1         1          3         3
logdiffexp (away from its zero, below)   1         1          3         3
========================================  ========  =========  ========  ==========

logdiffexp crosses zero along the curve e^a - e^b = 1: near it, its error is 1 ULP plus a
multiple of the condition number (``test_logdiffexp_within_its_condition``).

NumPy runs the compiled ufuncs (``kernels/family.h``); PyTorch, JAX, Dask and
array-api-strict run the array-API reference, which is also checked on NumPy
here. float16 is computed in float32 (reference) or float64 (compiled) and must
be within 1 ULP of the exact value for every one of its 65,536 values, and so
must bfloat16 where the namespace has it. Each sweep has 10^5 points, tails
included. ``test_exhaustive.py`` checks every float32 input.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import xpit
from xpit._mpreference import (
    log_difference_sample,
    log_probability_sample,
    probability_sample,
    real_line_sample,
    reference,
    ulp_error,
)
from xpit.kernels import reference as array_api

CONTRACT = {
    ("sigmoid", "float64"): 1, ("sigmoid", "float32"): 1,
    ("log_sigmoid", "float64"): 1, ("log_sigmoid", "float32"): 1,
    ("softplus", "float64"): 1, ("softplus", "float32"): 1,
    ("logit", "float64"): 1, ("logit", "float32"): 1,
    ("sigmoid_grad", "float64"): 1.5, ("sigmoid_grad", "float32"): 1,
    ("log1mexp", "float64"): 1, ("log1mexp", "float32"): 1,
    ("logexpm1", "float64"): 1, ("logexpm1", "float32"): 1,
    ("logitexp", "float64"): 1, ("logitexp", "float32"): 1,
}
REFERENCE_CONTRACT = {
    ("sigmoid", "float64"): 2, ("sigmoid", "float32"): 3,
    ("log_sigmoid", "float64"): 2, ("log_sigmoid", "float32"): 3,
    ("softplus", "float64"): 2, ("softplus", "float32"): 3,
    ("logit", "float64"): 2, ("logit", "float32"): 3,
    ("sigmoid_grad", "float64"): 4, ("sigmoid_grad", "float32"): 4,
    ("log1mexp", "float64"): 2, ("log1mexp", "float32"): 3,
    ("logexpm1", "float64"): 3, ("logexpm1", "float32"): 3,
    ("logitexp", "float64"): 3, ("logitexp", "float32"): 3,
}
# JAX on the CPU runs the same reference, but XLA changes it in float64: its algebraic
# simplifier folds the kernels' Fast2Sum correction ``e - ((1 + e) - 1)`` to 0 (sigmoid,
# sigmoid_grad; xpit runs each kernel as one jit computation, so eager calls see the fold
# too), its log1p is up to 1.9 ULP off on [0.4, 1] (log_sigmoid, softplus) and up to 129
# ULP on [-0.53, -0.28], which its atanh inherits (logit: jax-ml/jax#39707). Measured on
# this file's 10^5-point sweeps: 2.2, 3.4, 2.4, 2.5 and 129 ULP. float32 meets the reference
# contract (computed in float64 when JAX's 64-bit mode is on, as in these tests).
JAX_CONTRACT = {**REFERENCE_CONTRACT, ("sigmoid", "float64"): 2.5,
                ("log_sigmoid", "float64"): 2.5, ("softplus", "float64"): 2.5,
                ("logit", "float64"): 130,
                # the log-space members' log1p(-e^x) and log1p(2 expm1(y - ln 2)) meet the
                # same log1p: 127 and 106 ULP measured
                ("log1mexp", "float64"): 130, ("logexpm1", "float64"): 110,
                ("logitexp", "float64"): 110}
SWEEP_POINTS = 100_000
# float32 is also swept through every one of its inputs (test_exhaustive.py): a smaller
# sample here, for the reference's float32 contract and the dtype checks.
SWEEP_POINTS_FLOAT32 = 25_000


def _points(name: str, dtype: str, n: int, seed: int) -> np.ndarray:
    """``n`` points of ``dtype`` spread over the domain of ``name``, its tails, zero crossing
    and switching points included, and a few outside it."""
    dtype = np.dtype(dtype)
    if name in ("log1mexp", "logitexp", "logexpm1"):
        x = log_probability_sample(dtype, n, seed)
        return -x if name == "logexpm1" else x
    make = probability_sample if name == "logit" else real_line_sample
    return make(dtype, n, seed=seed)


def _sample(name: str, dtype: str) -> np.ndarray:
    n = SWEEP_POINTS_FLOAT32 if dtype == "float32" else SWEEP_POINTS
    return _points(name, dtype, n, seed=20261122)


@pytest.fixture(scope="session")
def sweeps() -> dict:
    """Inputs and the exact values, computed once per session (about 50 s of mpmath)."""
    data = {}
    for name, dtype in CONTRACT:
        x = _sample(name, dtype)
        data[name, dtype] = (x, *reference(name, x))
    return data


@pytest.mark.parametrize(("name", "dtype"), list(CONTRACT))
def test_ulp_contract(sweeps, name, dtype):
    x, hi, lo = sweeps[name, dtype]
    assert x.size >= (SWEEP_POINTS_FLOAT32 if dtype == "float32" else SWEEP_POINTS)
    result = getattr(xpit, name)(x)
    assert result.dtype == np.dtype(dtype)
    err = ulp_error(result, hi, lo, np.dtype(dtype))
    worst = int(np.argmax(err))
    assert err.max() <= CONTRACT[name, dtype], (
        f"{name} {dtype}: {err.max():.3f} ULP at x={x[worst]!r}: got {result[worst]!r}, "
        f"exact {hi[worst]!r}")


@pytest.mark.parametrize(("name", "dtype"), list(REFERENCE_CONTRACT))
def test_reference_ulp_contract_on_numpy(sweeps, name, dtype):
    """The array-API reference itself, run by NumPy: the path of every other library."""
    x, hi, lo = sweeps[name, dtype]
    with np.errstate(all="ignore"):  # float32 is computed in float64, as on NumPy's dtypes
        result = getattr(array_api, name)(np, x.astype(np.float64)).astype(dtype)
    err = ulp_error(result, hi, lo, np.dtype(dtype))
    assert err.max() <= REFERENCE_CONTRACT[name, dtype], (name, dtype, err.max())


FUNCTIONS = ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "log1mexp",
             "logexpm1", "logitexp"]


def _every_value(dtype: str) -> np.ndarray:
    """All 65,536 values of a 16-bit float type, as float32 (exact)."""
    bits = np.arange(2**16, dtype=np.uint32)
    if dtype == "bfloat16":  # the top half of a float32
        return (bits << 16).view(np.float32)
    with np.errstate(invalid="ignore"):  # signalling NaNs become quiet ones
        return bits.astype(np.uint16).view(np.float16).astype(np.float32)


@pytest.fixture(scope="session")
def half_references() -> dict:
    return {}


def _check_flushed(target: object, name: str, x: np.ndarray, hi: np.ndarray, got: np.ndarray,
                   err: np.ndarray, dtype: str) -> np.ndarray:
    """``err`` without the points where XLA flushes subnormals (JAX on the CPU), checked here.

    XLA computes with flush-to-zero and denormals-are-zero on the CPU: a result below
    float32's (float64's) smallest normal is 0, a subnormal input is read as 0. float16
    is computed in float32, where its subnormals are normal, so none of it is flushed.
    """
    if target.name != "jax":
        return err
    tiny = float(np.finfo(np.float64 if dtype == "float64" else np.float32).smallest_normal)
    if dtype == "float16":
        tiny = 0.0
    result = (np.abs(hi) < tiny) & (hi != 0)
    assert np.all(got[result] == 0), f"{name} {dtype}: a subnormal result is not flushed"
    read_as_zero = (np.abs(x) < tiny) & (x != 0) & ~result
    at_zero = getattr(xpit, name)(np.copysign(0.0, x[read_as_zero]).astype(np.float64))
    assert np.all((err[read_as_zero] <= 1) | (got[read_as_zero] == at_zero)), (name, dtype)
    return np.where(result | read_as_zero, 0.0, err)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_half_precision_exhaustive_within_one_ulp(target, half_references, name, dtype):
    if not hasattr(target.xp, dtype):
        pytest.skip(f"{target.name} has no {dtype}")
    if target.name == "strict-device1":
        pytest.skip("the same code as on the default device")
    x = _every_value(dtype)
    if (name, dtype) not in half_references:
        half_references[name, dtype] = reference(name, x)
    hi, lo = half_references[name, dtype]
    with np.errstate(invalid="ignore"):
        half = target.xp.astype(target.asarray(x), getattr(target.xp, dtype))
    result = getattr(xpit, name)(half)
    assert result.dtype == getattr(target.xp, dtype)
    with np.errstate(invalid="ignore"):
        got = target.to_numpy(target.xp.astype(result, target.xp.float32))
    err = ulp_error(got, hi, lo, dtype if dtype == "bfloat16" else np.float16)
    err = _check_flushed(target, name, x, hi, got, err, dtype)
    worst = int(np.argmax(err))
    assert err.max() <= 1, f"{name} {dtype}: {err.max():.3f} ULP at x={x[worst]!r}"


def test_tails_keep_relative_accuracy():
    # The values SciPy's expit and the textbook forms round to 0 (float64 x < -708,
    # float32 x < -87), while the exact value is a representable (subnormal) number.
    for dtype, xs in [(np.float64, [-700.0, -709.0, -720.0, -744.0]),
                      (np.float32, [-87.5, -90.0, -100.0, -103.0])]:
        x = np.asarray(xs, dtype=dtype)
        hi, lo = reference("sigmoid", x)
        assert np.all(xpit.sigmoid(x) > 0)
        assert ulp_error(xpit.sigmoid(x), hi, lo, dtype).max() <= 1
    assert xpit.sigmoid(-700.0) == pytest.approx(9.859676543759770e-305, rel=1e-15)
    assert xpit.sigmoid_grad(40.0) == pytest.approx(4.248354255291589e-18, rel=1e-15)
    assert xpit.log_sigmoid(-1000.0) == -1000.0
    assert xpit.softplus(1000.0) == 1000.0


def test_the_reference_catches_the_textbook_formulas():
    """Guard against a sweep that cannot fail: the textbook forms must fail it."""
    p = _sample("logit", "float64")
    hi, lo = reference("logit", p)
    with np.errstate(all="ignore"):
        textbook = np.log(p / (1 - p))
    assert ulp_error(textbook, hi, lo, np.float64).max() > 10
    x = real_line_sample(np.dtype(np.float64), 2_000, seed=1)
    hi, lo = reference("sigmoid_grad", x)
    with np.errstate(all="ignore"):
        s = 1 / (1 + np.exp(-x))
        assert ulp_error(s * (1 - s), hi, lo, np.float64).max() > 1e6


@functools.cache
def _small_sweep(name: str, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """5,000 points and their exact values, computed once for every namespace."""
    x = _points(name, dtype, 5_000, seed=7)
    return (x, *reference(name, x))


def test_other_namespaces_within_the_reference_contract(target):
    """Every namespace on the same points: NumPy by its compiled ufuncs, the others by the
    reference, each within its contract, in the input's dtype."""
    for name in FUNCTIONS:
        for dtype in ["float32", "float64"]:
            x, hi, lo = _small_sweep(name, dtype)
            got = target.to_numpy(getattr(xpit, name)(target.asarray(x)))
            assert got.dtype == np.dtype(dtype)
            contract = {"numpy": CONTRACT, "jax": JAX_CONTRACT}.get(target.name,
                                                                   REFERENCE_CONTRACT)
            err = ulp_error(got, hi, lo, np.dtype(dtype))
            err = _check_flushed(target, name, x, hi, got, err, dtype)
            assert err.max() <= contract[name, dtype], (name, dtype, err.max())


@pytest.mark.parametrize("name", ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit"])
def test_python_floats_and_small_arrays_give_the_bits_of_large_arrays(sweeps, name):
    """A Python float and a small array take a shortcut to the same ufunc: the same bits."""
    x = sweeps[name, "float64"][0][::50]  # 2,000 points, tails included
    large = getattr(xpit, name)(np.repeat(x, 200))[::200]  # chunked and threaded
    scalars = np.array([getattr(xpit, name)(v) for v in x.tolist()])
    small = np.concatenate([getattr(xpit, name)(x[i:i + 3]) for i in range(0, x.size, 3)])
    np.testing.assert_array_equal(scalars, large)
    np.testing.assert_array_equal(small, large)


# --- logdiffexp: two arguments, and a zero along a curve ---------------------------------


def _condition(a: np.ndarray, b: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """The relative condition number of log(e^a - e^b): |a e^a - b e^b| / |(e^a - e^b) f|,
    written with d = b - a so that nothing overflows; at least 1."""
    with np.errstate(all="ignore"):
        d = b - a
        k = np.abs(a - b * np.exp(d)) / np.abs(-np.expm1(d) * exact)
    return np.where(np.isfinite(k), np.maximum(k, 1.0), 1.0)


@pytest.fixture(scope="module")
def differences() -> tuple:
    a, b = log_difference_sample(20_000, seed=20261123)
    return a, b, *reference("logdiffexp", a, b)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_logdiffexp_within_its_condition(differences, dtype):
    """Within 1 ULP wherever the condition number is at most 2 (nearly everywhere); near the
    zero curve e^a - e^b = 1 (an eighth of the sample) within 0.5 ULP + 2^-4 times the
    condition number: the exact result of inputs perturbed by far less than an ULP."""
    a, b, hi, lo = differences
    if dtype == "float32":
        with np.errstate(over="ignore"):
            a, b = a.astype(np.float32), b.astype(np.float32)
        hi, lo = reference("logdiffexp", a, b)
    got = xpit.logdiffexp(a, b)
    assert got.dtype == np.dtype(dtype)
    err = ulp_error(got, hi, lo, np.dtype(dtype))
    kappa = _condition(a.astype(np.float64), b.astype(np.float64), hi)
    well = kappa <= 2
    assert well.mean() > 0.8 and (~well).sum() > 1000
    assert err[well].max() <= 1, (err[well].max(), a[well][np.argmax(err[well])])
    assert np.all(err <= 0.5 + kappa / 16), (a[np.argmax(err - kappa / 16)],
                                              b[np.argmax(err - kappa / 16)])


def test_logdiffexp_reference_within_its_condition(target, differences):
    """Every namespace (NumPy by the ufunc, the others by the array-API reference): 3 ULP where
    the condition number is at most 2, 3 ULP + 4 times it elsewhere (JAX: 130 + 130 times it,
    its log1p)."""
    a, b, hi, lo = differences
    a, b, hi, lo = a[::4], b[::4], hi[::4], lo[::4]
    got = target.to_numpy(xpit.logdiffexp(target.asarray(a), target.asarray(b)))
    err = ulp_error(got, hi, lo, np.float64)
    kappa = _condition(a, b, hi)
    if target.name == "jax":  # XLA flushes subnormal inputs and results (_check_flushed)
        tiny = float(np.finfo(np.float64).smallest_normal)
        flushed = (np.abs(hi) < tiny) | (np.abs(a) < tiny) | (np.abs(b) < tiny)
        assert np.all((got[flushed] == 0) | np.isinf(got[flushed]) | (err[flushed] <= 3)
                      | ((a[flushed] == 0) | (b[flushed] == 0)))
        err = np.where(flushed, 0.0, err)
    # JAX: its log1p, as for log1mexp above, amplified near the zero curve like the rest
    base, slope = (130, 130) if target.name == "jax" else (3, 4)
    bound = base + np.where(kappa <= 2, 0.0, slope * kappa)
    assert np.all(err <= bound), (a[np.argmax(err - bound)], b[np.argmax(err - bound)])


def test_log_space_textbook_formulas_fail_the_sweep(sweeps):
    """The sweeps reach the places where the textbook formulas lose every digit."""
    with np.errstate(all="ignore"):
        for name, textbook in [("log1mexp", lambda v: np.log(1 - np.exp(v))),
                               ("logexpm1", lambda v: np.log(np.exp(v) - 1)),
                               ("logexpm1", lambda v: np.log(np.expm1(v))),
                               ("logitexp", lambda v: np.log(np.exp(v) / -np.expm1(v)))]:
            x, hi, lo = sweeps[name, "float64"]
            assert ulp_error(textbook(x), hi, lo, np.float64).max() > 1e3, name


def test_log_space_named_values():
    assert xpit.log1mexp(-1e-20) == pytest.approx(-46.051701859880914, rel=1e-15)
    assert xpit.logexpm1(1000.0) == 1000.0
    near = np.log(2.0) + np.array([-2, -1, 0, 1, 2]) * np.spacing(np.log(2.0))
    hi, lo = reference("logexpm1", near)  # about 2 (y - ln 2): -2.3e-16 ... 4.2e-16
    assert ulp_error(xpit.logexpm1(near), hi, lo, np.float64).max() <= 0.5
    hi, lo = reference("logitexp", -near)  # and logitexp through its zero at -ln 2
    assert ulp_error(xpit.logitexp(-near), hi, lo, np.float64).max() <= 0.5
    assert xpit.logdiffexp(-np.inf, -np.inf) == -np.inf
