"""Slow, obviously-correct NumPy twins of the layer kernels (float64 inside)."""
import numpy as np


def _windows(x, kh, kw, stride, dilation, pads):
    """Yield (u, v, patch) with patch (n, c, oh, ow) the input seen by kernel tap (u, v)."""
    top, left, bottom, right = pads
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    (sh, sw), (dh, dw) = stride, dilation
    oh = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    for u in range(kh):
        for v in range(kw):
            yield u, v, x[:, :, u * dh:u * dh + sh * (oh - 1) + 1:sh, v * dw:v * dw + sw * (ow - 1) + 1:sw]


def conv2d(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    w = np.asarray(w, np.float64)
    oc, cg, kh, kw = w.shape
    ocg = oc // groups
    out = 0.0
    for u, v, patch in _windows(x, kh, kw, stride, dilation, pads):
        parts = [np.einsum("nchw,oc->nohw", patch[:, g * cg:(g + 1) * cg], w[g * ocg:(g + 1) * ocg, :, u, v])
                 for g in range(groups)]
        out = out + np.concatenate(parts, axis=1)
    return out + (0.0 if b is None else np.asarray(b, np.float64)[None, :, None, None])


def adder2d(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0)):
    w = np.asarray(w, np.float64)
    out = 0.0
    for u, v, patch in _windows(x, w.shape[2], w.shape[3], stride, (1, 1), pads):
        out = out - np.abs(patch[:, None] - w[None, :, :, u, v, None, None]).sum(axis=2)
    return out + (0.0 if b is None else np.asarray(b, np.float64)[None, :, None, None])


def linear(x, w, b=None):
    out = np.asarray(x, np.float64) @ np.asarray(w, np.float64).T
    return out + (0.0 if b is None else np.asarray(b, np.float64))


def batchnorm(x, mean, var, weight=None, bias=None, eps=1e-5):
    shape = (1, -1) + (1,) * (np.ndim(x) - 2)
    alpha = (1.0 if weight is None else np.asarray(weight, np.float64)) / np.sqrt(np.asarray(var, np.float64) + eps)
    beta = (0.0 if bias is None else np.asarray(bias, np.float64)) - np.asarray(mean, np.float64) * alpha
    return np.asarray(x, np.float64) * np.reshape(alpha, shape) + np.reshape(beta, shape)


def quantize(v, dec, all_=None):
    """directquant (all_ None) or alldirectquant of float64 values, exactly; float32 result."""
    q = np.round(np.asarray(v, np.float64) * 2.0 ** (dec - 1))
    if all_ is not None:
        q = np.clip(q, -(2.0 ** (all_ - 1) - 1), 2.0 ** (all_ - 1) - 1)
    return (q / 2.0 ** (dec - 1)).astype(np.float32)
