"""The quantizers of wageubn.function.number: against the NumPy twins, against the
reference wageubn 1.2.0 (on torch), and on the edge cases number.py documents."""
import math

import numpy as np
import pytest

import wageubn.function as F
from wageubn import _C
from wageubn.function import number as N

import twins as T

F32 = np.float32
TINY = F32(2.0 ** -149)  # smallest subnormal
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, TINY, -TINY, 3 * TINY, 1e-40, -2.5e-39,
                     1.2e-38, 3.4e38, -3.4e38, np.finfo(F32).max, 1e30, -7e25], F32)

DEC_WIDTHS = [-512, -200, -5, -4, -3, -2, -1, 0, 1, 2, 3, 5, 8, 12, 16, 23, 24, 25, 30, 150, 200, 512]
POS_WIDTHS = list(range(1, 33)) + [64, 150, 200, 512]
SHAPES = [(), (0,), (1,), (3, 0, 2), (1, 1), (17,), (4, 5), (2, 3, 4), (1, 6, 1)]


# ----------------------------------------------------------------------------- helpers

def assert_same(out, expected):
    """out is a float32 ndarray equal to expected, NaN == NaN and the sign of zeros included."""
    expected = np.asarray(expected)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(expected))


def mixed(rng, shape, scale_exp=(-45, 38), specials=True):
    """float32 data of many magnitudes, with NaN, Inf, zeros, subnormals and huge values mixed in."""
    n = int(np.prod(shape, dtype=np.int64))
    mags = 10.0 ** rng.uniform(*scale_exp, size=n)
    x = (rng.standard_normal(n) * mags).astype(F32)
    if specials and n:
        idx = rng.choice(n, size=min(n, 4), replace=False)
        x[idx] = rng.choice(SPECIALS, size=idx.size)
    return x.reshape(shape)


def ties(k):
    """Exact half-step values (j + 0.5) * 2**-(k-1) for j in [-6, 6), as float32."""
    return ((np.arange(-6, 6) + 0.5) * 2.0 ** (1 - k)).astype(F32)


def uniforms(x, u):
    return np.full(np.shape(x), u, dtype=np.float64)


# Deterministic quantizers as (ours, twin), each taking (x, width).
DETERMINISTIC = {
    "directquant": (N.directquant, T.directquant),
    "weightquant": (N.weightquant, T.weightquant),
    "shiftquant": (N.shiftquant, T.shiftquant),
    "errorquant": (N.errorquant, T.errorquant),
    "gbnquant": (N.gbnquant, T.directquant),
}

# Every quantizer called on x with valid widths and, where needed, a fixed seed.
ALL_CALLS = {
    "directquant": lambda x: N.directquant(x, 5),
    "alldirectquant": lambda x: N.alldirectquant(x, 5, 6),
    "weightquant": lambda x: N.weightquant(x, 5),
    "sround": lambda x: N.sround(x, seed=3),
    "shiftquant": lambda x: N.shiftquant(x, 5),
    "constquant": lambda x: N.constquant(x, 6, 5, seed=3),
    "errorquant": lambda x: N.errorquant(x, 5),
    "gwquant": lambda x: N.gwquant(x, 5, 6, seed=3),
    "gbnquant": lambda x: N.gbnquant(x, 5),
    "gradquant": lambda x: N.gradquant(x, 5),
    "gradquant_w": lambda x: N.gradquant(x, 5, 6, seed=3),
}


# ----------------------------------------------------------------------------- the twins

def test_twins_import_from_tests_dir():
    import twins
    from twins import directquant  # pytest's rootdir conftest puts tests/ on sys.path
    assert directquant is twins.directquant and twins.__file__.endswith("tests/twins.py")


@pytest.mark.parametrize("k", DEC_WIDTHS)
@pytest.mark.parametrize("shape", SHAPES)
def test_directquant_vs_twin(rng, k, shape):
    x = mixed(rng, shape)
    assert_same(N.directquant(x, k), T.directquant(x, k))


@pytest.mark.parametrize("kall", POS_WIDTHS)
def test_alldirectquant_vs_twin(rng, kall):
    for kdec in DEC_WIDTHS:
        for shape in SHAPES:
            x = mixed(rng, shape)
            assert_same(N.alldirectquant(x, kdec, kall), T.alldirectquant(x, kdec, kall))


@pytest.mark.parametrize("name", ["weightquant", "shiftquant", "errorquant"])
@pytest.mark.parametrize("k", POS_WIDTHS)
def test_range_quantizers_vs_twin(rng, name, k):
    ours, twin = DETERMINISTIC[name]
    for shape in SHAPES:
        for scale in [(-45, 38), (-3, 3), (-40, -36)]:
            x = mixed(rng, shape, scale, specials=scale == (-45, 38))
            assert_same(ours(x, k), twin(x, k))


