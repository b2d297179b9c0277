"""Gradient mode, as torch's ``no_grad`` / ``enable_grad`` / ``set_grad_enabled`` / ``inference_mode``.

Until autograd exists the mode is only a per-thread flag that training code reads
(:func:`is_grad_enabled`); each context works as a ``with`` block and as a decorator
(also bare, ``@no_grad``, and on generator functions), and restores the previous mode.

>>> import wageubn
>>> with wageubn.no_grad():
...     wageubn.is_grad_enabled()
False
>>> @wageubn.no_grad
... def evaluate():
...     return wageubn.is_grad_enabled()
>>> evaluate(), wageubn.is_grad_enabled()
(False, True)
"""
import functools
import inspect
import sys
import threading
from typing import Any, Callable

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether gradient recording is on in this thread (on unless a context turned it off)."""
    return getattr(_state, "grad", True)


def is_inference_mode_enabled() -> bool:
    """Whether an ``inference_mode()`` block is active in this thread."""
    return getattr(_state, "inference", False)


def _set(grad: bool, inference: bool) -> None:
    _state.grad = grad
    _state.inference = inference


class _Mode:
    """A context manager and decorator that sets the mode on entry and restores it on exit."""

    _grad: bool = True
    _inference: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # ``@no_grad`` without parentheses: the decorated function comes in as the argument.
        if cls._bare_decorator and len(args) == 1 and not kwargs and callable(args[0]) \
                and not isinstance(args[0], bool):
            return cls()(args[0])
        return super().__new__(cls)

    _bare_decorator = True

    def _target(self) -> tuple:
        return self._grad, self._inference

    def __enter__(self) -> None:
        self._saved = (is_grad_enabled(), is_inference_mode_enabled())
        _set(*self._target())

    def __exit__(self, *exc_info: Any) -> None:
        _set(*self._saved)

    def _clone(self) -> "_Mode":
        return type(self)()

    def __call__(self, func: Callable) -> Callable:
        if not callable(func):
            raise TypeError(f"{type(self).__name__}: expected a function to decorate, got {func!r}")
        if inspect.isgeneratorfunction(func):
            return _generator_wrapper(self._clone, func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._clone():
                return func(*args, **kwargs)
        return wrapper


def _generator_wrapper(make: Callable[[], _Mode], func: Callable) -> Callable:
    """The mode applies while the generator runs, not while its caller does between steps."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gen = func(*args, **kwargs)
        try:
            with make():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with make():
                        gen.close()
                    raise
                except BaseException:
                    with make():
                        response = gen.throw(*sys.exc_info())
                else:
                    with make():
                        response = gen.send(request)
        except StopIteration as stop:
            return stop.value
    return wrapper


class no_grad(_Mode):
    """Gradient recording off inside the block / decorated function."""

    _grad = False


class enable_grad(_Mode):
    """Gradient recording on inside the block / decorated function (e.g. within ``no_grad``)."""

    _grad = True


class inference_mode(_Mode):
    """As :class:`no_grad` (``mode=True``); ``inference_mode(False)`` changes nothing."""

    def __init__(self, mode: bool = True) -> None:
        if not isinstance(mode, bool):
            raise TypeError(f"inference_mode: mode: expected a bool, got {mode!r}")
        self.mode = mode

    def _target(self) -> tuple:
        if self.mode:
            return False, True
        return is_grad_enabled(), is_inference_mode_enabled()

    def _clone(self) -> "_Mode":
        return inference_mode(self.mode)


class set_grad_enabled(_Mode):
    """Set gradient recording to ``mode`` now (a plain call works, as in torch); as a
    context or decorator the previous mode comes back on exit.

    >>> import wageubn
    >>> _ = wageubn.set_grad_enabled(False); wageubn.is_grad_enabled()
    False
    >>> _ = wageubn.set_grad_enabled(True); wageubn.is_grad_enabled()
    True
    """

    _bare_decorator = False

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled: mode: expected a bool, got {mode!r}")
        self.mode = mode
        self._saved = (is_grad_enabled(), is_inference_mode_enabled())
        _set(mode, self._saved[1])

    def __enter__(self) -> None:
        pass  # the mode was set by the constructor

    def _clone(self) -> "_Mode":
        return set_grad_enabled(self.mode)

    def __call__(self, func: Callable) -> Callable:
        _set(*self._saved)  # decorating must not change the mode of the caller
        return super().__call__(func)
