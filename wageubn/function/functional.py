"""torch.nn.functional's float operations on NumPy arrays: ``import wageubn.function.functional as F``.

Signatures are torch 2.13's (positional order and keyword names).  Inputs are any real
array-likes; every result is a new float32 :class:`wageubn.Tensor` (``inplace=True`` updates
and returns the input, which must then be a writeable float32 ndarray).  Convolutions,
linear maps, pooling, batch norm and the clamps run in the C kernels of ``wageubn._C``,
the same calls the layers make; the rest is NumPy, in float64 where a reduction or a
transcendental function is involved, rounded once to float32.

Nothing here quantizes: the layers of ``wageubn.function`` add the fixed-point formats.

>>> import numpy as np
>>> import wageubn.function.functional as F
>>> x = np.array([[-1.0, 0.5, 2.0]])
>>> F.relu(x).tolist()
[[0.0, 0.5, 2.0]]
>>> F.softmax(np.zeros((1, 4)), dim=1).tolist()
[[0.25, 0.25, 0.25, 0.25]]
>>> float(F.cross_entropy(np.zeros((2, 4)), np.array([0, 3])))  # log(4)
1.3862943649291992
"""
import math
import numbers
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np

from .. import _C
from .._threads import get_num_threads
from ..tensor import _wrap
from . import init
from .pooling import AvgPool2d, MaxPool2d, _ints

__all__ = ["relu", "relu6", "leaky_relu", "hardtanh", "sigmoid", "tanh", "softmax", "log_softmax",
           "conv1d", "conv2d", "conv_transpose2d", "linear", "max_pool2d", "avg_pool2d",
           "adaptive_avg_pool2d", "adaptive_max_pool2d", "batch_norm", "group_norm", "layer_norm",
           "dropout", "dropout2d", "pad", "interpolate", "embedding", "cross_entropy", "nll_loss",
           "mse_loss"]

_INF = math.inf


# ---------------------------------------------------------------------------------------------
# argument helpers

def _real(input, fn: str, name: str = "input") -> np.ndarray:
    """``input`` as an ndarray of real numbers (no copy), else TypeError naming it."""
    array = np.asarray(input)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: {name}: expected a real-valued array, got dtype {array.dtype}")
    return array


def _f32(input, fn: str, name: str = "input") -> np.ndarray:
    return _real(input, fn, name).astype(np.float32, copy=False)


def _optional_vector(value, length: int, fn: str, name: str) -> Optional[np.ndarray]:
    if value is None:
        return None
    v = _real(value, fn, name)
    if v.shape != (length,):
        raise ValueError(f"{fn}: {name}: expected shape ({length},), got {v.shape}")
    return v


def _number(value, fn: str, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name}: expected a real number, got {value!r}")
    return float(value)


