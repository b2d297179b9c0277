/*
 * Output sizes of convolutions and pooling, and the checks that every size the kernels compute
 * from a shape (element counts, byte counts, padded extents, window spans, the last window's
 * end) fits int64 and size_t.  A shape that passes can be indexed by the kernels with plain
 * int64 arithmetic: every index they form lies between 0 and one of the checked bounds.
 */
#include "checked.h"
#include "wageubn.h"

const char *wg_arg_name(wg_arg a)
{
    switch (a) {
    case WG_ARG_INPUT: return "input";
    case WG_ARG_WEIGHT: return "weight";
    case WG_ARG_KERNEL_SIZE: return "kernel_size";
    case WG_ARG_STRIDE: return "stride";
    case WG_ARG_PADDING: return "padding";
    case WG_ARG_DILATION: return "dilation";
    case WG_ARG_GROUPS: return "groups";
    default: return NULL;
    }
}

/* An element count and its bytes (elem each) both fit. */
static int counts_fit(const int64_t *f, int n, size_t elem)
{
    int64_t count;
    size_t bytes;
    return !wg_prod_i64(f, n, &count) && !wg_bytes(count, elem, &bytes);
}

/* ------------------------------------------------------------------------ */
/* Convolution                                                              */
/* ------------------------------------------------------------------------ */

/* The span of one axis's window, or the argument that overflows it (kernel from the weight). */
static wg_arg conv_span(int64_t k, int64_t dil, int64_t *span)
{
    if (wg_span_i64(k < 1 ? 1 : k, dil, span))
        return dil > 1 ? WG_ARG_DILATION : WG_ARG_WEIGHT;
    return WG_ARG_NONE;
}

wg_arg wg_conv2d_valid(const wg_conv2d_dims *d)
{
    if (d->n < 0 || d->c < 0 || d->h < 0 || d->w < 0)
        return WG_ARG_INPUT;
    if (d->oc < 0 || d->kh < 0 || d->kw < 0)
        return WG_ARG_WEIGHT;
    if (d->sh < 1 || d->sw < 1)
        return WG_ARG_STRIDE;
    if (d->ph < 0 || d->pw < 0)
        return WG_ARG_PADDING;
    if (d->dh < 1 || d->dw < 1)
        return WG_ARG_DILATION;
    if (d->groups < 1 || d->c % d->groups || d->oc % d->groups)
        return WG_ARG_GROUPS;
    const int64_t in[4] = {d->n, d->c, d->h, d->w};
    const int64_t wt[4] = {d->oc, d->c / d->groups, d->kh, d->kw};
    if (!counts_fit(in, 4, sizeof(float)))
        return WG_ARG_INPUT;
    if (!counts_fit(wt, 4, sizeof(double))) /* the double kernels pack it as doubles */
        return WG_ARG_WEIGHT;
    int64_t span_h, span_w, t;
    wg_arg a;
    if ((a = conv_span(d->kh, d->dh, &span_h)) || (a = conv_span(d->kw, d->dw, &span_w)))
        return a;
    /* the input inside the padded frame: rows [ph, ph + h), columns [pw, pw + w) */
    if (wg_add_i64(d->h, d->ph, &t) || wg_add_i64(d->w, d->pw, &t))
        return WG_ARG_PADDING;
    if (d->oh < 0 || d->ow < 0)
        return WG_ARG_NONE; /* no output: nothing is indexed */
    /* the last window's end in the padded frame, (o - 1) * s + span */
    if ((d->oh > 0 && (wg_mul_i64(d->oh - 1, d->sh, &t) || wg_add_i64(t, span_h, &t))) ||
        (d->ow > 0 && (wg_mul_i64(d->ow - 1, d->sw, &t) || wg_add_i64(t, span_w, &t))))
        return WG_ARG_STRIDE;
    const int64_t out[4] = {d->n, d->oc, d->oh, d->ow};
    if (!counts_fit(out, 4, sizeof(double)))
        return d->oh > d->h || d->ow > d->w ? WG_ARG_PADDING : WG_ARG_WEIGHT;
    return WG_ARG_NONE;
}

/* One axis: the padded extent and its number of windows (-1: none fits). */
static wg_arg conv_axis(int64_t in, int64_t p0, int64_t p1, int64_t k, int64_t s, int64_t dil,
                        int64_t *out)
{
    int64_t ext, span;
    wg_arg a;
    if (p0 < 0 || p1 < 0 || wg_add_i64(in, p0, &ext) || wg_add_i64(ext, p1, &ext))
        return WG_ARG_PADDING;
    if ((a = conv_span(k, dil, &span)))
        return a;
    if (s < 1)
        return WG_ARG_STRIDE;
    *out = span > ext || k < 1 ? -1 : (ext - span) / s + 1;
    return WG_ARG_NONE;
}

wg_arg wg_conv2d_shape(wg_conv2d_dims *d, int64_t pb, int64_t pr)
{
    wg_arg a;
    if (d->dh < 1 || d->dw < 1)
        return WG_ARG_DILATION;
    if ((a = conv_axis(d->h, d->ph, pb, d->kh, d->sh, d->dh, &d->oh)) ||
        (a = conv_axis(d->w, d->pw, pr, d->kw, d->sw, d->dw, &d->ow)))
        return a;
    return wg_conv2d_valid(d);
}

/* ------------------------------------------------------------------------ */
/* Pooling                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * One axis: the padded extent in + 2 * pad and the window span must fit, and so must what the
 * kernels form from them: the last window's end plus a dilation step ((out - 1) * s + span +
 * dil), a start's distance to its first tap (pad + span), a tap plus a step (ext + dil).  With compute, *out receives torch's
 * pooling_output_shape (-1: no window fits), else *out is checked as given.
 */
