"""The layers real CNN code uses beyond the reference's: float versions against torch 2.13,
quantized versions against NumPy twins (and the reference where it has the layer), state-dict
keys and reprs as torch's, bad arguments naming the argument."""
import warnings

import numpy as np
import pytest

import wageubn
import wageubn.function as nn
from wageubn.tensor import Tensor

import layer_twins as twin


def _load_from_torch(torch, ours, theirs):
    ours.load_state_dict({k: v.detach().clone() for k, v in theirs.state_dict().items()})


def _run(torch, theirs, *args):
    with torch.no_grad():
        out = theirs(*(torch.from_numpy(np.asarray(a).copy()) for a in args))
    return out


def _grid(rng, shape, dec, all_):
    bound = 2 ** (all_ - 1) - 1
    return (rng.integers(-bound, bound + 1, size=shape) / 2.0 ** (dec - 1)).astype(np.float32)


# --- float versions against torch ------------------------------------------------------------

def _float_pairs(torch):
    T = torch.nn
    return [
        (nn.LeakyReLU(0.2), T.LeakyReLU(0.2), (2, 3, 4, 5)),
        (nn.Hardtanh(-0.5, 1.5), T.Hardtanh(-0.5, 1.5), (2, 3, 4, 5)),
        (nn.Sigmoid(), T.Sigmoid(), (2, 3, 4, 5)),
        (nn.Tanh(), T.Tanh(), (2, 3, 4, 5)),
        (nn.Softmax(dim=1), T.Softmax(dim=1), (2, 3, 4, 5)),
        (nn.LogSoftmax(dim=-1), T.LogSoftmax(dim=-1), (2, 3, 4, 5)),
        (nn.AdaptiveAvgPool2d((3, 2)), T.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
        (nn.AdaptiveAvgPool2d(1), T.AdaptiveAvgPool2d(1), (2, 3, 7, 5)),
        (nn.AdaptiveMaxPool2d((None, 3)), T.AdaptiveMaxPool2d((None, 3)), (2, 3, 7, 5)),
        (nn.BatchNorm1d(3), T.BatchNorm1d(3), (6, 3)),
        (nn.BatchNorm1d(3, momentum=None, affine=False), T.BatchNorm1d(3, momentum=None, affine=False), (4, 3, 5)),
        (nn.BatchNorm1d(3, track_running_stats=False), T.BatchNorm1d(3, track_running_stats=False), (4, 3, 5)),
        (nn.BatchNorm1d(3, bias=False), T.BatchNorm1d(3, bias=False), (5, 3)),
        (nn.GroupNorm(2, 4), T.GroupNorm(2, 4), (3, 4, 5, 2)),
        (nn.GroupNorm(4, 4, affine=False), T.GroupNorm(4, 4, affine=False), (3, 4, 6)),
        (nn.LayerNorm((4, 5)), T.LayerNorm((4, 5)), (2, 3, 4, 5)),
        (nn.LayerNorm(5, elementwise_affine=False), T.LayerNorm(5, elementwise_affine=False), (2, 3, 5)),
        (nn.LayerNorm(5, bias=False), T.LayerNorm(5, bias=False), (2, 5)),
        (nn.Conv1d(3, 4, 3), T.Conv1d(3, 4, 3), (2, 3, 11)),
        (nn.Conv1d(4, 6, 5, stride=2, padding=2, dilation=1, groups=2, bias=False),
         T.Conv1d(4, 6, 5, stride=2, padding=2, groups=2, bias=False), (2, 4, 13)),
        (nn.Conv1d(3, 2, 3, padding="same", dilation=2, padding_mode="reflect"),
         T.Conv1d(3, 2, 3, padding="same", dilation=2, padding_mode="reflect"), (2, 3, 9)),
        (nn.Conv1d(3, 2, 2, padding=1, padding_mode="circular"),
         T.Conv1d(3, 2, 2, padding=1, padding_mode="circular"), (3, 9)),
        (nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
         T.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1), (2, 3, 5, 4)),
        (nn.ConvTranspose2d(4, 6, (2, 3), stride=(2, 1), groups=2, dilation=(1, 2), bias=False),
         T.ConvTranspose2d(4, 6, (2, 3), stride=(2, 1), groups=2, dilation=(1, 2), bias=False), (1, 4, 3, 3)),
        (nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1), T.ConvTranspose2d(2, 2, 4, stride=2, padding=1), (2, 6, 6)),
        (nn.Upsample(scale_factor=2), T.Upsample(scale_factor=2), (2, 3, 4, 5)),
        (nn.Upsample(size=(7, 3), mode="bilinear"), T.Upsample(size=(7, 3), mode="bilinear"), (2, 3, 4, 5)),
        (nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True),
         T.Upsample(scale_factor=3, mode="bilinear", align_corners=True), (1, 2, 3, 4)),
        (nn.Dropout(0.3), T.Dropout(0.3), (4, 5)),
        (nn.Dropout2d(0.3), T.Dropout2d(0.3), (2, 3, 4, 4)),
    ]


