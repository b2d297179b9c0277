"""Quantized ``Conv1d`` and ``ConvTranspose2d``, through the 2-d convolution kernel.

Both quantize as :class:`~wageubn.function.Conv2d`: torch's arguments, then the weight, bias,
input and output widths (defaults 8, 16, 8, 12), then ``iostrict``.  Conv1d is Conv2d on a
height of 1.  ConvTranspose2d is computed exactly as one convolution of the zero-stuffed input
with the flipped weight (see ``functional.conv_transpose2d``), so with ``iostrict`` each output
is again the exact sum rounded once into the output format.

>>> import numpy as np, wageubn.function as nn
>>> nn.Conv1d(2, 4, 3, padding=1)(np.zeros((5, 2, 16))).shape
(5, 4, 16)
>>> nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)(np.zeros((1, 4, 8, 8))).shape
(1, 2, 16, 16)
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..tensor import _wrap
from . import functional as F
from . import init
from ._layer import QuantLayer, as_input, weighted_widths
from .conv import positive_int
from .module import Parameter
from .pooling import _ints

__all__ = ["Conv1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _groups(in_channels, out_channels, groups) -> Tuple[int, int, int]:
    cin, cout = positive_int(in_channels, "in_channels"), positive_int(out_channels, "out_channels")
    g = positive_int(groups, "groups")
    if cin % g or cout % g:
        raise ValueError(f"groups: must divide in_channels ({cin}) and out_channels ({cout}), got {g}")
    return cin, cout, g


class Conv1d(QuantLayer):
    """torch.nn.Conv1d over (N, C, L) or (C, L) with the quantization of Conv2d.

    Sizes are stored as 1-tuples, as torch; ``padding`` may be 'same' or 'valid', and
    ``padding_mode`` 'zeros', 'reflect', 'replicate' or 'circular'.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding: Union[str, int, Sequence[int]] = 0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros",
                 weight_dec_bit_width: int = 8, bias_dec_bit_width: int = 16,
                 input_dec_bit_width: int = 8, output_dec_bit_width: int = 12,
                 weight_all_bit_width: int = 8, bias_all_bit_width: int = 16,
                 input_all_bit_width: int = 8, output_all_bit_width: int = 12,
                 iostrict: bool = False, *, retrain: bool = False, device=None, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _groups(in_channels, out_channels, groups)
        self.kernel_size = _ints(kernel_size, 1, "kernel_size", 1)
        self.stride = _ints(stride, 1, "stride", 1)
        self.dilation = _ints(dilation, 1, "dilation", 1)
        if isinstance(padding, str):
            F._conv_pads(padding, self.kernel_size, self.stride, self.dilation, 1, "Conv1d")
            self.padding = padding
        else:
            self.padding = _ints(padding, 1, "padding", 0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {_PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.transposed = False
        self.output_padding = (0,)
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels // self.groups) + self.kernel_size,
                                         np.float32))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, np.float32))
        else:
            self.register_parameter("bias", None)
        init.reset_linear_like(self.weight, self.bias)
        self._init_quant(weighted_widths(weight_dec_bit_width, bias_dec_bit_width, input_dec_bit_width,
                                         output_dec_bit_width, weight_all_bit_width, bias_all_bit_width,
                                         input_all_bit_width, output_all_bit_width), iostrict, retrain)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,):
            s += f", padding={self.padding}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def forward(self, input):
        x = as_input(input, (2, 3), "Conv1d", "(n, c, l) or (c, l)")
        pads = F._conv_pads(self.padding, self.kernel_size, self.stride, self.dilation, 1, "Conv1d")
        if self.padding_mode != "zeros" and pads[0] != (0, 0):
            x = np.asarray(F.pad(x, pads[0], self.padding_mode))
            pads = [(0, 0)]
        x, weight, bias, out_fmt, exact = self.weighted_operands(
            x, self.weight, self.bias, self.weight.size // self.out_channels, quantize_input=False)
        return _wrap(F._convnd(x, weight, bias, self.stride, None, self.dilation, self.groups, 1, "Conv1d",
                               out_fmt, exact, self.io_fmt("input"), pads=pads))


class ConvTranspose2d(QuantLayer):
    """torch.nn.ConvTranspose2d with the quantization of Conv2d; weight (in_channels,
    out_channels / groups, kh, kw), initialised as torch.  ``forward(input, output_size)``
    resolves the output padding from a wanted size, as torch."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros",
                 weight_dec_bit_width: int = 8, bias_dec_bit_width: int = 16,
                 input_dec_bit_width: int = 8, output_dec_bit_width: int = 12,
                 weight_all_bit_width: int = 8, bias_all_bit_width: int = 16,
                 input_all_bit_width: int = 8, output_all_bit_width: int = 12,
                 iostrict: bool = False, *, retrain: bool = False, device=None, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _groups(in_channels, out_channels, groups)
        self.kernel_size = _ints(kernel_size, 2, "kernel_size", 1)
        self.stride = _ints(stride, 2, "stride", 1)
        self.padding = _ints(padding, 2, "padding", 0)
        self.dilation = _ints(dilation, 2, "dilation", 1)
        self.output_padding = _ints(output_padding, 2, "output_padding", 0)
        if any(o >= max(s, d) for o, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f"output_padding: must be smaller than either stride or dilation, got "
                             f"{self.output_padding}")
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode: only 'zeros' is supported for ConvTranspose2d, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.transposed = True
        self.weight = Parameter(np.empty((self.in_channels, self.out_channels // self.groups) + self.kernel_size,
                                         np.float32))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, np.float32))
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
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def _output_padding(self, shape: Tuple[int, ...], output_size: Optional[Sequence[int]]) -> Tuple[int, int]:
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-2:]
        if len(size) != 2:
            raise ValueError(f"output_size: expected 2 (or 4) sizes, got {output_size!r}")
        out = []
        for i, want in enumerate(size):
            least = (shape[i] - 1) * self.stride[i] - 2 * self.padding[i] + \
                self.dilation[i] * (self.kernel_size[i] - 1) + 1
            if not least <= want < least + self.stride[i]:
                raise ValueError(f"output_size: requested an output size of {size}, but valid sizes range from "
                                 f"{least} to {least + self.stride[i] - 1} in dimension {i}")
            out.append(want - least)
        return out[0], out[1]

    def forward(self, input, output_size: Optional[Sequence[int]] = None):
        x = as_input(input, (3, 4), "ConvTranspose2d", "(n, c, h, w) or (c, h, w)")
        output_padding = self._output_padding(x.shape[-2:], output_size)
        k = (self.in_channels // self.groups) * self.kernel_size[0] * self.kernel_size[1]  # products per output
        x, weight, bias, out_fmt, exact = self.weighted_operands(x, self.weight, self.bias, k, quantize_input=False)
        stuffed, flipped, pads, d, groups, unbatched = F._transposed_operands(
            x, weight, self.stride, self.padding, output_padding, self.groups, self.dilation, "ConvTranspose2d")
        out = F._convnd(stuffed, flipped, bias, 1, None, d, groups, 2, "ConvTranspose2d", out_fmt, exact,
                        self.io_fmt("input"), pads=pads)
        return _wrap(out[0] if unbatched else out)
