/*
 * Matrix products with a fused epilogue:
 *     out (m, n) = quantize(A (m,k) . B (k,n) + bias)      (or AdderNet's -sum |A - B|).
 *
 * A is packed once in MR-row panels over the whole of k; B is packed NR columns at a time,
 * straight from its source (a matrix, a transposed matrix, or the image under a
 * convolution's window, so no im2col buffer is written).  A register-blocked micro-kernel
 * computes an MR x NR tile over the whole of k, and the epilogue adds the bias, rounds to
 * the output format and stores: every output is written once.
 *
 * The AVX2/FMA micro-kernels are compiled with a target attribute and chosen at run time
 * when the CPU has them, so one build runs everywhere; WAGEUBN_PORTABLE=1 in the
 * environment forces the portable C kernels (the tests check both paths).  The double
 * variants (exact) convert the float operands while packing, so for fixed-point operands
 * every product and sum is exact.
 */
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "simd.h"
#include "wageubn.h"


/* Bytes of packed B kept hot per block of columns (about half of a core's L2). */
#define B_BLOCK_BYTES (512 * 1024)

int wg_simd_available(void)
{
#ifdef WG_X86
    const char *portable = getenv("WAGEUBN_PORTABLE");
    if (portable && portable[0] && portable[0] != '0')
        return 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------------ */
/* Micro-kernels: acc (MR x NR) = sum_p op(ap[p][r], bp[p][c])               */
/* ------------------------------------------------------------------------ */


#define DEFINE_UKERNEL_REF(name, T, NR, OP)                                                  \
    static void name(int64_t kc, const T *ap, const T *bp, T *acc)                           \
    {                                                                                        \
        T c[MR][NR] = {{0}};                                                                 \
        for (int64_t p = 0; p < kc; p++, ap += MR, bp += NR)                                 \
            for (int r = 0; r < MR; r++)                                                     \
                for (int j = 0; j < NR; j++)                                                 \
                    c[r][j] += OP(ap[r], bp[j]);                                             \
        memcpy(acc, c, sizeof c);                                                            \
    }

DEFINE_UKERNEL_REF(ukernel_ref_f32_dot, float, 16, MUL)
DEFINE_UKERNEL_REF(ukernel_ref_f32_l1, float, 16, NEG_ABS_DIFF)
DEFINE_UKERNEL_REF(ukernel_ref_f64_dot, double, 8, MUL)
DEFINE_UKERNEL_REF(ukernel_ref_f64_l1, double, 8, NEG_ABS_DIFF)

#ifdef WG_X86

/* 6 rows x 2 vectors: twelve accumulators stay in registers. */
#define DEFINE_UKERNEL_AVX2(name, T, VEC, W, LOAD, SET1, ZERO, STORE, STEP)                 \
    WG_AVX2 static void name(int64_t kc, const T *ap, const T *bp, T *acc)                      \
    {                                                                                        \
        VEC c[MR][2];                                                                        \
        for (int r = 0; r < MR; r++)                                                         \
            c[r][0] = c[r][1] = ZERO();                                                      \
        for (int64_t p = 0; p < kc; p++, ap += MR, bp += 2 * W) {                            \
            const VEC b0 = LOAD(bp), b1 = LOAD(bp + W);                                      \
            for (int r = 0; r < MR; r++) {                                                   \
                const VEC a = SET1(ap[r]);                                                   \
                STEP(c[r][0], a, b0);                                                        \
                STEP(c[r][1], a, b1);                                                        \
            }                                                                                \
        }                                                                                    \
        for (int r = 0; r < MR; r++) {                                                       \
            STORE(acc + r * 2 * W, c[r][0]);                                                 \
            STORE(acc + r * 2 * W + W, c[r][1]);                                             \
        }                                                                                    \
    }

WG_DEFINE_AVX2_KERNELS(DEFINE_UKERNEL_AVX2, ukernel_avx2)
#define PICK(simd, name) ((simd) ? ukernel_avx2_##name : ukernel_ref_##name)
#else
#define PICK(simd, name) ukernel_ref_##name
#endif

/* ------------------------------------------------------------------------ */
/* Reading B                                                                 */
/* ------------------------------------------------------------------------ */

/* dst (k, NR): columns [j, j + nr) of B, zero beyond nr.
 *
 * Under a convolution window (IM2COL), row p of B is the tap (c, u, v) and column j the
 * output position (i, jx); the value is the input at (c, i*sh + u*dh - ph, jx*sw + v*dw - pw),
 * or 0 in the padding.  The taps are walked with counters (no divisions), and a panel that
 * lies inside one row of the image is copied as one contiguous run. */
#define DEFINE_PACK_B(name, T, NR)                                                           \
    static void name(T *dst, const wg_bsrc *b, int64_t k, int64_t j, int64_t nr)             \
    {                                                                                        \
        const wg_conv2d_dims *d = b->conv;                                                   \
        const int64_t i0 = d ? j / d->ow : 0, jx0 = d ? j % d->ow : 0;                       \
        const int one_row = d && d->sw == 1 && jx0 + nr <= d->ow;                            \
        int64_t c = 0, u = 0, v = 0;                                                         \
        for (int64_t p = 0; p < k; p++, dst += NR) {                                         \
            int64_t q = 0;                                                                   \
            if (b->kind == WG_B_MATRIX) {                                                    \
                const float *src = b->data + p * b->ld + j;                                  \
                for (; q < nr; q++)                                                          \
                    dst[q] = (T)src[q];                                                      \
            } else if (b->kind == WG_B_TRANSPOSED) {                                         \
                for (; q < nr; q++)                                                          \
                    dst[q] = (T)b->data[(j + q) * b->ld + p];                                \
            } else {                                                                         \
                const float *plane = b->data + c * d->h * d->w;                              \
                const int64_t dy = u * d->dh - d->ph, dx = v * d->dw - d->pw;                \
                const int64_t y = i0 * d->sh + dy, x = jx0 + dx;                             \
                if (one_row && y >= 0 && y < d->h && x >= 0 && x + nr <= d->w) {             \
                    const float *src = plane + y * d->w + x;                                 \
                    for (; q < nr; q++)                                                      \
                        dst[q] = (T)src[q];                                                  \
                } else {                                                                     \
                    for (int64_t i = i0, jx = jx0; q < nr; q++) {                            \
                        const int64_t yy = i * d->sh + dy, xx = jx * d->sw + dx;             \
                        dst[q] = (yy >= 0 && yy < d->h && xx >= 0 && xx < d->w)              \
                                     ? (T)plane[yy * d->w + xx]                              \
                                     : (T)0;                                                 \
                        if (++jx == d->ow)                                                   \
                            jx = 0, i++;                                                     \
                    }                                                                        \
                }                                                                            \
                if (++v == d->kw && (v = 0, ++u == d->kh))                                   \
                    u = 0, c++;                                                              \
            }                                                                                \
            for (; q < NR; q++)                                                              \
                dst[q] = (T)0;                                                               \
        }                                                                                    \
    }

DEFINE_PACK_B(pack_b_f32, float, 16)
DEFINE_PACK_B(pack_b_f64, double, 8)

/* ------------------------------------------------------------------------ */
/* Driver                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * The packed panels are zero-padded to whole MR x NR tiles; the padded rows and columns of
 * a tile are computed and thrown away, so no edge kernels are needed.
 */
#define DEFINE_GEMM(name, T, NR, UKERNEL, PACK_B)                                            \
    static int name(float *out, int64_t ldo, const float *a, int64_t lda, const wg_bsrc *b,  \
                    int64_t m, int64_t j0, int64_t j1, int64_t k, const wg_epilogue *ep)     \
    {                                                                                        \
        void (*ukernel)(int64_t, const T *, const T *, T *) = UKERNEL(wg_simd_available());  \
        const int64_t mp = (m + MR - 1) / MR * MR;                                           \
        int64_t nb = B_BLOCK_BYTES / (int64_t)sizeof(T) / (k > 0 ? k : 1) / NR * NR;         \
        nb = nb < NR ? NR : nb;                                                              \
        int64_t na, nbk;                                                                     \
        size_t ba, bb;                                                                       \
        if (wg_mul_i64(mp, k, &na) || wg_bytes_plus(na, sizeof(T), 1, &ba) ||                \
            wg_mul_i64(nb, k, &nbk) || wg_bytes_plus(nbk, sizeof(T), 1, &bb))                \
            return WG_ENOMEM;                                                                \
        T *ap = malloc(ba);                                                                  \
        T *bp = malloc(bb);                                                                  \
        if (!ap || !bp) {                                                                    \
            free(ap);                                                                        \
            free(bp);                                                                        \
            return WG_ENOMEM;                                                                \
        }                                                                                    \
        for (int64_t ir = 0; ir < mp; ir += MR)                                              \
            for (int64_t p = 0; p < k; p++)                                                  \
                for (int64_t r = 0; r < MR; r++)                                             \
                    ap[ir * k + p * MR + r] = ir + r < m ? (T)a[(ir + r) * lda + p] : (T)0;  \
        T acc[MR * NR];                                                                      \
        for (int64_t jc = j0; jc < j1; jc += nb) {                                           \
            const int64_t nc = j1 - jc < nb ? j1 - jc : nb;                                  \
            for (int64_t jr = 0; jr < nc; jr += NR)                                          \
                PACK_B(bp + jr * k, b, k, jc + jr, nc - jr < NR ? nc - jr : NR);             \
            for (int64_t jr = 0; jr < nc; jr += NR) {                                        \
                const int64_t nr = nc - jr < NR ? nc - jr : NR;                              \
                for (int64_t ir = 0; ir < m; ir += MR) {                                     \
                    const int64_t mr = m - ir < MR ? m - ir : MR;                            \
                    ukernel(k, ap + ir * k, bp + jr * k, acc);                               \
                    for (int64_t r = 0; r < mr; r++) {                                       \
                        const double rb = ep->row_bias ? ep->row_bias[ir + r] : 0.0;         \
                        float *o = out + (ir + r) * ldo + jc + jr;                           \
                        for (int64_t c = 0; c < nr; c++) {                                   \
                            const double cb = ep->col_bias ? ep->col_bias[jc + jr + c] : 0.0; \
                            o[c] = (float)wg_quantize((double)acc[r * NR + c] + rb + cb,     \
                                                      ep->fmt);                              \
                        }                                                                    \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        free(ap);                                                                            \
        free(bp);                                                                            \
        return WG_OK;                                                                        \
    }

#define UK_F32_DOT(simd) PICK(simd, f32_dot)
#define UK_F32_L1(simd) PICK(simd, f32_l1)
#define UK_F64_DOT(simd) PICK(simd, f64_dot)
#define UK_F64_L1(simd) PICK(simd, f64_l1)

DEFINE_GEMM(gemm_f32_dot, float, 16, UK_F32_DOT, pack_b_f32)
DEFINE_GEMM(gemm_f32_l1, float, 16, UK_F32_L1, pack_b_f32)
DEFINE_GEMM(gemm_f64_dot, double, 8, UK_F64_DOT, pack_b_f64)
DEFINE_GEMM(gemm_f64_l1, double, 8, UK_F64_L1, pack_b_f64)

int wg_gemm(float *out, int64_t ldo, const float *a, int64_t lda, const wg_bsrc *b, int64_t m,
            int64_t j0, int64_t j1, int64_t k, const wg_epilogue *ep, int exact, wg_patch_op op)
{
    if (m <= 0 || j1 <= j0)
        return WG_OK;
    if (exact)
        return (op == WG_PATCH_DOT ? gemm_f64_dot : gemm_f64_l1)(out, ldo, a, lda, b, m, j0, j1, k, ep);
    return (op == WG_PATCH_DOT ? gemm_f32_dot : gemm_f32_l1)(out, ldo, a, lda, b, m, j0, j1, k, ep);
}
