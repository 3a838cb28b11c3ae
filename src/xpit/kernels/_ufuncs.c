/*
 * xpit.kernels._ufuncs: NumPy ufuncs for the logistic family.
 *
 * The formulas are family.h's, included once; this file only adds what NumPy
 * needs around them: the inner loops (float16, float32, float64; any strides;
 * a contiguous fast path the compiler vectorises), the float16 conversions,
 * the ufunc objects and their docstrings, and the CPU dispatch.
 *
 * CPU dispatch. The loops in _ufuncs_loops.h are compiled three times from the
 * same text: for baseline x86-64, for x86-64-v3 (AVX2 + FMA) and for
 * x86-64-v4 (AVX-512), the latter two under a target pragma; family.h's
 * functions are force-inlined into each, so each variant runs the formulas
 * with its own instructions. The variant is chosen once, at import, with
 * __builtin_cpu_supports. Every variant gives the same bits: family.h writes
 * every multiply-add as fma() (libm's exact routine on baseline x86-64, one
 * instruction with FMA), uses no libm transcendental, and the build uses
 * -ffp-contract=off (never -ffast-math). NaNs aside: which operand's NaN an
 * operation returns (its sign and payload) follows operand order, which the
 * compiler may swap in + and *, so a NaN's bits may differ between variants.
 * Other architectures and compilers build the baseline variant only.
 *
 * Explicit variants rather than GCC's target_clones: the choice is made once
 * and can be reported (cpu_path) and overridden (_set_path) so the tests can
 * check that all variants give the same bits; it works with gcc and clang, and
 * needs no ifunc support from the loader.
 *
 * Floating-point flags. The formulas are IEEE operations that raise inexact,
 * underflow, overflow, divide-by-zero or invalid on their way to the
 * documented results (0 for sigmoid(-1000), NaN for logit(2), -inf for
 * logit(0)), and NumPy would turn those flags into warnings or errors. Every
 * loop call therefore clears the flags it raised, keeping those raised before.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#include <numpy/ndarraytypes.h>
#include <numpy/ufuncobject.h>

#include <fenv.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define XPIT_SSE_FLAGS 1
#else
#define XPIT_SSE_FLAGS 0
#endif

#if defined(__GNUC__) || defined(__clang__)
/* Forced, so that every CPU variant compiles the formulas for its own ISA. */
#define XPIT_INLINE static inline __attribute__((always_inline))
#define XPIT_SIMD _Pragma("omp simd")
#else
#define XPIT_INLINE static __inline
#define XPIT_SIMD
#endif

#if !defined(XPIT_FUNC) && (defined(__GNUC__) || defined(__clang__))
#define XPIT_FUNC XPIT_INLINE
#endif
#include "family.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) \
        && !defined(XPIT_NO_DISPATCH)
#define XPIT_X86_DISPATCH 1
#else
#define XPIT_X86_DISPATCH 0
#endif

/* --- float16 <-> float64, bit by bit -------------------------------------------------------- */

XPIT_INLINE npy_uint64 xpit_bits(double x)
{
    npy_uint64 b;
    memcpy(&b, &x, sizeof b);
    return b;
}

