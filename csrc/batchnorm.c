/* Batch normalisation over (n, c, hw), in double, in torch's form x * alpha + beta,
 * optionally with a following ReLU's clamp fused.
 *
 * With a clamped input format (iostrict) each input is one of 2 * bound + 1 fixed-point
 * values, so each channel's map is tabulated once (by the same map over those values) and
 * the activation is a table lookup: the index round(x * scale) clamped, computed in float32
 * exactly as wg_quantize does in double (scale a power of two, bound below 2**24). */
#include <stdlib.h>

#include "checked.h"
#include "simd.h"
#include "wageubn.h"

/* Tables up to this many entries a channel (11-bit inputs), when a channel has 8x as many values. */
#define LUT_MAX 4095

static void lut_span_ref(float *out, const float *x, size_t n, const float *table, float scale,
                         float bound)
{
    for (size_t i = 0; i < n; i++) {
        const float v = x[i] * scale;
        if (v != v) {
            out[i] = x[i];
            continue;
        }
        float r = nearbyintf(v); /* half to even in the default rounding mode */
        r = r < -bound ? -bound : (r > bound ? bound : r);
        out[i] = table[(int)r + (int)bound];
    }
}

#ifdef WG_X86
WG_AVX2 static void lut_span_avx2(float *out, const float *x, size_t n, const float *table,
                                  float scale, float bound)
{
    const __m256 s = _mm256_set1_ps(scale), b = _mm256_set1_ps(bound), nb = _mm256_set1_ps(-bound);
    const __m256i off = _mm256_set1_epi32((int)bound);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        __m256 r = _mm256_round_ps(_mm256_mul_ps(v, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm256_andnot_ps(nan, _mm256_min_ps(b, _mm256_max_ps(nb, r))); /* NaN lanes read entry 0 */
        const __m256i idx = _mm256_add_epi32(_mm256_cvttps_epi32(r), off);
        const __m256 g = _mm256_i32gather_ps(table, idx, 4);
        _mm256_storeu_ps(out + i, _mm256_blendv_ps(g, v, nan)); /* NaN stays NaN */
    }
    lut_span_ref(out + i, x + i, n - i, table, scale, bound);
}
#define LUT_SPAN lut_span_avx2
#else
#define LUT_SPAN lut_span_ref /* unused: tables are made for the SIMD path only */
#endif

static wg_map channel_map(int64_t ch, const float *mean, const float *var, const float *weight,
                          const float *bias, double eps, const wg_format *in_fmt,
                          const wg_format *out_fmt, double lo, double hi, int simd)
{
    wg_map m;
    m.in = *in_fmt;
    m.out = *out_fmt;
    m.affine = 1;
    m.alpha = (weight ? weight[ch] : 1.0) / sqrt((double)var[ch] + eps);
    m.beta = (bias ? bias[ch] : 0.0) - mean[ch] * m.alpha;
    m.lo = lo, m.hi = hi;
    m.simd = simd;
    return m;
}

/* The channels' tables, or NULL when a lookup does not apply or the memory is not there. */
static float *make_tables(const float *mean, const float *var, const float *weight,
                          const float *bias, double eps, int64_t n, int64_t c, int64_t hw,
                          const wg_format *in_fmt, const wg_format *out_fmt, double lo, double hi,
                          int simd)
{
    const double bound = in_fmt->bound;
    if (!simd || in_fmt->kind != WG_FMT_CLAMPED || bound > (LUT_MAX - 1) / 2 ||
        in_fmt->scale < 0x1p-100 || in_fmt->scale > 0x1p100)
        return NULL;
    const int64_t size = 2 * (int64_t)bound + 1; /* below LUT_MAX */
    const int64_t fx[2] = {n, hw};
    int64_t entries;
    size_t bytes;
    if (wg_prod_sat(fx, 2) < 8 * size || wg_add_i64(c, 1, &entries) ||
        wg_mul_i64(entries, size, &entries) || wg_bytes(entries, sizeof(float), &bytes))
        return NULL;
    float *tables = malloc(bytes);
    if (!tables)
        return NULL;
    float *vals = tables + c * size; /* the inputs: q * step for q in [-bound, bound] */
    for (int64_t q = 0; q < size; q++)
        vals[q] = (float)((double)(q - (int64_t)bound) * in_fmt->step);
    for (int64_t ch = 0; ch < c; ch++) {
        const wg_map m = channel_map(ch, mean, var, weight, bias, eps, in_fmt, out_fmt, lo, hi, simd);
        if (m.beta == 0.0 && signbit(m.beta)) { /* -0 * alpha + -0 keeps the sign of a zero input */
            free(tables);
            return NULL;
        }
        wg_map_span(tables + ch * size, vals, (size_t)size, &m);
    }
    return tables;
}

void wg_batchnorm_forward(float *out, const float *x, const float *mean, const float *var,
                          const float *weight, const float *bias, double eps, int64_t n,
                          int64_t c, int64_t hw, const wg_format *in_fmt, const wg_format *out_fmt,
                          double lo, double hi,
                          int nthreads)
{
    (void)nthreads;
    const int simd = wg_simd_available();
    const int64_t fp[2] = {n, c}, fx[3] = {n, c, hw}; /* sizes of the caller's array: they fit */
    const int64_t planes = wg_prod_sat(fp, 2), total = wg_prod_sat(fx, 3);
    float *tables = make_tables(mean, var, weight, bias, eps, n, c, hw, in_fmt, out_fmt, lo, hi, simd);
    const int64_t size = tables ? 2 * (int64_t)in_fmt->bound + 1 : 0;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 16) if (total > 65536)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t ch = pl % c;
        if (tables) {
            LUT_SPAN(out + pl * hw, x + pl * hw, (size_t)hw, tables + ch * size,
                     (float)in_fmt->scale, (float)in_fmt->bound);
            continue;
        }
        const wg_map m = channel_map(ch, mean, var, weight, bias, eps, in_fmt, out_fmt, lo, hi, simd);
        wg_map_span(out + pl * hw, x + pl * hw, (size_t)hw, &m);
    }
    free(tables);
}

void wg_batchnorm_stats(double *mean, double *var, const float *x, int64_t n, int64_t c,
                        int64_t hw, int nthreads)
{
    (void)nthreads;
    const int64_t fn[2] = {n, hw}, fx[3] = {n, c, hw}; /* sizes of the caller's array: they fit */
    const double count = (double)wg_prod_sat(fn, 2);
    const int64_t total = wg_prod_sat(fx, 3);
#pragma omp parallel for num_threads(nthreads) schedule(static) if (total > 65536)
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
