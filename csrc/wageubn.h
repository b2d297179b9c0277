/*
 * wageubn kernels: plain C11, no Python.  Every tensor is a flat, C-contiguous
 * float32 buffer; shapes are passed explicitly.  Kernels that allocate return
 * WG_OK or WG_ENOMEM and free everything they allocated on every path.
 *
 * A hardware golden model can link these files without Python: binding.c is
 * the only file that knows about CPython and NumPy.
 */
#ifndef WAGEUBN_H
#define WAGEUBN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

enum { WG_OK = 0, WG_ENOMEM = 1, WG_ERANGE = 2 /* a size or index beyond int64 / size_t */ };

/* ------------------------------------------------------------------------ */
/* Fixed-point formats (quant.c)                                            */
/* ------------------------------------------------------------------------ */

/*
 * A value v is stored as the integer q = v * 2**(dec-1).
 *   WG_FMT_NONE     no quantization (float layer)
 *   WG_FMT_DIRECT   directquant: q = round_half_even(v * 2**(dec-1)), unbounded
 *   WG_FMT_CLAMPED  alldirectquant: q also clamped to +-(2**(all-1) - 1)
 * Arithmetic is done in double; for |dec| <= WG_MAX_WIDTH every float32 input
 * is scaled exactly, so the result is the exact rounding of the real value.
 */
typedef enum { WG_FMT_NONE = 0, WG_FMT_DIRECT = 1, WG_FMT_CLAMPED = 2 } wg_fmt_kind;

#define WG_MAX_WIDTH 512

typedef struct {
    wg_fmt_kind kind;
    double scale; /* 2**(dec-1) */
    double step;  /* 2**-(dec-1) */
    double bound; /* 2**(all-1) - 1, used by WG_FMT_CLAMPED */
} wg_format;

wg_format wg_format_make(wg_fmt_kind kind, int dec, int all);

/* Round half to even, as torch.round, without a libm call: adding and subtracting 2**52
 * leaves no fraction bits, and the default rounding mode breaks ties to even.  Values of
 * 2**52 and more (and Inf, NaN) are already whole. */
static inline double wg_round_half_even(double v)
{
    const double big = 0x1p52, a = fabs(v);
    return a < big ? copysign((a + big) - big, v) : v;
}

/* Quantize one value.  NaN stays NaN; +-Inf stays +-Inf unless clamped. */
static inline double wg_quantize(double v, const wg_format *f)
{
    if (f->kind == WG_FMT_NONE)
        return v;
    double q = wg_round_half_even(v * f->scale);
    if (f->kind == WG_FMT_CLAMPED) { /* two selects (max / min): no branch, NaN stays */
        q = q > f->bound ? f->bound : q;
        q = q < -f->bound ? -f->bound : q;
    }
    return q * f->step;
}

/*
 * The element-wise map every activation pass is made of:
 *   out = quantize_out(clamp(quantize_in(x) * alpha + beta, lo, hi))
 * (the affine step only when `affine`; lo / hi may be +-INFINITY).  Computed in double with
 * the operations and roundings of wg_quantize, so results are those of the scalar formula;
 * on AVX2 four values at a time.  NaN propagates.  out may equal x.
 */
typedef struct {
    wg_format in, out;
    int affine;
    double alpha, beta;
    double lo, hi;
    int simd; /* wg_simd_available(), asked once by the caller */
} wg_map;

/* One span of the map, on the calling thread. */
void wg_map_span(float *out, const float *x, size_t n, const wg_map *m);

/* out[i] = quantize(x[i]); out may equal x. */
void wg_quantize_array(float *out, const float *x, size_t n, const wg_format *f, int nthreads);

/* Largest |x[i]| over the finite entries; 0 when there is none. */
double wg_absmax_finite(const float *x, size_t n);

/* 2**round(log2(max finite |x|)), or 1 when that maximum is 0. */
double wg_range_pow2(const float *x, size_t n);

/* Stochastic rounding: ceil(x) with probability x - floor(x), else floor(x).
 * The random stream is a pure function of (seed, index). */
void wg_sround(float *out, const float *x, size_t n, uint64_t seed);

