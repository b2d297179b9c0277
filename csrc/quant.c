/* Quantizer kernels: the fixed-point formats of WAGEUBN (paper Sec. III.C). */
#include "simd.h"
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

static inline double map1(double v, const wg_map *m)
{
    v = wg_quantize(v, &m->in);
    if (m->affine)
        v = v * m->alpha + m->beta;
    v = v < m->lo ? m->lo : v; /* selects, not branches: random signs cost no mispredictions */
    v = v > m->hi ? m->hi : v;
    return wg_quantize(v, &m->out);
}

#ifdef WG_X86
WG_AVX2 static inline __m256d map_pd(__m256d v, const wg_map *m)
{
    v = wg_quantize_pd(v, &m->in);
    if (m->affine) /* a product then a sum, never fused: the rounding of map1 */
        v = _mm256_add_pd(_mm256_mul_pd(v, _mm256_set1_pd(m->alpha)), _mm256_set1_pd(m->beta));
    v = _mm256_max_pd(_mm256_set1_pd(m->lo), v); /* lo > v ? lo : v */
    v = _mm256_min_pd(_mm256_set1_pd(m->hi), v); /* hi < v ? hi : v */
    return wg_quantize_pd(v, &m->out);
}

WG_AVX2 static size_t map_avx2(float *out, const float *x, size_t n, const wg_map *m)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d a = map_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), m);
        __m256d b = map_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), m);
        _mm_storeu_ps(out + i, _mm256_cvtpd_ps(a));
        _mm_storeu_ps(out + i + 4, _mm256_cvtpd_ps(b));
    }
    return i;
}
#endif

/*
 * The same map in float32, eight values at a time, where that is exact: without the affine
 * step (done in double), with formats whose scale and step are normal floats and whose clamp
 * bound is below 2**24, and with lo / hi that are floats.  Then x * scale and q * step are
 * exact float products; round() of a float is exact; a scaled value of 2**23 or more is
 * already whole, so directquant gives x back, as the double formula does (also where
 * x * scale overflows float); clamping commutes with rounding to a whole bound.
 */
static int float_exact(const wg_format *f)
{
    return f->kind == WG_FMT_NONE ||
           (f->scale >= 0x1p-100 && f->scale <= 0x1p100 &&
            (f->kind != WG_FMT_CLAMPED || f->bound < 0x1p24));
}

#ifdef WG_X86
WG_AVX2 static inline __m256 quantize_ps(__m256 x, const wg_format *f)
{
    if (f->kind == WG_FMT_NONE)
        return x;
    const __m256 s = _mm256_mul_ps(x, _mm256_set1_ps((float)f->scale));
    __m256 q = _mm256_round_ps(s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (f->kind == WG_FMT_CLAMPED) { /* as wg_quantize_pd: NaN stays */
        q = _mm256_min_ps(_mm256_set1_ps((float)f->bound), q);
        q = _mm256_max_ps(_mm256_set1_ps((float)-f->bound), q);
        return _mm256_mul_ps(q, _mm256_set1_ps((float)f->step));
    }
    /* directquant: |s| >= 2**23 (Inf, and NaN by the unordered compare) keeps x */
    const __m256 whole = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), s),
                                       _mm256_set1_ps(0x1p23f), _CMP_NLT_UQ);
    return _mm256_blendv_ps(_mm256_mul_ps(q, _mm256_set1_ps((float)f->step)), x, whole);
}

WG_AVX2 static size_t map_avx2_f32(float *out, const float *x, size_t n, const wg_map *m)
{
    const __m256 lo = _mm256_set1_ps((float)m->lo), hi = _mm256_set1_ps((float)m->hi);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = quantize_ps(_mm256_loadu_ps(x + i), &m->in);
        v = _mm256_max_ps(lo, v); /* lo > v ? lo : v, NaN stays */
        v = _mm256_min_ps(hi, v);
        _mm256_storeu_ps(out + i, quantize_ps(v, &m->out));
    }
    return i;
}
#endif

void wg_map_span(float *out, const float *x, size_t n, const wg_map *m)
{
    size_t i = 0;
#ifdef WG_X86
    if (m->simd && !m->affine && float_exact(&m->in) && float_exact(&m->out) &&
        (double)(float)m->lo == m->lo && (double)(float)m->hi == m->hi)
        i = map_avx2_f32(out, x, n, m);
    else if (m->simd)
        i = map_avx2(out, x, n, m);
#endif
    for (; i < n; i++)
        out[i] = (float)map1(x[i], m);
}

/* The map over n values, in chunks shared by the threads when there are enough; handed out
 * one at a time, so a thread slowed by another process on its core takes fewer of them. */
static void map_array(float *out, const float *x, size_t n, const wg_map *m, int nthreads)
{
    const int64_t chunk = 16384, chunks = ((int64_t)n + chunk - 1) / chunk;
    (void)nthreads;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if (n > 65536)
    for (int64_t c = 0; c < chunks; c++) {
        const size_t i0 = (size_t)(c * chunk), len = n - i0 < (size_t)chunk ? n - i0 : (size_t)chunk;
        wg_map_span(out + i0, x + i0, len, m);
    }
}

static wg_map map_identity(void)
{
    wg_map m;
    m.in = m.out = wg_format_make(WG_FMT_NONE, 1, 1);
    m.affine = 0;
    m.alpha = 1.0, m.beta = 0.0;
    m.lo = -INFINITY, m.hi = INFINITY;
    m.simd = wg_simd_available();
    return m;
}

void wg_quantize_array(float *out, const float *x, size_t n, const wg_format *f, int nthreads)
{
    wg_map m = map_identity();
    m.in = *f;
    map_array(out, x, n, &m, nthreads);
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
    wg_map m = map_identity();
    m.in = *in_fmt, m.out = *out_fmt;
    m.lo = lo, m.hi = hi;
    map_array(out, x, n, &m, nthreads);
}