XPIT_INLINE double xpit_from_bits(npy_uint64 b)
{
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/*
 * Exact. Normals and infinities/NaNs (payload kept) by moving bits; subnormals are an integer
 * times 2^-24. Integer <-> double conversions are signed 32-bit, which AVX2 vectorises.
 */
XPIT_INLINE double xpit_half_to_double(npy_uint16 h)
{
    const npy_uint64 sign = (npy_uint64)(h & 0x8000u) << 48;
    const npy_uint64 e = (h >> 10) & 0x1fu;
    const npy_uint64 m = h & 0x3ffu;
    const npy_uint64 normal = ((e + 1008u) << 52) | (m << 42);
    const npy_uint64 special = 0x7ff0000000000000ull | (m << 42);
    const npy_uint64 subnormal = xpit_bits((double)(npy_int32)m * 0x1p-24);
    const npy_uint64 bits = e == 0u ? subnormal : (e == 31u ? special : normal);
    return xpit_from_bits(bits | sign);
}

/* Round to nearest, ties to even, once; NaN stays NaN (quiet, top payload bits kept). */
XPIT_INLINE npy_uint16 xpit_double_to_half(double x)
{
    const npy_uint64 b = xpit_bits(x);
    const npy_uint64 a = b & 0x7fffffffffffffffull;
    const npy_uint64 sign = (b >> 48) & 0x8000u;
    /* |x| >= 2^-14 (a half normal): rebias the exponent, round 52 -> 10 fraction bits */
    const npy_uint64 r = a - (1008ull << 52);
    const npy_uint64 normal = (r + 0x1ffffffffffull + ((r >> 42) & 1u)) >> 42;
    /* |x| < 2^-14: |x| * 2^24 rounded to an integer by adding 2^52, read from the low bits
       (1024, the smallest normal's pattern, comes out right too) */
    const double scaled = xpit_from_bits(a) * 0x1p24 + 0x1p52;
    const npy_uint64 subnormal = xpit_bits(scaled) - 0x4330000000000000ull;
    npy_uint64 h = a < 0x3f10000000000000ull ? subnormal : normal;
    h = a >= 0x40effe0000000000ull ? 0x7c00u : h;  /* |x| >= 65520 rounds to infinity */
    h = a > 0x7ff0000000000000ull ? (0x7e00u | ((a >> 42) & 0x3ffu)) : h;
    return (npy_uint16)(h | sign);
}

/* --- the scalar functions the loops call, per dtype --------------------------------------- */

#define XPIT_HALF1(name, fd)                                                     \
    XPIT_INLINE npy_uint16 xpit_h1_##name(npy_uint16 x)                          \
    {                                                                            \
        return xpit_double_to_half(fd(xpit_half_to_double(x)));                  \
    }

#define XPIT_HALF2(name, fd)                                                     \
    XPIT_INLINE npy_uint16 xpit_h2_##name(npy_uint16 a, npy_uint16 b)            \
    {                                                                            \
        return xpit_double_to_half(fd(xpit_half_to_double(a), xpit_half_to_double(b))); \
    }

/* Two arguments, float32 through double and rounded once (no float version in family.h). */
#define XPIT_HALF_FLOAT2(name, fd)                                               \
    XPIT_HALF2(name, fd)                                                         \
    XPIT_INLINE float xpit_f2_##name(float a, float b)                           \
    {                                                                            \
        return (float)fd((double)a, (double)b);                                  \
    }

XPIT_HALF1(sigmoid, xpit_sigmoid)
XPIT_HALF1(sigmoid_grad, xpit_sigmoid_grad)
XPIT_HALF1(log_sigmoid, xpit_log_sigmoid)
XPIT_HALF1(softplus, xpit_softplus)
XPIT_HALF1(logit, xpit_logit)
XPIT_HALF_FLOAT2(sigmoid_backward, xpit_sigmoid_backward)
XPIT_HALF2(bce_with_logits, xpit_bce)

/* Three arguments, float16 through double and rounded once. */
#define XPIT_HALF3(name, fd)                                                     \
    XPIT_INLINE npy_uint16 xpit_h3_##name(npy_uint16 a, npy_uint16 b, npy_uint16 c) \
    {                                                                            \
        return xpit_double_to_half(fd(xpit_half_to_double(a), xpit_half_to_double(b), \
                                      xpit_half_to_double(c)));                  \
    }

XPIT_HALF3(bce_with_logits_pos, xpit_bce_pos)
XPIT_HALF3(bce_with_logits_pos_grad, xpit_bce_pos_grad)
XPIT_HALF2(bce_with_logits_grad, xpit_bce_grad)
XPIT_HALF2(sigmoid_vjp, xpit_sigmoid_vjp)
XPIT_HALF2(log_sigmoid_vjp, xpit_log_sigmoid_vjp)
XPIT_HALF2(softplus_vjp, xpit_softplus_vjp)
XPIT_HALF2(logit_vjp, xpit_logit_vjp)
XPIT_HALF1(log1mexp, xpit_log1mexp)
XPIT_HALF1(logexpm1, xpit_logexpm1)
XPIT_HALF1(logitexp, xpit_logitexp)
XPIT_HALF2(logdiffexp, xpit_logdiffexp)
XPIT_HALF2(log1mexp_vjp, xpit_log1mexp_vjp)
XPIT_HALF2(logitexp_vjp, xpit_logitexp_vjp)

/* sigmoid and sigmoid_grad together (one loop, two outputs); float32's pair is family.h's
   (one shared exp), float16's and float64's are the two functions side by side. */
typedef struct { double s, d; } xpit_pair_d;
typedef struct { npy_uint16 s, d; } xpit_pair_e;
XPIT_INLINE xpit_pair_d xpit_sigmoid_with_grad_d(double x)
{
    xpit_pair_d r = {xpit_sigmoid(x), xpit_sigmoid_grad(x)};
    return r;
}
XPIT_INLINE xpit_pair_e xpit_sigmoid_with_grad_e(npy_uint16 x)
{
    xpit_pair_e r = {xpit_h1_sigmoid(x), xpit_h1_sigmoid_grad(x)};
    return r;
}

/* --- the loops, once per CPU variant ----------------------------------------------------- */

/* The ufuncs in order; each has three loops: float16, float32, float64. */
#define XPIT_LOOP_LIST(X)                                                        \
    X(sigmoid) X(sigmoid_grad) X(log_sigmoid) X(softplus) X(logit)               \
    X(sigmoid_backward) X(bce_with_logits)                                       \
    X(sigmoid_vjp) X(log_sigmoid_vjp) X(softplus_vjp) X(logit_vjp)               \
    X(bce_with_logits_pos) X(bce_with_logits_grad) X(bce_with_logits_pos_grad)       \
    X(log1mexp) X(logexpm1) X(logitexp) X(logdiffexp) X(log1mexp_vjp) X(logitexp_vjp)  \
    X(sigmoid_with_grad)
#define XPIT_NUFUNCS 21
#define XPIT_NTYPES 3

#define XPIT_VARIANT _baseline
#include "_ufuncs_loops.h"
#undef XPIT_VARIANT

#if XPIT_X86_DISPATCH
/*
 * ISA extensions only (no arch=), so the baseline functions of family.h may be inlined.
 * The pragmas need string literals: keep each pair of strings below identical.
 */

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,bmi,bmi2"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx,avx2,fma,bmi,bmi2")
#endif
#define XPIT_VARIANT _v3
#include "_ufuncs_loops.h"
#undef XPIT_VARIANT
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,bmi,bmi2,avx512f,avx512cd,avx512vl,avx512bw,avx512dq"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx,avx2,fma,bmi,bmi2,avx512f,avx512cd,avx512vl,avx512bw,avx512dq")
#endif
#define XPIT_VARIANT _v4
#include "_ufuncs_loops.h"
#undef XPIT_VARIANT
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

static int xpit_has_v3(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2")
        && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi")
        && __builtin_cpu_supports("bmi2");
}

static int xpit_has_v4(void)
{
    return xpit_has_v3() && __builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}
#endif /* XPIT_X86_DISPATCH */

static int xpit_always(void) { return 1; }

typedef struct {
    const char *name;         /* what _set_path takes */
    const char *description;  /* what cpu_path says */
    PyUFuncGenericFunction const *loops;
    int (*supported)(void);
} xpit_path;

static const xpit_path xpit_paths[] = {
#if XPIT_X86_DISPATCH
    {"baseline", "baseline (x86-64)", xpit_loops_baseline, xpit_always},
    {"x86-64-v3", "x86-64-v3 (AVX2+FMA)", xpit_loops_v3, xpit_has_v3},
    {"x86-64-v4", "x86-64-v4 (AVX-512)", xpit_loops_v4, xpit_has_v4},
#else
    {"baseline", "baseline (portable C)", xpit_loops_baseline, xpit_always},
#endif
};
#define XPIT_NPATHS ((int)(sizeof xpit_paths / sizeof xpit_paths[0]))

static const xpit_path *xpit_active = &xpit_paths[0];

/*
 * The one function NumPy calls: `data` is the loop's index in the active variant's table.
 * Being a real call (not inlined), the flags test and clear cannot move across the loop.
 */
static void xpit_dispatch(char **args, npy_intp const *dimensions, npy_intp const *steps,
                          void *data)
{
#if XPIT_SSE_FLAGS
    /* The loops do all their arithmetic in SSE registers: MXCSR's six flag bits hold
       everything they raise (glibc's feclearexcept also rewrites the x87 state: slower). */
    const unsigned int before = _mm_getcsr();
    xpit_active->loops[(npy_intp)data](args, dimensions, steps, NULL);
    _mm_setcsr(_mm_getcsr() & (before | ~0x3fu));
#else
    const int before = fetestexcept(FE_ALL_EXCEPT);
    xpit_active->loops[(npy_intp)data](args, dimensions, steps, NULL);
    feclearexcept(FE_ALL_EXCEPT & ~before);
#endif
}

