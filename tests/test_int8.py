"""The integer convolution (csrc/qconv.c, AVX-512 VNNI) against the NumPy twins.

It runs when both operands are fixed-point numbers that fit 8 bits (u8 x s8) or 16 bits
(s16 x s16, when the sum provably fits 31 bits); it must then give the exact sum, rounded
once, as the double kernel does, whatever the shape.  Elsewhere (NaN, subnormals, values too
wide) the float kernels must take over unchanged.  ``WAGEUBN_SIMD=avx2`` turns it off (the
float kernels of the same machine).
"""
import numpy as np
import pytest

import wageubn
import wageubn.function as nn
from wageubn import _C

import layer_twins as twin
from test_layers import CONV_CASES, grid

needs_vnni = pytest.mark.skipif(not _C.int8_available(), reason="the CPU has no AVX-512 VNNI")

INT8_CASES = CONV_CASES + [
    # n, c, h, w, oc, k, stride, pads(t, l, b, r), dilation, groups
    (2, 5, 9, 9, 33, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # a channel quad and a panel part-filled
    (1, 16, 32, 32, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # ResNet-20's first stage
    (3, 32, 8, 8, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 16, 11, 11, 32, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),  # strided 1x1 shortcut
    (1, 7, 20, 3, 17, (3, 1), (1, 1), (3, 0, 2, 0), (2, 1), 1),  # padding beyond the kernel
    (2, 8, 6, 6, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8),  # depthwise
    (0, 4, 6, 6, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # batch 0
]


def _grid_input(rng, shape, signed, top=255):
    """Fixed-point values: q * 2**-7 with q in [-top // 2, top // 2] (signed) or [0, top]."""
    q = rng.integers(-(top // 2), top // 2 + 1, shape) if signed else rng.integers(0, top + 1, shape)
    return (q / 128.0).astype(np.float32)


@needs_vnni
@pytest.mark.parametrize("top,wbits", [(255, 8), (4095, 8), (1023, 12)], ids=["u8", "s16", "s16-w12"])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("case", INT8_CASES)
def test_int8_convolution_equals_the_exact_twin(rng, case, threads, signed, top, wbits):
    n, c, h, w, oc, k, stride, pads, dil, groups = case
    x = _grid_input(rng, (n, c, h, w), signed, top)
    weight = grid(rng, (oc, c // groups) + k, wbits, wbits)
    bias = grid(rng, oc, 16, 16)
    expect = twin.quantize(twin.conv2d(x, weight, bias, stride, pads, dil, groups), 12, 12)
    # fewer than 6 output positions take the float kernels, exact only with exact=True there
    # once the sums may pass 2**24 grid units
    integer = expect.shape[2] * expect.shape[3] >= 6
    small = (c // groups) * k[0] * k[1] * top * 2 ** (wbits - 1) < 2 ** 24
    for exact in (False, True) if integer or small else (True,):
        out = _C.conv2d(x, weight, bias, stride, pads, dil, groups, (2, 12, 12), exact, threads)
        np.testing.assert_array_equal(out, expect)
    if integer or small:
        unrounded = _C.conv2d(x, weight, None, stride, pads, dil, groups, None, False, threads)
        np.testing.assert_array_equal(unrounded, twin.conv2d(x, weight, None, stride, pads, dil, groups)
                                      .astype(np.float32))


@needs_vnni
def test_int8_path_is_taken_and_exact_where_float32_sums_are_not(rng, monkeypatch):
    # 1152 products of 8-bit values near their largest reach twice 2**24 grid units: float32
    # accumulation rounds there, the integer sum does not.
    x = (rng.integers(200, 256, (2, 128, 6, 6)) / 256.0).astype(np.float32)
    weight = (rng.integers(100, 128, (16, 128, 3, 3)) / 128.0).astype(np.float32)
    expect = twin.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1).astype(np.float32)
    ours = _C.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, None, False, 2)
    np.testing.assert_array_equal(ours, expect)
    monkeypatch.setenv("WAGEUBN_SIMD", "avx2")
    assert not _C.int8_available() and _C.simd_available()
    floats = _C.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, None, False, 2)
    assert not np.array_equal(floats, expect)  # the float kernel really is a different path
    np.testing.assert_allclose(floats, expect, rtol=1e-5)


@needs_vnni
def test_16_bit_path_is_taken_and_exact_where_float32_sums_are_not(rng, monkeypatch):
    # 11-bit inputs and 10-bit weights: sums of 144 products reach 2**28 grid units, past
    # float32's 2**24 but, bounded by 2 * 72 * 2047 * 1023 < 2**31, fine for int32
    x = (rng.integers(1500, 2048, (2, 16, 6, 6)) / 64.0).astype(np.float32)
    weight = (rng.integers(700, 1024, (16, 16, 3, 3)) / 512.0).astype(np.float32)
    expect = twin.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1).astype(np.float32)
    np.testing.assert_array_equal(_C.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, None, False, 2),
                                  expect)
    monkeypatch.setenv("WAGEUBN_SIMD", "avx2")
    floats = _C.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, None, False, 2)
    assert not np.array_equal(floats, expect)
    np.testing.assert_allclose(floats, expect, rtol=1e-5)


@needs_vnni
@pytest.mark.parametrize("make_x", [
    lambda x: x + np.float32(1 / 1024),  # a finer grid: 16 bits
    lambda x: x * 4,  # q up to 1020: 16 bits
    lambda x: x + np.float32(1 / 2 ** 20),  # q beyond 16 bits: float kernels
    lambda x: np.where(x > 1.5, np.nan, x).astype(np.float32),
    lambda x: np.where(x > 1.5, np.inf, x).astype(np.float32),
    lambda x: np.where(x > 1.5, np.float32(1e-40), x).astype(np.float32),  # subnormal
    lambda x: np.zeros_like(x),
    lambda x: -x,  # signed: stored with an offset of 128
    lambda x: x[:, :, ::-1, :],  # not contiguous
    lambda x: (x * 2 ** 20).astype(np.float32),  # large whole numbers: q * 2**e with e < 0
], ids=["finer", "wide", "too-wide", "nan", "inf", "subnormal", "zeros", "negative", "strided", "large"])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the twin on Inf - Inf
def test_any_input_gives_the_exact_result(rng, make_x):
    # integer kernels where the values allow, float kernels elsewhere: always the exact sum
    x = make_x(_grid_input(rng, (2, 6, 7, 7), False))
    weight = grid(rng, (5, 6, 3, 3), 8, 8)
    expect = twin.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    out = _C.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, True, 2)
    np.testing.assert_array_equal(out, expect.astype(np.float32))


@needs_vnni
def test_any_weights_give_the_exact_result(rng):
    x = _grid_input(rng, (1, 4, 6, 6), False)
    for weight in (grid(rng, (3, 4, 3, 3), 8, 8) * 3, grid(rng, (3, 4, 3, 3), 8, 8) + np.float32(1 / 512),
                   grid(rng, (3, 4, 3, 3), 8, 8) + np.float32(1 / 2 ** 22)):
        expect = twin.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1).astype(np.float32)
        out = _C.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, None, True, 1)
        np.testing.assert_array_equal(out, expect)


