"""Pure-NumPy twins of wageubn's quantizers, written from their documented definitions.

Each twin casts its input to float32 (as the package does), computes in float64, where
power-of-two scaling is exact, and returns float32.  Stochastic twins take the uniform
draws ``u`` (same shape as ``x``) explicitly, since the C random stream is not reproduced.
Import from tests as ``from twins import directquant`` (pytest puts tests/ on sys.path).
"""
import numpy as np


def f64(x):
    """x as float32 data (the package's input cast), widened to float64."""
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float32).astype(np.float64)


def f32(v):
    """float64 results rounded to float32 (overflow to +-Inf, as the C cast)."""
    with np.errstate(over="ignore"):
        return np.asarray(v, dtype=np.float64).astype(np.float32)


def _dq(v, k):
    """directquant in float64: round half to even on a grid of 2**-(k-1)."""
    return np.round(v * 2.0 ** (k - 1)) * 2.0 ** (1 - k)


def _clamp(v, b):
    return np.clip(v, -b, b)


def range_pow2(x):
    """R = 2**round(log2(max finite |x|)), or 1 when there is no nonzero finite entry."""
    a = np.abs(f64(x))
    m = a[np.isfinite(a)].max(initial=0.0)
    return 2.0 ** np.round(np.log2(m)) if m > 0 else 1.0


def directquant(x, k):
    return f32(_dq(f64(x), k))


def alldirectquant(x, kdec, kall):
    q = _clamp(np.round(f64(x) * 2.0 ** (kdec - 1)), 2.0 ** (kall - 1) - 1)
    with np.errstate(over="ignore"):  # a saturated Inf with kdec << 0: 2**511 * 2**513
        return f32(q * 2.0 ** (1 - kdec))


def weightquant(x, k):
    return alldirectquant(x, k, k)


def _sr(v, u):
    """sround in float64: ceil(v) when u < v - floor(v), else floor(v); integers, NaN, Inf unchanged."""
    with np.errstate(invalid="ignore"):
        lo = np.floor(v)
        up = np.asarray(u, dtype=np.float64) < v - lo
    return np.where(np.isfinite(lo) & (lo != v), np.where(up, lo + 1, lo), v)


def sround(x, u):
    return f32(_sr(f64(x), u))


def shiftquant(x, k):
    r = range_pow2(x)
    return f32(r * _clamp(_dq(f64(x) / r, k), 1 - 2.0 ** (1 - k)))


def constquant(x, k_dr, k, u):
    dr = 2.0 ** (k_dr - 1)
    s = _sr(dr * f64(x) / range_pow2(x), u)  # rounded in float64, as dr * x / R may leave float32
    with np.errstate(over="ignore"):  # (2**511 - 1) * 2**513 overflows to Inf, as in C
        return f32(_clamp(s, dr - 1) * 2.0 ** (1 - k))


def errorquant(x, k):
    """sc = R / 2**(k-1); |x| >= sc: sc * clamp(round(x / sc)); else sc * directquant(x / sc, k)."""
    sc = range_pow2(x) * 2.0 ** (1 - k)
    v = f64(x) / sc
    with np.errstate(invalid="ignore"):
        big = np.abs(v) >= 1
    return f32(sc * np.where(big, _clamp(np.round(v), 2.0 ** (k - 1) - 1), _dq(v, k)))
