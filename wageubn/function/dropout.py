"""``Dropout`` and ``Dropout2d``: float (WAGEUBN does not quantize them); the identity in eval mode.

Training-mode masks come from the seeded generator (``wageubn.manual_seed``).

>>> import numpy as np, wageubn, wageubn.function as nn
>>> drop = nn.Dropout(0.5)
>>> wageubn.manual_seed(0); sorted(set(drop(np.ones(8)).tolist()))
[0.0, 2.0]
>>> drop.eval()(np.ones(3)).tolist()
[1.0, 1.0, 1.0]
"""
from . import functional as F
from .module import Module

__all__ = ["Dropout", "Dropout2d"]


class Dropout(Module):
    """torch.nn.Dropout: zero each entry with probability ``p`` in training mode, scale the rest
    by 1 / (1 - p)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = F._check_p(p)
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout2d(Dropout):
    """torch.nn.Dropout2d: zero whole channels of (N, C, H, W) with probability ``p`` in training mode."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)