def _positive_int(value, fn: str, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{fn}: {name}: expected a positive int, got {value!r}")
    return int(value)


def _dim(dim, ndim: int, fn: str) -> int:
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{fn}: dim: expected an int, got {dim!r}")
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not lo <= dim <= hi:
        raise IndexError(f"{fn}: dim: expected a dimension in [{lo}, {hi}], got {dim}")
    return int(dim) % max(ndim, 1)


def _reduction(size_average, reduce, reduction: str) -> str:
    """torch's legacy ``size_average`` / ``reduce`` folded into ``reduction``, which is checked."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if (size_average and reduce) else "sum" if reduce else "none"
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
                      "instead.", stacklevel=3)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction: {reduction} is not a valid value for reduction")
    return reduction


# ---------------------------------------------------------------------------------------------
# activations

def _clamp(input, lo: float, hi: float, inplace: bool, fn: str, in_fmt=None, out_fmt=None):
    """clamp(x, lo, hi) in the C kernel (with the layers' optional input / output formats)."""
    if not inplace:
        input = _real(input, fn)
    return _wrap(_C.clamp(input, lo, hi, in_fmt, out_fmt, bool(inplace), get_num_threads()))


def relu(input, inplace: bool = False):
    """max(x, 0)."""
    return _clamp(input, 0.0, _INF, inplace, "relu")


def relu6(input, inplace: bool = False):
    """min(max(x, 0), 6)."""
    return _clamp(input, 0.0, 6.0, inplace, "relu6")


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    """clamp(x, min_val, max_val).

    >>> hardtanh([-3.0, 0.25, 3.0]).tolist()
    [-1.0, 0.25, 1.0]
    """
    lo, hi = _number(min_val, "hardtanh", "min_val"), _number(max_val, "hardtanh", "max_val")
    if lo > hi:
        raise ValueError(f"hardtanh: max_val: min_val cannot be greater than max_val, got {lo} > {hi}")
    return _clamp(input, lo, hi, inplace, "hardtanh")


def _inplace_target(input, fn: str) -> np.ndarray:
    if not (isinstance(input, np.ndarray) and input.dtype == np.float32 and input.flags.writeable):
        raise TypeError(f"{fn}: input: inplace=True needs a writeable float32 numpy array")
    return input


def _leaky(x: np.ndarray, slope: float, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``x > 0 ? x : x * slope`` in float32 (torch multiplies by the float32 slope)."""
    x32 = x.astype(np.float32, copy=False)
    scaled = x32 * np.float32(slope)
    if out is None:
        return np.where(x32 > 0, x32, scaled)
    np.copyto(out, scaled, where=~(x32 > 0))
    return out


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """``x`` where positive, else ``negative_slope * x``.

    >>> leaky_relu([-2.0, 3.0], 0.5).tolist()
    [-1.0, 3.0]
    """
    slope = _number(negative_slope, "leaky_relu", "negative_slope")
    if inplace:
        x = _inplace_target(input, "leaky_relu")
        _leaky(x, slope, out=x)
        return _wrap(x)
    return _wrap(_leaky(_real(input, "leaky_relu"), slope))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def sigmoid(input):
    """1 / (1 + exp(-x)), computed in double without overflow and rounded once.

    >>> sigmoid([0.0]).tolist()
    [0.5]
    """
    return _wrap(_sigmoid(_real(input, "sigmoid")))


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x.astype(np.float64)).astype(np.float32)


def tanh(input):
    """The hyperbolic tangent, computed in double and rounded once."""
    return _wrap(_tanh(_real(input, "tanh")))


def _softmax_dim(dim, ndim: int, fn: str) -> int:
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {fn} has been deprecated. "
                      "Change the call to include dim=X as an argument.", stacklevel=4)
        return 0 if ndim in (0, 1, 3) else 1
    return _dim(dim, ndim, fn)


def _out_dtype(dtype, fn: str):
    if dtype is None:
        return np.float32
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{fn}: dtype: expected a floating dtype, got {dt}")
    return dt


def _log_softmax64(x: np.ndarray, axis: int) -> np.ndarray:
    x = x.astype(np.float64)
    if x.ndim == 0:
        x = x[None]
        axis = 0
        squeeze = True
    else:
        squeeze = False
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    shifted = x - m
    out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return out[0] if squeeze else out


def softmax(input, dim: Optional[int] = None, _stacklevel: int = 3, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim`` (in double; the result in ``dtype``, float32 by default)."""
    x = _real(input, "softmax")
    axis = _softmax_dim(dim, x.ndim, "softmax")
    return _wrap(np.exp(_log_softmax64(x, axis)).astype(_out_dtype(dtype, "softmax")))


def log_softmax(input, dim: Optional[int] = None, _stacklevel: int = 3, dtype=None):
    """x - log(sum(exp(x))) along ``dim``."""
    x = _real(input, "log_softmax")
    axis = _softmax_dim(dim, x.ndim, "log_softmax")
    return _wrap(_log_softmax64(x, axis).astype(_out_dtype(dtype, "log_softmax")))


# ---------------------------------------------------------------------------------------------
# convolutions and linear maps

def _conv_pads(padding, kernel: Sequence[int], stride, dilation, n: int, fn: str):
    """[(before, after)] per spatial dim; 'same' puts the odd pixel after, as torch."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{fn}: padding: 'same' is not supported for strided convolutions")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return [(t // 2, t - t // 2) for t in totals]
        raise ValueError(f"{fn}: padding: expected 'same', 'valid', an int or {n} ints, got {padding!r}")
    return [(p, p) for p in _ints(padding, n, "padding", 0)]


def _convnd(input, weight, bias, stride, padding, dilation, groups, n: int, fn: str,
            out_fmt=None, exact: bool = False, in_fmt=None, pads=None):
    """N-d convolution (n = 1 or 2) through the 2-d kernel; ``pads`` [(before, after)] overrides
    ``padding``.  The layers pass their fixed-point formats (``out_fmt``, ``exact``, ``in_fmt``)."""
    x = _real(input, fn)
    w = _real(weight, fn, "weight")
    if x.ndim not in (n + 1, n + 2):
        raise ValueError(f"{fn}: input: expected a {n + 1}-d or {n + 2}-d array, got shape {x.shape}")
    if w.ndim != n + 2:
        raise ValueError(f"{fn}: weight: expected a {n + 2}-d array (out_channels, in_channels / groups, "
                         f"*kernel), got shape {w.shape}")
    groups = _positive_int(groups, fn, "groups")
    s = _ints(stride, n, "stride", 1)
    d = _ints(dilation, n, "dilation", 1)
    if pads is None:
        pads = _conv_pads(padding, w.shape[2:], s, d, n, fn)
    unbatched = x.ndim == n + 1
    if unbatched:
        x = x[None]
    if n == 1:
        x, w = x[:, :, None, :], w[:, :, None, :]
        s, d, pads = (1,) + s, (1,) + d, [(0, 0)] + list(pads)
    (top, bottom), (left, right) = pads
    out = _C.conv2d(x, w, bias, s, (top, left, bottom, right), d, groups, out_fmt, exact,
                    get_num_threads(), in_fmt)
    if n == 1:
        out = out[:, :, 0, :]
    return out[0] if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution of (N, C, L) or (C, L) (the 2-d kernel on a height of 1).

    >>> conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)), padding=1).tolist()
    [[[2.0, 3.0, 3.0, 3.0, 2.0]]]
    """
    return _wrap(_convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d"))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution of (N, C, H, W) or (C, H, W); ``padding`` may be 'same' or 'valid'.

    >>> conv2d(np.ones((1, 2, 4, 4)), np.ones((3, 2, 3, 3))).shape
    (1, 3, 2, 2)
    """
    return _wrap(_convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d"))


def _transposed_operands(input, weight, stride, padding, output_padding, groups, dilation, fn: str):
    """A transposed convolution as a plain one: (zero-stuffed input, flipped weight, pads, dilation).

    ``out[o, y] = sum x[i, (y + p - d*k) / s] * w[i, o, k]`` over the k where the division is
    exact: the input with s - 1 zeros between its entries, padded by d*(k-1) - p (plus
    output_padding after; cropped where that is negative), convolved at stride 1 with the
    weight flipped and transposed to (out_channels, in_channels / groups, kh, kw)."""
    x = _real(input, fn)
    w = _real(weight, fn, "weight")
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: input: expected a 3-d or 4-d array, got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{fn}: weight: expected a 4-d array (in_channels, out_channels / groups, kh, kw), "
                         f"got shape {w.shape}")
    groups = _positive_int(groups, fn, "groups")
    s = _ints(stride, 2, "stride", 1)
    p = _ints(padding, 2, "padding", 0)
    op = _ints(output_padding, 2, "output_padding", 0)
    d = _ints(dilation, 2, "dilation", 1)
    if any(o >= max(si, di) for o, si, di in zip(op, s, d)):
        raise ValueError(f"{fn}: output_padding: must be smaller than either stride or dilation, got "
                         f"output_padding={op}, stride={s}, dilation={d}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    cin = w.shape[0]
    if x.shape[1] != cin:
        raise ValueError(f"{fn}: input: expected {cin} channels (weight {w.shape}), got shape {x.shape}")
    if cin % groups:
        raise ValueError(f"{fn}: groups: must divide in_channels ({cin}), got {groups}")
    n, _, h, wd = x.shape
    if s != (1, 1):
        stuffed = np.zeros((n, cin, (h - 1) * s[0] + 1, (wd - 1) * s[1] + 1), np.float32)
        stuffed[:, :, ::s[0], ::s[1]] = x
        x = stuffed
    kh, kw = w.shape[2:]
    pads = []
    for axis, (k, di, pi, oi) in enumerate(zip((kh, kw), d, p, op)):
        before, after = di * (k - 1) - pi, di * (k - 1) - pi + oi
        if before < 0 or after < 0:  # crop the part the padding removes
            size = x.shape[2 + axis]
            x = np.take(x, np.arange(max(-before, 0), size - max(-after, 0)), axis=2 + axis)
        pads.append((max(before, 0), max(after, 0)))
    cpg, opg = cin // groups, w.shape[1]
    flipped = w[:, :, ::-1, ::-1].reshape(groups, cpg, opg, kh, kw).transpose(0, 2, 1, 3, 4)
    flipped = np.ascontiguousarray(flipped.reshape(groups * opg, cpg, kh, kw))
    if x.shape[2] + pads[0][0] + pads[0][1] < d[0] * (kh - 1) + 1 or \
            x.shape[3] + pads[1][0] + pads[1][1] < d[1] * (kw - 1) + 1:
        raise ValueError(f"{fn}: padding: {p} leaves no output for an input of spatial size {x.shape[2:]}")
    return x, flipped, pads, d, groups, unbatched


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution (the gradient of conv2d), exact as one convolution of the
    zero-stuffed input.  weight: (in_channels, out_channels / groups, kh, kw).

    >>> conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2).shape
    (1, 1, 4, 4)
    """
    x, w, pads, d, groups, unbatched = _transposed_operands(input, weight, stride, padding, output_padding,
                                                             groups, dilation, "conv_transpose2d")
    out = _convnd(x, w, bias, 1, 0, d, groups, 2, "conv_transpose2d", pads=pads)
    return _wrap(out[0] if unbatched else out)


def linear(input, weight, bias=None):
    """``x @ weight.T + bias`` over the last dimension of any number of leading ones.

    >>> linear(np.ones((2, 3)), np.ones((4, 3)), np.arange(4.0)).tolist()
    [[3.0, 4.0, 5.0, 6.0], [3.0, 4.0, 5.0, 6.0]]
    """
    x = _real(input, "linear")
    w = _real(weight, "linear", "weight")
    if w.ndim != 2:
        raise ValueError(f"linear: weight: expected a 2-d array (out_features, in_features), got shape {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input: expected last dimension {w.shape[1]}, got shape {x.shape}")
    lead = x.shape[:-1]
    out = _C.linear(x.reshape(-1, w.shape[1]), w, bias, None, False, get_num_threads())
    return _wrap(out.reshape(lead + (w.shape[0],)))


# ---------------------------------------------------------------------------------------------
# pooling

def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """MaxPool2d's computation (with ``return_indices``: also int64 flat indices per plane)."""
    result = MaxPool2d(kernel_size, stride, padding, dilation, return_indices, ceil_mode).forward(input)
    if isinstance(result, tuple):
        return _wrap(result[0]), _wrap(result[1])
    return _wrap(result)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None):
    """AvgPool2d's computation."""
    return _wrap(AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad,
                           divisor_override).forward(input))


def _adaptive_size(output_size, shape: Tuple[int, ...], fn: str) -> Tuple[int, int]:
    """``output_size`` (an int or a pair, None meaning the input's size) as a pair."""
    items = (output_size, output_size) if not isinstance(output_size, (tuple, list)) else tuple(output_size)
    if len(items) != 2:
        raise ValueError(f"{fn}: output_size: expected an int or a pair, got {output_size!r}")
    out = []
    for item, size in zip(items, shape[-2:]):
        if item is None:
            item = size
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)) or item < 1:
            raise ValueError(f"{fn}: output_size: expected positive ints (or None), got {output_size!r}")
        out.append(int(item))
    return out[0], out[1]


