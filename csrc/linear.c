/* Fully connected layer: out (m, n) = x (m, k) . w (n, k)^T + bias. */
#include "wageubn.h"

int wg_linear_forward(float *out, const float *x, const float *w, const float *bias, int64_t m,
                      int64_t k, int64_t n, const wg_format *out_fmt, int exact, int nthreads)
{
    if (m == 0 || n == 0)
        return WG_OK;
    const int nt = nthreads < 1 ? 1 : nthreads;
    /* B = w^T, read in place; threads split the rows (batch), or the columns when few. */
    const wg_bsrc b = {WG_B_TRANSPOSED, w, k, NULL};
    const wg_epilogue ep = {NULL, bias, out_fmt};
    const int by_rows = m >= 6 * nt;
    const int64_t span = by_rows ? m : n;
    const int64_t block = by_rows ? (m + nt - 1) / nt : ((n + nt - 1) / nt + 15) / 16 * 16;
    int failed = 0;
#pragma omp parallel for num_threads(nt) schedule(static, 1) reduction(| : failed)
    for (int64_t s0 = 0; s0 < span; s0 += block) {
        const int64_t s1 = s0 + block < span ? s0 + block : span;
        if (by_rows)
            failed |= wg_gemm(out + s0 * n, n, x + s0 * k, k, &b, s1 - s0, 0, n, k, &ep, exact,
                              WG_PATCH_DOT);
        else
            failed |= wg_gemm(out, n, x, k, &b, m, s0, s1, k, &ep, exact, WG_PATCH_DOT);
    }
    return failed ? WG_ENOMEM : WG_OK;
}
