/*
 * Integer convolution: fixed-point operands multiplied as 8-bit integers (AVX-512 VNNI).
 *
 * WAGEUBN's activations and weights are fixed-point numbers: each is an integer times a
 * power of two.  When every input value is q * 2**-ex with q in [0, 255] (or [-128, 127])
 * and every weight is q * 2**-ew with q in [-127, 127], the convolution is an integer sum
 * times 2**-(ex + ew), and vpdpbusd computes 64 of its products per instruction where a
 * float FMA computes 16.  The integer sums are exact (bounded below 2**31), so the result is
 * the exact one that the double kernels compute, converted and rounded by the same epilogue.
 *
 * Layout.  The padded image of one (image, group) is stored as 32-bit words, one word per
 * (channel quad, row, column): the four channels' bytes, the quad's last channels zero.
 * Signed inputs are stored with +128 (u8), and 128 * sum(w) is subtracted per channel.
 * The weights of 16 output channels for one (quad, u, v) tap are one 64-byte vector.
 * A micro-kernel computes QMR positions x 16 channels over every tap, broadcasting each
 * position's word; the epilogue writes each output once, in (channel, position) order.
 *
 * wg_qconv2d_forward returns WG_QCONV_NA when the operands are not on such a grid, the
 * CPU lacks AVX-512 VNNI (or WAGEUBN_PORTABLE / WAGEUBN_SIMD=avx2 is set), or the sum
 * could overflow; the caller then uses the float kernels.
 */
#include <stdlib.h>
#include <string.h>

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
           __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

#ifdef WG_X86
#define WG_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

/*
 * The grid of n floats: the largest power of two 2**e such that every x * 2**e is an integer
 * of magnitude <= limit, with limit = lim_nonneg when every x >= 0 (*nonneg = 1), else
 * lim_signed.  0 when there is none (NaN, Inf, values off every such grid).
 */
WG_VNNI static int find_grid(const float *x, size_t n, double lim_nonneg, double lim_signed,
                             int *exponent, int *nonneg)
{
    __m512 vmax = _mm512_setzero_ps(), vmin = vmax;
    __mmask16 nan = 0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        vmax = _mm512_max_ps(vmax, v), vmin = _mm512_min_ps(vmin, v);
    }
    float mx = _mm512_reduce_max_ps(vmax), mn = _mm512_reduce_min_ps(vmin);
    for (; i < n; i++) {
        nan |= x[i] != x[i];
        mx = x[i] > mx ? x[i] : mx;
        mn = x[i] < mn ? x[i] : mn;
    }
    if (nan)
        return 0;
    *nonneg = mn >= 0.0f;
    const double m = (double)mx > -(double)mn ? (double)mx : -(double)mn;
    if (!(m < INFINITY))
        return 0;
    if (m == 0.0) {
        *exponent = 0;
        return 1;
    }
    int e;
    /* limit / m = f * 2**e with 0.5 <= f < 1, so m * 2**(e-1) <= limit < m * 2**e */
    frexp((*nonneg ? lim_nonneg : lim_signed) / m, &e);
    e -= 1;
    if (e > 120 || e < -120) /* 2**e and x * 2**e stay normal floats */
        return 0;
    const __m512 s = _mm512_set1_ps((float)ldexp(1.0, e));
    __mmask16 off = 0;
    for (i = 0; i + 16 <= n; i += 16) { /* x * 2**e is exact: |x * 2**e| <= limit */
        const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), s);
        off |= _mm512_cmp_ps_mask(v, _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                  _CMP_NEQ_UQ);
    }
    const float s1 = (float)ldexp(1.0, e);
    for (; i < n; i++)
        off |= x[i] * s1 != nearbyintf(x[i] * s1);
    *exponent = e;
    return !off;
}

