"""Quantized activations (``ReLU``, ``ReLU6``): the output is always quantized (``acti``)."""
import math

import numpy as np

from .. import _C
from .._threads import get_num_threads
from ._layer import QuantLayer, as_input
from .number import NONE


class ReLU(QuantLayer):
    """torch.nn.ReLU whose output is quantized to the ``acti`` format (input too with ``iostrict``).

    >>> import wageubn.function as nn
    >>> nn.ReLU()([-1.0, 0.3, 2.0])
    tensor([0.      , 0.296875, 2.      ], dtype=float32)
    """

    upper = math.inf
    acti_part = "acti"

    def __init__(self, inplace: bool = False, input_dec_bit_width: int = 8, acti_dec_bit_width: int = 8,
                 input_all_bit_width: int = 8, acti_all_bit_width: int = 8, iostrict: bool = False,
                 *, retrain: bool = False):
        super().__init__()
        self.inplace = inplace
        self._init_quant({"input": (input_dec_bit_width, input_all_bit_width),
                          "acti": (acti_dec_bit_width, acti_all_bit_width)}, iostrict, retrain)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""

    def forward(self, input) -> np.ndarray:
        if not self.inplace:
            input = as_input(input, range(0, 33), type(self).__name__, "")
        out_fmt = self.fmt("acti") if self.quant else (NONE, 1, 1)
        return _C.clamp(input, 0.0, self.upper, self.io_fmt("input"), out_fmt, bool(self.inplace),
                        get_num_threads())


class ReLU6(ReLU):
    """torch.nn.ReLU6 (``min(max(x, 0), 6)``) with the quantization of :class:`ReLU`."""

    upper = 6.0