@pytest.mark.parametrize("index", range(30))
def test_float_layers_match_torch(torch, rng, index):
    pairs = _float_pairs(torch)
    assert len(pairs) == 30
    ours, theirs, shape = pairs[index]
    if hasattr(ours, "quant"):
        ours.floatilize()
    _load_from_torch(torch, ours, theirs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [tuple(v.shape) for v in ours.state_dict().values()] == \
        [tuple(v.shape) for v in theirs.state_dict().values()]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    modes = ["eval"] if isinstance(ours, (nn.Dropout,)) else ["train", "eval"]
    for mode in modes:
        getattr(ours, mode)(), getattr(theirs, mode)()
        for _ in range(2):  # twice: the running statistics move in training mode
            out = ours(x)
            expect = _run(torch, theirs, x)
            assert isinstance(out, Tensor) and out.dtype == np.float32
            np.testing.assert_allclose(out, expect.numpy(), rtol=1e-5, atol=2e-5)
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-6, atol=1e-6)


def test_adaptive_max_pool_indices_match_torch(torch, rng):
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    out, idx = nn.AdaptiveMaxPool2d((4, 3), return_indices=True)(x)
    tout, tidx = _run(torch, torch.nn.AdaptiveMaxPool2d((4, 3), return_indices=True), x)
    np.testing.assert_array_equal(out, tout.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())


def test_conv_transpose_output_size_matches_torch(torch, rng):
    ours = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    ours.floatilize()
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    _load_from_torch(torch, ours, theirs)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    for size in [(9, 9), (10, 10), (9, 10), [1, 3, 10, 9]]:
        with torch.no_grad():
            expect = theirs(torch.from_numpy(x), output_size=size).numpy()
        np.testing.assert_allclose(ours(x, output_size=size), expect, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="output_size"):
        ours(x, output_size=(11, 11))


def test_default_initialisation_like_torch(torch):
    """Conv1d / ConvTranspose2d: kaiming_uniform(a=sqrt(5)) weights and U(+-1/sqrt(fan_in)) bias,
    with fan_in from the weight's dim 1 as torch; Embedding N(0, 1) with the padding row zeroed."""
    wageubn.manual_seed(0)
    conv = nn.Conv1d(64, 32, 5)
    bound = 1 / np.sqrt(64 * 5)
    assert bound * 0.99 < np.abs(conv.weight).max() <= bound and np.abs(conv.bias).max() <= bound
    tconv = nn.ConvTranspose2d(16, 48, 3)  # weight (16, 48, 3, 3): fan_in = 48 * 9
    bound = 1 / np.sqrt(48 * 9)
    assert bound * 0.99 < np.abs(tconv.weight).max() <= bound and np.abs(tconv.bias).max() <= bound
    emb = nn.Embedding(1000, 64, padding_idx=3)
    assert abs(np.std(emb.weight) - 1) < 0.02 and not emb.weight[3].any()
    assert nn.Embedding(5, 2, padding_idx=-1).padding_idx == torch.nn.Embedding(5, 2, padding_idx=-1).padding_idx


