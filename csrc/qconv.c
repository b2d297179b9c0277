/*
 * Integer convolution: fixed-point operands multiplied as integers (AVX-512 VNNI).
 *
 * WAGEUBN's activations and weights are fixed-point numbers: each is an integer times a
 * power of two.  Written as qx * 2**-ex and qw * 2**-ew with the smallest such integers,
 * the convolution is an integer sum times 2**-(ex + ew), and VNNI computes it 64 (u8 x s8,
 * vpdpbusd) or 32 (s16 x s16, vpdpwssd) products per instruction, where a float FMA
 * computes 16.  The sums are exact (bounded below 2**31 before the kernel runs), so the
 * result is the exact one that the double kernels compute, rounded by the same epilogue.
 *
 *   8 bits:  |qw| <= 127 and qx in [0, 255], or in [-127, 127] stored as qx + 128 (u8), with
 *            128 * sum(qw) subtracted per output channel;
 *   16 bits: |qw|, |qx| <= 32767, and taps * max|qx| * max|qw| < 2**31 (WAGEUBN's default
 *            directquant leaves activations unbounded: ReLU outputs of a few units on an
 *            8-bit grid need 10-12 bits).
 *
 * Layout.  The padded image of one (image, group) is stored as 32-bit words, one word per
 * (channel group, row, column): 4 channels' bytes or 2 channels' 16-bit halves, the group's
 * channels past the last zero.  The weights of 16 output channels for one (group, u, v)
 * tap are one 64-byte vector.  A micro-kernel computes QMR positions x 16 channels over
 * every tap, broadcasting each position's word; the epilogue writes each output once, in
 * (channel, position) order.
 *
 * wg_qconv2d_forward returns WG_QCONV_NA when the operands are not on such a grid, the
 * CPU lacks AVX-512 VNNI (or WAGEUBN_PORTABLE / WAGEUBN_SIMD is set), or the sum could
 * overflow; the caller then uses the float kernels.
 */
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "simd.h"
#include "wageubn.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#else
#define THREAD_ID() 0
#endif

/* Positions per micro-tile: 12 accumulators of 16 channels. */
#define QMR 12
#define QNR 16

int wg_int8_available(void)
{
#ifdef WG_X86
    const char *cap = getenv("WAGEUBN_SIMD");
    if (!wg_simd_available() || (cap && cap[0]))
        return 0; /* any WAGEUBN_SIMD value (avx2, portable) keeps the float kernels */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

#ifdef WG_X86
#define WG_VNNI __attribute__((target("avx512f,avx512bw,avx512cd,avx512vnni")))

/* What a float array is as fixed-point numbers x = q * 2**-e. */
typedef struct {
    int e;       /* the smallest exponent making every q an integer (0 for all zeros) */
    double qmax; /* max |q| */
    int nonneg;  /* every x >= 0 */
} grid_info;

/*
 * The grid of n floats: for a normal float x = m * 2**(ex - 150) (m the 24-bit significand),
 * x * 2**e is an integer iff e >= 150 - ex - tz(m).  0 (no grid) for NaN, Inf, subnormals, or
 * an exponent beyond +-120.
 */
WG_VNNI static void grid_scan(const float *x, size_t n, int *need_out, uint32_t *amax_out,
                              int *bad_out, int *neg_out)
{
    const __m512i expmask = _mm512_set1_epi32(0xFF), mantmask = _mm512_set1_epi32(0x7FFFFF);
    const __m512i implicit = _mm512_set1_epi32(0x800000), c150 = _mm512_set1_epi32(150);
    const __m512i c31 = _mm512_set1_epi32(31), absmask = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i need = _mm512_set1_epi32(INT32_MIN), amax = _mm512_setzero_si512();
    __mmask16 bad = 0, neg = 0;
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512i bits = _mm512_maskz_loadu_epi32(m, x + i);
        const __m512i a = _mm512_and_si512(bits, absmask);
        const __mmask16 nonzero = _mm512_test_epi32_mask(a, a);
        const __m512i ex = _mm512_and_si512(_mm512_srli_epi32(bits, 23), expmask);
        bad |= _mm512_mask_cmpeq_epi32_mask(nonzero, ex, expmask) |     /* NaN, Inf */
               _mm512_mask_cmpeq_epi32_mask(nonzero, ex, _mm512_setzero_si512()); /* subnormal */
        neg |= _mm512_mask_cmpgt_epi32_mask(nonzero, _mm512_setzero_si512(), bits); /* sign bit */
        const __m512i mant = _mm512_or_si512(_mm512_and_si512(bits, mantmask), implicit);
        const __m512i low = _mm512_and_si512(mant, _mm512_sub_epi32(_mm512_setzero_si512(), mant));
        const __m512i tz = _mm512_sub_epi32(c31, _mm512_lzcnt_epi32(low));
        need = _mm512_mask_max_epi32(need, nonzero, need, _mm512_sub_epi32(_mm512_sub_epi32(c150, ex), tz));
        amax = _mm512_max_epi32(amax, a); /* positive floats order as their bits */
    }
    *need_out = _mm512_reduce_max_epi32(need);
    *amax_out = (uint32_t)_mm512_reduce_max_epi32(amax);
    *bad_out = bad != 0, *neg_out = neg != 0;
}