def _adaptive_input(input, fn: str) -> np.ndarray:
    x = _real(input, fn)
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: input: expected a 3-d (C, H, W) or 4-d (N, C, H, W) array, got shape {x.shape}")
    if 0 in x.shape[-3:]:
        raise ValueError(f"{fn}: input: expected non-zero sizes except the batch, got shape {x.shape}")
    return x


def _adaptive_ranges(size: int, out: int) -> Tuple[np.ndarray, np.ndarray]:
    """torch's windows: [floor(i * size / out), ceil((i + 1) * size / out))."""
    i = np.arange(out, dtype=np.int64)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _window_sums(x: np.ndarray, axis: int, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sums of x over [start[i], end[i]) along ``axis``: one reduceat over the interleaved bounds
    (the odd slots sum the gaps between windows and are dropped; a zero appended for the last end)."""
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, 1)
    padded = np.pad(x, widths)
    bounds = np.empty(2 * start.size, np.int64)
    bounds[0::2], bounds[1::2] = start, end
    return np.take(np.add.reduceat(padded, bounds, axis=axis), np.arange(0, bounds.size, 2), axis=axis)


def adaptive_avg_pool2d(input, output_size):
    """Mean over torch's adaptive windows (in double, rounded once).

    >>> adaptive_avg_pool2d(np.arange(9.0).reshape(1, 3, 3), 2).tolist()
    [[[2.0, 3.0], [5.0, 6.0]]]
    """
    x = _adaptive_input(input, "adaptive_avg_pool2d")
    oh, ow = _adaptive_size(output_size, x.shape, "adaptive_avg_pool2d")
    h, w = x.shape[-2:]
    if h % oh == 0 and w % ow == 0:  # equal windows side by side (global pooling among them): one mean
        tiles = x.reshape(x.shape[:-2] + (oh, h // oh, ow, w // ow))
        return _wrap(tiles.mean(axis=(-3, -1), dtype=np.float64).astype(np.float32))
    (hs, he), (ws, we) = _adaptive_ranges(x.shape[-2], oh), _adaptive_ranges(x.shape[-1], ow)
    sums = _window_sums(_window_sums(x.astype(np.float64), x.ndim - 2, hs, he), x.ndim - 1, ws, we)
    counts = (he - hs)[:, None] * (we - ws)[None, :]
    return _wrap((sums / counts).astype(np.float32))


def _adaptive_index(size: int, out: int) -> np.ndarray:
    """(out, longest window) input indices of each window, its last index repeated to fill."""
    start, end = _adaptive_ranges(size, out)
    k = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(k), (end - 1)[:, None])


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Maximum over torch's adaptive windows; with ``return_indices`` also the int64 flat index
    (h * W + w) of the first maximum of each window, as torch.  NaN propagates (the index of a
    window's last NaN, as torch).

    >>> adaptive_max_pool2d(np.arange(9.0).reshape(1, 3, 3), 1, return_indices=True)[1].tolist()
    [[[8]]]
    """
    x = _adaptive_input(input, "adaptive_max_pool2d")
    h, w = x.shape[-2:]
    oh, ow = _adaptive_size(output_size, x.shape, "adaptive_max_pool2d")
    rows, cols = _adaptive_index(h, oh), _adaptive_index(w, ow)
    kh, kw = rows.shape[1], cols.shape[1]
    windows = x.astype(np.float32, copy=False)[..., rows[:, :, None, None], cols[None, None, :, :]]
    windows = np.swapaxes(windows, -3, -2).reshape(x.shape[:-2] + (oh, ow, kh * kw))
    arg = np.argmax(windows, axis=-1)  # the first maximum (or first NaN)
    nan = np.isnan(windows)
    if nan.any():  # torch's loop keeps the last NaN of a window
        last = windows.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
        arg = np.where(nan.any(axis=-1), last, arg)
    values = np.take_along_axis(windows, arg[..., None], axis=-1)[..., 0]
    if not return_indices:
        return _wrap(values)
    index = rows[np.arange(oh)[:, None], arg // kw] * w + cols[np.arange(ow)[None, :], arg % kw]
    return _wrap(values), _wrap(index.astype(np.int64))


# ---------------------------------------------------------------------------------------------
# normalisation

def _batch_statistics(x: np.ndarray, running_mean, running_var, momentum: float, fn: str):
    """Batch mean and biased variance per channel (float32), updating the running stats (when
    given) in place with ``momentum`` and the unbiased variance, as torch does."""
    mean, var = _C.batchnorm_stats(x, get_num_threads())
    count = x.size // max(x.shape[1], 1)
    if count <= 1:
        raise ValueError(f"{fn}: expected more than 1 value per channel when training, got input shape {x.shape}")
    if running_mean is not None:
        running_mean[...] = (1 - momentum) * running_mean + momentum * mean
    if running_var is not None:
        running_var[...] = (1 - momentum) * running_var + momentum * (var * (count / (count - 1)))
    return mean.astype(np.float32), var.astype(np.float32)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-05):
    """Batch normalisation over dim 1 of (N, C, ...): running statistics when not ``training``;
    batch statistics when ``training``, which also update the running ones (when given) in place.

    >>> rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    >>> batch_norm(np.array([[0.0, 1.0], [2.0, 3.0]]), rm, rv, training=True).round(3).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    >>> rm.astype(float).round(3).tolist(), rv.astype(float).round(3).tolist()
    ([0.1, 0.2], [1.1, 1.1])
    """
    x = _real(input, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input: expected an array (N, C, ...) of at least 2 dimensions, "
                         f"got shape {x.shape}")
    c = x.shape[1]
    rm = _optional_vector(running_mean, c, "batch_norm", "running_mean")
    rv = _optional_vector(running_var, c, "batch_norm", "running_var")
    weight = _optional_vector(weight, c, "batch_norm", "weight")
    bias = _optional_vector(bias, c, "batch_norm", "bias")
    eps = _number(eps, "batch_norm", "eps")
    if training:
        momentum = _number(momentum, "batch_norm", "momentum")
        for arr, name in ((running_mean, "running_mean"), (running_var, "running_var")):
            if arr is not None and not (isinstance(arr, np.ndarray) and arr.flags.writeable):
                raise TypeError(f"batch_norm: {name}: expected a writeable ndarray to update when training")
        mean, var = _batch_statistics(x, running_mean, running_var, momentum, "batch_norm")
    else:
        if rm is None or rv is None:
            raise ValueError("batch_norm: running_mean and running_var must be defined in evaluation mode")
        mean, var = rm, rv
    return _wrap(_C.batchnorm(x, mean, var, weight, bias, eps, None, get_num_threads()))


def _affine(out: np.ndarray, weight, bias, shape: Tuple[int, ...]) -> np.ndarray:
    if weight is not None:
        out = out * np.asarray(weight, np.float64).reshape(shape)
    if bias is not None:
        out = out + np.asarray(bias, np.float64).reshape(shape)
    return out


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-05):
    """Normalise each of ``num_groups`` channel groups of (N, C, ...) per sample (biased variance),
    then scale and shift per channel.  Computed in double, rounded once.

    >>> group_norm(np.array([[[1.0], [3.0]]]), 1).ravel().tolist()
    [-0.9999949932098389, 0.9999949932098389]
    """
    x = _real(input, "group_norm")
    if x.ndim < 2:
        raise ValueError(f"group_norm: input: expected (N, C, ...), got shape {x.shape}")
    g = _positive_int(num_groups, "group_norm", "num_groups")
    n, c = x.shape[:2]
    if c % g:
        raise ValueError(f"group_norm: num_groups: expected a divisor of the {c} channels of the input, got {g}")
    weight = _optional_vector(weight, c, "group_norm", "weight")
    bias = _optional_vector(bias, c, "group_norm", "bias")
    eps = _number(eps, "group_norm", "eps")
    grouped = x.astype(np.float64).reshape(n, g, -1)
    mean = grouped.mean(axis=-1, keepdims=True)
    var = ((grouped - mean) ** 2).mean(axis=-1, keepdims=True)
    out = ((grouped - mean) / np.sqrt(var + eps)).reshape(x.shape)
    return _wrap(_affine(out, weight, bias, (c,) + (1,) * (x.ndim - 2)).astype(np.float32))


