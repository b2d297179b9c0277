"""``Embedding``: a float lookup table (WAGEUBN does not quantize it).

>>> import numpy as np, wageubn.function as nn
>>> emb = nn.Embedding(10, 3, padding_idx=0)
>>> emb(np.array([[0, 4]])).shape, emb.weight[0].tolist()
((1, 2, 3), [0.0, 0.0, 0.0])
"""
from typing import Optional

import numpy as np

from . import functional as F
from . import init
from .conv import positive_int
from .module import Module, Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """torch.nn.Embedding: ``weight`` (num_embeddings, embedding_dim) drawn from N(0, 1), the
    ``padding_idx`` row zeroed; ``_weight`` gives the table.  ``max_norm`` renormalises looked-up
    rows in place, as torch."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 max_norm: Optional[float] = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) or \
                    not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx: expected an int in [-{num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx!r}")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), np.float32), requires_grad=not _freeze)
            init.normal_(self.weight)
            if padding_idx is not None:
                self.weight[padding_idx] = 0
        else:
            if np.shape(_weight) != (num_embeddings, embedding_dim):
                raise ValueError(f"_weight: expected shape {(num_embeddings, embedding_dim)}, got {np.shape(_weight)}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: Optional[int] = None,
                        max_norm: Optional[float] = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, sparse: bool = False) -> "Embedding":
        """An Embedding holding a copy of the 2-d ``embeddings``."""
        if np.ndim(embeddings) != 2:
            raise ValueError(f"embeddings: expected a 2-d array, got shape {np.shape(embeddings)}")
        rows, cols = np.shape(embeddings)
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse:
            s += ", sparse=True"
        return s

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)
