/* AdderNet layer (Chen et al., 2020): the convolution's product replaced by -|x - w|. */
#include "wageubn.h"

int wg_adder2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                       const wg_conv2d_dims *d, const wg_format *in_fmt, const wg_format *out_fmt,
                       int exact, int nthreads)
{
    return wg_patch_forward(out, inp, weight, bias, d, in_fmt, out_fmt, exact, nthreads,
                            WG_PATCH_NEG_L1);
}
