/* xpit/kernels/family.h -- the logistic family once, in C, for the CPU and the GPU.
 *
 * Every function is XPIT_FUNC (default `static inline`), scalar in, scalar out. The NumPy
 * ufunc loops (_ufuncs.c) and the CuPy kernels (NVRTC, this file as preamble) include it;
 * neither restates a formula. Special values follow the array-API reference in
 * xpit/kernels/reference.py, which is also what the tests compare against.
 *
 * Same bits everywhere. The header calls no libm function except fma(): its own exp, log1p
 * and log are built from IEEE + - * /, comparisons, bit operations (through a union) and
 * explicit fma(), all correctly rounded on every target. Compile with -ffp-contract=off
 * (gcc) or --fmad=false (NVRTC) and without -ffast-math: then a baseline x86-64 build (libm's
 * software fma), an x86-64-v3 build (hardware FMA) and the GPU give identical bits.
 * Rounding to an integer is the 0x1.8p52 trick; there is no branch (only selects `c ? a : b`
 * on computed values), no table, no global, so gcc -O3 -fno-trapping-math vectorises loops.
 *
 * Design (float64). e = exp(-|x|) is all the family needs of exp, so it never overflows (the
 * log-space members, at the end, take exp of y <= 1 with their own expm1 polynomial):
 *  - reduction: k = round(y / ln 2), r = y - k ln 2 with ln 2 in two parts; r = rh + rl is
 *    rounded and its rounding error rc kept, |r| <= 0.347;
 *  - exp(r) = 1 + r + r^2 Q(r), Q of degree 9, with 1 + r split exactly (Fast2Sum), so e comes
 *    back as a double-double hi + lo (relative error about 2^-57) times 2^(k+1000) * 2^-1000
 *    (two factors so that subnormal results are reached without overflow);
 *  - sigmoid = n / (1 + e) with 1 + e as a double-double and one division: q = n / d is
 *    corrected by the exact remainder fma(-q, d, n); sigmoid has its own, shorter copy of the
 *    exp (no carried reduction error, Estrin, one scaling multiply, see xpit_sigmoid): 0.80 ULP
 *    measured, bound 0.87; sigmoid_grad: 0.65 ULP (0.75 subnormal);
 *  - log1p and log go through log(a / b) = k ln 2 + 2 atanh(s), s = (a - b) / (a + b),
 *    |s| <= 0.1716 after a power-of-two reduction; a - b is exact (Sterbenz), s is corrected
 *    like the quotient above, and 2 atanh(s) = 2s + s^3 P(s^2), P of degree 6;
 *  - logit(p) = log(p / (1 - p)) with 1 - p as a double-double: no cancellation near 1/2.
 * Float32 is computed in double with shorter polynomials (exp degree 7, atanh degree 9) to a
 * relative error below 2^-33 (the log-space members: about 2^-42, see there) and rounded
 * once, so it is within 1 ULP and almost always correctly rounded (sigmoid: 99.99926% of all
 * 2^32 inputs). There is no float-lane fast path with a fallback: each float32 function is
 * one double computation rounded once, so the CPU loops (every ISA variant) and the GPU
 * kernels, which call these same functions once per element, give the same bits by
 * construction.
 *
 * Coefficients: weighted minimax (Remez exchange in mpmath at 60 digits) for the relative error
 * of exp on |r| <= 1.002 ln(2)/2 (weight r^2 / e^r on Q) and of 2 atanh on
 * |s| <= 1.01 (sqrt 2 - 1)/(sqrt 2 + 1) (weight z / 2 on P(z)), rounded to double; the error
 * bounds quoted are those of the rounded coefficients, measured on a 4,000-point grid.
 */
#ifndef XPIT_FAMILY_H
#define XPIT_FAMILY_H

#if !defined(__CUDACC_RTC__) && !defined(__CUDACC__)
#include <math.h> /* fma() only */
#endif

#ifndef XPIT_FUNC
#define XPIT_FUNC static inline
#endif

typedef union { double d; unsigned long long u; } xpit__bits;
typedef struct { double hi, lo; } xpit__dd;          /* hi + lo, not always normalised */
typedef struct { double hi, lo, s1; } xpit__ex;      /* (hi + lo) * s1 * 2^-1000 */

XPIT_FUNC unsigned long long xpit__u64(double x) { xpit__bits b; b.d = x; return b.u; }
XPIT_FUNC double xpit__f64(unsigned long long u) { xpit__bits b; b.u = u; return b.d; }
typedef union { float f; unsigned int u; int i; } xpit__bits32;
XPIT_FUNC unsigned int xpit__u32(float x) { xpit__bits32 b; b.f = x; return b.u; }
XPIT_FUNC float xpit__f32(unsigned int u) { xpit__bits32 b; b.u = u; return b.f; }
XPIT_FUNC int xpit__i32(unsigned int u) { xpit__bits32 b; b.u = u; return b.i; }

#define XPIT__MAGIC 0x1.8p52                /* x + MAGIC - MAGIC rounds x to an integer */
#define XPIT__MAGIC_BITS 0x4338000000000000ULL
#define XPIT__LOG2E 0x1.71547652b82fep0
#define XPIT__LN2HI 0x1.62e42fefa39efp-1    /* ln 2 = LN2HI + LN2LO */
#define XPIT__LN2LO 0x1.abc9e3b39803fp-56
#define XPIT__LN2HI32 0x1.62e42feep-1       /* 32 bits: k * LN2HI32 is exact for |k| < 2^21 */
#define XPIT__LN2LO32 0x1.a39ef35793c76p-33
#define XPIT__SQRT2 0x1.6a09e667f3bcdp0
#define XPIT__INF xpit__f64(0x7ff0000000000000ULL)
#define XPIT__NAN xpit__f64(0x7ff8000000000000ULL)

/* a + b = hi + lo exactly (Knuth's TwoSum: no condition on |a|, |b|). */
XPIT_FUNC xpit__dd xpit__two_sum(double a, double b)
{
    xpit__dd r;
    double s = a + b, bb = s - a;
    r.hi = s;
    r.lo = (a - (s - bb)) + (b - bb);
    return r;
}

/* The argument reduction of exp(y) for y <= 3 (or NaN): y = k ln 2 + r + rc with
   k = round(y / ln 2), ln 2 in two parts, r rounded (|r| <= 0.347) and rc its rounding error;
   hi = r, lo = rc, s1 = 2^(k + 1000). y below -746 gives what -746 gives. */