def _normalized_shape(normalized_shape, fn: str) -> Tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise TypeError(f"{fn}: normalized_shape: expected an int or a sequence of non-negative ints, "
                        f"got {normalized_shape!r}")
    return tuple(int(s) for s in shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-05):
    """Normalise over the last ``len(normalized_shape)`` dims (biased variance), then apply the
    element-wise ``weight`` and ``bias`` of that shape.  Computed in double, rounded once."""
    x = _real(input, "layer_norm")
    shape = _normalized_shape(normalized_shape, "layer_norm")
    k = len(shape)
    if x.shape[x.ndim - k:] != shape or x.ndim < k:
        raise ValueError(f"layer_norm: input: expected trailing dimensions {shape}, got shape {x.shape}")
    for v, name in ((weight, "weight"), (bias, "bias")):
        if v is not None and np.shape(v) != shape:
            raise ValueError(f"layer_norm: {name}: expected shape {shape}, got {np.shape(v)}")
    eps = _number(eps, "layer_norm", "eps")
    axes = tuple(range(x.ndim - k, x.ndim))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
    return _wrap(_affine((x64 - mean) / np.sqrt(var + eps), weight, bias, shape).astype(np.float32))


# ---------------------------------------------------------------------------------------------
# dropout

def _check_p(p) -> float:
    p = _number(p, "dropout", "p")
    if p < 0.0 or p > 1.0:
        raise ValueError(f"p: dropout probability has to be between 0 and 1, but got {p}")
    return p


