/* Quantizer kernels: the fixed-point formats of WAGEUBN (paper Sec. III.C). */
#include "wageubn.h"

wg_format wg_format_make(wg_fmt_kind kind, int dec, int all)
{
    wg_format f;
    f.kind = kind;
    f.scale = ldexp(1.0, dec - 1);
    f.step = ldexp(1.0, 1 - dec);
    f.bound = ldexp(1.0, all - 1) - 1.0;
    return f;
}

void wg_quantize_array(float *out, const float *x, size_t n, const wg_format *f, int nthreads)
{
    (void)nthreads;
    const int64_t len = (int64_t)n;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (len > 65536)
    for (int64_t i = 0; i < len; i++)
        out[i] = (float)wg_quantize(x[i], f);
}

double wg_absmax_finite(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m && isfinite(a))
            m = a;
    }
    return m;
}

double wg_range_pow2(const float *x, size_t n)
{
    double m = wg_absmax_finite(x, n);
    return m > 0.0 ? ldexp(1.0, (int)wg_round_half_even(log2(m))) : 1.0;
}

/* splitmix64 of (seed, index): a counter-based stream, so results do not
 * depend on threads or on how the array is split. */
static inline double uniform01(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static inline double sround1(double v, uint64_t seed, size_t i)
{
    double lo = floor(v);
    if (!isfinite(lo) || lo == v)
        return v;
    return uniform01(seed, i) < v - lo ? lo + 1.0 : lo;
}

void wg_sround(float *out, const float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)sround1(x[i], seed, i);
}

static inline double clamp_sym(double v, double b)
{
    return v > b ? b : (v < -b ? -b : v);
}

void wg_shiftquant(float *out, const float *x, size_t n, int k)
{
    double r = wg_range_pow2(x, n);
    wg_format f = wg_format_make(WG_FMT_CLAMPED, k, k);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(r * wg_quantize(x[i] / r, &f));
}

void wg_constquant(float *out, const float *x, size_t n, int k_dr, int k, uint64_t seed)
{
    double r = wg_range_pow2(x, n);
    double dr = ldexp(1.0, k_dr - 1);
    double step = ldexp(1.0, 1 - k);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(clamp_sym(sround1(dr * x[i] / r, seed, i), dr - 1.0) * step);
}

void wg_errorquant(float *out, const float *x, size_t n, int k)
{
    double sc = wg_range_pow2(x, n) * ldexp(1.0, 1 - k);
    double bound = ldexp(1.0, k - 1) - 1.0;
    wg_format fine = wg_format_make(WG_FMT_DIRECT, k, k);
    for (size_t i = 0; i < n; i++) {
        double v = x[i] / sc;
        double q = fabs(v) >= 1.0 ? clamp_sym(wg_round_half_even(v), bound) : wg_quantize(v, &fine);
        out[i] = (float)(sc * q);
    }
}

void wg_clamp_forward(float *out, const float *x, size_t n, float lo, float hi,
                      const wg_format *in_fmt, const wg_format *out_fmt, int nthreads)
{
    (void)nthreads;
    int64_t len = (int64_t)n;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (len > 65536)
    for (int64_t i = 0; i < len; i++) {
        double v = wg_quantize(x[i], in_fmt);
        v = v < lo ? lo : v; /* selects, not branches: random signs cost no mispredictions */
        v = v > hi ? hi : v;
        out[i] = (float)wg_quantize(v, out_fmt);
    }
}