def test_embedding_matches_torch(torch, rng):
    theirs = torch.nn.Embedding(10, 4, padding_idx=2, max_norm=1.0)
    ours = nn.Embedding(10, 4, padding_idx=2, max_norm=1.0)
    _load_from_torch(torch, ours, theirs)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == ["weight"]
    idx = rng.integers(0, 10, (3, 4))
    np.testing.assert_allclose(ours(idx), _run(torch, theirs, idx).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.weight, theirs.weight.detach().numpy(), rtol=1e-6)
    pre = nn.Embedding.from_pretrained(np.eye(3))
    assert pre.weight.requires_grad is False and pre(np.array([1])).tolist() == [[0.0, 1.0, 0.0]]


# --- dropout ---------------------------------------------------------------------------------

def test_dropout_layers_train_and_eval():
    wageubn.manual_seed(0)
    x = np.ones((200, 100, 2, 2), np.float32)
    for layer in (nn.Dropout(0.25), nn.Dropout2d(0.25)):
        out = layer(x)
        assert abs((out == 0).mean() - 0.25) < 0.02
        assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
        layer.eval()
        np.testing.assert_array_equal(layer(x), x)
    grouped = nn.Dropout2d(0.5)(x).reshape(200, 100, 4)
    assert ((grouped == 0).all(-1) | (grouped == 2).all(-1)).all()


# --- losses ----------------------------------------------------------------------------------

def test_losses_match_torch(torch, rng):
    x = rng.standard_normal((6, 4, 3)).astype(np.float32)
    t = rng.integers(0, 4, (6, 3))
    t[1, 1] = 2
    w = rng.random(4).astype(np.float32) + 0.1
    T = torch.nn
    pairs = [(nn.CrossEntropyLoss(), T.CrossEntropyLoss()),
             (nn.CrossEntropyLoss(weight=w, ignore_index=2, reduction="sum", label_smoothing=0.1),
              T.CrossEntropyLoss(weight=torch.from_numpy(w), ignore_index=2, reduction="sum", label_smoothing=0.1)),
             (nn.CrossEntropyLoss(w, reduction="none"), T.CrossEntropyLoss(torch.from_numpy(w), reduction="none")),
             (nn.NLLLoss(), T.NLLLoss()), (nn.NLLLoss(w, ignore_index=1), T.NLLLoss(torch.from_numpy(w), ignore_index=1))]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        out = ours(x, t)
        assert isinstance(out, Tensor)
        np.testing.assert_allclose(out, _run(torch, theirs, x, t).numpy(), rtol=1e-5, atol=1e-6)
    y = rng.standard_normal((6, 4, 3)).astype(np.float32)
    for reduction in ("mean", "sum", "none"):
        ours, theirs = nn.MSELoss(reduction=reduction), T.MSELoss(reduction=reduction)
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(x, y), _run(torch, theirs, x, y).numpy(), rtol=1e-5)
    probs = rng.random((6, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(nn.CrossEntropyLoss(label_smoothing=0.2)(x, probs),
                               _run(torch, T.CrossEntropyLoss(label_smoothing=0.2), x, probs).numpy(), rtol=1e-5)


def test_legacy_loss_arguments(torch):
    with pytest.warns(UserWarning, match="deprecated"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert nn.NLLLoss(reduce=False).reduction == torch.nn.NLLLoss(reduce=False).reduction == "none"


# --- quantized activations -------------------------------------------------------------------

ACTS = [
    (lambda **w: nn.LeakyReLU(0.1, **w), lambda v: np.where(v > 0, v, v * np.float32(0.1))),
    (lambda **w: nn.Hardtanh(-2.0, 1.5, **w), lambda v: np.clip(v, -2.0, 1.5)),
    (lambda **w: nn.Sigmoid(**w), lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))),
    (lambda **w: nn.Tanh(**w), lambda v: np.tanh(v.astype(np.float64))),
]


@pytest.mark.parametrize("make,f", ACTS)
@pytest.mark.parametrize("iostrict", [False, True])
def test_quantized_activations_match_twin(rng, make, f, iostrict):
    widths = dict(input_dec_bit_width=5, input_all_bit_width=7, acti_dec_bit_width=6, acti_all_bit_width=7)
    layer = make(iostrict=iostrict, **widths)
    x = (rng.standard_normal((3, 4, 5)) * 3).astype(np.float32)
    if iostrict:
        expect = twin.quantize(np.float32(f(twin.quantize(x, 5, 7))), 6, 7)
    else:
        expect = twin.quantize(np.float32(f(x)), 6)
    out = layer(x)
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out, expect)
    layer.floatilize()
    np.testing.assert_allclose(layer(x), f(x), rtol=1e-6, atol=1e-7)
    assert set(layer.threshold_parts()) == {"input_log2_t", "acti_log2_t"}


