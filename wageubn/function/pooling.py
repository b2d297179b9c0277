"""Max and average pooling (``torch.nn.MaxPool1d/2d/3d``, ``AvgPool1d/2d/3d``) on NumPy arrays.

The constructors, attributes and ``repr`` are torch's.  Inputs are ``(C, *spatial)`` or
``(N, C, *spatial)``; the output has the same rank and is float32 (the kernels compute in
float32 whatever the input dtype).  Max pooling pads with -inf, propagates NaN and, with
``return_indices``, also returns int64 flat indices into each input plane, as torch does.

>>> import numpy as np
>>> from wageubn.function.pooling import MaxPool2d, AvgPool1d
>>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
>>> MaxPool2d(2)(x)
tensor([[[[ 5.,  7.],
          [13., 15.]]]], dtype=float32)
>>> AvgPool1d(2)(np.array([[1.0, 3.0, 5.0, 7.0]]))
tensor([[2., 6.]], dtype=float32)
"""
import collections.abc
import math
from typing import Optional, Tuple

import numpy as np

from .. import _C
from .._threads import get_num_threads
from ._layer import as_input
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"]

_INT64_MAX = 2**63 - 1
_LAYOUTS = {1: "(N, C, L) or (C, L)", 2: "(N, C, H, W) or (C, H, W)",
            3: "(N, C, D, H, W) or (C, D, H, W)"}


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _ints(value, n: int, name: str, minimum: int) -> Tuple[int, ...]:
    """An int, or a sequence of 1 or ``n`` ints, as ``n`` ints each in [``minimum``, 2**63 - 1].

    Sizes derived from them (padded extents, window spans, output sizes) are checked by the
    kernels' shape check, which names the argument that overflows.

    >>> _ints(2, 3, "stride", 1)
    (2, 2, 2)
    >>> _ints(2**64, 1, "padding", 0)
    Traceback (most recent call last):
    ...
    ValueError: padding: expected values in [0, 2**63 - 1], got 18446744073709551616
    """
    items = (value,) if _is_int(value) else tuple(value) if isinstance(value, (tuple, list)) else None
    if items is None or len(items) not in (1, n) or not all(_is_int(v) for v in items):
        raise TypeError(f"{name}: expected an int or a tuple of {n} ints, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{name}: expected values >= {minimum}, got {value!r}")
    if max(int(v) for v in items) > _INT64_MAX:
        raise ValueError(f"{name}: expected values in [{minimum}, 2**63 - 1], got {value!r}")
    return tuple(int(v) for v in items) * (n // len(items))


class _PoolNd(Module):
    """Shared shape logic: validate the window, fold (N, C) into planes of (d, h, w), call _C."""

    _dims = 0  # 1, 2 or 3 spatial dimensions, set by the concrete classes

    def _window(self):
        """(kernel, stride, padding, dilation) as 3-tuples for _C, checked like torch.

        Memoised on the attributes' current values, so later changes still take effect."""
        key = (self.kernel_size, self.stride, self.padding, getattr(self, "dilation", 1))
        cached = self.__dict__.get("_window_cache")
        if cached is not None and cached[0] == key and all(type(a) is type(b) for a, b in zip(cached[0], key)):
            return cached[1]
        window = self._check_window()
        self.__dict__["_window_cache"] = (key, window)
        return window

    def _check_window(self):
        n = self._dims
        stride = self.stride
        if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
            stride = self.kernel_size  # torch's functional default
        k = _ints(self.kernel_size, n, "kernel_size", 1)
        s = _ints(stride, n, "stride", 1)
        p = _ints(self.padding, n, "padding", 0)
        d = _ints(getattr(self, "dilation", 1), n, "dilation", 1)
        if any(pi > ki // 2 for pi, ki in zip(p, k)):
            raise ValueError(f"padding: should be at most half of kernel_size, got padding={self.padding!r} "
                             f"and kernel_size={self.kernel_size!r}")
        pre = 3 - n
        return (1,) * pre + k, (1,) * pre + s, (0,) * pre + p, (1,) * pre + d

    def _kernel(self, planes: np.ndarray, k, s, p, d):
        raise NotImplementedError

    def forward(self, input):
        n, name = self._dims, type(self).__name__
        window = self._window()
        x = as_input(input, (n + 1, n + 2), name, _LAYOUTS[n])
        if 0 in x.shape[x.ndim - n - 1:]:
            raise ValueError(f"{name}: input: expected non-zero sizes except the batch, got shape {x.shape}")
        lead = x.shape[:-n]
        planes = x.reshape((math.prod(lead),) + (1,) * (3 - n) + x.shape[-n:])
        result = self._kernel(planes, *window)
        if isinstance(result, tuple):
            return tuple(r.reshape(lead + r.shape[4 - n:]) for r in result)
        return result.reshape(lead + result.shape[4 - n:])


class _MaxPoolNd(_PoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode
        self._window()  # fail at construction on a bad window

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                f", dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def _kernel(self, planes, k, s, p, d):
        return _C.maxpool(planes, k, s, p, d, ceil_mode=bool(self.ceil_mode),
                          return_indices=bool(self.return_indices), nthreads=get_num_threads())


class _AvgPoolNd(_PoolNd):
    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def _divisor(self) -> int:
        div = getattr(self, "divisor_override", None)  # AvgPool1d has none
        if div is None:
            return 0
        if not _is_int(div):
            raise TypeError(f"divisor_override: expected None or an int, got {div!r}")
        if div == 0:
            raise ValueError("divisor_override: must not be zero")
        return int(div)

    def _kernel(self, planes, k, s, p, d):
        div = self._divisor()
        out = _C.avgpool(planes, k, s, p, d, ceil_mode=bool(self.ceil_mode),
                         count_include_pad=bool(self.count_include_pad),
                         divisor_override=abs(div), nthreads=get_num_threads())
        return np.negative(out, out=out) if div < 0 else out  # sum / -q == -(sum / q) exactly


class MaxPool1d(_MaxPoolNd):
    """torch.nn.MaxPool1d: the maximum over windows of an (N, C, L) or (C, L) input.

    >>> import numpy as np
    >>> out, idx = MaxPool1d(3, stride=2, padding=1, return_indices=True)(np.array([[4.0, 1, 9, 2, 7]]))
    >>> out, idx
    (tensor([[4., 9., 7.]], dtype=float32), tensor([[0, 2, 4]]))
    """

    _dims = 1


class MaxPool2d(_MaxPoolNd):
    """torch.nn.MaxPool2d over an (N, C, H, W) or (C, H, W) input.

    >>> import numpy as np
    >>> MaxPool2d(3, stride=2)(np.zeros((8, 3, 15, 15))).shape
    (8, 3, 7, 7)
    """

    _dims = 2


class MaxPool3d(_MaxPoolNd):
    """torch.nn.MaxPool3d over an (N, C, D, H, W) or (C, D, H, W) input.

    >>> import numpy as np
    >>> MaxPool3d((1, 2, 2), ceil_mode=True)(np.zeros((2, 4, 5, 5))).shape
    (2, 4, 3, 3)
    """

    _dims = 3


class AvgPool1d(_AvgPoolNd):
    """torch.nn.AvgPool1d over an (N, C, L) or (C, L) input (sizes stored as 1-tuples).

    >>> import numpy as np
    >>> AvgPool1d(2, padding=1, count_include_pad=False)(np.array([[2.0, 4.0, 6.0]]))
    tensor([[2., 5.]], dtype=float32)
    """

    _dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        single = lambda v: tuple(v) if isinstance(v, collections.abc.Iterable) else (v,)  # torch's _single
        self.kernel_size = single(kernel_size)
        self.stride = single(stride if stride is not None else kernel_size)
        self.padding = single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self._window()


class _AvgPool23d(_AvgPoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: Optional[int] = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        self._window()
        self._divisor()


class AvgPool2d(_AvgPool23d):
    """torch.nn.AvgPool2d over an (N, C, H, W) or (C, H, W) input.

    >>> import numpy as np
    >>> AvgPool2d(2, divisor_override=1)(np.ones((1, 2, 2)))
    tensor([[[4.]]], dtype=float32)
    """

    _dims = 2


class AvgPool3d(_AvgPool23d):
    """torch.nn.AvgPool3d over an (N, C, D, H, W) or (C, D, H, W) input.

    >>> import numpy as np
    >>> AvgPool3d(2, stride=1)(np.ones((3, 3, 3, 3))).shape
    (3, 2, 2, 2)
    """

    _dims = 3
