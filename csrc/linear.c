/* Fully connected layer: out (m, n) = x (m, k) . w (n, k)^T + bias. */
#include <stdlib.h>
#include <string.h>

#include "wageubn.h"

int wg_linear_forward(float *out, const float *x, const float *w, const float *bias, int64_t m,
                      int64_t k, int64_t n, const wg_format *out_fmt, int exact, int nthreads)
{
    if (m == 0 || n == 0)
        return WG_OK;
    const int nt = nthreads < 1 ? 1 : nthreads;
    /* w^T (k, n), so that the GEMM's inner loop runs along contiguous rows. */
    float *wt = malloc((size_t)(k * n) * sizeof(float) + 1);
    double *acc = NULL;
    if (!wt)
        return WG_ENOMEM;
    if (exact && !(acc = malloc((size_t)(m * n) * sizeof(double)))) {
        free(wt);
        return WG_ENOMEM;
    }
    for (int64_t j = 0; j < n; j++)
        for (int64_t p = 0; p < k; p++)
            wt[p * n + j] = w[j * k + p];
    /* Threads split the rows (batch), or the columns when there are few rows. */
    const int by_rows = m >= 6 * nt;
    const int64_t span = by_rows ? m : n;
    const int64_t block = by_rows ? (m + nt - 1) / nt : ((n + nt - 1) / nt + 15) / 16 * 16;
    int failed = 0;
#pragma omp parallel for num_threads(nt) schedule(static, 1) reduction(| : failed)
    for (int64_t s0 = 0; s0 < span; s0 += block) {
        const int64_t s1 = s0 + block < span ? s0 + block : span;
        const int64_t r0 = by_rows ? s0 : 0, r1 = by_rows ? s1 : m;
        const int64_t c0 = by_rows ? 0 : s0, c1 = by_rows ? n : s1;
        for (int64_t r = r0; r < r1; r++) {
            if (exact)
                memset(acc + r * n + c0, 0, (size_t)(c1 - c0) * sizeof(double));
            else
                memset(out + r * n + c0, 0, (size_t)(c1 - c0) * sizeof(float));
        }
        if (exact)
            failed |= wg_gemm_f64acc(acc + r0 * n + c0, x + r0 * k, wt + c0, r1 - r0, c1 - c0, k,
                                     k, n, n);
        else
            failed |= wg_gemm_f32(out + r0 * n + c0, x + r0 * k, wt + c0, r1 - r0, c1 - c0, k, k,
                                  n, n);
        for (int64_t r = r0; r < r1; r++)
            for (int64_t j = c0; j < c1; j++) {
                const double v = exact ? acc[r * n + j] : (double)out[r * n + j];
                out[r * n + j] = (float)wg_quantize(v + (bias ? bias[j] : 0.0), out_fmt);
            }
    }
    free(wt);
    free(acc);
    return failed ? WG_ENOMEM : WG_OK;
}