@pytest.mark.parametrize("iostrict", [False, True])
def test_hardtanh_and_leaky_relu_match_reference_relus(torch, ref, rng, iostrict):
    """Hardtanh(0, 6) is the reference's ReLU6, LeakyReLU(0) its ReLU, width for width."""
    widths = dict(input_dec_bit_width=4, input_all_bit_width=6, acti_dec_bit_width=5, acti_all_bit_width=6,
                  iostrict=iostrict)
    x = (rng.standard_normal((2, 3, 4, 4)) * 4).astype(np.float32)
    for ours, theirs in [(nn.Hardtanh(0.0, 6.0, **widths), ref.function.ReLU6(**widths)),
                         (nn.LeakyReLU(0.0, **widths), ref.function.ReLU(**widths))]:
        with torch.no_grad():
            expect = theirs(torch.tensor(x.astype(np.float64))).numpy()
        np.testing.assert_array_equal(ours(x), expect.astype(np.float32))


def test_inplace_quantized_activations(rng):
    x = (rng.standard_normal(50) * 2).astype(np.float32)
    for layer in (nn.LeakyReLU(0.2, inplace=True), nn.Hardtanh(inplace=True)):
        a = x.copy()
        out = layer(a)
        np.testing.assert_array_equal(a, out)
        np.testing.assert_array_equal(out, type(layer)(*([0.2] if isinstance(layer, nn.LeakyReLU) else []))(x))
        with pytest.raises(TypeError, match="input"):
            layer(x.astype(np.float64))


# --- quantized BatchNorm1d, Conv1d, ConvTranspose2d ------------------------------------------

@pytest.mark.parametrize("iostrict", [False, True])
@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 7)])
def test_batchnorm1d_matches_reference_batchnorm2d(torch, ref, rng, iostrict, shape):
    kw = dict(weight_dec_bit_width=6, bias_dec_bit_width=7, mean_dec_bit_width=6, var_dec_bit_width=5,
              output_dec_bit_width=6, input_dec_bit_width=5, weight_all_bit_width=8, bias_all_bit_width=8,
              mean_all_bit_width=8, var_all_bit_width=8, output_all_bit_width=8, input_all_bit_width=8,
              iostrict=iostrict)
    ours = nn.BatchNorm1d(5, **kw)
    ours.weight[...] = rng.random(5) + 0.5
    ours.bias[...] = rng.standard_normal(5)
    ours.running_mean[...] = rng.standard_normal(5) * 0.5
    ours.running_var[...] = rng.random(5) + 0.5
    theirs = ref.function.BatchNorm2d(5, **kw).double()
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)).double() if np.asarray(v).dtype.kind == "f"
                            else torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    x4 = x.reshape(shape + (1,) * (4 - len(shape)))
    with torch.no_grad():
        expect = theirs(torch.tensor(x4.astype(np.float64))).numpy().astype(np.float32).reshape(shape)
    out = ours(x)
    assert out.shape == shape
    mismatch = out != expect  # as BatchNorm2d: a step apart only at rare ties of sqrt
    assert mismatch.mean() < 0.01
    np.testing.assert_allclose(out, expect, atol=2.0 ** -5 + 1e-7)
    weight = twin.quantize(ours.weight, 6, 8) if iostrict else twin.quantize(ours.weight, 6)
    assert weight.shape == (5,)
    assert ours.threshold_parts().keys() == {"weight_log2_t", "bias_log2_t", "mean_log2_t", "var_log2_t",
                                             "acti_log2_t", "input_log2_t"}