/* --- the ufunc objects ------------------------------------------------------------------- */

static PyUFuncGenericFunction xpit_funcs[XPIT_NUFUNCS * XPIT_NTYPES];
static void *xpit_data[XPIT_NUFUNCS * XPIT_NTYPES];

static char xpit_types1[] = {NPY_HALF, NPY_HALF, NPY_FLOAT, NPY_FLOAT, NPY_DOUBLE, NPY_DOUBLE};
static char xpit_types3[] = {NPY_HALF, NPY_HALF, NPY_HALF, NPY_HALF, NPY_FLOAT, NPY_FLOAT,
                             NPY_FLOAT, NPY_FLOAT, NPY_DOUBLE, NPY_DOUBLE, NPY_DOUBLE,
                             NPY_DOUBLE};
static char xpit_types1_2[] = {NPY_HALF, NPY_HALF, NPY_HALF, NPY_FLOAT, NPY_FLOAT, NPY_FLOAT,
                               NPY_DOUBLE, NPY_DOUBLE, NPY_DOUBLE};
static char xpit_types2[] = {NPY_HALF, NPY_HALF, NPY_HALF, NPY_FLOAT, NPY_FLOAT, NPY_FLOAT,
                             NPY_DOUBLE, NPY_DOUBLE, NPY_DOUBLE};

#define XPIT_DTYPES_NOTE                                                              \
    "float16, float32 and float64 are computed in float64 and rounded once to the\n"  \
    "input's dtype. Integer and boolean inputs follow NumPy's type resolution, as\n"  \
    "for ``numpy.exp``: (u)int8 and bool give float16, (u)int16 float32, wider\n"     \
    "integers float64. Every CPU path (baseline x86-64, AVX2+FMA, AVX-512) gives\n"   \
    "the same bits.\n"                                                                \
    "Accuracy: sigmoid, sigmoid_grad, log_sigmoid, softplus and logit are within\n" \
    "1 ULP of the exact value in float64 (1.5 for sigmoid_grad; tests/test_accuracy.py\n" \
    "checks against 128-bit mpmath); in float32 every input is within 1 ULP and all\n" \
    "but a few in a million are correctly rounded (tests/test_exhaustive.py).\n"

#define XPIT_UFUNC_KWARGS                                                             \
    "out : ndarray, None, or tuple of ndarray and None, optional\n"                   \
    "    Where to store the result, as for any ufunc.\n"                              \
    "where : array_like, optional\n"                                                  \
    "    Where False, ``out`` keeps its value.\n"                                      \
    "**kwargs\n"                                                                      \
    "    The other ufunc keywords (``casting``, ``dtype``, ``order``, ...).\n"

static const char doc_sigmoid[] =
    "The logistic sigmoid ``1 / (1 + exp(-x))``, elementwise.\n\n"
    "Parameters\n----------\n"
    "x : array_like\n    Real input, any value including +-inf.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    Values in [0, 1]; 0 at -inf, 1 at +inf, NaN for NaN. Never overflows.\n"
    "\nNotes\n-----\n"
    "Computed as ``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` below, with\n"
    "``e = exp(-|x|)`` and the rounding error of ``1 + e`` carried along.\n"
    XPIT_DTYPES_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import sigmoid\n"
    ">>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))\n"
    "array([0. , 0.5, 1. ])\n"
    ">>> sigmoid(np.float32(2.0))\n"
    "np.float32(0.8807971)\n";

static const char doc_sigmoid_grad[] =
    "The derivative of the sigmoid, ``sigmoid(x) * sigmoid(-x)``, elementwise.\n\n"
    "Parameters\n----------\n"
    "x : array_like\n    Real input, any value including +-inf.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    Values in [0, 1/4]; 0 at +-inf, NaN for NaN. Accurate in the tails,\n"
    "    where ``s * (1 - s)`` would round to 0.\n"
    "\nNotes\n-----\n"
    "Computed as ``e / (1 + e)**2`` with ``e = exp(-|x|)``.\n"
    XPIT_DTYPES_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import sigmoid_grad\n"
    ">>> sigmoid_grad(np.array([0.0, 40.0]))\n"
    "array([2.500...e-01, 4.248...e-18])\n";

static const char doc_log_sigmoid[] =
    "The log of the sigmoid, ``log(1 / (1 + exp(-x))) = -softplus(-x)``, elementwise.\n\n"
    "Parameters\n----------\n"
    "x : array_like\n    Real input, any value including +-inf.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    Values <= 0; -inf at -inf, 0 at +inf, NaN for NaN. Never overflows.\n"
    "\nNotes\n-----\n"
    "Computed as ``min(x, 0) - log1p(exp(-|x|))``.\n"
    XPIT_DTYPES_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import log_sigmoid\n"
    ">>> log_sigmoid(np.array([-2.0, 0.0]))\n"
    "array([-2.12692801, -0.69314718])\n"
    ">>> log_sigmoid(-1000.0)\n"
    "np.float64(-1000.0)\n";

static const char doc_softplus[] =
    "The softplus ``log(1 + exp(x))``, elementwise.\n\n"
    "Parameters\n----------\n"
    "x : array_like\n    Real input, any value including +-inf.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    Values >= 0; 0 at -inf, inf at +inf, NaN for NaN. Never overflows for\n"
    "    finite x.\n"
    "\nNotes\n-----\n"
    "Computed as ``max(x, 0) + log1p(exp(-|x|))``.\n"
    XPIT_DTYPES_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import softplus\n"
    ">>> softplus(np.array([0.0, 1000.0]))\n"
    "array([6.93147181e-01, 1.00000000e+03])\n";

static const char doc_logit[] =
    "The logit ``log(p / (1 - p))``, the inverse of the sigmoid, elementwise.\n\n"
    "Parameters\n----------\n"
    "x : array_like\n    Probabilities ``p`` in [0, 1].\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    -inf at 0, +inf at 1, NaN outside [0, 1] and for NaN (no warning).\n"
    "\nNotes\n-----\n"
    "Computed as ``2 atanh(2p - 1)`` for p >= 1/4 (where ``2p - 1`` is exact) and\n"
    "``log(p) - log1p(-p)`` below.\n"
    XPIT_DTYPES_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import logit\n"
    ">>> logit(np.array([0.0, 0.5, 1.0, 2.0]))\n"
    "array([-inf,   0.,  inf,  nan])\n";

