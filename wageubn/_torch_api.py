"""torch's top-level functions, on :class:`~wageubn.Tensor`: ``import wageubn as torch``.

Creation follows torch's dtypes: floats default to float32, Python ints to int64.
Random tensors come from the generator :func:`wageubn.manual_seed` seeds (torch's
distributions, not torch's random stream).  Devices are accepted and checked ('cpu',
'cuda'), and both mean host memory.

>>> import wageubn as torch
>>> torch.tensor([1, 2]).dtype, torch.tensor([1.0]).dtype, torch.zeros(2, 3).dtype
(dtype('int64'), dtype('float32'), dtype('float32'))
>>> x = torch.arange(6).view(2, 3)
>>> torch.cat([x, x], dim=1).shape, torch.max(x, 1).indices
((2, 6), tensor([2, 2]))
"""
import builtins
import math
from typing import Any, Optional, Sequence

import numpy as np

from .tensor import Tensor, _check_device, _dim_index, _dtype, _nd_view, _no_generator, _plain, _shape_arg, _sigmoid, _wrap

__all__ = ["tensor", "from_numpy", "as_tensor", "is_tensor", "numel",
           "zeros", "ones", "empty", "full", "arange", "randn", "rand", "randint",
           "zeros_like", "ones_like", "empty_like", "full_like", "randn_like", "rand_like", "randint_like",
           "cat", "concat", "concatenate", "stack", "flatten", "sum", "mean", "max", "min", "argmax", "argmin",
           "exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "clamp", "matmul", "where",
           "unsqueeze", "squeeze", "reshape", "transpose", "permute", "topk", "sort", "argsort",
           "softmax", "equal", "allclose"]

_FLOAT = np.dtype(np.float32)
_LONG = np.dtype(np.int64)


def _torch_dtype(array: np.ndarray) -> np.ndarray:
    """Python numbers' NumPy dtypes (float64, complex128) as torch's defaults."""
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype == np.complex128:
        return array.astype(np.complex64)
    return array


def _real_data(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{where}: data: expected numbers (bool, int, float or complex) or nested "
                        f"sequences of them, got dtype {array.dtype}")
    return array


def _from_torch(data: Any) -> Any:
    if not isinstance(data, np.ndarray) and all(hasattr(data, a) for a in ("detach", "cpu", "numpy")):
        return data.detach().cpu().numpy()
    return data


