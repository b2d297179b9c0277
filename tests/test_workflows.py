"""Whole networks: the trained LeNet of examples/, a ResNet-20, network_config, pickling.

Parity is checked against torch (float) and against the reference wageubn 1.2.0 run in
float64 on the same weights (quantized), as in test_layers.py.
"""
import copy
import functools
import pathlib
import pickle
import sys
import types

import numpy as np
import pytest

import wageubn.function as nn
from wageubn.config import Config, config_network, network_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import lenet  # noqa: E402  (examples/lenet.py)

BATCH = 500  # digits compared against the float64 reference


@pytest.fixture(scope="module")
def digits():
    return lenet.load_digits(lenet.DIGITS)


def set_quant(net, quant):
    for m in net.modules():
        if hasattr(m, "quantilize"):
            m.quantilize() if quant else m.floatilize()
    return net


def ref_linear(ref, in_f, out_f, **kw):
    """The reference Linear's constructor is broken (see test_layers._ref_linear)."""
    cls = type("RefLinear", (ref.function.Linear,), {"output_all_bit_width": 12, "output_dec_bit_width": 12})
    layer = cls(in_f, out_f, **kw)
    layer.output_dec_bit_width = kw.get("output_dec_bit_width", 12)
    layer.output_all_bit_width = kw.get("output_all_bit_width", 12)
    return layer


def ref_nn(ref, **kw):
    """wageubn_ref.function as an ``nn`` namespace, its quantized layers built with ``kw``.

    The reference picks its quantizer (directquant / alldirectquant) in the constructor
    from ``iostrict`` and its config_network never changes it, so iostrict is given here.
    """
    space = {k: getattr(ref.function, k) for k in dir(ref.function) if not k.startswith("_")}
    for name in ("Conv2d", "BatchNorm2d", "ReLU", "ReLU6"):
        space[name] = functools.partial(space[name], **kw)
    space["Linear"] = functools.partial(ref_linear, ref, **kw)
    return types.SimpleNamespace(**space)


def to_double(torch, state):
    return {k: torch.as_tensor(np.asarray(v)).double() if np.asarray(v).dtype.kind == "f"
            else torch.as_tensor(np.asarray(v)) for k, v in state.items()}


def run_torch(torch, net, x, dtype=None):
    with torch.no_grad():
        return net(torch.tensor(x, dtype=dtype)).numpy()


# --------------------------------------------------------------------------------------
# LeNet trained on MNIST (tests/data/make_lenet.py), the docs' flat network
# --------------------------------------------------------------------------------------

def lenet_twin(torch, ours, space):
    """A torch LeNet with our ``proc`` rebuilt from ``space`` (torch.nn or the reference) and
    examples/lenet.py's own forward, which works on tensors too."""
    def layer(m):
        kind = type(m).__name__
        if kind == "Conv2d":
            return space.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
        if kind == "Linear":
            return space.Linear(m.in_features, m.out_features)
        if kind == "MaxPool2d":
            return space.MaxPool2d(m.kernel_size, m.stride)
        return getattr(space, kind)()

    net = type("LeNet", (torch.nn.Module,), {"forward": lenet.LeNet.forward})()
    net.proc = torch.nn.ModuleList([layer(m) for m in ours.proc])
    return net


def test_lenet_float_matches_torch(torch, digits):
    _, _, test_x, test_y = digits
    ours = set_quant(lenet.load_lenet(lenet.WEIGHTS), False)
    theirs = lenet_twin(torch, ours, torch.nn)
    with np.load(lenet.WEIGHTS) as weights:  # the file itself, as torch would load it
        theirs.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
    assert repr(ours) == repr(theirs)
    out, expect = ours(test_x), run_torch(torch, theirs, test_x)
    np.testing.assert_allclose(out, expect, rtol=1e-4, atol=1e-4)
    accuracy = np.mean(out.argmax(1) == test_y)
    assert accuracy == np.mean(expect.argmax(1) == test_y)
    assert accuracy >= 0.97