static const char doc_sigmoid_backward[] =
    "The sigmoid's backward pass from its output: ``grad * (s * (1 - s))``, elementwise.\n\n"
    "Parameters\n----------\n"
    "x1 : array_like\n    ``s``, the sigmoid's output, in [0, 1].\n"
    "x2 : array_like\n    ``grad``, the incoming gradient; broadcast against ``s``.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    The gradient with respect to the sigmoid's input. Where ``s`` has\n"
    "    rounded to 1 this is 0; use :data:`sigmoid_grad` of the input there.\n"
    "\nNotes\n-----\n"
    XPIT_DTYPES_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import sigmoid_backward\n"
    ">>> sigmoid_backward(np.array([0.5, 0.9]), 2.0)\n"
    "array([0.5 , 0.18])\n";

static const char doc_bce_with_logits[] =
    "The binary cross-entropy of logits ``z`` against targets ``t``, elementwise:\n"
    "``-(t log sigmoid(z) + (1 - t) log sigmoid(-z))``.\n\n"
    "Parameters\n----------\n"
    "x1 : array_like\n    ``z``, the logits, any value including +-inf.\n"
    "x2 : array_like\n    ``t``, the targets, usually in [0, 1]; broadcast against ``z``.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    The loss term of each element (no reduction). No term overflows for\n"
    "    finite z, and a zero weight gives exactly 0 even for infinite z.\n"
    "\nNotes\n-----\n"
    "Computed as ``|z| c + log1p(exp(-|z|))`` with ``c = 1 - t`` for z >= 0 and\n"
    "``c = t`` below.\n"
    XPIT_DTYPES_NOTE
    "The float32 loop has a kernel of its own, still in float64 arithmetic and\n"
    "rounded once but without double-double steps, so it vectorises: within 1 ULP\n"
    "of the float64 result rounded once, and its bits on every input tested.\n"
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import bce_with_logits\n"
    ">>> bce_with_logits(np.array([0.0, 1000.0, -1000.0]), np.array([1.0, 1.0, 1.0]))\n"
    "array([6.93147181e-01, 0.00000000e+00, 1.00000000e+03])\n";

/* The backward passes (vector-Jacobian products) of PyTorch's and JAX's operators: not in
   xpit.ufuncs' public list, documented for whoever finds them. */
#define XPIT_VJP_DOC(name, what, example, result)                                     \
    "The backward pass of ``" #name "``: ``grad * " what "``, one pass.\n\n"           \
    "Parameters\n----------\n"                                                        \
    "x1 : array_like\n    The input of ``" #name "``.\n"                              \
    "x2 : array_like\n    ``grad``, the incoming gradient; broadcast against x1.\n"   \
    XPIT_UFUNC_KWARGS                                                                 \
    "\nReturns\n-------\n"                                                           \
    "ndarray or scalar\n"                                                             \
    "    The gradient with respect to x1.\n"                                          \
    "\nNotes\n-----\n"                                                               \
    "sigmoid, log_sigmoid, softplus: the derivative is rounded to the dtype, then\n"   \
    "multiplied by ``grad`` (the bits of the two separate operations; float16 is\n"   \
    "computed in float64 and rounded once). logit: ``g / p / (1 - p)`` in float64,\n"  \
    "rounded once, NaN outside [0, 1]. Used by xpit's PyTorch operators.\n"           \
    "\nExamples\n--------\n"                                                          \
    ">>> import numpy as np\n"                                                        \
    ">>> from xpit.kernels import _ufuncs\n"                                          \
    ">>> _ufuncs." #name "_vjp(" example ", 2.0)\n"                                    \
    result "\n"

static const char doc_sigmoid_vjp[] =
    XPIT_VJP_DOC(sigmoid, "sigmoid_grad(x)", "0.0", "np.float64(0.5)");
static const char doc_log_sigmoid_vjp[] =
    XPIT_VJP_DOC(log_sigmoid, "sigmoid(-x)", "0.0", "np.float64(1.0)");
static const char doc_softplus_vjp[] =
    XPIT_VJP_DOC(softplus, "sigmoid(x)", "0.0", "np.float64(1.0)");
static const char doc_logit_vjp[] =
    XPIT_VJP_DOC(logit, "1 / (p (1 - p))", "0.5", "np.float64(8.0)");

static const char doc_bce_with_logits_pos[] =
    "The binary cross-entropy of logits ``z`` against targets ``t`` with a weight ``w``\n"
    "on the positive class (PyTorch's ``pos_weight``), elementwise:\n"
    "``-(w t log sigmoid(z) + (1 - t) log sigmoid(-z))``.\n\n"
    "Parameters\n----------\n"
    "x1 : array_like\n    ``z``, the logits, any value including +-inf.\n"
    "x2 : array_like\n    ``t``, the targets, usually in [0, 1].\n"
    "x3 : array_like\n    ``w``, the positive-class weight; all three broadcast.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    The loss term of each element (no reduction); with ``w = 1`` the bits of\n"
    "    ``bce_with_logits(z, t)`` for targets in [0, 1].\n"
    "\nNotes\n-----\n"
    "Computed as ``|z| c + ((1 - t) + w t) log1p(exp(-|z|))`` with ``c = 1 - t`` for\n"
    "z >= 0 and ``c = w t`` below. Used by xpit.binary_cross_entropy_with_logits.\n"
    XPIT_DTYPES_NOTE
    "The float32 loop has a kernel of its own, still in float64 arithmetic and\n"
    "rounded once but without double-double steps, so it vectorises: within 1 ULP\n"
    "of the float64 result rounded once for targets in [0, 1] and ``w >= 0``, and\n"
    "its bits on every input tested.\n"
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.kernels import _ufuncs\n"
    ">>> _ufuncs.bce_with_logits_pos(np.array([0.0, -1000.0]), 1.0, 3.0)\n"
    "array([2.07944154e+00, 3.00000000e+03])\n";

#define XPIT_BCE_GRAD_NOTES                                                           \
    "\nReturns\n-------\n"                                                           \
    "ndarray or scalar\n"                                                             \
    "    The derivative of the loss term with respect to ``z`` (its backward pass\n"  \
    "    for an incoming gradient of 1).\n"                                            \
    "\nNotes\n-----\n"                                                               \
    "Computed as ``(1 - t) sigmoid(z) - w t sigmoid(-z)``: each term keeps its\n"     \
    "relative accuracy in both tails, where ``sigmoid(z) - t`` cancels to 0.\n"       \
    "Used by xpit's PyTorch operators.\n"                                             \
    XPIT_DTYPES_NOTE                                                                  \
    "The float32 loops have a kernel of their own (one float64 exp for both\n"       \
    "sigmoids): the float64 result rounded once but for about 1 in 10^5 inputs\n"    \
    "(1 ULP apart), and nearer the exact value than that where the terms cancel.\n"

