"""wageubn: WAGEUBN fixed-point quantized networks on NumPy, computed by C kernels.

Model code written for torch runs after swapping its imports::

    import torch                     ->  import wageubn as torch
    import torch.nn as nn            ->  import wageubn.function as nn
    import torch.nn.functional as F  ->  import wageubn.function.functional as F
    from torch import nn             ->  from wageubn import nn   (wageubn.nn is wageubn.function)

``wageubn.Tensor`` is an ndarray subclass with torch's methods; layers and the top-level
functions return it.  ``wageubn.config`` sets the per-part bit widths of a whole network.

>>> import wageubn as torch
>>> from wageubn import nn
>>> with torch.no_grad():
...     out = nn.Linear(3, 2)(torch.ones(1, 3))
>>> type(out).__name__, out.size(), out.dtype == torch.float32
('Tensor', wageubn.Size([1, 2]), True)
"""
import numpy as _np

from ._threads import get_num_threads, set_num_threads
from .tensor import Tensor, Size, device
from . import function
from . import _nn_alias
nn = function
from . import config
from . import threshold, utils, wrapper, analyse
from . import cuda
from .function.init import manual_seed
from ._grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                         set_grad_enabled)
from ._torch_api import (abs, allclose, arange, argmax, argmin, argsort, as_tensor, cat, clamp, concat,
                         concatenate, empty, empty_like, equal, exp, flatten, from_numpy, full, full_like,
                         is_tensor, log, matmul, max, mean, min, numel, ones, ones_like, permute, rand,
                         rand_like, randint, randint_like, randn, randn_like, relu, reshape, sigmoid, softmax,
                         sort, sqrt, squeeze, stack, sum, tanh, tensor, topk, transpose, unsqueeze, where,
                         zeros, zeros_like)

__version__ = "0.1.0"

# torch's dtype names, as NumPy dtypes (``t.dtype == wageubn.float32`` and ``np.zeros(2, wageubn.long)``).
float32 = float = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
float16 = half = _np.dtype(_np.float16)
int8 = _np.dtype(_np.int8)
uint8 = _np.dtype(_np.uint8)
int16 = short = _np.dtype(_np.int16)
int32 = int = _np.dtype(_np.int32)
int64 = long = _np.dtype(_np.int64)
bool = _np.dtype(_np.bool_)
complex64 = cfloat = _np.dtype(_np.complex64)
complex128 = cdouble = _np.dtype(_np.complex128)

_DTYPES = ["float32", "float", "float64", "double", "float16", "half", "int8", "uint8", "int16", "short",
           "int32", "int", "int64", "long", "bool", "complex64", "cfloat", "complex128", "cdouble"]

__all__ = ["function", "nn", "config", "threshold", "utils", "wrapper", "analyse", "cuda",
           "get_num_threads", "set_num_threads", "manual_seed", "__version__",
           "Tensor", "Size", "device",
           "no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "is_grad_enabled",
           "is_inference_mode_enabled",
           "abs", "allclose", "arange", "argmax", "argmin", "argsort", "as_tensor", "cat", "clamp", "concat",
           "concatenate", "empty", "empty_like", "equal", "exp", "flatten", "from_numpy", "full", "full_like",
           "is_tensor", "log", "matmul", "max", "mean", "min", "numel", "ones", "ones_like", "permute", "rand",
           "rand_like", "randint", "randint_like", "randn", "randn_like", "relu", "reshape", "sigmoid", "softmax",
           "sort", "sqrt", "squeeze", "stack", "sum", "tanh", "tensor", "topk", "transpose", "unsqueeze",
           "where", "zeros", "zeros_like"] + _DTYPES
