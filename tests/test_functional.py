"""wageubn.function.functional against torch.nn.functional 2.13 on random inputs.

float32 inputs are compared with a tolerance where the arithmetic is not the same; values that
are exact in float32 (clamps, gathers, maxima, paddings) are compared bit for bit, also with
torch run in float64 on the same values."""
import warnings

import numpy as np
import pytest

import wageubn
import wageubn.function.functional as F
from wageubn.tensor import Tensor


def _t(torch, a, dtype=None):
    a = np.asarray(a)
    return torch.from_numpy(a.copy()) if dtype is None else torch.from_numpy(a.copy()).to(dtype)


def _close(ours, theirs, rtol=1e-5, atol=1e-6):
    assert isinstance(ours, Tensor), type(ours)
    assert ours.dtype == np.float32
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def _exact(ours, theirs):
    assert isinstance(ours, Tensor) and ours.dtype == np.float32
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs.astype(np.float32))


@pytest.fixture
def x4(rng):
    return rng.standard_normal((2, 3, 7, 6)).astype(np.float32) * 2


# --- activations ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [("relu", {}), ("relu6", {}), ("hardtanh", {}),
                                         ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
                                         ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2})])
def test_piecewise_activations_exact(torch, x4, name, kwargs):
    ours = getattr(F, name)(x4, **kwargs)
    _exact(ours, getattr(torch.nn.functional, name)(_t(torch, x4), **kwargs))
    theirs64 = getattr(torch.nn.functional, name)(_t(torch, x4, torch.float64), **kwargs)
    if name == "leaky_relu":  # torch multiplies by the slope in float32 for float32 data, as wageubn
        _close(getattr(F, name)(x4.astype(np.float64), **kwargs), theirs64, rtol=1e-7, atol=0)
    else:
        _exact(getattr(F, name)(x4.astype(np.float64), **kwargs), theirs64)


@pytest.mark.parametrize("name", ["relu", "relu6", "hardtanh", "leaky_relu"])
def test_inplace_activations(torch, x4, name):
    a = x4.copy()
    out = getattr(F, name)(a, inplace=True)
    _exact(out, getattr(torch.nn.functional, name)(_t(torch, x4)))
    np.testing.assert_array_equal(a, out)
    with pytest.raises(TypeError, match="input"):
        getattr(F, name)(x4.astype(np.float64), inplace=True)


def test_inputs_are_not_modified(x4):
    keep = x4.copy()
    for f in (F.relu, F.leaky_relu, F.sigmoid, F.tanh, lambda x: F.softmax(x, 1), lambda x: F.dropout(x, 0.5)):
        f(x4)
    np.testing.assert_array_equal(x4, keep)


def test_sigmoid_tanh(torch, x4):
    big = np.array([-200.0, -30.0, 0.0, 30.0, 200.0], np.float32)
    for name in ("sigmoid", "tanh"):
        tf = getattr(torch, name)
        _close(getattr(F, name)(x4), tf(_t(torch, x4)))
        _close(getattr(F, name)(big), tf(_t(torch, big)), atol=0)
        _close(getattr(F, name)(x4.astype(np.float64)), tf(_t(torch, x4, torch.float64)), rtol=1e-7, atol=0)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_softmax_log_softmax(torch, x4, dim):
    tx = _t(torch, x4)
    _close(F.softmax(x4, dim), torch.nn.functional.softmax(tx, dim))
    _close(F.log_softmax(x4, dim=dim), torch.nn.functional.log_softmax(tx, dim=dim))
    assert F.softmax(x4, dim, dtype=np.float64).dtype == np.float64


