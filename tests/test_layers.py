"""Quantized layers: C kernels against NumPy twins, and parity with wageubn 1.2.0 on torch."""
import pickle

import numpy as np
import pytest

import wageubn
import wageubn.function as nn
from wageubn import _C

import layer_twins as twin


def grid(rng, shape, dec, all_):
    """Random values already on the (dec, all) fixed-point grid."""
    bound = 2 ** (all_ - 1) - 1
    return (rng.integers(-bound, bound + 1, size=shape) / 2.0 ** (dec - 1)).astype(np.float32)


CONV_CASES = [
    # n, c, h, w, oc, k, stride, pads(t, l, b, r), dilation, groups
    (2, 3, 9, 7, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 4, 8, 8, 6, (3, 2), (2, 1), (0, 2, 1, 0), (1, 2), 2),
    (3, 6, 11, 5, 6, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (2, 6, 10, 10, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 6),
    (1, 2, 5, 5, 3, (5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (4, 1, 6, 13, 1, (2, 4), (3, 2), (2, 0, 2, 3), (2, 1), 1),
    (1, 9, 4, 4, 17, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    (3, 16, 5, 5, 120, (5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # one position: the dot-product path
    (2, 4, 3, 4, 6, (3, 3), (2, 2), (1, 0, 1, 0), (1, 1), 2),  # four positions, groups
    (2, 3, 9, 12, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # few channels: vectors along the rows
    (1, 4, 7, 21, 6, (2, 3), (2, 1), (0, 1, 1, 2), (2, 2), 2),  # the same with groups, row stride, dilation
    (5, 3, 4, 4, 7, (4, 4), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # one window over each image: a GEMM
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_conv2d_kernel_matches_twin(rng, case, threads):
    n, c, h, w, oc, k, stride, pads, dil, groups = case
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((oc, c // groups) + k).astype(np.float32)
    bias = rng.standard_normal(oc).astype(np.float32)
    out = _C.conv2d(x, weight, bias, stride, pads, dil, groups, None, False, threads)
    np.testing.assert_allclose(out, twin.conv2d(x, weight, bias, stride, pads, dil, groups), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_exact_mode_is_exact_on_the_grid(rng, case):
    n, c, h, w, oc, k, stride, pads, dil, groups = case
    x = grid(rng, (n, c, h, w), 8, 8)
    weight = grid(rng, (oc, c // groups) + k, 8, 8)
    bias = grid(rng, oc, 16, 16)
    out = _C.conv2d(x, weight, bias, stride, pads, dil, groups, (2, 12, 12), True, 2)
    expect = twin.quantize(twin.conv2d(x, weight, bias, stride, pads, dil, groups), 12, 12)
    np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("case", CONV_CASES)
def test_float_kernels_round_like_the_twin(rng, case, monkeypatch):
    # WAGEUBN_SIMD=avx2: the float kernels (not the 8-bit integer one) on 8-bit operands,
    # whose float32 sums are exact at these sizes; the epilogue rounds each sum once.
    monkeypatch.setenv("WAGEUBN_SIMD", "avx2")
    n, c, h, w, oc, k, stride, pads, dil, groups = case
    x = grid(rng, (n, c, h, w), 8, 8)
    weight = grid(rng, (oc, c // groups) + k, 8, 8)
    bias = grid(rng, oc, 16, 16)
    expect = twin.quantize(twin.conv2d(x, weight, bias, stride, pads, dil, groups), 12, 12)
    for threads in (1, 2, 3):
        out = _C.conv2d(x, weight, bias, stride, pads, dil, groups, (2, 12, 12), False, threads)
        np.testing.assert_array_equal(out, expect)


def test_conv2d_kernel_accepts_any_layout_and_leaves_input_alone(rng):
    base = rng.standard_normal((2, 3, 8, 10))
    x = base[:, :, ::-1, ::2]  # float64, negative and non-unit strides
    before = x.copy()
    weight = np.asfortranarray(rng.standard_normal((4, 3, 3, 3)))
    out = _C.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, None, False, 1)
    np.testing.assert_allclose(out, twin.conv2d(x, weight), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(x, before)
    assert out.dtype == np.float32 and out.flags.c_contiguous


def test_adder2d_kernel_matches_twin(rng):
    for n, c, hw, oc, k, s, p in [(2, 3, 7, 4, 3, 1, 1), (1, 5, 9, 2, 2, 2, 0), (3, 1, 4, 3, 1, 1, 2),
                                  (2, 3, 3, 5, 3, 1, 0)]:  # the last has one output position
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        weight = rng.standard_normal((oc, c, k, k)).astype(np.float32)
        bias = rng.standard_normal(oc).astype(np.float32)
        out = _C.adder2d(x, weight, bias, (s, s), (p,) * 4, (1, 1), 1, None, False, 2)
        np.testing.assert_allclose(out, twin.adder2d(x, weight, bias, (s, s), (p,) * 4), rtol=1e-5, atol=1e-3)
        xq, wq = grid(rng, x.shape, 8, 8), grid(rng, weight.shape, 8, 8)
        exact = _C.adder2d(xq, wq, None, (s, s), (p,) * 4, (1, 1), 1, (2, 12, 12), True, 2)
        np.testing.assert_array_equal(exact, twin.quantize(twin.adder2d(xq, wq, None, (s, s), (p,) * 4), 12, 12))


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 13, 5), (64, 300, 33), (0, 4, 3), (3, 1025, 2)])
def test_linear_kernel_matches_twin(rng, m, k, n):
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_allclose(_C.linear(x, w, b, None, False, 2), twin.linear(x, w, b), rtol=1e-4, atol=1e-3)
    xq, wq = grid(rng, (m, k), 8, 8), grid(rng, (n, k), 8, 8)
    np.testing.assert_array_equal(_C.linear(xq, wq, None, (2, 12, 12), True, 2),
                                  twin.quantize(twin.linear(xq, wq), 12, 12))


def test_linear_exact_mode_beats_float32_accumulation(rng):
    # 4096 products of 8-bit codes: float32 accumulation drops low bits, exact mode must not.
    x = grid(rng, (4, 4096), 8, 8) + 100
    w = grid(rng, (3, 4096), 8, 8)
    exact = _C.linear(x, w, None, (1, 24, 24), True, 1)
    np.testing.assert_array_equal(exact, twin.quantize(twin.linear(x, w), 24))


def test_batchnorm_kernel_matches_twin(rng):
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    mean, var = rng.standard_normal(4).astype(np.float32), rng.random(4).astype(np.float32) + 0.1
    w, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    out = _C.batchnorm(x, mean, var, w, b, 1e-5, None, 2)
    np.testing.assert_allclose(out, twin.batchnorm(x, mean, var, w, b), rtol=1e-6, atol=1e-6)
    out = _C.batchnorm(x, mean, var, None, None, 1e-3, (1, 8, 8), 1)
    np.testing.assert_array_equal(out, twin.quantize(twin.batchnorm(x, mean, var, eps=1e-3), 8))
    m, v = _C.batchnorm_stats(x, 2)
    np.testing.assert_allclose(m, x.mean(axis=(0, 2, 3)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(v, x.var(axis=(0, 2, 3)), rtol=1e-6)


def test_clamp_kernel(rng):
    x = rng.standard_normal(1000).astype(np.float32) * 8
    x[:3] = [np.nan, np.inf, -np.inf]
    out = _C.clamp(x, 0.0, 6.0, (2, 4, 6), (1, 3, 3), False, 2)
    expect = twin.quantize(np.clip(twin.quantize(x, 4, 6).astype(np.float64), 0, 6), 3)
    np.testing.assert_array_equal(out, expect)


# --------------------------------------------------------------------------------------
# Layers against the reference (wageubn 1.2.0 on torch), run in float64 on the same weights
# --------------------------------------------------------------------------------------

def _ref_double(torch, ref_layer, ours):
    """Give the reference layer our parameters and buffers, in float64."""
    ref_layer.double()
    state = {k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()}
    ref_layer.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in state.items()})
    return ref_layer


def _run_ref(torch, ref_layer, x):
    with torch.no_grad():
        return ref_layer(torch.tensor(np.asarray(x, np.float64))).numpy().astype(np.float32)


def _widths(rng, parts):
    out = {}
    for p in parts:
        dec = int(rng.integers(2, 14))
        out[f"{p}_dec_bit_width"] = dec
        out[f"{p}_all_bit_width"] = dec + int(rng.integers(0, 6))
    return out


WEIGHTED = ("weight", "bias", "input", "output")


@pytest.mark.parametrize("iostrict", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_conv2d_matches_reference(torch, ref, iostrict, seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 2]))
    c, oc = 2 * int(rng.integers(1, 4)), 2 * int(rng.integers(1, 4))
    kw = dict(kernel_size=(int(rng.integers(1, 4)), int(rng.integers(1, 4))), stride=int(rng.integers(1, 3)),
              padding=int(rng.integers(0, 2)), dilation=int(rng.integers(1, 3)), groups=groups,
              bias=bool(rng.integers(0, 2)), iostrict=iostrict, **_widths(rng, WEIGHTED))
    ours = nn.Conv2d(c, oc, **kw)
    theirs = _ref_double(torch, ref.function.Conv2d(c, oc, **kw), ours)
    x = (rng.standard_normal((int(rng.integers(0, 4)), c, 9, 8)) * 2).astype(np.float32)
    out = ours(x)
    expect = _run_ref(torch, theirs, x)
    if iostrict:
        np.testing.assert_array_equal(out, expect)
    else:
        np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)


def _ref_linear(ref, in_f, out_f, **kw):
    """The reference Linear's constructor reads two widths before setting them (AttributeError):
    class attributes let it run, and the real widths are set afterwards."""
    cls = type("RefLinear", (ref.function.Linear,), {"output_all_bit_width": 12, "output_dec_bit_width": 12})
    layer = cls(in_f, out_f, **kw)
    layer.output_dec_bit_width = kw.get("output_dec_bit_width", 12)
    layer.output_all_bit_width = kw.get("output_all_bit_width", 12)
    return layer


def test_reference_linear_constructor_is_broken(ref):
    with pytest.raises(AttributeError):
        ref.function.Linear(3, 4)
    assert nn.Linear(3, 4).output_all_bit_width == 12


@pytest.mark.parametrize("iostrict", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_linear_matches_reference(torch, ref, iostrict, seed):
    rng = np.random.default_rng(seed)
    kw = dict(bias=bool(rng.integers(0, 2)), iostrict=iostrict, **_widths(rng, WEIGHTED))
    ours = nn.Linear(13, 7, **kw)
    theirs = _ref_double(torch, _ref_linear(ref, 13, 7, **kw), ours)
    x = (rng.standard_normal((2, 3, 13)) * 3).astype(np.float32)
    out, expect = ours(x), _run_ref(torch, theirs, x)
    assert out.shape == (2, 3, 7)
    if iostrict:
        np.testing.assert_array_equal(out, expect)
    else:
        np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)


def _assert_quantized_close(out, expect, step):
    """Equal, except rare values rounded the other way at a tie between two steps."""
    diff = np.abs(out.astype(np.float64) - expect)
    assert diff.max() <= step + 1e-12
    assert (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("iostrict", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_batchnorm2d_matches_reference(torch, ref, iostrict, seed):
    rng = np.random.default_rng(seed)
    kw = dict(affine=bool(seed % 2), iostrict=iostrict,
              **_widths(rng, ("weight", "bias", "mean", "var", "output", "input")))
    ours = nn.BatchNorm2d(5, **kw)
    ours.running_mean[:] = rng.standard_normal(5)
    ours.running_var[:] = rng.random(5) + 0.5
    if ours.affine:
        ours.weight[:] = rng.standard_normal(5)
        ours.bias[:] = rng.standard_normal(5)
    theirs = _ref_double(torch, ref.function.BatchNorm2d(5, **kw), ours)
    x = (rng.standard_normal((3, 5, 4, 4)) * 2).astype(np.float32)
    for mode in ("train", "eval"):  # the quantized layer uses running stats in both
        getattr(ours, mode)(), getattr(theirs, mode)()
        _assert_quantized_close(ours(x), _run_ref(torch, theirs, x), 2.0 ** (1 - kw["output_dec_bit_width"]))
    assert int(ours.num_batches_tracked) == 0


@pytest.mark.parametrize("cls", ["ReLU", "ReLU6"])
@pytest.mark.parametrize("iostrict", [False, True])
def test_activations_match_reference(torch, ref, rng, cls, iostrict):
    for _ in range(3):
        kw = dict(iostrict=iostrict, **_widths(rng, ("input", "acti")))
        ours, theirs = getattr(nn, cls)(**kw), getattr(ref.function, cls)(**kw)
        x = (rng.standard_normal((4, 3, 5)) * 5).astype(np.float32)
        np.testing.assert_array_equal(ours(x), _run_ref(torch, theirs, x))


@pytest.mark.parametrize("iostrict", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_adder2d_matches_reference(torch, ref, iostrict, seed):
    rng = np.random.default_rng(seed)
    kw = dict(stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)), bias=bool(seed % 2),
              iostrict=iostrict, **_widths(rng, WEIGHTED))
    ours = nn.Adder2d(3, 4, 3, **kw)
    ours.weight[...] = rng.standard_normal(ours.weight.shape) * 0.5
    theirs = _ref_double(torch, ref.function.Adder2d(3, 4, 3, **kw), ours)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    out, expect = ours(x), _run_ref(torch, theirs, x)
    if iostrict:
        np.testing.assert_array_equal(out, expect)
    else:
        np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-4)


def test_float_mode_is_the_torch_layer(torch, rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    pairs = [(nn.Conv2d(3, 4, 3, padding=1, bias=True), torch.nn.Conv2d(3, 4, 3, padding=1)),
             (nn.Conv2d(3, 6, 3, groups=3, dilation=2, padding="same"),
              torch.nn.Conv2d(3, 6, 3, groups=3, dilation=2, padding="same")),
             (nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)), (nn.ReLU(), torch.nn.ReLU()),
             (nn.ReLU6(), torch.nn.ReLU6())]
    for ours, theirs in pairs:
        ours.floatilize()
        theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
        for mode in ("train", "eval"):  # BatchNorm2d uses and updates batch statistics in training
            getattr(ours, mode)(), getattr(theirs, mode)()
            with torch.no_grad():
                expect = theirs(torch.tensor(x)).numpy()
            np.testing.assert_allclose(ours(x), expect, rtol=1e-5, atol=1e-5)
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-6, atol=1e-7)
        ours.quantilize()
        assert ours.quant is True


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_conv2d_padding_modes_match_torch(torch, rng, mode, padding):
    ours = nn.Conv2d(2, 3, (3, 4), padding=padding, padding_mode=mode)
    ours.floatilize()
    theirs = torch.nn.Conv2d(2, 3, (3, 4), padding=padding, padding_mode=mode)
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 2, 6, 7)).astype(np.float32)
    with torch.no_grad():
        expect = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(x), expect, rtol=1e-5, atol=1e-5)
    assert repr(ours) == repr(theirs)


def test_reprs_match_torch(torch):
    pairs = [(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), torch.nn.Conv2d(3, 8, 3, 2, 1, bias=False)),
             (nn.Conv2d(4, 4, (1, 3), dilation=2, groups=2), torch.nn.Conv2d(4, 4, (1, 3), dilation=2, groups=2)),
             (nn.Linear(3, 2, bias=False), torch.nn.Linear(3, 2, bias=False)),
             (nn.BatchNorm2d(7, momentum=None), torch.nn.BatchNorm2d(7, momentum=None)),
             (nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)), (nn.ReLU6(), torch.nn.ReLU6())]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [tuple(v.shape) for v in ours.state_dict().values()] == \
               [tuple(v.shape) for v in theirs.state_dict().values()]


def test_initialisation_follows_torch_distributions():
    wageubn.manual_seed(3)
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / np.sqrt(16 * 9)
    assert np.abs(conv.weight).max() <= bound and np.abs(conv.weight).max() > 0.9 * bound
    assert np.abs(conv.bias).max() <= bound
    assert abs(np.std(conv.weight) - bound / np.sqrt(3)) < 0.05 * bound
    bn = nn.BatchNorm2d(4)
    np.testing.assert_array_equal(bn.weight, 1)
    np.testing.assert_array_equal(bn.running_var, 1)
    adder = nn.Adder2d(8, 16, 3, bias=True)
    assert abs(np.std(adder.weight) - 1) < 0.1 and 0 <= adder.bias.min() and adder.bias.max() <= 1
    wageubn.manual_seed(3)
    np.testing.assert_array_equal(nn.Conv2d(16, 32, 3).weight, conv.weight)


# --------------------------------------------------------------------------------------
# Widths and iostrict are read on every call
# --------------------------------------------------------------------------------------

def test_changing_iostrict_and_widths_after_construction(rng):
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32) * 4
    loose = conv(x)
    conv.iostrict = True  # the reference keeps using directquant here; we switch quantizer
    strict = conv(x)
    expect = twin.quantize(twin.conv2d(twin.quantize(x, 8, 8), twin.quantize(conv.weight, 8, 8),
                                       twin.quantize(conv.bias, 16, 16), pads=(1, 1, 1, 1)), 12, 12)
    np.testing.assert_array_equal(strict, expect)
    assert not np.array_equal(loose, strict)
    conv.output_dec_bit_width, conv.output_all_bit_width = 2, 3
    assert set(np.unique(conv(x) * 2)) <= {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0}
    conv.weight_dec_bit_width = "8"
    with pytest.raises(TypeError, match="weight_dec_bit_width"):
        conv(x)


def test_floatilize_gives_float_conv(rng):
    conv = nn.Conv2d(2, 3, 3)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    conv.floatilize()
    np.testing.assert_allclose(conv(x), twin.conv2d(x, conv.weight, conv.bias), rtol=1e-5, atol=1e-5)
    conv.quantilize()
    np.testing.assert_allclose(conv(x), twin.conv2d(x, twin.quantize(conv.weight, 8),
                                                    twin.quantize(conv.bias, 16)), rtol=1e-5, atol=1e-5)


def test_relu_inplace(rng):
    x = rng.standard_normal(20).astype(np.float32)
    orig = x.copy()
    out = nn.ReLU()(x)
    np.testing.assert_array_equal(x, orig)  # not inplace: input untouched
    y = x[::2]  # a non-contiguous view, written back in place
    res = nn.ReLU(inplace=True)(y)
    # An ndarray input comes back as a Tensor view of itself (the same memory); a Tensor
    # input comes back as the very object, as in torch.
    assert type(res) is wageubn.Tensor and res.base is y
    t = wageubn.from_numpy(y)
    assert nn.ReLU(inplace=True)(t) is t
    np.testing.assert_array_equal(x[::2], out[::2])
    np.testing.assert_array_equal(x[1::2], orig[1::2])
    with pytest.raises(TypeError, match="inplace"):
        nn.ReLU(inplace=True)([1.0, -1.0])


# --------------------------------------------------------------------------------------
# Shapes and bad input
# --------------------------------------------------------------------------------------

def test_unbatched_and_empty_inputs(rng):
    conv = nn.Conv2d(2, 3, 3)
    x = rng.standard_normal((2, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(conv(x), conv(x[None])[0])
    assert conv(np.zeros((0, 2, 6, 6))).shape == (0, 3, 4, 4)
    assert nn.Linear(4, 2)(np.zeros((0, 4))).shape == (0, 2)
    assert nn.Linear(4, 2)(np.zeros(4)).shape == (2,)
    assert nn.BatchNorm2d(2)(np.zeros((0, 2, 3, 3))).shape == (0, 2, 3, 3)
    assert nn.Adder2d(2, 3, 3)(np.zeros((0, 2, 5, 5))).shape == (0, 3, 3, 3)
    assert nn.ReLU()(np.zeros((0, 5))).shape == (0, 5)


@pytest.mark.parametrize("make,x,exc,words", [
    (lambda: nn.Conv2d(3, 4, 3), np.zeros((3, 3)), ValueError, "input"),
    (lambda: nn.Conv2d(3, 4, 3), np.zeros((1, 2, 8, 8)), ValueError, "channels"),
    (lambda: nn.Conv2d(3, 4, 5), np.zeros((1, 3, 4, 4)), ValueError, "kernel size"),
    (lambda: nn.Conv2d(3, 4, 3, padding=1), np.zeros((1, 3, 8, 8), np.complex64), TypeError, "complex"),
    (lambda: nn.Conv2d(3, 4, 3), np.array([["a"]]), TypeError, "input"),
    (lambda: nn.Linear(3, 4), np.zeros((2, 5)), ValueError, "last dimension 3"),
    (lambda: nn.Linear(3, 4), np.float32(1.0), ValueError, "input"),
    (lambda: nn.BatchNorm2d(3), np.zeros((2, 3, 4)), ValueError, "4-d"),
    (lambda: nn.BatchNorm2d(3), np.zeros((2, 4, 4, 4)), ValueError, "3 channels"),
    (lambda: nn.Adder2d(3, 4, 3), np.zeros((1, 3, 2, 2)), ValueError, "kernel size"),
    (lambda: nn.ReLU(), np.array([1 + 2j]), TypeError, "complex"),
    (lambda: nn.ReLU(), np.array([object()]), TypeError, "object"),
])
def test_bad_inputs_raise_named_errors(make, x, exc, words):
    with pytest.raises(exc, match=words):
        make()(x)


@pytest.mark.parametrize("make,exc,words", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "groups"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "groups"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "stride"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), ValueError, "strided"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), ValueError, "padding_mode"),
    (lambda: nn.Conv2d(3, 4, 2.5), TypeError, "kernel_size"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "in_channels"),
    (lambda: nn.Linear(3, -4), ValueError, "out_features"),
    (lambda: nn.Conv2d(3, 4, 3, weight_all_bit_width=0), ValueError, "weight_all_bit_width"),
    (lambda: nn.ReLU(acti_dec_bit_width=2.0), TypeError, "acti_dec_bit_width"),
    (lambda: nn.BatchNorm2d(3, mean_dec_bit_width=10**6), ValueError, "mean_dec_bit_width"),
])
def test_bad_constructor_arguments(make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def test_reflect_padding_larger_than_input_is_rejected():
    with pytest.raises(ValueError, match="too large"):
        nn.Conv2d(1, 1, 3, padding=3, padding_mode="reflect")(np.zeros((1, 1, 3, 3)))


def test_impossible_allocation_raises_memory_error():
    conv = nn.Conv2d(1, 1, 1, padding=2 ** 21)
    with pytest.raises(MemoryError):
        conv(np.zeros((1, 1, 1, 1), np.float32))


def test_kernel_entry_points_validate_arguments():
    x, w = np.zeros((1, 2, 5, 5), np.float32), np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="stride"):
        _C.conv2d(x, w, None, (0, 1), (0, 0, 0, 0), (1, 1), 1, None, False, 1)
    with pytest.raises(ValueError, match="padding"):
        _C.conv2d(x, w, None, (1, 1), (0, -1, 0, 0), (1, 1), 1, None, False, 1)
    with pytest.raises(ValueError, match="bias"):
        _C.conv2d(x, w, np.zeros(4), (1, 1), (0, 0, 0, 0), (1, 1), 1, None, False, 1)
    with pytest.raises(ValueError, match="nthreads"):
        _C.linear(np.zeros((1, 2)), np.zeros((3, 2)), None, None, False, 0)
    with pytest.raises(ValueError, match="dec"):
        _C.quantize(x, (1, 10 ** 4, 8))
    with pytest.raises(TypeError, match="fmt"):
        _C.quantize(x, "8 bits")
    with pytest.raises(ValueError, match="groups"):
        _C.adder2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 2, None, False, 1)
    # a dilated window whose padding exceeds half the kernel could hold no element at all
    with pytest.raises(ValueError, match="padding"):
        _C.maxpool(np.ones((1, 1, 1, 1)), (1, 1, 2), (1, 1, 1), (0, 0, 3), (1, 1, 5), return_indices=True)
    with pytest.raises(ValueError, match="dilation"):
        _C.avgpool(np.ones((1, 1, 4, 4)), (1, 2, 2), (1, 1, 1), (0, 0, 0), (1, 2, 1))


def test_batchnorm_without_running_stats_uses_batch_statistics(ref, torch, rng):
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    ours = nn.BatchNorm2d(3, track_running_stats=False)
    assert ours.running_mean is None and "running_mean" not in ours.state_dict()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_array_equal(ours(x), twin.quantize(twin.batchnorm(x, twin.quantize(mean, 8),
                                                                        twin.quantize(var, 8)), 8))
    theirs = ref.function.BatchNorm2d(3, track_running_stats=False)
    with pytest.raises(Exception):  # the reference quantizes running_mean = None
        theirs(torch.tensor(x))


def test_cached_quantized_weights_follow_in_place_edits(rng):
    conv = nn.Conv2d(2, 3, 3)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    first = conv(x)
    np.testing.assert_array_equal(conv(x), first)  # served from the cache
    conv.weight[0, 0, 0, 0] += 0.5  # an in-place edit must be seen
    expect = twin.conv2d(x, twin.quantize(conv.weight, 8), twin.quantize(conv.bias, 16))
    np.testing.assert_allclose(conv(x), expect, rtol=1e-5, atol=1e-5)
    conv.load_state_dict({"weight": np.zeros((3, 2, 3, 3)), "bias": np.ones(3)})
    np.testing.assert_array_equal(conv(x), np.ones((1, 3, 3, 3), np.float32))
    conv.weight = nn.Parameter(np.full((3, 2, 3, 3), 0.25))  # a new array object
    np.testing.assert_allclose(conv(x), twin.conv2d(x, conv.weight, conv.bias), rtol=1e-5, atol=1e-5)
    assert "_quant_cache" not in pickle.loads(pickle.dumps(conv)).__dict__


@pytest.mark.parametrize("widths", [8, 12])
def test_iostrict_linear_is_exact_whether_float_or_double_accumulation_suffices(rng, widths):
    # 8-bit operands over 1000 products fit float32's 24 bits; 12-bit ones over 2048 do not,
    # and the layer must then accumulate in double.  Both must equal exact arithmetic.
    k = 1000 if widths == 8 else 2048
    kw = {f"{p}_{w}_bit_width": widths for p in ("weight", "input") for w in ("dec", "all")}
    lin = nn.Linear(k, 3, bias=False, iostrict=True, output_dec_bit_width=20, output_all_bit_width=31, **kw)
    lin.weight[...] = grid(rng, (3, k), widths, widths)
    x = grid(rng, (5, k), widths, widths)
    expect = twin.quantize(twin.linear(x, lin.weight), 20, 31)
    assert (lin._sum_bound(k, False) >= 2 ** 24) == (widths == 12)
    np.testing.assert_array_equal(lin(x), expect)


@pytest.mark.parametrize("case", CONV_CASES)
def test_portable_kernels_match_twins(rng, case, monkeypatch):
    # WAGEUBN_PORTABLE=1 switches the C kernels to the portable path at the next call.
    monkeypatch.setenv("WAGEUBN_PORTABLE", "1")
    assert _C.simd_available() is False
    n, c, h, w, oc, k, stride, pads, dil, groups = case
    x = grid(rng, (n, c, h, w), 8, 8)
    weight = grid(rng, (oc, c // groups) + k, 8, 8)
    bias = grid(rng, oc, 16, 16)
    for exact in (False, True):
        out = _C.conv2d(x, weight, bias, stride, pads, dil, groups, (2, 12, 12), exact, 2)
        np.testing.assert_array_equal(out, twin.quantize(twin.conv2d(x, weight, bias, stride, pads, dil, groups),
                                                         12, 12))
    if groups == 1 and dil == (1, 1):
        out = _C.adder2d(x, weight, None, stride, pads, (1, 1), 1, None, True, 2)
        np.testing.assert_array_equal(out, twin.adder2d(x, weight, None, stride, pads).astype(np.float32))
    xl, wl = grid(rng, (7, 50), 8, 8), grid(rng, (9, 50), 8, 8)
    np.testing.assert_array_equal(_C.linear(xl, wl, None, (1, 20, 20), False, 2),
                                  twin.quantize(twin.linear(xl, wl), 20))


@pytest.mark.parametrize("m", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("portable", [False, True])
def test_linear_kernel_small_batches_match_twin(rng, m, portable, monkeypatch):
    # fewer than 4 rows: dot products (AVX2 or portable), else the packed GEMM
    if portable:
        monkeypatch.setenv("WAGEUBN_PORTABLE", "1")
    for k in (1, 15, 16, 17, 120, 2048):
        x, w, b = grid(rng, (m, k), 8, 8), grid(rng, (9, k), 8, 8), grid(rng, 9, 16, 16)
        expect = twin.quantize(twin.linear(x, w, b), 20, 24)
        for exact in (False, True):
            if exact or k * 127 * 127 < 2 ** 24:  # float32 sums are exact below 2**24 units
                np.testing.assert_array_equal(_C.linear(x, w, b, (2, 20, 24), exact, 2), expect)
        xf, wf = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((9, k)).astype(np.float32)
        np.testing.assert_allclose(_C.linear(xf, wf, None, None, False, 2), twin.linear(xf, wf),
                                   rtol=1e-4, atol=1e-4 * np.sqrt(k))


def test_changed_widths_take_effect_on_the_next_call(rng):
    # formats are cached per layer until a width, iostrict or quant is assigned: each change
    # must give what a layer built with the new settings gives
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    conv = nn.Conv2d(2, 3, 3)
    outputs = {conv(x).tobytes()}
    settings = {}
    for name, value in [("iostrict", True), ("input_dec_bit_width", 3), ("output_all_bit_width", 6),
                        ("weight_dec_bit_width", 2)]:
        setattr(conv, name, value)
        settings[name] = value
        fresh = nn.Conv2d(2, 3, 3, **settings)
        fresh.load_state_dict(conv.state_dict())
        np.testing.assert_array_equal(conv(x), fresh(x))
        outputs.add(conv(x).tobytes())
    assert len(outputs) == 5  # every change changed the result
    conv.quant = False
    np.testing.assert_allclose(conv(x), twin.conv2d(x, conv.weight, conv.bias), rtol=1e-5, atol=1e-5)