XPIT_FUNC xpit__ex xpit__exp_reduce(double y)
{
    xpit__ex e;
    double yc = (y < -746.0) ? -746.0 : y;  /* NaN stays NaN */
    double t = yc * XPIT__LOG2E + XPIT__MAGIC;
    double kd = t - XPIT__MAGIC;            /* k, in [-1076, 4] */
    double rh = fma(-kd, XPIT__LN2HI, yc);  /* exact */
    e.hi = fma(-kd, XPIT__LN2LO, rh);
    e.lo = fma(-kd, XPIT__LN2LO, rh - e.hi); /* rh - r is exact */
    e.s1 = xpit__f64((xpit__u64(t) + (2023ULL - XPIT__MAGIC_BITS)) << 52);
    return e;
}

/* exp(y) for y <= 0 (or NaN) as (hi + lo) * s1 * 2^-1000, hi + lo in [0.7, 1.42], relative
   error about 2^-57: 1 + r + r^2 Q(r) + rc with 1 + r split exactly (Fast2Sum), Q of degree
   9 (2^-56.8 relative to e^r). y below -746 gives what -746 gives (0). */
XPIT_FUNC xpit__ex xpit__exp_neg(double y)
{
    xpit__ex e = xpit__exp_reduce(y);
    double r = e.hi, rc = e.lo;
    double q = 0x1.ad7e86d75d7a2p-26;
    q = fma(q, r, 0x1.28ae3461c5933p-22);
    q = fma(q, r, 0x1.71df27213687ap-19);
    q = fma(q, r, 0x1.a0199944601b0p-16);
    q = fma(q, r, 0x1.a01a0128fd382p-13);
    q = fma(q, r, 0x1.6c16c1846fc62p-10);
    q = fma(q, r, 0x1.1111111128173p-7);
    q = fma(q, r, 0x1.5555555550754p-5);
    q = fma(q, r, 0x1.55555555554f8p-3);
    q = fma(q, r, 0x1.000000000000ap-1);
    double h = 1.0 + r, l = ((1.0 - h) + r) + fma(r * r, q, rc); /* 1 + r + r^2 Q + rc */
    e.hi = h + l;
    e.lo = (h - e.hi) + l;
    return e;
}

/* exp(y) = 2^k (1 + hi + lo) for y <= 3 (or NaN), hi + lo = expm1(r + rc) (not normalised), to a
   relative error of about 2^-59 (the polynomial: 2^-59.3 relative to expm1(r), not to e^r as
   xpit__exp_neg's, so that hi + lo keeps its digits where it is small; r = y exactly where
   k = 0); s1 = 2^(k + 1000). expm1(r) = r + r^2 / 2 + r^3 Q1(r), Q1 of degree 10 (weighted
   least squares on Chebyshev nodes in mpmath at 200 bits, |r| <= 1.002 ln(2)/2, rounded);
   r + r^2 / 2 is summed exactly, so the roundings left are relative to r^3 / 6. */
XPIT_FUNC xpit__ex xpit__expm1_parts(double y)
{
    xpit__ex e = xpit__exp_reduce(y);
    double r = e.hi;
    double q = 0x1.6132d4bb85bfap-33;
    q = fma(q, r, 0x1.1f8baf34cbd1ep-29);
    q = fma(q, r, 0x1.ae64918a183efp-26);
    q = fma(q, r, 0x1.27e4cbdb13821p-22);
    q = fma(q, r, 0x1.71de3a3fa46b6p-19);
    q = fma(q, r, 0x1.a01a01addb3e2p-16);
    q = fma(q, r, 0x1.a01a01a01ffe5p-13);
    q = fma(q, r, 0x1.6c16c16c14d33p-10);
    q = fma(q, r, 0x1.1111111111106p-7);
    q = fma(q, r, 0x1.5555555555559p-5);
    q = fma(q, r, 0x1.5555555555555p-3);
    double r2 = r * r, r2l = fma(r, r, -r2);              /* r^2 = r2 + r2l exactly */
    double rc = fma(e.lo, fma(0.5, r2, r), e.lo);          /* expm1(r + rc) - expm1(r) */
    double tail = fma(r2 * r, q, fma(0.5, r2l, rc));       /* r^3 Q1 + r2l / 2 + that */
    xpit__dd sum = xpit__two_sum(r, 0.5 * r2);
    e.hi = sum.hi;
    e.lo = sum.lo + tail;
    return e;
}

/* 2 atanh(s) = 2s + s^3 P(s^2) for |s| <= 0.172: P(z) ~ 2/3 + 2z/5 + ... */
XPIT_FUNC double xpit__atanh_poly(double z)
{
    double P = 0x1.2fa9cb6e438ffp-3;
    P = fma(P, z, 0x1.39920949b4e5fp-3);
    P = fma(P, z, 0x1.7466d3f9bb1eap-3);
    P = fma(P, z, 0x1.c71c4f5594513p-3);
    P = fma(P, z, 0x1.249249451616fp-2);
    P = fma(P, z, 0x1.999999997c86bp-2);
    return fma(P, z, 0x1.555555555559cp-1);
}

/* k ln 2 + log(n / d) = k ln 2 + 2 atanh(n / d) for |n / d| <= 0.172, with n = nh + nl,
   d = dh + dl, as an unnormalised hi + lo; relative error about 2^-58. */
XPIT_FUNC xpit__dd xpit__log_core(double nh, double nl, double dh, double dl, double kd)
{
    xpit__dd res;
    double inv = 1.0 / dh;
    double sh = nh * inv;
    double sl = (fma(-sh, dh, nh) + (nl - sh * dl)) * inv; /* s = sh + sl */
    double z = sh * sh;
    double P = xpit__atanh_poly(z);
    double c = kd * XPIT__LN2HI32, s2 = 2.0 * sh; /* exact; |c| >= |s2| unless c = 0 */
    res.hi = c + s2;
    res.lo = ((c - res.hi) + s2) + (kd * XPIT__LN2LO32 + (2.0 * sl + (z * sh) * P));
    return res;
}

/* log1p(u) for u = uh + ul in [0, 1] (or NaN): k ln 2 + 2 atanh((1 + u - b) / (1 + u + b)),
   b = 2^k, k = [1 + u >= sqrt 2]; numerator and denominator exact as double-doubles. */
XPIT_FUNC xpit__dd xpit__log1p_dd(double uh, double ul)
{
    double kd = uh >= 0x1.a827999fcef32p-2 ? 1.0 : 0.0, c = 2.0 + kd; /* sqrt 2 - 1 */
    double nh = uh - kd, nl = ((-kd - nh) + uh) + ul;
    double dh = c + uh, dl = ((c - dh) + uh) + ul;
    return xpit__log_core(nh, nl, dh, dl, kd);
}

/* log1p(exp(-a)), a = |x|, as hi + lo; where e < 2^-865 it is e (1 - e/2 is 1), rounded once:
   there e's low part would be lost to underflow if scaled before the sum. */
