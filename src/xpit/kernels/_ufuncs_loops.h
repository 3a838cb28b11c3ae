/*
 * The ufunc inner loops of xpit.kernels._ufuncs, for one CPU variant.
 *
 * _ufuncs.c includes this file once per variant, each time with XPIT_VARIANT
 * defined to the variant's suffix and (on x86) a target pragma in force, so
 * every variant is compiled from this one text. The loops only walk memory:
 * the formulas are family.h's, the half conversions _ufuncs.c's, all of them
 * inlined here and so compiled for the variant's instruction set.
 *
 * Each loop has a contiguous fast path (a plain indexed loop that the compiler
 * vectorises) and a strided path for everything else (any strides, including
 * negative and zero). NumPy hands legacy loops aligned data only.
 */

#define XPIT_CAT_(a, b) a##b
#define XPIT_CAT(a, b) XPIT_CAT_(a, b)
#define XPIT_V(name) XPIT_CAT(name, XPIT_VARIANT)

/* One input, one output; T is the array element type, F the scalar function on T. */
#define XPIT_UNARY_LOOP(name, T, F)                                              \
    static void XPIT_V(name)(char **args, npy_intp const *dimensions,            \
                             npy_intp const *steps, void *data)                  \
    {                                                                            \
        const npy_intp n = dimensions[0];                                        \
        const npy_intp is = steps[0], os = steps[1];                             \
        char *ip = args[0], *op = args[1];                                       \
        (void)data;                                                              \
        if (is == (npy_intp)sizeof(T) && os == (npy_intp)sizeof(T)) {            \
            const T *x = (const T *)ip;                                          \
            T *y = (T *)op;                                                      \
            XPIT_SIMD                                                            \
            for (npy_intp i = 0; i < n; i++) {                                   \
                y[i] = F(x[i]);                                                  \
            }                                                                    \
        }                                                                        \
        else {                                                                   \
            for (npy_intp i = 0; i < n; i++, ip += is, op += os) {               \
                *(T *)op = F(*(const T *)ip);                                    \
            }                                                                    \
        }                                                                        \
    }

/* Two inputs, one output. */
#define XPIT_BINARY_LOOP(name, T, F)                                             \
    static void XPIT_V(name)(char **args, npy_intp const *dimensions,            \
                             npy_intp const *steps, void *data)                  \
    {                                                                            \
        const npy_intp n = dimensions[0];                                        \
        const npy_intp is1 = steps[0], is2 = steps[1], os = steps[2];            \
        char *ip1 = args[0], *ip2 = args[1], *op = args[2];                      \
        (void)data;                                                              \
        if (is1 == (npy_intp)sizeof(T) && is2 == (npy_intp)sizeof(T)             \
                && os == (npy_intp)sizeof(T)) {                                  \
            const T *a = (const T *)ip1, *b = (const T *)ip2;                    \
            T *y = (T *)op;                                                      \
            XPIT_SIMD                                                            \
            for (npy_intp i = 0; i < n; i++) {                                   \
                y[i] = F(a[i], b[i]);                                            \
            }                                                                    \
        }                                                                        \
        else {                                                                   \
            for (npy_intp i = 0; i < n; i++, ip1 += is1, ip2 += is2, op += os) { \
                *(T *)op = F(*(const T *)ip1, *(const T *)ip2);                  \
            }                                                                    \
        }                                                                        \
    }

