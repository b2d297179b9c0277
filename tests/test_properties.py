"""Property-based tests (hypothesis): every quantizer and layer on random shapes (0 and 1
sizes included), dtypes, layouts, widths (extremes included) and values (NaN, +-Inf,
subnormals, +-0, huge magnitudes).  Each call either equals its NumPy twin or raises
TypeError / ValueError / MemoryError with a message naming what is wrong; none crashes.

The twins: tests/twins.py (quantizers), tests/layer_twins.py (conv, linear, adder, batch
norm) and the pooling twin of tests/test_pool.py.  The budget is small (see SETTINGS; set
WAGEUBN_HYPOTHESIS_EXAMPLES to explore more); under CI the examples are derandomized so a
run is reproducible.  See docs/reliability.md.
"""
import math
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import wageubn.function as nn
from wageubn.function import number as N

import layer_twins as LT
import twins as T
from test_pool import np_pool

SETTINGS = settings(
    max_examples=int(os.environ.get("WAGEUBN_HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
F32 = np.float32
ERRORS = (TypeError, ValueError, MemoryError)

# ------------------------------------------------------------------------------ strategies

F32_SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 2.0**-149, -(2.0**-149), 3 * 2.0**-149,
                2.0**-126, -1.1754942e-38, 1e-40, float(np.finfo(F32).max), -float(np.finfo(F32).max),
                1e30, -7e25, 0.5, 1.5, 2.5, -2.5, -0.5, 1.0, 6.0, 16777217.0, 0.3, -1.26, 127.0]
F64_ONLY = [1e300, -1e300, 5e-324, 3.5e38, -3.5e38, 1e-320, 0.30000000000000004]


def float_elements(dtype, moderate=False):
    """Elements for a float array: special values and anything hypothesis finds."""
    width = np.dtype(dtype).itemsize * 8
    if moderate:  # finite, no overflow in float32 sums; still NaN/Inf/subnormals/zeros
        specials = [v for v in F32_SPECIALS if not (math.isfinite(v) and abs(v) > 1e6)]
        return st.one_of(st.sampled_from(specials),
                         st.floats(-1e6, 1e6, width=width, allow_subnormal=True))
    specials = F32_SPECIALS + (F64_ONLY if width == 64 else [])
    if width == 16:
        with np.errstate(all="ignore"):
            specials = [v for v in specials if not math.isfinite(v) or float(np.float16(v)) == v]
    return st.one_of(st.sampled_from(specials),
                     st.floats(width=width, allow_nan=True, allow_infinity=True, allow_subnormal=True))


REAL_DTYPES = [np.float32, np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64,
               np.uint8, np.uint64, np.bool_]


def elements_for(dtype, moderate=False):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return float_elements(dtype, moderate)
    if dtype.kind == "b":
        return st.booleans()
    info = np.iinfo(dtype)
    if moderate:
        return st.integers(max(info.min, -1000), min(info.max, 1000))
    return st.one_of(st.sampled_from([info.min, info.max, 0, 1]), st.integers(info.min, info.max))


@st.composite
def layouts(draw, a):
    """``a`` itself or an equal-valued array with another memory layout (or a read-only
    broadcast of part of it): Fortran order, strided, reversed, zero strides, non-native byte
    order, misaligned, read-only."""
    kind = draw(st.sampled_from(["c", "f", "strided", "reversed", "broadcast", "swapped",
                                 "misaligned", "readonly"]))
    if a.ndim == 0 or kind == "c":
        return a
    if kind == "f":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if kind == "reversed":
        return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[(slice(None, None, -1),) * a.ndim]
    if kind == "broadcast":
        axis = draw(st.integers(0, a.ndim - 1))
        if a.shape[axis] == 0:
            return a
        return np.broadcast_to(np.take(a, [0], axis=axis), a.shape)
    if kind == "swapped":
        if a.dtype.itemsize == 1:
            return a
        return a.astype(a.dtype.newbyteorder())
    if kind == "misaligned":
        buf = np.zeros(a.nbytes + 1, np.uint8)
        m = buf[1:].view(a.dtype).reshape(a.shape) if a.size else a
        m[...] = a
        return m
    r = a.copy()
    r.flags.writeable = False
    return r


@st.composite
def real_arrays(draw, shape=None, dtypes=REAL_DTYPES, moderate=False, max_dims=4, max_side=5):
    """A real-valued array of a random dtype, shape (sizes 0 and 1 included) and layout."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    a = draw(hnp.arrays(dtype, shape, elements=elements_for(dtype, moderate)))
    return draw(layouts(a))


DEC_WIDTHS = st.one_of(st.integers(-512, 512),
                       st.sampled_from([-513, -512, -511, -150, -1, 0, 1, 2, 8, 23, 24, 25, 53, 54,
                                        127, 128, 129, 149, 150, 511, 512, 513]))
HUGE_OR_ODD_WIDTHS = st.sampled_from([10**30, -10**30, 2**31, -2**31 - 1, 2**63, np.int64(-600),
                                      np.uint64(2**63), np.int8(3), np.int64(512)])
NOT_INT_WIDTHS = st.sampled_from([4.0, np.float32(4.0), True, False, "8", None, [4], 4 + 0j, b"8"])


def widths(lo=-512):
    """Mostly valid widths (>= lo, extremes included), sometimes out of range or not ints."""
    valid = st.one_of(st.integers(lo, 512), st.sampled_from([lo, lo + 1, 1, 2, 8, 23, 24, 25, 53, 54, 511, 512]))
    return st.one_of(valid, valid, valid, DEC_WIDTHS, HUGE_OR_ODD_WIDTHS, NOT_INT_WIDTHS)


def width_problem(value, lo):
    """None for a valid width, else the exception type the package must raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return TypeError
    return None if lo <= int(value) <= N.MAX_WIDTH else ValueError


def assert_same(out, expected):
    """Bitwise-equal float32 arrays: NaN == NaN and the sign of zeros included."""
    expected = np.asarray(expected)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32, (type(out), getattr(out, "dtype", None))
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(expected))


def unchanged(a, before):
    np.testing.assert_array_equal(np.asarray(a), before)


def check_error(exc_info, names):
    """A clear message: non-empty and naming one of ``names`` (an argument or a layer)."""
    msg = str(exc_info.value)
    assert len(msg) > 10 and re.search("|".join(map(re.escape, names)), msg), msg


def run(call, problems, names):
    """``call()`` when ``problems`` is empty, else its expected error with a clear message.
    Returns the result, or None when an error was (rightly) raised."""
    if problems:
        event("raises")
        with pytest.raises(ERRORS) as exc_info:
            call()
        assert isinstance(exc_info.value, tuple(problems)), (exc_info.value, problems)
        check_error(exc_info, names)
        return None
    with np.errstate(all="ignore"):
        return call()


def as_f32(x):
    """The package's input cast (numpy's float32 conversion), for the twins."""
    with np.errstate(all="ignore"):
        return np.array(x, dtype=np.float32)


# ------------------------------------------------------------------------------ quantizers

DETERMINISTIC = {
    # name: (ours, twin, [(argument name, smallest valid width)])
    "directquant": (N.directquant, T.directquant, [("k", -512)]),
    "alldirectquant": (N.alldirectquant, T.alldirectquant, [("kdec", -512), ("kall", 1)]),
    "weightquant": (N.weightquant, T.weightquant, [("k", 1)]),
    "shiftquant": (N.shiftquant, T.shiftquant, [("k", 1)]),
    "errorquant": (N.errorquant, T.errorquant, [("k", 1)]),
}


@pytest.mark.parametrize("name", list(DETERMINISTIC))
@SETTINGS
@given(data=st.data())
def test_deterministic_quantizers_match_twins(name, data):
    ours, twin, width_args = DETERMINISTIC[name]
    x = data.draw(real_arrays(), label="x")
    ks = [data.draw(widths(lo), label=arg) for arg, lo in width_args]
    problems = {p for (arg, lo), k in zip(width_args, ks) if (p := width_problem(k, lo))}
    bad_names = [arg for (arg, lo), k in zip(width_args, ks) if width_problem(k, lo)]
    before = np.array(x, copy=True)
    out = run(lambda: ours(x, *ks), problems, [f"{n}:" for n in bad_names])
    unchanged(x, before)
    if out is not None:
        assert_same(out, twin(as_f32(x), *[int(k) for k in ks]))


@SETTINGS
@given(data=st.data())
def test_sround_is_floor_or_ceil(data):
    x = data.draw(real_arrays(), label="x")
    seed = data.draw(st.one_of(st.integers(0, 2**64 - 1), st.integers(-2**70, 2**70)), label="seed")
    before = np.array(x, copy=True)
    with np.errstate(all="ignore"):
        out = N.sround(x, seed=seed)
        again = N.sround(x, seed=seed)
    unchanged(x, before)
    assert_same(out, again)  # a seed fixes the result
    xf = as_f32(x)
    lo, hi = T.sround(xf, np.ones(xf.shape)), T.sround(xf, np.zeros(xf.shape))
    ok = (out == lo) | (out == hi) | (np.isnan(out) & np.isnan(lo))
    assert ok.all(), (xf[~ok], out[~ok])


@SETTINGS
@given(data=st.data())
def test_constquant_is_between_twin_floor_and_ceil(data):
    x = data.draw(real_arrays(), label="x")
    k_dr = data.draw(widths(1), label="k_dr")
    k = data.draw(widths(), label="k")
    problems = {p for p in (width_problem(k_dr, 1), width_problem(k, -512)) if p}
    names = (["k_dr"] if width_problem(k_dr, 1) else []) + (["k:"] if width_problem(k, -512) else [])
    out = run(lambda: N.constquant(x, k_dr, k, seed=7), problems, names)
    if out is None:
        return
    xf = as_f32(x)
    lo = T.constquant(xf, int(k_dr), int(k), np.ones(xf.shape))
    hi = T.constquant(xf, int(k_dr), int(k), np.zeros(xf.shape))
    ok = (out == lo) | (out == hi) | (np.isnan(out) & np.isnan(lo))
    assert out.dtype == np.float32 and out.shape == xf.shape
    assert ok.all(), (xf[~ok], out[~ok], lo[~ok], hi[~ok])


BAD_VALUES = st.sampled_from([None, "1.0", [1.0, "a"], 1j, np.array([1 + 2j]), np.array([object()]),
                              np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([b"x"]),
                              {"a": 1}, object()])


@pytest.mark.parametrize("name", ["directquant", "alldirectquant", "weightquant", "shiftquant",
                                  "errorquant", "sround", "constquant"])
@settings(SETTINGS, max_examples=15)
@given(bad=BAD_VALUES)
def test_quantizers_reject_non_real_input_naming_x(name, bad):
    call = {"directquant": lambda: N.directquant(bad, 8), "alldirectquant": lambda: N.alldirectquant(bad, 8, 8),
            "weightquant": lambda: N.weightquant(bad, 8), "shiftquant": lambda: N.shiftquant(bad, 8),
            "errorquant": lambda: N.errorquant(bad, 8), "sround": lambda: N.sround(bad, seed=1),
            "constquant": lambda: N.constquant(bad, 8, 8, seed=1)}[name]
    with pytest.raises(TypeError, match=r"^x: "):
        call()


# ------------------------------------------------------------------------------ layer helpers

LAYER_DEC = st.sampled_from([-512, -20, -3, 0, 1, 2, 4, 8, 12, 16, 24, 53, 100, 512])
LAYER_ALL = st.sampled_from([1, 2, 3, 8, 12, 16, 24, 53, 64, 512])
LAYER_DTYPES = [np.float32, np.float32, np.float64, np.int16, np.int64, np.uint8, np.bool_]


def quant(v, dec, all_, strict):
    """The package's part quantizer, from the twins: alldirectquant with iostrict, else directquant."""
    with np.errstate(all="ignore"):
        return T.alldirectquant(v, dec, all_) if strict else T.directquant(v, dec)


def compare(out, expected, bound, exact):
    """out (float32) against a float64 twin result.

    ``exact``: bitwise equality with float32(expected).  Otherwise NaN where the twin has NaN,
    the same infinities, and finite values within ``bound`` (an array or scalar)."""
    assert out.dtype == np.float32 and out.shape == np.shape(expected), (out.shape, np.shape(expected))
    with np.errstate(all="ignore"):
        exp32 = np.asarray(expected, np.float64).astype(np.float32)
    event("bitwise" if exact else "within bound")
    if exact:
        np.testing.assert_array_equal(out, exp32)
        return
    nan = np.isnan(exp32)
    np.testing.assert_array_equal(np.isnan(out), nan)
    inf = np.isinf(exp32)
    np.testing.assert_array_equal(out[inf], exp32[inf])
    fin = ~nan & ~inf
    with np.errstate(all="ignore"):
        diff = np.abs(out[fin].astype(np.float64) - np.asarray(expected, np.float64)[fin])
        tol = np.broadcast_to(bound, np.shape(expected))[fin] + np.spacing(np.abs(exp32[fin])).astype(np.float64)
    bad = ~(diff <= tol)
    assert not bad.any(), (out[fin][bad][:5], np.asarray(expected)[fin][bad][:5], tol[bad][:5])


def acc_bound(abs_acc, terms, strict):
    """Rounding bound of an accumulation whose sum of |terms| is abs_acc."""
    eps = 2.0**-52 if strict else 2.0**-23
    return (terms + 2) * eps * abs_acc + 1e-37


def exact_regime(abs_acc, *units):
    """Fixed-point accumulation is exact in double while every partial sum, counted in the
    finest unit, fits in 53 bits (docs/reliability.md)."""
    finest = min(units)
    with np.errstate(all="ignore"):
        m = float(np.max(abs_acc, initial=0.0))
    return math.isfinite(m) and finest > 0 and m / finest < 2.0**52


@st.composite
def layer_widths(draw, parts):
    return {p: (draw(LAYER_DEC, label=f"{p}_dec"), draw(LAYER_ALL, label=f"{p}_all")) for p in parts}


def width_kwargs(ws):
    kw = {}
    for part, (dec, all_) in ws.items():
        kw[f"{part}_dec_bit_width"], kw[f"{part}_all_bit_width"] = dec, all_
    return kw


def fixed(v, dec, all_=None):
    """A float64 value rounded to the fixed-point grid of ``dec`` (clamped to ``all_`` when
    given), in float64 as the kernels do it before their final float32 cast."""
    with np.errstate(all="ignore"):
        q = np.round(np.asarray(v, np.float64) * 2.0 ** (dec - 1))
        if all_ is not None:
            q = np.clip(q, -(2.0 ** (all_ - 1) - 1), 2.0 ** (all_ - 1) - 1)
        return q * 2.0 ** (1 - dec)


def out_quantize(acc, dec, all_, strict):
    """The output of Conv2d / Linear / Adder2d: quantized (and clamped) only with iostrict."""
    return fixed(acc, dec, all_) if strict else acc


def set_param(draw, array, strict, label):
    """Random parameter values: any float32 with iostrict (they are clamped), moderate otherwise."""
    values = draw(hnp.arrays(np.float32, array.shape, elements=float_elements(np.float32, moderate=not strict)),
                  label=label)
    array[...] = values


# ------------------------------------------------------------------------------ Conv2d

@SETTINGS
@given(data=st.data())
def test_conv2d_matches_twin(data):
    draw = data.draw
    groups = draw(st.integers(1, 2), label="groups")
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                             st.just("valid"), st.just("same")), label="padding")
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]), label="padding_mode")
    strict = draw(st.booleans(), label="iostrict")
    ws = draw(layer_widths(["weight", "bias", "input", "output"]))
    conv = nn.Conv2d(cin, cout, k, stride, padding, dil, groups, bias=draw(st.booleans()), padding_mode=mode,
                     iostrict=strict, **width_kwargs(ws))
    set_param(draw, conv.weight, strict, "weight")
    if conv.bias is not None:
        set_param(draw, conv.bias, strict, "bias")
    unbatched = draw(st.booleans(), label="unbatched")
    side = st.one_of(st.integers(3, 7), st.integers(3, 7), st.integers(0, 2))
    shape = ((draw(st.integers(0, 2)),) if not unbatched else ()) + (
        draw(st.sampled_from([cin] * 7 + [cin + 1])), draw(side), draw(side))
    x = draw(real_arrays(shape=shape, dtypes=LAYER_DTYPES, moderate=not strict), label="x")

    # the oracle: torch's rules
    if padding == "same":
        tot = [d * (kk - 1) for d, kk in zip(dil, k)]
        pads = (tot[0] // 2, tot[1] // 2, tot[0] - tot[0] // 2, tot[1] - tot[1] // 2)
    elif padding == "valid":
        pads = (0, 0, 0, 0)
    else:
        p = (padding, padding) if isinstance(padding, int) else padding
        pads = (p[0], p[1], p[0], p[1])
    h, w = shape[-2:]
    problems, names = set(), []
    if shape[-3] != cin:
        problems.add(ValueError), names.append("channels")
    if mode != "zeros":
        fits = {"reflect": lambda p, n: p < n, "circular": lambda p, n: p <= n,
                "replicate": lambda p, n: n > 0}[mode]
        if not all(fits(p, n) for p, n in ((pads[0], h), (pads[2], h), (pads[1], w), (pads[3], w))):
            problems.add(ValueError), names.append("padding")
    if h + pads[0] + pads[2] < dil[0] * (k[0] - 1) + 1 or w + pads[1] + pads[3] < dil[1] * (k[1] - 1) + 1:
        problems.add(ValueError), names.append("kernel size")
    before = np.array(x, copy=True)
    out = run(lambda: conv(x), problems, names)
    unchanged(x, before)
    if out is None:
        return

    xb = as_f32(x)[None] if unbatched else as_f32(x)
    if mode != "zeros":
        xb = np.pad(xb, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
                    mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])
        pads = (0, 0, 0, 0)
    xq = quant(xb, *ws["input"], True) if strict else xb
    wq = quant(conv.weight, *ws["weight"], strict)
    bq = None if conv.bias is None else quant(conv.bias, *ws["bias"], strict)
    with np.errstate(all="ignore"):
        acc = LT.conv2d(xq, wq, bq, stride, pads, dil, groups)
        abs_acc = LT.conv2d(np.abs(xq), np.abs(wq), None if bq is None else np.abs(bq), stride, pads, dil, groups)
    expected = out_quantize(acc, *ws["output"], strict)
    if unbatched:
        expected, abs_acc = expected[0], abs_acc[0]
    terms = (cin // groups) * k[0] * k[1]
    units = [2.0 ** (1 - ws["input"][0]) * 2.0 ** (1 - ws["weight"][0]), 2.0 ** (1 - ws["bias"][0])]
    exact = strict and exact_regime(abs_acc, *units)
    step = 2.0 ** (1 - ws["output"][0]) if strict else 0.0
    compare(out, expected, acc_bound(abs_acc, terms, strict) + step, exact)


# ------------------------------------------------------------------------------ Linear

@SETTINGS
@given(data=st.data())
def test_linear_matches_twin(data):
    draw = data.draw
    fin, fout = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    strict = draw(st.booleans(), label="iostrict")
    ws = draw(layer_widths(["weight", "bias", "input", "output"]))
    lin = nn.Linear(fin, fout, bias=draw(st.booleans()), iostrict=strict, **width_kwargs(ws))
    set_param(draw, lin.weight, strict, "weight")
    if lin.bias is not None:
        set_param(draw, lin.bias, strict, "bias")
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3), label="lead")
    last = draw(st.sampled_from([fin, fin, fin, fin + 1]))
    x = draw(real_arrays(shape=lead + (last,), dtypes=LAYER_DTYPES, moderate=not strict), label="x")
    problems = {ValueError} if last != fin else set()
    out = run(lambda: lin(x), problems, ["last dimension"])
    if out is None:
        return
    xq = quant(as_f32(x), *ws["input"], True) if strict else as_f32(x)
    wq = quant(lin.weight, *ws["weight"], strict)
    bq = None if lin.bias is None else quant(lin.bias, *ws["bias"], strict)
    with np.errstate(all="ignore"):
        acc = LT.linear(xq.reshape(-1, fin), wq, bq).reshape(lead + (fout,))
        abs_acc = LT.linear(np.abs(xq).reshape(-1, fin), np.abs(wq),
                            None if bq is None else np.abs(bq)).reshape(lead + (fout,))
    units = [2.0 ** (1 - ws["input"][0]) * 2.0 ** (1 - ws["weight"][0]), 2.0 ** (1 - ws["bias"][0])]
    step = 2.0 ** (1 - ws["output"][0]) if strict else 0.0
    compare(out, out_quantize(acc, *ws["output"], strict), acc_bound(abs_acc, fin, strict) + step,
            strict and exact_regime(abs_acc, *units))