@pytest.mark.parametrize("name", list(DETERMINISTIC))
@pytest.mark.parametrize("k", [1, 2, 3, 8, 16, 24])
def test_ties_round_half_to_even_vs_twin(name, k):
    ours, twin = DETERMINISTIC[name]
    x = ties(k)
    assert_same(ours(x, k), twin(x, k))


@pytest.mark.parametrize("k", [-3, 0, 1, 4, 20])
def test_directquant_ties_explicit(k):
    step = 2.0 ** (1 - k)
    x = (np.array([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5]) * step).astype(F32)
    assert_same(N.directquant(x, k), (np.array([0.0, 2, 2, 4, -0.0, -2, -2]) * step).astype(F32))
    assert_same(N.alldirectquant(x, k, 3), (np.array([0.0, 2, 2, 3, -0.0, -2, -2]) * step).astype(F32))


def test_docstring_examples():
    assert_same(N.directquant([0.3, -1.26, 7.0], 3), np.array([0.25, -1.25, 7.0], F32))
    assert_same(N.alldirectquant([0.3, -1.26, 7.0], 3, 4), np.array([0.25, -1.25, 1.75], F32))
    # -0.01 * 128 = -1.28 rounds to -1 (-1/128); -0.001 * 128 rounds to -0.
    assert_same(N.alldirectquant([100.0, -0.01], 8, 8), np.array([0.9921875, -0.0078125], F32))
    assert_same(N.alldirectquant([100.0, -0.001], 8, 8), np.array([0.9921875, -0.0], F32))