static const char doc_bce_with_logits_grad[] =
    "The derivative of ``bce_with_logits(z, t)`` with respect to ``z``, elementwise.\n\n"
    "Parameters\n----------\n"
    "x1 : array_like\n    ``z``, the logits.\n"
    "x2 : array_like\n    ``t``, the targets; broadcast against ``z``.\n"
    XPIT_UFUNC_KWARGS
    XPIT_BCE_GRAD_NOTES
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.kernels import _ufuncs\n"
    ">>> _ufuncs.bce_with_logits_grad(np.float32([0.0, 20.0]), np.float32(1.0))\n"
    "array([-5.0000000e-01, -2.0611537e-09], dtype=float32)\n";

static const char doc_bce_with_logits_pos_grad[] =
    "The derivative of ``bce_with_logits_pos(z, t, w)`` with respect to ``z``.\n\n"
    "Parameters\n----------\n"
    "x1 : array_like\n    ``z``, the logits.\n"
    "x2 : array_like\n    ``t``, the targets.\n"
    "x3 : array_like\n    ``w``, the positive-class weight; all three broadcast.\n"
    XPIT_UFUNC_KWARGS
    XPIT_BCE_GRAD_NOTES
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.kernels import _ufuncs\n"
    ">>> _ufuncs.bce_with_logits_pos_grad(0.0, 1.0, 3.0)\n"
    "np.float64(-1.5)\n";

#define XPIT_LOGSPACE_NOTE                                                            \
    "float16, float32 and float64 are computed in float64 and rounded once to the\n"  \
    "input's dtype; integers and booleans follow NumPy's type resolution, as for\n"   \
    "``numpy.exp``. Accuracy: within 1 ULP in float64 (tests/test_accuracy.py, against\n" \
    "128-bit mpmath, both ends and the zero crossing included); in float32 every\n"  \
    "input is within 1 ULP and all but a few are correctly rounded\n"                 \
    "(tests/test_exhaustive.py). Every CPU path gives the same bits, and so do the\n" \
    "GPU kernels, compiled from the same source.\n"

static const char doc_log1mexp[] =
    "``log(1 - exp(x))`` for x <= 0, elementwise: the log of a complement, for a\n"
    "probability held as its log.\n\n"
    "Parameters\n----------\n"
    "x : array_like\n    Log-probabilities, x <= 0.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    Values <= 0; -inf at 0, -0.0 at -inf, NaN above 0 and for NaN (no warning).\n"
    "\nNotes\n-----\n"
    "Mathematically ``log(-expm1(x))`` near 0 and ``log1p(-exp(x))`` below -ln 2;\n"
    "computed from one ``exp`` kept as a double-double and one ``log``, so neither\n"
    "end loses digits: ``log1mexp(-1e-20)`` is -46.05 (the textbook formula gives\n"
    "-inf) and ``log1mexp(-50)`` is -1.93e-22 (not 0).\n"
    XPIT_LOGSPACE_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import log1mexp\n"
    ">>> log1mexp(np.array([-1e-20, -np.log(2.0), -50.0]))\n"
    "array([-4.60517019e+01, -6.93147181e-01, -1.92874985e-22])\n";

static const char doc_logexpm1[] =
    "``log(exp(y) - 1)`` for y >= 0, elementwise: the inverse of softplus.\n\n"
    "Parameters\n----------\n"
    "x : array_like\n    ``y >= 0``, e.g. a positive parameter.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    -inf at 0, inf at inf, NaN below 0 and for NaN (no warning). Never\n"
    "    overflows: ``logexpm1(1000) == 1000``.\n"
    "\nNotes\n-----\n"
    "Mathematically ``log(expm1(y))`` for y <= 1 and ``y + log1p(-exp(-y))`` above,\n"
    "computed so that nothing cancels at the zero y = ln 2, where the textbook\n"
    "formula loses every digit: there ``exp(y) - 2 = 2 expm1(y - ln 2)`` with\n"
    "``y - ln 2`` exact.\n"
    XPIT_LOGSPACE_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import logexpm1, softplus\n"
    ">>> logexpm1(np.array([1e-10, 1.0, 1000.0]))\n"
    "array([-2.30258509e+01,  5.41324855e-01,  1.00000000e+03])\n"
    ">>> float(softplus(logexpm1(3.0)))\n"
    "3.0\n";

static const char doc_logitexp[] =
    "``logit(exp(x)) = log(exp(x) / (1 - exp(x)))`` for x <= 0, elementwise: the logit\n"
    "of a probability held as its log.\n\n"
    "Parameters\n----------\n"
    "x : array_like\n    Log-probabilities, x <= 0.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    inf at 0, -inf at -inf, NaN above 0 and for NaN (no warning).\n"
    "\nNotes\n-----\n"
    "Computed as ``-logexpm1(-x)``, as accurate through its zero at x = -ln 2 as\n"
    "elsewhere.\n"
    XPIT_LOGSPACE_NOTE
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import logitexp\n"
    ">>> logitexp(np.array([-1000.0, np.log(0.25), -1e-10]))\n"
    "array([-1000.        ,    -1.09861229,    23.02585093])\n";

static const char doc_logdiffexp[] =
    "``log(exp(a) - exp(b))`` for a >= b, elementwise: the difference of two\n"
    "probabilities held as logs.\n\n"
    "Parameters\n----------\n"
    "x1 : array_like\n    ``a``.\n"
    "x2 : array_like\n    ``b <= a``; broadcast against ``a``.\n"
    XPIT_UFUNC_KWARGS
    "\nReturns\n-------\n"
    "ndarray or scalar\n"
    "    -inf where a == b (including -inf == -inf), ``a`` where b is -inf, NaN\n"
    "    where a < b, at a == b == inf and for NaN (no warning). Never overflows.\n"
    "\nNotes\n-----\n"
    "Computed as ``a + log1mexp(b - a)``, the rounding error of ``b - a`` carried\n"
    "through the slope of ``log1mexp``.\n"
    "Accuracy: the result crosses zero on the curve ``exp(a) - exp(b) = 1``; near it\n"
    "the relative error\n"
    "grows with the condition number ``|a e^a - b e^b| / |(e^a - e^b) result|`` (the\n"
    "result is exact for inputs perturbed by about 2^-56); elsewhere it is within\n"
    "1 ULP in float64.\n"
    "float16, float32 and float64 are computed in float64 and rounded once.\n"
    "\nExamples\n--------\n"
    ">>> import numpy as np\n"
    ">>> from xpit.ufuncs import logdiffexp\n"
    ">>> logdiffexp(np.array([0.0, 1000.0, 0.0]), np.array([-1e-20, 999.0, -np.inf]))\n"
    "array([-46.05170186, 999.54132485,   0.        ])\n";

