/* Batch normalisation over (n, c, hw), in double, in torch's form x * alpha + beta,
 * optionally with a following ReLU's clamp fused. */
#include "wageubn.h"

void wg_batchnorm_forward(float *out, const float *x, const float *mean, const float *var,
                          const float *weight, const float *bias, double eps, int64_t n,
                          int64_t c, int64_t hw, const wg_format *in_fmt, const wg_format *out_fmt,
                          double lo, double hi,
                          int nthreads)
{
    (void)nthreads;
    const int simd = wg_simd_available();
    const int64_t planes = n * c;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (planes * hw > 65536)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t ch = pl % c;
        wg_map m;
        m.in = *in_fmt;
        m.out = *out_fmt;
        m.affine = 1;
        m.alpha = (weight ? weight[ch] : 1.0) / sqrt((double)var[ch] + eps);
        m.beta = (bias ? bias[ch] : 0.0) - mean[ch] * m.alpha;
        m.lo = lo, m.hi = hi;
        m.simd = simd;
        wg_map_span(out + pl * hw, x + pl * hw, (size_t)hw, &m);
    }
}

void wg_batchnorm_stats(double *mean, double *var, const float *x, int64_t n, int64_t c,
                        int64_t hw, int nthreads)
{
    (void)nthreads;
    const double count = (double)(n * hw);
#pragma omp parallel for num_threads(nthreads) schedule(static) if (n * c * hw > 65536)
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0.0, ss = 0.0;
        for (int64_t b = 0; b < n; b++) {
            const float *src = x + (b * c + ch) * hw;
            for (int64_t i = 0; i < hw; i++)
                s += src[i];
        }
        const double m = count > 0 ? s / count : NAN;
        for (int64_t b = 0; b < n; b++) {
            const float *src = x + (b * c + ch) * hw;
            for (int64_t i = 0; i < hw; i++)
                ss += (src[i] - m) * (src[i] - m);
        }
        mean[ch] = m;
        var[ch] = count > 0 ? ss / count : NAN;
    }
}
