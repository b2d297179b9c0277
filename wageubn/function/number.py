"""Quantizer functions of WAGEUBN (paper Sec. III.C), computed by C kernels.

Every function takes any real array-like, computes in float32 data with exact
power-of-two scaling (in double inside the kernel) and returns a new float32
ndarray; the input is never modified.  Rounding is half to even, as torch.round.

Edge cases (see docs/compatibility.md):
- ``dec`` widths may be any int in [-512, 512] (``dec <= 0`` means a step of 2 or
  more); ``all`` widths must lie in [1, 512].  Large widths are exact: directquant
  with a huge ``k`` returns its input unchanged.
- NaN stays NaN; +-Inf stays +-Inf through directquant and saturates where a clamp applies.
- The range ``R = 2**round(log2(max|x|))`` of shiftquant / constquant / errorquant is
  taken over the finite entries, and is 1 when they are all zero (no log2(0)).

>>> from wageubn.function import directquant, alldirectquant
>>> directquant([0.3, -1.26, 7.0], 3)
array([ 0.25, -1.25,  7.  ], dtype=float32)
>>> alldirectquant([0.3, -1.26, 7.0], 3, 4)
array([ 0.25, -1.25,  1.75], dtype=float32)
"""
import functools
from typing import Optional, Union

import numpy as np

from .. import _C

ArrayLike = Union[np.ndarray, list, tuple, float, int]
Seed = Union[None, int, "np.random.Generator"]  # a string: numpy.random is imported when used

NONE, DIRECT, CLAMPED = 0, 1, 2
MAX_WIDTH = _C.MAX_WIDTH


def check_width(value, name: str, minimum: int = -MAX_WIDTH) -> int:
    """``value`` as an int width in [minimum, MAX_WIDTH], else a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int bit width, got {type(value).__name__} {value!r}")
    if not minimum <= value <= MAX_WIDTH:
        raise ValueError(f"{name}: expected a bit width in [{minimum}, {MAX_WIDTH}], got {value}")
    return int(value)


def _fmt(kind: int, dec, all_, dec_name: str, all_name: str) -> tuple:
    if kind == NONE:
        return (NONE, 1, 1)
    return (kind, check_width(dec, dec_name), check_width(all_, all_name, 1))


_fmt_memo = functools.lru_cache(maxsize=4096, typed=True)(_fmt)


def fmt(kind: int, dec, all_, dec_name: str = "k", all_name: str = "k_all") -> tuple:
    """A kernel format tuple (kind, dec, all), checked; kind NONE ignores the widths.

    Memoised by value and type (layers ask for their formats on every call); an unhashable
    width goes to the plain check, which names it in its error."""
    try:
        return _fmt_memo(kind, dec, all_, dec_name, all_name)
    except TypeError as error:
        if "unhashable" not in str(error):
            raise
        return _fmt(kind, dec, all_, dec_name, all_name)


def _seed(seed: Seed) -> int:
    if seed is None:
        seed = np.random.default_rng()
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected None, an int or a numpy Generator, got {type(seed).__name__}")
    return int(seed) % 2**64


def directquant(x: ArrayLike, k: int, k_: int = 0) -> np.ndarray:
    """``round(x * 2**(k-1)) / 2**(k-1)``: ``k`` fraction bits (counting the sign), no clamp.

    ``k_`` is accepted, and ignored, for the reference's signature.
    """
    return _C.quantize(x, fmt(DIRECT, k, 1))


def alldirectquant(x: ArrayLike, kdec: int, kall: int) -> np.ndarray:
    """directquant with ``kdec`` then a clamp of the integer to ``+-(2**(kall-1) - 1)``.

    >>> alldirectquant([100.0, -0.001], 8, 8)
    array([ 0.9921875, -0.       ], dtype=float32)
    """
    return _C.quantize(x, fmt(CLAMPED, kdec, kall, "kdec", "kall"))


def weightquant(x: ArrayLike, k: int, k_: int = 0) -> np.ndarray:
    """``clamp(directquant(x, k), -1 + 2**-(k-1), 1 - 2**-(k-1))``, i.e. alldirectquant(x, k, k)."""
    return _C.quantize(x, fmt(CLAMPED, k, check_width(k, "k", 1)))


def sround(x: ArrayLike, seed: Seed = None) -> np.ndarray:
    """Stochastic rounding: ``ceil(x)`` with probability ``x - floor(x)``, else ``floor(x)``.

    The same ``seed`` (an int, or a numpy Generator to draw one from) gives the same result.

    >>> sround([0.5, 2.0, -1.25], seed=7).tolist() == sround([0.5, 2.0, -1.25], seed=7).tolist()
    True
    """
    return _C.sround(x, seed=_seed(seed))


def shiftquant(x: ArrayLike, k: int, k_: int = 0) -> np.ndarray:
    """``R * clamp(directquant(x / R, k), -1 + 2**-(k-1), 1 - 2**-(k-1))``, ``R = 2**round(log2(max|x|))``."""
    return _C.shiftquant(x, check_width(k, "k", 1))


def constquant(x: ArrayLike, k_dr: int, k: int, seed: Seed = None) -> np.ndarray:
    """``clamp(sround(2**(k_dr-1) * x / R), +-(2**(k_dr-1) - 1)) / 2**(k-1)`` (weight gradients).

    As in the paper, the range ``R`` is divided out and not restored.
    """
    return _C.constquant(x, k=check_width(k, "k"), k_dr=check_width(k_dr, "k_dr", 1), seed=_seed(seed))


def errorquant(x: ArrayLike, k: int, k_: int = 0) -> np.ndarray:
    """WAGEUBN's flag quantization of errors, with ``sc = R / 2**(k-1)``:

    values with ``|x| >= sc`` become ``sc * clamp(round(x / sc), +-(2**(k-1) - 1))``;
    smaller ones ``sc * directquant(x / sc, k)`` (k more fraction bits below ``sc``).
    """
    return _C.errorquant(x, check_width(k, "k", 1))


errquant = errorquant


def gwquant(grad: ArrayLike, kgw: int, kdr: int, seed: Seed = None) -> np.ndarray:
    """The weight-gradient quantizer (the reference's gwquant backward): ``constquant(grad, kdr, kgw)``."""
    return constquant(grad, check_width(kdr, "kdr", 1), check_width(kgw, "kgw"), seed=seed)


def gbnquant(grad: ArrayLike, k: int) -> np.ndarray:
    """The batch-norm gradient quantizer (the reference's gbnquant backward): ``directquant(grad, k)``."""
    return directquant(grad, k)


def gradquant(grad: ArrayLike, k: int, k_dr: Optional[int] = None, seed: Seed = None) -> np.ndarray:
    """Quantize a gradient: with ``k_dr`` as a weight gradient (gwquant), else as a BN gradient (gbnquant)."""
    if k_dr is None:
        return gbnquant(grad, k)
    return gwquant(grad, k, k_dr, seed=seed)


__all__ = ["directquant", "alldirectquant", "weightquant", "sround", "shiftquant", "constquant",
           "errorquant", "errquant", "gwquant", "gbnquant", "gradquant"]