#define XPIT_LOG_VJP_DOC(name, what, example, result)                                 \
    "The backward pass of " #name ": ``g * " what "``, elementwise, in one pass.\n\n"  \
    "Parameters\n----------\n"                                                        \
    "x1 : array_like\n    ``x <= 0``.\n"                                               \
    "x2 : array_like\n    ``g``, the incoming gradient; broadcast against ``x``.\n"     \
    XPIT_UFUNC_KWARGS                                                                   \
    "\nReturns\n-------\n"                                                            \
    "ndarray or scalar\n    NaN above 0; infinite at 0.\n"                              \
    "\nNotes\n-----\n"                                                                \
    "With ``w = 1 - exp(x)`` computed without cancellation (exactly ``-expm1(x)`` near\n" \
    "0). Used by xpit's PyTorch operators (logexpm1's backward at ``-y``, logdiffexp's\n" \
    "at ``b - a``). Accuracy: a few ULP; float16 and float32 rounded once from float64.\n" \
    "\nExamples\n--------\n"                                                          \
    ">>> from xpit.kernels import _ufuncs\n"                                            \
    ">>> _ufuncs." #name "_vjp(" example ", 1.0)\n" result "\n"

static const char doc_log1mexp_vjp[] =
    XPIT_LOG_VJP_DOC(log1mexp, "-exp(x) / (1 - exp(x))", "-0.6931471805599453",
                     "np.float64(-1.0...)");
static const char doc_logitexp_vjp[] =
    XPIT_LOG_VJP_DOC(logitexp, "1 / (1 - exp(x))", "-0.6931471805599453", "np.float64(2.0...)");

static const char doc_sigmoid_with_grad[] =
    "sigmoid_with_grad(x, /, out=(None, None), ...)\n\n"
    "``(sigmoid(x), sigmoid_grad(x))`` in one pass, the bits of each: the forward of\n"
    "sigmoid when its gradient will be needed (PyTorch's training path). Private.\n\n"
    ">>> from xpit.kernels import _ufuncs\n"
    ">>> _ufuncs.sigmoid_with_grad(0.0)\n"
    "(np.float64(0.5), np.float64(0.25))\n";

typedef struct {
    const char *name;
    const char *doc;
    int nin;
    int nout;
} xpit_ufunc_spec;

#define XPIT_SPEC1(name) {#name, doc_##name, 1, 1},
#define XPIT_SPEC2(name) {#name, doc_##name, 2, 1},
static const xpit_ufunc_spec xpit_specs[XPIT_NUFUNCS] = {
    XPIT_SPEC1(sigmoid) XPIT_SPEC1(sigmoid_grad) XPIT_SPEC1(log_sigmoid)
    XPIT_SPEC1(softplus) XPIT_SPEC1(logit)
    XPIT_SPEC2(sigmoid_backward) XPIT_SPEC2(bce_with_logits)
    XPIT_SPEC2(sigmoid_vjp) XPIT_SPEC2(log_sigmoid_vjp) XPIT_SPEC2(softplus_vjp)
    XPIT_SPEC2(logit_vjp)
    {"bce_with_logits_pos", doc_bce_with_logits_pos, 3, 1},
    {"bce_with_logits_grad", doc_bce_with_logits_grad, 2, 1},
    {"bce_with_logits_pos_grad", doc_bce_with_logits_pos_grad, 3, 1},
    XPIT_SPEC1(log1mexp) XPIT_SPEC1(logexpm1) XPIT_SPEC1(logitexp) XPIT_SPEC2(logdiffexp)
    XPIT_SPEC2(log1mexp_vjp) XPIT_SPEC2(logitexp_vjp)
    {"sigmoid_with_grad", doc_sigmoid_with_grad, 1, 2},
};

/* --- module-level functions: the CPU path ------------------------------------------------ */

static int xpit_set_active(PyObject *module, const xpit_path *path)
{
    PyObject *description = PyUnicode_FromString(path->description);
    if (description == NULL) {
        return -1;
    }
    int rc = PyObject_SetAttrString(module, "cpu_path", description);
    Py_DECREF(description);
    if (rc == 0) {
        xpit_active = path;
    }
    return rc;
}

static PyObject *xpit_available_paths(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *names = PyList_New(0);
    if (names == NULL) {
        return NULL;
    }
    for (int i = 0; i < XPIT_NPATHS; i++) {
        if (!xpit_paths[i].supported()) {
            continue;
        }
        PyObject *name = PyUnicode_FromString(xpit_paths[i].name);
        if (name == NULL || PyList_Append(names, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(names);
            return NULL;
        }
        Py_DECREF(name);
    }
    PyObject *result = PyList_AsTuple(names);
    Py_DECREF(names);
    return result;
}

static PyObject *xpit_get_path(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(xpit_active->name);
}

static PyObject *xpit_set_path(PyObject *module, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) {
        return NULL;
    }
    for (int i = 0; i < XPIT_NPATHS; i++) {
        if (strcmp(name, xpit_paths[i].name) != 0) {
            continue;
        }
        if (!xpit_paths[i].supported()) {
            PyErr_Format(PyExc_ValueError,
                         "CPU path %R is not available on this CPU", arg);
            return NULL;
        }
        PyObject *previous = PyUnicode_FromString(xpit_active->name);
        if (previous == NULL || xpit_set_active(module, &xpit_paths[i]) < 0) {
            Py_XDECREF(previous);
            return NULL;
        }
        return previous;
    }
    PyErr_Format(PyExc_ValueError, "Invalid CPU path: %R. Expected one of %s.", arg,
#if XPIT_X86_DISPATCH
                 "'baseline', 'x86-64-v3', 'x86-64-v4'"
#else
                 "'baseline'"
#endif
    );
    return NULL;
}

