"""Quantized fully connected layer (``wageubn.function.Linear``)."""
import numpy as np

from .. import _C
from .._threads import get_num_threads
from . import init
from ._layer import QuantLayer, as_input, weighted_widths
from .conv import positive_int
from .module import Parameter


class Linear(QuantLayer):
    """torch.nn.Linear with WAGEUBN fixed-point weight, bias and (with ``iostrict``) input and output.

    Any number of leading dimensions: (..., in_features) -> (..., out_features).

    >>> import numpy as np, wageubn.function as nn
    >>> nn.Linear(4, 3)(np.ones((2, 5, 4))).shape
    (2, 5, 3)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 weight_dec_bit_width: int = 8, bias_dec_bit_width: int = 16,
                 input_dec_bit_width: int = 8, output_dec_bit_width: int = 12,
                 weight_all_bit_width: int = 8, bias_all_bit_width: int = 16,
                 input_all_bit_width: int = 8, output_all_bit_width: int = 12,
                 iostrict: bool = False, *, retrain: bool = False):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_features, np.float32))
        else:
            self.register_parameter("bias", None)
        init.reset_linear_like(self.weight, self.bias)
        self._init_quant(weighted_widths(weight_dec_bit_width, bias_dec_bit_width, input_dec_bit_width,
                                         output_dec_bit_width, weight_all_bit_width, bias_all_bit_width,
                                         input_all_bit_width, output_all_bit_width), iostrict, retrain)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, input) -> np.ndarray:
        x = as_input(input, range(1, 33), "Linear", "(..., in_features)")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input: expected last dimension {self.in_features}, got shape {x.shape}")
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_features)
        x, weight, bias, out_fmt, exact = self.weighted_operands(x, self.weight, self.bias, self.in_features)
        out = _C.linear(x, weight, bias, out_fmt, exact, get_num_threads())
        return out.reshape(lead + (self.out_features,))