/* R * clamp(directquant(x / R, k), -1 + 2**-(k-1), 1 - 2**-(k-1)), R = wg_range_pow2(x). */
void wg_shiftquant(float *out, const float *x, size_t n, int k);

/* clamp(sround(2**(k_dr-1) * x / R), +-(2**(k_dr-1) - 1)) / 2**(k-1). */
void wg_constquant(float *out, const float *x, size_t n, int k_dr, int k, uint64_t seed);

/* WAGEUBN's flag quantization of errors, sc = R / 2**(k-1):
 * |x| >= sc: sc * clamp(round(x / sc), +-(2**(k-1) - 1));  else sc * directquant(x / sc, k). */
void wg_errorquant(float *out, const float *x, size_t n, int k);

/* out = quantize_out(clamp(quantize_in(x), lo, hi)); lo/hi may be +-INFINITY.
 * NaN propagates, as in torch.  out may equal x. */
void wg_clamp_forward(float *out, const float *x, size_t n, float lo, float hi,
                      const wg_format *in_fmt, const wg_format *out_fmt, int nthreads);

/* ------------------------------------------------------------------------ */
/* Matrix products (gemm.c)                                                 */
/* ------------------------------------------------------------------------ */

/* 1 when the AVX2/FMA micro-kernels run here (and WAGEUBN_PORTABLE is not set). */
int wg_simd_available(void);

/* ------------------------------------------------------------------------ */
/* Convolution and linear layers (conv.c, linear.c, adder.c)                */
/* ------------------------------------------------------------------------ */

/* Products below which a convolution or linear layer runs on one thread: about 10 us of
 * work, against a few us to start a parallel region. */
#define WG_PARALLEL_MIN_OPS ((int64_t)1 << 18)

typedef struct {
    int64_t n, c, h, w;   /* input (n, c, h, w) */
    int64_t oc, kh, kw;   /* weight (oc, c / groups, kh, kw) */
    int64_t sh, sw;       /* stride */
    int64_t ph, pw;       /* top / left zero padding (bottom / right follow from oh, ow) */
    int64_t dh, dw;       /* dilation */
    int64_t groups;
    int64_t oh, ow;       /* output (n, oc, oh, ow) */
} wg_conv2d_dims;

/* The argument that makes a layer's buffers or indices unaddressable (shape.c). */
typedef enum {
    WG_ARG_NONE = 0,
    WG_ARG_INPUT,
    WG_ARG_WEIGHT,
    WG_ARG_KERNEL_SIZE,
    WG_ARG_STRIDE,
    WG_ARG_PADDING,
    WG_ARG_DILATION,
    WG_ARG_GROUPS,
} wg_arg;

/* "input", "weight", "kernel_size", ... (NULL for WG_ARG_NONE). */
const char *wg_arg_name(wg_arg a);

/*
 * Output size of a convolution from d's input, weight, stride, top / left padding, dilation and
 * the bottom / right padding pb, pr, with every size, extent, window span and element count
 * checked: stores d->oh, d->ow (-1 when the window does not fit the padded input) and returns
 * WG_ARG_NONE, or the argument whose value makes some size overflow int64 (or a byte count
 * size_t).  Strides, dilations and groups must be >= 1, paddings >= 0.
 */
wg_arg wg_conv2d_shape(wg_conv2d_dims *d, int64_t pb, int64_t pr);

/* Whether d (with its output size) is one the kernels can address: WG_ARG_NONE, or the culprit. */
wg_arg wg_conv2d_valid(const wg_conv2d_dims *d);

/*
 * The zero-padded frame of one (image, group) that the direct kernels read: `planes` channel
 * planes of hp rows (the windows' rows, (oh - 1) * sh + span) by wpd columns ((ow - 1) * sw +
 * span, or with rows16 whole 16-column tiles plus the span), img elements in all.  Returns 0
 * when it is worth materialising: it fits int64 and holds at most twice the image plus the
 * windows' taps (the im2col volume) plus 64 Ki elements; 1 when it is not (a huge dilation or
 * padding around a small image), and the caller reads the image with bounds checks instead.
 * So padding that no window reads is never copied at scale.
 */
int wg_padded_frame(const wg_conv2d_dims *d, int64_t planes, int rows16, int64_t *hp,
                    int64_t *wpd, int64_t *img);