/* --- the contiguous entry: raw memory, split over a pool of threads ------------------------
 *
 * _contiguous(name, typecode, n, chunk, threads, scalars, *addresses) runs ufunc `name`'s
 * loop for dtype `typecode` ('e', 'f' or 'd') over n elements of contiguous memory at the
 * given addresses (inputs, then outputs; an input whose bit is set in the mask `scalars` is
 * one element, repeated), in chunks of `chunk` elements taken by the calling
 * thread and up to threads - 1 helper threads, without the GIL. It is what PyTorch's path
 * calls for contiguous CPU tensors: no NumPy array is made (a view through the array
 * interface costs about 10 microseconds), and a chunk reaches a helper thread in a few
 * microseconds (Python's thread pool takes tens, as much as 10^5 elements of work). Private,
 * and nothing checks the memory: the caller guarantees that each address is CPU memory of
 * n elements (one for a scalar input) of the typecode, aligned, in native byte order, alive
 * and not resized until the call returns, and that an output overlaps no input other than
 * by being that very input. Helpers run their chunks in the caller's floating-point mode.
 *
 * The helpers are POSIX threads started on first need and kept, with every signal blocked
 * (signals go to Python's main thread); a forked child starts without them. One call
 * uses the pool at a time; a second one meanwhile runs on its own thread only. */

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <signal.h>
#define XPIT_POOL 1
#else
#define XPIT_POOL 0
#endif
#define XPIT_MAX_ARGS 4
#define XPIT_MAX_HELPERS 63

typedef struct {
    npy_intp index;                  /* the loop's index in the active variant's table */
    int nargs;
    char *base[XPIT_MAX_ARGS];
    npy_intp itemsize, n, chunk, nchunks;
    unsigned long scalars;           /* bit j: argument j is one element, stride 0 */
    int helpers;                     /* at most this many helpers join (threads - 1) */
#if XPIT_SSE_FLAGS
    unsigned int control;            /* the caller's MXCSR without its flags: rounding, FTZ/DAZ */
#endif
} xpit_job;

/* A helper runs a chunk in the floating-point mode of the caller's thread (rounding,
   flush-to-zero), as the caller's own chunks run: the bits never depend on which thread
   took a chunk. */
static void xpit_run_chunk_as_caller(const xpit_job *job, npy_intp k);

static void xpit_run_chunk(const xpit_job *job, npy_intp k)
{
    npy_intp start = k * job->chunk;
    npy_intp len = job->n - start < job->chunk ? job->n - start : job->chunk;
    char *args[XPIT_MAX_ARGS];
    npy_intp steps[XPIT_MAX_ARGS];
    for (int j = 0; j < job->nargs; j++) {
        steps[j] = (job->scalars >> j) & 1 ? 0 : job->itemsize;
        args[j] = job->base[j] + start * steps[j];
    }
    xpit_dispatch(args, &len, steps, (void *)job->index);
}

static void xpit_run_chunk_as_caller(const xpit_job *job, npy_intp k)
{
#if XPIT_SSE_FLAGS
    const unsigned int own = _mm_getcsr();
    _mm_setcsr(job->control | (own & 0x3fu));
    xpit_run_chunk(job, k);
    _mm_setcsr(own);
#else
    xpit_run_chunk(job, k);  /* other CPUs: the helpers keep the default mode */
#endif
}

#if XPIT_POOL
static pthread_mutex_t xpit_pool_lock = PTHREAD_MUTEX_INITIALIZER;  /* all below */
static pthread_cond_t xpit_pool_wake = PTHREAD_COND_INITIALIZER;    /* a new job */
static pthread_cond_t xpit_pool_idle = PTHREAD_COND_INITIALIZER;    /* its last chunk done */
static pthread_mutex_t xpit_pool_busy = PTHREAD_MUTEX_INITIALIZER;  /* held by the job's caller */
static int xpit_pool_helpers;
static unsigned long xpit_pool_generation;
static const xpit_job *xpit_pool_job;
static npy_intp xpit_pool_next, xpit_pool_pending;
static int xpit_pool_joined;  /* helpers working on the current job */

/* Take chunks of the current job until none is left; called with the lock held. */
static void xpit_pool_work(int helper)
{
    while (xpit_pool_job != NULL && xpit_pool_next < xpit_pool_job->nchunks) {
        const xpit_job *job = xpit_pool_job;
        npy_intp k = xpit_pool_next++;
        pthread_mutex_unlock(&xpit_pool_lock);
        if (helper) {
            xpit_run_chunk_as_caller(job, k);
        }
        else {
            xpit_run_chunk(job, k);
        }
        pthread_mutex_lock(&xpit_pool_lock);
        if (--xpit_pool_pending == 0) {
            pthread_cond_signal(&xpit_pool_idle);
        }
    }
}

static void *xpit_helper(void *arg)
{
    unsigned long seen = (unsigned long)(size_t)arg;
#if defined(__APPLE__)
    pthread_setname_np("xpit-helper");  /* macOS names only the calling thread */
#endif
    pthread_mutex_lock(&xpit_pool_lock);
    for (;;) {
        while (xpit_pool_generation == seen) {
            pthread_cond_wait(&xpit_pool_wake, &xpit_pool_lock);
        }
        seen = xpit_pool_generation;
        /* A job asks for threads - 1 helpers: the pool may hold more (from an earlier,
           larger call), and those stay asleep. */
        if (xpit_pool_job != NULL && xpit_pool_joined < xpit_pool_job->helpers) {
            xpit_pool_joined++;
            xpit_pool_work(1);
        }
    }
    return NULL;
}

/* Start helpers up to `wanted` (called with the lock held); fewer if the OS refuses. */
static void xpit_pool_grow(int wanted)
{
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);  /* inherited by the new threads */
    while (xpit_pool_helpers < wanted) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, xpit_helper,
                           (void *)(size_t)xpit_pool_generation) != 0) {
            break;
        }
#if defined(__linux__)
        pthread_setname_np(thread, "xpit-helper");  /* what top and /proc show */
#endif
        pthread_detach(thread);
        xpit_pool_helpers++;
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
}

static void xpit_pool_after_fork(void)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER, busy = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t wake = PTHREAD_COND_INITIALIZER, idle = PTHREAD_COND_INITIALIZER;
    xpit_pool_lock = lock;
    xpit_pool_busy = busy;
    xpit_pool_wake = wake;
    xpit_pool_idle = idle;
    xpit_pool_helpers = 0;
    xpit_pool_joined = 0;
    xpit_pool_job = NULL;
}
#endif