def test_lenet_quantized_matches_reference(torch, ref, digits):
    _, _, test_x, test_y = digits
    x = test_x[:BATCH]
    ours = lenet.load_lenet(lenet.WEIGHTS)
    state = to_double(torch, ours.state_dict())
    step = 2.0 ** -7  # the activations' default format (dec 8)

    # Default widths, iostrict False: weights and biases quantized, float accumulation.
    theirs = lenet_twin(torch, ours, ref_nn(ref, iostrict=False)).double()
    theirs.load_state_dict(state)
    out, expect = ours(x), run_torch(torch, theirs, x, torch.float64)
    diff = np.abs(out - expect)
    assert diff.max() <= step and (diff > 1e-5).mean() <= 1e-3  # measured: identical
    assert np.mean(out.argmax(1) == expect.argmax(1)) >= 0.999
    float_out = set_quant(copy.deepcopy(ours), False)(x)
    assert not np.allclose(out, float_out, atol=1e-3)  # quantization did something

    # iostrict True through network_config: every input and output clamped too.
    network_config(ours, "net", Config(iostrict=True))
    theirs = lenet_twin(torch, ours, ref_nn(ref, iostrict=True)).double()
    theirs.load_state_dict(state)
    strict = ours(x)
    np.testing.assert_array_equal(strict, run_torch(torch, theirs, x, torch.float64).astype(np.float32))
    assert np.abs(strict).max() == 2047 / 2048  # the logits are clamped by the (12, 12) output format
    assert not np.array_equal(strict, out)


def test_lenet_accuracies_float_and_quantized(digits):
    """The figures printed by examples/quickstart.py."""
    _, _, test_x, test_y = digits
    net = lenet.load_lenet(lenet.WEIGHTS)
    quantized = np.mean(net(test_x).argmax(1) == test_y)
    float_acc = np.mean(set_quant(net, False)(test_x).argmax(1) == test_y)
    network_config(set_quant(net, True), "net", Config(iostrict=True))
    strict = np.mean(net(test_x).argmax(1) == test_y)
    assert float_acc >= 0.97 and abs(quantized - float_acc) <= 0.005
    # Activations above 1 are clamped by the default 8-bit formats with iostrict.
    assert strict < quantized - 0.05


# --------------------------------------------------------------------------------------
# ResNet-20 for CIFAR, written once for torch.nn, the reference and wageubn
# --------------------------------------------------------------------------------------

def resnet20(nn):
    """ResNet-20 (3 stages of 3 BasicBlocks, option-B shortcuts) built from the namespace ``nn``."""

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            self.relu2 = nn.ReLU()

        def forward(self, x):
            out = self.relu1(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu2(out + self.shortcut(x))

    class ResNet20(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            self.relu = nn.ReLU()
            stages, cin = [], 16
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                stages.append(nn.Sequential(*[BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                              for i in range(3)]))
                cin = cout
            self.layer1, self.layer2, self.layer3 = stages
            self.pool = nn.AvgPool2d(8)
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            x = self.relu(self.bn(self.conv(x)))
            x = self.pool(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(x.reshape(x.shape[0], -1))

    return ResNet20()


# Widths that keep every value of this network inside its format.
RESNET_CONFIG = dict(iostrict=True, conv_and_linear_in=6, conv_and_linear_in_all=12,
                     conv_and_linear_out=8, conv_and_linear_out_all=16, acti_in_all=16, acti=6, acti_all=12,
                     **{f"bn_{p}_all": 16 for p in ("weight", "bias", "mean", "var", "in", "out")})


@pytest.fixture(scope="module")
def torch_resnet(torch):
    """A random torch ResNet-20 in eval mode with non-trivial BN statistics and affine parameters."""
    torch.manual_seed(0)
    net = resnet20(torch.nn)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None  # running stats = the average over the batches below
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 3, 32, 32))
        gen = torch.Generator().manual_seed(1)
        for bn in bns:
            c = bn.num_features
            bn.momentum = 0.1
            bn.running_mean += 0.3 * bn.running_var.sqrt() * torch.randn(c, generator=gen)
            bn.running_var *= 0.5 + 1.5 * torch.rand(c, generator=gen)
            bn.weight.copy_(0.5 + torch.rand(c, generator=gen))
            bn.bias.copy_(0.2 * torch.randn(c, generator=gen))
    return net.eval()


@pytest.fixture(scope="module")
def cifar_batch():
    return np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)


