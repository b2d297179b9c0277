"""Weight initialisation under torch.nn.init's names, from a seedable NumPy generator.

Every function fills its array in place and returns it, with torch's fan and gain rules
and torch's argument names (``tensor``, ``a``, ``mode``, ``nonlinearity``, ``gain``, ...).
The values follow torch's distributions (not torch's random stream): reseed with
:func:`manual_seed` (or pass ``generator=numpy.random.Generator``) for reproducible networks.

>>> import numpy as np, wageubn
>>> import wageubn.function as nn
>>> wageubn.manual_seed(0); a = nn.Linear(3, 2).weight.copy()
>>> wageubn.manual_seed(0); bool((nn.Linear(3, 2).weight == a).all())
True
>>> w = nn.init.kaiming_normal_(np.empty((64, 32, 3, 3), np.float32), mode="fan_out", nonlinearity="relu")
>>> nn.init._calculate_fan_in_and_fan_out(w)
(288, 576)
>>> nn.init.calculate_gain("leaky_relu", 0.2) == (2 / (1 + 0.2 ** 2)) ** 0.5
True
"""
import math
import warnings
from typing import Tuple

import numpy as np

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_",
           "orthogonal_", "manual_seed"]

# Created on first use: numpy.random takes about 15 ms to import, a tenth of `import wageubn`.
_generator = None


def _rng():
    global _generator
    if _generator is None:
        _generator = np.random.default_rng()
    return _generator


def manual_seed(seed: int) -> None:
    """Reseed the generator that initialises new layers' weights (``seed``: a non-negative int)."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed: expected a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))


def _gen(generator):
    """The generator to draw from: ``generator`` (a numpy Generator) or the seeded one."""
    if generator is None:
        return _rng()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator: expected None or a numpy.random.Generator, got {type(generator).__name__}")
    return generator


def _target(tensor) -> np.ndarray:
    """``tensor`` checked as a writeable real ndarray (what the functions fill in place)."""
    if not isinstance(tensor, np.ndarray):
        raise TypeError(f"tensor: expected a numpy array (or Parameter) to fill in place, "
                        f"got {type(tensor).__name__}")
    if tensor.dtype.kind not in "fiub" or not tensor.flags.writeable:
        raise TypeError(f"tensor: expected a writeable real-valued array, got dtype {tensor.dtype}"
                        f"{'' if tensor.flags.writeable else ' (read-only)'}")
    return tensor


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    return float(value)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """torch's recommended gain for ``nonlinearity`` (``param``: leaky_relu's negative slope).

    >>> calculate_gain("tanh")
    1.6666666666666667
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"param: negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"nonlinearity: Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor) -> Tuple[int, int]:
    """(dim 1, dim 0) times the receptive field (the product of the dims after the second)."""
    shape = np.shape(tensor)
    if len(shape) < 2:
        raise ValueError("tensor: Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
                         f", got shape {shape}")
    field = math.prod(shape[2:])
    return int(shape[1]) * field, int(shape[0]) * field


def _calculate_correct_fan(tensor, mode: str) -> int:
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode.lower() == "fan_in" else fan_out


def _empty(tensor: np.ndarray) -> bool:
    if tensor.size == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None) -> np.ndarray:
    """Fill ``tensor`` in place with U(a, b); returns it."""
    tensor = _target(tensor)
    a, b = _number(a, "a"), _number(b, "b")
    if a > b:
        raise ValueError(f"b: expected a <= b, got a={a} and b={b}")
    tensor[...] = _gen(generator).uniform(a, b, size=tensor.shape)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> np.ndarray:
    """Fill ``tensor`` in place with N(mean, std**2); returns it."""
    tensor = _target(tensor)
    mean, std = _number(mean, "mean"), _number(std, "std")
    if std < 0:
        raise ValueError(f"std: expected a non-negative number, got {std}")
    tensor[...] = _gen(generator).normal(mean, std, size=tensor.shape)
    return tensor


def constant_(tensor, val: float) -> np.ndarray:
    """Fill ``tensor`` in place with ``val``; returns it."""
    _target(tensor)[...] = _number(val, "val")
    return tensor


def ones_(tensor) -> np.ndarray:
    """Fill ``tensor`` with ones."""
    return constant_(tensor, 1.0)


def zeros_(tensor) -> np.ndarray:
    """Fill ``tensor`` with zeros."""
    return constant_(tensor, 0.0)