def _weighted_widths():
    return dict(weight_dec_bit_width=6, weight_all_bit_width=7, bias_dec_bit_width=8, bias_all_bit_width=10,
                input_dec_bit_width=5, input_all_bit_width=7, output_dec_bit_width=6, output_all_bit_width=9)


@pytest.mark.parametrize("iostrict", [False, True])
def test_conv1d_quantized_matches_twin(rng, iostrict):
    layer = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, iostrict=iostrict, **_weighted_widths())
    x = (rng.standard_normal((3, 4, 11)) * 2).astype(np.float32)
    if iostrict:
        w, b, xi = twin.quantize(layer.weight, 6, 7), twin.quantize(layer.bias, 8, 10), twin.quantize(x, 5, 7)
        raw = twin.conv2d(xi[:, :, None, :], w[:, :, None, :], b, (1, 2), (0, 1, 0, 1), groups=2)[:, :, 0]
        np.testing.assert_array_equal(layer(x), twin.quantize(raw, 6, 9))
    else:
        w, b = twin.quantize(layer.weight, 6), twin.quantize(layer.bias, 8)
        raw = twin.conv2d(x[:, :, None, :], w[:, :, None, :], b, (1, 2), (0, 1, 0, 1), groups=2)[:, :, 0]
        np.testing.assert_allclose(layer(x), raw, rtol=1e-5, atol=1e-5)
    assert set(layer.threshold_parts()) == {"weight_log2_t", "bias_log2_t", "input_log2_t", "acti_log2_t"}


def test_conv1d_matches_reference_conv2d_on_height_one(torch, ref, rng):
    kw = dict(iostrict=True, **_weighted_widths())
    ours = nn.Conv1d(3, 5, 4, padding=2, **kw)
    theirs = ref.function.Conv2d(3, 5, (1, 4), padding=(0, 2), **kw).double()
    theirs.load_state_dict({"weight": torch.tensor(np.asarray(ours.weight)[:, :, None, :]).double(),
                            "bias": torch.tensor(np.asarray(ours.bias)).double()})
    x = (rng.standard_normal((2, 3, 9)) * 2).astype(np.float32)
    with torch.no_grad():
        expect = theirs(torch.tensor(x[:, :, None, :].astype(np.float64))).numpy()[:, :, 0].astype(np.float32)
    np.testing.assert_array_equal(ours(x), expect)


@pytest.mark.parametrize("iostrict", [False, True])
@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, output_padding=1), dict(stride=(1, 2), groups=2),
                                dict(dilation=2, padding=2)])
def test_conv_transpose2d_quantized_matches_twin(torch, rng, iostrict, kw):
    layer = nn.ConvTranspose2d(4, 6, 3, iostrict=iostrict, **_weighted_widths(), **kw)
    x = (rng.standard_normal((2, 4, 5, 6)) * 2).astype(np.float32)
    q = (lambda v, d, a: twin.quantize(v, d, a)) if iostrict else (lambda v, d, a: twin.quantize(v, d))
    w, b = q(layer.weight, 6, 7), q(layer.bias, 8, 10)
    xi = twin.quantize(x, 5, 7) if iostrict else x
    raw = torch.nn.functional.conv_transpose2d(torch.tensor(xi.astype(np.float64)), torch.tensor(w.astype(np.float64)),
                                               torch.tensor(b.astype(np.float64)), **kw).numpy()
    if iostrict:
        np.testing.assert_array_equal(layer(x), twin.quantize(raw, 6, 9))
    else:
        np.testing.assert_allclose(layer(x), raw, rtol=1e-5, atol=1e-5)


