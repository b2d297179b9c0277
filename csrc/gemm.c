/*
 * Row-major matrix products C (m,n) += A (m,k) . B (k,n), and AdderNet's C -= sum |A - B|.
 *
 * Goto-style blocking: B is packed in KC x NR column panels, A in MR x KC row panels,
 * and a register-blocked micro-kernel computes an MR x NR tile.  The AVX2/FMA
 * micro-kernels are compiled with a target attribute and chosen at run time when the CPU
 * has them, so one build runs everywhere; WAGEUBN_PORTABLE=1 in the environment forces the
 * portable C kernels (used by the tests to check both paths).
 *
 * The double variants (f64acc) convert the float inputs to double while packing, so for
 * fixed-point operands every product and sum is exact.
 */
#include <stdlib.h>
#include <string.h>

#include "wageubn.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WG_X86 1
#endif

#define MR 6
#define KC 256
#define MC 120
#define NC 2048

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
/* Portable micro-kernels: acc (MR x NR) = sum_p op(ap[p][r], bp[p][c])      */
/* ------------------------------------------------------------------------ */

#define MUL(x, y) ((x) * (y))
#define NEG_ABS_DIFF(x, y) ((x) > (y) ? (y) - (x) : (x) - (y))

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

/* ------------------------------------------------------------------------ */
/* AVX2 micro-kernels: 6 rows x 2 vectors, twelve accumulators in registers  */
/* ------------------------------------------------------------------------ */

#ifdef WG_X86
#define AVX2 __attribute__((target("avx2,fma")))

#define DEFINE_UKERNEL_AVX2(name, T, VEC, W, LOAD, SET1, ZERO, STORE, STEP)                 \
    AVX2 static void name(int64_t kc, const T *ap, const T *bp, T *acc)                      \
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

#define FMA_PS(c, a, b) ((c) = _mm256_fmadd_ps((a), (b), (c)))
#define FMA_PD(c, a, b) ((c) = _mm256_fmadd_pd((a), (b), (c)))
/* c -= |a - b|: clear the sign bit of the difference. */
#define L1_PS(c, a, b) ((c) = _mm256_sub_ps((c), _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps((a), (b)))))
#define L1_PD(c, a, b) ((c) = _mm256_sub_pd((c), _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_sub_pd((a), (b)))))

DEFINE_UKERNEL_AVX2(ukernel_avx2_f32_dot, float, __m256, 8, _mm256_loadu_ps, _mm256_set1_ps,
                    _mm256_setzero_ps, _mm256_storeu_ps, FMA_PS)
DEFINE_UKERNEL_AVX2(ukernel_avx2_f32_l1, float, __m256, 8, _mm256_loadu_ps, _mm256_set1_ps,
                    _mm256_setzero_ps, _mm256_storeu_ps, L1_PS)
DEFINE_UKERNEL_AVX2(ukernel_avx2_f64_dot, double, __m256d, 4, _mm256_loadu_pd, _mm256_set1_pd,
                    _mm256_setzero_pd, _mm256_storeu_pd, FMA_PD)
DEFINE_UKERNEL_AVX2(ukernel_avx2_f64_l1, double, __m256d, 4, _mm256_loadu_pd, _mm256_set1_pd,
                    _mm256_setzero_pd, _mm256_storeu_pd, L1_PD)
#define PICK(simd, name) ((simd) ? ukernel_avx2_##name : ukernel_ref_##name)
#else
#define PICK(simd, name) ukernel_ref_##name
#endif

/* ------------------------------------------------------------------------ */
/* Blocked driver                                                            */
/* ------------------------------------------------------------------------ */

/*
 * The packed panels are zero-padded to whole MR x NR tiles; the padded rows and columns
 * of a tile are computed and thrown away, so neither operation needs edge kernels.
 */
#define DEFINE_GEMM(name, T, NR, UKERNEL)                                                    \
    int name(T *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,          \
             int64_t lda, int64_t ldb, int64_t ldc)                                          \
    {                                                                                        \
        if (m <= 0 || n <= 0 || k <= 0)                                                      \
            return WG_OK;                                                                    \
        void (*ukernel)(int64_t, const T *, const T *, T *) = UKERNEL(wg_simd_available());  \
        T *ap = malloc(sizeof(T) * MC * KC);                                                 \
        const int64_t nb = ((n < NC ? n : NC) + NR - 1) / NR * NR;                           \
        T *bp = malloc(sizeof(T) * (size_t)(KC * nb));                                       \
        if (!ap || !bp) {                                                                    \
            free(ap);                                                                        \
            free(bp);                                                                        \
            return WG_ENOMEM;                                                                \
        }                                                                                    \
        T acc[MR * NR];                                                                      \
        for (int64_t jc = 0; jc < n; jc += NC) {                                             \
            const int64_t nc = n - jc < NC ? n - jc : NC;                                    \
            for (int64_t pc = 0; pc < k; pc += KC) {                                         \
                const int64_t kc = k - pc < KC ? k - pc : KC;                                \
                for (int64_t jr = 0; jr < nc; jr += NR) {                                    \
                    const int64_t nr = nc - jr < NR ? nc - jr : NR;                          \
                    T *dst = bp + jr * kc;                                                   \
                    for (int64_t p = 0; p < kc; p++, dst += NR) {                            \
                        const float *src = b + (pc + p) * ldb + jc + jr;                     \
                        for (int64_t j = 0; j < NR; j++)                                     \
                            dst[j] = j < nr ? (T)src[j] : (T)0;                              \
                    }                                                                        \
                }                                                                            \
                for (int64_t ic = 0; ic < m; ic += MC) {                                     \
                    const int64_t mc = m - ic < MC ? m - ic : MC;                            \
                    for (int64_t ir = 0; ir < mc; ir += MR) {                                \
                        const int64_t mr = mc - ir < MR ? mc - ir : MR;                      \
                        T *dst = ap + ir * kc;                                               \
                        for (int64_t p = 0; p < kc; p++, dst += MR)                          \
                            for (int64_t r = 0; r < MR; r++)                                 \
                                dst[r] = r < mr ? (T)a[(ic + ir + r) * lda + pc + p] : (T)0; \
                    }                                                                        \
                    for (int64_t jr = 0; jr < nc; jr += NR) {                                \
                        const int64_t nr = nc - jr < NR ? nc - jr : NR;                      \
                        for (int64_t ir = 0; ir < mc; ir += MR) {                            \
                            const int64_t mr = mc - ir < MR ? mc - ir : MR;                  \
                            ukernel(kc, ap + ir * kc, bp + jr * kc, acc);                    \
                            T *ct = c + (ic + ir) * ldc + jc + jr;                           \
                            for (int64_t r = 0; r < mr; r++)                                 \
                                for (int64_t j = 0; j < nr; j++)                             \
                                    ct[r * ldc + j] += acc[r * NR + j];                      \
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

DEFINE_GEMM(wg_gemm_f32, float, 16, UK_F32_DOT)
DEFINE_GEMM(wg_l1gemm_f32, float, 16, UK_F32_L1)
DEFINE_GEMM(wg_gemm_f64acc, double, 8, UK_F64_DOT)
DEFINE_GEMM(wg_l1gemm_f64acc, double, 8, UK_F64_L1)