/* grid_scan over chunks shared by the threads (a read of the whole input before the layer). */
static int grid_of(const float *x, size_t n, grid_info *g, int nthreads)
{
    const size_t chunk = 65536, chunks = (n + chunk - 1) / chunk;
    int e = INT32_MIN, bad = 0, neg = 0;
    uint32_t abits = 0;
    (void)nthreads;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) reduction(max : e, abits) \
    reduction(| : bad, neg) if (chunks > 1)
    for (size_t c = 0; c < chunks; c++) {
        int ce, cb, cn;
        uint32_t ca;
        grid_scan(x + c * chunk, n - c * chunk < chunk ? n - c * chunk : chunk, &ce, &ca, &cb, &cn);
        e = ce > e ? ce : e, abits = ca > abits ? ca : abits, bad |= cb, neg |= cn;
    }
    if (bad)
        return 0;
    float mx;
    memcpy(&mx, &abits, sizeof mx);
    g->nonneg = !neg;
    if (abits == 0) {
        g->e = 0, g->qmax = 0.0;
        return 1;
    }
    if (e > 120 || e < -120)
        return 0;
    g->e = e;
    g->qmax = ldexp((double)mx, e);
    return 1;
}

/* acc (QMR x 16) = sum over taps p of the words x[base[r] + off[p]] . the weights wp[p]:
 * u8 x s8 quads (vpdpbusd) or s16 x s16 pairs (vpdpwssd). */