static wg_arg pool_axis(int64_t in, int64_t k, int64_t s, int64_t p, int64_t dil, int ceil_mode,
                        int compute, int64_t *out)
{
    int64_t ext, span, t;
    if (in < 0)
        return WG_ARG_INPUT;
    if (k < 1)
        return WG_ARG_KERNEL_SIZE;
    if (s < 1)
        return WG_ARG_STRIDE;
    if (dil < 1)
        return WG_ARG_DILATION;
    if (p < 0 || wg_mul_i64(p, 2, &t) || wg_add_i64(in, t, &ext))
        return WG_ARG_PADDING;
    if (wg_span_i64(k, dil, &span))
        return dil > 1 ? WG_ARG_DILATION : WG_ARG_KERNEL_SIZE;
    if (wg_add_i64(p, span, &t) || wg_add_i64(ext, dil, &t)) /* a start's first tap; a step */
        return WG_ARG_PADDING;
    if (compute) {
        /* floor (or with ceil_mode, ceil) of (ext - span) / s, plus one, without forming
         * ext - span + s - 1; -1 when that numerator is negative */
        const int64_t num = ext - span; /* both in [0, INT64_MAX] */
        if (num < 0 && (!ceil_mode || num + (s - 1) < 0)) {
            *out = -1;
            return WG_ARG_NONE;
        }
        const int64_t q = num < 0 ? 0 : num / s, r = num < 0 ? 1 : num % s;
        *out = q + (ceil_mode && r > 0) + 1;
        if (num < 0) /* ceil_mode, -(s - 1) <= num < 0: one window */
            *out = 1;
        if (ceil_mode && (wg_mul_i64(*out - 1, s, &t) || t >= in + p)) /* the last window */
            --*out;                                                      /* starts in in + pad */
    }
    if (*out > 0 && (wg_mul_i64(*out - 1, s, &t) || wg_add_i64(t, span, &t) ||
                     wg_add_i64(t, dil, &t)))
        return WG_ARG_STRIDE;
    return WG_ARG_NONE;
}

/* Every axis, then the input and output element and byte counts. */
static wg_arg pool_check(wg_pool_dims *d, int ceil_mode, int compute)
{
    const int64_t in[3] = {d->id, d->ih, d->iw};
    const int64_t k[3] = {d->kd, d->kh, d->kw}, s[3] = {d->sd, d->sh, d->sw};
    const int64_t p[3] = {d->pd, d->ph, d->pw}, dil[3] = {d->dd, d->dh, d->dw};
    int64_t *out[3] = {&d->od, &d->oh, &d->ow};
    wg_arg a;
    for (int i = 0; i < 3; i++)
        if ((a = pool_axis(in[i], k[i], s[i], p[i], dil[i], ceil_mode, compute, out[i])))
            return a;
    const int64_t input[4] = {d->planes, d->id, d->ih, d->iw};
    if (d->planes < 0 || !counts_fit(input, 4, sizeof(float)))
        return WG_ARG_INPUT;
    const int64_t output[4] = {d->planes, d->od < 0 ? 0 : d->od, d->oh < 0 ? 0 : d->oh,
                               d->ow < 0 ? 0 : d->ow};
    if (!counts_fit(output, 4, sizeof(int64_t))) /* float values and int64 indices */
        return WG_ARG_PADDING;
    return WG_ARG_NONE;
}

wg_arg wg_pool_valid(const wg_pool_dims *d)
{
    wg_pool_dims copy = *d; /* checked as given: not written */
    return pool_check(&copy, 0, 0);
}

wg_arg wg_pool_shape(wg_pool_dims *d, int ceil_mode)
{
    return pool_check(d, ceil_mode, 1);
}

/* ------------------------------------------------------------------------ */
/* The padded frame of the direct convolution kernels                       */
/* ------------------------------------------------------------------------ */

int wg_padded_frame(const wg_conv2d_dims *d, int64_t planes, int rows16, int64_t *hp,
                    int64_t *wpd, int64_t *img)
{
    int64_t span_h, span_w, t;
    if (d->oh < 1 || d->ow < 1 || wg_span_i64(d->kh, d->dh, &span_h) ||
        wg_span_i64(d->kw, d->dw, &span_w) || wg_mul_i64(d->oh - 1, d->sh, &t) ||
        wg_add_i64(t, span_h, hp))
        return 1;
    if (rows16) { /* a row's last tile reads up to 15 columns past the output */
        if (wg_add_i64(d->ow, 15, &t) || wg_add_i64(t / 16 * 16, span_w - 1, wpd))
            return 1;
    } else if (wg_mul_i64(d->ow - 1, d->sw, &t) || wg_add_i64(t, span_w, wpd))
        return 1;
    const int64_t frame[3] = {planes, *hp, *wpd};
    if (wg_prod_i64(frame, 3, img))
        return 1;
    /* what the layer reads anyway: the image (twice) and its windows' taps */
    const int64_t image[3] = {planes, d->h, d->w};
    const int64_t taps[5] = {d->c / d->groups, d->kh, d->kw, d->oh, d->ow};
    int64_t budget;
    if (wg_mul_i64(wg_prod_sat(image, 3), 2, &budget) ||
        wg_add_i64(budget, wg_prod_sat(taps, 5), &budget) ||
        wg_add_i64(budget, (int64_t)1 << 16, &budget))
        budget = INT64_MAX;
    return *img > budget;
}
