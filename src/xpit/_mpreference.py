"""High-precision references (mpmath) and ULP measurement: the accuracy tests and
``xpit bench --accuracy`` use this. mpmath is imported only when this module is.

Recipe: each input is an exact binary float, converted to ``mpmath.mpf`` without
rounding; the function is evaluated at 128 bits (75 more than float64 has, far
more than any cancellation below costs); the exact value is stored as ``hi``,
its float64 rounding, and ``lo``, the rest ``exact - hi`` in float64 ULPs of
``hi``, so that float64 results are measured to a small fraction of an ULP, not
to the reference's own half-ULP rounding, and that also where the rest is far
below the smallest subnormal (a result near 1e-308 whose rest would underflow).

Inputs are generated here from fixed seeds and fixed threshold points; nothing
is read from disk, so the data and the recipe sit side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np

PRECISION_BITS = 128


def _exp_neg(x: mpmath.mpf) -> mpmath.mpf:
    return mpmath.exp(-x)


MP_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "sigmoid": lambda x: 1 / (1 + _exp_neg(x)),
    "sigmoid_grad": lambda x: _exp_neg(x) / (1 + _exp_neg(x)) ** 2,
    "log_sigmoid": lambda x: -mpmath.log1p(_exp_neg(x)),
    "softplus": lambda x: mpmath.log1p(mpmath.exp(x)),
    "logit": lambda p: mpmath.log(p / (1 - p)),
    "log1mexp": lambda x: _log1mexp(x),
    "logexpm1": lambda y: _logexpm1(y),
    "logitexp": lambda x: -_logexpm1(-x),
}
# Two-argument functions: logdiffexp(a, b) = a + log1mexp(b - a), b - a exact.
MP_FUNCTIONS2: dict[str, Callable[[Any, Any], Any]] = {
    "logdiffexp": lambda a, b: a + _log1mexp(mpmath.fsub(b, a, exact=True)),
}


def _log1mexp(x: mpmath.mpf) -> mpmath.mpf:
    # log(1 - e^x): expm1 near 0 and log1p in the tail, each free of cancellation at 128 bits
    return mpmath.log(-mpmath.expm1(x)) if x > -1 else mpmath.log1p(-mpmath.exp(x))


def _logexpm1(y: mpmath.mpf) -> mpmath.mpf:
    # log(e^y - 1); near its zero y = ln 2 the 128 bits leave 70 of them for the result
    return mpmath.log(mpmath.expm1(y)) if y <= 1 else y + mpmath.log1p(-mpmath.exp(-y))


def _expm1_neg_inv(x: mpmath.mpf) -> mpmath.mpf:
    return -1 / mpmath.expm1(-x)  # d/dx log1mexp(x) and d/dx logexpm1(x)


def _sigmoid_grad(x: mpmath.mpf) -> mpmath.mpf:
    return _exp_neg(x) / (1 + _exp_neg(x)) ** 2


# The first and second derivatives, exactly (for the PyTorch and JAX gradient tests);
# 1 - 2 sigmoid(x) is written tanh(-x / 2), without cancellation near 0.
MP_DERIVATIVES = {
    "sigmoid": (_sigmoid_grad, lambda x: _sigmoid_grad(x) * mpmath.tanh(-x / 2)),
    "sigmoid_grad": (lambda x: _sigmoid_grad(x) * mpmath.tanh(-x / 2),
                     lambda x: _sigmoid_grad(x) * (1.5 * mpmath.tanh(x / 2) ** 2 - 0.5)),
    "log_sigmoid": (lambda x: 1 / (1 + mpmath.exp(x)), lambda x: -_sigmoid_grad(x)),
    "softplus": (lambda x: 1 / (1 + _exp_neg(x)), _sigmoid_grad),
    "logit": (lambda p: 1 / (p * (1 - p)), lambda p: (2 * p - 1) / (p * (1 - p)) ** 2),
    # log1mexp' = logexpm1' = -1 / expm1(-x); its derivative is -e^-x / expm1(-x)^2
    "log1mexp": (_expm1_neg_inv, lambda x: -mpmath.exp(-x) / mpmath.expm1(-x) ** 2),
    "logexpm1": (_expm1_neg_inv, lambda x: -mpmath.exp(-x) / mpmath.expm1(-x) ** 2),
    # logitexp(x) = -logexpm1(-x): logitexp' = -1 / expm1(x), logitexp'' = e^x / expm1(x)^2
    "logitexp": (lambda x: -1 / mpmath.expm1(x), lambda x: mpmath.exp(x) / mpmath.expm1(x) ** 2),
}


# Where the PyTorch and JAX tests check each function's derivatives against MP_DERIVATIVES:
# both tails, near 0 (logit: near 0, 1/2 and 1; the log-space members: both ends of their
# domain, x <= 0, mirrored for logexpm1). The float32 points keep every value normal.
_POINTS = [0.0, 1e-300, -1e-300, 1.0, -1.0, 30.0, -30.0, 700.0, -700.0, 1e4, -1e4]
_POINTS32 = [0.0, 1e-30, -1e-30, 1.0, -1.0, 30.0, -30.0, 80.0, -80.0, 1e4, -1e4]
_PROBS = [1e-300, 1e-16, 0.25, 0.5, 0.75, 1 - 1e-16]
_PROBS32 = [1e-30, 1e-7, 0.25, 0.5, 0.75, 1 - 2**-24]
_LOGS = [-1e-300, -1e-10, -0.5, -np.log(2.0), -30.0, -700.0, -1e4]
_LOGS32 = [-1e-30, -1e-7, -0.5, -float(np.float32(np.log(2.0))), -30.0, -80.0, -1e4]


def derivative_points(name: str, single: bool = False) -> list[float]:
    """The points where a function's derivatives are checked (``single``: float32's)."""
    if name == "logit":
        return _PROBS32 if single else _PROBS
    if name in ("log1mexp", "logitexp", "logexpm1"):
        points = _LOGS32 if single else _LOGS
        return [-v for v in points] if name == "logexpm1" else points
    return _POINTS32 if single else _POINTS


def _special(name: str, x: float) -> float | None:
    """Values at inf, NaN, outside a domain and far out in a tail, where mpmath is not asked."""
    if np.isnan(x):
        return np.nan
    if name == "logit":
        if x < 0 or x > 1:
            return np.nan
        if x == 0:
            return -np.inf
        if x == 1:
            return np.inf
        return None
    if name in ("log1mexp", "logitexp", "logexpm1"):
        y = -x if name == "logexpm1" else x  # each is a function of y <= 0
        if y > 0:
            return np.nan
        if y == 0:
            return np.inf if name == "logitexp" else -np.inf
        if y < -1000:  # e^y is far below the smallest subnormal: -0.0, y or -y exactly
            return {"log1mexp": -0.0, "logitexp": x, "logexpm1": x}[name]
        return None
    if np.isinf(x):
        limits = {"sigmoid": (0.0, 1.0), "sigmoid_grad": (0.0, 0.0),
                  "log_sigmoid": (-np.inf, 0.0), "softplus": (0.0, np.inf)}
        return limits[name][x > 0]
    return None


def _special2(name: str, a: float, b: float) -> float | None:
    """logdiffexp's values where mpmath is not asked."""
    if np.isnan(a) or np.isnan(b) or a < b or a == b == np.inf:
        return np.nan
    if a == b:
        return -np.inf
    if b == -np.inf or a == np.inf or b - a < -1000:  # e^b / e^a below any subnormal
        return a
    return None