#define DEFINE_QKERNEL(name, DOT)                                                            \
    WG_VNNI static void name(int64_t taps, const uint32_t *x, const int64_t *base,           \
                             const int64_t *off, const int8_t *wp, int32_t *acc)             \
    {                                                                                        \
        __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;    \
        __m512i c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;                      \
        const int64_t b0 = base[0], b1 = base[1], b2 = base[2], b3 = base[3], b4 = base[4],  \
                      b5 = base[5], b6 = base[6], b7 = base[7], b8 = base[8], b9 = base[9],  \
                      b10 = base[10], b11 = base[11];                                        \
        for (int64_t p = 0; p < taps; p++, wp += 64) {                                       \
            const uint32_t *xp = x + off[p];                                                 \
            const __m512i w = _mm512_loadu_si512((const void *)wp);                          \
            c0 = DOT(c0, _mm512_set1_epi32((int)xp[b0]), w);                                 \
            c1 = DOT(c1, _mm512_set1_epi32((int)xp[b1]), w);                                 \
            c2 = DOT(c2, _mm512_set1_epi32((int)xp[b2]), w);                                 \
            c3 = DOT(c3, _mm512_set1_epi32((int)xp[b3]), w);                                 \
            c4 = DOT(c4, _mm512_set1_epi32((int)xp[b4]), w);                                 \
            c5 = DOT(c5, _mm512_set1_epi32((int)xp[b5]), w);                                 \
            c6 = DOT(c6, _mm512_set1_epi32((int)xp[b6]), w);                                 \
            c7 = DOT(c7, _mm512_set1_epi32((int)xp[b7]), w);                                 \
            c8 = DOT(c8, _mm512_set1_epi32((int)xp[b8]), w);                                 \
            c9 = DOT(c9, _mm512_set1_epi32((int)xp[b9]), w);                                 \
            c10 = DOT(c10, _mm512_set1_epi32((int)xp[b10]), w);                              \
            c11 = DOT(c11, _mm512_set1_epi32((int)xp[b11]), w);                              \
        }                                                                                    \
        _mm512_storeu_si512((void *)(acc + 0 * QNR), c0);                                    \
        _mm512_storeu_si512((void *)(acc + 1 * QNR), c1);                                    \
        _mm512_storeu_si512((void *)(acc + 2 * QNR), c2);                                    \
        _mm512_storeu_si512((void *)(acc + 3 * QNR), c3);                                    \
        _mm512_storeu_si512((void *)(acc + 4 * QNR), c4);                                    \
        _mm512_storeu_si512((void *)(acc + 5 * QNR), c5);                                    \
        _mm512_storeu_si512((void *)(acc + 6 * QNR), c6);                                    \
        _mm512_storeu_si512((void *)(acc + 7 * QNR), c7);                                    \
        _mm512_storeu_si512((void *)(acc + 8 * QNR), c8);                                    \
        _mm512_storeu_si512((void *)(acc + 9 * QNR), c9);                                    \
        _mm512_storeu_si512((void *)(acc + 10 * QNR), c10);                                  \
        _mm512_storeu_si512((void *)(acc + 11 * QNR), c11);                                  \
    }

DEFINE_QKERNEL(qkernel_u8, _mm512_dpbusd_epi32)
DEFINE_QKERNEL(qkernel_s16, _mm512_dpwssd_epi32)

/* The padded image of one (image, group) as words of cpw channels (4 u8 or 2 s16) of
 * q = x * s + offset; a group's channels past cg are 0, padding is the stored zero (offset).
 * bound > 0 quantizes on the way (the layer's input format, alldirectquant): x * s clamped to
 * +-bound, rounded half to even, as wg_quantize.  Returns 1 when a NaN was seen (the caller
 * then computes the layer in float, where NaN propagates). */
WG_VNNI static int pack_image(uint32_t *dst, const float *src, int64_t cg, int64_t hp, int64_t wp,
                              const wg_conv2d_dims *d, float s, int offset, int cpw, float bound)
{
    __mmask16 nan = 0;
    const __m512 vb = _mm512_set1_ps(bound), vnb = _mm512_set1_ps(-bound);
    const int64_t words = (cg + cpw - 1) / cpw, bits = 32 / cpw;
    const int64_t x0 = d->pw < wp ? d->pw : wp, x1 = d->pw + d->w < wp ? d->pw + d->w : wp;
    const __m512 vs = _mm512_set1_ps(s);
    const __m512i voff = _mm512_set1_epi32(offset);
    const __m512i field = _mm512_set1_epi32(cpw == 4 ? 0xFF : 0xFFFF);
    for (int64_t cw = 0; cw < words; cw++) {
        const int64_t nc = cg - cw * cpw < cpw ? cg - cw * cpw : cpw;
        uint32_t fill = 0;
        for (int64_t ci = 0; ci < nc; ci++)
            fill |= (uint32_t)offset << (bits * ci);
        for (int64_t y = 0; y < hp; y++) {
            uint32_t *row = dst + (cw * hp + y) * wp;
            const int64_t sy = y - d->ph;
            if (sy < 0 || sy >= d->h || x1 <= x0) {
                for (int64_t xx = 0; xx < wp; xx++)
                    row[xx] = fill;
                continue;
            }
            for (int64_t xx = 0; xx < x0; xx++)
                row[xx] = fill;
            for (int64_t xx = x1; xx < wp; xx++)
                row[xx] = fill;
            const float *srow = src + (cw * cpw * d->h + sy) * d->w;
            for (int64_t sx = 0; sx < x1 - x0; sx += 16) {
                const int64_t left = x1 - x0 - sx;
                const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
                __m512i word = _mm512_setzero_si512();
                for (int64_t ci = 0; ci < nc; ci++) {
                    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, srow + ci * d->h * d->w + sx), vs);
                    if (bound > 0.0f) { /* clamp then round: bound is whole, so round then clamp */
                        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                        v = _mm512_min_ps(_mm512_max_ps(v, vnb), vb);
                    }
                    const __m512i q0 = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                    __m512i q = _mm512_add_epi32(q0, voff);
                    q = _mm512_sll_epi32(_mm512_and_si512(q, field), _mm_cvtsi32_si128((int)(bits * ci)));
                    word = _mm512_or_si512(word, q);
                }
                _mm512_mask_storeu_epi32(row + x0 + sx, m, word);
            }
        }
    }
    return nan != 0;
}

