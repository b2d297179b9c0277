"""wageubn.Tensor: the one tensor type, an ndarray subclass with torch's methods.

Every layer, functional and top-level function returns one.  It *is* a ``numpy.ndarray``:
``isinstance`` checks, ufuncs and NumPy functions keep working, ``np.asarray(t)`` is the
plain array (no copy).  ``_wrap`` is the single conversion of an ndarray result to a Tensor.

Where NumPy and torch give one name two meanings (``size``, ``view``, ``std``, ``max``,
``sort``, ``transpose``, ``repeat``, ...), a call written with NumPy's keywords (``axis=``,
``ddof=``, ``keepdims=``, ...) gets NumPy's meaning and any other call torch's; NumPy's own
functions (``np.std(t)``, ``np.sort(t)``, ``np.unique(t)``) run on the plain array and keep
NumPy's meaning whatever they call.  docs/compatibility.md lists every such name.

>>> import numpy as np
>>> import wageubn
>>> t = wageubn.tensor([[1.0, 5.0], [3.0, 2.0]])
>>> t.size(), t.size, t.dim()
(wageubn.Size([2, 2]), 4, 2)
>>> t.max(1)
max(values=tensor([5., 3.], dtype=float32), indices=tensor([1, 0]))
>>> type(np.exp(t)).__name__, type(np.asarray(t)).__name__
('Tensor', 'ndarray')
>>> round(float(t.std()), 4), round(float(np.std(t)), 4)   # torch's unbiased default; NumPy's ddof=0
(1.7078, 1.479)
"""
from __future__ import annotations

import copy as _copy
import math
from collections import namedtuple
from typing import Any, Optional, Tuple

import numpy as np

__all__ = ["Tensor", "Size", "device"]

_nd_view = np.ndarray.view
_nd_size = np.ndarray.size.__get__


# ---------------------------------------------------------------------------- small types

class Size(tuple):
    """A tensor's shape, as ``torch.Size``: a tuple of ints.

    >>> s = Size([2, 3]); s, s.numel(), s[1:]
    (wageubn.Size([2, 3]), 6, wageubn.Size([3]))
    """

    def numel(self) -> int:
        """The number of elements of a tensor of this shape."""
        return math.prod(self)

    def __getitem__(self, index):  # type: ignore[override]
        item = tuple.__getitem__(self, index)
        return Size(item) if isinstance(index, slice) else item

    def __add__(self, other):  # type: ignore[override]
        return Size(tuple.__add__(self, tuple(other)))

    def __repr__(self) -> str:
        return f"wageubn.Size({list(self)})"


class _ElementCount(int):
    """``Tensor.size``: the element count (an int, for NumPy code) that is also torch's
    ``size()`` method: ``t.size()`` is the :class:`Size`, ``t.size(dim)`` one extent."""

    _shape: Tuple[int, ...]

    def __call__(self, dim: Optional[int] = None) -> Any:
        if dim is None:
            return Size(self._shape)
        return self._shape[_dim_index(dim, len(self._shape), "dim")]


class device(str):
    """A device name, as ``torch.device``; also the str NumPy's ``ndarray.device`` gives.

    Only ``"cpu"`` and ``"cuda"`` (``"cuda:N"``) exist; both name host memory here, so
    moving a tensor or module to either is a no-op.

    >>> device("cpu"), device("cuda:1").index, device("cpu") == "cpu"
    (device(type='cpu'), 1, True)
    """

    type: str
    index: Optional[int]

    def __new__(cls, type: Any, index: Optional[int] = None) -> "device":
        if isinstance(type, device) and index is None:
            return type
        if isinstance(type, int) and not isinstance(type, bool):
            type, index = "cuda", type
        if not isinstance(type, str):
            raise TypeError(f"device: expected a str such as 'cpu' or 'cuda:0', got {type!r}")
        kind, colon, number = type.partition(":")
        if kind not in ("cpu", "cuda") or (colon and not number.isdigit()) \
                or (colon and index is not None):
            raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {type!r}")
        if colon:
            index = int(number)
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise ValueError(f"device: index: expected a non-negative int, got {index!r}")
        self = str.__new__(cls, kind if index is None else f"{kind}:{index}")
        self.type, self.index = kind, index
        return self

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __reduce__(self):
        return (device, (self.type, self.index))


_CPU = device("cpu")


def _check_device(value: Any, name: str = "device") -> None:
    """Validate a device argument (``None``, a str, an int or a :class:`device`)."""
    if value is None:
        return
    device(value)


def _dtype(value: Any, name: str = "dtype") -> np.dtype:
    """``value`` (a NumPy dtype, scalar type or name) as a NumPy dtype."""
    try:
        result = np.dtype(value)
    except TypeError:
        raise TypeError(f"{name}: expected a dtype such as wageubn.float32, got {value!r}") from None
    return result


def _return_type(name: str):
    cls = namedtuple(name, ["values", "indices"])
    cls.__module__ = "wageubn.return_types"
    cls.__repr__ = lambda self: f"{name}(values={self.values!r}, indices={self.indices!r})"
    return cls


_Max, _Min, _Sort, _Topk = (_return_type(n) for n in ("max", "min", "sort", "topk"))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _dim_index(dim: Any, ndim: int, name: str = "dim") -> int:
    """``dim`` in ``[-ndim, ndim)`` as a non-negative index (torch's range; 0-d counts as 1-d)."""
    if not _is_int(dim):
        raise TypeError(f"{name}: expected an int, got {dim!r}")
    span = max(ndim, 1)
    if not -span <= dim < span:
        raise IndexError(f"{name}: dimension out of range (expected to be in range of "
                         f"[{-span}, {span - 1}], but got {dim})")
    return int(dim) % span


