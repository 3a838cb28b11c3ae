"""Every float32 input (all 2^32 bit patterns) of each one-argument function, compiled.

For each input the float32 ufunc loop is compared with the float64 loop on the same
value, rounded once to float32. The float64 loop is within 1 ULP of the exact value
(``test_accuracy.py``), so its rounding is the correctly rounded float32 result except
where it lies within a few float64 ULP of a float32 rounding boundary; those few
points are settled with mpmath. The test asserts that every result is within 1 ULP
of the rounded float64 value and that (almost) all are correctly rounded, and prints
the shares (``pytest -s``). Marked ``slow`` (about 40 s per function on 2 cores);
CI runs it.

The log-space members are defined on half of the line (x <= 0; logexpm1: y >= 0): their
sweep is that half, 2^31 inputs (the other half is NaN, checked in ``test_ufuncs.py``).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import mpmath
import numpy as np
import pytest

from xpit._chunks import usable_cores

ufuncs = pytest.importorskip("xpit.ufuncs", reason="the compiled extension was not built")

from xpit._mpreference import MP_FUNCTIONS, PRECISION_BITS  # noqa: E402

FUNCTIONS = ["sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "log1mexp",
             "logexpm1", "logitexp"]
# The bit patterns swept: all, or the half that is the domain (sign bit set: x <= 0).
HALF = {"log1mexp": (1 << 31, 1 << 32), "logitexp": (1 << 31, 1 << 32),
        "logexpm1": (0, 1 << 31)}
CHUNK = 1 << 16  # 256 KiB of float32: the passes over a chunk run in the cache
# Share of all float32 inputs that must be correctly rounded (the float path is computed
# in double and rounded once, so only near-midpoint results can miss).
MIN_CORRECTLY_ROUNDED = 0.99999


def _correctly_rounded_float32(name: str, x: float) -> np.float32:
    """The exact ``name(x)`` rounded once to float32 (mpmath, no double rounding)."""
    with mpmath.workprec(PRECISION_BITS):
        exact = MP_FUNCTIONS[name](mpmath.mpf(x))
        if exact == 0:
            return np.float32(0.0)
        _, exponent = mpmath.frexp(exact)
        quantum = mpmath.ldexp(1, max(int(exponent) - 24, -149))  # the float32 ULP there
        return np.float32(float(mpmath.nint(exact / quantum) * quantum))


class _Counts:
    """What one worker found over its chunks."""

    def __init__(self) -> None:
        self.same = self.far = self.wrong_away = 0
        self.candidates: list[tuple[float, float]] = []


def _scan(name: str, starts: range) -> _Counts:
    """Compare the float32 loop with the float64 loop rounded once over ``CHUNK`` bit patterns
    at each of ``starts``, in buffers allocated once and with few passes over them."""
    ufunc = getattr(ufuncs, name)
    counts = _Counts()
    x = np.empty(CHUNK, np.float32)
    got, rounded = np.empty(CHUNK, np.float32), np.empty(CHUNK, np.float32)
    wide = np.empty(CHUNK, np.float64)
    diff, low = np.empty(CHUNK, np.int32), np.empty(CHUNK, np.uint32)
    near = np.empty(CHUNK, bool)
    offsets = np.arange(CHUNK, dtype=np.uint32)
    smallest_normal = np.finfo(np.float32).smallest_normal
    with np.errstate(all="ignore"):  # NaN inputs; errstate is per thread
        for start in starts:
            np.add(offsets, np.uint32(start), out=x.view(np.uint32))
            ufunc(x, out=got)
            np.copyto(wide, x)
            ufunc(wide, out=wide)
            np.copyto(rounded, wide, casting="same_kind")
            # Only where the bits differ: NaN must meet NaN, and nothing may be > 1 ULP off.
            np.subtract(got.view(np.int32), rounded.view(np.int32), out=diff)
            differ = np.flatnonzero(diff)
            nan = np.isnan(rounded[differ])
            assert np.array_equal(np.isnan(got[differ]), nan), name
            differ, d = differ[~nan], diff[differ[~nan]]
            counts.same += CHUNK - differ.size
            counts.far += int(np.count_nonzero((d > 1) | (d < -1)))
            # Where the float64 value lies within 4 float64 ULP of a float32 rounding
            # boundary, its rounding may differ from the correctly rounded result. For a
            # normal float32 result the boundary is where the 29 float64 mantissa bits below
            # float32's read 1000...0 (the low word of a little-endian float64); an infinite
            # or NaN result never matches.
            np.bitwise_and(wide.view(np.uint32)[0::2], (1 << 29) - 1, out=low)
            low -= np.uint32((1 << 28) - 4)
            np.less_equal(low, 8, out=near)
            tiny = np.flatnonzero(np.abs(rounded) < smallest_normal)  # subnormal results, 0
            if tiny.size:
                step = float(np.finfo(np.float32).smallest_subnormal)
                w = wide[tiny]
                mid = (np.floor(w / step) + 0.5) * step
                near[tiny] = (w != 0) & (np.abs(w - mid) <= 4 * np.spacing(np.abs(w)))
            counts.wrong_away += int(np.count_nonzero(~near[differ]))
            at = np.flatnonzero(near)
            counts.candidates += zip(x[at].tolist(), got[at].tolist(), strict=True)
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_float32_input(name):
    assert sys.byteorder == "little", "the boundary test reads the low word of a float64"
    workers = usable_cores()
    start, stop = HALF.get(name, (0, 1 << 32))
    chunks = range(start, stop, CHUNK)
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda w: _scan(name, chunks[w::workers]), range(workers)))
    total = stop - start
    same, far, wrong_away = (sum(getattr(p, k) for p in parts)
                             for k in ("same", "far", "wrong_away"))
    candidates = [c for p in parts for c in p.candidates]
    assert far == 0, f"{name}: {far} float32 results more than 1 ULP from the float64 one"
    wrong_near = sum(np.float32(y) != _correctly_rounded_float32(name, x) for x, y in candidates)
    correct = 1 - (wrong_away + wrong_near) / total
    print(f"\n{name} float32, all {total} inputs of its domain: {same / total:.7%} equal to "
          f"the float64 result rounded once; {len(candidates)} near a rounding boundary "
          f"(checked with mpmath); {correct:.7%} correctly rounded ({wrong_away + wrong_near} not)")
    assert correct >= MIN_CORRECTLY_ROUNDED, (name, correct)
