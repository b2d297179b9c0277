"""Weight initialisation as torch.nn.init does it, from a seedable NumPy generator.

The values follow torch's distributions (not torch's random stream): reseed with
:func:`manual_seed` for reproducible networks.

>>> import wageubn
>>> import wageubn.function as nn
>>> wageubn.manual_seed(0); a = nn.Linear(3, 2).weight.copy()
>>> wageubn.manual_seed(0); bool((nn.Linear(3, 2).weight == a).all())
True
"""
import math

import numpy as np

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


def uniform_(array: np.ndarray, a: float = 0.0, b: float = 1.0) -> np.ndarray:
    """Fill ``array`` in place with U(a, b); returns it."""
    array[...] = _rng().uniform(a, b, size=array.shape)
    return array


def normal_(array: np.ndarray, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """Fill ``array`` in place with N(mean, std**2); returns it."""
    array[...] = _rng().normal(mean, std, size=array.shape)
    return array


def fan_in(array: np.ndarray) -> int:
    """Inputs feeding one output: dim 1 times the receptive field, as torch computes it."""
    if array.ndim < 2:
        raise ValueError("fan_in: needs an array of at least 2 dimensions")
    return int(array.shape[1] * np.prod(array.shape[2:], dtype=np.int64))


def kaiming_uniform_(array: np.ndarray, a: float = 0.0) -> np.ndarray:
    """He-uniform fill for leaky_relu with slope ``a`` (torch's default layer init uses a=sqrt(5))."""
    gain = math.sqrt(2.0 / (1 + a * a))
    fan = fan_in(array)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan) if fan else 0.0
    return uniform_(array, -bound, bound)


def reset_linear_like(weight: np.ndarray, bias) -> None:
    """torch's reset_parameters for Conv and Linear: kaiming_uniform(a=sqrt(5)), bias U(+-1/sqrt(fan_in))."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan = fan_in(weight)
        bound = 1 / math.sqrt(fan) if fan > 0 else 0.0
        uniform_(bias, -bound, bound)