def _drop(input, p: float, training: bool, inplace: bool, mask_shape, fn: str):
    """Zero entries (or whole channels) with probability p from the seeded generator
    (``wageubn.manual_seed``), scale the rest by 1 / (1 - p); identity when not training."""
    if inplace:
        x = _inplace_target(input, fn)
    else:
        x = _real(input, fn)
    if not training or p == 0.0:
        return _wrap(x if inplace else x.astype(np.float32, copy=False))
    keep = init._rng().random(mask_shape(x)) >= p
    noise = keep.astype(np.float32) * np.float32(1.0 / (1.0 - p)) if p < 1.0 else keep.astype(np.float32)
    if inplace:
        np.multiply(x, noise, out=x)
        return _wrap(x)
    return _wrap(x.astype(np.float32, copy=False) * noise)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero each entry with probability ``p`` when ``training`` and scale the rest by 1 / (1 - p).

    >>> dropout(np.ones(4), 0.5, training=False).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    return _drop(input, _check_p(p), training, inplace, lambda x: x.shape, "dropout")


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels: per (N, C) of a 4-d (N, C, H, W) input, and as torch per (N, C) of a
    3-d one (read as (N, C, L), with torch's warning)."""
    p = _check_p(p)
    ndim = np.ndim(input)
    if ndim not in (3, 4):
        raise ValueError(f"dropout2d: input: expected a 3-d or 4-d array, got {ndim} dimensions")
    if ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel "
                      "dim. This behavior will change in a future release to interpret the input as one "
                      "without a batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise "
                      "dropout behavior, please switch to using dropout1d instead.", stacklevel=2)
    return _drop(input, p, training, inplace, lambda x: x.shape[:2] + (1,) * (x.ndim - 2), "dropout2d")