/*
 * out = quantize_out(conv2d(quantize_in(inp), weight) + bias).  bias may be NULL; in_fmt NULL
 * or kind NONE leaves the input as it is (else it is quantized on the way, or into a
 * temporary copy).  exact != 0 accumulates in double (exact for fixed-point operands), else
 * in float; operands on a fixed-point grid that fits may run in integers (qconv.c).
 * WG_OK, WG_ENOMEM, or WG_ERANGE when wg_conv2d_valid(d) fails.
 */
int wg_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                      const wg_conv2d_dims *d, const wg_format *in_fmt, const wg_format *out_fmt,
                      int exact, int nthreads);

/* 1 when the 8-bit integer convolution runs here: AVX-512 VNNI, and neither WAGEUBN_PORTABLE
 * nor WAGEUBN_SIMD (e.g. WAGEUBN_SIMD=avx2: float kernels only) is set. */
int wg_int8_available(void);

enum { WG_QCONV_NA = -1 };

/*
 * The convolution in 8-bit integers (qconv.c) when its operands are fixed-point numbers that
 * fit: every weight q * 2**-ew with |q| <= 127, every input q * 2**-ex with q in [0, 255] or
 * [-127, 127].  The result is the exact sum, rounded as by wg_conv2d_forward with exact != 0.
 * in_fmt (NULL or kind NONE: none) quantizes the input while it is packed.
 * WG_OK, WG_ENOMEM, or WG_QCONV_NA (not applicable here: use the float kernels).
 */
int wg_qconv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                       const wg_conv2d_dims *d, const wg_format *in_fmt, const wg_format *fmt,
                       int nthreads);

/* The product of a matrix multiply: a . b, or AdderNet's -|a - b|. */
typedef enum { WG_PATCH_DOT = 0, WG_PATCH_NEG_L1 = 1 } wg_patch_op;

/* Where the GEMM reads B (k, n) from. */
typedef enum { WG_B_MATRIX, WG_B_TRANSPOSED, WG_B_IM2COL } wg_bsrc_kind;
typedef struct {
    wg_bsrc_kind kind;
    const float *data;
    int64_t ld;                 /* MATRIX: B[p][j] = data[p*ld + j]; TRANSPOSED: data[j*ld + p] */
    const wg_conv2d_dims *conv; /* IM2COL: data is one image's channel group (c / groups, h, w) */
} wg_bsrc;

/* What is added before rounding: a bias per output row and / or per column (either NULL). */
typedef struct {
    const float *row_bias;
    const float *col_bias;
    const wg_format *fmt;
} wg_epilogue;

/* out[i, j] = quantize(sum_p op(A[i, p], B[p, j]) + bias) for rows [0, m), columns [j0, j1);
 * out has row stride ldo.  exact != 0 accumulates in double.  WG_OK or WG_ENOMEM. */
int wg_gemm(float *out, int64_t ldo, const float *a, int64_t lda, const wg_bsrc *b, int64_t m,
            int64_t j0, int64_t j1, int64_t k, const wg_epilogue *ep, int exact, wg_patch_op op);

/* The sliding-window driver behind conv2d and adder2d. */
int wg_patch_forward(float *out, const float *inp, const float *weight, const float *bias,
                     const wg_conv2d_dims *d, const wg_format *in_fmt, const wg_format *out_fmt,
                     int exact, int nthreads, wg_patch_op op);

/* out (m, n) = quantize_out(x (m, k) . w (n, k)^T + bias (n)).  bias may be NULL. */
int wg_linear_forward(float *out, const float *x, const float *w, const float *bias, int64_t m,
                      int64_t k, int64_t n, const wg_format *out_fmt, int exact, int nthreads);

/* AdderNet: out[n,o,i,j] = -sum_{c,u,v} |x[n,c,i*s+u*d-p, j*s+v*d-p] - w[o,c,u,v]| + bias[o],
 * zero padding; groups must be 1. */
int wg_adder2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                       const wg_conv2d_dims *d, const wg_format *in_fmt, const wg_format *out_fmt,
                       int exact, int nthreads);