# ------------------------------------------------------------------------------ Adder2d

@SETTINGS
@given(data=st.data())
def test_adder2d_matches_twin(data):
    draw = data.draw
    cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    k, stride, pad = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    strict = draw(st.booleans(), label="iostrict")
    ws = draw(layer_widths(["weight", "bias", "input", "output"]))
    layer = nn.Adder2d(cin, cout, k, stride, pad, bias=draw(st.booleans()), iostrict=strict, **width_kwargs(ws))
    set_param(draw, layer.weight, strict, "weight")
    if layer.bias is not None:
        set_param(draw, layer.bias, strict, "bias")
    side = st.one_of(st.integers(2, 5), st.integers(2, 5), st.integers(0, 1))
    shape = (draw(st.integers(0, 2)), draw(st.sampled_from([cin] * 7 + [cin + 1])), draw(side), draw(side))
    x = draw(real_arrays(shape=shape, dtypes=LAYER_DTYPES, moderate=not strict), label="x")
    problems, names = set(), []
    if shape[1] != cin:
        problems.add(ValueError), names.append("channels")
    if min(shape[2:]) + 2 * pad < k:
        problems.add(ValueError), names.append("kernel size")
    out = run(lambda: layer(x), problems, names)
    if out is None:
        return
    xq = quant(as_f32(x), *ws["input"], True) if strict else as_f32(x)
    wq = quant(layer.weight, *ws["weight"], strict)
    bq = None if layer.bias is None else quant(layer.bias, *ws["bias"], strict)
    pads = (pad,) * 4
    with np.errstate(all="ignore"):
        acc = LT.adder2d(xq, wq, bq, (stride, stride), pads)
        # sum of |x - w| terms is at most sum |x| + |w|
        abs_acc = -LT.adder2d(np.abs(xq), -np.abs(wq), None, (stride, stride), pads)
        if bq is not None:
            abs_acc = abs_acc + np.abs(bq)[None, :, None, None]
    units = [min(2.0 ** (1 - ws["input"][0]), 2.0 ** (1 - ws["weight"][0])), 2.0 ** (1 - ws["bias"][0])]
    step = 2.0 ** (1 - ws["output"][0]) if strict else 0.0
    compare(out, out_quantize(acc, *ws["output"], strict), acc_bound(abs_acc, cin * k * k, strict) + step,
            strict and exact_regime(abs_acc, *units))