# ---------------------------------------------------------------------------------------------
# padding and resizing

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input, pad: Sequence[int], mode: str = "constant", value: Optional[float] = None):
    """Pad the last ``len(pad) // 2`` dims, the last dim first: ``(left, right, top, bottom, ...)``.

    Negative amounts crop.  Modes 'constant' (``value``, 0 by default), 'reflect', 'replicate',
    'circular'.

    >>> pad(np.arange(3.0), (1, 2), value=9.0).tolist()
    [9.0, 0.0, 1.0, 2.0, 9.0, 9.0]
    """
    x = _f32(input, "pad")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode: expected 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if mode != "constant" and value is not None:
        raise ValueError(f'pad: value: padding mode "{mode}" doesn\'t take in value argument')
    amounts = tuple(pad) if isinstance(pad, (tuple, list)) else None
    if amounts is None or len(amounts) % 2 or len(amounts) // 2 > x.ndim or \
            not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in amounts):
        raise ValueError(f"pad: pad: expected an even number of ints, at most 2 per dimension "
                         f"of the {x.ndim}-d input, got {pad!r}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(amounts) // 2):
        widths[x.ndim - 1 - i] = (int(amounts[2 * i]), int(amounts[2 * i + 1]))
    if mode != "constant":
        limit = {"reflect": lambda p, n: p < n, "replicate": lambda p, n: n > 0, "circular": lambda p, n: p <= n}
        for (before, after), size in zip(widths, x.shape):
            if before < 0 or after < 0 or not (limit[mode](before, size) and limit[mode](after, size)) \
                    and (before or after):
                raise ValueError(f"pad: pad: {pad!r} is out of range for {mode} padding of an input of shape "
                                 f"{x.shape} (non-negative, and below the size for reflect)")
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(widths, x.shape))
    x = x[crop]
    widths = [(max(b, 0), max(a, 0)) for b, a in widths]
    if mode == "constant":
        fill = 0.0 if value is None else _number(value, "pad", "value")
        return _wrap(np.pad(x, widths, mode="constant", constant_values=fill))
    return _wrap(np.pad(x, widths, mode=_PAD_MODES[mode]))


_INTERP_RANKS = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "linear": (1,), "bilinear": (2,),
                 "trilinear": (3,)}


def _nearest_index(size: int, out: int, scale: Optional[float], exact: bool) -> np.ndarray:
    """torch's nearest source index (float32 arithmetic, as its CPU kernel)."""
    if not exact:
        if out == size:
            return np.arange(out)
        if out == 2 * size:
            return np.arange(out) >> 1
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(size) / np.float32(out)
    dst = np.arange(out, dtype=np.float64)
    if exact:
        src = np.floor(((dst + 0.5) * np.float64(s)).astype(np.float32))
    else:
        src = np.floor(dst.astype(np.float32) * s)
    return np.minimum(src.astype(np.int64), size - 1)


