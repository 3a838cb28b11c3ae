"""The compiled NumPy ufuncs, :mod:`xpit.ufuncs`.

They are real ufuncs (``out=``, ``where=``, broadcasting, casting), keep float16, float32
and float64, agree with the reference formulas of :mod:`xpit.kernels.reference`, round float16 and
float32 once from float64, give the same bits on every CPU path this machine has, raise no
floating-point warnings and release the GIL. Skipped when the extension was not built.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from xpit.kernels import reference as array_api

try:
    from xpit import ufuncs
    from xpit.kernels import _ufuncs
except ImportError as exc:  # pragma: no cover - only without a C build
    pytest.skip(f"xpit.kernels._ufuncs is not built ({exc})", allow_module_level=True)

UNARY = ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "log1mexp", "logexpm1",
         "logitexp"]
BINARY = ["sigmoid_backward", "bce_with_logits", "logdiffexp"]
# Functions of x <= 0 (log-probabilities), and logexpm1, of y >= 0.
NEGATIVE, POSITIVE = ("log1mexp", "logitexp"), ("logexpm1",)
# The backward passes of the PyTorch/JAX operators: in the extension, not in xpit.ufuncs.
VJP = {"sigmoid_vjp": "sigmoid_grad", "log_sigmoid_vjp": "sigmoid", "softplus_vjp": "sigmoid"}
# ... and the weighted loss with its derivatives, for the same.
PRIVATE = ["bce_with_logits_pos", "bce_with_logits_grad", "bce_with_logits_pos_grad"]
DTYPES = [np.float16, np.float32, np.float64]
SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 0.25, 2.0, 1e-300, 5e-324,
            -5e-324, 88.0, 89.0, -88.0, -89.0, 103.0, -104.0, 709.0, 710.0, -709.0, -710.0,
            -745.0, -746.0, 745.0, 36.0, 37.0, -37.0, 1000.0, -1000.0, 1e300, -1e300]
N = 10**6


def _references() -> dict[str, Callable[..., np.ndarray]]:
    k = array_api
    return {
        "sigmoid": lambda x: k.sigmoid(np, x),
        "sigmoid_grad": lambda x: k.sigmoid_grad(np, x),
        "log_sigmoid": lambda x: k.log_sigmoid(np, x),
        "softplus": lambda x: k.softplus(np, x),
        "logit": lambda p: k.logit(np, p),
        "sigmoid_backward": lambda s, g: k.sigmoid_backward(np, s, g),
        "bce_with_logits": lambda z, t: k.binary_cross_entropy_with_logits(np, z, t, "none"),
        "log1mexp": lambda x: k.log1mexp(np, x),
        "logexpm1": lambda y: k.logexpm1(np, y),
        "logitexp": lambda x: k.logitexp(np, x),
        "logdiffexp": lambda a, b: k.logdiffexp(np, a, b),
    }


REFERENCE = _references()
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Units in the last place between two arrays of one float dtype, as float64.

    +0 and -0 are one point; NaN against NaN is 0, NaN against a number is inf.
    """
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype
    signed = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    low = np.iinfo(signed).min

    def ordered(v: np.ndarray) -> np.ndarray:  # sign-magnitude -> a monotonic integer scale
        i = v.view(signed).astype(np.int64)
        return np.where(i < 0, np.int64(low) - i, i)

    ia, ib = ordered(a), ordered(b)
    same_side = (ia >= 0) == (ib >= 0)  # then ia - ib cannot overflow
    exact = np.abs(np.where(same_side, ia - ib, 0)).astype(np.float64)
    d = np.where(same_side, exact, np.abs(ia.astype(np.float64) - ib.astype(np.float64)))
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.where(nan_a & nan_b, 0.0, np.where(nan_a | nan_b, np.inf, d))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and np.array_equal(
        a.view(_UINT[a.dtype.itemsize]), b.view(_UINT[b.dtype.itemsize])
    )


