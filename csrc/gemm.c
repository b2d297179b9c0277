/* Row-major matrix products C += A . B (and AdderNet's C -= |A - B|), blocked so a panel of B stays in cache.
 * The innermost loop runs along a row of B and C, which compilers vectorise. */
#include "wageubn.h"

#define KC 128
#define NC 1024

#define DEFINE_GEMM(name, acc_t, OP)                                                         \
    void name(acc_t *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,   \
              int64_t lda, int64_t ldb, int64_t ldc)                                       \
    {                                                                                      \
        for (int64_t j0 = 0; j0 < n; j0 += NC) {                                           \
            int64_t nb = n - j0 < NC ? n - j0 : NC;                                        \
            for (int64_t p0 = 0; p0 < k; p0 += KC) {                                       \
                int64_t kb = k - p0 < KC ? k - p0 : KC;                                    \
                for (int64_t i = 0; i < m; i++) {                                          \
                    acc_t *restrict crow = c + i * ldc + j0;                               \
                    const float *arow = a + i * lda + p0;                                  \
                    for (int64_t p = 0; p < kb; p++) {                                     \
                        const acc_t av = arow[p];                                          \
                        const float *restrict brow = b + (p0 + p) * ldb + j0;              \
                        for (int64_t j = 0; j < nb; j++)                                   \
                            crow[j] += OP(av, (acc_t)brow[j]);                            \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }

#define MUL(x, y) ((x) * (y))
#define NEG_ABS_DIFF(x, y) ((x) > (y) ? (y) - (x) : (x) - (y))

DEFINE_GEMM(wg_gemm_f32, float, MUL)
DEFINE_GEMM(wg_gemm_f64acc, double, MUL)
DEFINE_GEMM(wg_l1gemm_f32, float, NEG_ABS_DIFF)
DEFINE_GEMM(wg_l1gemm_f64acc, double, NEG_ABS_DIFF)