def _linear_weights(size: int, out: int, scale: Optional[float], align_corners: bool):
    """(index0, index1, lambda0, lambda1) of torch's linear interpolation along one axis."""
    f = np.float32
    if align_corners:
        s = f(size - 1) / f(out - 1) if out > 1 else f(0)
    else:
        s = f(1.0 / scale) if scale is not None and scale > 0 else f(size) / f(out)
    dst = np.arange(out, dtype=np.float32)
    src = s * dst if align_corners else np.maximum(s * (dst + f(0.5)) - f(0.5), f(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    l1 = np.clip(src - i0.astype(np.float32), 0, 1)
    i1 = np.minimum(i0 + 1, size - 1)
    return i0, i1, (f(1) - l1).astype(np.float64), l1.astype(np.float64)


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False):
    """Resize the spatial dims of (N, C, *spatial): 'nearest' and 'nearest-exact' (1 to 3 dims),
    'linear' (3-d input), 'bilinear' (4-d), 'trilinear' (5-d), with torch's source-index rules
    (``align_corners``, scales from ``scale_factor`` unless ``recompute_scale_factor``).

    >>> interpolate(np.array([[[1.0, 2.0]]]), scale_factor=2).tolist()
    [[[1.0, 1.0, 2.0, 2.0]]]
    >>> interpolate(np.array([[[1.0, 2.0]]]), size=4, mode="linear").tolist()
    [[[1.0, 1.25, 1.75, 2.0]]]
    """
    x = _real(input, "interpolate")
    n = x.ndim - 2
    if mode not in _INTERP_RANKS:
        raise ValueError(f"interpolate: mode: expected one of {sorted(_INTERP_RANKS)}, got {mode!r}")
    if n not in _INTERP_RANKS[mode]:
        ranks = " or ".join(f"{r + 2}-d" for r in _INTERP_RANKS[mode])
        raise ValueError(f"interpolate: input: mode {mode!r} expects a {ranks} array, got shape {x.shape}")
    nearest = mode.startswith("nearest")
    if nearest and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise ValueError("interpolate: antialias: not supported, got True")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    spatial = x.shape[2:]
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        sizes = list(size) if isinstance(size, (tuple, list)) else [size] * n
        if len(sizes) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                                      for v in sizes):
            raise ValueError(f"interpolate: size: expected a positive int or {n} of them, got {size!r}")
        scales = [None] * n
    elif scale_factor is not None:
        factors = list(scale_factor) if isinstance(scale_factor, (tuple, list)) else [scale_factor] * n
        if len(factors) != n:
            raise ValueError(f"interpolate: scale_factor: expected a number or {n} of them, got {scale_factor!r}")
        factors = [_number(v, "interpolate", "scale_factor") for v in factors]
        sizes = [math.floor(float(d) * f) for d, f in zip(spatial, factors)]
        if min(sizes) < 1:
            raise ValueError(f"interpolate: scale_factor: {scale_factor!r} gives an empty output for an input "
                             f"of spatial size {spatial}")
        scales = [None] * n if recompute_scale_factor else factors
    else:
        raise ValueError("either size or scale_factor should be defined")
    if 0 in x.shape[1:]:
        raise ValueError(f"interpolate: input: expected non-zero sizes except the batch, got shape {x.shape}")
    out = x.astype(np.float32, copy=False) if nearest else x.astype(np.float64)
    for axis, (d, o, s) in enumerate(zip(spatial, sizes, scales), start=2):
        if nearest:
            out = np.take(out, _nearest_index(d, int(o), s, mode == "nearest-exact"), axis=axis)
        else:
            i0, i1, l0, l1 = _linear_weights(d, int(o), s, bool(align_corners))
            shape = [1] * out.ndim
            shape[axis] = -1
            out = np.take(out, i0, axis=axis) * l0.reshape(shape) + np.take(out, i1, axis=axis) * l1.reshape(shape)
    return _wrap(out.astype(np.float32, copy=False))


# ---------------------------------------------------------------------------------------------
# embedding

def embedding(input, weight, padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False):
    """Rows of ``weight`` picked by the integer array ``input``: shape input.shape + (dim,).

    With ``max_norm``, the rows looked up whose ``norm_type``-norm exceeds it are rescaled to
    it in ``weight`` itself, as torch does.  ``padding_idx``, ``scale_grad_by_freq`` and
    ``sparse`` only concern gradients.

    >>> embedding(np.array([[1, 0]]), np.arange(6.0).reshape(3, 2)).tolist()
    [[[2.0, 3.0], [0.0, 1.0]]]
    """
    idx = np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: input: expected integer indices, got dtype {idx.dtype}")
    w = _real(weight, "embedding", "weight")
    if w.ndim != 2:
        raise ValueError(f"embedding: weight: expected a 2-d array (num_embeddings, embedding_dim), "
                         f"got shape {w.shape}")
    num = w.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= num):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise IndexError(f"embedding: input: index {bad} out of range for {num} embeddings")
    if padding_idx is not None:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) or \
                not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx: expected an int in [-{num}, {num}), got {padding_idx!r}")
    if max_norm is not None:
        max_norm = _number(max_norm, "embedding", "max_norm")
        p = _number(norm_type, "embedding", "norm_type")
        if not (isinstance(weight, np.ndarray) and weight.flags.writeable):
            raise TypeError("embedding: weight: max_norm renormalises rows in place: expected a writeable ndarray")
        rows = np.unique(idx)
        norms = np.linalg.norm(weight[rows].astype(np.float64), ord=p, axis=1)
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[rows] = weight[rows] * scale[:, None]
        w = weight
    return _wrap(np.asarray(w, np.float32)[idx])


# ---------------------------------------------------------------------------------------------
# losses