/* wg_quantize on eight doubles (vrndscalepd rounds half to even; min / max keep NaN). */
WG_VNNI static inline __m512d quantize8(__m512d v, const wg_format *f)
{
    if (f->kind == WG_FMT_NONE)
        return v;
    __m512d q = _mm512_roundscale_pd(_mm512_mul_pd(v, _mm512_set1_pd(f->scale)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (f->kind == WG_FMT_CLAMPED) {
        q = _mm512_min_pd(_mm512_set1_pd(f->bound), q);
        q = _mm512_max_pd(_mm512_set1_pd(-f->bound), q);
    }
    return _mm512_mul_pd(q, _mm512_set1_pd(f->step));
}

/*
 * How a tile's integer sums S = acc - comp become outputs when there is no bias: in
 * integers and float32, with the same single rounding as the double formula.
 *   NONE:  float(S) * ulp             (rounding S to float, then an exact power-of-two scaling)
 *   else:  q = round_half_even(S * 2**-shift) by an integer shift, clamped to +-bound for
 *          alldirectquant, then float(q) * step.
 * shift < 0 marks "use the double formula" (a bias, or scalings that leave this range).
 */
typedef struct {
    int shift;
    float ulp, step;
    int32_t bound;
    int clamp, none;
} int_epilogue;

static int_epilogue int_epilogue_make(const float *bias, double ulp, const wg_format *fmt)
{
    int_epilogue e = {-1, 0.0f, 0.0f, 0, 0, 0};
    const int lu = ilogb(ulp);
    if (bias)
        return e;
    if (fmt->kind == WG_FMT_NONE) {
        if (lu >= -126 && lu <= 96) /* S * ulp, |S| < 2**31, is a normal float */
            e.shift = 0, e.none = 1, e.ulp = (float)ulp;
        return e;
    }
    const int k = lu + ilogb(fmt->scale), ls = ilogb(fmt->step); /* S * ulp * scale = S * 2**k */
    if (k > 0 || k < -30 || ls < -126 || ls > 96 || (fmt->kind == WG_FMT_CLAMPED && fmt->bound > 0x1p30))
        return e;
    e.shift = -k, e.step = (float)fmt->step;
    e.clamp = fmt->kind == WG_FMT_CLAMPED;
    e.bound = e.clamp ? (int32_t)fmt->bound : 0;
    return e;
}

/* One tile's outputs: quantize((acc - comp) * ulp + bias) for mr positions x nr channels,
 * computed per position over the 16 channels, then stored per channel (NCHW). */
WG_VNNI static void epilogue(float *o, int64_t p, int64_t mr, int64_t nr, const int32_t *acc,
                             const int32_t *comp, const float *bias, double ulp,
                             const wg_format *fmt, const int_epilogue *ie)
{
    float tile[QMR * QNR];
    const __mmask16 m = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    const __m512i vc = _mm512_maskz_loadu_epi32(m, comp);
    if (ie->shift >= 0) {
        const int n = ie->shift;
        const __m128i cnt = _mm_cvtsi32_si128(n);
        const __m512i low = _mm512_set1_epi32(n ? (int32_t)((1u << n) - 1) : 0);
        const __m512i half = _mm512_set1_epi32(n ? (int32_t)(1u << (n - 1)) : 0);
        const __m512i one = _mm512_set1_epi32(1);
        const __m512i hi_b = _mm512_set1_epi32(ie->bound), lo_b = _mm512_set1_epi32(-ie->bound);
        const __m512 scale = _mm512_set1_ps(ie->none ? ie->ulp : ie->step);
        for (int64_t r = 0; r < mr; r++) {
            /* the true sum fits 31 bits, so the wrapping difference is exact */
            __m512i q = _mm512_sub_epi32(_mm512_loadu_si512((const void *)(acc + r * QNR)), vc);
            if (!ie->none && n > 0) { /* round half to even: floor, then up past half or at an odd half */
                const __m512i fl = _mm512_sra_epi32(q, cnt), rem = _mm512_and_si512(q, low);
                const __mmask16 up = _mm512_cmpgt_epi32_mask(rem, half) |
                                     (_mm512_cmpeq_epi32_mask(rem, half) & _mm512_test_epi32_mask(fl, one));
                q = _mm512_mask_add_epi32(fl, up, fl, one);
            }
            if (ie->clamp)
                q = _mm512_max_epi32(_mm512_min_epi32(q, hi_b), lo_b);
            const __m512 v = _mm512_cvt_roundepi32_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm512_storeu_ps(tile + r * QNR, _mm512_mul_ps(v, scale));
        }
    } else {
        const __m512 vb = bias ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();
        const __m512d c_lo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(vc));
        const __m512d c_hi = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(vc, 1));
        const __m512d b_lo = _mm512_cvtps_pd(_mm512_castps512_ps256(vb));
        const __m512d b_hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(vb), 1)));
        const __m512d u = _mm512_set1_pd(ulp);
        for (int64_t r = 0; r < mr; r++) {
            const __m512i a = _mm512_loadu_si512((const void *)(acc + r * QNR));
            __m512d lo = _mm512_sub_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(a)), c_lo);
            __m512d hi = _mm512_sub_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(a, 1)), c_hi);
            lo = quantize8(_mm512_add_pd(_mm512_mul_pd(lo, u), b_lo), fmt);
            hi = quantize8(_mm512_add_pd(_mm512_mul_pd(hi, u), b_hi), fmt);
            _mm256_storeu_ps(tile + r * QNR, _mm512_cvtpd_ps(lo));
            _mm256_storeu_ps(tile + r * QNR + 8, _mm512_cvtpd_ps(hi));
        }
    }
    for (int64_t j = 0; j < nr; j++)
        for (int64_t r = 0; r < mr; r++)
            o[j * p + r] = tile[r * QNR + j];
}
#endif

