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
    if (exact && !(acc = calloc((size_t)(m * n), sizeof(double)))) {
        free(wt);
        return WG_ENOMEM;
    }
    for (int64_t j = 0; j < n; j++)
        for (int64_t p = 0; p < k; p++)
            wt[p * n + j] = w[j * k + p];
    const int64_t block = (m + nt - 1) / nt;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int64_t r0 = 0; r0 < m; r0 += block) {
        const int64_t r1 = r0 + block < m ? r0 + block : m;
        if (exact) {
            wg_gemm_f64acc(acc + r0 * n, x + r0 * k, wt, r1 - r0, n, k, k, n, n);
            for (int64_t i = r0 * n; i < r1 * n; i++)
                out[i] = (float)wg_quantize(acc[i] + (bias ? bias[i % n] : 0.0), out_fmt);
        } else {
            memset(out + r0 * n, 0, (size_t)((r1 - r0) * n) * sizeof(float));
            wg_gemm_f32(out + r0 * n, x + r0 * k, wt, r1 - r0, n, k, k, n, n);
            for (int64_t i = r0 * n; i < r1 * n; i++)
                out[i] = (float)wg_quantize(out[i] + (bias ? bias[i % n] : 0.0f), out_fmt);
        }
    }
    free(wt);
    free(acc);
    return WG_OK;
}