def _reduce(loss: np.ndarray, reduction: str, denominator=None):
    if reduction == "none":
        return _wrap(np.asarray(loss, np.float32))
    total = loss.sum()
    if reduction == "sum":
        return _wrap(np.asarray(total, np.float32))
    count = loss.size if denominator is None else denominator
    with np.errstate(invalid="ignore", divide="ignore"):
        return _wrap(np.asarray(total / count, np.float32))


def _class_targets(logp: np.ndarray, target, weight, ignore_index: int, fn: str):
    """(picked -logp * w, w per element, valid mask, class-last logp, w) for class-index targets."""
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target: expected integer class indices, got dtype {t.dtype}")
    if logp.ndim == 1:
        expected = ()
    else:
        expected = (logp.shape[0],) + logp.shape[2:]
    if t.shape != expected:
        raise ValueError(f"{fn}: target: expected shape {expected} for an input of shape {logp.shape}, "
                         f"got {t.shape}")
    c = logp.shape[0] if logp.ndim == 1 else logp.shape[1]
    w = np.ones(c) if weight is None else _optional_vector(weight, c, fn, "weight").astype(np.float64)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexError(f"{fn}: target: class index {t[bad].flat[0]} is out of bounds for {c} classes")
    last = logp[None] if logp.ndim == 1 else np.moveaxis(logp, 1, -1)
    safe = np.where(valid, t, 0).reshape(last.shape[:-1])
    picked = np.take_along_axis(last, safe[..., None], axis=-1)[..., 0].reshape(t.shape)
    wt = np.where(valid, w[np.where(valid, t, 0)], 0.0)
    return -picked * wt, wt, valid, last, w


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean"):
    """Negative log likelihood of class indices: ``-weight[t] * input[n, t]`` over (N, C, ...)
    or (C,); 'mean' divides by the summed weights of the targets not equal to ``ignore_index``."""
    reduction = _reduction(size_average, reduce, reduction)
    x = _real(input, "nll_loss").astype(np.float64)
    if x.ndim == 0:
        raise ValueError("nll_loss: input: expected (N, C, ...) or (C,), got a 0-d array")
    loss, wt, _, _, _ = _class_targets(x, target, weight, ignore_index, "nll_loss")
    return _reduce(loss, reduction, wt.sum())


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0):
    """log_softmax over dim 1 (dim 0 of a 1-d input) then the negative log likelihood.

    ``target`` holds class indices (ints; ``ignore_index`` and ``weight`` apply) or class
    probabilities (floats, the input's shape).  ``label_smoothing`` mixes in the uniform
    distribution, as torch does in both cases.
    """
    reduction = _reduction(size_average, reduce, reduction)
    eps = _number(label_smoothing, "cross_entropy", "label_smoothing")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing: expected a number in [0, 1], got {eps}")
    x = _real(input, "cross_entropy")
    if x.ndim == 0:
        raise ValueError("cross_entropy: input: expected (N, C, ...) or (C,), got a 0-d array")
    class_axis = 0 if x.ndim == 1 else 1
    logp = _log_softmax64(x, class_axis)
    c = x.shape[class_axis]
    t = np.asarray(target)
    if t.dtype.kind == "f":
        if t.shape != x.shape:
            raise ValueError(f"cross_entropy: target: probabilities must have the input's shape {x.shape}, "
                             f"got {t.shape}")
        w = np.ones(c) if weight is None else _optional_vector(weight, c, "cross_entropy", "weight")
        shape = [1] * x.ndim
        shape[class_axis] = c
        probs = t.astype(np.float64) * (1 - eps) + eps / c
        loss = -(logp * probs * np.asarray(w, np.float64).reshape(shape)).sum(axis=class_axis)
        return _reduce(loss, reduction, loss.size)
    loss, wt, valid, last, w = _class_targets(logp, t, weight, ignore_index, "cross_entropy")
    if eps > 0:
        smooth = -(last * w).sum(axis=-1).reshape(t.shape)
        smooth = np.where(valid, smooth, 0.0)
        if reduction == "mean":
            denominator = wt.sum() if weight is not None else valid.sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                value = (1 - eps) * loss.sum() / wt.sum() + eps / c * smooth.sum() / denominator
            return _wrap(np.asarray(value, np.float32))
        loss = (1 - eps) * loss + eps / c * smooth
    return _reduce(loss, reduction, wt.sum())


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    """Squared error (broadcast as torch, with its warning on different shapes); with ``weight``
    (the input's shape) 'mean' divides the weighted sum by the summed weights."""
    x = _real(input, "mse_loss")
    t = _real(target, "mse_loss", "target")
    if x.shape != t.shape:
        warnings.warn(f"Using a target size ({t.shape}) that is different to the input size ({x.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=2)
    reduction = _reduction(size_average, reduce, reduction)
    try:
        a, b = np.broadcast_arrays(x, t)
    except ValueError:
        raise ValueError(f"mse_loss: target: shape {t.shape} does not broadcast with the input's {x.shape}") from None
    loss = (a.astype(np.float64) - b) ** 2
    if weight is not None:
        w = _real(weight, "mse_loss", "weight")
        if w.shape != x.shape:
            raise ValueError("Weights and input must have the same size.")
        loss = loss * w
        return _reduce(loss, reduction, w.astype(np.float64).sum())
    return _reduce(loss, reduction)