def test_softmax_implicit_dim_warns_like_torch(torch, rng):
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)]:
        x = rng.standard_normal(shape).astype(np.float32)
        with pytest.warns(UserWarning, match="Implicit dimension"):
            ours = F.softmax(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _close(ours, torch.nn.functional.softmax(_t(torch, x)))


def test_softmax_extremes(torch):
    x = np.array([[1000.0, 0.0, -1000.0], [-np.inf, 0.0, 1.0]], np.float32)
    _close(F.softmax(x, 1), torch.nn.functional.softmax(_t(torch, x), 1))
    _close(F.log_softmax(x, 1), torch.nn.functional.log_softmax(_t(torch, x), 1))


def test_activation_errors():
    with pytest.raises(ValueError, match="min_val cannot be greater"):
        F.hardtanh(np.zeros(2), 1.0, 0.0)
    with pytest.raises(TypeError, match="negative_slope"):
        F.leaky_relu(np.zeros(2), "x")
    with pytest.raises(TypeError, match="input"):
        F.sigmoid(np.array(["a"]))
    with pytest.raises(IndexError, match="dim"):
        F.softmax(np.zeros((2, 2)), 2)
    with pytest.raises(TypeError, match="dtype"):
        F.softmax(np.zeros((2, 2)), 1, dtype=np.int32)


# --- convolutions and linear ------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, {"stride": 2, "padding": 1}, {"padding": (2, 1), "dilation": (2, 1)},
                                {"groups": 3, "padding": "same"}, {"padding": "valid", "stride": (1, 2)}])
