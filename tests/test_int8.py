"""The 8-bit integer convolution (csrc/qconv.c, AVX-512 VNNI) against the NumPy twins.

It runs when both operands are fixed-point numbers that fit 8 bits; it must then give the
exact sum, rounded once, as the double kernel does, whatever the shape.  Elsewhere (NaN,
values off the grid or too wide) the float kernels must take over unchanged.
``WAGEUBN_SIMD=avx2`` turns it off (the float kernels of the same machine).
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


def _grid_input(rng, shape, signed):
    """Fixed-point values: q * 2**-7 with q in [-127, 127] (signed) or [0, 255]."""
    q = rng.integers(-127, 128, shape) if signed else rng.integers(0, 256, shape)
    return (q / 128.0).astype(np.float32)


@needs_vnni
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("case", INT8_CASES)
def test_int8_convolution_equals_the_exact_twin(rng, case, threads, signed):
    n, c, h, w, oc, k, stride, pads, dil, groups = case
    x = _grid_input(rng, (n, c, h, w), signed)
    weight = grid(rng, (oc, c // groups) + k, 8, 8)
    bias = grid(rng, oc, 16, 16)
    expect = twin.quantize(twin.conv2d(x, weight, bias, stride, pads, dil, groups), 12, 12)
    for exact in (False, True):
        out = _C.conv2d(x, weight, bias, stride, pads, dil, groups, (2, 12, 12), exact, threads)
        np.testing.assert_array_equal(out, expect)
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
@pytest.mark.parametrize("make_x", [
    lambda x: x + np.float32(1 / 1024),  # off the grid: float kernels
    lambda x: x * 4,  # q up to 1020: too wide for 8 bits
    lambda x: np.where(x > 1.5, np.nan, x).astype(np.float32),
    lambda x: np.where(x > 1.5, np.inf, x).astype(np.float32),
    lambda x: np.zeros_like(x),
    lambda x: -x,  # signed: stored with an offset of 128
    lambda x: x[:, :, ::-1, :],  # not contiguous
], ids=["off-grid", "wide", "nan", "inf", "zeros", "negative", "strided"])
def test_inputs_outside_8_bits_fall_back_to_the_float_kernels(rng, make_x):
    x = make_x(_grid_input(rng, (2, 6, 7, 7), False))
    weight = grid(rng, (5, 6, 3, 3), 8, 8)
    expect = twin.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    out = _C.conv2d(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, True, 2)
    np.testing.assert_array_equal(out, expect.astype(np.float32))


@needs_vnni
def test_weights_outside_8_bits_fall_back(rng):
    x = _grid_input(rng, (1, 4, 6, 6), False)
    for weight in (grid(rng, (3, 4, 3, 3), 8, 8) * 3, grid(rng, (3, 4, 3, 3), 8, 8) + np.float32(1 / 512)):
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