def eye_(tensor) -> np.ndarray:
    """Fill a 2-d ``tensor`` with the identity (ones on the main diagonal of a rectangle).

    >>> eye_(np.empty((2, 3))).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    if np.ndim(tensor) != 2:
        raise ValueError(f"tensor: Only tensors with 2 dimensions are supported, got shape {np.shape(tensor)}")
    _target(tensor)[...] = np.eye(*tensor.shape)
    return tensor


def dirac_(tensor, groups: int = 1) -> np.ndarray:
    """Fill a 3-, 4- or 5-d convolution weight with the Dirac delta (identity per group).

    >>> dirac_(np.empty((2, 2, 3))).tolist()
    [[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]
    """
    if np.ndim(tensor) not in (3, 4, 5):
        raise ValueError(f"tensor: Only tensors with 3, 4, or 5 dimensions are supported, got shape {np.shape(tensor)}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups: expected a positive int, got {groups!r}")
    tensor = _target(tensor)
    if tensor.shape[0] % groups:
        raise ValueError(f"groups: dim 0 must be divisible by groups, got {groups} for shape {tensor.shape}")
    per_group = tensor.shape[0] // groups
    centre = tuple(s // 2 for s in tensor.shape[2:])
    tensor[...] = 0
    for g in range(groups):
        for d in range(min(per_group, tensor.shape[1])):
            tensor[(g * per_group + d, d) + centre] = 1
    return tensor


def xavier_uniform_(tensor, gain: float = 1.0, generator=None) -> np.ndarray:
    """Glorot-uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * _number(gain, "gain") * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None) -> np.ndarray:
    """Glorot-normal: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, _number(gain, "gain") * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode: str, nonlinearity: str) -> float:
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> np.ndarray:
    """He-uniform: U(-b, b), ``b = gain * sqrt(3 / fan)`` (fan by ``mode``, gain of ``nonlinearity``
    with slope ``a``; torch's default layer init uses a=sqrt(5))."""
    tensor = _target(tensor)
    if _empty(tensor):
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> np.ndarray:
    """He-normal: N(0, std**2), ``std = gain / sqrt(fan)``."""
    tensor = _target(tensor)
    if _empty(tensor):
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> np.ndarray:
    """N(mean, std**2) truncated to [a, b], by rejection (exact: every value is a draw of that law).

    Normal proposals when [a, b] holds much of the mass, uniform proposals on [a, b] otherwise.
    """
    tensor = _target(tensor)
    mean, std, a, b = (_number(v, n) for v, n in ((mean, "mean"), (std, "std"), (a, "a"), (b, "b")))
    if not std > 0:
        raise ValueError(f"std: expected a positive number, got {std}")
    if not a < b:
        raise ValueError(f"b: expected a < b, got a={a} and b={b}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    rng = _gen(generator)
    cdf = lambda v: (1.0 + math.erf((v - mean) / (std * math.sqrt(2.0)))) / 2.0
    values = np.empty(tensor.shape)
    flat = values.reshape(-1)
    pending = np.arange(flat.size)
    if cdf(b) - cdf(a) > 0.3:
        while pending.size:
            draw = rng.normal(mean, std, size=pending.size)
            ok = (draw >= a) & (draw <= b)
            flat[pending[ok]] = draw[ok]
            pending = pending[~ok]
    else:
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"a, b: expected a finite interval when it holds under 30% of the mass, "
                             f"got [{a}, {b}]")
        peak = min(max(mean, a), b)
        while pending.size:
            draw = rng.uniform(a, b, size=pending.size)
            ok = np.log(rng.random(pending.size)) <= -0.5 * (((draw - mean) / std) ** 2 - ((peak - mean) / std) ** 2)
            flat[pending[ok]] = draw[ok]
            pending = pending[~ok]
    tensor[...] = np.clip(values, a, b)  # a float32 cast must not round past a bound
    return tensor


def orthogonal_(tensor, gain: float = 1, generator=None) -> np.ndarray:
    """A (semi-)orthogonal matrix from the QR of a Gaussian one, times ``gain``; the array is
    viewed as (dim 0, the rest)."""
    tensor = _target(tensor)
    if tensor.ndim < 2:
        raise ValueError(f"tensor: Only tensors with 2 or more dimensions are supported, got shape {tensor.shape}")
    gain = _number(gain, "gain")
    if tensor.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.size // rows
    flat = _gen(generator).normal(0.0, 1.0, size=(rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    tensor[...] = (q * gain).reshape(tensor.shape)
    return tensor


def fan_in(array) -> int:
    """Inputs feeding one output: dim 1 times the receptive field, as torch computes it."""
    if np.ndim(array) < 2:
        raise ValueError("fan_in: needs an array of at least 2 dimensions")
    return _calculate_fan_in_and_fan_out(array)[0]


def reset_linear_like(weight: np.ndarray, bias) -> None:
    """torch's reset_parameters for Conv, ConvTranspose and Linear: kaiming_uniform(a=sqrt(5)),
    bias U(+-1/sqrt(fan_in)) with fan_in from the weight's dim 1 (as torch, for ConvTranspose too)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan = fan_in(weight)
        bound = 1 / math.sqrt(fan) if fan > 0 else 0.0
        uniform_(bias, -bound, bound)
