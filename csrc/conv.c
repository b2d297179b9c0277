/*
 * 2-d convolution (and AdderNet's layer) as a direct kernel: no im2col.
 *
 * Each (image, group) is copied once into a zero-padded buffer.  A micro-kernel computes
 * MR output positions x NR output channels over every tap p = (c, u, v): the weights of
 * tap p for NR channels are one packed vector row, and the inputs of the MR positions are
 * read straight from the padded image at base[r] + off[p].  The epilogue adds the bias,
 * rounds to the output format and stores each output once, in (channel, position) order.
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



/* acc (MR x NR) = sum_p op(x[base[r] + off[p]], wp[p][c]) */
#define DEFINE_DIRECT_REF(name, T, NR, OP)                                                   \
    static void name(int64_t k, const float *x, const int64_t *base, const int64_t *off,     \
                     const T *wp, T *acc)                                                    \
    {                                                                                        \
        T c[MR][NR] = {{0}};                                                                 \
        for (int64_t p = 0; p < k; p++, wp += NR) {                                          \
            const float *xp = x + off[p];                                                    \
            for (int r = 0; r < MR; r++) {                                                   \
                const T a = (T)xp[base[r]];                                                  \
                for (int j = 0; j < NR; j++)                                                 \
                    c[r][j] += OP(a, wp[j]);                                                 \
            }                                                                                \
        }                                                                                    \
        memcpy(acc, c, sizeof c);                                                            \
    }

DEFINE_DIRECT_REF(direct_ref_f32_dot, float, 16, MUL)
DEFINE_DIRECT_REF(direct_ref_f32_l1, float, 16, NEG_ABS_DIFF)
DEFINE_DIRECT_REF(direct_ref_f64_dot, double, 8, MUL)
DEFINE_DIRECT_REF(direct_ref_f64_l1, double, 8, NEG_ABS_DIFF)

#ifdef WG_X86

#define DEFINE_DIRECT_AVX2(name, T, VEC, W, LOAD, SET1, ZERO, STORE, STEP)                   \
    WG_AVX2 static void name(int64_t k, const float *x, const int64_t *base, const int64_t *off, \
                          const T *wp, T *acc)                                               \
    {                                                                                        \
        VEC c[MR][2];                                                                        \
        for (int r = 0; r < MR; r++)                                                         \
            c[r][0] = c[r][1] = ZERO();                                                      \
        const int64_t b0_ = base[0], b1_ = base[1], b2_ = base[2], b3_ = base[3],            \
                      b4_ = base[4], b5_ = base[5];                                          \
        for (int64_t p = 0; p < k; p++, wp += 2 * W) {                                       \
            const float *xp = x + off[p];                                                    \
            const VEC w0 = LOAD(wp), w1 = LOAD(wp + W);                                      \
            VEC a;                                                                           \
            a = SET1((T)xp[b0_]), STEP(c[0][0], a, w0), STEP(c[0][1], a, w1);                \
            a = SET1((T)xp[b1_]), STEP(c[1][0], a, w0), STEP(c[1][1], a, w1);                \
            a = SET1((T)xp[b2_]), STEP(c[2][0], a, w0), STEP(c[2][1], a, w1);                \
            a = SET1((T)xp[b3_]), STEP(c[3][0], a, w0), STEP(c[3][1], a, w1);                \
            a = SET1((T)xp[b4_]), STEP(c[4][0], a, w0), STEP(c[4][1], a, w1);                \
            a = SET1((T)xp[b5_]), STEP(c[5][0], a, w0), STEP(c[5][1], a, w1);                \
        }                                                                                    \
        for (int r = 0; r < MR; r++) {                                                       \
            STORE(acc + r * 2 * W, c[r][0]);                                                 \
            STORE(acc + r * 2 * W + W, c[r][1]);                                             \
        }                                                                                    \
    }