def reference(name: str, x: np.ndarray, y: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``name(x)`` (or ``name(x, y)``, broadcast) as ``(hi, lo)``: its float64
    rounding and the rest in float64 ULPs of ``hi`` (see the module docstring); the inputs
    are converted to float64."""
    with np.errstate(invalid="ignore"):  # signalling NaNs become quiet ones
        if y is not None:
            x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
            second = y.ravel().tolist()
        flat = np.asarray(x, dtype=np.float64).ravel()
    hi = np.empty_like(flat)
    lo = np.zeros_like(flat)
    with mpmath.workprec(PRECISION_BITS):
        for i, v in enumerate(flat.tolist()):
            if y is None:
                special = _special(name, v)
            else:
                special = _special2(name, v, second[i])
            if special is not None:
                hi[i] = special
                continue
            exact = (MP_FUNCTIONS[name](mpmath.mpf(v)) if y is None
                     else MP_FUNCTIONS2[name](mpmath.mpf(v), mpmath.mpf(second[i])))
            hi[i] = float(exact)
            if np.isfinite(hi[i]):
                lo[i] = float((exact - mpmath.mpf(hi[i])) / mpmath.mpf(_ulp64(hi[i])))
    return hi.reshape(np.shape(x)), lo.reshape(np.shape(x))


def _ulp64(value: float) -> float:
    """The float64 ULP at ``value`` (the subnormal spacing below the smallest normal)."""
    return float(np.spacing(np.float64(abs(value)))) if value else 2.0**-1074


# (mantissa bits, smallest normal) for the dtypes NumPy has no finfo for.
_BFLOAT16 = (7, 2.0**-126)


def ulp_error(actual: np.ndarray, hi: np.ndarray, lo: np.ndarray, dtype: np.dtype | str
              ) -> np.ndarray:
    """``|actual - exact|`` in units of the last place of ``dtype`` at the exact value.

    Infinities, zeros and NaNs of the reference must be matched exactly (error 0)
    or count as infinitely wrong. ``dtype`` may be ``"bfloat16"``. The ULP below the
    smallest normal is the
    subnormal spacing, so a flushed-to-zero subnormal shows up as a large error.
    """
    if dtype == "bfloat16":
        nmant, smallest_normal = _BFLOAT16
    else:
        finfo = np.finfo(dtype)
        nmant, smallest_normal = finfo.nmant, float(finfo.smallest_normal)
    with np.errstate(all="ignore"):
        a = np.asarray(actual, dtype=np.float64)
        magnitude = np.abs(hi)
        exponent = np.floor(np.log2(np.maximum(magnitude, smallest_normal)))
        ulp = np.exp2(exponent - nmant)
        # The float64 ULP of hi relative to this dtype's: lo is in float64 ULPs.
        exponent64 = np.floor(np.log2(np.maximum(magnitude, 2.0**-1022)))
        ratio = np.exp2((exponent64 - 52) - (exponent - nmant))
        err = np.abs((a - hi) / ulp - lo * ratio)
    exact_only = ~np.isfinite(hi) | (hi == 0)
    matched = (a == hi) | (np.isnan(a) & np.isnan(hi))
    err = np.where(exact_only, np.where(matched, 0.0, np.inf), err)
    return np.where(np.isnan(err), np.inf, err)


def _thresholds(dtype: np.dtype) -> np.ndarray:
    """Points where the formulas change branch or the result leaves the normal range."""
    base = [0.0, -0.0, 1e-300, -1e-300, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0,
            16.0, -16.0, 17.0, -17.0, 36.0, -36.0, 37.0, -37.0, 40.0, -40.0,
            87.0, -87.0, 88.0, -88.0, 89.0, -89.0, 103.0, -103.0, 104.0, -104.0, -105.0,
            708.0, -708.0, 709.0, -709.0, 710.0, -710.0, -740.0, -745.0, -746.0,
            1000.0, -1000.0, 1e300, -1e300, np.inf, -np.inf, np.nan]
    with np.errstate(over="ignore"):
        return np.asarray(base, dtype=np.float64).astype(dtype)


def real_line_sample(dtype: np.dtype, n: int, seed: int) -> np.ndarray:
    """``n`` points of ``dtype``: the bulk, both tails out to the underflow limit, thresholds."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    # Beyond this |x| every function here is 0, 1, x or -x exactly in this dtype.
    edge = {np.float16: 20.0, np.float32: 110.0, np.float64: 750.0}[dtype.type]
    special = _thresholds(dtype)
    k = (n - special.size) // 4
    sign = rng.choice([-1.0, 1.0], size=k)
    parts = [
        rng.uniform(-40.0, 40.0, k),  # the bulk
        rng.uniform(-edge, edge, k),  # both tails, uniformly
        sign * np.exp(rng.uniform(np.log(1e-12), np.log(edge), k)),  # every scale
        rng.uniform(-1.0, 1.0, n - 3 * k - special.size),  # around 0, where sigmoid is 1/2
    ]
    return np.concatenate([np.concatenate(parts).astype(dtype), special])


def log_probability_sample(dtype: np.dtype, n: int, seed: int) -> np.ndarray:
    """``n`` points x <= 0 of ``dtype`` (log-probabilities) and a few above: every scale from
    the smallest subnormal to the largest finite value, the bulk, around -ln 2 (where
    ``logitexp`` crosses zero) and the points where the formulas switch. The mirror image
    ``-x`` serves ``logexpm1``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    finfo = np.finfo(dtype)
    tiny, huge = float(finfo.smallest_subnormal), float(finfo.max)
    ln2 = np.log(2.0)
    special = np.asarray([0.0, -0.0, -tiny, -float(finfo.smallest_normal), -1e-300, -1e-20,
                          -1e-10, -ln2 / 2, -ln2, -0.5, -1.0, -0.53, -0.89, -2.0, -36.0,
                          -37.0, -600.0, -708.0, -709.0, -745.0, -746.0, -1000.0, -1e300,
                          -huge, -np.inf, 1e-300, 0.5, np.inf, np.nan], dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        special = special.astype(dtype)
    spacing = float(np.spacing(dtype.type(ln2)))
    k = (n - special.size) // 4
    parts = [
        -rng.uniform(0.0, 40.0, k),  # the bulk
        -np.exp(rng.uniform(np.log(tiny), np.log(huge), k)),  # every scale
        -ln2 + spacing * rng.integers(-2000, 2000, k),  # around -ln 2, ULP by ULP
        -ln2 + rng.uniform(-0.5, 0.5, n - 3 * k - special.size),  # and wider
    ]
    with np.errstate(over="ignore", under="ignore"):
        return np.concatenate([np.concatenate(parts).astype(dtype), special])


def log_difference_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float64 pairs ``(a, b)``, mostly with a >= b, for ``logdiffexp``: differences
    ``b - a`` from :func:`log_probability_sample`, ``a`` on every scale and sign, pairs
    near the curve e^a - e^b = 1 where the result crosses zero, and the special values."""
    rng = np.random.default_rng(seed)
    d = log_probability_sample(np.dtype(np.float64), n, seed)
    a = np.concatenate([rng.uniform(-50.0, 50.0, n // 2),
                        rng.choice([-1.0, 1.0], n - n // 2)
                        * np.exp(rng.uniform(np.log(1e-300), np.log(1e300), n - n // 2))])
    rng.shuffle(a)
    with np.errstate(all="ignore"):
        b = a + d
        m = n // 8  # near the zero crossing: b = log(e^a - 1) for a > 0
        a[:m] = rng.uniform(1e-3, 30.0, m)
        b[:m] = np.log(np.expm1(a[:m]))
    special_a = [0.0, 0.0, 1.0, -np.inf, np.inf, np.inf, 1.0, np.nan, 0.0, 1e308, -1e308]
    special_b = [-np.inf, 0.0, 1.0, -np.inf, np.inf, 1.0, 2.0, 0.0, np.nan, -1e308, -np.inf]
    return np.concatenate([a, special_a]), np.concatenate([b, special_b])


def probability_sample(dtype: np.dtype, n: int, seed: int) -> np.ndarray:
    """``n`` points in and around [0, 1]: the bulk, near 0, near 1/2, near 1, and outside."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    special = np.asarray([0.0, 1.0, 0.5, 0.25, 0.75, 0.2499, 0.2501, tiny, -0.0,
                          -0.1, 1.1, 2.0, -np.inf, np.inf, np.nan, 1e-5]).astype(dtype)
    k = (n - special.size) // 4
    near = np.exp(rng.uniform(np.log(tiny) + 1, np.log(0.5), k))
    parts = [
        rng.uniform(0.0, 1.0, k),  # the bulk
        near,  # near 0, down to subnormals
        (1.0 - near.astype(dtype)),  # near 1
        0.5 + rng.uniform(-1e-3, 1e-3, n - 3 * k - special.size),  # near 1/2
    ]
    return np.concatenate([np.concatenate(parts).astype(dtype), special])
