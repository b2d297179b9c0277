/*
 * Max and average pooling over planes of (d, h, w), with torch's window rules.
 *
 * wg_pool_valid (shape.c) bounds every index formed here: a window starts at o * s - p, its
 * first tap lies within pad + span of the start, and start + span + dil (the last window's end
 * plus a step) fits int64.
 */
#include "checked.h"
#include "wageubn.h"

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* First in-range tap of a dilated window starting at `start`. */
static inline int64_t first_tap(int64_t start, int64_t dil)
{
    return start < 0 ? start + (-start + dil - 1) / dil * dil : start;
}

/* torch's index for a window: its first tap, (z * ih + y) * iw + x, even when that lies outside
 * the plane (a window of padding only); -1 when it cannot be represented. */
static int64_t first_index(const wg_pool_dims *d, int64_t z, int64_t y, int64_t x)
{
    int64_t i;
    if (wg_mul_i64(z, d->ih, &i) || wg_add_i64(i, y, &i) || wg_mul_i64(i, d->iw, &i) ||
        wg_add_i64(i, x, &i))
        return -1;
    return i;
}

/* One output row of a max pool: the windows of (oz, oy) for every ox.  NaN wins, as in torch;
 * a tie keeps the first index. */
static void maxpool_row(float *out, int64_t *indices, const float *plane, const wg_pool_dims *d,
                        int64_t oz, int64_t oy)
{
    const int64_t z0 = oz * d->sd - d->pd, y0 = oy * d->sh - d->ph;
    const int64_t z1 = min64(z0 + (d->kd - 1) * d->dd + 1, d->id);
    const int64_t y1 = min64(y0 + (d->kh - 1) * d->dh + 1, d->ih);
    const int64_t zs = first_tap(z0, d->dd), ys = first_tap(y0, d->dh);
    if (d->kd == 1 && d->kh == 2 && d->kw == 2 && d->sw == 2 && d->pw == 0 && d->dw == 1 &&
        zs < z1 && ys + d->dh < y1 && !indices && d->ow <= d->iw / 2) {
        /* the common 2x2 window over two whole rows: no bounds per output */
        const float *r0 = plane + (zs * d->ih + ys) * d->iw, *r1 = r0 + d->dh * d->iw;
        for (int64_t ox = 0; ox < d->ow; ox++) {
            float m = r0[2 * ox];
            const float v1 = r0[2 * ox + 1], v2 = r1[2 * ox], v3 = r1[2 * ox + 1];
            m = (v1 > m || v1 != v1) ? v1 : m;
            m = (v2 > m || v2 != v2) ? v2 : m;
            m = (v3 > m || v3 != v3) ? v3 : m;
            out[ox] = m;
        }
        return;
    }
    for (int64_t ox = 0; ox < d->ow; ox++) {
        const int64_t x0 = ox * d->sw - d->pw;
        const int64_t x1 = min64(x0 + (d->kw - 1) * d->dw + 1, d->iw);
        const int64_t xs = first_tap(x0, d->dw);
        int64_t best = first_index(d, zs, ys, xs);
        float m = -INFINITY;
        for (int64_t z = zs; z < z1; z += d->dd)
            for (int64_t y = ys; y < y1; y += d->dh)
                for (int64_t x = xs; x < x1; x += d->dw) {
                    const int64_t idx = (z * d->ih + y) * d->iw + x;
                    const float v = plane[idx];
                    if (v > m || isnan(v)) {
                        m = v;
                        best = idx;
                    }
                }
        out[ox] = m;
        if (indices)
            indices[ox] = best;
    }
}

int wg_maxpool_forward(float *out, int64_t *indices, const float *inp, const wg_pool_dims *d,
                       int nthreads)
{
    (void)nthreads;
    if (wg_pool_valid(d) != WG_ARG_NONE)
        return WG_ERANGE;
    if (d->od <= 0 || d->oh <= 0 || d->ow <= 0)
        return WG_OK;
    const int64_t fi[3] = {d->id, d->ih, d->iw}, fr[3] = {d->planes, d->od, d->oh};
    const int64_t isz = wg_prod_sat(fi, 3), rows = wg_prod_sat(fr, 3); /* valid: no saturation */
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 32) if (rows * d->ow > 16384)
    for (int64_t row = 0; row < rows; row++) {
        const int64_t pl = row / (d->od * d->oh), oz = row / d->oh % d->od, oy = row % d->oh;
        maxpool_row(out + row * d->ow, indices ? indices + row * d->ow : NULL, inp + pl * isz, d,
                    oz, oy);
    }
    return WG_OK;
}

int wg_avgpool_forward(float *out, const float *inp, const wg_pool_dims *d,
                       int count_include_pad, int64_t divisor_override, int nthreads)
{
    (void)nthreads;
    if (wg_pool_valid(d) != WG_ARG_NONE)
        return WG_ERANGE;
    if (d->od <= 0 || d->oh <= 0 || d->ow <= 0)
        return WG_OK;
    const int64_t fi[3] = {d->id, d->ih, d->iw}, fo[3] = {d->od, d->oh, d->ow};
    const int64_t isz = wg_prod_sat(fi, 3), osz = wg_prod_sat(fo, 3); /* valid: no saturation */
    const int64_t total = d->planes * osz;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1024) if (total > 16384)
    for (int64_t t = 0; t < total; t++) {
        const int64_t pl = t / osz, o = t % osz;
        const int64_t oz = o / (d->oh * d->ow), oy = (o / d->ow) % d->oh, ox = o % d->ow;
        int64_t z0 = oz * d->sd - d->pd, y0 = oy * d->sh - d->ph, x0 = ox * d->sw - d->pw;
        int64_t z1 = min64(z0 + d->kd, d->id + d->pd);
        int64_t y1 = min64(y0 + d->kh, d->ih + d->ph);
        int64_t x1 = min64(x0 + d->kw, d->iw + d->pw);
        /* counts in double: a product of three window lengths can pass 2**63 (exact below 2**53) */
        const double padded_count = (double)(z1 - z0) * (double)(y1 - y0) * (double)(x1 - x0);
        z0 = max64(z0, 0), y0 = max64(y0, 0), x0 = max64(x0, 0);
        z1 = min64(z1, d->id), y1 = min64(y1, d->ih), x1 = min64(x1, d->iw);
        if (z0 >= z1 || y0 >= y1 || x0 >= x1) {
            out[t] = 0.0f;
            continue;
        }
        const float *plane = inp + pl * isz;
        double s = 0.0;
        for (int64_t z = z0; z < z1; z++)
            for (int64_t y = y0; y < y1; y++)
                for (int64_t x = x0; x < x1; x++)
                    s += plane[(z * d->ih + y) * d->iw + x];
        const double divisor = divisor_override > 0 ? (double)divisor_override
                               : count_include_pad ? padded_count
                                                   : (double)(z1 - z0) * (double)(y1 - y0) * (double)(x1 - x0);
        out[t] = (float)(s / divisor);
    }
    return WG_OK;
}
