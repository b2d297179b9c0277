"""``torch.nn.Module`` and its containers, re-implemented on plain NumPy arrays.

The classes here mirror the ``torch.nn`` API (registration, hooks, iteration,
``state_dict``, ``repr``, containers) so that code and checkpoints written for
PyTorch carry over, but nothing imports torch: parameters are float32
``numpy.ndarray`` subclasses and there is a single device, host memory.

>>> import numpy as np
>>> from wageubn.function.module import Module, Parameter, Sequential, Flatten
>>> class Scale(Module):
...     def __init__(self) -> None:
...         super().__init__()
...         self.weight = Parameter([2.0])
...     def forward(self, x):
...         return x * self.weight
>>> net = Sequential(Flatten(), Scale())
>>> net(np.ones((1, 2, 1), dtype=np.float32))
tensor([[2., 2.]], dtype=float32)
>>> list(net.state_dict())
['1.weight']
"""

from __future__ import annotations

import itertools
import math
import operator
import warnings
import weakref
from collections import OrderedDict, namedtuple
from collections.abc import Iterable, Mapping
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
    overload,
)

import numpy as np

from ..tensor import Tensor, _check_device, _wrap

__all__ = [
    "Parameter",
    "RemovableHandle",
    "IncompatibleKeys",
    "Module",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "Flatten",
    "Identity",
]

T = TypeVar("T", bound="Module")
M = TypeVar("M", bound="Optional[Module]")

# dtype kinds accepted as parameter / checkpoint data: bool, signed, unsigned, float.
_REAL_KINDS = "biuf"


def _typename(obj: Any) -> str:
    """Qualified type name of ``obj`` as ``torch.typename`` prints it."""
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _as_array(value: Any) -> np.ndarray:
    """NumPy view of an array-like.

    torch tensors are recognised by duck typing (``detach``/``cpu``/``numpy``)
    so that torch checkpoints load without this module importing torch.
    """
    if all(hasattr(value, attr) for attr in ("detach", "cpu", "numpy")):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class Parameter(Tensor):
    """A float32 :class:`~wageubn.Tensor` that a :class:`Module` registers as a learnable parameter.

    ``data`` is copied; ``Parameter()`` is an empty array. Arithmetic and
    ufunc results are plain :class:`~wageubn.Tensor` objects (not Parameters), so derived
    values are never mistaken for parameters, while in-place updates such as
    ``p -= lr * grad`` keep the object (and its registration) intact.

    >>> p = Parameter([1, 2])
    >>> p
    Parameter containing:
    array([1., 2.], dtype=float32)
    >>> type(p * 2).__name__, p.requires_grad, (p * 2).requires_grad
    ('Tensor', True, False)
    """

    _requires_grad = True

    def __new__(cls, data: Any = None, requires_grad: bool = True) -> Parameter:
        array = np.empty(0, dtype=np.float32) if data is None else _as_array(data)
        if array.dtype.kind not in _REAL_KINDS:
            raise TypeError(
                f"Parameter `data` must be real numeric (bool, int or float), "
                f"got dtype {array.dtype}"
            )
        param = cast(Parameter, np.array(array, dtype=np.float32).view(cls))
        param.requires_grad = bool(requires_grad)
        return param

    def __array_finalize__(self, obj: Optional[np.ndarray]) -> None:
        # Views and copies (slicing, ``copy.deepcopy``) inherit the flag.
        self._requires_grad = getattr(obj, "_requires_grad", True)

    def __array_wrap__(
        self,
        array: np.ndarray,
        context: Optional[Tuple[Any, ...]] = None,
        return_scalar: bool = False,
    ) -> Any:
        # NumPy only hands us a Parameter when it is an explicit ``out=``
        # (e.g. ``p += 1``); that object must survive, anything else is a new
        # value and becomes a plain Tensor (0-d for a scalar result).
        if isinstance(array, Parameter):
            return array
        return array.view(Tensor)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + repr(self.view(np.ndarray))

    __str__ = __repr__


# Shared by all handles so an id never names two hooks of the same module.
_hook_ids = itertools.count()


