"""Float layers that torch does not have: AdderNet's ``Adder2d`` (Chen et al., 2020)."""
from typing import Optional, Tuple, Union

import numpy as np

from .. import _C
from .._threads import get_num_threads
from . import init
from ._layer import as_input
from .conv import pair, positive_int, weight_shape
from .module import Module, Parameter

IntPair = Union[int, Tuple[int, int]]


def adder2d_function(X, W, bias=None, stride: IntPair = 1, padding: IntPair = 0) -> np.ndarray:
    """``out[n, o, i, j] = -sum_{c,u,v} |X[n, c, i*s+u-p, j*s+v-p] - W[o, c, u, v]| + bias[o]``.

    Zero padding takes part in the sum (as unfold's zeros do in the reference).
    Computed directly, without an (out_channels, K, L) intermediate.

    >>> import numpy as np
    >>> adder2d_function(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)))
    array([[[[-4.]]]], dtype=float32)
    """
    s, p = pair(stride, "stride", 1), pair(padding, "padding", 0)
    return _C.adder2d(X, W, bias, s, p + p, (1, 1), 1, None, False, get_num_threads())


class Adder2d(Module):
    """Float AdderNet layer: weight N(0, 1), bias U(0, 1) as in the reference."""

    def __init__(self, input_channel: int, output_channel: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, bias: bool = False):
        super().__init__()
        self.input_channel = positive_int(input_channel, "input_channel")
        self.output_channel = positive_int(output_channel, "output_channel")
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        kh, kw = pair(kernel_size, "kernel_size", 1)
        pair(stride, "stride", 1)
        pair(padding, "padding", 0)
        self.weight = Parameter(init.normal_(np.empty(weight_shape((output_channel, input_channel, kh, kw)),
                                                      np.float32)))
        self._bias = bias
        if bias:
            self.bias = Parameter(init.uniform_(np.empty(output_channel, np.float32)))
        else:
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return (f"{self.input_channel}, {self.output_channel}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")

    def _adder(self, x: np.ndarray, weight, bias: Optional[np.ndarray], out_fmt: tuple, exact: bool,
               in_fmt: Optional[tuple] = None) -> np.ndarray:
        p = pair(self.padding, "padding", 0)
        return _C.adder2d(x, weight, bias, pair(self.stride, "stride", 1), p + p, (1, 1), 1, out_fmt, exact,
                          get_num_threads(), in_fmt)

    def forward(self, input) -> np.ndarray:
        x = as_input(input, (4,), "Adder2d", "(n, c, h, w)")
        return self._adder(x, self.weight, self.bias, None, False)