XPIT_FUNC xpit__dd xpit__log1p_exp_neg(double a)
{
    xpit__ex e = xpit__exp_neg(-a);
    xpit__dd L = xpit__log1p_dd((e.hi * e.s1) * 0x1p-1000, (e.lo * e.s1) * 0x1p-1000);
    L.hi = a > 600.0 ? (e.hi * e.s1 + e.lo * e.s1) * 0x1p-1000 : L.hi;
    L.lo = a > 600.0 ? 0.0 : L.lo;
    return L;
}

/* 1 / (1 + e) for x >= 0, e / (1 + e) below, e = exp(-|x|) = 2^(k+1) (h + l); 0.80 ULP measured
   (bound 0.87), subnormal results rounded once. Its own exp, shorter than xpit__exp_neg's:
   - r = |x| - k ln 2 is rounded (error below 2^-55, so exp(r) within 2^-54.6 with Q's error)
     and its rounding error is not carried: +0.2 ULP at most, within the 1-ULP budget;
   - Q by Estrin (r^2, r^4), not Horner: shorter dependency chains, same error bound;
   - the scale is 2^(k+1) with h + l in [0.35, 0.71], one multiply: 2^(k+1) = 2^(k+1001) 2^-1000
     is exact down to 2^-1074 (k = -1075, the last k whose result can round up to the smallest
     subnormal) and 0 below, where the result rounds to 0; the result is q 2^(k+1), rounded once. */
XPIT_FUNC double xpit_sigmoid(double x)
{
    double a = xpit__f64(xpit__u64(x) & 0x7fffffffffffffffULL);
    double ac = a > 746.0 ? 746.0 : a;      /* NaN stays NaN */
    double t = fma(ac, -XPIT__LOG2E, XPIT__MAGIC);
    double kd = t - XPIT__MAGIC;            /* k = round(-a / ln 2), in [-1076, 0] */
    double r = fma(-kd, XPIT__LN2LO, fma(-kd, XPIT__LN2HI, -ac)); /* |r| <= 0.347 */
    double r2 = r * r, r4 = r2 * r2;        /* Q / 2 by Estrin: xpit__exp_neg's halved */
    double q01 = fma(0x1.55555555554f8p-4, r, 0x1.000000000000ap-2);
    double q23 = fma(0x1.1111111128173p-8, r, 0x1.5555555550754p-6);
    double q45 = fma(0x1.a01a0128fd382p-14, r, 0x1.6c16c1846fc62p-11);
    double q67 = fma(0x1.71df27213687ap-20, r, 0x1.a0199944601b0p-17);
    double q89 = fma(0x1.ad7e86d75d7a2p-27, r, 0x1.28ae3461c5933p-23);
    double q = fma(fma(q89, r4, fma(q67, r2, q45)), r4, fma(q23, r2, q01));
    double h = fma(r, 0.5, 0.5), l = fma(r2, q, fma(r, 0.5, 0.5 - h)); /* exp(r) / 2 = h + l */
    double eh = h + l, el = (h - eh) + l;   /* normalised */
    double s = xpit__f64((xpit__u64(t) + (2024ULL - XPIT__MAGIC_BITS)) << 52) * 0x1p-1000;
    double dh = 1.0 + eh * s, dl = ((1.0 - dh) + eh * s) + el * s; /* 1 + e */
    int pos = x >= 0.0;
    double nh = pos ? 1.0 : eh, nl = pos ? 0.0 : el;  /* numerator unscaled: keeps el */
    double inv = 1.0 / dh;
    q = nh * inv;
    double rho = fma(-q, dh, nh) + (nl - q * dl);     /* n - q d, the first part exactly */
    q = fma(rho, inv, q);
    return pos ? q : q * s;
}

/* sigmoid(x) sigmoid(-x) = e / (1 + e)^2, relative in both tails; 0.65 ULP (0.75 subnormal). */
XPIT_FUNC double xpit_sigmoid_grad(double x)
{
    double a = x < 0.0 ? -x : x;
    xpit__ex e = xpit__exp_neg(-a);
    double eh = (e.hi * e.s1) * 0x1p-1000, el = (e.lo * e.s1) * 0x1p-1000;
    double dh = 1.0 + eh, dl = ((1.0 - dh) + eh) + el;
    double sh = dh * dh, sl = fma(dh, dh, -sh) + 2.0 * dh * dl; /* (1 + e)^2 */
    double inv = 1.0 / sh;
    double q = e.hi * inv;
    double rho = fma(-q, sh, e.hi) + (e.lo - q * sl);
    return (fma(rho, inv, q) * e.s1) * 0x1p-1000;
}

/* The backward pass from the forward output, exactly the reference's operations. */
XPIT_FUNC double xpit_sigmoid_backward(double s, double g)
{
    double ds = s * (1.0 - s);
    return g * ds;
}

/* max(x, 0) + log1p(e), the sum rounded once from a double-double; 0.65 ULP (0.75 subnormal). */
XPIT_FUNC double xpit_softplus(double x)
{
    double a = x < 0.0 ? -x : x;
    xpit__dd L = xpit__log1p_exp_neg(a);
    xpit__dd s = xpit__two_sum(x > 0.0 ? x : 0.0, L.hi);
    double r = s.hi + (s.lo + L.lo);
    return (x > 700.0) | (x != x) ? x : r; /* +inf -> inf; -inf -> 0 through e = 0; NaN as it came */
}

/* min(x, 0) - log1p(e); 0.64 ULP; log_sigmoid(+inf) = +0.0 as the reference. */
XPIT_FUNC double xpit_log_sigmoid(double x)
{
    double a = x < 0.0 ? -x : x;
    xpit__dd L = xpit__log1p_exp_neg(a);
    xpit__dd s = xpit__two_sum(x < 0.0 ? x : 0.0, -L.hi);
    double r = s.hi + (s.lo - L.lo);
    r = x > 700.0 ? 0.0 - L.hi : r;
    return (x < -700.0) | (x != x) ? x : r; /* a NaN comes back as it came in, on every build */
}

/* Binary cross-entropy with logits, one element: |z| c + log1p(exp(-|z|)), c = 1 - t for
   z >= 0 and t below; a zero c gives exactly 0 for the linear term even where |z| = inf. */
XPIT_FUNC double xpit_bce(double z, double t)
{
    double a = z < 0.0 ? -z : z;
    xpit__dd L = xpit__log1p_exp_neg(a);
    double c = z >= 0.0 ? 1.0 - t : t;
    double lin = c == 0.0 ? 0.0 : a * c;
    xpit__dd s = xpit__two_sum(lin, L.hi);
    double r = s.hi + (s.lo + L.lo);
    double alin = lin < 0.0 ? -lin : lin;
    return alin > 0x1.fffffffffffffp1023 ? lin + L.hi : r; /* an infinite term stays inf */
}

