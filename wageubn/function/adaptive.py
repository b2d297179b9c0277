"""``AdaptiveAvgPool2d`` and ``AdaptiveMaxPool2d``: float pooling over torch's adaptive windows.

>>> import numpy as np, wageubn.function as nn
>>> nn.AdaptiveAvgPool2d(1)(np.ones((2, 3, 5, 7))).shape
(2, 3, 1, 1)
>>> nn.AdaptiveMaxPool2d((2, None))(np.zeros((3, 4, 6))).shape
(3, 2, 6)
"""
from . import functional as F
from .module import Module

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


class AdaptiveAvgPool2d(Module):
    """torch.nn.AdaptiveAvgPool2d: the output is ``output_size`` (an int, a pair, None keeps the
    input's size), each value the mean of window [floor(i*H/h), ceil((i+1)*H/h))."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size
        F._adaptive_size(output_size, (1, 1), "AdaptiveAvgPool2d")  # fail at construction on a bad size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool2d(Module):
    """torch.nn.AdaptiveMaxPool2d (``return_indices`` also gives int64 flat indices per plane)."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices
        F._adaptive_size(output_size, (1, 1), "AdaptiveMaxPool2d")

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)