def equal_or_both_nan(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equal, except that any NaN matches any NaN (casts may differ in NaN payloads)."""
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and same_bits(a[~nan], b[~nan]))


def inputs(name: str, dtype: type, n: int = N, seed: int = 0) -> np.ndarray:
    """Random bit patterns (every exponent, NaN and inf included), the function's domain
    drawn uniformly, and the special points."""
    rng = np.random.default_rng(seed)
    if dtype is np.float16:  # all of them
        return np.arange(2**16, dtype=np.uint16).view(np.float16)
    uint = _UINT[np.dtype(dtype).itemsize]
    q = n // 4
    patterns = rng.integers(0, np.iinfo(uint).max, 2 * q, dtype=uint, endpoint=True)
    if name == "logit":
        domain = [rng.random(q), np.exp(-rng.uniform(0.0, 745.0, q))]
    elif name in NEGATIVE + POSITIVE:  # every scale from the subnormals up, and the bulk
        sign = -1.0 if name in NEGATIVE else 1.0
        domain = [sign * rng.uniform(0.0, 800.0, q), sign * np.exp(rng.uniform(-745.0, 7.0, q))]
    else:
        domain = [rng.uniform(-800.0, 800.0, q), rng.uniform(-40.0, 40.0, q)]
    with np.errstate(over="ignore"):  # float64 -> float32 casts overflow to inf
        return np.concatenate([patterns.view(dtype), *(d.astype(dtype) for d in domain),
                               np.array(SPECIALS).astype(dtype)])


def pairs(name: str, dtype: type, n: int = N, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    uint = _UINT[np.dtype(dtype).itemsize]
    h = n // 2
    a_bits = rng.integers(0, np.iinfo(uint).max, h, dtype=uint, endpoint=True).view(dtype)
    b_bits = rng.integers(0, np.iinfo(uint).max, h, dtype=uint, endpoint=True).view(dtype)
    if name in ("sigmoid_backward", "logit_vjp"):  # s or p in [0, 1], any gradient
        a = rng.random(h)
        b = rng.standard_normal(h) * np.exp2(rng.integers(-30, 30, h))
    elif name == "logdiffexp":  # b = a - d, d >= 0 on every scale
        a = rng.uniform(-800.0, 800.0, h) * rng.choice([1e-6, 1e-2, 1.0], h)
        b = a - np.exp(rng.uniform(-745.0, 7.0, h))
    else:  # logits anywhere, targets in [0, 1]
        a = rng.uniform(-800.0, 800.0, h) * rng.choice([1e-6, 1e-2, 1.0], h)
        b = rng.random(h)
    with np.errstate(over="ignore"):
        return (np.concatenate([a_bits, a.astype(dtype)]),
                np.concatenate([b_bits, b.astype(dtype)]))


def quiet(f: Callable[..., np.ndarray], *args: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # the reference's NumPy operations may warn
        return f(*args)


@pytest.fixture
def cpu_path() -> Iterator[Callable[[str], None]]:
    """Switch the CPU path for one test; the one chosen at import comes back afterwards."""
    chosen = _ufuncs._get_path()
    yield lambda name: _ufuncs._set_path(name)
    _ufuncs._set_path(chosen)


# --- they are ufuncs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNARY + BINARY)
def test_real_ufuncs(name: str) -> None:
    f = getattr(ufuncs, name)
    assert isinstance(f, np.ufunc)
    assert f is getattr(_ufuncs, name)
    assert f.__name__ == name
    nin = 1 if name in UNARY else 2
    assert (f.nin, f.nout) == (nin, 1)
    assert f.types == [c * nin + "->" + c for c in "efd"]
    doc = f.__doc__
    assert doc.startswith(f"{name}({'x' if nin == 1 else 'x1, x2'}, /, out=None, *, where=True")
    assert "Returns" in doc and "Accuracy: " in doc and "placeholder" not in doc


def test_public_module() -> None:
    assert sorted(ufuncs.__all__) == sorted(UNARY + BINARY)
    assert dir(ufuncs) == ufuncs.__all__


def test_import_xpit_does_not_load_the_extension() -> None:
    code = "import sys, xpit; print('xpit.kernels._ufuncs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY + BINARY)
def test_dtype_kept(name: str, dtype: type) -> None:
    f = getattr(ufuncs, name)
    args = [np.linspace(0.0, 1.0, 5, dtype=dtype)] * f.nin
    assert f(*args).dtype == dtype
    assert type(f(*(a[1] for a in args))) is dtype  # a scalar in, a scalar of that dtype out


def test_integers_follow_numpy_type_resolution() -> None:
    # As for np.exp and scipy.special: the first loop that the input casts to safely.
    assert ufuncs.sigmoid(np.arange(3)).dtype == np.float64
    assert ufuncs.sigmoid(3).dtype == np.float64
    for dtype in (np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint64):
        x = np.ones(3, dtype=dtype)
        assert ufuncs.sigmoid(x).dtype == np.exp(x).dtype  # int8 -> float16, int16 -> float32
    assert ufuncs.bce_with_logits(np.float32(1), 1).dtype == np.float32  # NEP 50: weak int


def test_out_where_broadcasting() -> None:
    x = np.linspace(-5.0, 5.0, 12).reshape(3, 4)
    expected = ufuncs.sigmoid(x)
    out = np.full_like(x, -1.0)
    assert ufuncs.sigmoid(x, out=out) is out
    assert same_bits(out, expected)
    mask = x > 0
    out = np.full_like(x, -1.0)
    ufuncs.sigmoid(x, out=out, where=mask)
    assert same_bits(out[mask], expected[mask]) and np.all(out[~mask] == -1.0)
    y = x.copy()
    ufuncs.sigmoid(y, out=y)  # in place
    assert same_bits(y, expected)
    s, g = np.linspace(0.0, 1.0, 4), np.arange(3.0)[:, None]
    result = ufuncs.sigmoid_backward(s, g)
    assert result.shape == (3, 4)
    assert same_bits(result, ufuncs.sigmoid_backward(*np.broadcast_arrays(s, g)))
    out16 = np.empty(12, dtype=np.float16)
    ufuncs.softplus(x.ravel(), out=out16)  # float64 -> float16 is a same_kind cast
    assert same_bits(out16, ufuncs.softplus(x.ravel()).astype(np.float16))


def test_casting_errors() -> None:
    x = np.ones(3)
    with pytest.raises(TypeError):  # float -> int is not same_kind
        ufuncs.sigmoid(x, out=np.empty(3, dtype=np.int64))
    with pytest.raises(TypeError):
        ufuncs.sigmoid(x, out=np.empty(3, dtype=np.float32), casting="safe")
    with pytest.raises(TypeError):  # no complex loop
        ufuncs.sigmoid(np.ones(3, dtype=np.complex128))
    with pytest.raises(ValueError):
        ufuncs.bce_with_logits(np.ones(3), np.ones(4))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_d_and_empty(dtype: type) -> None:
    x0 = np.array(0.0, dtype=dtype)
    r = ufuncs.sigmoid(x0)
    assert type(r) is dtype and r == 0.5
    out = np.empty((), dtype=dtype)
    assert ufuncs.logit(np.array(0.5, dtype=dtype), out=out) is out and out == 0.0
    for shape in [(0,), (3, 0)]:
        e = ufuncs.softplus(np.empty(shape, dtype=dtype))
        assert e.shape == shape and e.dtype == dtype
        assert ufuncs.bce_with_logits(np.empty(shape, dtype=dtype), 1.0).shape == shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY + BINARY)
def test_strides(name: str, dtype: type) -> None:
    """Strided, reversed, transposed, broadcast and unaligned input give the contiguous bits."""
    f = getattr(ufuncs, name)
    rng = np.random.default_rng(5)
    base = rng.uniform(-30.0, 30.0, 3001) if name != "logit" else rng.random(3001)
    base = base.astype(dtype)
    other = rng.random(3001).astype(dtype)
    views = [base[::3], base[::-1], base[-2::-7], base[:3000].reshape(60, 50).T]
    raw = np.empty(base.nbytes + 1, dtype=np.uint8)[1:]  # misaligned by one byte
    unaligned = raw.view(dtype)
    unaligned[:] = base
    views.append(unaligned)
    for v in views:
        args = (v,) if f.nin == 1 else (v, other[: v.shape[-1]])
        contiguous = [np.ascontiguousarray(a) for a in args]
        assert same_bits(quiet(f, *args), quiet(f, *contiguous))
    if f.nin == 2:  # a scalar broadcast along (stride 0)
        assert same_bits(f(base, dtype(0.25)), f(base, np.full_like(base, 0.25)))


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNARY)
def test_float64_matches_reference(name: str) -> None:
    """Within 2 ULP of xpit's reference formulas (the reference itself is up to ~2 ULP off
    in places where the header's extra precision is not; 3 for logexpm1 and logitexp)."""
    x = inputs(name, np.float64)
    d = ulp_distance(quiet(getattr(ufuncs, name), x), quiet(REFERENCE[name], x))
    assert d.max() <= (3 if name in ("logexpm1", "logitexp") else 2), (d.max(), x[np.argmax(d)])


@pytest.mark.parametrize("name", BINARY)
def test_float64_matches_reference_binary(name: str) -> None:
    a, b = pairs(name, np.float64)
    if name == "bce_with_logits":  # targets outside [0, 1] cancel, in any formula
        a, b = a[(b >= 0) & (b <= 1)], b[(b >= 0) & (b <= 1)]
    if name == "logdiffexp":  # where a + log1mexp(b - a) does not cancel (at its zero the
        # reference is as far off as the condition number says: see test_accuracy.py)
        result = quiet(REFERENCE[name], a, b)
        with np.errstate(all="ignore"):
            keep = ~(np.abs(a) + np.abs(result - a) > 1.5 * np.abs(result))
        a, b = a[keep], b[keep]
    got, want = quiet(getattr(ufuncs, name), a, b), quiet(REFERENCE[name], a, b)
    if name == "sigmoid_backward":  # the same three IEEE operations
        assert equal_or_both_nan(got, want)
    else:
        d = ulp_distance(got, want)  # logdiffexp: the reference's exp and log1p add up
        assert d.max() <= (5 if name == "logdiffexp" else 2), (d.max(), a[np.argmax(d)],
                                                                b[np.argmax(d)])


@pytest.mark.parametrize("name", UNARY)
def test_float32_rounded_once(name: str) -> None:
    f = getattr(ufuncs, name)
    x = inputs(name, np.float32)
    x = np.concatenate([x, np.float32([104.0, 200.0, 745.13318, 745.1333, 800.0, np.inf])])
    with np.errstate(all="ignore"):  # signalling NaNs raise "invalid" in the casts
        got, once = f(x), f(x.astype(np.float64)).astype(np.float32)
    assert ulp_distance(got, once).max() <= 1
    zero = once == 0  # and a zero has the sign of the float64 result's (log_sigmoid's tail)
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(once[zero]))