/* Three inputs, one output. */
#define XPIT_TERNARY_LOOP(name, T, F)                                            \
    static void XPIT_V(name)(char **args, npy_intp const *dimensions,            \
                             npy_intp const *steps, void *data)                  \
    {                                                                            \
        const npy_intp n = dimensions[0];                                        \
        const npy_intp is1 = steps[0], is2 = steps[1], is3 = steps[2];           \
        const npy_intp os = steps[3];                                            \
        char *ip1 = args[0], *ip2 = args[1], *ip3 = args[2], *op = args[3];      \
        (void)data;                                                              \
        if (is1 == (npy_intp)sizeof(T) && is2 == (npy_intp)sizeof(T)             \
                && is3 == (npy_intp)sizeof(T) && os == (npy_intp)sizeof(T)) {    \
            const T *a = (const T *)ip1, *b = (const T *)ip2, *c = (const T *)ip3; \
            T *y = (T *)op;                                                      \
            XPIT_SIMD                                                            \
            for (npy_intp i = 0; i < n; i++) {                                   \
                y[i] = F(a[i], b[i], c[i]);                                      \
            }                                                                    \
        }                                                                        \
        else if (is1 == (npy_intp)sizeof(T) && is2 == (npy_intp)sizeof(T)       \
                 && is3 == 0 && os == (npy_intp)sizeof(T)) {  /* one weight */   \
            const T *a = (const T *)ip1, *b = (const T *)ip2, c = *(const T *)ip3; \
            T *y = (T *)op;                                                      \
            XPIT_SIMD                                                            \
            for (npy_intp i = 0; i < n; i++) {                                   \
                y[i] = F(a[i], b[i], c);                                         \
            }                                                                    \
        }                                                                        \
        else {                                                                   \
            for (npy_intp i = 0; i < n;                                          \
                 i++, ip1 += is1, ip2 += is2, ip3 += is3, op += os) {            \
                *(T *)op = F(*(const T *)ip1, *(const T *)ip2, *(const T *)ip3); \
            }                                                                    \
        }                                                                        \
    }

/* One input, two outputs: P(x) returns the pair PT (.s, .d). */
#define XPIT_UNARY2_LOOP(name, T, PT, P)                                        \
    static void XPIT_V(name)(char **args, npy_intp const *dimensions,            \
                             npy_intp const *steps, void *data)                  \
    {                                                                            \
        const npy_intp n = dimensions[0];                                        \
        const npy_intp is = steps[0], os1 = steps[1], os2 = steps[2];            \
        char *ip = args[0], *op1 = args[1], *op2 = args[2];                      \
        (void)data;                                                              \
        if (is == (npy_intp)sizeof(T) && os1 == (npy_intp)sizeof(T)             \
                && os2 == (npy_intp)sizeof(T)) {                                 \
            const T *x = (const T *)ip;                                          \
            T *y1 = (T *)op1, *y2 = (T *)op2;                                    \
            XPIT_SIMD                                                            \
            for (npy_intp i = 0; i < n; i++) {                                   \
                const PT r = P(x[i]);                                            \
                y1[i] = r.s;                                                     \
                y2[i] = r.d;                                                     \
            }                                                                    \
        }                                                                        \
        else {                                                                   \
            for (npy_intp i = 0; i < n; i++, ip += is, op1 += os1, op2 += os2) { \
                const PT r = P(*(const T *)ip);                                  \
                *(T *)op1 = r.s;                                                 \
                *(T *)op2 = r.d;                                                 \
            }                                                                    \
        }                                                                        \
    }

