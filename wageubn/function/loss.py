"""Losses as modules: ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss`` (float: WAGEUBN quantizes
the network, not its loss).  Each returns a 0-d float32 Tensor (or per-element losses with
``reduction='none'``).

>>> import numpy as np, wageubn.function as nn
>>> round(float(nn.CrossEntropyLoss()(np.zeros((2, 4)), np.array([1, 2]))), 4)   # log(4)
1.3863
>>> float(nn.MSELoss(reduction="sum")(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
5.0
"""

import numpy as np

from . import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss"]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = F._reduction(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        if weight is not None:
            w = np.array(F._real(weight, type(self).__name__, "weight"), np.float32)
            if w.ndim != 1:
                raise ValueError(f"weight: expected a 1-d array of class weights, got shape {w.shape}")
            weight = w
        self.register_buffer("weight", weight)


class NLLLoss(_WeightedLoss):
    """torch.nn.NLLLoss on log-probabilities (N, C, ...) and class indices (N, ...)."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """torch.nn.CrossEntropyLoss on logits: class indices or probabilities as target, with
    ``weight``, ``ignore_index``, ``reduction`` and ``label_smoothing`` as torch."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        eps = F._number(label_smoothing, "CrossEntropyLoss", "label_smoothing")
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class MSELoss(_Loss):
    """torch.nn.MSELoss: the mean (or sum, or each) of the squared differences."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