def tensor(data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new tensor copied from ``data`` (nested sequences, a number or an array).

    Without ``dtype``: Python floats become float32 and ints int64, as torch; arrays keep theirs.

    >>> import wageubn as torch
    >>> torch.tensor([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    """
    _check_device(device)
    data = _from_torch(_plain(data))
    numpy_data = isinstance(data, (np.ndarray, np.generic))
    try:
        array = np.array(data, dtype=None if dtype is None else _dtype(dtype))
    except (ValueError, TypeError) as exc:
        raise TypeError(f"tensor: data: expected numbers or (equal-length) nested sequences of numbers, "
                        f"got {type(data).__name__}: {exc}") from None
    _real_data(array, "tensor")
    if dtype is None and not numpy_data:
        array = _torch_dtype(array)
    return array.view(Tensor).requires_grad_(requires_grad)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing ``ndarray``'s memory (writes show in both).

    >>> import numpy as np, wageubn as torch
    >>> a = np.zeros(2); t = torch.from_numpy(a); t[0] = 5; a
    array([5., 0.])
    """
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    _real_data(ndarray, "from_numpy")
    return _nd_view(ndarray, Tensor)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor, sharing memory with an array of the requested dtype, else a copy."""
    _check_device(device)
    data = _from_torch(data)
    if isinstance(data, np.ndarray):
        return _wrap(_real_data(np.asarray(data, dtype=None if dtype is None else _dtype(dtype)), "as_tensor"))
    return tensor(data, dtype=dtype)


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`~wageubn.Tensor`."""
    return isinstance(obj, Tensor)


def numel(input: Any) -> int:
    """The number of elements of ``input``."""
    return int(np.size(_tensor_arg(input, "numel")))


# ------------------------------------------------------------------------------- creation

def _creation_dtype(dtype: Any, default: np.dtype = _FLOAT) -> np.dtype:
    return default if dtype is None else _dtype(dtype)


def _size_arg(size: Sequence[Any], where: str) -> tuple:
    shape = _shape_arg(tuple(size), where)
    if builtins.any(n < 0 for n in shape):
        raise ValueError(f"{where}: size: expected non-negative ints, got {shape}")
    return shape


def _finish(array: np.ndarray, device: Any, requires_grad: bool, out: Any = None) -> Tensor:
    _check_device(device)
    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != array.shape:
            raise ValueError(f"out: expected an array of shape {array.shape}, got {out!r}")
        np.copyto(out, array, casting="unsafe")
        return out
    return array.view(Tensor).requires_grad_(requires_grad)


def zeros(*size: Any, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Zeros of ``size`` (ints or one sequence), float32 by default."""
    return _finish(np.zeros(_size_arg(size, "zeros"), _creation_dtype(dtype)), device, requires_grad, out)


def ones(*size: Any, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Ones of ``size``, float32 by default."""
    return _finish(np.ones(_size_arg(size, "ones"), _creation_dtype(dtype)), device, requires_grad, out)


def empty(*size: Any, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
          requires_grad: bool = False, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """An uninitialised tensor of ``size``, float32 by default."""
    return _finish(np.empty(_size_arg(size, "empty"), _creation_dtype(dtype)), device, requires_grad, out)


def _scalar_dtype(value: Any) -> np.dtype:
    """torch's dtype for a Python scalar: bool, int64, float32 or complex64."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return _LONG
    if isinstance(value, complex):
        return np.dtype(np.complex64)
    if isinstance(value, np.generic):
        return value.dtype
    return _FLOAT


def full(size: Any, fill_value: Any, *, out: Any = None, dtype: Any = None, layout: Any = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere; the dtype follows the value (bool, int64, float32) unless given."""
    dtype = _scalar_dtype(fill_value) if dtype is None else _dtype(dtype)
    return _finish(np.full(_size_arg((size,), "full"), fill_value, dtype), device, requires_grad, out)


def arange(start: Any, end: Any = None, step: Any = 1, *, out: Any = None, dtype: Any = None,
           layout: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """``[start, end)`` by ``step``: int64 when all three are ints, float32 otherwise.

    >>> import wageubn as torch
    >>> torch.arange(3), torch.arange(0, 1, 0.25)
    (tensor([0, 1, 2]), tensor([0.  , 0.25, 0.5 , 0.75], dtype=float32))
    """
    if end is None:
        start, end = 0, start
    values = (start, end, step)
    for name, value in zip(("start", "end", "step"), values):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(value):
            raise TypeError(f"arange: {name}: expected a finite number, got {value!r}")
    if step == 0:
        raise ValueError("arange: step: expected a non-zero number, got 0")
    integral = builtins.all(isinstance(v, (int, np.integer)) for v in values)
    default = _LONG if integral else _FLOAT
    array = np.arange(start, end, step, dtype=np.int64 if integral else np.float64)
    return _finish(array.astype(_creation_dtype(dtype, default)), device, requires_grad, out)


def _rng():
    from .function.init import _rng as generator
    return generator()


def randn(*size: Any, generator: Any = None, out: Any = None, dtype: Any = None, layout: Any = None,
          device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal values of ``size``, float32 by default."""
    _no_generator(generator)
    shape = _size_arg(size, "randn")
    return _finish(_rng().standard_normal(shape).astype(_creation_dtype(dtype)), device, requires_grad, out)


def rand(*size: Any, generator: Any = None, out: Any = None, dtype: Any = None, layout: Any = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform values in ``[0, 1)`` of ``size``, float32 by default."""
    _no_generator(generator)
    shape = _size_arg(size, "rand")
    return _finish(_rng().random(shape).astype(_creation_dtype(dtype)), device, requires_grad, out)


def randint(*args: Any, size: Any = None, generator: Any = None, out: Any = None, dtype: Any = None,
            layout: Any = None, device: Any = None, requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """Integers in ``[low, high)``: ``randint(high, size)`` or ``randint(low, high, size)``; int64."""
    _no_generator(generator)
    low, high = kwargs.pop("low", 0), kwargs.pop("high", None)
    if kwargs:
        raise TypeError(f"randint: unexpected keyword argument(s) {sorted(kwargs)}")
    args = list(args)
    if size is None and args and isinstance(args[-1], (tuple, list)):
        size = args.pop()
    if len(args) == 2:
        low, high = args
    elif len(args) == 1:
        if high is None:
            high = args[0]
        else:
            low = args[0]
    elif args:
        raise TypeError(f"randint: expected (high, size) or (low, high, size), got {tuple(args)!r}")
    if size is None or high is None:
        raise TypeError("randint: needs high and size, e.g. randint(10, (2, 3))")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"randint: {name}: expected an int, got {value!r}")
    if low >= high:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    shape = _size_arg((size,), "randint")
    values = _rng().integers(low, high, size=shape, dtype=np.int64)
    return _finish(values.astype(_creation_dtype(dtype, _LONG)), device, requires_grad, out)


def _like(input: Any, where: str) -> np.ndarray:
    return _nd_view(_tensor_arg(input, where), np.ndarray)


def zeros_like(input: Any, *, dtype: Any = None, layout: Any = None, device: Any = None,
               requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    """Zeros shaped like ``input``, its dtype unless ``dtype``."""
    a = _like(input, "zeros_like")
    return _finish(np.zeros(a.shape, _creation_dtype(dtype, a.dtype)), device, requires_grad)


def ones_like(input: Any, *, dtype: Any = None, layout: Any = None, device: Any = None,
              requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    """Ones shaped like ``input``, its dtype unless ``dtype``."""
    a = _like(input, "ones_like")
    return _finish(np.ones(a.shape, _creation_dtype(dtype, a.dtype)), device, requires_grad)


def empty_like(input: Any, *, dtype: Any = None, layout: Any = None, device: Any = None,
               requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    """Uninitialised, shaped like ``input``, its dtype unless ``dtype``."""
    a = _like(input, "empty_like")
    return _finish(np.empty(a.shape, _creation_dtype(dtype, a.dtype)), device, requires_grad)


def full_like(input: Any, fill_value: Any, *, dtype: Any = None, layout: Any = None, device: Any = None,
              requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    """``fill_value`` everywhere, shaped like ``input``, its dtype unless ``dtype``."""
    a = _like(input, "full_like")
    return _finish(np.full(a.shape, fill_value, _creation_dtype(dtype, a.dtype)), device, requires_grad)


def randn_like(input: Any, *, dtype: Any = None, layout: Any = None, device: Any = None,
               requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    """Standard normal values shaped like ``input``, its dtype unless ``dtype``."""
    a = _like(input, "randn_like")
    return randn(a.shape, dtype=_creation_dtype(dtype, a.dtype), device=device, requires_grad=requires_grad)


def rand_like(input: Any, *, dtype: Any = None, layout: Any = None, device: Any = None,
              requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    """Uniform ``[0, 1)`` values shaped like ``input``, its dtype unless ``dtype``."""
    a = _like(input, "rand_like")
    return rand(a.shape, dtype=_creation_dtype(dtype, a.dtype), device=device, requires_grad=requires_grad)


def randint_like(input: Any, low: Any = 0, high: Any = None, *, dtype: Any = None, layout: Any = None,
                 device: Any = None, requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    """``randint`` shaped like ``input``: ``randint_like(input, high)`` or ``(input, low, high)``."""
    a = _like(input, "randint_like")
    if high is None:
        low, high = 0, low
    return randint(low, high, a.shape, dtype=_creation_dtype(dtype, a.dtype), device=device)


# ------------------------------------------------------------------------------- operations

def _tensor_arg(value: Any, where: str) -> Tensor:
    """``value`` (a Tensor or ndarray) as a Tensor view; anything else is a TypeError."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        return _wrap(value)
    raise TypeError(f"{where}: input: expected a Tensor or numpy.ndarray, got {type(value).__name__}")


def _sequence_arg(tensors: Any, where: str) -> list:
    if isinstance(tensors, np.ndarray) or not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{where}: tensors: expected a non-empty list or tuple of tensors, "
                        f"got {type(tensors).__name__}")
    return [_nd_view(_tensor_arg(t, where), np.ndarray) for t in tensors]


def cat(tensors: Sequence[Any], dim: int = 0, *, out: Any = None) -> Tensor:
    """``tensors`` joined along the existing dimension ``dim``."""
    arrays = _sequence_arg(tensors, "cat")
    result = np.concatenate(arrays, axis=_dim_index(dim, arrays[0].ndim))
    return _finish(result, None, False, out)


concat = concatenate = cat


def stack(tensors: Sequence[Any], dim: int = 0, *, out: Any = None) -> Tensor:
    """``tensors`` (of one shape) joined along a new dimension ``dim``."""
    arrays = _sequence_arg(tensors, "stack")
    result = np.stack(arrays, axis=_dim_index(dim, arrays[0].ndim + 1))
    return _finish(result, None, False, out)


def flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dimensions ``start_dim`` to ``end_dim`` merged into one (a view when possible)."""
    return _tensor_arg(input, "flatten").flatten(start_dim, end_dim)


def _method(name: str, doc: str):
    def function(input: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(_tensor_arg(input, name), name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return function


sum = _method("sum", "torch.sum: ``sum(input)``, ``sum(input, dim, keepdim=False, *, dtype=None)``.")
mean = _method("mean", "torch.mean: ``mean(input)``, ``mean(input, dim, keepdim=False, *, dtype=None)``.")
max = _method("max", "torch.max: ``max(input)`` (0-d), ``max(input, dim, keepdim=False)`` -> "
                     "``(values, indices)``, ``max(input, other)`` (element-wise).")
min = _method("min", "torch.min: as :func:`max`, for the minimum.")
argmax = _method("argmax", "torch.argmax: ``argmax(input, dim=None, keepdim=False)``.")
argmin = _method("argmin", "torch.argmin: ``argmin(input, dim=None, keepdim=False)``.")
exp = _method("exp", "torch.exp (integer input computes in float32).")
log = _method("log", "torch.log (integer input computes in float32).")
sqrt = _method("sqrt", "torch.sqrt (integer input computes in float32).")
abs = _method("abs", "torch.abs.")
tanh = _method("tanh", "torch.tanh (integer input computes in float32).")
relu = _method("relu", "torch.relu: ``max(input, 0)``.")
clamp = _method("clamp", "torch.clamp: ``clamp(input, min=None, max=None)``.")
matmul = _method("matmul", "torch.matmul.")
unsqueeze = _method("unsqueeze", "torch.unsqueeze: ``unsqueeze(input, dim)``.")
squeeze = _method("squeeze", "torch.squeeze: ``squeeze(input, dim=None)``.")
reshape = _method("reshape", "torch.reshape: ``reshape(input, shape)``.")
transpose = _method("transpose", "torch.transpose: ``transpose(input, dim0, dim1)``.")
permute = _method("permute", "torch.permute: ``permute(input, dims)``.")
topk = _method("topk", "torch.topk: ``topk(input, k, dim=-1, largest=True, sorted=True)``.")
sort = _method("sort", "torch.sort: ``sort(input, dim=-1, descending=False)`` -> ``(values, indices)``.")
argsort = _method("argsort", "torch.argsort: ``argsort(input, dim=-1, descending=False)``.")
softmax = _method("softmax", "torch.softmax: ``softmax(input, dim)``.")
equal = _method("equal", "torch.equal: True when both have one shape and the same values.")
allclose = _method("allclose", "torch.allclose.")


def sigmoid(input: Any) -> Tensor:
    """torch.sigmoid: ``1 / (1 + exp(-input))``, without overflow for large ``|input|``."""
    return _wrap(_sigmoid(_tensor_arg(input, "sigmoid")))


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``input`` where ``condition``, else ``other``; ``where(condition)`` the indices of True."""
    condition = np.asarray(_plain(condition))
    if input is None and other is None:
        return tuple(_wrap(i) for i in np.nonzero(condition))
    return _wrap(np.where(condition, _plain(input), _plain(other)))