def _shape_arg(args: Tuple[Any, ...], name: str) -> Tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` or ``f(Size)`` as a tuple of ints."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if not all(_is_int(a) for a in args):
        raise TypeError(f"{name}: expected ints or one sequence of ints, got {args!r}")
    return tuple(int(a) for a in args)


def _axis_arg(dim: Any) -> Any:
    return tuple(dim) if isinstance(dim, list) else dim


def _numpy_reduction(args: Tuple[Any, ...], kwargs: dict) -> Tuple[Tuple[Any, ...], dict]:
    """A torch-style ``(dim, keepdim)`` reduction call as NumPy's ``(axis, keepdims)``."""
    if "dim" in kwargs or "keepdim" in kwargs or (len(args) >= 2 and isinstance(args[1], (bool, np.bool_))):
        kwargs = dict(kwargs)
        if len(args) >= 2 and isinstance(args[1], (bool, np.bool_)):
            kwargs["keepdim"], args = bool(args[1]), args[:1] + args[2:]
        if "dim" in kwargs:
            if args:
                raise TypeError("dim: given both positionally and as a keyword")
            args = (kwargs.pop("dim"),)
        if "keepdim" in kwargs:
            kwargs["keepdims"] = kwargs.pop("keepdim")
    if args:
        args = (_axis_arg(args[0]),) + tuple(args[1:])
    return args, kwargs


def _argsort(array: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort; descending keeps equal values in index order (NaN counts as largest)."""
    if not descending:
        return np.argsort(array, axis=axis, kind="stable")
    n = array.shape[axis]
    flipped = np.argsort(np.flip(array, axis), axis=axis, kind="stable")
    return (n - 1) - np.flip(flipped, axis)


def _floating(array: np.ndarray) -> np.ndarray:
    """torch's maths on bool / integer input computes in the default float dtype (float32)."""
    return array.astype(np.float32) if array.dtype.kind in "biu" else array


def _sigmoid(x: np.ndarray) -> np.ndarray:
    x = _floating(np.asarray(x))
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------- Tensor

_NUMPY_STD_KEYWORDS = frozenset(("axis", "dtype", "out", "ddof", "keepdims", "where", "mean"))
_NUMPY_MAX_KEYWORDS = frozenset(("axis", "out", "keepdims", "initial", "where"))


class Tensor(np.ndarray):
    """An ndarray with torch's tensor methods (see the module docstring for the rules).

    ``Tensor(data)`` converts data to float32 and ``Tensor(2, 3)`` is an uninitialised
    float32 tensor of that shape, as ``torch.Tensor``; prefer :func:`wageubn.tensor`.

    >>> Tensor([1, 2])
    tensor([1., 2.], dtype=float32)
    >>> t = Tensor(2, 3).zero_(); t.view(3, 2).shape, t.requires_grad, t.is_leaf
    ((3, 2), False, True)
    """

    _requires_grad = False
    grad: Optional["Tensor"] = None
    grad_fn: Any = None
    __hash__ = object.__hash__  # as torch: by identity, so tensors can key dicts and sets

    def __new__(cls, *args: Any) -> "Tensor":
        if not args or all(_is_int(a) for a in args):
            return np.empty(tuple(int(a) for a in args) or (0,), np.float32).view(cls)
        if len(args) != 1:
            raise TypeError(f"Tensor: expected one data argument or ints, got {args!r}")
        return np.array(_plain(args[0]), dtype=np.float32).view(cls)

    # -- NumPy's functions keep NumPy's meaning: they run on the plain array --------------

    def __array_function__(self, func, types, args, kwargs):
        out = kwargs.get("out")
        result = func(*_plain(args), **_plain(kwargs))
        if out is not None and result is not None:
            return out
        return _wrap(result)

    # -- autograd's attributes (no graph yet) ---------------------------------------------

    @property
    def requires_grad(self) -> bool:
        """Whether autograd should record operations on this tensor (stored, not yet used)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"requires_grad: expected a bool, got {value!r}")
        if value and self.dtype.kind not in "fc":
            raise RuntimeError("requires_grad: only Tensors of floating point and complex dtype "
                               f"can require gradients, got dtype {self.dtype}")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set :attr:`requires_grad` in place; returns ``self``."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors no recorded operation produced (all of them until autograd)."""
        return self.grad_fn is None

    # -- shape and layout ------------------------------------------------------------------

    @property  # type: ignore[override]
    def size(self) -> _ElementCount:
        """The element count (NumPy) that is also callable as torch's ``size(dim=None)``."""
        count = _ElementCount(_nd_size(self))
        count._shape = self.shape
        return count

    def dim(self) -> int:
        """The number of dimensions."""
        return self.ndim

    ndimension = dim

    def numel(self) -> int:
        """The number of elements."""
        return _nd_size(self)

    nelement = numel

    def element_size(self) -> int:
        """Bytes per element."""
        return self.itemsize

    def view(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """torch's ``view(*shape)`` (no copy, RuntimeError if impossible), or NumPy's
        ``view(dtype)`` / ``view(type)`` when given a dtype or an ndarray class."""
        if kwargs or not args or not (_is_int(args[0]) or isinstance(args[0], (tuple, list))):
            return _nd_view(self, *args, **kwargs)
        shape = _shape_arg(args, "view")
        try:
            out = np.ndarray.reshape(self, shape)
        except ValueError:
            raise RuntimeError(f"view: shape {list(shape)} is invalid for input of size "
                               f"{_nd_size(self)}") from None
        if _nd_size(out) and not np.may_share_memory(out, self):
            raise RuntimeError(f"view: shape {list(shape)} needs a copy of this non-contiguous tensor "
                               f"of shape {list(self.shape)}; use .reshape(...) instead")
        return out

    def view_as(self, other: np.ndarray) -> "Tensor":
        """``view(other.shape)``."""
        return self.view(np.shape(other))

    def flatten(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``flatten(start_dim=0, end_dim=-1)`` (a view when possible); with no
        arguments or NumPy's ``order`` a copy, as NumPy promises (torch allows either)."""
        if not (args or kwargs) or "order" in kwargs or (args and isinstance(args[0], str)):
            return np.ndarray.flatten(self, *args, **kwargs)
        start, end = _bind(args, kwargs, ("start_dim", "end_dim"), (0, -1), "flatten")
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _dim_index(start, self.ndim, "start_dim"), _dim_index(end, self.ndim, "end_dim")
        if s > e:
            raise RuntimeError("flatten: start_dim cannot come after end_dim")
        shape = self.shape
        return self.reshape(shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])

    def permute(self, *dims: Any) -> "Tensor":
        """The dimensions reordered (a view)."""
        order = _shape_arg(dims, "permute")
        if len(order) != self.ndim:
            raise RuntimeError(f"permute: dims: expected {self.ndim} dimensions, got {list(order)}")
        order = tuple(_dim_index(d, self.ndim, "dims") for d in order)
        if len(set(order)) != len(order):
            raise RuntimeError(f"permute: dims: repeated dimension in {list(dims)}")
        return np.ndarray.transpose(self, order)

    def transpose(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``transpose(dim0, dim1)`` swaps two dimensions; NumPy's ``transpose()``,
        ``transpose(axes)`` and ``transpose(*axes)`` of three or more axes permute."""
        if kwargs or (len(args) == 2 and _is_int(args[0]) and _is_int(args[1])):
            d0, d1 = _bind(args, kwargs, ("dim0", "dim1"), (None, None), "transpose")
            return np.swapaxes(_nd_view(self, np.ndarray), _dim_index(d0, self.ndim, "dim0"),
                               _dim_index(d1, self.ndim, "dim1")).view(Tensor)
        return np.ndarray.transpose(self, *args)

    def t(self) -> "Tensor":
        """The transpose of a tensor of at most 2 dimensions."""
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return np.ndarray.transpose(self)

    def contiguous(self, memory_format: Any = None) -> "Tensor":
        """``self`` if C-contiguous, else a C-contiguous copy."""
        return self if self.flags.c_contiguous else self.copy(order="C")

    def is_contiguous(self, memory_format: Any = None) -> bool:
        """Whether the tensor is C-contiguous."""
        return bool(self.flags.c_contiguous)

    def stride(self, dim: Optional[int] = None) -> Any:
        """Strides in elements (NumPy's ``strides`` are in bytes)."""
        strides = tuple(s // self.itemsize for s in self.strides)
        return strides if dim is None else strides[_dim_index(dim, self.ndim)]

    def unsqueeze(self, dim: int) -> "Tensor":
        """A view with a new dimension of size 1 at ``dim`` (in ``[-ndim-1, ndim]``)."""
        d = _dim_index(dim, self.ndim + 1, "dim")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``squeeze(dim)`` leaves a dimension of size other than 1 alone; NumPy's
        ``squeeze(axis=...)`` raises for it; ``squeeze()`` drops every size-1 dimension."""
        if "axis" in kwargs or not (args or kwargs):
            return np.ndarray.squeeze(self, *args, **kwargs)
        (dim,) = _bind(args, kwargs, ("dim",), (None,), "squeeze")
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        drop = {_dim_index(d, self.ndim, "dim") for d in dims}
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in drop and n == 1)))

    def expand(self, *sizes: Any) -> "Tensor":
        """A read-only broadcast view to ``sizes`` (-1 keeps a dimension)."""
        target = _shape_arg(sizes, "expand")
        lead = len(target) - self.ndim
        if lead < 0:
            raise RuntimeError(f"expand: the number of sizes provided ({len(target)}) must be greater "
                               f"or equal to the number of dimensions in the tensor ({self.ndim})")
        shape = []
        for i, n in enumerate(target):
            own = self.shape[i - lead] if i >= lead else None
            if n == -1:
                if own is None:
                    raise RuntimeError(f"expand: -1 is not allowed in a leading, non-existing dimension ({i})")
                n = own
            elif own is not None and own != 1 and own != n:
                raise RuntimeError(f"expand: the expanded size ({n}) must match the existing size "
                                   f"({own}) at non-singleton dimension {i}; target sizes {list(target)}, "
                                   f"tensor sizes {list(self.shape)}")
            shape.append(n)
        return np.broadcast_to(_nd_view(self, np.ndarray), tuple(shape)).view(Tensor)

    def expand_as(self, other: np.ndarray) -> "Tensor":
        """``expand(other.shape)``."""
        return self.expand(np.shape(other))

    def repeat(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``repeat(*sizes)`` tiles the tensor; NumPy's ``repeat(repeats, axis=...)``
        (with the ``axis`` keyword) repeats elements."""
        if "axis" in kwargs or "repeats" in kwargs:
            return np.ndarray.repeat(self, *args, **kwargs)
        reps = _shape_arg(args, "repeat")
        if len(reps) < self.ndim:
            raise RuntimeError("repeat: number of repeat dims can not be smaller than number of "
                               f"dimensions of tensor ({len(reps)} < {self.ndim})")
        return np.tile(_nd_view(self, np.ndarray), reps).view(Tensor)

    def chunk(self, chunks: int, dim: int = 0) -> Tuple["Tensor", ...]:
        """``chunks`` pieces (the last smaller) along ``dim``, as views."""
        if not _is_int(chunks) or chunks <= 0:
            raise ValueError(f"chunk: chunks: expected a positive int, got {chunks!r}")
        d = _dim_index(dim, self.ndim)
        size = -(-self.shape[d] // chunks) if self.shape[d] else 1
        return self.split(size, d)

    def split(self, split_size_or_sections: Any, dim: int = 0) -> Tuple["Tensor", ...]:
        """Pieces of ``split_size`` along ``dim`` (the last smaller), or of the given sizes."""
        d = _dim_index(dim, self.ndim)
        n = self.shape[d]
        if _is_int(split_size_or_sections):
            if split_size_or_sections <= 0:
                raise ValueError(f"split: split_size: expected a positive int, got {split_size_or_sections}")
            bounds = list(range(0, n, int(split_size_or_sections))) + [n]
        else:
            sizes = _shape_arg((split_size_or_sections,), "split")
            if sum(sizes) != n:
                raise RuntimeError(f"split: split sizes {list(sizes)} do not sum to the size {n} of dim {d}")
            bounds = [0] + list(np.cumsum(sizes))
        index = [slice(None)] * self.ndim
        pieces = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            index[d] = slice(int(lo), int(hi))
            pieces.append(self[tuple(index)].view(Tensor))
        return tuple(pieces) if pieces else (self,)

    def unbind(self, dim: int = 0) -> Tuple["Tensor", ...]:
        """The slices along ``dim``, as views."""
        d = _dim_index(dim, self.ndim)
        return tuple(np.moveaxis(_nd_view(self, np.ndarray), d, 0).view(Tensor))

    # -- conversion ------------------------------------------------------------------------

    @property  # type: ignore[override]
    def data(self) -> "Tensor":
        """A Tensor sharing this one's memory, as torch's ``.data`` (NumPy's is a memoryview;
        a Tensor is a buffer itself).  Assigning copies the values in (same shape)."""
        return _nd_view(self, Tensor)

    @data.setter
    def data(self, value: Any) -> None:
        array = np.asarray(_plain(value))
        if array.shape != self.shape:
            raise ValueError(f"data: expected an array of shape {self.shape} (a Tensor's memory "
                             f"cannot be replaced, only overwritten), got shape {array.shape}")
        np.copyto(_nd_view(self, np.ndarray), array, casting="same_kind")

    @property  # type: ignore[override]
    def device(self) -> device:
        """Always ``device('cpu')`` (which equals NumPy's ``'cpu'``)."""
        return _CPU

    is_cuda = False

    def detach(self) -> "Tensor":
        """A Tensor sharing memory, with ``requires_grad`` False."""
        return _nd_view(self, Tensor)

    def clone(self, memory_format: Any = None) -> "Tensor":
        """A copy (a Tensor, also for a Parameter)."""
        return np.array(self, copy=True, subok=False).view(Tensor)

    def numpy(self, force: bool = False) -> np.ndarray:
        """The plain ndarray sharing memory."""
        return _nd_view(self, np.ndarray)

    def _cast(self, dtype: Any) -> "Tensor":
        dtype = np.dtype(dtype)
        if self.dtype == dtype:
            return self
        return np.ndarray.astype(_nd_view(self, np.ndarray), dtype).view(Tensor)

    def float(self, memory_format: Any = None) -> "Tensor":
        """As float32 (``self`` if it already is)."""
        return self._cast(np.float32)

    def double(self, memory_format: Any = None) -> "Tensor":
        """As float64 (``self`` if it already is)."""
        return self._cast(np.float64)

    def half(self, memory_format: Any = None) -> "Tensor":
        """As float16 (``self`` if it already is)."""
        return self._cast(np.float16)

    def long(self, memory_format: Any = None) -> "Tensor":
        """As int64 (``self`` if it already is)."""
        return self._cast(np.int64)

    def int(self, memory_format: Any = None) -> "Tensor":
        """As int32 (``self`` if it already is)."""
        return self._cast(np.int32)

    def short(self, memory_format: Any = None) -> "Tensor":
        """As int16 (``self`` if it already is)."""
        return self._cast(np.int16)

    def byte(self, memory_format: Any = None) -> "Tensor":
        """As uint8 (``self`` if it already is)."""
        return self._cast(np.uint8)

    def bool(self, memory_format: Any = None) -> "Tensor":
        """As bool (``self`` if it already is)."""
        return self._cast(np.bool_)

    def type_as(self, other: np.ndarray) -> "Tensor":
        """As ``other``'s dtype (``self`` if it already is)."""
        return self._cast(other.dtype)

    def is_floating_point(self) -> bool:
        """Whether the dtype is a floating-point type."""
        return self.dtype.kind == "f"

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """torch's ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other)``.

        Devices 'cpu' and 'cuda' both mean host memory: only a dtype change (or
        ``copy=True``) makes a new tensor; otherwise ``self`` is returned.
        """
        dtype = kwargs.pop("dtype", None)
        _check_device(kwargs.pop("device", None))
        copy = bool(kwargs.pop("copy", False))
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to: unexpected keyword argument(s) {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, np.ndarray):
                dtype = arg.dtype
            elif isinstance(arg, (str, device)) or _is_int(arg):
                _check_device(arg)
            elif isinstance(arg, (bool, np.bool_)):
                continue  # torch's positional non_blocking / copy flags
            else:
                dtype = _dtype(arg, "to: dtype")
        out = self if dtype is None else self._cast(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self, memory_format: Any = None) -> "Tensor":
        """``self``: tensors live in host memory."""
        return self

    def cuda(self, device: Any = None, non_blocking: bool = False, memory_format: Any = None) -> "Tensor":
        """``self``: there is no GPU; 'cuda' names host memory here too (see ``to``)."""
        _check_device(device)
        return self

    # -- creation from an existing tensor ---------------------------------------------------

    def new_zeros(self, *size: Any, dtype: Any = None, **_: Any) -> "Tensor":
        """Zeros of ``size``, this tensor's dtype unless ``dtype``."""
        return np.zeros(_shape_arg(size, "new_zeros"), self.dtype if dtype is None else dtype).view(Tensor)

    def new_ones(self, *size: Any, dtype: Any = None, **_: Any) -> "Tensor":
        """Ones of ``size``, this tensor's dtype unless ``dtype``."""
        return np.ones(_shape_arg(size, "new_ones"), self.dtype if dtype is None else dtype).view(Tensor)

    def new_empty(self, *size: Any, dtype: Any = None, **_: Any) -> "Tensor":
        """Uninitialised of ``size``, this tensor's dtype unless ``dtype``."""
        return np.empty(_shape_arg(size, "new_empty"), self.dtype if dtype is None else dtype).view(Tensor)

    def new_full(self, size: Any, fill_value: Any, dtype: Any = None, **_: Any) -> "Tensor":
        """``fill_value`` everywhere, this tensor's dtype unless ``dtype``."""
        return np.full(_shape_arg((size,), "new_full"), fill_value,
                       self.dtype if dtype is None else dtype).view(Tensor)

    def new_tensor(self, data: Any, dtype: Any = None, **_: Any) -> "Tensor":
        """A copy of ``data``, this tensor's dtype unless ``dtype``."""
        return np.array(_plain(data), self.dtype if dtype is None else dtype).view(Tensor)

    # -- in place ---------------------------------------------------------------------------

    def fill_(self, value: Any) -> "Tensor":
        """Every element set to ``value``; returns ``self``."""
        self.fill(value)
        return self

    def zero_(self) -> "Tensor":
        """Every element set to 0; returns ``self``."""
        self.fill(0)
        return self

    def copy_(self, src: Any, non_blocking: bool = False) -> "Tensor":
        """``src``'s values (broadcast, cast to this dtype) copied in; returns ``self``."""
        np.copyto(_nd_view(self, np.ndarray), _plain(src), casting="unsafe")
        return self

    def _inplace(self, ufunc: np.ufunc, other: Any) -> "Tensor":
        ufunc(_nd_view(self, np.ndarray), _plain(other), out=_nd_view(self, np.ndarray))
        return self

    def add_(self, other: Any, alpha: Any = 1) -> "Tensor":
        """``self += alpha * other``; returns ``self``."""
        return self._inplace(np.add, other if alpha == 1 else np.multiply(_plain(other), alpha))

    def sub_(self, other: Any, alpha: Any = 1) -> "Tensor":
        """``self -= alpha * other``; returns ``self``."""
        return self._inplace(np.subtract, other if alpha == 1 else np.multiply(_plain(other), alpha))

    def mul_(self, other: Any) -> "Tensor":
        """``self *= other``; returns ``self``."""
        return self._inplace(np.multiply, other)

    def div_(self, other: Any, rounding_mode: Optional[str] = None) -> "Tensor":
        """``self /= other`` (``rounding_mode`` None, 'trunc' or 'floor'); returns ``self``."""
        if rounding_mode is None:
            return self._inplace(np.true_divide, other)
        self[...] = self.div(other, rounding_mode=rounding_mode)
        return self

    def clamp_(self, min: Any = None, max: Any = None) -> "Tensor":
        """Values clipped to ``[min, max]`` in place; returns ``self``."""
        if min is None and max is None:
            raise RuntimeError("clamp_: at least one of 'min' or 'max' must not be None")
        np.clip(_nd_view(self, np.ndarray), _plain(min), _plain(max), out=_nd_view(self, np.ndarray))
        return self

    clip_ = clamp_

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> "Tensor":
        """Filled with N(mean, std**2) from the generator :func:`wageubn.manual_seed` seeds."""
        from .function.init import _rng
        _no_generator(generator)
        self[...] = _rng().normal(mean, std, size=self.shape)
        return self

    def uniform_(self, from_: float = 0.0, to: float = 1.0, *, generator: Any = None, **kw: Any) -> "Tensor":
        """Filled with U(from, to) from the generator :func:`wageubn.manual_seed` seeds."""
        from .function.init import _rng
        _no_generator(generator)
        from_ = kw.pop("from", from_)
        if kw:
            raise TypeError(f"uniform_: unexpected keyword argument(s) {sorted(kw)}")
        self[...] = _rng().uniform(from_, to, size=self.shape)
        return self

    # -- reductions -------------------------------------------------------------------------

    def sum(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``sum(dim=None, keepdim=False, *, dtype=None)`` or NumPy's ``sum``."""
        args, kwargs = _numpy_reduction(args, kwargs)
        return _wrap(np.ndarray.sum(self, *args, **kwargs))

    def mean(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``mean(dim=None, keepdim=False, *, dtype=None)`` or NumPy's ``mean``."""
        args, kwargs = _numpy_reduction(args, kwargs)
        return _wrap(np.ndarray.mean(self, *args, **kwargs))

    def prod(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``prod(dim=None, keepdim=False, *, dtype=None)`` or NumPy's ``prod``."""
        args, kwargs = _numpy_reduction(args, kwargs)
        return _wrap(np.ndarray.prod(self, *args, **kwargs))

    def all(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``all(dim=None, keepdim=False)`` or NumPy's ``all``."""
        args, kwargs = _numpy_reduction(args, kwargs)
        return _wrap(np.ndarray.all(self, *args, **kwargs))

    def any(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``any(dim=None, keepdim=False)`` or NumPy's ``any``."""
        args, kwargs = _numpy_reduction(args, kwargs)
        return _wrap(np.ndarray.any(self, *args, **kwargs))

    def argmax(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``argmax(dim=None, keepdim=False)`` (index into the flattened tensor
        without ``dim``) or NumPy's ``argmax``."""
        args, kwargs = _numpy_reduction(args, kwargs)
        return _wrap(np.ndarray.argmax(self, *args, **kwargs))

    def argmin(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``argmin(dim=None, keepdim=False)`` or NumPy's ``argmin``."""
        args, kwargs = _numpy_reduction(args, kwargs)
        return _wrap(np.ndarray.argmin(self, *args, **kwargs))

    def _var_std(self, name: str, args: Tuple[Any, ...], kwargs: dict) -> "Tensor":
        method = getattr(np.ndarray, name)
        if _NUMPY_STD_KEYWORDS.intersection(kwargs) or (len(args) >= 2 and not isinstance(args[1], (bool, np.bool_))):
            return _wrap(method(self, *args, **kwargs))
        if args and isinstance(args[0], (bool, np.bool_)):  # std(unbiased)
            args = (None,) + args
        dim, unbiased, keepdim = _bind(args, kwargs, ("dim", "unbiased", "keepdim"), (None, None, False),
                                       name, extra=("correction",))
        correction = kwargs.get("correction")
        if correction is not None and unbiased is not None:
            raise TypeError(f"{name}: give either unbiased or correction, not both")
        ddof = correction if correction is not None else (0 if unbiased is False else 1)
        return _wrap(method(self, axis=_axis_arg(dim), ddof=ddof, keepdims=bool(keepdim)))

    def std(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``std(dim=None, *, correction=1, keepdim=False)`` (also ``unbiased``):
        unbiased by default.  A call with NumPy's keywords (``ddof``, ``axis``, ...) is NumPy's."""
        return self._var_std("std", args, kwargs)

    def var(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``var`` (unbiased by default), or NumPy's with NumPy's keywords."""
        return self._var_std("var", args, kwargs)

    def _max_min(self, name: str, args: Tuple[Any, ...], kwargs: dict) -> Any:
        method = getattr(np.ndarray, name)
        if (_NUMPY_MAX_KEYWORDS.intersection(kwargs) or (args and (args[0] is None or isinstance(args[0], tuple)))
                or (len(args) >= 2 and not isinstance(args[1], (bool, np.bool_)))):
            return _wrap(method(self, *args, **kwargs))
        if not args and not kwargs:
            return _wrap(method(self))
        if args and not _is_int(args[0]):  # max(other): element-wise
            if len(args) > 1 or kwargs:
                raise TypeError(f"{name}: max(other) takes no further arguments")
            pair = np.maximum if name == "max" else np.minimum
            return _wrap(pair(_nd_view(self, np.ndarray), _plain(args[0])))
        dim, keepdim = _bind(args, kwargs, ("dim", "keepdim"), (None, False), name)
        d = _dim_index(dim, self.ndim)
        plain = _nd_view(self, np.ndarray)
        if self.ndim == 0:
            return (_Max if name == "max" else _Min)(_wrap(plain.copy()), _wrap(np.zeros((), np.int64)))
        arg = np.argmax if name == "max" else np.argmin
        indices = arg(plain, axis=d, keepdims=True)
        values = np.take_along_axis(plain, indices, axis=d)
        if not keepdim:
            indices, values = indices.squeeze(d), values.squeeze(d)
        return (_Max if name == "max" else _Min)(_wrap(values), _wrap(indices.astype(np.int64, copy=False)))

    def max(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """torch's ``max()`` (0-d), ``max(dim, keepdim=False)`` (a ``(values, indices)``
        namedtuple) and ``max(other)`` (element-wise); NumPy's with ``axis=`` etc."""
        return self._max_min("max", args, kwargs)

    def min(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """As :meth:`max`, for the minimum."""
        return self._max_min("min", args, kwargs)

    def amax(self, dim: Any = (), keepdim: bool = False) -> "Tensor":
        """The maximum over ``dim`` (all dimensions by default), values only."""
        return _wrap(np.amax(_nd_view(self, np.ndarray), axis=_axis_arg(dim) if dim != () else None,
                             keepdims=keepdim))

    def amin(self, dim: Any = (), keepdim: bool = False) -> "Tensor":
        """The minimum over ``dim`` (all dimensions by default), values only."""
        return _wrap(np.amin(_nd_view(self, np.ndarray), axis=_axis_arg(dim) if dim != () else None,
                             keepdims=keepdim))

    def sort(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """torch's ``sort(dim=-1, descending=False, stable=False)``: a new ``(values,
        indices)`` namedtuple (always a stable sort).  With NumPy's keywords ``axis``,
        ``kind`` or ``order``, NumPy's in-place sort returning None."""
        if {"axis", "kind", "order"}.intersection(kwargs) or (len(args) >= 2 and isinstance(args[1], str)):
            return np.ndarray.sort(self, *args, **kwargs)
        dim, descending = _bind(args, kwargs, ("dim", "descending"), (-1, False), "sort", extra=("stable",))
        plain = _nd_view(self, np.ndarray)
        if self.ndim == 0:
            return _Sort(_wrap(plain.copy()), _wrap(np.zeros((), np.int64)))
        d = _dim_index(dim, self.ndim)
        indices = _argsort(plain, d, bool(descending))
        return _Sort(_wrap(np.take_along_axis(plain, indices, axis=d)), _wrap(indices.astype(np.int64, copy=False)))

    def argsort(self, *args: Any, **kwargs: Any) -> "Tensor":  # type: ignore[override]
        """torch's ``argsort(dim=-1, descending=False, stable=False)`` (stable) or NumPy's."""
        if {"axis", "kind", "order"}.intersection(kwargs) or (len(args) >= 2 and isinstance(args[1], str)):
            return _wrap(np.ndarray.argsort(self, *args, **kwargs))
        return self.sort(*args, **kwargs).indices

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        """The ``k`` largest (or smallest) values along ``dim`` and their indices, sorted."""
        plain = _nd_view(self, np.ndarray)
        d = _dim_index(dim, self.ndim)
        n = plain.shape[d] if plain.ndim else 1
        if not _is_int(k) or not 0 <= k <= n:
            raise RuntimeError(f"topk: k: selected index k out of range (expected 0 to {n}, got {k!r})")
        if plain.ndim == 0:
            return _Topk(_wrap(plain.copy()), _wrap(np.zeros((), np.int64)))
        indices = np.take(_argsort(plain, d, bool(largest)), np.arange(int(k)), axis=d)
        return _Topk(_wrap(np.take_along_axis(plain, indices, axis=d)), _wrap(indices.astype(np.int64, copy=False)))

    # -- comparisons ------------------------------------------------------------------------

    def eq(self, other: Any) -> "Tensor":
        """Element-wise ``==`` (a bool tensor)."""
        return _wrap(np.equal(_nd_view(self, np.ndarray), _plain(other)))

    def ne(self, other: Any) -> "Tensor":
        """Element-wise ``!=``."""
        return _wrap(np.not_equal(_nd_view(self, np.ndarray), _plain(other)))

    def gt(self, other: Any) -> "Tensor":
        """Element-wise ``>``."""
        return _wrap(np.greater(_nd_view(self, np.ndarray), _plain(other)))

    def lt(self, other: Any) -> "Tensor":
        """Element-wise ``<``."""
        return _wrap(np.less(_nd_view(self, np.ndarray), _plain(other)))

    def ge(self, other: Any) -> "Tensor":
        """Element-wise ``>=``."""
        return _wrap(np.greater_equal(_nd_view(self, np.ndarray), _plain(other)))

    def le(self, other: Any) -> "Tensor":
        """Element-wise ``<=``."""
        return _wrap(np.less_equal(_nd_view(self, np.ndarray), _plain(other)))

    def equal(self, other: Any) -> bool:
        """True when ``other`` has this shape and these values."""
        other = np.asarray(_plain(other))
        return self.shape == other.shape and bool(np.array_equal(_nd_view(self, np.ndarray), other))

    def allclose(self, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
        """``numpy.allclose``."""
        return bool(np.allclose(_nd_view(self, np.ndarray), _plain(other), rtol, atol, equal_nan))

    # -- element-wise maths -----------------------------------------------------------------

    def abs(self) -> "Tensor":
        """``|x|``."""
        return _wrap(np.abs(_nd_view(self, np.ndarray)))

    def neg(self) -> "Tensor":
        """``-x``."""
        return _wrap(np.negative(_nd_view(self, np.ndarray)))

    def exp(self) -> "Tensor":
        """``e**x`` (integer input computes in float32)."""
        return _wrap(np.exp(_floating(_nd_view(self, np.ndarray))))

    def log(self) -> "Tensor":
        """Natural logarithm (integer input computes in float32)."""
        return _wrap(np.log(_floating(_nd_view(self, np.ndarray))))

    def sqrt(self) -> "Tensor":
        """Square root (integer input computes in float32)."""
        return _wrap(np.sqrt(_floating(_nd_view(self, np.ndarray))))

    def sigmoid(self) -> "Tensor":
        """``1 / (1 + e**-x)``, without overflow for large ``|x|``."""
        return _wrap(_sigmoid(_nd_view(self, np.ndarray)))

    def tanh(self) -> "Tensor":
        """Hyperbolic tangent (integer input computes in float32)."""
        return _wrap(np.tanh(_floating(_nd_view(self, np.ndarray))))

    def relu(self) -> "Tensor":
        """``max(x, 0)`` (NaN stays NaN)."""
        plain = _nd_view(self, np.ndarray)
        return _wrap(np.maximum(plain, np.zeros((), plain.dtype)))

    def pow(self, exponent: Any) -> "Tensor":
        """``x ** exponent``."""
        return _wrap(np.power(_nd_view(self, np.ndarray), _plain(exponent)))

    def clamp(self, min: Any = None, max: Any = None) -> "Tensor":
        """Values clipped to ``[min, max]``."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        return _wrap(np.clip(_nd_view(self, np.ndarray), _plain(min), _plain(max)))

    def add(self, other: Any, alpha: Any = 1) -> "Tensor":
        """``self + alpha * other``."""
        other = _plain(other)
        return _wrap(np.add(_nd_view(self, np.ndarray), other if alpha == 1 else np.multiply(other, alpha)))

    def sub(self, other: Any, alpha: Any = 1) -> "Tensor":
        """``self - alpha * other``."""
        other = _plain(other)
        return _wrap(np.subtract(_nd_view(self, np.ndarray), other if alpha == 1 else np.multiply(other, alpha)))

    def mul(self, other: Any) -> "Tensor":
        """``self * other``."""
        return _wrap(np.multiply(_nd_view(self, np.ndarray), _plain(other)))

    def div(self, other: Any, rounding_mode: Optional[str] = None) -> "Tensor":
        """``self / other``; ``rounding_mode`` 'trunc' or 'floor' rounds the quotient."""
        quotient = np.true_divide(_nd_view(self, np.ndarray), _plain(other))
        if rounding_mode is None:
            return _wrap(quotient)
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div: rounding_mode: expected None, 'trunc' or 'floor', got {rounding_mode!r}")
        rounded = np.trunc(quotient) if rounding_mode == "trunc" else np.floor(quotient)
        kind = np.result_type(self.dtype, np.asarray(_plain(other)).dtype)
        return _wrap(rounded.astype(kind) if kind.kind in "iu" else rounded)

    def matmul(self, other: Any) -> "Tensor":
        """Matrix product."""
        return _wrap(np.matmul(_nd_view(self, np.ndarray), _plain(other)))

    mm = matmul

    def softmax(self, dim: int) -> "Tensor":
        """``exp(x) / sum(exp(x))`` along ``dim``."""
        x = _floating(_nd_view(self, np.ndarray))
        d = _dim_index(dim, x.ndim)
        e = np.exp(x - np.max(x, axis=d, keepdims=True)) if x.ndim else np.ones_like(x)
        return _wrap(e / np.sum(e, axis=d, keepdims=True) if x.ndim else e)

    def log_softmax(self, dim: int) -> "Tensor":
        """``log(softmax(x))`` along ``dim``, computed stably."""
        x = _floating(_nd_view(self, np.ndarray))
        if x.ndim == 0:
            return _wrap(np.zeros_like(x))
        d = _dim_index(dim, x.ndim)
        shifted = x - np.max(x, axis=d, keepdims=True)
        return _wrap(shifted - np.log(np.sum(np.exp(shifted), axis=d, keepdims=True)))

    def masked_fill(self, mask: Any, value: Any) -> "Tensor":
        """A copy with ``value`` where ``mask`` (broadcast) is True."""
        return self.clone().masked_fill_(mask, value)

    def masked_fill_(self, mask: Any, value: Any) -> "Tensor":
        """``value`` written where ``mask`` (broadcast) is True; returns ``self``."""
        mask = np.asarray(_plain(mask))
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill_: mask: expected a bool tensor, got dtype {mask.dtype}")
        np.copyto(_nd_view(self, np.ndarray), _plain(value), where=mask, casting="unsafe")
        return self

    # -- copying, pickling, printing --------------------------------------------------------

    def __copy__(self) -> "Tensor":
        new = np.ndarray.__copy__(self)
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo: dict) -> "Tensor":
        new = np.ndarray.__deepcopy__(self, memo)
        if self.__dict__:
            new.__dict__.update(_copy.deepcopy(self.__dict__, memo))
        return new

    def __reduce_ex__(self, protocol: Any) -> Tuple[Any, ...]:
        # ndarray's own pickling keeps the class but drops instance attributes.
        return (_rebuild, (type(self), _nd_view(self, np.ndarray), dict(self.__dict__)))

    def __repr__(self) -> str:
        text = np.array_repr(_nd_view(self, np.ndarray))
        text = "tensor" + text[len("array"):].replace("\n", "\n ")
        if self.requires_grad:
            text = text[:-1] + ", requires_grad=True)"
        return text

    __str__ = __repr__


def _rebuild(cls: type, array: np.ndarray, state: dict) -> Tensor:
    tensor = _nd_view(array, cls)
    tensor.__dict__.update(state)
    return tensor


def _no_generator(generator: Any) -> None:
    if generator is not None:
        raise TypeError("generator: not supported; seed the one generator with wageubn.manual_seed, "
                        f"got {generator!r}")


def _bind(args: Tuple[Any, ...], kwargs: dict, names: Tuple[str, ...], defaults: Tuple[Any, ...],
          where: str, extra: Tuple[str, ...] = ()) -> Tuple[Any, ...]:
    """Positional and keyword arguments bound to ``names`` (``extra`` keywords are allowed,
    read by the caller)."""
    if len(args) > len(names):
        raise TypeError(f"{where}: takes at most {len(names)} positional arguments ({len(args)} given)")
    unknown = set(kwargs) - set(names) - set(extra)
    if unknown:
        raise TypeError(f"{where}: unexpected keyword argument(s) {sorted(unknown)}")
    values = list(args) + list(defaults[len(args):])
    for i, name in enumerate(names):
        if name in kwargs:
            if i < len(args):
                raise TypeError(f"{where}: {name}: given both positionally and as a keyword")
            values[i] = kwargs[name]
    return tuple(values)


def _plain(value: Any) -> Any:
    """Tensors (also inside lists, tuples and dicts) as plain ndarray views."""
    if isinstance(value, Tensor):
        return _nd_view(value, np.ndarray)
    if type(value) is tuple or type(value) is list:
        return type(value)(_plain(v) for v in value)
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    """``value`` as a Tensor view (no copy) when it is an ndarray or a NumPy scalar (a 0-d
    Tensor); tuples (also named) and lists of them element by element; anything else unchanged.

    >>> import numpy as np
    >>> _wrap(np.ones(2)), _wrap((np.float32(1), 2))
    (tensor([1., 1.]), (tensor(1., dtype=float32), 2))
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return _nd_view(value, Tensor)
    if isinstance(value, np.generic):
        return _nd_view(np.asarray(value), Tensor)
    if isinstance(value, tuple):
        items = [_wrap(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if type(value) is list:
        return [_wrap(v) for v in value]
    return value