def test_conv2d(torch, rng, x4, kw):
    groups = kw.get("groups", 1)
    w = rng.standard_normal((6, 3 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    _close(F.conv2d(x4, w, b, **kw), torch.nn.functional.conv2d(_t(torch, x4), _t(torch, w), _t(torch, b), **kw),
           atol=2e-5)
    _close(F.conv2d(x4[0], w, None, **kw), torch.nn.functional.conv2d(_t(torch, x4[0]), _t(torch, w), None, **kw),
           atol=2e-5)


@pytest.mark.parametrize("kw", [{}, {"stride": 2, "padding": 2}, {"dilation": 3, "padding": "same"}, {"groups": 2}])
def test_conv1d(torch, rng, kw):
    x = rng.standard_normal((3, 4, 17)).astype(np.float32)
    w = rng.standard_normal((6, 4 // kw.get("groups", 1), 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    _close(F.conv1d(x, w, b, **kw), torch.nn.functional.conv1d(_t(torch, x), _t(torch, w), _t(torch, b), **kw))
    _close(F.conv1d(x[1], w, **kw), torch.nn.functional.conv1d(_t(torch, x[1]), _t(torch, w), **kw))


@pytest.mark.parametrize("kw", [{}, {"stride": 2}, {"stride": 2, "padding": 1, "output_padding": 1},
                                {"stride": (3, 2), "padding": (2, 0), "dilation": (1, 2)},
                                {"groups": 2, "stride": 2, "padding": 1}, {"padding": 3}, {"dilation": 2, "output_padding": 1}])
def test_conv_transpose2d(torch, rng, kw):
    x = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 4)).astype(np.float32)
    b = rng.standard_normal(3 * kw.get("groups", 1)).astype(np.float32)
    ours = F.conv_transpose2d(x, w, b, **kw)
    _close(ours, torch.nn.functional.conv_transpose2d(_t(torch, x), _t(torch, w), _t(torch, b), **kw), atol=1e-5)
    _close(F.conv_transpose2d(x[0], w, **kw),
           torch.nn.functional.conv_transpose2d(_t(torch, x[0]), _t(torch, w), **kw), atol=1e-5)


def test_conv_transpose2d_exact_on_small_integers(torch, rng):
    """Integer operands: every sum is exact, so the result equals torch's float64 one bit for bit."""
    x = rng.integers(-8, 8, (1, 2, 4, 4)).astype(np.float32)
    w = rng.integers(-8, 8, (2, 2, 3, 3)).astype(np.float32)
    _exact(F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
           torch.nn.functional.conv_transpose2d(_t(torch, x, torch.float64), _t(torch, w, torch.float64),
                                                stride=2, padding=1, output_padding=1))


def test_conv_errors(rng):
    x = np.zeros((1, 3, 5, 5))
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(x, np.zeros((2, 3, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, np.zeros((2, 3, 3, 3)), padding="full")
    with pytest.raises(ValueError, match="weight"):
        F.conv2d(x, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="input"):
        F.conv1d(x, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, np.zeros((2, 3, 3, 3)), groups=0)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, np.zeros((3, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="input"):
        F.conv_transpose2d(x, np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="stride"):
        F.conv_transpose2d(x, np.zeros((3, 2, 3, 3)), stride=0)


def test_linear(torch, rng):
    w = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    for shape in [(4,), (3, 4), (2, 3, 4)]:
        x = rng.standard_normal(shape).astype(np.float32)
        _close(F.linear(x, w, b), torch.nn.functional.linear(_t(torch, x), _t(torch, w), _t(torch, b)))
        _close(F.linear(x, w), torch.nn.functional.linear(_t(torch, x), _t(torch, w)))
    with pytest.raises(ValueError, match="input"):
        F.linear(np.zeros((2, 3)), w)
    with pytest.raises(ValueError, match="weight"):
        F.linear(np.zeros((2, 4)), np.zeros(4))


# --- pooling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                                {"kernel_size": (2, 3), "ceil_mode": True}, {"kernel_size": 2, "dilation": 2}])
def test_max_pool2d_exact(torch, x4, kw):
    _exact(F.max_pool2d(x4, **kw), torch.nn.functional.max_pool2d(_t(torch, x4), **kw))
    out, idx = F.max_pool2d(x4, return_indices=True, **kw)
    tout, tidx = torch.nn.functional.max_pool2d(_t(torch, x4), return_indices=True, **kw)
    _exact(out, tout)
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("kw", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1,
                                                     "count_include_pad": False},
                                {"kernel_size": 3, "ceil_mode": True}, {"kernel_size": 2, "divisor_override": 3}])
def test_avg_pool2d(torch, x4, kw):
    _close(F.avg_pool2d(x4, **kw), torch.nn.functional.avg_pool2d(_t(torch, x4), **kw))


@pytest.mark.parametrize("size", [1, 2, (3, 4), (5, None), (7, 6), (4, 5), (10, 9)])
def test_adaptive_pools(torch, x4, size):
    tx = _t(torch, x4)
    _close(F.adaptive_avg_pool2d(x4, size), torch.nn.functional.adaptive_avg_pool2d(tx, size))
    _close(F.adaptive_avg_pool2d(x4[0], size), torch.nn.functional.adaptive_avg_pool2d(tx[0], size))
    _exact(F.adaptive_max_pool2d(x4, size), torch.nn.functional.adaptive_max_pool2d(tx, size))
    out, idx = F.adaptive_max_pool2d(x4, size, return_indices=True)
    tout, tidx = torch.nn.functional.adaptive_max_pool2d(tx, size, return_indices=True)
    _exact(out, tout)
    np.testing.assert_array_equal(idx, tidx.numpy())
    assert idx.dtype == np.int64


def test_adaptive_max_pool_nan_indices_match_torch(torch, rng):
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    x[0, 0, 1, 1] = x[0, 0, 1, 4] = x[1, 2, 5, 5] = np.nan
    for size in (1, (3, 2), (4, 5)):
        out, idx = F.adaptive_max_pool2d(x, size, return_indices=True)
        tout, tidx = torch.nn.functional.adaptive_max_pool2d(_t(torch, x), size, return_indices=True)
        np.testing.assert_array_equal(out, tout.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())


def test_adaptive_pool_errors():
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool2d(np.zeros((1, 2, 3, 3)), 0)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_max_pool2d(np.zeros((1, 2, 3, 3)), (1, 2, 3))
    with pytest.raises(ValueError, match="input"):
        F.adaptive_avg_pool2d(np.zeros((3, 3)), 1)


# --- normalisation ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm(torch, rng, shape, affine):
    x = rng.standard_normal(shape).astype(np.float32) * 3 + 1
    rm, rv = rng.standard_normal(3).astype(np.float32), rng.random(3).astype(np.float32) + 0.5
    w, b = (rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)) if affine else (None, None)
    tw, tb = (_t(torch, w), _t(torch, b)) if affine else (None, None)
    _close(F.batch_norm(x, rm, rv, w, b), torch.nn.functional.batch_norm(_t(torch, x), _t(torch, rm), _t(torch, rv), tw, tb))
    trm, trv = _t(torch, rm), _t(torch, rv)
    ours = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3, eps=1e-3)
    theirs = torch.nn.functional.batch_norm(_t(torch, x), trm, trv, tw, tb, training=True, momentum=0.3, eps=1e-3)
    _close(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-6, atol=1e-6)
    _close(F.batch_norm(x, None, None, training=True), torch.nn.functional.batch_norm(_t(torch, x), None, None, training=True),
           atol=1e-5)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(np.zeros((2, 3)), None, None)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(np.zeros((1, 3)), np.zeros(3), np.ones(3), training=True)
    with pytest.raises(ValueError, match="running_var"):
        F.batch_norm(np.zeros((2, 3)), np.zeros(3), np.ones(4))
    with pytest.raises(TypeError, match="running_mean"):
        F.batch_norm(np.zeros((2, 3)), [0.0, 0.0, 0.0], np.ones(3, np.float32), training=True)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm(torch, rng, groups):
    x = rng.standard_normal((3, 6, 4, 5)).astype(np.float32) * 2 + 1
    w, b = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    _close(F.group_norm(x, groups, w, b), torch.nn.functional.group_norm(_t(torch, x), groups, _t(torch, w), _t(torch, b)),
           atol=1e-5)
    _close(F.group_norm(x[:, :, 0], groups), torch.nn.functional.group_norm(_t(torch, x[:, :, 0]), groups), atol=1e-5)
    with pytest.raises(ValueError, match="num_groups"):
        F.group_norm(x, 4)


@pytest.mark.parametrize("shape", [(5,), (4, 5), [3, 4, 5]])
def test_layer_norm(torch, rng, shape):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32) * 3
    norm = tuple(shape) if isinstance(shape, (tuple, list)) else shape
    w, b = rng.standard_normal(norm).astype(np.float32), rng.standard_normal(norm).astype(np.float32)
    _close(F.layer_norm(x, shape, w, b, 1e-3),
           torch.nn.functional.layer_norm(_t(torch, x), shape, _t(torch, w), _t(torch, b), 1e-3), atol=1e-5)
    _close(F.layer_norm(x, shape), torch.nn.functional.layer_norm(_t(torch, x), shape), atol=1e-5)
    with pytest.raises(ValueError, match="input"):
        F.layer_norm(x, (3,))
    with pytest.raises(ValueError, match="weight"):
        F.layer_norm(x, shape, np.ones(7))


