"""wageubn.function.init against torch.nn.init: fan and gain rules exactly, the random fills
statistically (large arrays, fixed seed), the deterministic fills exactly, errors as torch's."""
import math

import numpy as np
import pytest

import wageubn
import wageubn.function as nn
from wageubn.function import init

SHAPES = [(7, 5), (16, 3, 3, 3), (4, 6, 5), (2, 3, 2, 2, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(torch, shape):
    assert init._calculate_fan_in_and_fan_out(np.empty(shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("name,param", [("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
                                        ("conv_transpose1d", None), ("conv_transpose2d", None),
                                        ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
                                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                        ("leaky_relu", 3), ("selu", None)])
def test_gain_matches_torch(torch, name, param):
    assert init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


def _same_error(torch, ours, theirs):
    with pytest.raises(Exception) as t:
        theirs()
    with pytest.raises(type(t.value)) as o:
        ours()
    assert str(t.value) in str(o.value)  # torch's message, after the argument's name


def test_errors_match_torch(torch):
    T, I = torch.nn.init, init
    _same_error(torch, lambda: I.calculate_gain("swish"), lambda: T.calculate_gain("swish"))
    _same_error(torch, lambda: I.calculate_gain("leaky_relu", "x"), lambda: T.calculate_gain("leaky_relu", "x"))
    _same_error(torch, lambda: I.calculate_gain("leaky_relu", True), lambda: T.calculate_gain("leaky_relu", True))
    _same_error(torch, lambda: I._calculate_fan_in_and_fan_out(np.empty(3)),
                lambda: T._calculate_fan_in_and_fan_out(torch.empty(3)))
    _same_error(torch, lambda: I.kaiming_uniform_(np.empty((3, 3)), mode="fan_avg"),
                lambda: T.kaiming_uniform_(torch.empty(3, 3), mode="fan_avg"))
    _same_error(torch, lambda: I.kaiming_normal_(np.empty((3, 3)), nonlinearity="gelu"),
                lambda: T.kaiming_normal_(torch.empty(3, 3), nonlinearity="gelu"))
    _same_error(torch, lambda: I.eye_(np.empty((2, 2, 2))), lambda: T.eye_(torch.empty(2, 2, 2)))
    _same_error(torch, lambda: I.dirac_(np.empty((2, 2))), lambda: T.dirac_(torch.empty(2, 2)))
    _same_error(torch, lambda: I.dirac_(np.empty((3, 2, 3)), groups=2), lambda: T.dirac_(torch.empty(3, 2, 3), groups=2))
    _same_error(torch, lambda: I.orthogonal_(np.empty(3)), lambda: T.orthogonal_(torch.empty(3)))
    _same_error(torch, lambda: I.xavier_uniform_(np.empty(3)), lambda: T.xavier_uniform_(torch.empty(3)))


def test_bad_arguments_name_the_argument():
    with pytest.raises(TypeError, match="tensor"):
        init.uniform_([1.0, 2.0])
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="tensor"):
        init.normal_(ro)
    with pytest.raises(TypeError, match="generator"):
        init.uniform_(np.empty(3), generator=3)
    with pytest.raises(ValueError, match="std"):
        init.normal_(np.empty(3), std=-1.0)
    with pytest.raises(ValueError, match="b"):
        init.uniform_(np.empty(3), 2.0, 1.0)
    with pytest.raises(TypeError, match="val"):
        init.constant_(np.empty(3), "x")
    with pytest.raises(ValueError, match="b"):
        init.trunc_normal_(np.empty(3), a=1.0, b=0.0)
    with pytest.raises(ValueError, match="groups"):
        init.dirac_(np.empty((2, 2, 3)), groups=0)
    with pytest.raises(TypeError, match="seed"):
        wageubn.manual_seed(-1)


def test_zero_element_kaiming_warns_and_returns(torch):
    a = np.empty((0, 3))
    with pytest.warns(UserWarning, match="zero-element"):
        assert init.kaiming_uniform_(a) is a
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_normal_(a)


@pytest.mark.parametrize("fill", [init.ones_, init.zeros_, lambda t: init.constant_(t, 0.25),
                                  init.eye_])
def test_constant_fills_exact(torch, fill):
    names = {init.ones_: torch.nn.init.ones_, init.zeros_: torch.nn.init.zeros_, init.eye_: torch.nn.init.eye_}
    theirs = names.get(fill, lambda t: torch.nn.init.constant_(t, 0.25))
    for shape in [(3, 5), (5, 3)]:
        ours = nn.Parameter(np.full(shape, 7.0))
        out = fill(ours)
        assert out is ours and isinstance(out, nn.Parameter)
        np.testing.assert_array_equal(ours, theirs(torch.full(shape, 7.0)).numpy())


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((4, 6, 3, 4), 1),
                                          ((4, 2, 3, 3, 3), 2), ((3, 5, 2, 2), 3)])
def test_dirac_exact(torch, shape, groups):
    ours = init.dirac_(np.full(shape, 5.0, np.float32), groups)
    np.testing.assert_array_equal(ours, torch.nn.init.dirac_(torch.full(shape, 5.0), groups).numpy())


def test_dirac_conv_is_identity():
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    conv.floatilize()
    init.dirac_(conv.weight)
    x = np.random.default_rng(0).standard_normal((1, 3, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(conv(x), x)


def _stats(a):
    return float(np.mean(a)), float(np.std(a))


N = (400, 500)  # 200,000 draws: the mean's standard error is std / 447


def test_uniform_and_normal_statistics():
    wageubn.manual_seed(1)
    u = init.uniform_(np.empty(N, np.float32), -2.0, 3.0)
    assert u.min() >= -2.0 and u.max() <= 3.0 and u.min() < -1.99 and u.max() > 2.99
    m, s = _stats(u)
    assert abs(m - 0.5) < 0.02 and abs(s - 5 / math.sqrt(12)) < 0.01
    n = init.normal_(np.empty(N), 1.5, 0.5)
    m, s = _stats(n)
    assert abs(m - 1.5) < 0.005 and abs(s - 0.5) < 0.005


@pytest.mark.parametrize("shape", [(400, 500), (200, 100, 3, 3)])
def test_xavier_statistics(shape):
    wageubn.manual_seed(2)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(np.empty(shape))
    std = 1.5 * math.sqrt(2.0 / (fan_in + fan_out))
    u = init.xavier_uniform_(np.empty(shape, np.float32), gain=1.5)
    assert np.abs(u).max() <= math.sqrt(3) * std * (1 + 1e-6) and np.abs(u).max() > 0.99 * math.sqrt(3) * std
    assert abs(_stats(u)[1] / std - 1) < 0.01 and abs(_stats(u)[0]) < 0.01 * std
    n = init.xavier_normal_(np.empty(shape, np.float32), gain=1.5)
    assert abs(_stats(n)[1] / std - 1) < 0.01 and abs(_stats(n)[0]) < 0.01 * std


@pytest.mark.parametrize("a,mode,nonlinearity", [(0, "fan_in", "leaky_relu"), (0.1, "fan_out", "leaky_relu"),
                                                 (0, "fan_out", "relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
                                                 (0, "FAN_IN", "tanh")])
def test_kaiming_statistics(a, mode, nonlinearity):
    wageubn.manual_seed(3)
    shape = (300, 80, 3, 3)
    fan = 80 * 9 if mode.lower() == "fan_in" else 300 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    u = init.kaiming_uniform_(np.empty(shape, np.float32), a=a, mode=mode, nonlinearity=nonlinearity)
    bound = math.sqrt(3) * std
    assert np.abs(u).max() <= bound * (1 + 1e-6) and np.abs(u).max() > 0.999 * bound
    assert abs(_stats(u)[1] / std - 1) < 0.01
    n = init.kaiming_normal_(np.empty(shape, np.float32), a=a, mode=mode, nonlinearity=nonlinearity)
    assert abs(_stats(n)[1] / std - 1) < 0.01 and abs(_stats(n)[0]) < 0.01 * std


def _truncated_moments(mean, std, a, b):
    """Mean and std of N(mean, std**2) truncated to [a, b] (closed form)."""
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2
    al, be = (a - mean) / std, (b - mean) / std
    z = cdf(be) - cdf(al)
    m = mean + std * (phi(al) - phi(be)) / z
    v = std ** 2 * (1 + (al * phi(al) - be * phi(be)) / z - ((phi(al) - phi(be)) / z) ** 2)
    return m, math.sqrt(v)


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.5, 0.2, 0.0, 1.0),
                                          (0.0, 1.0, 1.0, 3.0), (0.0, 0.02, -0.04, 0.04)])
def test_trunc_normal_statistics(mean, std, a, b):
    wageubn.manual_seed(4)
    t = init.trunc_normal_(np.empty(N, np.float32), mean, std, a, b)
    assert t.min() >= a and t.max() <= b
    em, es = _truncated_moments(mean, std, a, b)
    m, s = _stats(t)
    assert abs(m - em) < 0.01 * es and abs(s / es - 1) < 0.01


def test_trunc_normal_far_mean_warns_like_torch(torch):
    with pytest.warns(UserWarning, match="more than 2 std"):
        t = init.trunc_normal_(np.empty(1000), mean=5.0, std=1.0, a=-1.0, b=1.0)
    assert t.min() >= -1 and t.max() <= 1 and t.mean() > 0.5  # the mass piles up at b


@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (20, 4, 3, 3), (5, 5)])
def test_orthogonal(shape):
    wageubn.manual_seed(5)
    w = init.orthogonal_(np.empty(shape, np.float32), gain=2.0)
    flat = w.reshape(shape[0], -1).astype(np.float64)
    small = min(flat.shape)
    gram = flat @ flat.T if flat.shape[0] == small else flat.T @ flat
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)


def test_seed_and_generator_reproduce():
    a, b = np.empty(100), np.empty(100)
    wageubn.manual_seed(9)
    init.trunc_normal_(a)
    wageubn.manual_seed(9)
    init.trunc_normal_(b)
    np.testing.assert_array_equal(a, b)
    init.orthogonal_(a.reshape(10, 10), generator=np.random.default_rng(3))
    init.orthogonal_(b.reshape(10, 10), generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_default_layer_init_matches_torch_bounds(torch):
    """Conv2d / Linear: kaiming_uniform(a=sqrt(5)) and bias U(+-1/sqrt(fan_in)), as torch."""
    wageubn.manual_seed(0)
    conv = nn.Conv2d(64, 128, 3)
    bound = 1 / math.sqrt(64 * 9)  # sqrt(3) * sqrt(2 / 6) / sqrt(fan) = 1 / sqrt(fan)
    assert np.abs(conv.weight).max() <= bound and np.abs(conv.weight).max() > 0.99 * bound
    assert np.abs(conv.bias).max() <= bound
