/* Batch normalisation over (n, c, hw), in double, in torch's form x * alpha + beta. */
#include "wageubn.h"

void wg_batchnorm_forward(float *out, const float *x, const float *mean, const float *var,
                          const float *weight, const float *bias, double eps, int64_t n,
                          int64_t c, int64_t hw, const wg_format *out_fmt, int nthreads)
{
    (void)nthreads;
    const int64_t planes = n * c;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (planes * hw > 65536)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t ch = pl % c;
        const double alpha = (weight ? weight[ch] : 1.0) / sqrt((double)var[ch] + eps);
        const double beta = (bias ? bias[ch] : 0.0) - mean[ch] * alpha;
        const float *src = x + pl * hw;
        float *dst = out + pl * hw;
        for (int64_t i = 0; i < hw; i++)
            dst[i] = (float)wg_quantize(src[i] * alpha + beta, out_fmt);
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