WG_DEFINE_AVX2_KERNELS(DEFINE_DIRECT_AVX2, direct_avx2)
#define PICK(simd, name) ((simd) ? direct_avx2_##name : direct_ref_##name)
#else
#define PICK(simd, name) direct_ref_##name
#endif

/* One tile's outputs: quantize(acc + bias) for mr positions x nr channels, stored per channel. */
#define DEFINE_EPILOGUE_REF(name, T, NR)                                                     \
    static void name(float *o, int64_t p, int64_t mr, int64_t nr, const T *acc,              \
                     const float *bias, const wg_format *fmt)                                \
    {                                                                                        \
        for (int64_t j = 0; j < nr; j++) {                                                   \
            const double bv = bias ? bias[j] : 0.0;                                          \
            for (int64_t r = 0; r < mr; r++)                                                 \
                o[j * p + r] = (float)wg_quantize((double)acc[r * NR + j] + bv, fmt);        \
        }                                                                                    \
    }

DEFINE_EPILOGUE_REF(epilogue_ref_f32, float, 16)
DEFINE_EPILOGUE_REF(epilogue_ref_f64, double, 8)

#ifdef WG_X86
/* The same, four doubles at a time over the channels of a position, then stored per channel. */
#define DEFINE_EPILOGUE_AVX2(name, T, NR, LOAD4)                                             \
    WG_AVX2 static void name(float *o, int64_t p, int64_t mr, int64_t nr, const T *acc,      \
                             const float *bias, const wg_format *fmt)                        \
    {                                                                                        \
        double bb[NR];                                                                       \
        float tile[MR * NR];                                                                 \
        for (int64_t j = 0; j < NR; j++)                                                     \
            bb[j] = bias && j < nr ? bias[j] : 0.0;                                          \
        for (int64_t r = 0; r < mr; r++)                                                     \
            for (int64_t q = 0; q < NR; q += 4) {                                            \
                const __m256d v = _mm256_add_pd(LOAD4(acc + r * NR + q), _mm256_loadu_pd(bb + q)); \
                _mm_storeu_ps(tile + r * NR + q, _mm256_cvtpd_ps(wg_quantize_pd(v, fmt)));   \
            }                                                                                \
        for (int64_t j = 0; j < nr; j++)                                                     \
            for (int64_t r = 0; r < mr; r++)                                                 \
                o[j * p + r] = tile[r * NR + j];                                             \
    }
#define LOAD4_F32(ptr) _mm256_cvtps_pd(_mm_loadu_ps(ptr))
DEFINE_EPILOGUE_AVX2(epilogue_avx2_f32, float, 16, LOAD4_F32)
DEFINE_EPILOGUE_AVX2(epilogue_avx2_f64, double, 8, _mm256_loadu_pd)
#define EPILOGUE(simd, t) ((simd) ? epilogue_avx2_##t : epilogue_ref_##t)
#else
#define EPILOGUE(simd, t) epilogue_ref_##t
#endif

/* The padded image of one (image, group): rows and columns the windows reach. */
static void pad_image(float *dst, const float *src, int64_t cg, int64_t hp, int64_t wp,
                      const wg_conv2d_dims *d)
{
    for (int64_t c = 0; c < cg; c++)
        for (int64_t y = 0; y < hp; y++) {
            float *row = dst + (c * hp + y) * wp;
            const int64_t sy = y - d->ph;
            memset(row, 0, (size_t)wp * sizeof(float));
            if (sy < 0 || sy >= d->h)
                continue;
            const int64_t x0 = d->pw, x1 = d->pw + d->w < wp ? d->pw + d->w : wp;
            if (x1 > x0)
                memcpy(row + x0, src + (c * d->h + sy) * d->w, (size_t)(x1 - x0) * sizeof(float));
        }
}

/*
 * Bounds-checked windows, no padded copy.  For few output positions (a convolution over its
 * whole input, LeNet's last one) each weight is used once, so packing it would cost more than
 * the products; and where the padded frame would be mostly padding that no window reads (a
 * huge dilation or padding around a small image, wg_padded_frame) this path costs what the
 * windows read, whatever the padding.  The window of each position is gathered once, taps in
 * the padding read as 0, and every channel is a dot product with its weight row.  Every index
 * stays within the extents that wg_conv2d_valid checked.
 */