class RemovableHandle:
    """Handle returned by the ``register_*_hook`` methods; ``remove()`` unregisters.

    Removal is idempotent and only ever touches the hook this handle created.
    The handle can also be used as a context manager.

    >>> m = Identity()
    >>> with m.register_forward_hook(lambda mod, args, out: out + 1):
    ...     m(1)
    2
    >>> m(1)
    1
    """

    def __init__(self, hooks_dict: Dict[int, Any], *extra_dicts: Dict[int, Any]) -> None:
        hook_id = next(_hook_ids)
        # An unpickled module may carry ids issued by another process.
        while hook_id in hooks_dict:
            hook_id = next(_hook_ids)
        self.id = hook_id
        # Weak references: a handle must not keep a deleted module's hooks alive.
        self._dict_refs = tuple(weakref.ref(d) for d in (hooks_dict, *extra_dicts))

    def remove(self) -> None:
        """Unregister the hook (no effect if already removed)."""
        for ref in self._dict_refs:
            hooks = ref()
            if hooks is not None:
                hooks.pop(self.id, None)

    def __getstate__(self) -> Tuple[Any, ...]:
        return (self.id, tuple(ref() for ref in self._dict_refs))

    def __setstate__(self, state: Tuple[Any, ...]) -> None:
        self.id, dicts = state
        # A dict that was already gone is replaced by a dead reference.
        self._dict_refs = tuple(
            weakref.ref(OrderedDict() if d is None else d) for d in dicts
        )

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.remove()


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """Result of :meth:`Module.load_state_dict`: lists of missing and unexpected keys."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _addindent(text: str, num_spaces: int) -> str:
    """Indent every line but the first (blank lines stay empty, as in torch)."""
    first, *rest = text.split("\n")
    if not rest:
        return text
    return "\n".join([first] + [" " * num_spaces + line if line.strip() else "" for line in rest])


def _require_module(value: Any, where: str) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{where} expected a Module, got {_typename(value)}")
    return value


def _renumbered(modules: Dict[str, M]) -> Dict[str, M]:
    """Same modules keyed '0', '1', ... (torch re-indexes after deletions)."""
    return {str(i): module for i, module in enumerate(modules.values())}


class Module:
    """Base class of all layers, like ``torch.nn.Module``.

    Subclasses call ``super().__init__()`` first, then assign
    :class:`Parameter` objects, sub-modules and buffers as attributes, and
    implement :meth:`forward`. Calling the module runs forward pre-hooks,
    ``forward`` and forward hooks.

    >>> class Affine(Module):
    ...     def __init__(self) -> None:
    ...         super().__init__()
    ...         self.weight = Parameter([2.0])
    ...         self.register_buffer("offset", np.zeros(1))
    ...     def forward(self, x):
    ...         return x * self.weight + self.offset
    >>> net = Affine()
    >>> net(np.array([1.0]))
    tensor([2.])
    >>> [name for name, _ in net.named_parameters()], list(net.state_dict())
    (['weight'], ['weight', 'offset'])
    """

    training: bool
    _version: int = 1  # the ``version`` of each module's state-dict metadata, as torch's
    _parameters: Dict[str, Optional[Parameter]]
    _buffers: Dict[str, Optional[np.ndarray]]
    _non_persistent_buffers_set: Set[str]
    _modules: Dict[str, Optional[Module]]
    _forward_hooks: OrderedDict[int, Callable[..., Any]]
    _forward_pre_hooks: OrderedDict[int, Callable[..., Any]]
    # Hook ids registered with the corresponding option, mapped to True.
    _forward_hooks_with_kwargs: OrderedDict[int, bool]
    _forward_hooks_always_called: OrderedDict[int, bool]
    _forward_pre_hooks_with_kwargs: OrderedDict[int, bool]

    def __init__(self) -> None:
        # object.__setattr__ bypasses the registration logic of __setattr__,
        # which relies on these very attributes.
        for name, value in (
            ("training", True),
            ("_parameters", {}),
            ("_buffers", {}),
            ("_non_persistent_buffers_set", set()),
            ("_modules", {}),
            ("_forward_hooks", OrderedDict()),
            ("_forward_hooks_with_kwargs", OrderedDict()),
            ("_forward_hooks_always_called", OrderedDict()),
            ("_forward_pre_hooks", OrderedDict()),
            ("_forward_pre_hooks_with_kwargs", OrderedDict()),
        ):
            object.__setattr__(self, name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output; every subclass must override this."""
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    # ------------------------------------------------------------------ registration

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Add a parameter (or a ``None`` placeholder) under ``name``.

        >>> m = Module()
        >>> m.register_parameter("bias", None)
        >>> m.bias is None, "bias" in m._parameters
        (True, True)
        """
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                "(wageubn.function.Parameter or None required)"
            )
        self._parameters[name] = param

    def register_buffer(
        self, name: str, tensor: Optional[np.ndarray], persistent: bool = True
    ) -> None:
        """Add a non-learnable array (e.g. running statistics) under ``name``.

        Persistent buffers are part of :meth:`state_dict`.

        >>> m = Module()
        >>> m.register_buffer("mean", np.zeros(2))
        >>> m.register_buffer("cache", np.ones(1), persistent=False)
        >>> list(m.state_dict()), [name for name, _ in m.named_buffers()]
        (['mean'], ['mean', 'cache'])
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(
                f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                "(numpy.ndarray or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Optional[Module]) -> None:
        """Add a child module (or ``None``) under ``name``.

        >>> m = Module()
        >>> m.add_module("body", Identity())
        >>> m
        Module(
          (body): Identity()
        )
        """
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        if "_modules" not in self.__dict__:
            raise AttributeError("cannot assign module before Module.__init__() call")
        self._check_name(name, "module", self._modules)
        self._modules[name] = module

    def register_module(self, name: str, module: Optional[Module]) -> None:
        """Alias for :meth:`add_module`."""
        self.add_module(name, module)

    def _check_name(self, name: Any, kind: str, registry: Mapping[str, Any]) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {_typename(name)}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain "."')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"attribute '{name}' already exists")

    def __setattr__(self, name: str, value: Any) -> None:
        def discard_from(*containers: Any) -> None:
            for container in containers:
                if name in container:
                    if isinstance(container, set):
                        container.discard(name)
                    else:
                        del container[name]

        params = self.__dict__.get("_parameters")
        modules = self.__dict__.get("_modules")
        buffers = self.__dict__.get("_buffers")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            discard_from(self.__dict__, buffers, modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as parameter '{name}' "
                    "(wageubn.function.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            discard_from(self.__dict__, params, buffers, self._non_persistent_buffers_set)
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as child module '{name}' "
                    "(wageubn.function.Module or None expected)"
                )
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(
                    f"cannot assign '{_typename(value)}' as buffer '{name}' "
                    "(numpy.ndarray or None expected)"
                )
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails. Read __dict__ directly: during
        # unpickling / before __init__ the registries do not exist yet.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self) -> List[str]:
        keys = [
            *dir(type(self)),
            *self.__dict__,
            *self._parameters,
            *self._modules,
            *self._buffers,
        ]
        # Container keys such as '0' are not attribute names.
        return sorted(key for key in keys if not key[0].isdigit())

    # ------------------------------------------------------------------ hooks and call

    def register_forward_pre_hook(
        self,
        hook: Callable[..., Any],
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
    ) -> RemovableHandle:
        """Run ``hook(module, args)`` before :meth:`forward`.

        A non-``None`` result replaces ``args`` (a non-tuple is wrapped in a
        1-tuple). With ``with_kwargs=True`` the hook is called as
        ``hook(module, args, kwargs)`` and may return ``(args, kwargs)``.
        ``prepend=True`` runs it before the hooks already registered.

        >>> m = Identity()
        >>> handle = m.register_forward_pre_hook(lambda mod, args: args[0] * 10)
        >>> m(2)
        20
        >>> handle.remove(); m(2)
        2
        """
        handle = RemovableHandle(self._forward_pre_hooks, self._forward_pre_hooks_with_kwargs)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(
        self,
        hook: Callable[..., Any],
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
    ) -> RemovableHandle:
        """Run ``hook(module, args, output)`` after :meth:`forward`.

        A non-``None`` result replaces the output. With ``with_kwargs=True``
        the hook is called as ``hook(module, args, kwargs, output)``.
        ``prepend=True`` runs it first; ``always_call=True`` also runs it
        (with the output so far, usually ``None``) when the call raises.

        >>> m = Identity()
        >>> _ = m.register_forward_hook(lambda mod, args, out: out + 1)
        >>> _ = m.register_forward_hook(lambda mod, args, out: out * 10, prepend=True)
        >>> m(1)
        11
        """
        handle = RemovableHandle(
            self._forward_hooks,
            self._forward_hooks_with_kwargs,
            self._forward_hooks_always_called,
        )
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The one place a forward's ndarray results (also in tuples / lists) become Tensors.
        if not self._forward_pre_hooks and not self._forward_hooks:
            return _wrap(self.forward(*args, **kwargs))  # no hooks: nothing else to do
        result = None
        called: Set[int] = set()
        try:
            # Iterate over copies: a hook may remove itself while running.
            for hook_id, hook in list(self._forward_pre_hooks.items()):
                if hook_id in self._forward_pre_hooks_with_kwargs:
                    new = hook(self, args, kwargs)
                    if new is not None:
                        if not (isinstance(new, tuple) and len(new) == 2):
                            raise RuntimeError(
                                "forward pre-hook must return None or a tuple of "
                                f"(new_args, new_kwargs), but got {new}."
                            )
                        args, kwargs = new
                else:
                    new = hook(self, args)
                    if new is not None:
                        args = new if isinstance(new, tuple) else (new,)
            result = _wrap(self.forward(*args, **kwargs))
            for hook_id, hook in list(self._forward_hooks.items()):
                called.add(hook_id)
                new = self._run_forward_hook(hook_id, hook, args, kwargs, result)
                if new is not None:
                    result = _wrap(new)
            return result
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called and hook_id not in called:
                    try:
                        self._run_forward_hook(hook_id, hook, args, kwargs, result)
                    except Exception as exc:  # the original error matters more
                        warnings.warn(
                            "module forward hook with ``always_call=True`` raised an "
                            "exception that was silenced as another error was raised "
                            f"in forward: {exc}",
                            stacklevel=2,
                        )
            raise

    def _run_forward_hook(
        self,
        hook_id: int,
        hook: Callable[..., Any],
        args: Tuple[Any, ...],
        kwargs: Dict[str, Any],
        result: Any,
    ) -> Any:
        if hook_id in self._forward_hooks_with_kwargs:
            return hook(self, args, kwargs, result)
        return hook(self, args, result)

    # ------------------------------------------------------------------ iteration

    def _named_members(
        self,
        get_members: Callable[[Module], Iterable[Tuple[str, Any]]],
        prefix: str,
        recurse: bool,
        remove_duplicate: bool,
    ) -> Iterator[Tuple[str, Any]]:
        # Arrays are unhashable, so duplicates are tracked by identity.
        seen: Set[int] = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for name, value in get_members(module):
                if value is None or id(value) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (module_prefix + ("." if module_prefix else "") + name, value)

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[Tuple[str, Parameter]]:
        """Yield ``(dotted_name, parameter)``; shared parameters appear once.

        >>> seq = Sequential(Sequential(Flatten()))
        >>> seq[0].register_parameter("w", Parameter([1.0]))
        >>> [name for name, _ in seq.named_parameters()]
        ['0.w']
        """
        return self._named_members(
            lambda module: module._parameters.items(), prefix, recurse, remove_duplicate
        )

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Yield the parameters of this module (and, if ``recurse``, its descendants)."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[Tuple[str, np.ndarray]]:
        """Yield ``(dotted_name, buffer)``, persistent or not; ``None`` buffers are skipped."""
        return self._named_members(
            lambda module: module._buffers.items(), prefix, recurse, remove_duplicate
        )

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        """Yield the buffers of this module (and, if ``recurse``, its descendants)."""
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def named_children(self) -> Iterator[Tuple[str, Module]]:
        """Yield ``(name, child)`` for the direct children, each child once."""
        seen: Set[Module] = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self) -> Iterator[Module]:
        """Yield the direct children."""
        for _, module in self.named_children():
            yield module

    def named_modules(
        self,
        memo: Optional[Set[Module]] = None,
        prefix: str = "",
        remove_duplicate: bool = True,
    ) -> Iterator[Tuple[str, Module]]:
        """Yield ``(dotted_name, module)`` depth-first, starting with ``('', self)``.

        >>> net = Sequential(Identity(), Sequential(Flatten()))
        >>> [name for name, _ in net.named_modules()]
        ['', '0', '1', '1.0']
        """
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(
                    memo, prefix + ("." if prefix else "") + name, remove_duplicate
                )

    def modules(self) -> Iterator[Module]:
        """Yield this module and all descendants, each once."""
        for _, module in self.named_modules():
            yield module

    def apply(self: T, fn: Callable[[Module], None]) -> T:
        """Call ``fn`` on every descendant (children first), then on ``self``; return ``self``.

        >>> seen = []
        >>> _ = Sequential(Identity()).apply(lambda m: seen.append(type(m).__name__))
        >>> seen
        ['Identity', 'Sequential']
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target: str) -> Module:
        """Return the descendant at dotted path ``target`` (``''`` is ``self``).

        >>> Sequential(Sequential(Identity())).get_submodule("0.0")
        Identity()
        """
        module = self
        if target == "":
            return module
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return module

    def get_parameter(self, target: str) -> Parameter:
        """Return the parameter at dotted path ``target`` (e.g. ``'layer1.0.weight'``)."""
        module_path, _, param_name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, param_name):
            raise AttributeError(f"{module._get_name()} has no attribute `{param_name}`")
        param = getattr(module, param_name)
        if not isinstance(param, Parameter):
            raise AttributeError(f"`{param_name}` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str) -> np.ndarray:
        """Return the buffer at dotted path ``target`` (e.g. ``'bn.running_mean'``).

        >>> m = Sequential(Identity()); m[0].register_buffer("count", np.zeros(1))
        >>> m.get_buffer("0.count")
        array([0.])
        """
        module_path, _, buffer_name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, buffer_name):
            raise AttributeError(f"{module._get_name()} has no attribute `{buffer_name}`")
        if buffer_name not in module._buffers:
            raise AttributeError(f"`{buffer_name}` is not a buffer")
        return module._buffers[buffer_name]

    # ------------------------------------------------------------------ modes and no-ops

    def train(self: T, mode: bool = True) -> T:
        """Set training mode on this module and all descendants; return ``self``."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self: T) -> T:
        """Same as ``train(False)``.

        >>> Sequential(Identity()).eval()[0].training
        False
        """
        return self.train(False)

    def requires_grad_(self: T, requires_grad: bool = True) -> T:
        """Set ``requires_grad`` on every parameter; return ``self``."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """No-op: this package keeps no gradients on parameters."""

    def to(self: T, *args: Any, **kwargs: Any) -> T:
        """No-op returning ``self``: there is only one device (host memory).

        Arguments are accepted and ignored so torch-style code runs unchanged;
        in particular no dtype conversion takes place.
        """
        return self

    def cpu(self: T) -> T:
        """No-op returning ``self``: arrays always live in host memory."""
        return self

    def float(self: T) -> T:
        """No-op returning ``self``: parameters are always float32; buffers keep their dtype."""
        return self

    def cuda(self: T, device: Any = None) -> T:
        """No-op returning ``self``: there is no GPU, 'cuda' names host memory here too."""
        _check_device(device)
        return self

    def double(self: T) -> T:
        """No-op returning ``self``: parameters stay float32 (the kernels compute in float32)."""
        return self

    def half(self: T) -> T:
        """No-op returning ``self``: parameters stay float32 (the kernels compute in float32)."""
        return self

    def type(self: T, dst_type: Any) -> T:
        """No-op returning ``self`` for a floating ``dst_type`` (a dtype such as
        ``wageubn.float64`` or a name such as ``'torch.DoubleTensor'``): parameters stay float32.

        >>> import wageubn
        >>> m = Identity(); m.type(wageubn.double) is m
        True
        """
        if isinstance(dst_type, str) and dst_type.endswith("Tensor"):
            name = dst_type.rpartition(".")[2]
            floating = name in ("FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor")
        else:
            try:
                floating = np.dtype(dst_type).kind == "f"
            except TypeError:
                raise TypeError(f"dst_type: expected a dtype or a tensor type name, got {dst_type!r}") from None
        if not floating:
            raise TypeError(f"dst_type: expected a floating type (parameters stay float32), got {dst_type!r}")
        return self

    # ------------------------------------------------------------------ state-dict hooks

    def _hooks(self, name: str) -> OrderedDict[int, Any]:
        """This module's hook registry ``name``, created on first use (also on old pickles)."""
        hooks = self.__dict__.get(name)
        if hooks is None:
            hooks = OrderedDict()
            object.__setattr__(self, name, hooks)
        return hooks

    def register_state_dict_pre_hook(self, hook: Callable[..., None]) -> RemovableHandle:
        """Run ``hook(module, prefix, keep_vars)`` before :meth:`state_dict` saves this module."""
        hooks = self._hooks("_state_dict_pre_hooks")
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def register_state_dict_post_hook(self, hook: Callable[..., None]) -> RemovableHandle:
        """Run ``hook(module, state_dict, prefix, local_metadata)`` after :meth:`state_dict` saved
        this module and its children; it edits ``state_dict`` in place and must return None.

        >>> m = Identity()
        >>> _ = m.register_state_dict_post_hook(lambda mod, sd, prefix, meta: sd.update(extra=1))
        >>> dict(m.state_dict())
        {'extra': 1}
        """
        hooks, public = self._hooks("_state_dict_hooks"), self._hooks("_state_dict_hooks_public")
        if any(h is hook and i not in public for i, h in hooks.items()):
            raise RuntimeError("Cannot register the same function as the state dict post hook that was "
                               "previously registered via _register_state_dict_hook")
        handle = RemovableHandle(hooks, public)
        hooks[handle.id] = hook
        public[handle.id] = True
        return handle

    def _register_state_dict_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Run ``hook(module, state_dict, prefix, local_metadata)`` after :meth:`state_dict`; a
        returned dict replaces the result (honoured when this module is the one called)."""
        hooks, public = self._hooks("_state_dict_hooks"), self._hooks("_state_dict_hooks_public")
        if any(h is hook and i in public for i, h in hooks.items()):
            raise RuntimeError("Cannot register the same function as the state dict post hook that was "
                               "previously registered via register_state_dict_post_hook")
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def register_load_state_dict_pre_hook(self, hook: Callable[..., None]) -> RemovableHandle:
        """Run ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` before :meth:`load_state_dict` checks this module's
        entries; it may edit ``state_dict`` (this module's part of it) in place."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def _register_load_state_dict_pre_hook(self, hook: Callable[..., None], with_module: bool = False) -> RemovableHandle:
        """As :meth:`register_load_state_dict_pre_hook`; without ``with_module`` the hook is
        called without the module argument."""
        hooks, with_mod = self._hooks("_load_state_dict_pre_hooks"), self._hooks("_load_state_dict_pre_hooks_with_module")
        handle = RemovableHandle(hooks, with_mod)
        hooks[handle.id] = hook
        if with_module:
            with_mod[handle.id] = True
        return handle

    def register_load_state_dict_post_hook(self, hook: Callable[..., None]) -> RemovableHandle:
        """Run ``hook(module, incompatible_keys)`` after :meth:`load_state_dict` checked this module
        and its children; it may edit ``incompatible_keys.missing_keys`` / ``.unexpected_keys`` in
        place (before ``strict`` judges them) and must return None.

        >>> m = Sequential(Identity()); m[0].register_parameter("w", Parameter([0.0]))
        >>> _ = m.register_load_state_dict_post_hook(lambda mod, keys: keys.missing_keys.clear())
        >>> m.load_state_dict({})
        <All keys matched successfully>
        """
        hooks = self._hooks("_load_state_dict_post_hooks")
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def _run_load_state_dict_pre_hooks(self, state_dict: Dict[str, Any], prefix: str, metadata: Any,
                                       strict: bool, missing_keys: List[str], unexpected_keys: List[str],
                                       error_msgs: List[str]) -> None:
        hooks = self.__dict__.get("_load_state_dict_pre_hooks")
        if not hooks:
            return
        local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
        with_module = self.__dict__.get("_load_state_dict_pre_hooks_with_module", {})
        for hook_id, hook in list(hooks.items()):
            args = (state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
            hook(self, *args) if hook_id in with_module else hook(*args)

    def _run_load_state_dict_post_hooks(self, missing_keys: List[str], unexpected_keys: List[str]) -> None:
        hooks = self.__dict__.get("_load_state_dict_post_hooks")
        if not hooks:
            return
        incompatible = IncompatibleKeys(missing_keys, unexpected_keys)
        for hook in list(hooks.values()):
            if hook(self, incompatible) is not None:
                raise RuntimeError("load_state_dict post-hook must return None; edit "
                                   "incompatible_keys in place instead")

    # ------------------------------------------------------------------ state dict

    def _save_to_state_dict(
        self, destination: Dict[str, Any], prefix: str, keep_vars: bool
    ) -> None:
        """Store this module's own parameters and persistent buffers (not children's)."""
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.view(np.ndarray)
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else buf.view(np.ndarray)

    def state_dict(
        self,
        destination: Optional[Dict[str, Any]] = None,
        prefix: str = "",
        keep_vars: bool = False,
    ) -> Dict[str, Any]:
        """Return an ``OrderedDict`` of all parameters and persistent buffers.

        Values are plain ``ndarray`` views sharing memory with the module
        (the :class:`Parameter` objects themselves if ``keep_vars``).

        >>> net = Sequential(Identity())
        >>> net[0].register_parameter("w", Parameter([1.0]))
        >>> dict(net.state_dict())
        {'0.w': array([1.], dtype=float32)}
        """
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()  # type: ignore[attr-defined]
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in list(self.__dict__.get("_state_dict_pre_hooks", {}).values()):
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(
                    destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars
                )
        public = self.__dict__.get("_state_dict_hooks_public", {})
        for hook_id, hook in list(self.__dict__.get("_state_dict_hooks", {}).items()):
            result = hook(self, destination, prefix, local_metadata)
            if hook_id in public:
                if result is not None:
                    raise RuntimeError("state_dict post-hook must return None")
            elif result is not None:
                destination = result
        return destination

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        missing_keys: List[str],
        unexpected_keys: List[str],
        error_msgs: List[str],
        pending: List[Tuple[Dict[str, Any], str, np.ndarray]],
    ) -> None:
        """Check this module's own entries of ``state_dict`` (keys under ``prefix``).

        Nothing is written here: valid values are queued in ``pending`` as
        ``(registry, name, value)`` so that :meth:`load_state_dict` copies only
        once the whole checkpoint is known to be valid. Problems go to the
        three lists; unusable dtypes raise ``TypeError`` right away.
        """
        local: Dict[str, Tuple[Dict[str, Any], np.ndarray]] = {}
        for name, param in self._parameters.items():
            if param is not None:
                local[name] = (self._parameters, param)
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                local[name] = (self._buffers, buf)

        for name, (registry, current) in local.items():
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            try:
                value = _as_array(state_dict[key])
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TypeError(
                    f"state_dict entry '{key}' cannot be converted to an array: {exc}"
                ) from exc
            if value.dtype.kind not in _REAL_KINDS:
                raise TypeError(
                    f"state_dict entry '{key}' has dtype {value.dtype}; "
                    "expected real numeric data (bool, int or float)"
                )
            # torch accepts a one-element vector for a 0-d entry.
            if current.ndim == 0 and value.shape == (1,):
                value = value.reshape(())
            if value.shape != current.shape:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {value.shape} "
                    f"from checkpoint, the shape in current model is {current.shape}."
                )
                continue
            pending.append((registry, name, value))

        for key in state_dict:
            if key.startswith(prefix):
                head, dot, _ = key[len(prefix):].partition(".")
                # A dotted key belongs to a child, which checks the rest itself.
                if head not in (self._modules if dot else local):
                    unexpected_keys.append(key)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into the parameters and buffers.

        Values may be any real numeric array-likes, including torch tensors.
        They are cast to the dtype of the existing array and copied into it in
        place, so outside references to parameters stay valid and the
        caller's arrays are neither modified nor aliased. With ``assign=True``
        each entry is instead replaced by a new array (a copy, same dtype and
        class). Size mismatches always raise; missing / unexpected keys raise
        only if ``strict``. Everything is checked before anything is written.

        >>> net = Sequential(Identity())
        >>> net[0].register_parameter("w", Parameter([0.0]))
        >>> net.load_state_dict({"0.w": [3]})
        <All keys matched successfully>
        >>> net[0].w
        Parameter containing:
        array([3.], dtype=float32)
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing_keys: List[str] = []
        unexpected_keys: List[str] = []
        error_msgs: List[str] = []
        pending: List[Tuple[Dict[str, Any], str, np.ndarray]] = []

        def load(module: Module, local_state: Mapping[str, Any], prefix: str) -> None:
            module._run_load_state_dict_pre_hooks(local_state, prefix, getattr(state_dict, "_metadata", None),
                                                  strict, missing_keys, unexpected_keys, error_msgs)
            module._load_from_state_dict(
                local_state, prefix, missing_keys, unexpected_keys, error_msgs, pending
            )
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    child_state = {
                        k: v for k, v in local_state.items() if k.startswith(child_prefix)
                    }
                    load(child, child_state, child_prefix)
            module._run_load_state_dict_post_hooks(missing_keys, unexpected_keys)

        load(self, dict(state_dict), "")

        if strict:
            if unexpected_keys:
                keys = ", ".join(f'"{k}"' for k in unexpected_keys)
                error_msgs.insert(0, f"Unexpected key(s) in state_dict: {keys}. ")
            if missing_keys:
                keys = ", ".join(f'"{k}"' for k in missing_keys)
                error_msgs.insert(0, f"Missing key(s) in state_dict: {keys}. ")
        if error_msgs:
            raise RuntimeError(
                "Error(s) in loading state_dict for {}:\n\t{}".format(
                    type(self).__name__, "\n\t".join(error_msgs)
                )
            )

        # With assign, a parameter shared by several modules stays shared.
        replacements: Dict[int, np.ndarray] = {}
        for registry, name, value in pending:
            target = registry[name]
            if assign:
                if id(target) not in replacements:
                    replacements[id(target)] = target.copy()
                target = replacements[id(target)]
                registry[name] = target
            np.copyto(target, value, casting="unsafe")
        return IncompatibleKeys(missing_keys, unexpected_keys)

    # ------------------------------------------------------------------ repr

    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """Module-specific part of the repr (override in subclasses)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({key}): " + _addindent(repr(module), 2) for key, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if len(extra_lines) == 1 and not child_lines:
            main += extra_lines[0]
        elif lines:
            main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: positional access, append, extend, insert, pop."""

    _modules: Dict[str, Module]  # type: ignore[assignment]

    def _key_at(self, index: int) -> str:
        raise NotImplementedError

    def __setitem__(self, index: int, module: Module) -> None:
        self._modules[self._key_at(index)] = _require_module(module, f"{type(self).__name__}.__setitem__")

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Any:
        """Add ``module`` at the end; return ``self``."""
        self.add_module(str(len(self)), _require_module(module, f"{type(self).__name__}.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> Any:
        """Append every module of an iterable; return ``self``."""
        if not isinstance(modules, Iterable):
            raise TypeError(
                f"{type(self).__name__}.extend expected an iterable of Modules, got {_typename(modules)}"
            )
        for module in modules:
            self.append(module)
        return self

    def _insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (``-len <= index <= len``)."""
        _require_module(module, f"{type(self).__name__}.insert")
        size = len(self)
        index = operator.index(index)
        if not -size <= index <= size:
            raise IndexError(f"Index out of range: {index}")
        if index < 0:
            index += size
        for i in range(size, index, -1):
            self._modules[str(i)] = self._modules[str(i - 1)]
        self._modules[str(index)] = module

    def pop(self, index: Union[int, slice]) -> Any:
        """Remove and return the module(s) at ``index``; later keys are renumbered."""
        popped = self[index]  # type: ignore[index]
        del self[index]  # type: ignore[attr-defined]
        return popped


class Sequential(_ModuleSequence):
    """Chain of modules called in order, like ``torch.nn.Sequential``.

    Built from positional modules (keys ``'0'``, ``'1'``, ...) or from one
    ``OrderedDict`` of named modules.

    >>> seq = Sequential(Identity(), Flatten())
    >>> seq(np.zeros((2, 3, 4))).shape
    (2, 12)
    >>> seq[-1]
    Flatten(start_dim=1, end_dim=-1)
    >>> len(seq + Sequential(Identity()))
    3
    """

    _modules: Dict[str, Module]  # type: ignore[assignment]

    @overload
    def __init__(self, *args: Module) -> None: ...

    @overload
    def __init__(self, arg: OrderedDict[str, Module], /) -> None: ...

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, _require_module(module, "Sequential"))
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), _require_module(module, "Sequential"))

    def _key_at(self, index: int) -> str:
        size = len(self)
        index = operator.index(index)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range")
        return list(self._modules)[index]

    @overload
    def __getitem__(self, index: int) -> Module: ...

    @overload
    def __getitem__(self, index: slice) -> Sequential: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Module, Sequential]:
        if isinstance(index, slice):
            # Keys are kept, as torch does, so state_dict names stay stable.
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        return self._modules[self._key_at(index)]

    def __delitem__(self, index: Union[int, slice]) -> None:
        if isinstance(index, slice):
            for key in list(self._modules)[index]:
                del self._modules[key]
        else:
            del self._modules[self._key_at(index)]
        self._modules = _renumbered(self._modules)

    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            return NotImplemented
        return Sequential(*self, *other)

    def insert(self, index: int, module: Module) -> Sequential:
        """Insert ``module`` before position ``index`` (``-len <= index <= len``); return ``self``."""
        self._insert(index, module)
        return self

    def forward(self, input: Any) -> Any:
        for module in self:
            input = module(input)
        return input


class ModuleList(_ModuleSequence):
    """List of sub-modules, like ``torch.nn.ModuleList`` (it has no ``forward``).

    >>> layers = ModuleList([Identity()]).append(Identity())
    >>> layers.insert(0, Flatten())
    >>> del layers[1]
    >>> layers
    ModuleList(
      (0): Flatten(start_dim=1, end_dim=-1)
      (1): Identity()
    )
    """

    _modules: Dict[str, Module]  # type: ignore[assignment]

    def __init__(self, modules: Optional[Iterable[Module]] = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _key_at(self, index: int) -> str:
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range")
        return str(index % len(self))

    @overload
    def __getitem__(self, index: int) -> Module: ...

    @overload
    def __getitem__(self, index: slice) -> ModuleList: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Module, ModuleList]:
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[self._key_at(index)]

    def __delitem__(self, index: Union[int, slice]) -> None:
        if isinstance(index, slice):
            for i in range(len(self))[index]:
                del self._modules[str(i)]
        else:
            del self._modules[self._key_at(index)]
        self._modules = _renumbered(self._modules)

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        if not isinstance(other, Iterable):
            return NotImplemented
        return ModuleList(itertools.chain(self, other))

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (``-len <= index <= len``)."""
        self._insert(index, module)

    def __repr__(self) -> str:
        # Runs of children with identical reprs collapse into "(i-j): n x repr".
        reprs = [repr(module) for module in self]
        if not reprs:
            return self._get_name() + "()"
        lines = []
        start = 0
        for text, group in itertools.groupby(reprs):
            count = len(list(group))
            end = start + count - 1
            label = f"({start}): {text}" if count == 1 else f"({start}-{end}): {count} x {text}"
            lines.append(_addindent(label, 2))
            start = end + 1
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """Ordered mapping of names to sub-modules, like ``torch.nn.ModuleDict``.

    >>> blocks = ModuleDict({"a": Identity()})
    >>> blocks.update([("b", Flatten())])
    >>> list(blocks), "b" in blocks, type(blocks.pop("a")).__name__
    (['a', 'b'], True, 'Identity')
    """

    _modules: Dict[str, Module]  # type: ignore[assignment]

    def __init__(
        self,
        modules: Optional[Union[Mapping[str, Module], Iterable[Tuple[str, Module]]]] = None,
    ) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _require_module(module, "ModuleDict.__setitem__"))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        """Names, in insertion order."""
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        """Modules, in insertion order."""
        return self._modules.values()

    def items(self) -> Iterable[Tuple[str, Module]]:
        """``(name, module)`` pairs, in insertion order."""
        return self._modules.items()

    def clear(self) -> None:
        """Remove all modules."""
        self._modules.clear()

    def pop(self, key: str) -> Module:
        """Remove and return the module named ``key``."""
        module = self[key]
        del self[key]
        return module

    def update(
        self, modules: Union[Mapping[str, Module], Iterable[Tuple[str, Module]]]
    ) -> None:
        """Add / overwrite entries from a mapping or an iterable of ``(name, module)`` pairs."""
        # A ModuleDict has items() but is not a registered Mapping.
        if isinstance(modules, (Mapping, ModuleDict)):
            for key, module in modules.items():
                self[key] = module
            return
        if not isinstance(modules, Iterable):
            raise TypeError(
                "ModuleDict.update should be called with an iterable of key/value pairs, "
                f"but got {_typename(modules)}"
            )
        for index, pair in enumerate(modules):
            if not isinstance(pair, Iterable):
                raise TypeError(
                    f"ModuleDict update sequence element #{index} should be Iterable; "
                    f"is {_typename(pair)}"
                )
            entry: Tuple[Any, ...] = tuple(pair)
            if len(entry) != 2:
                raise ValueError(
                    f"ModuleDict update sequence element #{index} has length {len(entry)}; "
                    "2 is required"
                )
            self[entry[0]] = entry[1]


class Flatten(Module):
    """Flatten dimensions ``start_dim`` to ``end_dim`` of an ndarray into one.

    >>> Flatten()(np.zeros((2, 3, 4))).shape
    (2, 12)
    >>> Flatten(0, 1)(np.zeros((2, 3, 4))).shape
    (6, 4)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: np.ndarray) -> np.ndarray:
        if not isinstance(input, np.ndarray):
            raise TypeError(f"Flatten expected a numpy.ndarray input, got {_typename(input)}")
        array = np.asarray(input)  # a plain view even for a Parameter
        # Like torch, a 0-d input behaves as 1-d for dimension wrapping.
        ndim = max(array.ndim, 1)
        start, end = (self._wrap_dim(dim, ndim) for dim in (self.start_dim, self.end_dim))
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = array.shape if array.ndim else (1,)
        # An explicit product (not -1) also handles zero-size dimensions.
        return array.reshape(shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :])

    @staticmethod
    def _wrap_dim(dim: int, ndim: int) -> int:
        if not -ndim <= dim < ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                f"but got {dim})"
            )
        return dim % ndim

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Return the input unchanged; constructor arguments are accepted and ignored.

    >>> x = np.ones(3).view(Tensor)
    >>> Identity(54, unused="argument")(x) is x
    True
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input