int wg_qconv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                       const wg_conv2d_dims *d, const wg_format *in_fmt, const wg_format *fmt,
                       int nthreads)
{
#ifdef WG_X86
    const int64_t cg = d->c / d->groups, ocg = d->oc / d->groups, p = d->oh * d->ow;
    const int quantize = in_fmt && in_fmt->kind != WG_FMT_NONE;
    grid_info gw, gx;
    const int nt0 = nthreads < 1 ? 1 : nthreads;
    const int64_t fw[4] = {d->oc, cg, d->kh, d->kw}, fx[4] = {d->n, d->c, d->h, d->w};
    int64_t nweight, ninput;
    if (!wg_int8_available() || wg_prod_i64(fw, 4, &nweight) || wg_prod_i64(fx, 4, &ninput) ||
        !grid_of(weight, (size_t)nweight, &gw, nt0))
        return WG_QCONV_NA;
    if (quantize) { /* the input's format is its grid: q = round(x * scale), |q| <= bound */
        if (in_fmt->kind != WG_FMT_CLAMPED || in_fmt->bound > 32767.0 || in_fmt->scale > 0x1p120 ||
            in_fmt->scale < 0x1p-120)
            return WG_QCONV_NA;
        gx.e = ilogb(in_fmt->scale), gx.qmax = in_fmt->bound, gx.nonneg = 0;
    } else if (!grid_of(inp, (size_t)ninput, &gx, nt0))
        return WG_QCONV_NA;
    /* 8 bits: u8 x s8 quads, bounded by 4 * taps * 255 * 128 < 2**31 */
    const int64_t taps8 = (cg + 3) / 4 * d->kh * d->kw, taps16 = (cg + 1) / 2 * d->kh * d->kw;
    const int u8 = gw.qmax <= 127.0 && gx.qmax <= (gx.nonneg ? 255.0 : 127.0) && 4 * taps8 <= 65536;
    if (!u8 && !(gw.qmax <= 32767.0 && gx.qmax <= 32767.0 &&
                 2.0 * (double)taps16 * gx.qmax * gw.qmax < 2147483648.0))
        return WG_QCONV_NA;
    const int cpw = u8 ? 4 : 2, bits = 32 / cpw;
    const int64_t words = (cg + cpw - 1) / cpw, taps = words * d->kh * d->kw;
    /* Few channels on both sides (LeNet's first layer: 1 -> 6) would leave most of each word
     * and most of the 16 lanes empty: the float kernels do better there. */
    if ((double)cg / (double)(words * cpw) * (double)ocg / (double)((ocg + QNR - 1) / QNR * QNR) < 0.25)
        return WG_QCONV_NA;
    const int offset = u8 && !gx.nonneg ? 128 : 0; /* signed 8-bit input: stored as q + 128 */
    const float sx = (float)ldexp(1.0, gx.e), sw = (float)ldexp(1.0, gw.e);
    const float qbound = quantize ? (float)gx.qmax : 0.0f;
    int nan = 0;
    const double ulp = ldexp(1.0, -gx.e - gw.e); /* value of one integer product */
    const int_epilogue ie = int_epilogue_make(bias, ulp, fmt);
    void (*kernel)(int64_t, const uint32_t *, const int64_t *, const int64_t *, const int8_t *,
                   int32_t *) = u8 ? qkernel_u8 : qkernel_s16;
    int64_t hp, wpd, img; /* a frame mostly of padding no window reads: the float kernels */
    if (wg_padded_frame(d, words, 0, &hp, &wpd, &img))
        return WG_QCONV_NA;
    const int64_t panels = (ocg + QNR - 1) / QNR, tasks = d->n * d->groups;
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int per_task = tasks >= nt;
    const int64_t nbuf = per_task ? nt : 1;
    const int64_t fpk[4] = {d->groups, panels, taps, 64}, fc[3] = {d->groups, panels, QNR};
    const int64_t fp[2] = {nbuf, img};
    int64_t npk, nc, np_;
    size_t bpk, bc, bo, bp;
    if (wg_prod_i64(fpk, 4, &npk) || wg_bytes_plus(npk, 1, 1, &bpk) || wg_prod_i64(fc, 3, &nc) ||
        wg_bytes_plus(nc, sizeof(int32_t), 1, &bc) || wg_bytes_plus(taps, sizeof(int64_t), 1, &bo) ||
        wg_prod_i64(fp, 2, &np_) || wg_bytes_plus(np_, sizeof(uint32_t), 1, &bp))
        return WG_ENOMEM;
    int8_t *wpk = malloc(bpk);
    int32_t *comp = malloc(bc);
    int64_t *off = malloc(bo);
    uint32_t *pad = malloc(bp);
    if (!wpk || !comp || !off || !pad) {
        free(wpk), free(comp), free(off), free(pad);
        return WG_ENOMEM;
    }
    /* weights (oc, cg, kh, kw) -> per group and panel: taps x (16 channels x one 32-bit word) */
    for (int64_t g = 0; g < d->groups; g++)
        for (int64_t jp = 0; jp < panels; jp++)
            for (int64_t j = 0; j < QNR; j++) {
                const int64_t o = jp * QNR + j;
                int64_t sum = 0;
                for (int64_t cw = 0, t = 0; cw < words; cw++)
                    for (int64_t u = 0; u < d->kh; u++)
                        for (int64_t v = 0; v < d->kw; v++, t++) {
                            uint32_t word = 0;
                            for (int64_t ci = 0; ci < cpw; ci++) {
                                const int64_t c = cw * cpw + ci;
                                int32_t q = 0;
                                if (o < ocg && c < cg)
                                    q = (int32_t)(weight[((g * ocg + o) * cg + c) * d->kh * d->kw +
                                                         u * d->kw + v] * sw);
                                word |= ((uint32_t)q & (u8 ? 0xFFu : 0xFFFFu)) << (bits * ci);
                                sum += q;
                            }
                            memcpy(wpk + (((g * panels + jp) * taps + t) * QNR + j) * 4, &word, 4);
                        }
                comp[(g * panels + jp) * QNR + j] = (int32_t)(offset * sum);
            }
    for (int64_t cw = 0, t = 0; cw < words; cw++)
        for (int64_t u = 0; u < d->kh; u++)
            for (int64_t v = 0; v < d->kw; v++)
                off[t++] = (cw * hp + u * d->dh) * wpd + v * d->dw;
    const int64_t blocks = (p + QMR - 1) / QMR;
    const int64_t chunk = per_task ? blocks : (blocks + nt - 1) / nt;
    const int64_t per_image = (blocks + chunk - 1) / chunk;
    const int64_t units = tasks * per_image;
    for (int64_t unit0 = 0; unit0 < units; unit0 += per_task ? units : per_image) {
        const int64_t unit1 = per_task ? units : unit0 + per_image;
        if (!per_task) {
            const int64_t ni = unit0 / per_image / d->groups, g = unit0 / per_image % d->groups;
            nan |= pack_image(pad, inp + (ni * d->c + g * cg) * d->h * d->w, cg, hp, wpd, d, sx,
                              offset, cpw, qbound);
        }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(| : nan)
        for (int64_t unit = unit0; unit < unit1; unit++) {
            const int64_t t = unit / per_image;
            const int64_t b0 = unit % per_image * chunk;
            const int64_t b1 = b0 + chunk < blocks ? b0 + chunk : blocks;
            const int64_t ni = t / d->groups, g = t % d->groups;
            uint32_t *x = pad;
            if (per_task) {
                x = pad + img * THREAD_ID();
                nan |= pack_image(x, inp + (ni * d->c + g * cg) * d->h * d->w, cg, hp, wpd, d, sx,
                                  offset, cpw, qbound);
            }
            float *o = out + (ni * d->oc + g * ocg) * p;
            int32_t acc[QMR * QNR];
            int64_t base[QMR];
            for (int64_t blk = b0; blk < b1; blk++) {
                const int64_t pos0 = blk * QMR, mr = p - pos0 < QMR ? p - pos0 : QMR;
                for (int64_t r = 0; r < QMR; r++) {
                    const int64_t q = pos0 + (r < mr ? r : 0);
                    base[r] = (q / d->ow) * d->sh * wpd + (q % d->ow) * d->sw;
                }
                for (int64_t jp = 0; jp < panels; jp++) {
                    kernel(taps, x, base, off, wpk + (g * panels + jp) * taps * 64, acc);
                    const int64_t nr = ocg - jp * QNR < QNR ? ocg - jp * QNR : QNR;
                    epilogue(o + jp * QNR * p + pos0, p, mr, nr, acc,
                             comp + (g * panels + jp) * QNR,
                             bias ? bias + g * ocg + jp * QNR : NULL, ulp, fmt, &ie);
                }
            }
        }
    }
    free(wpk), free(comp), free(off), free(pad);
    return nan ? WG_QCONV_NA : WG_OK; /* NaN inputs: the float kernels, which propagate it */
#else
    (void)out, (void)inp, (void)weight, (void)bias, (void)d, (void)in_fmt, (void)fmt, (void)nthreads;
    return WG_QCONV_NA;
#endif
}