def test_quantized_layers_follow_width_changes(rng):
    layer = nn.Conv1d(2, 3, 3)
    x = rng.standard_normal((1, 2, 8)).astype(np.float32)
    first = layer(x)
    layer.weight_dec_bit_width = 2
    assert not np.array_equal(layer(x), first)
    act = nn.Tanh()
    act.acti_dec_bit_width = 2
    assert set(np.unique(act(x * 5))) <= {-1.0, -0.5, 0.0, 0.5, 1.0}


# --- bad arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("make,exc,name", [
    (lambda: nn.Conv1d(3, 4, 0), ValueError, "kernel_size"),
    (lambda: nn.Conv1d(3, 4, 3, groups=2), ValueError, "groups"),
    (lambda: nn.Conv1d(3, 4, 3, padding_mode="mirror"), ValueError, "padding_mode"),
    (lambda: nn.Conv1d(3, 4, 3, stride=2, padding="same"), ValueError, "padding"),
    (lambda: nn.Conv1d(0, 4, 3), ValueError, "in_channels"),
    (lambda: nn.Conv1d(3, 4, 3, weight_dec_bit_width=10**6), ValueError, "weight_dec_bit_width"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, output_padding=1), ValueError, "output_padding"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), ValueError, "padding_mode"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, stride=(1, 0)), ValueError, "stride"),
    (lambda: nn.BatchNorm1d(0), ValueError, "num_features"),
    (lambda: nn.GroupNorm(3, 4), ValueError, "num_groups"),
    (lambda: nn.GroupNorm(2, 0), ValueError, "num_channels"),
    (lambda: nn.LayerNorm("x"), TypeError, "normalized_shape"),
    (lambda: nn.Embedding(0, 3), ValueError, "num_embeddings"),
    (lambda: nn.Embedding(4, 3, padding_idx=4), ValueError, "padding_idx"),
    (lambda: nn.Embedding(4, 3, _weight=np.zeros((3, 3))), ValueError, "_weight"),
    (lambda: nn.Dropout(1.5), ValueError, "between 0 and 1"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "output_size"),
    (lambda: nn.AdaptiveMaxPool2d((1, 2, 3)), ValueError, "output_size"),
    (lambda: nn.Upsample(scale_factor=2, mode="bicubic"), ValueError, "mode"),
    (lambda: nn.Hardtanh(1.0, -1.0), ValueError, "max_val"),
    (lambda: nn.LeakyReLU("a"), TypeError, "negative_slope"),
    (lambda: nn.Tanh(acti_all_bit_width=0), ValueError, "acti_all_bit_width"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, "reduction"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=2.0), ValueError, "label_smoothing"),
    (lambda: nn.NLLLoss(weight=np.ones((2, 2))), ValueError, "weight"),
])
def test_bad_constructor_arguments(make, exc, name):
    with pytest.raises(exc, match=name):
        make()


@pytest.mark.parametrize("layer,x,name", [
    (lambda: nn.BatchNorm1d(3), np.zeros((2, 3, 4, 5)), "input"),
    (lambda: nn.BatchNorm1d(3), np.zeros((2, 4)), "3 channels"),
    (lambda: nn.Conv1d(3, 4, 3), np.zeros((2, 3, 4, 5)), "input"),
    (lambda: nn.Conv1d(3, 4, 3), np.zeros((2, 2, 8)), "input"),
    (lambda: nn.ConvTranspose2d(3, 4, 3), np.zeros((2, 2, 5, 5)), "input"),
    (lambda: nn.GroupNorm(2, 4), np.zeros((2, 6, 3)), "input"),
    (lambda: nn.LayerNorm(4), np.zeros((2, 5)), "input"),
    (lambda: nn.Embedding(4, 2), np.array([4]), "input"),
    (lambda: nn.Sigmoid(), np.array(["a"]), "input"),
    (lambda: nn.AdaptiveAvgPool2d(2), np.zeros(4), "input"),
    (lambda: nn.Upsample(size=3, mode="bilinear"), np.zeros((1, 2, 4)), "input"),
])
def test_bad_inputs(layer, x, name):
    with pytest.raises((ValueError, TypeError, IndexError), match=name):
        layer()(x)