/* ... with a positive-class weight w (PyTorch's pos_weight): -(w t log sigmoid(z) + (1 - t)
   log sigmoid(-z)) = |z| c + ((1 - t) + w t) log1p(exp(-|z|)), c = 1 - t for z >= 0 and w t
   below. w = 1 gives xpit_bce's results exactly (the factor rounds to 1: fl(1 - t) is off by
   less than half an ULP of 1, c is t); a zero c gives 0 for the linear term even where
   |z| = inf. */
XPIT_FUNC double xpit_bce_pos(double z, double t, double w)
{
    double a = z < 0.0 ? -z : z;
    xpit__dd L = xpit__log1p_exp_neg(a);
    double lw = fma(w, t, 1.0 - t);            /* (1 - t) + w t: no cancellation for w << 1 */
    double c = z >= 0.0 ? 1.0 - t : w * t;
    double lin = c == 0.0 ? 0.0 : a * c;
    double lh = lw * L.hi, ll = fma(lw, L.hi, -lh) + lw * L.lo; /* lw L as a double-double */
    xpit__dd s = xpit__two_sum(lin, lh);
    double r = s.hi + (s.lo + ll);
    double alin = lin < 0.0 ? -lin : lin, alh = lh < 0.0 ? -lh : lh;
    return (alin > 0x1.fffffffffffffp1023) | (alh > 0x1.fffffffffffffp1023) ? lin + lh : r;
}   /* an infinite term (|z| = inf, or w = inf) stays inf */

/* d/dz of the loss (grad 1): (1 - t) sigmoid(z) - w t sigmoid(-z), each term relative in both
   tails; lw sigmoid(z) - w t, the same value, would cancel to 0 where sigmoid(z) rounds to 1
   (z > 37 in float64, 17 in float32) and lose all digits well before. */
XPIT_FUNC double xpit_bce_pos_grad(double z, double t, double w)
{
    double above = (1.0 - t) * xpit_sigmoid(z);
    double below = (w * t) * xpit_sigmoid(-z);
    return above - below;
}

XPIT_FUNC double xpit_bce_grad(double z, double t) { return xpit_bce_pos_grad(z, t, 1.0); }

/* log(p / (1 - p)) = k ln 2 + 2 atanh((a - b) / (a + b)), a and b the mantissas of p and of
   1 - p (a double-double) rescaled so that a / b is in [0.707, 1.414]; 0.56 ULP.
   -inf at 0, inf at 1, NaN outside [0, 1] and for NaN. */
