"""Quantized 2-d convolution (``wageubn.function.Conv2d``)."""
import math
from typing import Tuple, Union

import numpy as np

from .. import _C
from .._threads import get_num_threads
from . import init
from ._layer import QuantLayer, as_input, weighted_widths
from .module import Parameter

IntPair = Union[int, Tuple[int, int]]
_NUMPY_PAD = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


INT64_MAX = 2**63 - 1
_MODES = ("zeros", "reflect", "replicate", "circular")


def pair(value, name: str, minimum: int) -> Tuple[int, int]:
    """An int or a pair of ints as a pair, each in [``minimum``, 2**63 - 1].

    A ``kernel_size`` must also leave a float32 (kh, kw) weight plane addressable.

    >>> pair(3, "stride", 1)
    (3, 3)
    >>> pair((1, 2**63), "dilation", 1)
    Traceback (most recent call last):
    ...
    ValueError: dilation: expected values in [1, 2**63 - 1], got (1, 9223372036854775808)
    """
    items = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) if isinstance(value, (tuple, list)) else None
    if items is None or len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{name}: expected values >= {minimum}, got {value!r}")
    if max(int(v) for v in items) > INT64_MAX:
        raise ValueError(f"{name}: expected values in [{minimum}, 2**63 - 1], got {value!r}")
    result = (int(items[0]), int(items[1]))
    if name == "kernel_size" and result[0] * result[1] * 4 > INT64_MAX:
        raise ValueError(f"kernel_size: expected a kernel whose float32 weight can be addressed "
                         f"(at most 2**63 - 1 bytes), got {value!r}")
    return result


def weight_shape(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    """``shape`` when a float32 array of it can be addressed, else ValueError naming kernel_size."""
    if math.prod(shape) * 4 > INT64_MAX:
        raise ValueError(f"kernel_size: expected a weight of at most 2**63 - 1 bytes, got shape {shape}")
    return shape


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


class Conv2d(QuantLayer):
    """torch.nn.Conv2d with WAGEUBN fixed-point weight, bias and (with ``iostrict``) input and output.

    >>> import numpy as np, wageubn.function as nn
    >>> conv = nn.Conv2d(3, 8, 3, padding=1)
    >>> conv(np.zeros((2, 3, 16, 16), np.float32)).shape
    (2, 8, 16, 16)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: Union[str, IntPair] = 0, dilation: IntPair = 1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros",
                 weight_dec_bit_width: int = 8, bias_dec_bit_width: int = 16,
                 input_dec_bit_width: int = 8, output_dec_bit_width: int = 12,
                 weight_all_bit_width: int = 8, bias_all_bit_width: int = 16,
                 input_all_bit_width: int = 8, output_all_bit_width: int = 12,
                 iostrict: bool = False, *, retrain: bool = False):
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.groups = positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups: must divide in_channels ({in_channels}) and "
                             f"out_channels ({out_channels}), got {groups}")
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.dilation = pair(dilation, "dilation", 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding: expected 'same', 'valid', an int or a pair, got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding: 'same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", 0)
        self.padding_mode = padding_mode
        self._padding_mode()  # fail at construction on a bad mode (and at each call after a change)
        self.transposed = False
        self.output_padding = (0, 0)
        self.weight = Parameter(np.empty(weight_shape((out_channels, in_channels // groups) + self.kernel_size),
                                         np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_channels, np.float32))
        else:
            self.register_parameter("bias", None)
        init.reset_linear_like(self.weight, self.bias)
        self._init_quant(weighted_widths(weight_dec_bit_width, bias_dec_bit_width, input_dec_bit_width,
                                         output_dec_bit_width, weight_all_bit_width, bias_all_bit_width,
                                         input_all_bit_width, output_all_bit_width), iostrict, retrain)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _padding_mode(self) -> str:
        mode = self.padding_mode
        if not isinstance(mode, str) or mode not in _MODES:
            raise ValueError("padding_mode: expected 'zeros', 'reflect', 'replicate' or 'circular', "
                             f"got {mode!r}")
        return mode

    def _pads(self) -> Tuple[int, int, int, int]:
        """(top, left, bottom, right); 'same' puts the odd pixel at the bottom / right, as torch."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            th, tw = (d * (k - 1) for d, k in zip(pair(self.dilation, "dilation", 1), self.kernel_size))
            if max(th, tw) > INT64_MAX:
                raise ValueError(f"dilation: expected 'same' padding dilation * (kernel_size - 1) of at "
                                 f"most 2**63 - 1, got dilation={self.dilation!r} with "
                                 f"kernel_size={self.kernel_size!r}")
            return (th // 2, tw // 2, th - th // 2, tw - tw // 2)
        pads = pair(self.padding, "padding", 0)
        return pads + pads

    def forward(self, input) -> np.ndarray:
        x = as_input(input, (3, 4), "Conv2d", "(n, c, h, w) or (c, h, w)")
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        pads = self._pads()
        if self._padding_mode() != "zeros":
            top, left, bottom, right = pads
            # torch's limits: reflect needs pad < size, circular pad <= size, replicate size >= 1.
            fits = {"reflect": lambda p, n: p < n, "circular": lambda p, n: p <= n,
                    "replicate": lambda p, n: n > 0}[self.padding_mode]
            if not all(fits(p, n) for p, n in ((top, x.shape[2]), (bottom, x.shape[2]),
                                               (left, x.shape[3]), (right, x.shape[3]))):
                raise ValueError(f"padding: {pads} is too large for {self.padding_mode} padding "
                                 f"of an input of spatial size {x.shape[2:]}")
            padded = x.shape[:2] + (x.shape[2] + top + bottom, x.shape[3] + left + right)
            if math.prod(padded) * x.itemsize > INT64_MAX:
                raise ValueError(f"padding: expected a padded input of at most 2**63 - 1 bytes, got "
                                 f"padding {pads} around an input of shape {x.shape}")
            x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=_NUMPY_PAD[self.padding_mode])
            pads = (0, 0, 0, 0)
        weight = self.weight
        x, weight, bias, out_fmt, exact = self.weighted_operands(
            x, weight, self.bias, weight.size // max(weight.shape[0], 1), quantize_input=False)
        out = _C.conv2d(x, weight, bias, self.stride, pads, self.dilation, self.groups, out_fmt, exact,
                        get_num_threads(), self.io_fmt("input"))
        return out[0] if unbatched else out