/* acc (QMR x 16) = sum over taps p of u8 words x[base[r] + off[p]] . s8 weights wp[p] */
WG_VNNI static void qkernel(int64_t taps, const uint32_t *x, const int64_t *base,
                            const int64_t *off, const int8_t *wp, int32_t *acc)
{
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    __m512i c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    const int64_t b0 = base[0], b1 = base[1], b2 = base[2], b3 = base[3], b4 = base[4],
                  b5 = base[5], b6 = base[6], b7 = base[7], b8 = base[8], b9 = base[9],
                  b10 = base[10], b11 = base[11];
    for (int64_t p = 0; p < taps; p++, wp += 64) {
        const uint32_t *xp = x + off[p];
        const __m512i w = _mm512_loadu_si512((const void *)wp);
#define Q_STEP(c, b) c = _mm512_dpbusd_epi32(c, _mm512_set1_epi32((int)xp[b]), w)
        Q_STEP(c0, b0), Q_STEP(c1, b1), Q_STEP(c2, b2), Q_STEP(c3, b3);
        Q_STEP(c4, b4), Q_STEP(c5, b5), Q_STEP(c6, b6), Q_STEP(c7, b7);
        Q_STEP(c8, b8), Q_STEP(c9, b9), Q_STEP(c10, b10), Q_STEP(c11, b11);
#undef Q_STEP
    }
    _mm512_storeu_si512((void *)(acc + 0 * QNR), c0);
    _mm512_storeu_si512((void *)(acc + 1 * QNR), c1);
    _mm512_storeu_si512((void *)(acc + 2 * QNR), c2);
    _mm512_storeu_si512((void *)(acc + 3 * QNR), c3);
    _mm512_storeu_si512((void *)(acc + 4 * QNR), c4);
    _mm512_storeu_si512((void *)(acc + 5 * QNR), c5);
    _mm512_storeu_si512((void *)(acc + 6 * QNR), c6);
    _mm512_storeu_si512((void *)(acc + 7 * QNR), c7);
    _mm512_storeu_si512((void *)(acc + 8 * QNR), c8);
    _mm512_storeu_si512((void *)(acc + 9 * QNR), c9);
    _mm512_storeu_si512((void *)(acc + 10 * QNR), c10);
    _mm512_storeu_si512((void *)(acc + 11 * QNR), c11);
}

/* The padded image of one (image, group) as channel-quad words of u8 (value * s + offset);
 * the quad's channels past cg are 0, padding is the stored zero (offset). */
WG_VNNI static void pack_image(uint32_t *dst, const float *src, int64_t cg, int64_t hp, int64_t wp,
                               const wg_conv2d_dims *d, float s, int offset)
{
    const int64_t quads = (cg + 3) / 4;
    const int64_t x0 = d->pw < wp ? d->pw : wp, x1 = d->pw + d->w < wp ? d->pw + d->w : wp;
    const __m512 vs = _mm512_set1_ps(s);
    const __m512i voff = _mm512_set1_epi32(offset), byte = _mm512_set1_epi32(0xFF);
    for (int64_t c4 = 0; c4 < quads; c4++) {
        const int64_t nc = cg - c4 * 4 < 4 ? cg - c4 * 4 : 4;
        uint32_t fill = 0;
        for (int64_t ci = 0; ci < nc; ci++)
            fill |= (uint32_t)offset << (8 * ci);
        for (int64_t y = 0; y < hp; y++) {
            uint32_t *row = dst + (c4 * hp + y) * wp;
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
            const float *srow = src + (c4 * 4 * d->h + sy) * d->w;
            for (int64_t sx = 0; sx < x1 - x0; sx += 16) {
                const int64_t left = x1 - x0 - sx;
                const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
                __m512i word = _mm512_setzero_si512();
                for (int64_t ci = 0; ci < nc; ci++) {
                    const __m512 v = _mm512_maskz_loadu_ps(m, srow + ci * d->h * d->w + sx);
                    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, vs)), voff);
                    q = _mm512_sll_epi32(_mm512_and_si512(q, byte), _mm_cvtsi32_si128((int)(8 * ci)));
                    word = _mm512_or_si512(word, q);
                }
                _mm512_mask_storeu_epi32(row + x0 + sx, m, word);
            }
        }
    }
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

/* One tile's outputs: quantize((acc - comp) * ulp + bias) for mr positions x nr channels,
 * computed per position over the 16 channels, then stored per channel (NCHW). */
WG_VNNI static void epilogue(float *o, int64_t p, int64_t mr, int64_t nr, const int32_t *acc,
                             const int32_t *comp, const float *bias, double ulp,
                             const wg_format *fmt)
{
    float tile[QMR * QNR];
    const __mmask16 m = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    const __m512i vc = _mm512_maskz_loadu_epi32(m, comp);
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
    for (int64_t j = 0; j < nr; j++)
        for (int64_t r = 0; r < mr; r++)
            o[j * p + r] = tile[r * QNR + j];
}
#endif