#define DEFINE_FEW_POSITIONS(name, T, OP)                                                    \
    static int name(float *out, const float *inp, const float *weight, const float *bias,    \
                    const wg_conv2d_dims *d, const wg_format *fmt, int nthreads)             \
    {                                                                                        \
        const int64_t cg = d->c / d->groups, ocg = d->oc / d->groups;                        \
        const int64_t k = cg * d->kh * d->kw, p = d->oh * d->ow, hw = d->h * d->w;           \
        const int nt = nthreads < 1 ? 1 : nthreads;                                          \
        const int64_t units = d->n * d->groups * p;                                          \
        size_t bytes;                                                                        \
        if (wg_mul_size((size_t)nt, (size_t)k, &bytes) ||                                    \
            wg_mul_size(bytes, sizeof(T), &bytes) || wg_add_size(bytes, 1, &bytes))          \
            return WG_ENOMEM;                                                                \
        T *cols = malloc(bytes); /* one gathered window per thread */                        \
        if (!cols)                                                                           \
            return WG_ENOMEM;                                                                \
        _Pragma("omp parallel for num_threads(nt) schedule(dynamic, 16) if (nt > 1)")        \
        for (int64_t unit = 0; unit < units; unit++) {                                       \
            T *col = cols + k * THREAD_ID();                                                 \
            const int64_t t = unit / p, pos = unit % p;                                      \
            const int64_t ni = t / d->groups, g = t % d->groups;                             \
            const float *img = inp + (ni * d->c + g * cg) * hw;                              \
            const int64_t y0 = pos / d->ow * d->sh - d->ph, x0 = pos % d->ow * d->sw - d->pw; \
            for (int64_t q = 0, c = 0; c < cg; c++)                                          \
                for (int64_t u = 0; u < d->kh; u++) {                                        \
                    const int64_t y = y0 + u * d->dh;                                        \
                    const int row_in = y >= 0 && y < d->h;                                   \
                    for (int64_t v = 0; v < d->kw; v++, q++) {                               \
                        const int64_t x = x0 + v * d->dw;                                    \
                        col[q] = (row_in && x >= 0 && x < d->w)                              \
                                     ? (T)img[c * hw + y * d->w + x]                         \
                                     : (T)0;                                                 \
                    }                                                                        \
                }                                                                            \
            for (int64_t o = 0; o < ocg; o++) {                                              \
                const float *wrow = weight + (g * ocg + o) * k;                              \
                T acc = 0;                                                                   \
                _Pragma("omp simd reduction(+ : acc)")                                       \
                for (int64_t q = 0; q < k; q++)                                              \
                    acc += OP(col[q], (T)wrow[q]);                                           \
                const double bv = bias ? bias[g * ocg + o] : 0.0;                            \
                out[((ni * d->oc) + g * ocg + o) * p + pos] =                                \
                    (float)wg_quantize((double)acc + bv, fmt);                               \
            }                                                                                \
        }                                                                                    \
        free(cols);                                                                          \
        return WG_OK;                                                                        \
    }

DEFINE_FEW_POSITIONS(few_f32_dot, float, MUL)
DEFINE_FEW_POSITIONS(few_f32_l1, float, NEG_ABS_DIFF)
DEFINE_FEW_POSITIONS(few_f64_dot, double, MUL)
DEFINE_FEW_POSITIONS(few_f64_l1, double, NEG_ABS_DIFF)