def test_new_names_exported():
    names = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Dropout", "Dropout2d", "BatchNorm1d", "LeakyReLU",
             "Hardtanh", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "GroupNorm", "LayerNorm", "Conv1d",
             "ConvTranspose2d", "Upsample", "Embedding", "CrossEntropyLoss", "MSELoss", "NLLLoss", "functional"]
    for name in names:
        assert name in nn.__all__ and hasattr(nn, name)


def test_a_small_cnn_runs_float_and_quantized(rng):
    """torch-style model code: conv, BN, activations, pools, dropout, upsample, loss."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.1),
                        nn.ConvTranspose2d(8, 8, 2, stride=2), nn.Upsample(scale_factor=0.5),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 4))
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    t = np.array([1, 3])
    net.eval()
    loss = nn.CrossEntropyLoss()(net(x), t)
    assert loss.shape == () and np.isfinite(loss)
    for m in net.modules():
        if hasattr(m, "floatilize"):
            m.floatilize()
    assert np.isfinite(nn.CrossEntropyLoss()(net(x), t))


def test_conv_transpose2d_exact_accumulation_with_wide_formats(torch, rng):
    """12-bit operands over 288 products per output pass 2**24 grid units: the kernel sums in
    double and the output is still the exact sum rounded once."""
    widths = dict(weight_dec_bit_width=11, weight_all_bit_width=12, bias_dec_bit_width=12, bias_all_bit_width=16,
                  input_dec_bit_width=10, input_all_bit_width=12, output_dec_bit_width=20, output_all_bit_width=30)
    layer = nn.ConvTranspose2d(32, 4, 3, stride=2, iostrict=True, **widths)
    assert layer._sum_bound(32 * 9, False) >= 2 ** 24
    layer.weight[...] = _grid(rng, layer.weight.shape, 11, 12)  # full-range codes: float32 sums would round
    x = _grid(rng, (1, 32, 4, 4), 10, 12)
    w, b, xi = twin.quantize(layer.weight, 11, 12), twin.quantize(layer.bias, 12, 16), twin.quantize(x, 10, 12)
    raw = torch.nn.functional.conv_transpose2d(torch.tensor(xi.astype(np.float64)), torch.tensor(w.astype(np.float64)),
                                               torch.tensor(b.astype(np.float64)), stride=2).numpy()
    np.testing.assert_array_equal(layer(x), twin.quantize(raw, 20, 30))


def test_float_layers_and_functional_compute_the_same(rng):
    """One implementation per concept: the floatilized layer is the functional, bit for bit."""
    import wageubn.function.functional as F
    x3 = rng.standard_normal((2, 4, 9)).astype(np.float32)
    x4 = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    conv1 = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2)
    tconv = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    bn = nn.BatchNorm1d(4)
    for m in (conv1, tconv, bn):
        m.floatilize()
    np.testing.assert_array_equal(conv1(x3), F.conv1d(x3, conv1.weight, conv1.bias, 2, 1, 1, 2))
    np.testing.assert_array_equal(tconv(x4), F.conv_transpose2d(x4, tconv.weight, tconv.bias, 2, 1, 1))
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    np.testing.assert_array_equal(bn(x3), F.batch_norm(x3, rm, rv, bn.weight, bn.bias, True, 0.1, 1e-5))
    np.testing.assert_array_equal(bn.running_mean, rm)
    np.testing.assert_array_equal(bn.running_var, rv)
    act = nn.LeakyReLU(0.3)
    act.floatilize()
    np.testing.assert_array_equal(act(x4), F.leaky_relu(x4, 0.3))
    ht = nn.Hardtanh(-0.5, 0.5)
    ht.floatilize()
    np.testing.assert_array_equal(ht(x4), F.hardtanh(x4, -0.5, 0.5))