def leaf_outputs(net, store):
    """Record every leaf module's output (works on torch and wageubn modules)."""
    for name, m in net.named_modules():
        if next(iter(m.children()), None) is None:
            m.register_forward_hook(lambda mod, args, out, name=name: store.__setitem__(
                name, out.detach().numpy() if hasattr(out, "detach") else np.asarray(out)))


def test_resnet20_float_matches_torch(torch, torch_resnet, cifar_batch):
    tstate = torch_resnet.state_dict()
    ours = resnet20(nn)
    assert repr(ours) == repr(torch_resnet)
    assert list(ours.state_dict()) == list(tstate)  # including every num_batches_tracked
    result = ours.load_state_dict(tstate, strict=True)  # torch tensors directly
    assert result.missing_keys == [] and result.unexpected_keys == []
    again = resnet20(nn)
    again.load_state_dict({k: v.numpy() for k, v in tstate.items()}, strict=True)
    for (key, value), (key2, value2) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert key == key2
        np.testing.assert_array_equal(value, value2)
        np.testing.assert_array_equal(value, tstate[key].numpy())
        assert np.asarray(value).dtype == tstate[key].numpy().dtype
    assert int(ours.layer2[0].shortcut[1].num_batches_tracked) == 3

    set_quant(ours, False).eval()
    expect = run_torch(torch, torch_resnet, cifar_batch)
    np.testing.assert_allclose(ours(cifar_batch), expect, rtol=1e-4, atol=1e-4)
    ours.train()  # floatilized BatchNorm2d in training mode normalises with batch statistics
    assert not np.allclose(ours(cifar_batch), expect, atol=1e-2)


def test_resnet20_quantized_matches_reference_bit_exactly(torch, ref, torch_resnet, cifar_batch):
    config = Config(**RESNET_CONFIG)
    ours = resnet20(nn)
    ours.load_state_dict(torch_resnet.state_dict())
    ours.eval()
    network_config(ours, "net", config)
    theirs = resnet20(ref_nn(ref, iostrict=True)).double().eval()
    theirs.load_state_dict(to_double(torch, torch_resnet.state_dict()))
    ref.config.config_network(theirs, "net", ref.config.Config(**config._asdict()))

    ours_acts, ref_acts = {}, {}
    leaf_outputs(ours, ours_acts)
    leaf_outputs(theirs, ref_acts)
    out = ours(cifar_batch)
    expect = run_torch(torch, theirs, cifar_batch, torch.float64)
    # Every operand is on a fixed-point grid and every sum is exact in double, and BatchNorm
    # (computed in double, torch's x * alpha + beta) never lands on a rounding tie here:
    # the output of every one of the 70 leaf modules, BatchNorm included, is bit-identical.
    assert len(ours_acts) == len(ref_acts) == 70
    for name, value in ours_acts.items():
        np.testing.assert_array_equal(value, ref_acts[name].astype(np.float32), err_msg=name)
    np.testing.assert_array_equal(out, expect.astype(np.float32))

    # Non-trivial: the formats apply (ReLU outputs on the 2**-5 grid of acti dec 6), the
    # BN outputs vary, and the quantized logits stay near the float ones.
    relu = ours_acts["layer3.2.relu2"]
    np.testing.assert_array_equal(relu * 32, np.round(relu * 32))
    assert len(np.unique(ours_acts["layer3.2.bn2"])) > 1000
    float_out = run_torch(torch, torch_resnet, cifar_batch)
    assert not np.array_equal(out, float_out) and np.abs(out - float_out).max() < 1.0
    assert np.corrcoef(out.ravel(), float_out.ravel())[0, 1] > 0.95


# --------------------------------------------------------------------------------------
# Config and network_config
# --------------------------------------------------------------------------------------