/* ------------------------------------------------------------------------ */
/* Batch normalisation (batchnorm.c)                                        */
/* ------------------------------------------------------------------------ */

/* out[n,c,i] = quantize_out(clamp(quantize_in(x) * alpha[c] + beta[c], lo, hi)) with
 * alpha = weight[c] / sqrt(var[c] + eps), beta = bias[c] - mean[c] * alpha (torch's form),
 * computed in double; weight / bias may be NULL (1 / 0); lo / hi (+-INFINITY: none) fuse a
 * following ReLU / ReLU6 whose formats allow it. */
void wg_batchnorm_forward(float *out, const float *x, const float *mean, const float *var,
                          const float *weight, const float *bias, double eps, int64_t n,
                          int64_t c, int64_t hw, const wg_format *in_fmt, const wg_format *out_fmt,
                          double lo, double hi, int nthreads);

/* Per-channel mean and biased variance of x (n, c, hw), in double. */
void wg_batchnorm_stats(double *mean, double *var, const float *x, int64_t n, int64_t c,
                        int64_t hw, int nthreads);

/* ------------------------------------------------------------------------ */
/* Pooling (pool.c): planes of (d, h, w); 1-d and 2-d pooling use unit dims */
/* ------------------------------------------------------------------------ */

typedef struct {
    int64_t planes;          /* batch * channels */
    int64_t id, ih, iw;      /* input */
    int64_t od, oh, ow;      /* output */
    int64_t kd, kh, kw;      /* window */
    int64_t sd, sh, sw;      /* stride */
    int64_t pd, ph, pw;      /* implicit padding (-inf for max, zeros for avg) */
    int64_t dd, dh, dw;      /* dilation (max pooling only; 1 for avg) */
} wg_pool_dims;

/* torch's output size of each axis into d->od, d->oh, d->ow (-1 where the window does not fit),
 * every extent, span and element count checked: WG_ARG_NONE, or the argument that overflows. */
wg_arg wg_pool_shape(wg_pool_dims *d, int ceil_mode);

/* Whether d (with its output size) is one the kernels can address: WG_ARG_NONE, or the culprit. */
wg_arg wg_pool_valid(const wg_pool_dims *d);

/* indices (may be NULL) receive the flat index of the maximum inside its input plane.
 * WG_OK, or WG_ERANGE when wg_pool_valid(d) fails. */
int wg_maxpool_forward(float *out, int64_t *indices, const float *inp, const wg_pool_dims *d,
                       int nthreads);

/* divisor_override <= 0 means none.  WG_OK, or WG_ERANGE when wg_pool_valid(d) fails. */
int wg_avgpool_forward(float *out, const float *inp, const wg_pool_dims *d,
                       int count_include_pad, int64_t divisor_override, int nthreads);

/* ------------------------------------------------------------------------ */
/* Calibration (calib.c)                                                    */
/* ------------------------------------------------------------------------ */

/* Count, mean, sum of squared deviations (m2), min and max of the finite entries of x;
 * non-finite ones are only counted. */
typedef struct {
    double count, mean, m2, min, max;
    int64_t nonfinite;
} wg_moments;
void wg_moments_of(wg_moments *m, const float *x, size_t n);

/* Add the finite x in [lo, hi] (and, with skip_zeros, not 0) to counts: `bins` equal bins,
 * x == hi in the last. */
void wg_histogram(double *counts, int64_t bins, const float *x, size_t n, double lo, double hi,
                  int skip_zeros);

/* Entropy calibration: for every cut i in [cali, bins) the divergence between the histogram's
 * first i bins (the rest folded into bin i-1) and those bins merged into `cali` groups and
 * spread back over their non-empty bins; KL(ref || candidate), or with `symmetric` the
 * Jeffreys divergence.  compat != 0 is tqt 1.0.2's exact arithmetic (the caller adds its
 * +1e-12 to every bin); otherwise empty bins stay empty in the candidate and both
 * distributions are smoothed by 1e-4 before the logs, as TensorRT does.
 * divergence (bins) receives the values (NaN below cali).  Returns the best cut (the first
 * minimum), or -1 when out of memory. */
int wg_entropy_search(double *divergence, const double *hist, int64_t bins, int64_t cali,
                      int symmetric, int compat);

#endif