@pytest.mark.parametrize("name", UNARY)
def test_float16_rounded_once_exhaustive(name: str) -> None:
    """All 65,536 float16 inputs: exactly the float64 result rounded once by NumPy's cast
    (this checks the loops' own half <-> double conversions)."""
    f = getattr(ufuncs, name)
    x = inputs(name, np.float16)
    with np.errstate(all="ignore"):
        assert equal_or_both_nan(f(x), f(x.astype(np.float64)).astype(np.float16))


def assert_within_one_ulp_of_once(got: np.ndarray, once: np.ndarray, rate: float) -> None:
    """float32's loss kernels against the float64 kernel's result rounded once: NaN where it
    is NaN, a zero of its sign where it is zero, within 1 ULP everywhere, and the same bits
    but for at most a fraction ``rate`` of the elements."""
    nan = np.isnan(once)
    assert np.array_equal(np.isnan(got), nan)
    got, once = got[~nan], once[~nan]
    zero = once == 0
    np.testing.assert_array_equal(got[zero], 0)
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(once[zero]))
    d = ulp_distance(got, once)
    assert d.max() <= 1, (d.max(), got[np.argmax(d)], once[np.argmax(d)])
    assert np.mean(d > 0) <= rate, np.mean(d > 0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("name", BINARY)
def test_binary_rounded_once(name: str, dtype: type) -> None:
    """Two inputs go through the float64 function and are rounded once: exact, including
    float16 results in the subnormal range and at the overflow threshold. (The loss in
    float32 has a kernel of its own, with these bits: see the test below.)"""
    f = getattr(ufuncs, name)
    a, b = pairs(name, dtype)
    with np.errstate(all="ignore"):
        got, once = f(a, b), f(a.astype(np.float64), b.astype(np.float64)).astype(dtype)
    assert equal_or_both_nan(got, once)


@pytest.mark.parametrize("name", ["bce_with_logits", *PRIVATE])
def test_float32_loss_kernels_within_one_ulp(name: str) -> None:
    """float32's own loss kernels (float64 arithmetic without double-double steps), on random
    bit patterns and on logits anywhere with targets in [0, 1] (weights in [0, 20], and one
    weight for all): the loss is the float64 kernel's result rounded once on every one of
    these 10^6 inputs (it could differ only within 2^-26 ULP of a rounding boundary); the
    gradients are within 1 ULP of it, with its bits but for a few in 10^5."""
    f = getattr(_ufuncs, name)
    z, t = pairs("bce_with_logits", np.float32)
    weights = [np.random.default_rng(8).uniform(0.0, 20.0, z.size).astype(np.float32),
               np.float32(3.0)]
    inside = (t >= 0) & (t <= 1)
    for w in weights if f.nin == 3 else [None]:
        args = (z, t) if w is None else (z, t, w)
        with np.errstate(all="ignore"):
            got = f(*args)
            once = f(*(np.asarray(a, dtype=np.float64) for a in args)).astype(np.float32)
        if not name.endswith("grad"):
            assert equal_or_both_nan(got, once)
        assert_within_one_ulp_of_once(got[inside], once[inside], rate=1e-4)
        if name == "bce_with_logits_pos":  # targets outside [0, 1]: the terms may cancel
            assert_within_its_terms(got[~inside], once[~inside],
                                    *(np.broadcast_to(a, z.shape)[~inside] for a in args))


def assert_within_its_terms(got: np.ndarray, once: np.ndarray, z: np.ndarray, t: np.ndarray,
                            w: np.ndarray) -> None:
    """The loss where its two terms |z| c and ((1 - t) + w t) log1p(exp(-|z|)) can cancel:
    within 1 ULP of ``once`` plus 2^-48 of the larger term (the kernel's bound is 2^-50)."""
    with np.errstate(all="ignore"):  # signalling NaNs raise "invalid" in the casts
        z, t, w = (a.astype(np.float64) for a in (z, t, w))
        terms = np.maximum(np.abs(z) * np.maximum(np.abs(1 - t), np.abs(w * t)),
                           np.abs((1 - t) + w * t) * np.log1p(np.exp(-np.abs(z))))
        error = np.abs(got.astype(np.float64) - once.astype(np.float64))
        bound = np.spacing(np.abs(once)).astype(np.float64) + 2.0**-48 * terms
    finite = np.isfinite(once)
    assert np.array_equal(np.isnan(got), np.isnan(once))
    np.testing.assert_array_equal(got[~finite & ~np.isnan(once)], once[~finite & ~np.isnan(once)])
    assert np.all(error[finite] <= bound[finite]), np.max(error[finite] / bound[finite])


@pytest.mark.parametrize("name", ["bce_with_logits_grad", "bce_with_logits_pos_grad"])
def test_float32_loss_gradient_near_its_zero(name: str) -> None:
    """Where the gradient's two terms (1 - t) sigmoid(z) and w t sigmoid(-z) cancel (soft
    targets, logits at and up to 40 floats from log(w t / (1 - t))), no formula is relative;
    float32's kernel keeps the float64 one's digits there: within 1 ULP of 60-digit mpmath
    plus 2^-52 of the larger term (float64's own kernel, rounded, is 2^-52.7 past 1 ULP;
    float32's own exp, 2^-34, would be 12 ULP off)."""
    import mpmath

    rng = np.random.default_rng(8)
    t = rng.uniform(0.0, 1.0, 2000).astype(np.float32)
    w = rng.uniform(0.05, 20.0, t.size).astype(np.float32) if name.endswith("pos_grad") else (
        np.ones_like(t))
    z = np.log(w.astype(np.float64) * t / (1 - t.astype(np.float64))).astype(np.float32)
    z = z + rng.integers(-40, 41, z.size).astype(np.float32) * np.spacing(z)
    got = getattr(_ufuncs, name)(z, t, w) if name.endswith("pos_grad") else (
        _ufuncs.bce_with_logits_grad(z, t))
    with mpmath.workdps(60):
        for zi, ti, wi, gi in zip(z.tolist(), t.tolist(), w.tolist(), got.tolist(), strict=True):
            s = 1 / (1 + mpmath.exp(-mpmath.mpf(zi)))
            above, below = (1 - mpmath.mpf(ti)) * s, wi * mpmath.mpf(ti) * (1 - s)
            exact = above - below
            bound = float(np.spacing(np.abs(np.float32(float(exact))))) + 2.0**-52 * float(
                max(above, below))
            assert float(abs(mpmath.mpf(gi) - exact)) <= bound, (zi, ti, wi, gi, float(exact))


def test_special_values() -> None:
    inf, nan = np.inf, np.nan
    x = np.array([-inf, -1000.0, 0.0, 1000.0, inf, nan])
    assert np.array_equal(ufuncs.sigmoid(x), [0, 0, 0.5, 1, 1, nan], equal_nan=True)
    assert np.array_equal(ufuncs.sigmoid_grad(x), [0, 0, 0.25, 0, 0, nan], equal_nan=True)
    assert np.array_equal(ufuncs.softplus(x), [0, 0, np.log(2), 1000, inf, nan],
                          equal_nan=True)
    assert np.array_equal(ufuncs.log_sigmoid(x), [-inf, -1000, -np.log(2), 0, 0, nan],
                          equal_nan=True)
    p = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, nan, -inf, inf])
    assert np.array_equal(ufuncs.logit(p), [nan, -inf, 0, inf, nan, nan, nan, nan],
                          equal_nan=True)
    z = np.array([inf, -inf, inf, 1000.0, -1000.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    assert np.array_equal(ufuncs.bce_with_logits(z, t), [0, 0, inf, 0, 1000])
    x = np.array([-inf, -1000.0, -0.0, 0.0, 5e-324, 1.0, inf, nan])
    got = ufuncs.log1mexp(x)
    assert np.array_equal(got, [-0.0, -0.0, -inf, -inf, nan, nan, nan, nan], equal_nan=True)
    assert np.all(np.signbit(got[:2]))  # -exp(x) rounded: a negative zero
    assert np.array_equal(ufuncs.logitexp(x), [-inf, -1000, inf, inf, nan, nan, nan, nan],
                          equal_nan=True)
    assert np.array_equal(ufuncs.logexpm1(-x), [inf, 1000, -inf, -inf, nan, nan, nan, nan],
                          equal_nan=True)
    a = np.array([0.0, -inf, inf, 1.0, 1.0, inf, 2.0, nan, 1e308])
    b = np.array([-inf, -inf, inf, 1.0, 2.0, 1.0, nan, 0.0, -1e308])
    assert np.array_equal(ufuncs.logdiffexp(a, b), [0, -inf, nan, -inf, nan, inf, nan, nan, 1e308],
                          equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*VJP, "logit_vjp"])
def test_vjp_loops(name: str, dtype: type) -> None:
    """``name(x, g)`` is ``g * f'(x)`` in one pass: for sigmoid, log_sigmoid and softplus exactly
    the two operations' bits (the derivative rounded to the dtype, then the product; float16:
    one rounding from float64), for logit ``g / p / (1 - p)`` (float32: in float64, rounded
    once); any strides, with the other ufuncs' dtypes."""
    f = getattr(_ufuncs, name)
    assert isinstance(f, np.ufunc) and f.types == ["ee->e", "ff->f", "dd->d"]
    assert f.__doc__.startswith(f"{name}(x1, x2, /, out=None")
    x, g = pairs(name, dtype)
    got = quiet(f, x, g)
    with np.errstate(all="ignore"):
        if name == "logit_vjp":
            wide = g.astype(np.float64) / x.astype(np.float64) / (1.0 - x.astype(np.float64))
            inside = (x >= 0) & (x <= 1)  # NaN outside [0, 1], as logit
            want = np.where(inside, wide, np.nan).astype(dtype)
        elif dtype is np.float16:
            derivative = getattr(ufuncs, VJP[name])(-x.astype(np.float64) if name.startswith(
                "log_") else x.astype(np.float64))
            want = (g.astype(np.float64) * derivative).astype(dtype)
        else:
            want = g * getattr(ufuncs, VJP[name])(-x if name.startswith("log_") else x)
    assert equal_or_both_nan(got, want)
    assert equal_or_both_nan(quiet(f, x[::-3], g[::-3]), got[::-3])  # NaNs: operand order
    assert equal_or_both_nan(quiet(f, x, dtype(2.0)), quiet(f, x, np.full_like(x, 2.0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_a_positive_class_weight(dtype: type) -> None:
    """The three-input loss (PyTorch's pos_weight): with weight 1 the bits of the two-input one;
    float64 near the reference formula (against mpmath: the test below); float16 rounded
    once from float64, float32 within 1 ULP of that; infinite logits with agreeing targets
    give 0; any strides and broadcasting."""
    f = _ufuncs.bce_with_logits_pos
    assert isinstance(f, np.ufunc) and f.types == ["eee->e", "fff->f", "ddd->d"]
    assert f.__doc__.startswith("bce_with_logits_pos(x1, x2, x3, /, out=None")
    z, t = pairs("bce_with_logits", dtype)
    inside = (t >= 0) & (t <= 1)  # targets outside [0, 1] cancel, in any formula
    z, t = z[inside], t[inside]
    w = np.random.default_rng(2).uniform(0.0, 20.0, z.size).astype(dtype)
    assert equal_or_both_nan(quiet(f, z, t, dtype(1.0)), quiet(ufuncs.bce_with_logits, z, t))
    got = quiet(f, z, t, w)
    if dtype is np.float64:
        want = quiet(lambda *a: array_api.binary_cross_entropy_with_logits(
            np, *a[:2], "none", pos_weight=a[2]), z, t, w)
        d = ulp_distance(got, want)  # the reference rounds lw and lw * L apart: up to ~3 ULP
        assert d.max() <= 4, (d.max(), z[np.argmax(d)], t[np.argmax(d)], w[np.argmax(d)])
    else:
        with np.errstate(all="ignore"):  # signalling NaNs raise "invalid" in the casts
            once = f(*(a.astype(np.float64) for a in (z, t, w))).astype(dtype)
        if dtype is np.float32:  # its own kernel: see test_float32_loss_kernels_within_one_ulp
            assert_within_one_ulp_of_once(got, once, rate=1e-4)
        else:
            assert equal_or_both_nan(got, once)
    assert equal_or_both_nan(quiet(f, z[::-2], t[::-2], w[::-2]), got[::-2])
    block = quiet(f, z[:600].reshape(200, 3), t[:600].reshape(200, 3), w[:3])
    assert equal_or_both_nan(block, quiet(f, z[:600], t[:600], np.tile(w[:3], 200)).reshape(
        200, 3))
    inf = np.array([np.inf, -np.inf, np.inf, -np.inf], dtype=dtype)
    assert f(inf, np.array([1, 0, 0, 1], dtype=dtype), dtype(3.0)).tolist() == [0, 0, np.inf,
                                                                                  np.inf]
    # an infinite weight on a positive target: an infinite loss (not NaN) in every dtype
    assert f(np.array([0.0, -3.0, 5.0], dtype=dtype), dtype(1.0), dtype(np.inf)).tolist() == [
        np.inf] * 3


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_gradient_kernels_are_exact_in_the_tails(dtype: type) -> None:
    """d/dz of the loss, (1 - t) sigmoid(z) - w t sigmoid(-z), computed in float64 and rounded
    once: float16/float32 within 1 ULP, float64 within 2 (a sigmoid and two products) of
    60-digit mpmath where the result is not near a cancellation, including z = 20 and 40 with
    t = 1, where sigmoid(z) - t is 0 in float32; w = 1 gives the two-input kernel's bits."""
    import mpmath

    z = np.array([-40.0, -20.0, -3.0, 0.0, 0.5, 3.0, 20.0, 40.0]).astype(dtype)
    for t_value, w_value in ((1.0, 1.0), (0.0, 1.0), (1.0, 3.0), (0.25, 0.5)):
        t, w = np.full_like(z, t_value), np.full_like(z, w_value)
        got = _ufuncs.bce_with_logits_pos_grad(z, t, w)
        assert got.dtype == dtype
        if w_value == 1.0:
            assert same_bits(_ufuncs.bce_with_logits_grad(z, t), got)
        with mpmath.workdps(60):
            for zi, gi in zip(z.tolist(), got.tolist(), strict=True):
                s = 1 / (1 + mpmath.exp(-mpmath.mpf(zi)))
                exact = (1 - mpmath.mpf(t_value)) * s - w_value * t_value * (1 - s)
                if exact == 0 or abs(exact) < np.finfo(dtype).smallest_normal:
                    continue
                bound = (2 if dtype is np.float64 else 1) * float(
                    np.spacing(np.abs(dtype(float(exact)))))
                assert float(abs(mpmath.mpf(gi) - exact)) <= bound, (zi, t_value, w_value, gi)


def test_bce_with_a_small_positive_class_weight_against_mpmath() -> None:
    """(1 - t) + w t, not 1 + (w - 1) t, which cancels for w << 1 (1e-8 would be off by 3e7
    ULP): within 1.5 ULP of 200-bit mpmath for tiny weights, targets at and near 1 (the
    linear term |z| w t is rounded before the sum: 1.2 ULP at worst seen)."""
    import mpmath

    rng = np.random.default_rng(6)
    z = np.concatenate([rng.normal(0, 5, 300), [0.0, 2.0, -1.5, 40.0, -40.0]])
    t = np.where(rng.random(z.size) < 0.5, 1.0, 1.0 - rng.uniform(0, 1e-5, z.size))
    w = 10.0 ** rng.uniform(-12, 1, z.size)
    got = _ufuncs.bce_with_logits_pos(z, t, w)
    with mpmath.workprec(200):
        for zi, ti, wi, gi in zip(z, t, w, got, strict=True):
            Z, T, W = mpmath.mpf(zi), mpmath.mpf(ti), mpmath.mpf(wi)
            exact = W * T * mpmath.log1p(mpmath.exp(-Z)) + (1 - T) * mpmath.log1p(mpmath.exp(Z))
            ulps = abs(mpmath.mpf(gi) - exact) / mpmath.mpf(np.spacing(float(exact)))
            assert ulps <= 1.5, (zi, ti, wi, gi, float(exact), float(ulps))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY + BINARY + [*VJP, "logit_vjp", *PRIVATE])
def test_no_floating_point_warnings(name: str, dtype: type) -> None:
    f = getattr(_ufuncs, name)
    with np.errstate(all="ignore"):
        x = np.array([*SPECIALS, -2.0, 3.0, 1e-310, -1e-310]).astype(dtype)
        positive = x > 0
    with np.errstate(all="raise"):
        if f.nin == 1:
            f(x)
            f(x[::-1].copy(), where=positive, out=np.zeros_like(x))
            f(x[::2])
        elif f.nin == 3:
            f(x, x[::-1], x)
            f(x[:, None], x[None, :], dtype(2.0))
        else:
            f(x, x[::-1])
            f(x[:, None], x[None, :])
            f(x, dtype(0.5))


# --- CPU paths ------------------------------------------------------------------------------


def test_cpu_path_reporting(cpu_path: Callable[[str], None]) -> None:
    paths = _ufuncs._available_paths()
    assert paths[0] == "baseline" and _ufuncs._get_path() == paths[-1]  # the best is chosen
    assert isinstance(_ufuncs.cpu_path, str) and _ufuncs.cpu_path.startswith(paths[-1])
    cpu_path("baseline")
    assert _ufuncs._get_path() == "baseline" and _ufuncs.cpu_path.startswith("baseline")
    with pytest.raises(ValueError, match="Invalid CPU path"):
        cpu_path("avx9000")
    assert _ufuncs._get_path() == "baseline"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY + BINARY + [*VJP, "logit_vjp", *PRIVATE])
def test_cpu_paths_same_bits(name: str, dtype: type, cpu_path: Callable[[str], None]) -> None:
    """Every CPU path available here gives the baseline's bits (10^6 inputs, all float16).

    Except in NaN payloads and NaN signs: IEEE leaves open which operand's NaN an operation
    returns, and the compiler may swap the operands of + and *, differently per variant.
    """
    paths = _ufuncs._available_paths()
    if len(paths) == 1:
        pytest.skip(f"only the {paths[0]} path exists on this machine")
    f = getattr(_ufuncs, name)
    args = (inputs(name, dtype),) if f.nin == 1 else pairs(name, dtype)
    if f.nin == 2 and name.startswith("bce"):
        args = pairs("bce_with_logits", dtype)
    if f.nin == 3:  # logits, targets and a positive-class weight
        args = (*pairs("bce_with_logits", dtype), pairs("sigmoid_backward", dtype)[1])
    results = {}
    for path in paths:
        cpu_path(path)
        results[path] = quiet(f, *args)
    for path in paths[1:]:
        assert equal_or_both_nan(results[path], results["baseline"]), path


# --- threads ---------------------------------------------------------------------------------


def test_gil_released() -> None:
    """The main thread runs Python while another thread is inside a ufunc call: NumPy drops
    the GIL around loops that need no Python objects. No timing thresholds: with the GIL held
    the main thread could only run at the edges of a call (around the timestamps), never in
    the middle half of it."""
    x = np.linspace(-20.0, 20.0, 2_000_000)
    out = np.empty_like(x)
    calls: list[tuple[float, float]] = []
    ticks: list[float] = []
    started = threading.Event()

    def work() -> None:
        started.set()
        for _ in range(20):
            t0 = time.perf_counter()
            ufuncs.softplus(x, out=out)
            calls.append((t0, time.perf_counter()))

    worker = threading.Thread(target=work)
    worker.start()
    started.wait()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    tick = np.array(ticks)
    middles = [(t0 + (t1 - t0) / 4, t1 - (t1 - t0) / 4) for t0, t1 in calls]
    busy = sum(bool(np.any((tick > lo) & (tick < hi))) for lo, hi in middles)
    assert busy >= len(calls) // 2, f"the main thread ran inside only {busy} of {len(calls)} calls"


# --- the two-result loop and the entry for raw memory (PyTorch's CPU path) --------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_with_grad(dtype: type, cpu_path: Callable[[str], None]) -> None:
    """``(sigmoid(x), sigmoid_grad(x))`` in one loop (float32: one shared exp): the bits of the
    two ufuncs on every CPU path, any strides, no floating-point warnings."""
    f = _ufuncs.sigmoid_with_grad
    assert (f.nin, f.nout) == (1, 2) and f.types == ["e->ee", "f->ff", "d->dd"]
    x = inputs("sigmoid", dtype, n=10**5)
    for path in _ufuncs._available_paths():
        cpu_path(path)
        with np.errstate(all="raise"):
            s, d = f(x)
            s2, d2 = f(x[::-3])
        assert equal_or_both_nan(s, ufuncs.sigmoid(x))
        assert equal_or_both_nan(d, ufuncs.sigmoid_grad(x))
        assert equal_or_both_nan(s2, s[::-3]) and equal_or_both_nan(d2, d[::-3])


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY + BINARY + [*VJP, "logit_vjp", *PRIVATE,
                                  "sigmoid_with_grad"])
def test_contiguous_entry(name: str, dtype: type) -> None:
    """``_contiguous`` (raw memory, chunks over the extension's threads) gives the ufunc's
    bits for every loop, chunk length and thread count, a scalar input read as one element."""
    f = getattr(_ufuncs, name)
    n = 10**4 + 3
    if f.nin == 1:
        args = (inputs(name, dtype, n=n)[:n].copy(),)
    else:
        args = pairs("bce_with_logits" if name.startswith("bce") else name, dtype, n=2 * n)
        args = tuple(a[:n].copy() for a in args) + ((args[1][:n].copy(),) if f.nin == 3 else ())
    n = args[0].size
    want = quiet(f, *args)
    want = want if isinstance(want, tuple) else (want,)
    code = np.dtype(dtype).char
    for chunk, threads in [(n, 1), (1000, 1), (1000, 2), (999, 3), (64, 8)]:
        outs = tuple(np.full(n, 7, dtype) for _ in want)
        _ufuncs._contiguous(name, code, n, chunk, threads, 0,
                            *map(_address, args), *map(_address, outs))
        for got, expected in zip(outs, want, strict=True):
            assert equal_or_both_nan(got, expected), (chunk, threads)
    if f.nin > 1:  # the last input as one element, repeated
        scalar = args[-1][:1].copy()
        expected = quiet(f, *args[:-1], scalar)
        out = np.empty(n, dtype)
        _ufuncs._contiguous(name, code, n, 1000, 2, 1 << (f.nin - 1),
                            *map(_address, args[:-1]), _address(scalar), _address(out))
        assert equal_or_both_nan(out, expected)


def test_contiguous_entry_checks_its_arguments() -> None:
    x = np.zeros(4)
    a = _address(x)
    cases = [
        (("sigmoid", "d", 4, 4, 1, 0), TypeError, "_contiguous"),  # no address at all
        (("nope", "d", 4, 4, 1, 0, a, a), ValueError, "no loop 'nope'"),
        (("sigmoid", "q", 4, 4, 1, 0, a, a), ValueError, "for typecode 'q'"),
        (("sigmoid", "d", 4, 4, 1, 0, a), ValueError, "sigmoid takes 2 addresses"),
        (("sigmoid", "d", 4, 4, 1, 0, a, a, a), ValueError, "sigmoid takes 2 addresses"),
        (("sigmoid", "d", -1, 4, 1, 0, a, a), ValueError, "n >= 0"),
        (("sigmoid", "d", 4, 0, 1, 0, a, a), ValueError, "chunk >= 1"),
        (("sigmoid", "d", 4, 4, 0, 0, a, a), ValueError, "threads >= 1"),
        (("sigmoid", "d", 4, 4, 1, 2, a, a), ValueError, "scalars among its inputs"),
        (("sigmoid", "d", 4, 4, 1, 0, 0, a), ValueError, "a null address"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            _ufuncs._contiguous(*args)
    _ufuncs._contiguous("sigmoid", "d", 0, 4, 2, 0, a, a)  # nothing to do, nothing touched
    assert not x.any()


_FORK_CHECK = """
import os, sys
import numpy as np
from xpit.kernels import _ufuncs

x = np.linspace(-30.0, 30.0, 10**5)
want = _ufuncs.sigmoid(x)

def threaded():
    out = np.empty_like(x)
    addresses = [a.__array_interface__["data"][0] for a in (x, out)]
    _ufuncs._contiguous("sigmoid", "d", x.size, 1000, 2, 0, *addresses)
    return np.array_equal(out, want)

def helpers():
    if not sys.platform.startswith("linux"):
        return 1
    tasks = os.listdir("/proc/self/task")
    names = (open(f"/proc/self/task/{t}/comm").read().strip() for t in tasks)
    return sum(name == "xpit-helper" for name in names)

assert threaded() and helpers() == 1  # the parent's helper thread exists now
pid = os.fork()
if pid == 0:  # the child starts without it, and starts its own
    before = helpers()
    os._exit(0 if before == 0 and threaded() and helpers() == 1 else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_contiguous_entry_after_fork() -> None:
    """A forked child (a DataLoader worker ...) has none of its parent's helper threads: it
    starts its own, with fresh locks, and its threaded calls give the parent's bits within
    the timeout. In a process of its own: this one holds JAX's and PyTorch's threads, which
    fork does not suit."""
    done = subprocess.run([sys.executable, "-c", _FORK_CHECK], timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


_THREAD_CHECK = """
import os, sys
import numpy as np
from xpit.kernels import _ufuncs

def helpers():  # thread id -> nanoseconds on a CPU, of each helper
    times = {}
    for t in os.listdir("/proc/self/task"):
        if open(f"/proc/self/task/{t}/comm").read().strip() == "xpit-helper":
            times[t] = int(open(f"/proc/self/task/{t}/schedstat").read().split()[0])
    return times

def run(x, threads):
    out = np.empty_like(x)
    addresses = [a.__array_interface__["data"][0] for a in (x, out)]
    _ufuncs._contiguous("sigmoid", "d", x.size, 1 << 15, threads, 0, *addresses)
    return out

x = np.linspace(-30.0, 30.0, 1 << 22)
want = _ufuncs.sigmoid(x)
run(x, 4)
assert len(helpers()) == 3
for _ in range(5):  # in each call, one helper works (more than 2 ms on a CPU), not three
    before = helpers()
    assert np.array_equal(run(x, 2), want)
    after = helpers()
    worked = [t for t in after if after[t] - before[t] > 2_000_000]
    assert len(worked) <= 1, (before, after)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_contiguous_entry_keeps_to_its_thread_count() -> None:
    """A call asking for 2 threads uses one helper, though an earlier call started three: the
    others stay asleep (the run time the kernel counts for each helper thread says so)."""
    done = subprocess.run([sys.executable, "-c", _THREAD_CHECK], timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


_FTZ_CHECK = """
import numpy as np
import torch
from xpit.kernels import _ufuncs

x = np.full(1 << 22, -730.0)  # sigmoid(-730) is 5.6e-318, a subnormal

def run(threads):
    out = np.empty_like(x)
    addresses = [a.__array_interface__["data"][0] for a in (x, out)]
    _ufuncs._contiguous("sigmoid", "d", x.size, 1 << 15, threads, 0, *addresses)
    return out

torch.set_flush_denormal(True)   # the helpers start in this mode ...
run(2)
torch.set_flush_denormal(False)  # ... and must follow the caller's, not their own
assert np.array_equal(run(2), _ufuncs.sigmoid(x)) and run(2)[0] > 0
torch.set_flush_denormal(True)
flushed = _ufuncs.sigmoid(x)
assert np.array_equal(run(2), flushed) and not flushed.any()
"""


def test_helpers_compute_in_the_callers_floating_point_mode() -> None:
    """Flush-to-zero (``torch.set_flush_denormal``) and rounding are per thread: the helpers
    run each chunk in the mode of the thread that called, so which thread took a chunk never
    shows in the bits (it did when they kept the mode they were started in)."""
    pytest.importorskip("torch")
    if not _ufuncs._threads:
        pytest.skip("no helper threads on this platform")
    done = subprocess.run([sys.executable, "-c", _FTZ_CHECK], timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
