"""``BatchNorm1d`` (quantized, as BatchNorm2d), ``GroupNorm`` and ``LayerNorm`` (float).

WAGEUBN quantizes batch normalisation only: GroupNorm and LayerNorm compute in float
(double inside, rounded once to float32), with torch's parameters and state-dict keys.

>>> import numpy as np, wageubn.function as nn
>>> sorted(nn.BatchNorm1d(4).state_dict())
['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
>>> nn.LayerNorm(3)(np.array([[1.0, 2.0, 3.0]])).astype(float).round(4).tolist()
[[-1.2247, 0.0, 1.2247]]
"""
from typing import Sequence, Union

import numpy as np

from ..tensor import _wrap
from . import functional as F
from .batchnorm import BatchNorm2d
from .conv import positive_int
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "GroupNorm", "LayerNorm"]


class BatchNorm1d(BatchNorm2d):
    """torch.nn.BatchNorm1d over (N, C) or (N, C, L), quantized exactly as :class:`BatchNorm2d`
    (the same arguments, widths, ``iostrict`` and float mode; the same kernel).

    >>> import numpy as np, wageubn.function as nn
    >>> nn.BatchNorm1d(2)(np.full((3, 2), 0.3)).shape
    (3, 2)
    """

    _ranks, _layout = (2, 3), "(n, c) or (n, c, l)"

    def forward(self, input):
        return _wrap(super().forward(input))


class GroupNorm(Module):
    """torch.nn.GroupNorm: normalise ``num_groups`` groups of channels per sample, then a
    per-channel ``weight`` (ones) and ``bias`` (zeros) when ``affine``.  Float."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-05, affine: bool = True,
                 device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_groups = positive_int(num_groups, "num_groups")
        self.num_channels = positive_int(num_channels, "num_channels")
        if num_channels % num_groups:
            raise ValueError(f"num_groups: expected a divisor of num_channels ({num_channels}), got {num_groups}")
        self.eps = F._number(eps, "GroupNorm", "eps")
        self.affine = affine
        if affine:
            self.weight = Parameter(np.ones(num_channels, np.float32))
            if bias:
                self.bias = Parameter(np.zeros(num_channels, np.float32))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")

    def forward(self, input):
        x = np.asarray(input)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: input: expected (N, {self.num_channels}, ...), got shape {x.shape}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class LayerNorm(Module):
    """torch.nn.LayerNorm over the trailing ``normalized_shape`` dims, with element-wise
    ``weight`` (ones) and ``bias`` (zeros) when ``elementwise_affine``.  Float."""

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-05,
                 elementwise_affine: bool = True, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape, "LayerNorm")
        self.eps = F._number(eps, "LayerNorm", "eps")
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, np.float32))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, np.float32))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)