def test_number_doctests():
    import doctest
    result = doctest.testmod(N, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4
    assert result.failed == 0, "a docstring example of wageubn/function/number.py shows a wrong output"


def test_shiftquant_hand_computed():
    # max|x| = 3 -> R = 2**round(1.585) = 4; x / R on a 2**-2 grid, clamped to +-0.75, times 4.
    assert_same(N.shiftquant([0.3, -1.26, 3.0, 0.01, -5.0 / 3], 3), np.array([0, -1, 3, 0, -2], F32))


def test_weightquant_is_documented_clamp(rng):
    x = mixed(rng, (64,), (-3, 1))
    for k in [1, 2, 4, 8, 16]:
        d = 2.0 ** (1 - k)
        expected = np.clip(T.directquant(x, k).astype(np.float64), -1 + d, 1 - d).astype(F32)
        np.testing.assert_array_equal(N.weightquant(x, k), expected)
        assert_same(N.weightquant(x, k), N.alldirectquant(x, k, k))


def test_errorquant_hand_computed():
    # max|x| = 1 -> R = 1, sc = 1/4, bound 3.  |x| >= 1/4: sc * clamp(round(4x), +-3);
    # smaller: sc * directquant(4x, 3) = round(16x) / 16 (half to even).
    x = [0.3, -0.7, 1.0, 0.05, 0.004, -0.02, 0.1, 3 / 32, 1 / 32, 0.625, -0.25]
    expected = [0.25, -0.75, 0.75, 0.0625, 0.0, -0.0, 0.125, 0.125, 0.0, 0.5, -0.25]
    assert_same(N.errorquant(x, 3), np.array(expected, F32))
    assert N.errquant is N.errorquant and F.errquant is F.errorquant


@pytest.mark.parametrize("k_dr", [1, 2, 4, 8, 16, 24, 31, 64, 130, 200, 512])
@pytest.mark.parametrize("k", [-512, -5, 0, 1, 4, 8, 16, 512])
def test_constquant_between_twin_floor_and_ceil(rng, k_dr, k):
    # The twin with u = 1 never rounds up, with u = 0 always rounds up (non-integers).
    for shape in SHAPES:
        x = mixed(rng, shape, (-4, 4))
        out = N.constquant(x, k_dr, k, seed=int(rng.integers(2**63)))
        lo, hi = T.constquant(x, k_dr, k, uniforms(x, 1.0)), T.constquant(x, k_dr, k, uniforms(x, 0.0))
        assert out.dtype == np.float32 and out.shape == x.shape
        ok = (out == lo) | (out == hi) | (np.isnan(out) & np.isnan(lo))
        assert ok.all(), (f"constquant(x, k_dr={k_dr}, k={k}) is neither the floor nor the ceil twin "
                          f"(see test_constquant_argument_order): {out[~ok][:4]} vs {lo[~ok][:4]}")


def test_constquant_argument_order():
    # constquant(x, k_dr, k): k_dr sets the integer range (dr = 2**(k_dr-1)), k the output step.
    x = np.array([1.0, -0.25], F32)  # R = 1, integers [dr, -dr/4], dr clamped to dr - 1
    out = N.constquant(x, 8, 2, seed=0)  # [127, -32] / 2
    assert np.array_equal(out, [63.5, -16.0]), (
        f"constquant(x, k_dr=8, k=2) gave {out}; [0.0078125, -0.0078125] means k_dr and k are swapped "
        "between number.constquant and _C.constquant")


def test_constquant_hand_computed():
    # R = 1, dr = 8: [8, -4, 2, 0, -1] clamped to +-7, divided by 2**(k-1) = 2.  All integers: no randomness.
    x = np.array([1.0, -0.5, 0.25, 0.0, -0.125], F32)
    assert_same(N.constquant(x, 4, 2, seed=0), np.array([3.5, -2.0, 1.0, 0.0, -0.5], F32))
    # k may be any dec width (<= 0 too); k_dr must be >= 1.
    assert_same(N.constquant(x, 4, 0, seed=0), np.array([14.0, -8.0, 4.0, 0.0, -2.0], F32))
    assert_same(N.gwquant(x, 2, 4, seed=0), np.array([3.5, -2.0, 1.0, 0.0, -0.5], F32))


@pytest.mark.parametrize("shape", SHAPES)
def test_sround_between_floor_and_ceil(rng, shape):
    x = mixed(rng, shape, (-2, 8))
    out = N.sround(x, seed=11)
    assert_same(N.sround(x, seed=11), out)
    lo, hi = T.sround(x, uniforms(x, 1.0)), T.sround(x, uniforms(x, 0.0))
    np.testing.assert_array_equal(np.where(out == hi, hi, lo), out)
    with np.errstate(invalid="ignore"):
        fin = np.isfinite(x)
        assert np.all((out[fin] == np.floor(x[fin])) | (out[fin] == np.ceil(x[fin])))


# ----------------------------------------------------------------------------- inputs

INPUT_FORMS = {
    "list": lambda x: x.tolist(),
    "tuple": lambda x: tuple(x.tolist()),
    "float64": lambda x: x.astype(np.float64),
    "float16": lambda x: x.astype(np.float16),
    "int32": lambda x: np.round(x * 100).astype(np.int32),
    "int64_big": lambda x: (np.round(x * 100).astype(np.int64) * 2**31 + 1),
    "uint8": lambda x: np.abs(np.round(x * 40)).astype(np.uint8),
    "bool": lambda x: x > 0,
    "python_float": lambda x: float(x[0]),
    "python_int": lambda x: int(round(x[0] * 100)),
    "numpy_scalar": lambda x: np.float64(x[1]),
}


@pytest.mark.parametrize("form", list(INPUT_FORMS))
@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_input_types_cast_to_float32(rng, form, name):
    ours, twin = DETERMINISTIC[name]
    x = INPUT_FORMS[form](rng.standard_normal(12).astype(F32))
    with np.errstate(over="ignore"):
        as32 = np.asarray(x, dtype=F32)
    for k in [1, 4, 20]:
        out = ours(x, k)
        assert_same(out, twin(x, k))
        assert_same(out, ours(as32, k))


@pytest.mark.parametrize("form", list(INPUT_FORMS))
def test_input_types_alldirect_and_stochastic(rng, form):
    x = INPUT_FORMS[form](rng.standard_normal(12).astype(F32))
    as32 = np.asarray(x, dtype=F32)
    assert_same(N.alldirectquant(x, 3, 4), T.alldirectquant(x, 3, 4))
    assert_same(N.sround(x, seed=5), N.sround(as32, seed=5))
    assert_same(N.constquant(x, 6, 3, seed=5), N.constquant(as32, 6, 3, seed=5))


def test_float64_input_is_rounded_to_float32_first():
    # Documented: the data are float32.  0.5 + 2**-30 becomes 0.5, a tie that rounds to even (0).
    x = np.array([0.5 + 2.0 ** -30, 1e300, -1e300, 1e-300], np.float64)
    with np.errstate(over="ignore"):  # NumPy's float64 -> float32 cast warns on overflow
        assert_same(N.directquant(x, 1), np.array([0.0, np.inf, -np.inf, 0.0], F32))
        assert_same(N.alldirectquant(x, 1, 3), np.array([0.0, 3.0, -3.0, 0.0], F32))


VIEWS = {
    "reversed": lambda a: a[::-1],
    "transposed": lambda a: a.T,
    "strided": lambda a: a[:, ::2],
    "neg_strided": lambda a: a[::-2, ::-3],
    "fortran": lambda a: np.asfortranarray(a),
    "column": lambda a: a[:, 3],
    "float64_view": lambda a: a.astype(np.float64)[1::2, ::-1],
}


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("name", list(ALL_CALLS))
def test_non_contiguous_inputs(rng, view, name):
    call = ALL_CALLS[name]
    a = mixed(rng, (6, 8), (-3, 3))
    v = VIEWS[view](a)
    assert_same(call(v), call(np.ascontiguousarray(v)))
    if name in DETERMINISTIC:
        ours, twin = DETERMINISTIC[name]
        assert_same(ours(v, 5), twin(v, 5))


@pytest.mark.parametrize("name", list(ALL_CALLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_input_not_modified_and_output_is_new(rng, name, dtype):
    with np.errstate(over="ignore"):
        x = (mixed(rng, (5, 7), (-3, 2), specials=dtype != np.int16) * 10).astype(dtype)
    before = x.copy()
    out = ALL_CALLS[name](x)
    assert out is not x and not np.shares_memory(out, x)
    assert out.dtype == np.float32 and out.shape == x.shape and out.flags.c_contiguous
    np.testing.assert_array_equal(x, before)
    assert x.dtype == dtype and np.array_equal(np.signbit(x), np.signbit(before))
    # Writing into the output does not reach the input (even for float32 contiguous inputs).
    out[...] = 123.0
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", list(ALL_CALLS))
def test_zero_d_and_empty(name):
    call = ALL_CALLS[name]
    for x in [np.float32(0.3), np.array(0.3, F32), 0.3]:
        out = call(x)
        assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float32
    for shape in [(0,), (2, 0), (0, 3, 1)]:
        out = call(np.zeros(shape, np.float64))
        assert isinstance(out, np.ndarray) and out.shape == shape and out.dtype == np.float32


BAD_INPUTS = {
    "none": None,
    "complex": np.array([1 + 2j, 3.0]),
    "complex_scalar": 1j,
    "object": np.array([1.0, object()], dtype=object),
    "string_array": np.array(["1.0", "2.0"]),
    "string": "1.0",
    "mixed_list": [1.0, "a"],
    "datetime": np.array(["2020-01-01"], dtype="datetime64[D]"),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
@pytest.mark.parametrize("name", list(ALL_CALLS))
def test_bad_inputs_raise_type_error_naming_x(name, bad):
    with pytest.raises(TypeError, match=r"^x: "):
        ALL_CALLS[name](BAD_INPUTS[bad])


# ----------------------------------------------------------------------------- widths

# (callable taking one width, the argument's name, the smallest valid value)
WIDTH_ARGS = [
    (lambda w: N.directquant([0.3], w), "k", -512),
    (lambda w: N.alldirectquant([0.3], w, 8), "kdec", -512),
    (lambda w: N.alldirectquant([0.3], 8, w), "kall", 1),
    (lambda w: N.weightquant([0.3], w), "k", 1),
    (lambda w: N.shiftquant([0.3], w), "k", 1),
    (lambda w: N.errorquant([0.3], w), "k", 1),
    (lambda w: N.constquant([0.3], w, 4, seed=0), "k_dr", 1),
    (lambda w: N.constquant([0.3], 8, w, seed=0), "k", -512),
    (lambda w: N.gbnquant([0.3], w), "k", -512),
    (lambda w: N.gradquant([0.3], w), "k", -512),
]
WIDTH_IDS = ["dq.k", "adq.kdec", "adq.kall", "wq.k", "sq.k", "eq.k", "cq.k_dr", "cq.k", "gbn.k", "grad.k"]


@pytest.mark.parametrize("call,name,lo", WIDTH_ARGS, ids=WIDTH_IDS)
@pytest.mark.parametrize("bad", [4.0, np.float64(4.0), True, False, "4", None, [4], 4 + 0j])
def test_width_not_int_is_type_error(call, name, lo, bad):
    with pytest.raises(TypeError, match=rf"^{name}: "):
        call(bad)


@pytest.mark.parametrize("call,name,lo", WIDTH_ARGS, ids=WIDTH_IDS)
def test_width_range(call, name, lo):
    for bad in [lo - 1, lo - 100, 513, 10**30, -10**30, np.int64(-513), np.int64(2**40)]:
        with pytest.raises(ValueError, match=rf"^{name}: "):
            call(bad)
    for good in [lo, 512, np.int64(8), np.int8(3), np.uint16(2)]:
        try:
            out = call(good)
        except ValueError as e:
            pytest.fail(f"{name}={good!r} is a valid width but raised ValueError({e})")
        assert out.shape == (1,) and out.dtype == np.float32


def test_width_errors_of_gradient_quantizers():
    with pytest.raises(ValueError, match="k_?dr"):
        N.gwquant([0.3], 4, 0)
    with pytest.raises(ValueError, match="k_?dr"):
        N.gradquant([0.3], 4, 0)
    with pytest.raises(TypeError, match="k_?dr"):
        N.gradquant([0.3], 4, 2.0)


@pytest.mark.parametrize("name", ["directquant", "weightquant", "shiftquant", "errorquant"])
def test_extra_reference_width_is_ignored(rng, name):
    ours = getattr(N, name)
    x = mixed(rng, (9,), (-2, 2))
    assert_same(ours(x, 4, 99), ours(x, 4))
    assert_same(ours(x, 4, k_=0), ours(x, 4))


# ----------------------------------------------------------------------------- edge cases

def test_dec_widths_at_most_zero():
    assert_same(N.directquant(5.0, 0), np.array(4.0, F32))  # step 2: 2.5 -> 2
    assert_same(N.directquant(6.0, -1), np.array(8.0, F32))  # step 4: 1.5 -> 2
    assert_same(N.directquant([3.0, 7.0, -5.0, 1.0], 0), np.array([4.0, 8.0, -4.0, 0.0], F32))
    assert_same(N.directquant([2.0, 10.0, 14.0, -6.0], -1), np.array([0.0, 8.0, 16.0, -8.0], F32))
    assert_same(N.directquant([2.0**100, 3e38, -3e38], -512), np.array([0.0, 0.0, -0.0], F32))
    assert_same(N.alldirectquant([100.0, -100.0], -2, 3), np.array([24.0, -24.0], F32))  # step 8, q <= 3


def test_huge_widths_are_exact(rng):
    x = np.concatenate([mixed(rng, (500,), specials=False), SPECIALS])
    finite = x[np.isfinite(x)]
    for k in [150, 200, 512]:
        assert_same(N.directquant(finite, k), finite)
    for k in [150, 200]:  # the clamp bound 2**511 - 1 is on the integer: 2**(512-k) as a value
        assert_same(N.alldirectquant(finite, k, 512), finite)
    assert_same(N.alldirectquant([3.0, -1e30, 0.5], 512, 512), np.array([1.0, -1.0, 0.5], F32))
    assert_same(N.alldirectquant(1e30, 8, 512), np.array(1e30, F32))
    assert_same(N.alldirectquant(np.finfo(F32).max, 150, 512), np.array(np.finfo(F32).max, F32))
    # The subnormal grid ends at 2**-149: a width of 150 keeps it, 149 rounds its half steps to even.
    assert_same(N.directquant([TINY, 3 * TINY], 150), np.array([TINY, 3 * TINY], F32))
    assert_same(N.directquant([TINY, 3 * TINY, -TINY], 149), np.array([0.0, 4 * TINY, -0.0], F32))


def test_nan_stays_nan():
    x = np.array([np.nan, 0.3, -np.nan, 1.0], F32)
    for name, call in ALL_CALLS.items():
        out = call(x)
        assert np.isnan(out[[0, 2]]).all() and not np.isnan(out[[1, 3]]).any(), name
    assert np.isnan(N.directquant(np.nan, -512)) and np.isnan(N.directquant(np.nan, 512))
    assert np.isnan(N.alldirectquant(np.nan, 8, 1))


def test_inf_behaviour():
    inf = np.array([np.inf, -np.inf], F32)
    for k in [-512, -1, 0, 1, 8, 512]:
        assert_same(N.directquant(inf, k), inf)
        assert_same(N.gbnquant(inf, k), inf)
    assert_same(N.sround(inf, seed=1), inf)
    # A clamp saturates Inf to the bound.
    assert_same(N.alldirectquant(inf, 8, 8), np.array([127 / 128, -127 / 128], F32))
    assert_same(N.alldirectquant(inf, 2, 5), np.array([7.5, -7.5], F32))
    assert_same(N.weightquant(inf, 4), np.array([0.875, -0.875], F32))
    # The range ignores Inf: R comes from the finite 3.0 (R = 4), or is 1 without finite values.
    x = np.array([np.inf, -np.inf, 3.0], F32)
    assert_same(N.shiftquant(x, 3), np.array([3.0, -3.0, 3.0], F32))
    assert_same(N.shiftquant(inf, 3), np.array([0.75, -0.75], F32))
    assert_same(N.errorquant(x, 3), np.array([3.0, -3.0, 3.0], F32))  # sc = 1, bound 3
    assert_same(N.constquant(x, 4, 2, seed=0), np.array([3.5, -3.5, 3.0], F32))  # dr = 8: 6 stays
    assert_same(N.constquant(inf, 4, 1, seed=0), np.array([7.0, -7.0], F32))


@pytest.mark.parametrize("shape", [(1,), (5,), (2, 3), (0,)])
def test_zero_range_gives_zeros(shape):
    z = np.zeros(shape, F32)
    if z.size:
        z.flat[0] = -0.0
    for out in [N.shiftquant(z, 4), N.errorquant(z, 4), N.constquant(z, 8, 4, seed=2),
                N.gwquant(z, 4, 8, seed=2), N.sround(z, seed=2)]:
        assert_same(out, z)
    for k in [1, 8, 512]:
        assert_same(N.shiftquant(z, k), z)
        assert_same(N.errorquant(z, k), z)


def test_range_is_one_without_finite_nonzero_values():
    # With only NaN and zeros R is 1; NaN does not enter the range: R = 2**round(log2(0.9)) = 1.
    assert_same(N.shiftquant(np.array([np.nan, 0.0, -0.0], F32), 2), np.array([np.nan, 0.0, -0.0], F32))
    assert_same(N.shiftquant([np.nan, 0.0, 0.4, -0.9], 3), np.array([np.nan, 0.0, 0.5, -0.75], F32))
    assert T.range_pow2([np.nan, np.inf, 0.0]) == 1.0 and T.range_pow2([0.7, -3.0]) == 4.0


# ----------------------------------------------------------------------------- stochastic rounding

def test_sround_mean_approaches_x():
    x = np.array([0.1, 0.5, 0.9, -0.3, 2.75, -7.125, 3.0, 1e-3], F32)
    n = 40000
    out = N.sround(np.tile(x, (n, 1)), seed=123)
    frac = x - np.floor(x)
    tol = 5 * np.sqrt(frac * (1 - frac) / n) + 1e-12
    assert np.all(np.abs(out.mean(0, dtype=np.float64) - x) <= tol)
    # Across seeds too, on a small array.
    means = np.mean([N.sround(x, seed=s) for s in range(3000)], axis=0, dtype=np.float64)
    assert np.all(np.abs(means - x) <= 5 * np.sqrt(frac * (1 - frac) / 3000) + 1e-12)


def test_sround_seeds():
    x = np.full(4096, 0.5, F32)
    a = N.sround(x, seed=7)
    assert_same(N.sround(x, seed=7), a)
    assert_same(N.sround(x, seed=np.int64(7)), a)
    assert not np.array_equal(N.sround(x, seed=8), a)
    assert not np.array_equal(N.sround(x), N.sround(x))  # seed=None draws a fresh seed
    assert_same(N.sround(x, seed=-1), N.sround(x, seed=2**64 - 1))
    # A Generator: the same state gives the same result; drawing from it moves on.
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    r1 = N.sround(x, seed=g1)
    assert_same(N.sround(x, seed=g2), r1)
    assert not np.array_equal(N.sround(x, seed=g1), r1)
    for bad in [1.5, "3", True, [1]]:
        with pytest.raises(TypeError, match="seed"):
            N.sround(x, seed=bad)
        with pytest.raises(TypeError, match="seed"):
            N.constquant(x, 8, 4, seed=bad)


def test_constquant_seeds_and_mean():
    x = np.linspace(-1, 1, 4001, dtype=F32)  # R = 1, dr = 2**7
    a = N.constquant(x, 8, 8, seed=1)
    assert_same(N.constquant(x, 8, 8, seed=1), a)
    assert not np.array_equal(N.constquant(x, 8, 8, seed=2), a)
    g1, g2 = np.random.default_rng(4), np.random.default_rng(4)
    assert_same(N.constquant(x, 8, 8, seed=g1), N.constquant(x, 8, 8, seed=g2))
    # E[constquant] = clamp(dr x / R, +-(dr - 1)) / 2**(k-1) (no clamp reached between draws).
    mean = np.mean([N.constquant(x, 8, 8, seed=s) for s in range(400)], axis=0, dtype=np.float64)
    expected = np.clip(128 * x.astype(np.float64), -127, 127) / 128
    assert np.max(np.abs(mean - expected)) <= 5 * 0.5 / 128 / np.sqrt(400)
    assert abs(np.mean(mean - expected)) < 1e-4


def test_stochastic_stream_ignores_layout():
    x = np.random.default_rng(0).standard_normal((40, 30)).astype(F32) * 5
    assert_same(N.sround(x.T, seed=5), N.sround(np.ascontiguousarray(x.T), seed=5))
    assert_same(N.constquant(x[:, ::-1], 6, 3, seed=5), N.constquant(np.ascontiguousarray(x[:, ::-1]), 6, 3, seed=5))


# ----------------------------------------------------------------------------- gradient quantizers

def test_gradient_quantizers(rng):
    g = mixed(rng, (7, 9), (-6, 2))
    for kgw, kdr in [(8, 8), (2, 12), (16, 4), (0, 3), (-3, 1)]:
        assert_same(N.gwquant(g, kgw, kdr, seed=31), N.constquant(g, kdr, kgw, seed=31))
        assert_same(N.gradquant(g, kgw, kdr, seed=31), N.constquant(g, kdr, kgw, seed=31))
        assert_same(N.gradquant(g, kgw, k_dr=kdr, seed=31), N.gwquant(g, kgw, kdr, seed=31))
        out = N.gwquant(g, kgw, kdr, seed=31)
        lo, hi = T.constquant(g, kdr, kgw, uniforms(g, 1.0)), T.constquant(g, kdr, kgw, uniforms(g, 0.0))
        assert np.all((out == lo) | (out == hi) | np.isnan(out)), "gwquant is not constquant(g, kdr, kgw)"
    for k in [-2, 1, 4, 8, 24]:
        assert_same(N.gbnquant(g, k), N.directquant(g, k))
        assert_same(N.gbnquant(g, k), T.directquant(g, k))
        assert_same(N.gradquant(g, k), N.gbnquant(g, k))
        assert_same(N.gradquant(g, k, None, seed=3), N.gbnquant(g, k))
    for f in ["gwquant", "gbnquant", "gradquant"]:
        assert getattr(F, f) is getattr(N, f)


# ----------------------------------------------------------------------------- the reference

def _t(torch, x):
    return torch.tensor(np.asarray(x, np.float64), dtype=torch.float64)


def _np(t):
    return t.detach().numpy().astype(F32)


def _parity_data(rng, n):
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-20, 20)).astype(F32)
    if rng.random() < 0.4:  # exact ties on some grid
        x = (np.round(x * 2.0 ** rng.integers(-3, 8)) / 2.0 ** rng.integers(-3, 8)).astype(F32)
    if not x.any():
        x[0] = 1.0
    return x


@pytest.mark.parametrize("seed", range(8))
def test_parity_deterministic(ref, torch, seed):
    R = ref.function.number
    rng = np.random.default_rng(seed)
    for _ in range(60):
        x = _parity_data(rng, int(rng.integers(1, 50)))
        X = _t(torch, x)
        k, kall, kp = int(rng.integers(-5, 31)), int(rng.integers(1, 33)), int(rng.integers(1, 33))
        np.testing.assert_array_equal(N.directquant(x, k), _np(R.directquant(X, k)))
        np.testing.assert_array_equal(N.alldirectquant(x, k, kall), _np(R.alldirectquant(X, k, kall)))
        np.testing.assert_array_equal(N.shiftquant(x, kp), _np(R.shiftquant(X, kp)))
        np.testing.assert_array_equal(N.gbnquant(x, k), _np(R.directquant(X, k)))


def test_parity_signed_zero_differs_only_for_kall_1(ref, torch):
    # torch.clamp(q, 0, 0) returns +0 where ours keeps the sign of the clamped value (-0).
    R = ref.function.number
    x = np.array([-0.7, 0.7, -0.0], F32)
    assert_same(N.alldirectquant(x, 4, 1), np.array([-0.0, 0.0, -0.0], F32))
    np.testing.assert_array_equal(_np(R.alldirectquant(_t(torch, x), 4, 1)), [0, 0, 0])


def test_reference_zero_range_is_nan_ours_is_zero(ref, torch):
    R = ref.function.number
    z = np.zeros(4, F32)
    assert np.isnan(_np(R.shiftquant(_t(torch, z), 4))).all()
    assert_same(N.shiftquant(z, 4), z)


@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
def test_reference_weightquant_and_errquant_are_broken(ref, torch):
    R = ref.function.number
    X = _t(torch, [0.3, -0.7, 1.0])
    with pytest.raises(TypeError, match="clamp"):  # calls DirectQuant(x, k), not DirectQuant.apply
        R.weightquant(X, 4)
    with pytest.raises(TypeError, match="builtin_function_or_method|method"):  # `.abs` never called
        R.errquant(X, 4, 0)
    # Ours: the documented results.
    assert_same(N.weightquant([0.3, -0.7, 1.0], 4), np.array([0.25, -0.75, 0.875], F32))
    assert_same(N.weightquant([0.3, -0.7, 1.0], 4), N.alldirectquant([0.3, -0.7, 1.0], 4, 4))
    # R = 1, sc = 1/8, bound 7: 0.3 -> 2/8; -0.7 -> -6/8; 1 -> 7/8.
    assert_same(N.errquant([0.3, -0.7, 1.0], 4), np.array([0.25, -0.75, 0.875], F32))


def _ref_means(torch, f, n):
    torch.manual_seed(0)
    return np.mean(np.stack([f().detach().numpy() for _ in range(n)]), axis=0)


@pytest.mark.parametrize("k_dr,k", [(8, 8), (4, 2), (12, 6), (3, 0)])
def test_constquant_distribution_vs_reference(ref, torch, k_dr, k):
    R = ref.function.number
    x = np.array([0.3, -0.71, 0.05, -1.3, 0.999, 0.0, 1.7, -0.02], F32)
    n = 20000
    tiled = np.tile(x, (n, 1))
    ours = N.constquant(tiled, k_dr, k, seed=77).mean(0, dtype=np.float64)
    torch.manual_seed(0)
    theirs = R.constquant(_t(torch, tiled), k_dr, k).numpy().mean(0)
    tol = 5 * 0.5 * 2.0 ** (1 - k) / np.sqrt(n) * np.sqrt(2) + 1e-12
    assert np.all(np.abs(ours - theirs) <= tol), (ours, theirs)
    # Each draw is one of the reference's two neighbours.
    lo, hi = T.constquant(x, k_dr, k, uniforms(x, 1.0)), T.constquant(x, k_dr, k, uniforms(x, 0.0))
    assert np.all((lo - 1e-12 <= theirs) & (theirs <= hi + 1e-12)), (lo, theirs, hi)


def test_sround_distribution_vs_reference(ref, torch):
    x = np.array([0.1, 0.5, -0.25, 2.9, -3.6, 7.0], F32)
    n = 20000
    tiled = np.tile(x, (n, 1))
    torch.manual_seed(0)
    theirs = ref.function.number.sround(_t(torch, tiled)).numpy()
    ours = N.sround(tiled, seed=5)
    assert set(np.unique(ours - np.floor(tiled))) <= {0.0, 1.0}
    tol = 5 * 0.5 / np.sqrt(n) * np.sqrt(2)
    assert np.all(np.abs(ours.mean(0, dtype=np.float64) - theirs.mean(0)) <= tol)


@pytest.mark.parametrize("k", [1, 2, 4, 8, 16, 24])
def test_gbnquant_vs_reference_backward(ref, torch, rng, k):
    R = ref.function.number
    g = _parity_data(rng, 40).reshape(5, 8)
    x = torch.zeros(5, 8, dtype=torch.float64, requires_grad=True)
    y = R.gbnquant(x, k)
    np.testing.assert_array_equal(y.detach().numpy(), 0)  # forward is the identity
    y.backward(_t(torch, g))
    np.testing.assert_array_equal(N.gbnquant(g, k), _np(x.grad))
    np.testing.assert_array_equal(N.gradquant(g, k), _np(x.grad))


@pytest.mark.parametrize("kgw,kdr", [(8, 8), (2, 4), (6, 10)])
def test_gwquant_vs_reference_backward(ref, torch, kgw, kdr):
    R = ref.function.number
    g = np.array([0.3, -0.71, 0.05, -1.3, 0.999, 0.0, 1.7, -0.02], F32)
    n = 20000
    tiled = np.tile(g, (n, 1))
    x = torch.zeros(n, g.size, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(1)
    R.gwquant(x, kgw, kdr).backward(_t(torch, tiled))
    theirs = x.grad.numpy().mean(0)
    ours = N.gwquant(tiled, kgw, kdr, seed=9).mean(0, dtype=np.float64)
    tol = 5 * 0.5 * 2.0 ** (1 - kgw) / np.sqrt(n) * np.sqrt(2) + 1e-12
    assert np.all(np.abs(ours - theirs) <= tol), (ours, theirs)
    assert_same(N.gradquant(tiled, kgw, kdr, seed=9), N.gwquant(tiled, kgw, kdr, seed=9))


def _special_values():
    rng = np.random.default_rng(0)
    scales = (1e-30, 1e-3, 1, 100, 1e6, 1e30, 3e38)
    with np.errstate(over="ignore"):
        vals = np.concatenate([(rng.standard_normal(500) * s).astype(np.float32) for s in scales])
    edge = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-40, 0.5, 1.5, 2.5, -0.5, 3.4e38,
                     -3.4e38, 8388608.5, 16777215, 2 ** 23 + 1], np.float32)
    ties = (np.arange(-2000, 2000) / 256 + 1 / 512).astype(np.float32)
    return np.concatenate([vals, edge, ties])


@pytest.mark.parametrize("kind", [1, 2])
@pytest.mark.parametrize("dec", [-60, -10, 0, 1, 8, 24, 30, 101, 130])
@pytest.mark.parametrize("all_", [1, 8, 24, 25, 40])
def test_vector_element_maps_equal_the_scalar_formula_bit_for_bit(kind, dec, all_, monkeypatch):
    # quantize / clamp run in float32 (8 lanes) where that is exact, in double (4 lanes)
    # elsewhere; both must give the portable scalar result, signed zeros and NaN included
    vals, f = _special_values(), (kind, dec, all_)
    outs = {}
    for portable in ("1", "0"):
        monkeypatch.setenv("WAGEUBN_PORTABLE", portable)
        outs[portable] = [_C.quantize(vals, f)] + [_C.clamp(vals, lo, hi, f, f, False, 1)
                                                   for lo, hi in ((0.0, np.inf), (0.0, 6.0), (-1.5, 1e30))]
    for a, b in zip(outs["0"], outs["1"]):
        np.testing.assert_array_equal(a.view(np.int32), b.view(np.int32))