def test_int8_switch_follows_the_environment(monkeypatch):
    monkeypatch.setenv("WAGEUBN_PORTABLE", "1")
    assert not _C.int8_available()
    monkeypatch.delenv("WAGEUBN_PORTABLE")
    monkeypatch.setenv("WAGEUBN_SIMD", "avx2")
    assert not _C.int8_available()


@needs_vnni
def test_iostrict_network_is_identical_with_and_without_the_integer_kernel(rng, monkeypatch):
    import sys, pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import models
    net = models.ResNet20(nn).eval()
    wageubn.config.network_config(net, "net", wageubn.config.Config(iostrict=True))
    x = rng.random((2, 3, 32, 32)).astype(np.float32)
    ours = net(x)
    monkeypatch.setenv("WAGEUBN_SIMD", "avx2")
    np.testing.assert_array_equal(net(x), ours)


@pytest.mark.parametrize("in_fmt", [(2, 8, 8), (2, 6, 8), (2, 12, 16), (1, 8, 8), (2, 4, 3), None],
                         ids=["8-bit", "6-dec", "16-bit", "direct", "3-bit", "none"])
@pytest.mark.parametrize("case", INT8_CASES)
def test_input_format_is_applied_by_the_kernel(rng, case, in_fmt):
    # iostrict layers pass their input format: the integer kernel quantizes while packing,
    # the others quantize a copy; both must equal quantize-then-convolve
    n, c, h, w, oc, k, stride, pads, dil, groups = case
    x = (rng.standard_normal((n, c, h, w)) * 1.5).astype(np.float32)
    weight = grid(rng, (oc, c // groups) + k, 8, 8)
    bias = grid(rng, oc, 16, 16)
    xq = x if in_fmt is None else twin.quantize(x, in_fmt[1], in_fmt[2] if in_fmt[0] == 2 else None)
    expect = twin.quantize(twin.conv2d(xq.astype(np.float32), weight, bias, stride, pads, dil, groups), 12, 12)
    out = _C.conv2d(x, weight, bias, stride, pads, dil, groups, (2, 12, 12), True, 2, in_fmt)
    np.testing.assert_array_equal(out, expect)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_input_format_with_nan_and_inf(rng, special, monkeypatch):
    # NaN propagates to the windows that hold it (the integer kernel hands over to the float
    # ones); +-Inf is clamped by alldirectquant like any large value
    x = (rng.standard_normal((2, 4, 8, 8))).astype(np.float32)
    x[1, 2, 3, 4] = special
    weight = grid(rng, (5, 4, 3, 3), 8, 8)
    ours = _C.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, True, 2, (2, 8, 8))
    monkeypatch.setenv("WAGEUBN_SIMD", "avx2")
    floats = _C.conv2d(_C.quantize(x, (2, 8, 8)), weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, True, 2)
    np.testing.assert_array_equal(ours, floats)
    assert np.isnan(ours).any() == np.isnan(special)


@pytest.mark.parametrize("in_fmt", [(2, 8, 8), (1, 5, 8), None])
def test_batchnorm_and_adder_apply_the_input_format(rng, in_fmt):
    x = (rng.standard_normal((2, 3, 5, 5)) * 2).astype(np.float32)
    xq = x if in_fmt is None else _C.quantize(x, in_fmt)
    mean, var = rng.standard_normal(3).astype(np.float32), rng.random(3).astype(np.float32) + 0.5
    np.testing.assert_array_equal(_C.batchnorm(x, mean, var, None, None, 1e-5, (2, 8, 8), 2, in_fmt=in_fmt),
                                  _C.batchnorm(xq, mean, var, None, None, 1e-5, (2, 8, 8), 2))
    weight = grid(rng, (4, 3, 3, 3), 8, 8)
    np.testing.assert_array_equal(
        _C.adder2d(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, True, 2, in_fmt),
        _C.adder2d(xq, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, True, 2))


def test_batchnorm_fused_clamp_is_a_following_relu(rng):
    x = (rng.standard_normal((2, 3, 5, 5)) * 4).astype(np.float32)
    mean, var = rng.standard_normal(3).astype(np.float32), rng.random(3).astype(np.float32) + 0.5
    plain = _C.batchnorm(x, mean, var, None, None, 1e-5, None, 2)
    for lo, hi in ((0.0, np.inf), (0.0, 6.0), (-1.0, 1.0)):
        fused = _C.batchnorm(x, mean, var, None, None, 1e-5, (2, 8, 8), 2, lo, hi)
        np.testing.assert_array_equal(fused, _C.clamp(plain, lo, hi, None, (2, 8, 8)))


@pytest.mark.parametrize("out_fmt", [None, (1, 12, 12), (2, 12, 12), (2, 3, 4), (1, 1, 8), (2, 16, 16),
                                     (1, -3, 8), (2, 30, 31), (1, 40, 40)])
@pytest.mark.parametrize("top,wbits", [(255, 8), (4095, 8)], ids=["u8", "s16"])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("case", INT8_CASES[:4] + INT8_CASES[-7:])
def test_bias_free_integer_epilogue_rounds_like_the_twin(rng, case, out_fmt, top, wbits, signed):
    # without a bias the sums are rounded in integers (a half-to-even shift) and converted
    # once; coarse formats make exact ties common
    n, c, h, w, oc, k, stride, pads, dil, groups = case
    x = _grid_input(rng, (n, c, h, w), signed, top)
    weight = grid(rng, (oc, c // groups) + k, wbits, wbits)
    exact = twin.conv2d(x, weight, None, stride, pads, dil, groups)
    if out_fmt is None:
        expect = exact.astype(np.float32)
    else:
        expect = twin.quantize(exact, out_fmt[1], out_fmt[2] if out_fmt[0] == 2 else None).astype(np.float32)
    out = _C.conv2d(x, weight, None, stride, pads, dil, groups, out_fmt, True, 2)
    np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("in_fmt", [(2, 8, 8), (2, 4, 8), (2, 12, 12), (2, 8, 12), (2, 9, 11), (1, 8, 8), None])
@pytest.mark.parametrize("out_fmt", [(2, 8, 8), (1, 6, 8), None])
@pytest.mark.parametrize("clamp", [(-np.inf, np.inf), (0.0, 6.0)])
def test_batchnorm_table_lookup_equals_the_formula_bit_for_bit(rng, in_fmt, out_fmt, clamp, monkeypatch):
    # clamped input formats up to 11 bits are tabulated per channel; the lookup must give the
    # double formula's result exactly (the portable path never tabulates)
    x = (rng.standard_normal((32, 3, 23, 25)) * 1.3).astype(np.float32)  # enough to tabulate; odd planes
    x[0, 0, 0, :8] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, 3e38, -3e38]
    x[1, 1, 1, :6] = np.arange(-3, 3) / 256 + 1 / 512  # ties of the 8-bit input grid
    mean, var = rng.standard_normal(3).astype(np.float32), rng.random(3).astype(np.float32) + 0.5
    weight, bias = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    outs = []
    for portable in ("0", "1"):
        monkeypatch.setenv("WAGEUBN_PORTABLE", portable)
        outs.append(_C.batchnorm(x, mean, var, weight, bias, 1e-5, out_fmt, 2, *clamp, in_fmt=in_fmt))
    np.testing.assert_array_equal(outs[0].view(np.int32), outs[1].view(np.int32))


@pytest.mark.parametrize("late", ["none", "max", "negative", "finer", "nan", "too-wide"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_grid_found_across_chunks(rng, late, threads):
    # the input's grid is scanned in 65536-value chunks shared by the threads: a value in the
    # last chunk alone must decide the grid (largest magnitude, sign, finest step, NaN, width)
    x = (rng.integers(0, 100, (2, 16, 48, 48)) / 128.0).astype(np.float32)  # 73728 values
    special = {"none": x[1, 15, 47, 47], "max": np.float32(255 / 128), "negative": np.float32(-1 / 128),
               "finer": np.float32(1 / 1024), "nan": np.float32(np.nan), "too-wide": np.float32(2 ** -20)}
    x[1, 15, 47, 47] = special[late]
    weight = grid(rng, (16, 16, 3, 3), 8, 8)
    expect = twin.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1).astype(np.float32)
    out = _C.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, True, threads)
    np.testing.assert_array_equal(out, expect)
    assert np.isnan(out).any() == (late == "nan")


@pytest.mark.parametrize("env", [{}, {"WAGEUBN_SIMD": "avx2"}, {"WAGEUBN_PORTABLE": "1"}],
                         ids=["integer", "avx2", "portable"])
def test_impossible_allocation_raises_memory_error_on_every_path(env, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    x = np.zeros((1, 1, 1, 1), np.float32)
    for in_fmt in (None, (2, 8, 8)):
        with pytest.raises(MemoryError):
            _C.conv2d(x, np.ones((1, 1, 1, 1), np.float32), None, (1, 1), (2 ** 21,) * 4, (1, 1), 1, None,
                      False, 1, in_fmt)