# --- dropout ----------------------------------------------------------------------------------

def test_dropout_statistics_and_scale():
    wageubn.manual_seed(0)
    x = np.ones((500, 400), np.float32)
    out = F.dropout(x, 0.3)
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.005
    np.testing.assert_array_equal(out[kept], np.float32(1 / 0.7))
    assert not F.dropout(x, 1.0).any()
    np.testing.assert_array_equal(F.dropout(x, 0.0), x)
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False), x)


def test_dropout_scale_matches_torch(torch):
    """Where both keep an entry, the values agree bit for bit (torch multiplies by the float32 1/(1-p))."""
    x = np.random.default_rng(1).standard_normal(2000).astype(np.float32)
    ours = F.dropout(x, 0.3)
    theirs = torch.nn.functional.dropout(_t(torch, x), 0.3).numpy()
    both = (ours != 0) & (theirs != 0)
    assert both.sum() > 500
    np.testing.assert_array_equal(ours[both], theirs[both])


def test_dropout_seeded():
    wageubn.manual_seed(5)
    a = F.dropout(np.ones(100), 0.5)
    wageubn.manual_seed(5)
    np.testing.assert_array_equal(a, F.dropout(np.ones(100), 0.5))


def test_dropout_inplace():
    x = np.ones(1000, np.float32)
    out = F.dropout(x, 0.5, inplace=True)
    np.testing.assert_array_equal(x, out)
    assert (x == 0).any() and (x == 2).any()