# ------------------------------------------------------------------------------ BatchNorm2d

@SETTINGS
@given(data=st.data())
def test_batchnorm2d_matches_twin(data):
    draw = data.draw
    c = draw(st.integers(1, 3))
    strict = draw(st.booleans(), label="iostrict")
    quantized = draw(st.booleans(), label="quant")
    ws = draw(layer_widths(["weight", "bias", "mean", "var", "output", "input"]))
    eps = draw(st.sampled_from([1e-5, 0.0, 1.0, 1e-300, 1e30]), label="eps")
    bn = nn.BatchNorm2d(c, eps=eps, affine=draw(st.booleans()), iostrict=strict, **width_kwargs(ws))
    bn.eval()
    if not quantized:
        bn.floatilize()
    for name in ("running_mean", "running_var", "weight", "bias"):
        if getattr(bn, name) is not None:
            set_param(draw, getattr(bn, name), True, name)
    shape = (draw(st.integers(0, 2)), draw(st.sampled_from([c, c, c + 1])),
             draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    ndim = draw(st.sampled_from([4, 4, 4, 3]))
    x = draw(real_arrays(shape=shape[:ndim], dtypes=LAYER_DTYPES), label="x")
    problems, names = set(), []
    if ndim != 4:
        problems.add(ValueError), names.append("4-d")
    elif shape[1] != c:
        problems.add(ValueError), names.append("channels")
    out = run(lambda: bn(x), problems, names)
    if out is None:
        return
    xf = as_f32(x)
    params = [bn.running_mean, bn.running_var, bn.weight, bn.bias]
    if quantized:
        if strict:
            xf = quant(xf, *ws["input"], True)
        params = [None if p is None else quant(p, *ws[part], strict)
                  for p, part in zip(params, ["mean", "var", "weight", "bias"])]
    with np.errstate(all="ignore"):
        v = LT.batchnorm(xf, *params, eps=eps)
    if quantized:  # BatchNorm2d's output is always quantized, clamped with iostrict
        v = fixed(v, ws["output"][0], ws["output"][1] if strict else None)
    compare(out, v, 0.0, True)


# ------------------------------------------------------------------------------ ReLU / ReLU6

@pytest.mark.parametrize("cls", [nn.ReLU, nn.ReLU6])
@SETTINGS
@given(data=st.data())
def test_relu_matches_twin(cls, data):
    draw = data.draw
    strict = draw(st.booleans(), label="iostrict")
    ws = draw(layer_widths(["input", "acti"]))
    x = draw(real_arrays(max_dims=5), label="x")
    inplace = draw(st.booleans(), label="inplace")
    layer = cls(inplace, iostrict=strict, **width_kwargs(ws))
    xf = as_f32(x)
    v = quant(xf, *ws["input"], True) if strict else xf.astype(np.float64)
    v = np.clip(v, 0.0, 6.0 if cls is nn.ReLU6 else np.inf)
    expected = quant(v, *ws["acti"], strict)
    target = x
    can_inplace = x.dtype.isnative  # non-native byte order: see test_reliability's regression test
    if inplace and not (isinstance(x, np.ndarray) and x.dtype.type is np.float32 and x.flags.writeable):
        run(lambda: layer(x), {TypeError}, ["inplace"])
        return
    if inplace and not can_inplace:
        return
    before = np.array(x, copy=True)
    out = run(lambda: layer(target), set(), [])
    if inplace:
        assert out.base is x  # a Tensor view of the very input written in place
    else:
        unchanged(x, before)
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------------------ pooling

POOLS = {"max": {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d},
         "avg": {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}}


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@SETTINGS
@given(data=st.data())
def test_pools_match_twin(mode, dims, data):
    draw = data.draw
    k = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    s = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    p = tuple(draw(st.integers(0, 2)) for _ in range(dims))
    d = tuple(draw(st.integers(1, 2)) for _ in range(dims)) if mode == "max" else (1,) * dims
    ceil_mode = draw(st.booleans(), label="ceil_mode")
    kwargs = {"ceil_mode": ceil_mode}
    if mode == "max":
        kwargs.update(dilation=d, return_indices=draw(st.booleans()))
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        if dims > 1:
            kwargs["divisor_override"] = draw(st.sampled_from([None, None, 1, 3, -2]))
    cls = POOLS[mode][dims]
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        with pytest.raises(ValueError, match="padding"):
            cls(k, s, p, **kwargs)
        return
    pool = cls(k, s, p, **kwargs)
    batched = draw(st.booleans(), label="batched")
    lead = ((draw(st.integers(0, 2)),) if batched else ()) + (draw(st.integers(0, 2)),)
    spatial = tuple(draw(st.integers(0, 6)) for _ in range(dims))
    x = draw(real_arrays(shape=lead + spatial, dtypes=LAYER_DTYPES), label="x")

    def osize(n, kk, pp, ss, dd):
        o = (n + 2 * pp - dd * (kk - 1) - 1 + (ss - 1 if ceil_mode else 0)) // ss + 1
        return o - 1 if ceil_mode and (o - 1) * ss >= n + pp else o

    problems, names = set(), []
    if 0 in x.shape[len(lead) - 1:]:
        problems.add(ValueError), names.append("non-zero")
    elif min(osize(*a) for a in zip(spatial, k, p, s, d)) <= 0:
        problems.add(ValueError), names.append("too small")
    before = np.array(x, copy=True)
    out = run(lambda: pool(x), problems, names)
    unchanged(x, before)
    if out is None:
        return
    pre = 3 - dims
    planes = as_f32(x).reshape((-1,) + (1,) * pre + spatial)
    div = kwargs.get("divisor_override")
    window = ((1,) * pre + k, (1,) * pre + s, (0,) * pre + p, (1,) * pre + d, ceil_mode)
    # the twin needs at least one plane; a zero batch gives an empty result of the same shape
    want, idx = np_pool(planes if planes.shape[0] else np.zeros((1,) + planes.shape[1:], np.float32),
                        *window, mode, kwargs.get("count_include_pad", True), abs(div) if div else None)
    # a dilated window may hold no element at all: -inf, and torch's (out-of-range) index
    nonempty = np_pool(np.zeros((1,) + planes.shape[1:], np.float32), *window, "max")[0] == 0
    if not planes.shape[0]:
        want, idx = want[:0], idx[:0] if idx is not None else None
    if div is not None and div < 0:
        want = -want
    want = want.reshape(lead + want.shape[4 - dims:])
    if mode == "max" and kwargs.get("return_indices"):
        out, indices = out
        assert indices.dtype == np.int64 and indices.shape == want.shape
        keep = np.broadcast_to(nonempty, idx.shape)
        np.testing.assert_array_equal(indices.reshape(idx.shape)[keep], idx[keep])
    assert out.dtype == np.float32 and out.shape == want.shape
    if mode == "max":
        np.testing.assert_array_equal(out, want)
    else:
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-37)


