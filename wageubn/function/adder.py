"""Quantized AdderNet layer (``wageubn.function.Adder2d``)."""
import numpy as np

from ._layer import QuantLayer, as_input, weighted_widths
from .extra import Adder2d as FloatAdder2d, IntPair


class Adder2d(FloatAdder2d, QuantLayer):
    """AdderNet layer with WAGEUBN fixed-point weight, bias and (with ``iostrict``) input and output.

    >>> import numpy as np, wageubn.function as nn
    >>> nn.Adder2d(3, 4, 3, padding=1)(np.zeros((2, 3, 8, 8))).shape
    (2, 4, 8, 8)
    """

    def __init__(self, input_channel: int, output_channel: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, bias: bool = False,
                 weight_dec_bit_width: int = 8, bias_dec_bit_width: int = 16,
                 input_dec_bit_width: int = 8, output_dec_bit_width: int = 12,
                 weight_all_bit_width: int = 8, bias_all_bit_width: int = 16,
                 input_all_bit_width: int = 8, output_all_bit_width: int = 12,
                 iostrict: bool = False, *, retrain: bool = False):
        super().__init__(input_channel, output_channel, kernel_size, stride=stride, padding=padding, bias=bias)
        self._init_quant(weighted_widths(weight_dec_bit_width, bias_dec_bit_width, input_dec_bit_width,
                                         output_dec_bit_width, weight_all_bit_width, bias_all_bit_width,
                                         input_all_bit_width, output_all_bit_width), iostrict, retrain)

    def forward(self, input) -> np.ndarray:
        x = as_input(input, (4,), "Adder2d", "(n, c, h, w)")
        # the iostrict input quantizer runs in the kernel (in_fmt), as for Conv2d
        operands = self.weighted_operands(x, self.weight, self.bias, self.weight[0].size, adder=True,
                                          quantize_input=False)
        return self._adder(*operands, in_fmt=self.io_fmt("input"))