#define DEFINE_CONV(name, T, NR, KERNEL, EPI)                                                \
    static int name(float *out, const float *inp, const float *weight, const float *bias,    \
                    const wg_conv2d_dims *d, const wg_format *fmt, int nthreads)             \
    {                                                                                        \
        const int simd = wg_simd_available();                                                \
        void (*kernel)(int64_t, const float *, const int64_t *, const int64_t *, const T *,  \
                       T *) = KERNEL(simd);                                                  \
        void (*epilogue)(float *, int64_t, int64_t, int64_t, const T *, const float *,       \
                         const wg_format *) = EPILOGUE(simd, EPI);                           \
        const int64_t cg = d->c / d->groups, ocg = d->oc / d->groups;                        \
        const int64_t k = cg * d->kh * d->kw, p = d->oh * d->ow;                             \
        int64_t hp, wpd, img;                                                                \
        if (wg_padded_frame(d, cg, 0, &hp, &wpd, &img)) /* the caller checked: not reached */ \
            return WG_ERANGE;                                                                \
        const int64_t panels = (ocg + NR - 1) / NR, tasks = d->n * d->groups;                \
        const int nt = nthreads < 1 ? 1 : nthreads;                                          \
        /* Enough images x groups: one per thread; else threads share an image's positions. */ \
        const int per_task = tasks >= nt;                                                    \
        const int64_t nbuf = per_task ? nt : 1;                                              \
        const int64_t fw[4] = {d->groups, panels, NR, k}, fp[2] = {nbuf, img};               \
        int64_t nw, np_;                                                                     \
        size_t bw, bo, bp;                                                                   \
        if (wg_prod_i64(fw, 4, &nw) || wg_bytes_plus(nw, sizeof(T), 64, &bw) ||              \
            wg_bytes_plus(k, sizeof(int64_t), 1, &bo) || wg_prod_i64(fp, 2, &np_) ||         \
            wg_bytes_plus(np_, sizeof(float), 1, &bp))                                       \
            return WG_ENOMEM;                                                                \
        /* 64-byte aligned: the kernel's vector loads never split a cache line */            \
        T *wpk = aligned_alloc(64, bw / 64 * 64);                                            \
        int64_t *off = malloc(bo);                                                           \
        float *pad = malloc(bp);                                                             \
        if (!wpk || !off || !pad) {                                                          \
            free(wpk), free(off), free(pad);                                                 \
            return WG_ENOMEM;                                                                \
        }                                                                                    \
        /* weights (oc, cg, kh, kw) -> per group, per panel of NR channels: (k, NR) rows. */ \
        for (int64_t g = 0; g < d->groups; g++)                                              \
            for (int64_t jp = 0; jp < panels; jp++)                                          \
                for (int64_t q = 0; q < k; q++)                                              \
                    for (int64_t j = 0; j < NR; j++) {                                       \
                        const int64_t o = jp * NR + j;                                       \
                        wpk[((g * panels + jp) * k + q) * NR + j] =                          \
                            o < ocg ? (T)weight[(g * ocg + o) * k + q] : (T)0;               \
                    }                                                                        \
        for (int64_t q = 0, c = 0; c < cg; c++)                                              \
            for (int64_t u = 0; u < d->kh; u++)                                              \
                for (int64_t v = 0; v < d->kw; v++)                                          \
                    off[q++] = (c * hp + u * d->dh) * wpd + v * d->dw;                       \
        const int64_t blocks = (p + MR - 1) / MR;                                            \
        const int64_t chunk = per_task ? blocks : (blocks + nt - 1) / nt;                    \
        const int64_t per_image = (blocks + chunk - 1) / chunk;                              \
        const int64_t units = tasks * per_image;                                             \
        /* per_task: every unit at once; otherwise one image at a time, padded once. */      \
        for (int64_t unit0 = 0; unit0 < units; unit0 += per_task ? units : per_image) {      \
            const int64_t unit1 = per_task ? units : unit0 + per_image;                      \
            if (!per_task) {                                                                 \
                const int64_t ni = unit0 / per_image / d->groups, g = unit0 / per_image % d->groups; \
                pad_image(pad, inp + (ni * d->c + g * cg) * d->h * d->w, cg, hp, wpd, d);    \
            }                                                                                \
            _Pragma("omp parallel for num_threads(nt) schedule(dynamic, 1)")                 \
            for (int64_t unit = unit0; unit < unit1; unit++) {                               \
                const int64_t t = unit / per_image;                                          \
                const int64_t b0 = unit % per_image * chunk;                                 \
                const int64_t b1 = b0 + chunk < blocks ? b0 + chunk : blocks;                \
                const int64_t ni = t / d->groups, g = t % d->groups;                         \
                float *x = pad;                                                              \
                if (per_task) {                                                              \
                    x = pad + img * THREAD_ID();                                             \
                    pad_image(x, inp + (ni * d->c + g * cg) * d->h * d->w, cg, hp, wpd, d);  \
                }                                                                            \
                float *o = out + (ni * d->oc + g * ocg) * p;                                 \
                T acc[MR * NR];                                                              \
                int64_t base[MR];                                                            \
                for (int64_t blk = b0; blk < b1; blk++) {                                    \
                    const int64_t pos0 = blk * MR, mr = p - pos0 < MR ? p - pos0 : MR;       \
                    for (int64_t r = 0; r < MR; r++) {                                       \
                        const int64_t q = pos0 + (r < mr ? r : 0);                           \
                        base[r] = (q / d->ow) * d->sh * wpd + (q % d->ow) * d->sw;           \
                    }                                                                        \
                    for (int64_t jp = 0; jp < panels; jp++) {                                \
                        kernel(k, x, base, off, wpk + (g * panels + jp) * k * NR, acc);      \
                        const int64_t nr = ocg - jp * NR < NR ? ocg - jp * NR : NR;          \
                        epilogue(o + jp * NR * p + pos0, p, mr, nr, acc,                     \
                                 bias ? bias + g * ocg + jp * NR : NULL, fmt);               \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        free(wpk), free(off), free(pad);                                                     \
        return WG_OK;                                                                        \
    }

#define K_F32_DOT(simd) PICK(simd, f32_dot)
#define K_F32_L1(simd) PICK(simd, f32_l1)
#define K_F64_DOT(simd) PICK(simd, f64_dot)
#define K_F64_L1(simd) PICK(simd, f64_l1)

DEFINE_CONV(conv_f32_dot, float, 16, K_F32_DOT, f32)
DEFINE_CONV(conv_f32_l1, float, 16, K_F32_L1, f32)
DEFINE_CONV(conv_f64_dot, double, 8, K_F64_DOT, f64)
DEFINE_CONV(conv_f64_l1, double, 8, K_F64_L1, f64)

/*
 * Few output channels (LeNet's first convolution, 6): vectors run along an output row
 * instead, 16 positions x ROW_OCB channels per tile, weights broadcast.  Needs stride 1 along
 * the rows, so that 8 neighbouring outputs read 8 neighbouring inputs.  Float accumulation.
 */
#define ROW_OCB 6

#ifdef WG_X86
WG_AVX2 static void rows_tile(float *o, int64_t p, int64_t valid, int64_t k, const float *x,
                              const int64_t *off, const float *wk, const float *bias, int64_t nc,
                              const wg_format *fmt)
{
    __m256 c[ROW_OCB][2];
    for (int j = 0; j < ROW_OCB; j++)
        c[j][0] = c[j][1] = _mm256_setzero_ps();
    for (int64_t q = 0; q < k; q++, wk += ROW_OCB) {
        const float *xp = x + off[q];
        const __m256 a0 = _mm256_loadu_ps(xp), a1 = _mm256_loadu_ps(xp + 8);
        for (int j = 0; j < ROW_OCB; j++) {
            const __m256 w = _mm256_set1_ps(wk[j]);
            c[j][0] = _mm256_fmadd_ps(a0, w, c[j][0]);
            c[j][1] = _mm256_fmadd_ps(a1, w, c[j][1]);
        }
    }
    float tile[16];
    for (int64_t j = 0; j < nc; j++) {
        const __m256d b = _mm256_set1_pd(bias ? bias[j] : 0.0);
        _mm256_storeu_ps(tile, c[j][0]);
        _mm256_storeu_ps(tile + 8, c[j][1]);
        for (int h = 0; h < 16; h += 4) { /* (double)acc + bias, rounded: the epilogue's formula */
            const __m256d v = _mm256_add_pd(_mm256_cvtps_pd(_mm_loadu_ps(tile + h)), b);
            _mm_storeu_ps(tile + h, _mm256_cvtpd_ps(wg_quantize_pd(v, fmt)));
        }
        memcpy(o + j * p, tile, sizeof(float) * (size_t)valid);
    }
}

static int conv_rows(float *out, const float *inp, const float *weight, const float *bias,
                     const wg_conv2d_dims *d, const wg_format *fmt, int nthreads)
{
    const int64_t cg = d->c / d->groups, ocg = d->oc / d->groups;
    const int64_t k = cg * d->kh * d->kw, p = d->oh * d->ow;
    int64_t hp, wpd, img; /* a row's last tile reads up to 15 columns past the output: room */
    if (wg_padded_frame(d, cg, 1, &hp, &wpd, &img)) /* the caller checked: not reached */
        return WG_ERANGE;
    const int64_t tasks = d->n * d->groups;
    const int nt = nthreads < 1 ? 1 : nthreads;
    const int64_t fw[3] = {d->groups, k, ROW_OCB}, fp[2] = {nt, img};
    int64_t nw, np_;
    size_t bw, bo, bp;
    if (wg_prod_i64(fw, 3, &nw) || wg_bytes_plus(nw, sizeof(float), 1, &bw) ||
        wg_bytes_plus(k, sizeof(int64_t), 1, &bo) || wg_prod_i64(fp, 2, &np_) ||
        wg_bytes_plus(np_, sizeof(float), 1, &bp))
        return WG_ENOMEM;
    float *wk = malloc(bw);
    int64_t *off = malloc(bo);
    float *pad = malloc(bp); /* one image per thread */
    if (!wk || !off || !pad) {
        free(wk), free(off), free(pad);
        return WG_ENOMEM;
    }
    for (int64_t g = 0; g < d->groups; g++) /* (g, q, j) = weight[g * ocg + j][q], zero past ocg */
        for (int64_t q = 0; q < k; q++)
            for (int64_t j = 0; j < ROW_OCB; j++)
                wk[(g * k + q) * ROW_OCB + j] = j < ocg ? weight[(g * ocg + j) * k + q] : 0.0f;
    for (int64_t q = 0, c = 0; c < cg; c++)
        for (int64_t u = 0; u < d->kh; u++)
            for (int64_t v = 0; v < d->kw; v++)
                off[q++] = (c * hp + u * d->dh) * wpd + v * d->dw;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (tasks > 1)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t ni = t / d->groups, g = t % d->groups;
        float *x = pad + img * THREAD_ID();
        pad_image(x, inp + (ni * d->c + g * cg) * d->h * d->w, cg, hp, wpd, d);
        float *o = out + (ni * d->oc + g * ocg) * p;
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox += 16)
                rows_tile(o + oy * d->ow + ox, p, d->ow - ox < 16 ? d->ow - ox : 16, k,
                          x + oy * d->sh * wpd + ox, off, wk + g * k * ROW_OCB,
                          bias ? bias + g * ocg : NULL, ocg, fmt);
    }
    free(wk), free(off), free(pad);
    return WG_OK;
}
#else
static int conv_rows(float *out, const float *inp, const float *weight, const float *bias,
                     const wg_conv2d_dims *d, const wg_format *fmt, int nthreads)
{
    return conv_f32_dot(out, inp, weight, bias, d, fmt, nthreads);
}
#endif

int wg_patch_forward(float *out, const float *inp, const float *weight, const float *bias,
                     const wg_conv2d_dims *d, const wg_format *in_fmt, const wg_format *out_fmt,
                     int exact, int nthreads, wg_patch_op op)
{
    if (wg_conv2d_valid(d) != WG_ARG_NONE || d->oh < 0 || d->ow < 0)
        return WG_ERANGE;
    const int64_t p = d->oh * d->ow, cg = d->c / d->groups; /* within the checked output size */
    if (d->n == 0 || d->oc == 0 || p == 0)
        return WG_OK;
    /* Small layers run on one thread: waking a team costs more than it saves. */
    const int64_t ops[7] = {d->n, d->oh, d->ow, d->oc, cg, d->kh, d->kw};
    if (wg_prod_sat(ops, 7) < WG_PARALLEL_MIN_OPS)
        nthreads = 1;
    if (op == WG_PATCH_DOT && p >= MR) {
        const int r = wg_qconv2d_forward(out, inp, weight, bias, d, in_fmt, out_fmt, nthreads);
        if (r != WG_QCONV_NA)
            return r;
    }
    if (in_fmt && in_fmt->kind != WG_FMT_NONE) { /* quantize a copy of the input, then as usual */
        const int64_t dims[4] = {d->n, d->c, d->h, d->w};
        const int64_t size = wg_prod_sat(dims, 4); /* valid: no saturation */
        size_t bytes;
        float *q = wg_bytes_plus(size, sizeof(float), 1, &bytes) ? NULL : malloc(bytes);
        if (!q)
            return WG_ENOMEM;
        wg_quantize_array(q, inp, (size_t)size, in_fmt, nthreads);
        const int r = wg_patch_forward(out, q, weight, bias, d, NULL, out_fmt, exact, nthreads, op);
        free(q);
        return r;
    }
    /* One window over each whole image (LeNet's last convolution): a fully connected layer,
     * whose GEMM takes the batch as its rows. */
    if (op == WG_PATCH_DOT && d->groups == 1 && d->oh == 1 && d->ow == 1 && d->ph == 0 &&
        d->pw == 0 && d->h == d->kh && d->w == d->kw && d->dh == 1 && d->dw == 1)
        return wg_linear_forward(out, inp, weight, bias, d->n, d->c * d->kh * d->kw, d->oc, out_fmt,
                                 exact, nthreads);
    int64_t hp, wpd, img;
    if (op == WG_PATCH_DOT && !exact && d->sw == 1 && d->oc / d->groups <= ROW_OCB &&
        d->ow >= 8 && wg_simd_available() && !wg_padded_frame(d, cg, 1, &hp, &wpd, &img))
        return conv_rows(out, inp, weight, bias, d, out_fmt, nthreads);
    /* Fewer positions than a micro-tile's rows, and one thread is enough; or a padded frame
     * mostly of padding that no window reads: the windows read with bounds checks. */
    const int64_t work[6] = {d->n, d->groups, d->oc, d->c, d->kh, d->kw};
    const int few = p < MR && wg_prod_sat(work, 6) < ((int64_t)1 << 22);
    if (few || wg_padded_frame(d, cg, 0, &hp, &wpd, &img)) {
        const int nt = few ? 1 : nthreads;
        if (exact)
            return (op == WG_PATCH_DOT ? few_f64_dot : few_f64_l1)(out, inp, weight, bias, d, out_fmt, nt);
        return (op == WG_PATCH_DOT ? few_f32_dot : few_f32_l1)(out, inp, weight, bias, d, out_fmt, nt);
    }
    if (exact)
        return (op == WG_PATCH_DOT ? conv_f64_dot : conv_f64_l1)(out, inp, weight, bias, d, out_fmt,
                                                                 nthreads);
    return (op == WG_PATCH_DOT ? conv_f32_dot : conv_f32_l1)(out, inp, weight, bias, d, out_fmt,
                                                             nthreads);
}

int wg_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                      const wg_conv2d_dims *d, const wg_format *in_fmt, const wg_format *out_fmt,
                      int exact, int nthreads)
{
    return wg_patch_forward(out, inp, weight, bias, d, in_fmt, out_fmt, exact, nthreads,
                            WG_PATCH_DOT);
}
