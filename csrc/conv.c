/* 2-d convolution by im2col + GEMM, and the shared sliding-window driver. */
#include <stdlib.h>
#include <string.h>

#include "wageubn.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#else
#define THREAD_ID() 0
#endif

/* col (cg*kh*kw, oh*ow) from one image's group of channels inp (cg, h, w). */
static void im2col(float *col, const float *inp, int64_t cg, const wg_conv2d_dims *d)
{
    const int64_t p = d->oh * d->ow;
    for (int64_t c = 0; c < cg; c++)
        for (int64_t u = 0; u < d->kh; u++)
            for (int64_t v = 0; v < d->kw; v++) {
                float *row = col + ((c * d->kh + u) * d->kw + v) * p;
                const float *plane = inp + c * d->h * d->w;
                for (int64_t i = 0; i < d->oh; i++) {
                    float *dst = row + i * d->ow;
                    int64_t y = i * d->sh - d->ph + u * d->dh;
                    if (y < 0 || y >= d->h) {
                        memset(dst, 0, (size_t)d->ow * sizeof(float));
                        continue;
                    }
                    const float *src = plane + y * d->w;
                    for (int64_t j = 0; j < d->ow; j++) {
                        int64_t x = j * d->sw - d->pw + v * d->dw;
                        dst[j] = (x >= 0 && x < d->w) ? src[x] : 0.0f;
                    }
                }
            }
}

/* The tile rows [r0, r1) x columns [c0, c1) of one (image, group):
 * weight (ocg, K) . col (K, P), then bias and the output format. */
static int patch_tile(float *out, double *acc, const float *col, const float *weight,
                      const float *bias, int64_t r0, int64_t r1, int64_t c0, int64_t c1, int64_t k,
                      int64_t p, const wg_format *fmt, int exact, wg_patch_op op)
{
    const int64_t rows = r1 - r0, cols = c1 - c0;
    int rc;
    if (exact) {
        for (int64_t r = r0; r < r1; r++)
            memset(acc + r * p + c0, 0, (size_t)cols * sizeof(double));
        rc = (op == WG_PATCH_DOT ? wg_gemm_f64acc : wg_l1gemm_f64acc)(
            acc + r0 * p + c0, weight + r0 * k, col + c0, rows, cols, k, k, p, p);
        for (int64_t r = r0; r < r1; r++) {
            const double b = bias ? bias[r] : 0.0;
            for (int64_t j = c0; j < c1; j++)
                out[r * p + j] = (float)wg_quantize(acc[r * p + j] + b, fmt);
        }
    } else {
        for (int64_t r = r0; r < r1; r++)
            memset(out + r * p + c0, 0, (size_t)cols * sizeof(float));
        rc = (op == WG_PATCH_DOT ? wg_gemm_f32 : wg_l1gemm_f32)(
            out + r0 * p + c0, weight + r0 * k, col + c0, rows, cols, k, k, p, p);
        for (int64_t r = r0; r < r1; r++) {
            const float b = bias ? bias[r] : 0.0f;
            for (int64_t j = c0; j < c1; j++)
                out[r * p + j] = (float)wg_quantize(out[r * p + j] + b, fmt);
        }
    }
    return rc;
}

int wg_patch_forward(float *out, const float *inp, const float *weight, const float *bias,
                     const wg_conv2d_dims *d, const wg_format *out_fmt, int exact, int nthreads,
                     wg_patch_op op)
{
    const int64_t cg = d->c / d->groups, ocg = d->oc / d->groups;
    const int64_t k = cg * d->kh * d->kw, p = d->oh * d->ow;
    const int64_t tasks = d->n * d->groups;
    if (tasks == 0 || ocg == 0 || p == 0)
        return WG_OK;
    /* A 1x1, stride-1, unpadded window reads the input plane as it is. */
    const int no_copy = d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 &&
                        d->pw == 0 && d->oh == d->h && d->ow == d->w;
    const int nt = nthreads < 1 ? 1 : nthreads;
    /* Enough images x groups: one per thread; otherwise threads share an image's columns. */
    const int per_task = tasks >= nt;
    const int64_t nws = per_task ? nt : 1;
    const size_t col_len = no_copy ? 0 : (size_t)(k * p);
    const size_t acc_len = exact ? (size_t)(ocg * p) : 0;
    float *col_ws = NULL;
    double *acc_ws = NULL;
    if (col_len && !(col_ws = malloc(col_len * (size_t)nws * sizeof(float))))
        return WG_ENOMEM;
    if (acc_len && !(acc_ws = malloc(acc_len * (size_t)nws * sizeof(double)))) {
        free(col_ws);
        return WG_ENOMEM;
    }
    int failed = 0;
    if (per_task) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(| : failed)
        for (int64_t t = 0; t < tasks; t++) {
            const int64_t ni = t / d->groups, g = t % d->groups;
            const float *src = inp + (ni * d->c + g * cg) * d->h * d->w;
            const size_t tid = (size_t)THREAD_ID();
            const float *col = src;
            if (!no_copy) {
                im2col(col_ws + col_len * tid, src, cg, d);
                col = col_ws + col_len * tid;
            }
            failed |= patch_tile(out + (ni * d->oc + g * ocg) * p,
                                 acc_ws ? acc_ws + acc_len * tid : NULL, col, weight + g * ocg * k,
                                 bias ? bias + g * ocg : NULL, 0, ocg, 0, p, k, p, out_fmt, exact, op);
        }
    } else {
        /* Column blocks that are whole multiples of the micro-kernel's 16 columns. */
        const int64_t block = ((p + nt - 1) / nt + 15) / 16 * 16;
        for (int64_t t = 0; t < tasks; t++) {
            const int64_t ni = t / d->groups, g = t % d->groups;
            const float *src = inp + (ni * d->c + g * cg) * d->h * d->w;
            const float *col = no_copy ? src : col_ws;
            if (!no_copy)
                im2col(col_ws, src, cg, d);
#pragma omp parallel for num_threads(nt) schedule(static, 1) reduction(| : failed)
            for (int64_t c0 = 0; c0 < p; c0 += block) {
                const int64_t c1 = c0 + block < p ? c0 + block : p;
                failed |= patch_tile(out + (ni * d->oc + g * ocg) * p, acc_ws, col,
                                     weight + g * ocg * k, bias ? bias + g * ocg : NULL, 0, ocg, c0,
                                     c1, k, p, out_fmt, exact, op);
            }
        }
    }
    free(col_ws);
    free(acc_ws);
    return failed ? WG_ENOMEM : WG_OK;
}

int wg_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                      const wg_conv2d_dims *d, const wg_format *out_fmt, int exact, int nthreads)
{
    return wg_patch_forward(out, inp, weight, bias, d, out_fmt, exact, nthreads, WG_PATCH_DOT);
}
