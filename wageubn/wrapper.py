"""Build a network's quantized and float twins from one description (tqt's ``wrapper``).

``QFUNCTION[name](*args, **kwargs)`` builds the quantized wageubn layer, ``OFUNCTION`` the
same layer floatilized (or the float layer itself, for pooling).  Both accept the layer's
own arguments plus tqt's ``weight_bit_width``, ``bias_bit_width``, ``acti_bit_width`` (set
the part's dec and all widths), ``retrain`` and ``quant``.

>>> import numpy as np
>>> conv = QFUNCTION["Conv2d"](1, 6, 5, 1, 2, weight_bit_width=6)
>>> conv.quant, conv.weight_all_bit_width, OFUNCTION["Conv2d"](1, 6, 5).quant
(True, 6, False)
"""
from typing import Callable, Dict

from . import function as nn

_TQT_WIDTHS = {"weight_bit_width": "weight", "bias_bit_width": "bias", "acti_bit_width": "acti"}


def _quantized(cls: type, quant: bool) -> Callable:
    def build(*args, quant: bool = quant, retrain: bool = False, **kwargs):
        for tqt_name, part in _TQT_WIDTHS.items():
            if tqt_name in kwargs:
                width = kwargs.pop(tqt_name)
                kwargs[f"{part}_dec_bit_width"] = kwargs[f"{part}_all_bit_width"] = width
        layer = cls(*args, retrain=retrain, **kwargs)
        layer.quantilize() if quant else layer.floatilize()
        return layer
    build.__name__ = cls.__name__
    return build


_LAYERS = [nn.ReLU, nn.ReLU6, nn.BatchNorm2d, nn.Conv2d, nn.Linear, nn.Adder2d]
_FLOAT = [nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.Flatten]

QFUNCTION: Dict[str, Callable] = {c.__name__: _quantized(c, True) for c in _LAYERS}
QFUNCTION.update({c.__name__: c for c in _FLOAT})
OFUNCTION: Dict[str, Callable] = {c.__name__: _quantized(c, False) for c in _LAYERS}
OFUNCTION.update({c.__name__: c for c in _FLOAT})

__all__ = ["QFUNCTION", "OFUNCTION"]