def test_dropout2d_zeroes_whole_channels():
    wageubn.manual_seed(1)
    out = F.dropout2d(np.ones((40, 50, 3, 3), np.float32), 0.4)
    per_channel = out.reshape(40, 50, 9)
    assert ((per_channel == 0).all(-1) | (per_channel == np.float32(1 / 0.6)).all(-1)).all()
    assert abs((per_channel[..., 0] == 0).mean() - 0.4) < 0.05
    with pytest.warns(UserWarning, match="3D input"):
        out3 = F.dropout2d(np.ones((30, 40, 5), np.float32), 0.5)
    assert ((out3 == 0).all(-1) | (out3 == 2).all(-1)).all()
    with pytest.raises(ValueError, match="input"):
        F.dropout2d(np.ones((3, 3)), 0.5)


def test_dropout_errors():
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            F.dropout(np.ones(3), p)
    with pytest.raises(TypeError, match="p"):
        F.dropout(np.ones(3), "half")


# --- pad and interpolate ----------------------------------------------------------------------

@pytest.mark.parametrize("pads,mode,value", [((1, 2), "constant", None), ((1, 2, 0, 3), "constant", 2.5),
                                             ((-1, 2, 1, -2), "constant", None), ((2, 1, 1, 2), "reflect", None),
                                             ((2, 3, 1, 0), "replicate", None), ((2, 1, 3, 0), "circular", None),
                                             ((1, 1, 1, 1, 1, 1), "constant", 0.0), ((3, 3, 2, 2), "reflect", None)])
def test_pad_exact(torch, x4, pads, mode, value):
    kw = {} if value is None else {"value": value}
    _exact(F.pad(x4, pads, mode, **kw), torch.nn.functional.pad(_t(torch, x4), pads, mode, **kw))
    _exact(F.pad(x4.astype(np.float64), pads, mode=mode, **kw),
           torch.nn.functional.pad(_t(torch, x4, torch.float64), pads, mode=mode, **kw))


def test_pad_errors(x4):
    with pytest.raises(ValueError, match="doesn't take in value"):
        F.pad(x4, (1, 1), "reflect", 1.0)
    with pytest.raises(ValueError, match="mode"):
        F.pad(x4, (1, 1), "wrap")
    with pytest.raises(ValueError, match="pad"):
        F.pad(x4, (1, 1, 1))
    with pytest.raises(ValueError, match="pad"):
        F.pad(x4, (6, 6), "reflect")


@pytest.mark.parametrize("kw", [{"scale_factor": 2}, {"size": (5, 9)}, {"size": 3}, {"scale_factor": (1.5, 0.5)},
                                {"scale_factor": 1.7, "recompute_scale_factor": True},
                                {"size": (13, 4), "mode": "nearest-exact"}, {"scale_factor": 3, "mode": "nearest-exact"}])
def test_interpolate_nearest_exact(torch, x4, kw):
    _exact(F.interpolate(x4, **kw), torch.nn.functional.interpolate(_t(torch, x4), **kw))
    _exact(F.interpolate(x4.astype(np.float64), **kw),
           torch.nn.functional.interpolate(_t(torch, x4, torch.float64), **kw))


def test_interpolate_nearest_1d_3d(torch, rng):
    x3 = rng.standard_normal((2, 3, 7)).astype(np.float32)
    _exact(F.interpolate(x3, size=11), torch.nn.functional.interpolate(_t(torch, x3), size=11))
    x5 = rng.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    _exact(F.interpolate(x5, scale_factor=2), torch.nn.functional.interpolate(_t(torch, x5), scale_factor=2))


