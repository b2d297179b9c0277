"""More activations: quantized ``LeakyReLU``, ``Hardtanh``, ``Sigmoid``, ``Tanh``; float ``Softmax``,
``LogSoftmax``.

The quantized ones work as :class:`~wageubn.function.ReLU`: torch's arguments first, then the
``input`` and ``acti`` widths (8 by default), then ``iostrict``.  The output is always quantized
to the ``acti`` format (directquant, or alldirectquant with ``iostrict``); with ``iostrict`` the
input is quantized to the ``input`` format first.  ``floatilize()`` gives the float layer.
Softmax and LogSoftmax are float: WAGEUBN does not quantize them.

>>> import numpy as np, wageubn.function as nn
>>> nn.Sigmoid()(np.array([0.0, 0.3])).tolist()   # sigmoid(0.3) = 0.5744... on the 2**-7 grid
[0.5, 0.578125]
"""
from typing import Optional

import numpy as np

from ..tensor import _wrap
from . import functional as F
from ._layer import QuantLayer, as_input
from .module import Module

__all__ = ["LeakyReLU", "Hardtanh", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]


class _QuantActivation(QuantLayer):
    """An element-wise map between the ``input`` and ``acti`` formats of :class:`ReLU`."""

    acti_part = "acti"
    inplace = False

    def _init_act(self, input_dec_bit_width, acti_dec_bit_width, input_all_bit_width, acti_all_bit_width,
                  iostrict, retrain) -> None:
        self._init_quant({"input": (input_dec_bit_width, input_all_bit_width),
                          "acti": (acti_dec_bit_width, acti_all_bit_width)}, iostrict, retrain)

    def _map(self, x: np.ndarray) -> np.ndarray:
        """The float map, on a float32 array."""
        raise NotImplementedError

    def forward(self, input):
        name = type(self).__name__
        if self.inplace:
            target = F._inplace_target(input, name)
        x = as_input(input, range(0, 33), name, "")
        if self.quant and self.iostrict:
            x = self.q(x, "input")
        out = self._map(np.asarray(x, np.float32))
        if self.quant:
            out = self.q(out, "acti")
        if self.inplace:
            target[...] = out
            return _wrap(target)
        return _wrap(out)


class LeakyReLU(_QuantActivation):
    """torch.nn.LeakyReLU (``x`` if positive, else ``negative_slope * x``) with the quantization of ReLU.

    >>> import wageubn.function as nn
    >>> nn.LeakyReLU(0.1)([-1.0, 0.5]).tolist()
    [-0.1015625, 0.5]
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False,
                 input_dec_bit_width: int = 8, acti_dec_bit_width: int = 8,
                 input_all_bit_width: int = 8, acti_all_bit_width: int = 8, iostrict: bool = False,
                 *, retrain: bool = False):
        super().__init__()
        self.negative_slope = F._number(negative_slope, "LeakyReLU", "negative_slope")
        self.inplace = inplace
        self._init_act(input_dec_bit_width, acti_dec_bit_width, input_all_bit_width, acti_all_bit_width,
                       iostrict, retrain)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{', inplace=True' if self.inplace else ''}"

    def _map(self, x):
        return F._leaky(x, self.negative_slope)


class Hardtanh(_QuantActivation):
    """torch.nn.Hardtanh (``clamp(x, min_val, max_val)``) with the quantization of ReLU, in one C
    pass as ReLU (``Hardtanh(0, 6)`` is ReLU6).  ``min_value`` / ``max_value`` are torch's
    deprecated spellings.

    >>> import wageubn.function as nn
    >>> nn.Hardtanh()([-3.0, 0.3, 3.0]).tolist()
    [-1.0, 0.296875, 1.0]
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: Optional[float] = None, max_value: Optional[float] = None,
                 input_dec_bit_width: int = 8, acti_dec_bit_width: int = 8,
                 input_all_bit_width: int = 8, acti_all_bit_width: int = 8, iostrict: bool = False,
                 *, retrain: bool = False):
        super().__init__()
        min_val = min_val if min_value is None else min_value
        max_val = max_val if max_value is None else max_value
        self.min_val = F._number(min_val, "Hardtanh", "min_val")
        self.max_val = F._number(max_val, "Hardtanh", "max_val")
        self.inplace = inplace
        if self.min_val > self.max_val:
            raise ValueError(f"max_val: expected max_val >= min_val, got min_val={min_val}, max_val={max_val}")
        self._init_act(input_dec_bit_width, acti_dec_bit_width, input_all_bit_width, acti_all_bit_width,
                       iostrict, retrain)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{', inplace=True' if self.inplace else ''}"

    def forward(self, input):
        if not self.inplace:
            input = as_input(input, range(0, 33), "Hardtanh", "")
        out_fmt = self.fmt("acti") if self.quant else None
        return F._clamp(input, self.min_val, self.max_val, self.inplace, "Hardtanh", self.io_fmt("input"), out_fmt)


class Sigmoid(_QuantActivation):
    """torch.nn.Sigmoid with the quantization of ReLU (the float sigmoid in double, rounded to
    float32, then to the ``acti`` format)."""

    def __init__(self, input_dec_bit_width: int = 8, acti_dec_bit_width: int = 8,
                 input_all_bit_width: int = 8, acti_all_bit_width: int = 8, iostrict: bool = False,
                 *, retrain: bool = False):
        super().__init__()
        self._init_act(input_dec_bit_width, acti_dec_bit_width, input_all_bit_width, acti_all_bit_width,
                       iostrict, retrain)

    def _map(self, x):
        return F._sigmoid(x)


class Tanh(_QuantActivation):
    """torch.nn.Tanh with the quantization of ReLU.

    >>> import wageubn.function as nn
    >>> nn.Tanh()([0.5]).tolist()   # tanh(0.5) = 0.4621...
    [0.4609375]
    """

    def __init__(self, input_dec_bit_width: int = 8, acti_dec_bit_width: int = 8,
                 input_all_bit_width: int = 8, acti_all_bit_width: int = 8, iostrict: bool = False,
                 *, retrain: bool = False):
        super().__init__()
        self._init_act(input_dec_bit_width, acti_dec_bit_width, input_all_bit_width, acti_all_bit_width,
                       iostrict, retrain)

    def _map(self, x):
        return F._tanh(x)


class Softmax(Module):
    """torch.nn.Softmax along ``dim`` (float: not quantized).

    >>> import numpy as np, wageubn.function as nn
    >>> nn.Softmax(dim=1)(np.log([[1.0, 3.0]])).tolist()
    [[0.25, 0.75]]
    """

    def __init__(self, dim: Optional[int] = None):
        super().__init__()
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def forward(self, input):
        return F.softmax(input, self.dim)


class LogSoftmax(Softmax):
    """torch.nn.LogSoftmax along ``dim`` (float: not quantized)."""

    def forward(self, input):
        return F.log_softmax(input, self.dim)