XPIT_FUNC double xpit_logit(double p)
{
    double bh = 1.0 - p, bl = (1.0 - bh) - p;  /* 1 - p = bh + bl exactly for p <= 1 */
    int sub = p < 0x1p-1022;
    unsigned long long ua = xpit__u64(sub ? p * 0x1p64 : p), ub = xpit__u64(bh);
    unsigned long long ea = (ua >> 52) & 0x7ffULL, eb = (ub >> 52) & 0x7ffULL;
    double ma = xpit__f64((ua & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    double sb = xpit__f64((2046ULL - eb) << 52); /* 2^-exponent(bh) */
    double mb = bh * sb, mbl = bl * sb;
    double kd = xpit__f64(XPIT__MAGIC_BITS + ea - eb) - XPIT__MAGIC - (sub ? 64.0 : 0.0);
    int up = ma >= XPIT__SQRT2 * mb, dn = ma * XPIT__SQRT2 < mb;
    mb = up ? 2.0 * mb : mb;
    mbl = up ? 2.0 * mbl : mbl;
    ma = dn ? 2.0 * ma : ma;
    kd = kd + (up ? 1.0 : 0.0) - (dn ? 1.0 : 0.0);
    xpit__dd d = xpit__two_sum(ma, mb);
    xpit__dd L = xpit__log_core(ma - mb, -mbl, d.hi, d.lo + mbl, kd); /* ma - mb is exact */
    double r = L.hi + L.lo;
    r = p == 0.0 ? -XPIT__INF : r;
    r = p == 1.0 ? XPIT__INF : r;
    return ((p >= 0.0) & (p <= 1.0)) ? r : XPIT__NAN;
}

/* ---- the log-space members: log(1 - e^x), log(e^y - 1), logit(e^x), log(e^a - e^b) ----
   All four are log(+-(e^z - 1)) for one z, plus a term that cannot cancel against it:
   e^z = 2^k (1 + r + m) from xpit__expm1_parts, w = +-(e^z - 1) as a double-double exact
   to about 2^-104 in absolute terms (and r + m itself, relative, where k = 0), then log w.
   The result is small only where w is near 1, and there w - 1 is passed to the log as well,
   in a form that has kept its relative accuracy: -e^z, or 2 (r + m) = e^z - 2 for k = 1,
   which is where log(e^y - 1) crosses zero (y = ln 2: r + m = expm1(y - ln 2), with
   y - ln 2 exact to the last bit of the reduction). So the relative error is about 2^-56
   everywhere, zero crossings included, and the result is rounded once. */

typedef struct { double hi, lo, slope; } xpit__dds;  /* hi + lo, and a derivative */

/* w = 2^j m with m in [1/sqrt 2, sqrt 2), for a positive normal w: returns j + 1023 (w's
   biased exponent, plus 1 where its mantissa is >= sqrt 2) and m in *m, exactly. */
XPIT_FUNC unsigned long long xpit__split_log(double w, double *m)
{
    unsigned long long u = xpit__u64(w);
    unsigned long long jb = (u + (0x3ff0000000000000ULL - 0x3fe6a09e667f3bcdULL)) >> 52;
    *m = xpit__f64(u - (jb << 52) + 0x3ff0000000000000ULL);
    return jb;
}

/* log(w) for w = wh + wl > 0 (a double-double with |wl| well below wh; subnormal wh too) as
   hi + lo, relative error about 2^-57, through w = 2^j m, m in [1/sqrt 2, sqrt 2) and
   log w = j ln 2 + 2 atanh((m - 1) / (m + 1)), m - 1 exact (Sterbenz). Where j = 0, the
   caller's n = nh + nl, which must equal w - 1, is the numerator instead of (wh - 1) + wl:
   near w = 1 the result is about n, so its relative accuracy is what counts there. */
XPIT_FUNC xpit__dd xpit__log_dd(double wh, double wl, double nh, double nl)
{
    int sub = wh < 0x1p-1000;
    double sc = sub ? 0x1p200 : 1.0;
    double mh;
    unsigned long long jb = xpit__split_log(wh * sc, &mh);
    double ml = (wl * sc) * xpit__f64((2046ULL - jb) << 52);
    double kd = xpit__f64(XPIT__MAGIC_BITS + jb) - XPIT__MAGIC - (sub ? 1223.0 : 1023.0);
    int one = (jb == 1023ULL) & !sub;
    xpit__dd n = xpit__two_sum(one ? nh : mh - 1.0, one ? nl : ml);
    xpit__dd d = xpit__two_sum(2.0, n.hi);                       /* m + 1 = n + 2 */
    return xpit__log_core(n.hi, n.lo, d.hi, d.lo + n.lo, kd);
}

/* log(1 - e^z) (sg = -1, z <= 0) or log(e^z - 1) (sg = +1, 0 <= z <= 1) as hi + lo, and its
   derivative e^z / (e^z - 1) as `slope` (rounded). Where e^z < 2^-865 (z < -600),
   log(1 - e^z) is -e^z to the last bit, rounded once from the unscaled parts. */
XPIT_FUNC xpit__dds xpit__log_abs_expm1(double z, double sg)
{
    xpit__dds res;
    xpit__ex p = xpit__expm1_parts(z);
    double s = p.s1 * 0x1p-1000;                           /* 2^k */
    double h = 1.0 + p.hi, l = ((1.0 - h) + p.hi) + p.lo;
    double eh0 = h + l, el0 = (h - eh0) + l;               /* e^r, normalised */
    double eh = eh0 * s, el = el0 * s;                     /* e^z, exact for z >= -600 */
    xpit__dd m = xpit__two_sum(p.hi, p.lo);                /* expm1(r), normalised */
    xpit__dd w = xpit__two_sum(eh, -1.0);
    w = xpit__two_sum(w.hi, w.lo + el);                    /* e^z - 1 */
    int k0 = p.s1 == 0x1p1000;                             /* k = 0: e^z - 1 = r + m */
    w.hi = sg * (k0 ? m.hi : w.hi);
    w.lo = sg * (k0 ? m.lo : w.lo);
    /* w - 1: -e^z for sg = -1; for sg = +1 it is only used where w is in
       [1/sqrt 2, sqrt 2), z in [0.53, 0.89], so k = 1 and e^z - 2 = 2 (r + m) */
    double nh = sg < 0.0 ? -eh : 2.0 * m.hi, nl = sg < 0.0 ? -el : 2.0 * m.lo;
    xpit__dd L = xpit__log_dd(w.hi, w.lo, nh, nl);
    int tail = z < -600.0;
    res.hi = tail ? -((eh0 * p.s1 + el0 * p.s1) * 0x1p-1000) : L.hi;
    res.lo = tail ? -0.0 : L.lo;                           /* keeps -0.0 at z = -inf */
    res.slope = sg * eh / w.hi;
    return res;
}

/* log(1 - e^x) for x <= 0 (log of a complement held as a log); -inf at 0, NaN above 0,
   -0.0 at -inf; log1mexp(-1e-20) = -46.05. */
XPIT_FUNC double xpit_log1mexp(double x)
{
    xpit__dds L = xpit__log_abs_expm1(x, -1.0);
    double r = L.hi + L.lo;
    r = x == 0.0 ? -XPIT__INF : r;
    r = x > 0.0 ? XPIT__NAN : r;
    return x != x ? x : r;
}

/* log(e^y - 1) for y >= 0, the inverse of softplus: log(expm1(y)) for y <= 1 (exact at its
   zero y = ln 2, see above), y + log(1 - e^-y) above, which never cancels. -inf at 0, NaN
   below 0, y itself where e^-y is below half an ULP of y (logexpm1(1000) == 1000), inf at inf. */
XPIT_FUNC double xpit_logexpm1(double y)
{
    int big = y > 1.0;
    xpit__dds L = xpit__log_abs_expm1(big ? -y : y, big ? -1.0 : 1.0);
    xpit__dd s = xpit__two_sum(big ? y : 0.0, L.hi);
    double r = s.hi + (s.lo + L.lo);
    r = y > 0x1p60 ? y : r;
    r = y == 0.0 ? -XPIT__INF : r;
    r = y < 0.0 ? XPIT__NAN : r;
    return y != y ? y : r;
}

/* logit(e^x) = log(e^x / (1 - e^x)) = -logexpm1(-x) for x <= 0, the logit of a probability
   held as a log; 0 at x = -ln 2 (exactly as accurate around it), inf at 0, -inf at -inf,
   NaN above 0. */
XPIT_FUNC double xpit_logitexp(double x)
{
    double r = -xpit_logexpm1(-x);
    r = x > 0.0 ? XPIT__NAN : r;
    return x != x ? x : r;
}

/* log(e^a - e^b) = a + log(1 - e^(b - a)) for a >= b: b - a as a double-double (its rounding
   error enters through the slope of log(1 - e^d)), the sum rounded once. -inf where a == b
   (a == b == -inf included), NaN where a < b and at a == b == inf, a where e^b / e^a is 0
   (b = -inf, or b - a overflows). Near the curve e^a - e^b = 1, where the result crosses
   zero, its relative error grows with the condition number (a e^a - b e^b) / (e^a - e^b)
   / result: the error is that of inputs perturbed by about 2^-56 relative. */
XPIT_FUNC double xpit_logdiffexp(double a, double b)
{
    xpit__dd d = xpit__two_sum(b, -a);
    xpit__dds L = xpit__log_abs_expm1(d.hi, -1.0);
    double dc = d.lo == 0.0 ? 0.0 : d.lo * L.slope;      /* slope is infinite at d = -0 */
    xpit__dd s = xpit__two_sum(a, L.hi);
    double r = s.hi + (s.lo + (L.lo + dc));
    r = d.hi == -XPIT__INF ? a : r;
    r = a == b ? (a == XPIT__INF ? XPIT__NAN : -XPIT__INF) : r;
    r = a < b ? XPIT__NAN : r;
    return (a != a) | (b != b) ? a + b : r;
}

/* ---- float32: computed in double with shorter polynomials, rounded once ---- */

/* exp(y) for y in [-200, 0] (or NaN), relative error below 2^-34 (normal range: no split). */
XPIT_FUNC double xpit__expf_neg(double y)
{
    double yc = (y < -200.0) ? -200.0 : y;
    double t = yc * XPIT__LOG2E + XPIT__MAGIC;
    double kd = t - XPIT__MAGIC;
    double r = fma(-kd, XPIT__LN2HI, yc);
    r = fma(-kd, XPIT__LN2LO, r);
    double q = 0x1.9f077abe59c83p-13;
    q = fma(q, r, 0x1.6d8e6da5b2cf7p-10);
    q = fma(q, r, 0x1.1112736b2b9cbp-7);
    q = fma(q, r, 0x1.55548c4773e4dp-5);
    q = fma(q, r, 0x1.555554401414ep-3);
    q = fma(q, r, 0x1.0000003ac8951p-1);
    q = fma(q, r, 1.0);
    q = fma(q, r, 1.0);
    return q * xpit__f64((xpit__u64(t) + (1023ULL - XPIT__MAGIC_BITS)) << 52);
}

/* 2 atanh(s) for |s| <= 0.172, relative error below 2^-37. */
XPIT_FUNC double xpit__atanh2f(double s)
{
    double z = s * s;
    double P = 0x1.e38be24ff9aedp-3;
    P = fma(P, z, 0x1.24351aadeba2cp-2);
    P = fma(P, z, 0x1.999a88b1026eep-2);
    P = fma(P, z, 0x1.555554f635abcp-1);
    return fma(z * s, P, 2.0 * s);
}

/* log1p(e) for e in [0, 1] (or NaN): k ln 2 + 2 atanh((e - k) / (2 + k + e)), k = [1 + e >= sqrt 2]. */
XPIT_FUNC double xpit__log1pf(double e)
{
    double kd = e >= 0x1.a827999fcef32p-2 ? 1.0 : 0.0;
    return fma(kd, XPIT__LN2HI, xpit__atanh2f((e - kd) / ((2.0 + kd) + e)));
}

/* exp(-x) = 2^k exp(-r) as the pair (2^-k, exp(-r)), for xpit_sigmoidf and
   xpit_sigmoid_gradf: k = round(-x / ln 2), r = x + k ln 2 (one fma with ln 2 rounded to
   double: error below 2^-47). Then sigmoid = 2^-k / (2^-k + exp(-r)): no |x|, no select, no
   scaling multiply. exp(-r) is xpit__expf_neg's polynomial at -r (the signs alternate),
   relative error below 2^-34; the quotient's relative error is that of 1 + exp(-x), so also
   below 2^-34 on both sides. x is clamped to [-120, 120] (past the last nonzero float
   result, at -103.97) with two integer minimums on its bits; the callers give a NaN back as
   it came. */
XPIT_FUNC xpit__dd xpit__split_expf_neg(float x) /* hi = 2^-k, lo = exp(-r) */
{
    unsigned int u = xpit__u32(x);              /* clamped on the bits, NaNs too (see the end): */
    u = u < 0xc2f00000u ? u : 0xc2f00000u;      /* unsigned, negatives: x >= -120 */
    int v = xpit__i32(u);
    v = v < 0x42f00000 ? v : 0x42f00000;        /* signed, positives: x <= 120 */
    double xc = (double)xpit__f32((unsigned int)v);
    double t = fma(xc, -XPIT__LOG2E, XPIT__MAGIC);
    double kd = t - XPIT__MAGIC;                /* k, in [-173, 173] */
    double r = fma(kd, XPIT__LN2HI, xc);        /* |r| <= 0.347 */
    double q = -0x1.9f077abe59c83p-13;
    q = fma(q, r, 0x1.6d8e6da5b2cf7p-10);
    q = fma(q, r, -0x1.1112736b2b9cbp-7);
    q = fma(q, r, 0x1.55548c4773e4dp-5);
    q = fma(q, r, -0x1.555554401414ep-3);
    q = fma(q, r, 0x1.0000003ac8951p-1);
    q = fma(q, r, -1.0);
    q = fma(q, r, 1.0);                         /* exp(-r) */
    xpit__dd e;
    e.hi = xpit__f64((XPIT__MAGIC_BITS + 1023ULL - xpit__u64(t)) << 52); /* 2^-k */
    e.lo = q;
    return e;
}

/* 1 / (1 + exp(-x)) in double, rounded once: 2^-k / (2^-k + exp(-r)). */
XPIT_FUNC float xpit_sigmoidf(float x)
{
    xpit__dd e = xpit__split_expf_neg(x);
    float y = (float)(e.hi / (e.hi + e.lo));
    return x != x ? x : y;
}

/* sigmoid(x) sigmoid(-x) = 2^-k exp(-r) / (2^-k + exp(-r))^2: every factor is relative 2^-33
   or better, so the result is rounded once from a relative error below 2^-32. 2^-k and
   (2^-k + exp(-r))^2 stay below 2^350 for x in [-120, 120]. */
XPIT_FUNC float xpit_sigmoid_gradf(float x)
{
    xpit__dd e = xpit__split_expf_neg(x);
    double d = e.hi + e.lo;
    float y = (float)((e.hi * e.lo) / (d * d));
    return x != x ? x : y;
}

/* Both of the above from one exp, each with its own bits: the forward of sigmoid when its
   gradient will be needed (PyTorch's training path saves d for the backward pass). */
typedef struct { float s, d; } xpit__f2;
XPIT_FUNC xpit__f2 xpit_sigmoid_with_gradf(float x)
{
    xpit__dd e = xpit__split_expf_neg(x);
    double d = e.hi + e.lo;
    float s = (float)(e.hi / d), g = (float)((e.hi * e.lo) / (d * d));
    xpit__f2 r;
    r.s = x != x ? x : s;
    r.d = x != x ? x : g;
    return r;
}

XPIT_FUNC float xpit_softplusf(float x)
{
    double xd = (double)x, a = xd < 0.0 ? -xd : xd;
    double L = xpit__log1pf(xpit__expf_neg(-a));
    return (float)((xd > 0.0 ? xd : 0.0) + L);
}

XPIT_FUNC float xpit_log_sigmoidf(float x)
{
    double xd = (double)x, a = xd < 0.0 ? -xd : xd;
    double L = xpit__log1pf(xpit__expf_neg(-a));
    /* Past 1075 ln 2, exp(-a) is 0 in double: +0.0 there (and at +inf), as in float64; below,
       -0.0 where -L rounds to it. So float32 always has the sign of the float64 result. */
    return xd > 745.1332191019412 ? 0.0f : (float)((xd < 0.0 ? xd : 0.0) - L);
}

/* logit(p) = k ln 2 + 2 atanh((a - b) / (a + b)) with a, b the mantissas of p and 1 - p (both
   exact in double for float p >= 2^-29; the rounding of 1 - p below is relative 2^-53). */
XPIT_FUNC float xpit_logitf(float p)
{
    double pd = (double)p, b = 1.0 - pd;
    unsigned long long ua = xpit__u64(pd), ub = xpit__u64(b);
    double ma = xpit__f64((ua & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    double mb = xpit__f64((ub & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    double kd = xpit__f64(XPIT__MAGIC_BITS + ((ua >> 52) & 0x7ffULL) - ((ub >> 52) & 0x7ffULL)) - XPIT__MAGIC;
    int up = ma >= XPIT__SQRT2 * mb, dn = ma * XPIT__SQRT2 < mb;
    mb = up ? 2.0 * mb : mb;
    ma = dn ? 2.0 * ma : ma;
    kd = kd + (up ? 1.0 : 0.0) - (dn ? 1.0 : 0.0);
    double r = fma(kd, XPIT__LN2HI, xpit__atanh2f((ma - mb) / (ma + mb)));
    r = pd == 0.0 ? -XPIT__INF : r;
    r = pd == 1.0 ? XPIT__INF : r;
    return (float)(((pd >= 0.0) & (pd <= 1.0)) ? r : XPIT__NAN);
}

/* exp(-a) for a >= 0 (or NaN) as one double: xpit__exp_neg's high part, within 2^-53;
   0 past 745. */
XPIT_FUNC double xpit__exp_neg_hi(double a)
{
    xpit__ex x = xpit__exp_neg(-a);
    return (x.hi * x.s1) * 0x1p-1000;
}

/* The loss in float32 (what a training step computes) in plain double, no double-double, so
   the loops vectorise (about 2x faster than float64's function rounded). w t is exact in double;
   1 - t and (1 - t) + w t are rounded once at most. log1p(exp(-|z|)) is within about 2^-51:
   xpit__exp_neg's high part (2^-53), then k ln 2 + 2 atanh(s) with log_core's polynomial.
   For targets in [0, 1] and w >= 0 the two terms are >= 0, so the result is within 2^-50
   before its one rounding: within 1 ULP of the float64 function's result rounded once and
   equal to it but where that is within 2^-26 ULP of a rounding boundary (none of 10^6
   inputs differed, see tests/test_ufuncs.py). Elsewhere (targets outside [0, 1], a negative
   weight) the terms can cancel, and the error is 2^-50 of the larger one. */
XPIT_FUNC float xpit__bcef(float z, float t, double below, double lw) /* c = below for z < 0 */
{
    double zd = z, a = zd < 0.0 ? -zd : zd;
    double c = zd >= 0.0 ? 1.0 - (double)t : below;
    double lin = c == 0.0 ? 0.0 : a * c;        /* 0 for a zero weight, also at |z| = inf */
    double e = xpit__exp_neg_hi(a);
    double kd = e >= 0x1.a827999fcef32p-2 ? 1.0 : 0.0;  /* 1 + e >= sqrt 2 */
    double s = (e - kd) / ((2.0 + kd) + e);
    double L = fma(kd, XPIT__LN2HI, fma(s * s * s, xpit__atanh_poly(s * s), 2.0 * s));
    return (float)(lin + lw * L);
}

XPIT_FUNC float xpit_bcef(float z, float t) { return xpit__bcef(z, t, t, 1.0); }

XPIT_FUNC float xpit_bce_posf(float z, float t, float w)
{
    return xpit__bcef(z, t, (double)w * t, fma((double)w, (double)t, 1.0 - (double)t));
}

/* Its derivative (1 - t) sigmoid(z) - w t sigmoid(-z) = ((1 - t) - w t e) / (1 + e) for
   z >= 0 and ((1 - t) e - w t) / (1 + e) below, e = exp(-|z|) (xpit__exp_neg's high part,
   2^-53), so each of the numerator's terms is within 2^-52: away from the gradient's zero
   the result is the float64 function's rounded once but for a few in 10^5, and near it
   (soft targets, z near log(w t / (1 - t)), where the terms cancel) it is within 1 ULP plus
   2^-52 of the larger term of the exact value, closer than the float64 function rounded.
   A NaN in z comes back as it came; one in t or w gives a NaN. */
XPIT_FUNC float xpit_bce_pos_gradf(float z, float t, float w)
{
    double zd = z, td = t, a = zd < 0.0 ? -zd : zd;
    double e = xpit__exp_neg_hi(a);
    double p = 1.0 - td, q = (double)w * td;
    double num = zd >= 0.0 ? p - q * e : p * e - q;
    return z != z ? z : (float)(num / (1.0 + e));
}

XPIT_FUNC float xpit_bce_gradf(float z, float t) { return xpit_bce_pos_gradf(z, t, 1.0f); }

/* Their derivatives, for PyTorch's backward passes: with E = e^x and w = 1 - E for x <= 0,
   log1mexp'(x) = -E / w, logitexp'(x) = 1 / w (so logexpm1'(y) = logitexp'(-y), and the
   partial derivatives of logdiffexp(a, b) are logitexp'(b - a) and log1mexp'(b - a)).
   w is exact in relative terms where k = 0 (-(r + m)) and at least 0.29 elsewhere, so
   nothing cancels; -inf / inf at 0, NaN above 0. Each derivative of these is a product of
   the two, never a difference (log1mexp'' = log1mexp' logitexp', logitexp'' =
   -logitexp' log1mexp'). */
XPIT_FUNC double xpit__one_minus_exp(double x, double *e)   /* w, and E in *e */
{
    xpit__ex p = xpit__expm1_parts(x);
    double s = p.s1 * 0x1p-1000;                            /* 2^k */
    double em1 = p.hi + p.lo;                               /* e^r - 1 */
    *e = s + s * em1;
    return p.s1 == 0x1p1000 ? 0.0 - em1 : 1.0 - *e;        /* +0 at x = 0 */
}
XPIT_FUNC double xpit_log1mexp_vjp(double x, double g)      /* g log1mexp'(x) */
{
    double e, w = xpit__one_minus_exp(x, &e);
    double d = -g * (e / w);
    return x > 0.0 ? XPIT__NAN : d;
}
XPIT_FUNC double xpit_logitexp_vjp(double x, double g)      /* g logitexp'(x) */
{
    double e, w = xpit__one_minus_exp(x, &e);
    double d = g / w;
    return x > 0.0 ? XPIT__NAN : d;
}
XPIT_FUNC float xpit_log1mexp_vjpf(float x, float g) { return (float)xpit_log1mexp_vjp(x, g); }
XPIT_FUNC float xpit_logitexp_vjpf(float x, float g) { return (float)xpit_logitexp_vjp(x, g); }

/* The log-space members in float32: the same decomposition in plain double, to a relative
   error of about 2^-42, rounded once. e^y = 2^k (1 + em1) with em1 = expm1(r) = r + r^2 Q(r),
   Q of degree 7 (least squares on Chebyshev nodes, relative to expm1: 2^-43.4); 2 atanh(s) =
   2s + s^3 P(s^2), P of degree 4 (2^-44.7); w = +-(e^z - 1) exact in relative terms where
   k = 0 (+-em1), at least 0.29 elsewhere; near w = 1 the log takes n = w - 1 directly
   (-e^z, or 2 em1 = e^y - 2 where k = 1). x is clamped at -110, past float's last nonzero
   result (e^-103.97 rounds to 0 in float). */
XPIT_FUNC double xpit__expm1f_parts(double y, double *s)     /* expm1(r), and 2^k in *s */
{
    double yc = y < -110.0 ? -110.0 : y;   /* NaN stays NaN */
    double t = yc * XPIT__LOG2E + XPIT__MAGIC;
    double kd = t - XPIT__MAGIC;           /* k, in [-159, 1] */
    double r = fma(-kd, XPIT__LN2LO, fma(-kd, XPIT__LN2HI, yc));  /* r = y where k = 0 */
    double q = 0x1.71fcebc909a36p-19;
    q = fma(q, r, 0x1.a15af91ee229dp-16);
    q = fma(q, r, 0x1.a01a69caf09d4p-13);
    q = fma(q, r, 0x1.6c164d8d34651p-10);
    q = fma(q, r, 0x1.111110e75b592p-7);
    q = fma(q, r, 0x1.555555744757cp-5);
    q = fma(q, r, 0x1.5555555564b7ap-3);
    q = fma(q, r, 0x1.fffffffff7177p-2);
    *s = xpit__f64((xpit__u64(t) + (1023ULL - XPIT__MAGIC_BITS)) << 52);
    return fma(r * r, q, r);
}

/* log(w) for w in (0, 4) (normal), with n = w - 1 used where w is in [1/sqrt 2, sqrt 2). */
XPIT_FUNC double xpit__logf_near1(double w, double n)
{
    double m;
    unsigned long long jb = xpit__split_log(w, &m);
    double kd = xpit__f64(XPIT__MAGIC_BITS + jb) - XPIT__MAGIC - 1023.0;
    double num = jb == 1023ULL ? n : m - 1.0;
    double sv = num / (num + 2.0), z = sv * sv;
    double P = 0x1.91b9f86fe2e8dp-3;
    P = fma(P, z, 0x1.c62030ccdc7aep-3);
    P = fma(P, z, 0x1.249431998d12ep-2);
    P = fma(P, z, 0x1.99999660d59cfp-2);
    P = fma(P, z, 0x1.5555555638451p-1);
    return fma(kd, XPIT__LN2HI, fma(z * sv, P, 2.0 * sv));
}

/* log(sg (e^z - 1)): sg = -1 for z <= 0, sg = +1 for 0 <= z <= 1 (as xpit__log_abs_expm1) */
XPIT_FUNC double xpit__log_abs_expm1f(double z, double sg)
{
    double s, em1 = xpit__expm1f_parts(z, &s);
    double e = s + s * em1;
    double w = s == 1.0 ? sg * em1 : sg * (e - 1.0);
    double n = sg < 0.0 ? -e : 2.0 * em1;  /* sg = +1: used only where k = 1 */
    return xpit__logf_near1(w, n);
}

XPIT_FUNC float xpit_log1mexpf(float x)
{
    double r = xpit__log_abs_expm1f(x, -1.0);
    r = x == 0.0f ? -XPIT__INF : r;
    r = x > 0.0f ? XPIT__NAN : r;
    return x != x ? x : (float)r;
}

XPIT_FUNC float xpit_logexpm1f(float y)
{
    double yd = y;
    int big = yd > 1.0;
    double r = (big ? yd : 0.0) + xpit__log_abs_expm1f(big ? -yd : yd, big ? -1.0 : 1.0);
    r = yd > 0x1p60 ? yd : r;              /* inf stays inf */
    r = y == 0.0f ? -XPIT__INF : r;
    r = y < 0.0f ? XPIT__NAN : r;
    return y != y ? y : (float)r;
}

XPIT_FUNC float xpit_logitexpf(float x)
{
    float r = -xpit_logexpm1f(-x);
    r = x > 0.0f ? (float)XPIT__NAN : r;
    return x != x ? x : r;
}

/* logdiffexp in float32: a + log(1 - e^(b - a)) in double, b - a exact for float a and b
   (or, where it is not, far below any effect); special values as in float64. */
XPIT_FUNC float xpit_logdiffexpf(float a, float b)
{
    double ad = a, bd = b, d = bd - ad;
    double r = ad + xpit__log_abs_expm1f(d, -1.0);
    r = d == -XPIT__INF ? ad : r;
    r = a == b ? (ad == XPIT__INF ? XPIT__NAN : -XPIT__INF) : r;
    r = a < b ? XPIT__NAN : r;
    return (a != a) | (b != b) ? a + b : (float)r;
}

/* ---- the backward passes: g f'(x) in one pass (PyTorch's and JAX's gradients) ----
   Each is exactly the product of two operations, the derivative rounded to the type first:
   g * sigmoid_grad(x), g * sigmoid(-x), g * sigmoid(x) (float32: float products, so the
   same bits as `grad * xpit.sigmoid_grad(x)` computed as two arrays); logit's is
   g / (p (1 - p)) as g / p / (1 - p), computed in double and rounded once for float32:
   1 - p is exact for p >= 1/2 and rounded once below, so nothing cancels, and dividing
   twice keeps 1e-300 ** 2 from underflowing to a 1 / 0; NaN outside [0, 1]. */
XPIT_FUNC double xpit_sigmoid_vjp(double x, double g) { return g * xpit_sigmoid_grad(x); }
XPIT_FUNC double xpit_log_sigmoid_vjp(double x, double g) { return g * xpit_sigmoid(-x); }
XPIT_FUNC double xpit_softplus_vjp(double x, double g) { return g * xpit_sigmoid(x); }
XPIT_FUNC double xpit_logit_vjp(double p, double g)  /* NaN outside [0, 1], as logit */
{
    double d = g / p / (1.0 - p);
    return ((p >= 0.0) & (p <= 1.0)) ? d : XPIT__NAN;
}
XPIT_FUNC float xpit_sigmoid_vjpf(float x, float g) { return g * xpit_sigmoid_gradf(x); }
XPIT_FUNC float xpit_log_sigmoid_vjpf(float x, float g) { return g * xpit_sigmoidf(-x); }
XPIT_FUNC float xpit_softplus_vjpf(float x, float g) { return g * xpit_sigmoidf(x); }
XPIT_FUNC float xpit_logit_vjpf(float p, float g) { return (float)xpit_logit_vjp(p, g); }

#endif /* XPIT_FAMILY_H */