@pytest.mark.parametrize("align", [None, False, True])
@pytest.mark.parametrize("kw", [{"scale_factor": 2}, {"size": (5, 9)}, {"size": 3}, {"scale_factor": (1.5, 0.5)},
                                {"scale_factor": 1.7, "recompute_scale_factor": True}, {"size": (1, 1)}])
def test_interpolate_bilinear(torch, x4, align, kw):
    _close(F.interpolate(x4, mode="bilinear", align_corners=align, **kw),
           torch.nn.functional.interpolate(_t(torch, x4), mode="bilinear", align_corners=align, **kw), atol=1e-5)
    _close(F.interpolate(x4.astype(np.float64), mode="bilinear", align_corners=align, **kw),
           torch.nn.functional.interpolate(_t(torch, x4, torch.float64), mode="bilinear", align_corners=align, **kw),
           atol=1e-5)


def test_interpolate_linear_trilinear(torch, rng):
    x3 = rng.standard_normal((2, 3, 7)).astype(np.float32)
    _close(F.interpolate(x3, size=12, mode="linear"), torch.nn.functional.interpolate(_t(torch, x3), size=12, mode="linear"))
    x5 = rng.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    _close(F.interpolate(x5, scale_factor=2, mode="trilinear", align_corners=True),
           torch.nn.functional.interpolate(_t(torch, x5), scale_factor=2, mode="trilinear", align_corners=True))


def test_interpolate_errors(torch, x4):
    torch_f = torch.nn.functional.interpolate
    for kw in [{"size": 3, "scale_factor": 2.0}, {}, {"size": 3, "align_corners": True}]:
        with pytest.raises(ValueError) as t:
            torch_f(_t(torch, x4), **kw)
        with pytest.raises(ValueError) as o:
            F.interpolate(x4, **kw)
        assert str(o.value) == str(t.value)
    with pytest.raises(ValueError, match="mode"):
        F.interpolate(x4, size=3, mode="bicubic")
    with pytest.raises(ValueError, match="input"):
        F.interpolate(x4, size=3, mode="linear")
    with pytest.raises(ValueError, match="size"):
        F.interpolate(x4, size=(3, 3, 3))


# --- embedding --------------------------------------------------------------------------------

def test_embedding(torch, rng):
    w = rng.standard_normal((10, 4)).astype(np.float32)
    idx = rng.integers(0, 10, (3, 5))
    _exact(F.embedding(idx, w), torch.nn.functional.embedding(_t(torch, idx), _t(torch, w)))
    ours_w, theirs_w = w * 3, _t(torch, w * 3)
    _close(F.embedding(idx, ours_w, max_norm=1.5), torch.nn.functional.embedding(_t(torch, idx), theirs_w, max_norm=1.5))
    np.testing.assert_allclose(ours_w, theirs_w.numpy(), rtol=1e-6)  # renormalised in place, as torch
    with pytest.raises(IndexError, match="input"):
        F.embedding(np.array([10]), w)
    with pytest.raises(TypeError, match="input"):
        F.embedding(np.array([1.0]), w)