static void xpit_run_job(xpit_job *job, int threads)
{
#if XPIT_POOL
    int helpers = threads - 1;
    if (helpers > job->nchunks - 1) {
        helpers = (int)(job->nchunks - 1);
    }
    if (helpers > XPIT_MAX_HELPERS) {
        helpers = XPIT_MAX_HELPERS;
    }
    if (helpers > 0 && pthread_mutex_trylock(&xpit_pool_busy) == 0) {
        pthread_mutex_lock(&xpit_pool_lock);
        xpit_pool_grow(helpers);
        job->helpers = helpers;
        xpit_pool_job = job;
        xpit_pool_next = 0;
        xpit_pool_pending = job->nchunks;
        xpit_pool_joined = 0;
        xpit_pool_generation++;
        pthread_cond_broadcast(&xpit_pool_wake);
        xpit_pool_work(0);
        while (xpit_pool_pending > 0) {
            pthread_cond_wait(&xpit_pool_idle, &xpit_pool_lock);
        }
        xpit_pool_job = NULL;
        pthread_mutex_unlock(&xpit_pool_lock);
        pthread_mutex_unlock(&xpit_pool_busy);
        return;
    }
#else
    (void)threads;
#endif
    for (npy_intp k = 0; k < job->nchunks; k++) {
        xpit_run_chunk(job, k);
    }
}

static PyObject *xpit_contiguous(PyObject *Py_UNUSED(module), PyObject *const *args,
                                 Py_ssize_t nargs)
{
    if (nargs < 7) {
        PyErr_SetString(PyExc_TypeError,
                        "_contiguous(name, typecode, n, chunk, threads, scalars, *addresses)");
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8(args[0]);
    const char *code = PyUnicode_AsUTF8(args[1]);
    if (name == NULL || code == NULL) {
        return NULL;
    }
    int k = 0;
    while (k < XPIT_NUFUNCS && strcmp(xpit_specs[k].name, name) != 0) {
        k++;
    }
    int t = code[0] == 'e' ? 0 : code[0] == 'f' ? 1 : code[0] == 'd' ? 2 : -1;
    if (k == XPIT_NUFUNCS || t < 0 || code[1] != '\0') {
        PyErr_Format(PyExc_ValueError, "_contiguous: no loop %R for typecode %R",
                     args[0], args[1]);
        return NULL;
    }
    xpit_job job;
    job.index = (npy_intp)(k * XPIT_NTYPES + t);
    job.nargs = xpit_specs[k].nin + xpit_specs[k].nout;
    job.itemsize = t == 0 ? 2 : t == 1 ? 4 : 8;
    long threads;
    if ((job.n = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((job.chunk = PyLong_AsSsize_t(args[3])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((threads = PyLong_AsLong(args[4])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((job.scalars = PyLong_AsUnsignedLong(args[5])) == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    job.helpers = 0;
#if XPIT_SSE_FLAGS
    job.control = _mm_getcsr() & ~0x3fu;
#endif
    if (nargs != 6 + job.nargs || job.n < 0 || job.chunk < 1 || threads < 1
            || job.scalars >> xpit_specs[k].nin != 0) {
        PyErr_Format(PyExc_ValueError,
                     "_contiguous: %s takes %d addresses, n >= 0, chunk >= 1, threads >= 1 "
                     "and scalars among its inputs",
                     name, job.nargs);
        return NULL;
    }
    for (int j = 0; j < job.nargs; j++) {
        job.base[j] = (char *)PyLong_AsVoidPtr(args[6 + j]);
        if (job.base[j] == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "_contiguous: a null address");
            }
            return NULL;
        }
    }
    job.nchunks = job.n / job.chunk + (job.n % job.chunk != 0);
    if (job.n > 0) {
        Py_BEGIN_ALLOW_THREADS
        xpit_run_job(&job, threads > 64 ? 64 : (int)threads);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyMethodDef xpit_methods[] = {
    {"_available_paths", xpit_available_paths, METH_NOARGS,
     "_available_paths()\n--\n\n"
     "The CPU paths compiled in and supported by this CPU, baseline first."},
    {"_contiguous", (PyCFunction)(void (*)(void))xpit_contiguous, METH_FASTCALL,
     "_contiguous(name, typecode, n, chunk, threads, scalars, *addresses)\n--\n\n"
     "Run ufunc ``name``'s loop for ``typecode`` over ``n`` elements of contiguous memory\n"
     "(inputs, then outputs, as integer addresses; inputs whose bit is set in ``scalars``\n"
     "are one element, repeated) in chunks on up to ``threads`` threads.\n"
     "Private: nothing checks the memory."},
    {"_get_path", xpit_get_path, METH_NOARGS,
     "_get_path()\n--\n\nThe name of the CPU path in use."},
    {"_set_path", xpit_set_path, METH_O,
     "_set_path(name, /)\n--\n\n"
     "Use the CPU path ``name`` (one of _available_paths()) from now on and return\n"
     "the previous one's name. For tests and benchmarks: all paths give the same bits."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef xpit_module = {
    PyModuleDef_HEAD_INIT,
    "xpit.kernels._ufuncs",
    "NumPy ufuncs for the logistic family, compiled from family.h.\n\n"
    "Use them through :mod:`xpit.ufuncs`. ``cpu_path`` names the CPU variant\n"
    "chosen at import (the best this CPU supports).",
    -1,
    xpit_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__ufuncs(void)
{
    import_array();
    import_umath();

    PyObject *module = PyModule_Create(&xpit_module);
    if (module == NULL) {
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED);
#endif

    for (int i = 0; i < XPIT_NUFUNCS * XPIT_NTYPES; i++) {
        xpit_funcs[i] = xpit_dispatch;
        xpit_data[i] = (void *)(npy_intp)i;
    }
    for (int k = 0; k < XPIT_NUFUNCS; k++) {
        const xpit_ufunc_spec *spec = &xpit_specs[k];
        PyObject *ufunc = PyUFunc_FromFuncAndData(
            &xpit_funcs[k * XPIT_NTYPES], &xpit_data[k * XPIT_NTYPES],
            spec->nout == 2 ? xpit_types1_2 : spec->nin == 1 ? xpit_types1
                : spec->nin == 2 ? xpit_types2 : xpit_types3,
            XPIT_NTYPES, spec->nin, spec->nout,
            PyUFunc_None, spec->name, spec->doc, 0);
        if (ufunc == NULL || PyModule_AddObject(module, spec->name, ufunc) < 0) {
            Py_XDECREF(ufunc);
            Py_DECREF(module);
            return NULL;
        }
    }

#if XPIT_POOL
    pthread_atfork(NULL, NULL, xpit_pool_after_fork);
#endif
    /* Whether _contiguous splits its chunks over threads here (False: one thread). */
    if (PyModule_AddObjectRef(module, "_threads", XPIT_POOL ? Py_True : Py_False) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    const xpit_path *best = &xpit_paths[0];
    for (int i = 1; i < XPIT_NPATHS; i++) {
        if (xpit_paths[i].supported()) {
            best = &xpit_paths[i];
        }
    }
    if (xpit_set_active(module, best) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