def test_config_defaults_are_the_layers_defaults():
    assert len(Config._fields) == 25
    config = Config()
    conv, bn, relu = nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1), nn.ReLU()
    parts = {"conv_and_linear": (conv, {"weight": "weight", "bias": "bias", "in": "input", "out": "output"}),
             "bn": (bn, {p: p for p in ("weight", "bias", "mean", "var")} | {"in": "input", "out": "output"}),
             "acti": (relu, {"in": "input"})}
    for prefix, (layer, names) in parts.items():
        for short, part in names.items():
            field = f"{prefix}_{short}"
            assert getattr(config, field) == getattr(layer, f"{part}_dec_bit_width"), field
            assert getattr(config, f"{field}_all") == getattr(layer, f"{part}_all_bit_width"), field
    assert (config.acti, config.acti_all) == (relu.acti_dec_bit_width, relu.acti_all_bit_width)
    assert config.iostrict is False
    # each *_all defaults to its own dec width
    custom = Config(conv_and_linear_in=5, acti=3, bn_var=11, bn_var_all=13)
    assert (custom.conv_and_linear_in_all, custom.acti_all, custom.bn_var_all) == (5, 3, 13)
    assert custom.conv_and_linear_out_all == 12
    with pytest.raises((TypeError, ValueError)):
        Config(acti=0)


def test_config_fields_match_reference_which_needs_twelve_arguments(ref):
    assert Config._fields == ref.config.Config._fields
    with pytest.raises(TypeError, match="12 required"):
        ref.config.Config()
    Config()  # ours builds


def test_network_config_reaches_nested_listed_modules_only():
    pool = nn.MaxPool2d(2)
    inner = nn.ModuleDict({"conv": nn.Conv2d(2, 2, 3), "pool": pool,
                           "stack": nn.ModuleList([nn.BatchNorm2d(2), nn.ReLU6(), nn.Linear(2, 2)])})
    net = nn.Sequential(nn.Sequential(inner, nn.ReLU()), nn.Flatten())
    pool_before = dict(vars(pool))
    config = Config(iostrict=True, conv_and_linear_weight=5, conv_and_linear_out=9, conv_and_linear_out_all=10,
                    bn_mean=7, acti=4, acti_all=6)
    network_config(net, "net", config)
    conv, bn, relu6, linear, relu = inner["conv"], inner["stack"][0], inner["stack"][1], inner["stack"][2], net[0][1]
    for layer in (conv, linear):
        assert (layer.weight_dec_bit_width, layer.weight_all_bit_width) == (5, 5)
        assert (layer.output_dec_bit_width, layer.output_all_bit_width) == (9, 10)
        assert layer.bias_dec_bit_width == 16 and layer.iostrict is True
    assert (bn.mean_dec_bit_width, bn.mean_all_bit_width, bn.iostrict) == (7, 7, True)
    for layer in (relu6, relu):
        assert (layer.acti_dec_bit_width, layer.acti_all_bit_width, layer.iostrict) == (4, 6, True)
    assert vars(pool) == pool_before and not hasattr(pool, "iostrict")
    assert not hasattr(net[1], "iostrict")
    # The lists choose which classes are configured.
    other = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))
    config_network(other, "other", Config(iostrict=True, bn_out=3), bn_list=[])
    assert other[0].iostrict is True and other[1].iostrict is False and other[1].output_dec_bit_width == 8
    assert config_network is network_config
    with pytest.raises(TypeError):
        network_config(net, "net", {"iostrict": True})


def test_network_config_show_prints_configured_names(capsys):
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.MaxPool2d(1), nn.ReLU())
    network_config(net, "net", Config(), show=True)
    assert capsys.readouterr().out.split() == ["net.0", "is", "configured", "net.2", "is", "configured"]


# --------------------------------------------------------------------------------------
# Pickling and copying whole quantized networks
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("clone", [lambda n: pickle.loads(pickle.dumps(n)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_quantized_network_survives_pickle_and_deepcopy(digits, clone):
    x = digits[2][:200]
    net = lenet.load_lenet(lenet.WEIGHTS)
    network_config(net, "net", Config(iostrict=True, acti=6, acti_all=10))
    expect = net(x)
    twin = clone(net)
    assert type(twin) is lenet.LeNet and twin is not net
    assert (twin.proc[1].acti_dec_bit_width, twin.proc[1].acti_all_bit_width, twin.proc[1].iostrict) == (6, 10, True)
    np.testing.assert_array_equal(twin(x), expect)
    assert isinstance(twin.proc[0].weight, nn.Parameter)
    assert not np.shares_memory(twin.proc[0].weight, net.proc[0].weight)
    twin.proc[0].weight[...] = 0  # independent copies
    np.testing.assert_array_equal(net(x), expect)
    set_quant(twin, False)
    assert net.proc[0].quant is True