# --- losses -----------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_indices(torch, rng, reduction, weighted, smoothing):
    for shape, tshape in [((6, 5), (6,)), ((3, 5, 2, 4), (3, 2, 4)), ((5,), ())]:
        x = rng.standard_normal(shape).astype(np.float32) * 3
        t = rng.integers(0, 5, tshape)
        if t.ndim:
            t.flat[::4] = -100
        w = rng.random(5).astype(np.float32) + 0.5 if weighted else None
        kw = dict(weight=None if w is None else _t(torch, w), reduction=reduction, label_smoothing=smoothing)
        theirs = torch.nn.functional.cross_entropy(_t(torch, x), _t(torch, t), **kw)
        _close(F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=smoothing), theirs)
        kw["ignore_index"] = 2
        theirs = torch.nn.functional.cross_entropy(_t(torch, x), _t(torch, np.abs(t) % 5), **kw)
        _close(F.cross_entropy(x, np.abs(t) % 5, w, ignore_index=2, reduction=reduction, label_smoothing=smoothing), theirs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities(torch, rng, reduction, smoothing):
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    p = rng.random((4, 5, 3)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    w = rng.random(5).astype(np.float32)
    for weight in (None, w):
        tw = None if weight is None else _t(torch, weight)
        _close(F.cross_entropy(x, p, weight, reduction=reduction, label_smoothing=smoothing),
               torch.nn.functional.cross_entropy(_t(torch, x), _t(torch, p), tw, reduction=reduction,
                                                 label_smoothing=smoothing))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(torch, rng, reduction):
    x = rng.standard_normal((7, 4, 3)).astype(np.float32)
    t = rng.integers(0, 4, (7, 3))
    t[0, 0] = -100
    w = rng.random(4).astype(np.float32)
    _close(F.nll_loss(x, t, reduction=reduction), torch.nn.functional.nll_loss(_t(torch, x), _t(torch, t), reduction=reduction))
    _close(F.nll_loss(x, t, w, reduction=reduction),
           torch.nn.functional.nll_loss(_t(torch, x), _t(torch, t), _t(torch, w), reduction=reduction))
    t1 = np.abs(t[:, 0]) % 4
    _close(F.nll_loss(x[:, :, 0], t1, ignore_index=1, reduction=reduction),
           torch.nn.functional.nll_loss(_t(torch, x[:, :, 0]), _t(torch, t1), ignore_index=1, reduction=reduction))


def test_all_ignored_mean_is_nan_as_torch():
    assert np.isnan(F.nll_loss(np.zeros((2, 3)), np.array([-100, -100])))
    assert np.isnan(F.cross_entropy(np.zeros((2, 3)), np.array([-100, -100]), label_smoothing=0.1))


def test_legacy_reduction_arguments(torch, rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    t = rng.integers(0, 3, 4)
    for sa, red in [(False, None), (None, False), (True, True)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = torch.nn.functional.cross_entropy(_t(torch, x), _t(torch, t), size_average=sa, reduce=red)
        with pytest.warns(UserWarning, match="deprecated"):
            ours = F.cross_entropy(x, t, size_average=sa, reduce=red)
        _close(ours, theirs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(torch, rng, reduction):
    x, y = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    _close(F.mse_loss(x, y, reduction=reduction), torch.nn.functional.mse_loss(_t(torch, x), _t(torch, y), reduction=reduction))
    w = rng.random((3, 4)).astype(np.float32)
    _close(F.mse_loss(x, y, reduction=reduction, weight=w),
           torch.nn.functional.mse_loss(_t(torch, x), _t(torch, y), reduction=reduction, weight=_t(torch, w)))
    with pytest.warns(UserWarning, match="different to the input size"):
        ours = F.mse_loss(x, y[0], reduction=reduction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _close(ours, torch.nn.functional.mse_loss(_t(torch, x), _t(torch, y[0]), reduction=reduction))


def test_loss_errors(torch):
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        F.cross_entropy(x, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(IndexError, match="target"):
        F.nll_loss(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="target"):
        F.nll_loss(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="target"):
        F.nll_loss(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(x, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="Weights and input must have the same size"):
        F.mse_loss(x, x, weight=np.ones(4))
    with pytest.raises(ValueError, match="target"), pytest.warns(UserWarning, match="target size"):
        F.mse_loss(x, np.zeros(5))


def test_results_are_tensors(x4):
    assert isinstance(F.max_pool2d(x4, 2), Tensor)
    assert isinstance(F.cross_entropy(np.zeros((2, 3)), np.array([0, 1])), Tensor)
    assert F.cross_entropy(np.zeros((2, 3)), np.array([0, 1])).shape == ()
