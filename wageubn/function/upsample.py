"""``Upsample``: float resizing (``F.interpolate``); WAGEUBN does not quantize it.

>>> import numpy as np, wageubn.function as nn
>>> nn.Upsample(scale_factor=2)(np.ones((1, 3, 4, 5))).shape
(1, 3, 8, 10)
"""
from typing import Optional

from . import functional as F
from .module import Module

__all__ = ["Upsample"]


class Upsample(Module):
    """torch.nn.Upsample: ``size`` or ``scale_factor``, mode 'nearest', 'nearest-exact', 'linear',
    'bilinear' or 'trilinear'."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None):
        super().__init__()
        if mode not in F._INTERP_RANKS:
            raise ValueError(f"mode: expected one of {sorted(F._INTERP_RANKS)}, got {mode!r}")
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)
