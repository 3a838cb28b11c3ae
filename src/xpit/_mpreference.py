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

import mpmath
import numpy as np

PRECISION_BITS = 128


def _exp_neg(x: mpmath.mpf) -> mpmath.mpf:
    return mpmath.exp(-x)


MP_FUNCTIONS = {
    "sigmoid": lambda x: 1 / (1 + _exp_neg(x)),
    "sigmoid_grad": lambda x: _exp_neg(x) / (1 + _exp_neg(x)) ** 2,
    "log_sigmoid": lambda x: -mpmath.log1p(_exp_neg(x)),
    "softplus": lambda x: mpmath.log1p(mpmath.exp(x)),
    "logit": lambda p: mpmath.log(p / (1 - p)),
}


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
}


def _special(name: str, x: float) -> float | None:
    """Values at inf, NaN and outside a domain, where mpmath is not asked."""
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
    if np.isinf(x):
        limits = {"sigmoid": (0.0, 1.0), "sigmoid_grad": (0.0, 0.0),
                  "log_sigmoid": (-np.inf, 0.0), "softplus": (0.0, np.inf)}
        return limits[name][x > 0]
    return None


def reference(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``name(x)`` as ``(hi, lo)``: its float64 rounding and the rest in float64
    ULPs of ``hi`` (see the module docstring); ``x`` is converted to float64."""
    fn = MP_FUNCTIONS[name]
    with np.errstate(invalid="ignore"):  # signalling NaNs become quiet ones
        flat = np.asarray(x, dtype=np.float64).ravel()
    hi = np.empty_like(flat)
    lo = np.zeros_like(flat)
    with mpmath.workprec(PRECISION_BITS):
        for i, v in enumerate(flat.tolist()):
            special = _special(name, v)
            if special is not None:
                hi[i] = special
                continue
            exact = fn(mpmath.mpf(v))
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
