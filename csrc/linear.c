/* Fully connected layer: out (m, n) = x (m, k) . w (n, k)^T + bias. */
#include "checked.h"
#include "simd.h"
#include "wageubn.h"

/* A few rows (batch 1): each output is a dot product of two contiguous rows, x_i and w_j,
 * with no packing.  Float or, when exact, double accumulation. */
static double dot_ref(const float *a, const float *b, int64_t k, int exact)
{
    if (exact) {
        double s = 0.0;
        for (int64_t p = 0; p < k; p++)
            s += (double)a[p] * b[p];
        return s;
    }
    float s = 0.0f;
    for (int64_t p = 0; p < k; p++)
        s += a[p] * b[p];
    return s;
}

#ifdef WG_X86
WG_AVX2 static double dot_avx2(const float *a, const float *b, int64_t k, int exact)
{
    int64_t p = 0;
    if (exact) { /* float products are exact in double: FMA rounds only the sums */
        __m256d s0 = _mm256_setzero_pd(), s1 = s0;
        for (; p + 8 <= k; p += 8) {
            s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + p)), _mm256_cvtps_pd(_mm_loadu_ps(b + p)), s0);
            s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + p + 4)),
                                 _mm256_cvtps_pd(_mm_loadu_ps(b + p + 4)), s1);
        }
        double t[4];
        _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
        double s = (t[0] + t[1]) + (t[2] + t[3]);
        for (; p < k; p++)
            s += (double)a[p] * b[p];
        return s;
    }
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (; p + 16 <= k; p += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p), _mm256_loadu_ps(b + p), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p + 8), _mm256_loadu_ps(b + p + 8), s1);
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(s0, s1));
    float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    for (; p < k; p++)
        s += a[p] * b[p];
    return s;
}
#endif

static void linear_dots(float *out, const float *x, const float *w, const float *bias, int64_t m,
                        int64_t k, int64_t n, const wg_format *fmt, int exact, int nt)
{
    double (*dot)(const float *, const float *, int64_t, int) = dot_ref;
#ifdef WG_X86
    if (wg_simd_available())
        dot = dot_avx2;
#endif
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t j = 0; j < n; j++) {
        const double bv = bias ? bias[j] : 0.0;
        for (int64_t i = 0; i < m; i++)
            out[i * n + j] = (float)wg_quantize(dot(x + i * k, w + j * k, k, exact) + bv, fmt);
    }
}

int wg_linear_forward(float *out, const float *x, const float *w, const float *bias, int64_t m,
                      int64_t k, int64_t n, const wg_format *out_fmt, int exact, int nthreads)
{
    if (m == 0 || n == 0)
        return WG_OK;
    const int64_t ops[3] = {m, k, n};
    const int nt = nthreads < 1 || wg_prod_sat(ops, 3) < WG_PARALLEL_MIN_OPS ? 1 : nthreads;
    if (m < 4) {
        linear_dots(out, x, w, bias, m, k, n, out_fmt, exact, nt);
        return WG_OK;
    }
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