/* The three loops (float16, float32, float64) of a function of one argument. */
#define XPIT_UNARY_LOOPS(name, fd, ff)                                           \
    XPIT_UNARY_LOOP(loop_##name##_e, npy_uint16, xpit_h1_##name)                 \
    XPIT_UNARY_LOOP(loop_##name##_f, float, ff)                                  \
    XPIT_UNARY_LOOP(loop_##name##_d, double, fd)

/* ... and of two arguments. */
#define XPIT_BINARY_LOOPS(name, fd, ff)                                          \
    XPIT_BINARY_LOOP(loop_##name##_e, npy_uint16, xpit_h2_##name)                \
    XPIT_BINARY_LOOP(loop_##name##_f, float, ff)                                 \
    XPIT_BINARY_LOOP(loop_##name##_d, double, fd)

XPIT_UNARY_LOOPS(sigmoid, xpit_sigmoid, xpit_sigmoidf)
XPIT_UNARY_LOOPS(sigmoid_grad, xpit_sigmoid_grad, xpit_sigmoid_gradf)
XPIT_UNARY_LOOPS(log_sigmoid, xpit_log_sigmoid, xpit_log_sigmoidf)
XPIT_UNARY_LOOPS(softplus, xpit_softplus, xpit_softplusf)
XPIT_UNARY_LOOPS(logit, xpit_logit, xpit_logitf)
XPIT_BINARY_LOOPS(sigmoid_backward, xpit_sigmoid_backward, xpit_f2_sigmoid_backward)
XPIT_BINARY_LOOPS(bce_with_logits, xpit_bce, xpit_bcef)
XPIT_BINARY_LOOPS(sigmoid_vjp, xpit_sigmoid_vjp, xpit_sigmoid_vjpf)
XPIT_BINARY_LOOPS(log_sigmoid_vjp, xpit_log_sigmoid_vjp, xpit_log_sigmoid_vjpf)
XPIT_BINARY_LOOPS(softplus_vjp, xpit_softplus_vjp, xpit_softplus_vjpf)
XPIT_BINARY_LOOPS(logit_vjp, xpit_logit_vjp, xpit_logit_vjpf)

XPIT_TERNARY_LOOP(loop_bce_with_logits_pos_e, npy_uint16, xpit_h3_bce_with_logits_pos)
XPIT_TERNARY_LOOP(loop_bce_with_logits_pos_f, float, xpit_bce_posf)
XPIT_TERNARY_LOOP(loop_bce_with_logits_pos_d, double, xpit_bce_pos)
XPIT_BINARY_LOOPS(bce_with_logits_grad, xpit_bce_grad, xpit_bce_gradf)
XPIT_TERNARY_LOOP(loop_bce_with_logits_pos_grad_e, npy_uint16, xpit_h3_bce_with_logits_pos_grad)
XPIT_TERNARY_LOOP(loop_bce_with_logits_pos_grad_f, float, xpit_bce_pos_gradf)
XPIT_TERNARY_LOOP(loop_bce_with_logits_pos_grad_d, double, xpit_bce_pos_grad)
XPIT_UNARY_LOOPS(log1mexp, xpit_log1mexp, xpit_log1mexpf)
XPIT_UNARY_LOOPS(logexpm1, xpit_logexpm1, xpit_logexpm1f)
XPIT_UNARY_LOOPS(logitexp, xpit_logitexp, xpit_logitexpf)
XPIT_BINARY_LOOPS(logdiffexp, xpit_logdiffexp, xpit_logdiffexpf)
XPIT_BINARY_LOOPS(log1mexp_vjp, xpit_log1mexp_vjp, xpit_log1mexp_vjpf)
XPIT_BINARY_LOOPS(logitexp_vjp, xpit_logitexp_vjp, xpit_logitexp_vjpf)
XPIT_UNARY2_LOOP(loop_sigmoid_with_grad_e, npy_uint16, xpit_pair_e, xpit_sigmoid_with_grad_e)
XPIT_UNARY2_LOOP(loop_sigmoid_with_grad_f, float, xpit__f2, xpit_sigmoid_with_gradf)
XPIT_UNARY2_LOOP(loop_sigmoid_with_grad_d, double, xpit_pair_d, xpit_sigmoid_with_grad_d)

/* This variant's loops, in the order of XPIT_LOOP_LIST (_ufuncs.c). */
#define XPIT_LOOP_ENTRY(name) \
    XPIT_V(loop_##name##_e), XPIT_V(loop_##name##_f), XPIT_V(loop_##name##_d),
static PyUFuncGenericFunction const XPIT_V(xpit_loops)[] = {
    XPIT_LOOP_LIST(XPIT_LOOP_ENTRY)
};
#undef XPIT_LOOP_ENTRY

#undef XPIT_UNARY_LOOPS
#undef XPIT_BINARY_LOOPS
#undef XPIT_UNARY_LOOP
#undef XPIT_UNARY2_LOOP
#undef XPIT_BINARY_LOOP
#undef XPIT_TERNARY_LOOP
#undef XPIT_V
#undef XPIT_CAT
#undef XPIT_CAT_