int wg_qconv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                       const wg_conv2d_dims *d, const wg_format *fmt, int nthreads)
{
#ifdef WG_X86
    const int64_t cg = d->c / d->groups, ocg = d->oc / d->groups;
    const int64_t quads = (cg + 3) / 4, taps = quads * d->kh * d->kw, k = cg * d->kh * d->kw;
    const int64_t p = d->oh * d->ow;
    /* |sum| <= 4 * taps * 255 * 127 must stay below 2**31 */
    if (!wg_int8_available() || 4 * taps > 65536)
        return WG_QCONV_NA;
    int ex, ew, x_nonneg, w_nonneg;
    if (!find_grid(weight, (size_t)(d->oc * k), 127.0, 127.0, &ew, &w_nonneg) ||
        !find_grid(inp, (size_t)(d->n * d->c * d->h * d->w), 255.0, 127.0, &ex, &x_nonneg))
        return WG_QCONV_NA;
    const int offset = x_nonneg ? 0 : 128; /* signed input: q in [-127, 127] stored as q + 128 */
    const float sx = (float)ldexp(1.0, ex), sw = (float)ldexp(1.0, ew);
    const double ulp = ldexp(1.0, -ex - ew); /* value of one integer product */
    const int64_t hp = (d->oh - 1) * d->sh + (d->kh - 1) * d->dh + 1;
    const int64_t wpd = (d->ow - 1) * d->sw + (d->kw - 1) * d->dw + 1;
    const int64_t panels = (ocg + QNR - 1) / QNR, tasks = d->n * d->groups;
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int per_task = tasks >= nt;
    const int64_t nbuf = per_task ? nt : 1, img = quads * hp * wpd;
    int8_t *wpk = malloc((size_t)(d->groups * panels * taps * 64) + 1);
    int32_t *comp = malloc(sizeof(int32_t) * (size_t)(d->groups * panels * QNR) + 1);
    int64_t *off = malloc(sizeof(int64_t) * (size_t)taps + 1);
    uint32_t *pad = malloc(sizeof(uint32_t) * (size_t)(nbuf * img) + 1);
    if (!wpk || !comp || !off || !pad) {
        free(wpk), free(comp), free(off), free(pad);
        return WG_ENOMEM;
    }
    /* weights (oc, cg, kh, kw) -> per group and panel: taps x (16 channels x 4 quad bytes) */
    for (int64_t g = 0; g < d->groups; g++)
        for (int64_t jp = 0; jp < panels; jp++)
            for (int64_t j = 0; j < QNR; j++) {
                const int64_t o = jp * QNR + j;
                int32_t sum = 0;
                for (int64_t c4 = 0, t = 0; c4 < quads; c4++)
                    for (int64_t u = 0; u < d->kh; u++)
                        for (int64_t v = 0; v < d->kw; v++, t++)
                            for (int64_t ci = 0; ci < 4; ci++) {
                                const int64_t c = c4 * 4 + ci;
                                int q = 0;
                                if (o < ocg && c < cg)
                                    q = (int)(weight[((g * ocg + o) * cg + c) * d->kh * d->kw +
                                                     u * d->kw + v] * sw);
                                wpk[(((g * panels + jp) * taps + t) * QNR + j) * 4 + ci] = (int8_t)q;
                                sum += q;
                            }
                comp[(g * panels + jp) * QNR + j] = offset * sum;
            }
    for (int64_t c4 = 0, t = 0; c4 < quads; c4++)
        for (int64_t u = 0; u < d->kh; u++)
            for (int64_t v = 0; v < d->kw; v++)
                off[t++] = (c4 * hp + u * d->dh) * wpd + v * d->dw;
    const int64_t blocks = (p + QMR - 1) / QMR;
    const int64_t chunk = per_task ? blocks : (blocks + nt - 1) / nt;
    const int64_t per_image = (blocks + chunk - 1) / chunk;
    const int64_t units = tasks * per_image;
    for (int64_t unit0 = 0; unit0 < units; unit0 += per_task ? units : per_image) {
        const int64_t unit1 = per_task ? units : unit0 + per_image;
        if (!per_task) {
            const int64_t ni = unit0 / per_image / d->groups, g = unit0 / per_image % d->groups;
            pack_image(pad, inp + (ni * d->c + g * cg) * d->h * d->w, cg, hp, wpd, d, sx, offset);
        }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t unit = unit0; unit < unit1; unit++) {
            const int64_t t = unit / per_image;
            const int64_t b0 = unit % per_image * chunk;
            const int64_t b1 = b0 + chunk < blocks ? b0 + chunk : blocks;
            const int64_t ni = t / d->groups, g = t % d->groups;
            uint32_t *x = pad;
            if (per_task) {
                x = pad + img * THREAD_ID();
                pack_image(x, inp + (ni * d->c + g * cg) * d->h * d->w, cg, hp, wpd, d, sx, offset);
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
                    qkernel(taps, x, base, off, wpk + (g * panels + jp) * taps * 64, acc);
                    const int64_t nr = ocg - jp * QNR < QNR ? ocg - jp * QNR : QNR;
                    epilogue(o + jp * QNR * p + pos0, p, mr, nr, acc,
                             comp + (g * panels + jp) * QNR,
                             bias ? bias + g * ocg + jp * QNR : NULL, ulp, fmt);
                }
            }
        }
    }
    free(wpk), free(comp), free(off), free(pad);
    return WG_OK;
#else
    (void)out, (void)inp, (void)weight, (void)bias, (void)d, (void)fmt, (void)nthreads;
    return WG_QCONV_NA;
#endif
}