# ------------------------------------------------------------------------------ layers never crash

@SETTINGS
@given(data=st.data())
def test_layers_on_arbitrary_input_return_or_raise_clearly(data):
    """Any array-like (wrong rank, odd dtype, huge values) into any layer: a result of the
    right type, or TypeError/ValueError/MemoryError naming the layer or the input."""
    draw = data.draw
    layer = draw(st.sampled_from([
        nn.Conv2d(2, 3, 2), nn.Linear(3, 2), nn.Adder2d(2, 2, 2), nn.BatchNorm2d(2), nn.ReLU(), nn.ReLU6(),
        nn.MaxPool2d(2), nn.AvgPool1d(2), nn.MaxPool3d(1), nn.AvgPool3d(2, ceil_mode=True)]), label="layer")
    x = draw(st.one_of(
        real_arrays(dtypes=REAL_DTYPES, max_dims=6, max_side=4),
        hnp.arrays(st.sampled_from([np.complex64, object, "U2", "M8[D]"]),
                   hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)),
        st.sampled_from([None, 1.5, "abc", [[1, 2], [3]], {}, [1 + 1j]]),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4)), label="x")
    name = type(layer).__name__
    try:
        with np.errstate(all="ignore"):
            out = layer(x)
    except ERRORS as e:
        msg = str(e)
        assert len(msg) > 10 and re.search(rf"{name}|input|x:|channels|dimension|size|kernel", msg), msg
        return
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
