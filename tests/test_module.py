"""Tests of wageubn.function.module: Parameter, Module, hooks, state_dict and containers.

torch is only used (through ``pytest.importorskip``) to check that names, orders,
reprs and error messages match ``torch.nn``.
"""
import copy
import doctest
import itertools
import pathlib
import pickle
import re
import sys
import warnings
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest

try:
    import wageubn  # noqa: F401
except ImportError:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import wageubn
from wageubn import Tensor
import wageubn.function.module as module_mod
from wageubn.function.module import (
    Flatten,
    Identity,
    IncompatibleKeys,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    RemovableHandle,
    Sequential,
)


# --------------------------------------------------------------------------- helpers


class Linear(Module):
    """Minimal stand-in for torch.nn.Linear (same names, shapes and extra_repr)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        count = out_features * in_features
        self.weight = Parameter(np.arange(count).reshape(out_features, in_features) / count)
        if bias:
            self.bias = Parameter(np.arange(out_features))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class BatchNorm1d(Module):
    """Stand-in for torch.nn.BatchNorm1d: two parameters and three buffers."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.weight = Parameter(np.ones(num_features))
        self.bias = Parameter(np.zeros(num_features))
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x):
        return (x - self.running_mean) / np.sqrt(self.running_var + self.eps) * self.weight + self.bias

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias=True, track_running_stats={self.track_running_stats}"
        )


class ReLU(Module):
    def forward(self, x):
        return np.maximum(x, 0)


OURS = SimpleNamespace(
    Module=Module, Linear=Linear, BatchNorm1d=BatchNorm1d, ReLU=ReLU, Identity=Identity,
    Flatten=Flatten, Sequential=Sequential, ModuleList=ModuleList, ModuleDict=ModuleDict,
)


def build_tree(net, nn):
    """Give ``net`` the same children whether ``nn`` is OURS or torch.nn."""
    net.flatten = nn.Flatten()
    net.fc = nn.Linear(4, 3)
    net.layer1 = nn.Sequential(
        nn.Sequential(OrderedDict([("fc1", nn.Linear(3, 3)), ("bn1", nn.BatchNorm1d(3))])),
        nn.ReLU(),
    )
    net.proc = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Identity(), nn.ReLU()])
    net.blocks = nn.ModuleList([nn.Sequential(nn.Linear(3, 3, bias=False), nn.ReLU()) for _ in range(3)])
    net.heads = nn.ModuleDict({"a": nn.Linear(3, 2, bias=False), "b": nn.Identity()})
    net.empty = nn.ModuleList()


def tree_forward(net, x):
    x = net.layer1(net.fc(net.flatten(x)))
    for block in net.blocks:
        x = block(x)
    return net.heads["a"](x)


class Net(Module):
    """Module-level so that it pickles."""

    def __init__(self):
        super().__init__()
        build_tree(self, OURS)

    forward = tree_forward


def make_net(nn):
    """The test tree as a module called ``Net``, from OURS or torch.nn."""
    if nn is OURS:
        return Net()

    def __init__(self):
        nn.Module.__init__(self)
        build_tree(self, nn)

    # Named "Net" too, so that reprs and error messages can be compared.
    return type("Net", (nn.Module,), {"__init__": __init__, "forward": tree_forward})()


def torch_nn():
    return pytest.importorskip("torch").nn


def snapshot(module):
    return {k: v.copy() for k, v in module.state_dict().items()}


def assert_same_state(module, expected):
    state = module.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value)


def add_one(module, args, output):
    """Module-level (picklable) forward hook."""
    return output + 1


def double_input(module, args):
    """Module-level (picklable) forward pre-hook."""
    return args[0] * 2


class Recorder(Module):
    """Returns its args and kwargs so hooks' effects are visible."""

    def forward(self, *args, **kwargs):
        return args, kwargs


# --------------------------------------------------------------------------- Parameter


def test_parameter_copies_and_converts_to_float32():
    data = np.arange(3, dtype=np.int64)
    p = Parameter(data)
    assert isinstance(p, np.ndarray) and isinstance(p, Parameter)
    assert p.dtype == np.float32 and p.requires_grad is True
    p[0] = 42
    assert data[0] == 0  # a copy, not a view of the input
    np.testing.assert_array_equal(Parameter([[1, 2]], requires_grad=False), [[1.0, 2.0]])
    assert Parameter([True]).dtype == np.float32
    assert Parameter([1.0], requires_grad=0).requires_grad is False


def test_parameter_default_is_empty_float32():
    p = Parameter()
    assert p.shape == (0,) and p.dtype == np.float32 and p.requires_grad


@pytest.mark.parametrize("data", [np.ones(2, np.complex64), [1 + 2j], np.array([object()]), ["a"], [None]])
def test_parameter_rejects_non_real_data(data):
    with pytest.raises(TypeError, match="data"):
        Parameter(data)


def test_parameter_results_of_arithmetic_are_plain_tensors():
    # Derived values are Tensors (0-d for scalars, as torch), never Parameters.
    p = Parameter([1.0, -2.0])
    for result in (p * 2, p + p, np.abs(p), p > 0, p @ np.ones((2, 2)), np.maximum(p, 0), -p):
        assert type(result) is Tensor
    for scalar in (p.sum(), p.max(), p @ p):
        assert type(scalar) is Tensor and scalar.shape == () and scalar.dtype == np.float32
    np.testing.assert_array_equal(p * 2, [2.0, -4.0])


def test_parameter_in_place_update_keeps_object_and_registration():
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.weight = Parameter([1.0, 2.0], requires_grad=False)

        def step(self):
            self.weight -= 0.5  # rebinds through __setattr__: must still be a Parameter

    net = Net()
    weight = net.weight
    net.step()
    assert net.weight is weight and type(net.weight) is Parameter
    assert net.weight.requires_grad is False
    np.testing.assert_array_equal(weight, [0.5, 1.5])
    out = np.multiply(np.ones(2), 3, out=weight)
    assert out is weight
    np.testing.assert_array_equal(weight, [3.0, 3.0])


def test_parameter_repr_and_str():
    p = Parameter([1.0, 2.0])
    assert repr(p) == "Parameter containing:\narray([1., 2.], dtype=float32)"
    assert str(p) == repr(p)


def test_parameter_requires_grad_and_views():
    p = Parameter(np.zeros((2, 2)), requires_grad=False)
    assert p.requires_grad_() is p and p.requires_grad is True
    p.requires_grad_(False)
    assert p[0].requires_grad is False  # views inherit the flag


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda p: pickle.loads(pickle.dumps(p)),
                                   lambda p: pickle.loads(pickle.dumps(p, protocol=5))])
def test_parameter_pickle_and_deepcopy_keep_class_and_flag(clone):
    p = Parameter(np.arange(6).reshape(2, 3), requires_grad=False)
    q = clone(p)
    assert type(q) is Parameter and q.requires_grad is False
    assert q.dtype == np.float32 and q.shape == (2, 3)
    np.testing.assert_array_equal(q, p)
    assert not np.shares_memory(p, q)


def test_parameter_from_torch_tensor():
    torch = pytest.importorskip("torch")
    p = Parameter(torch.arange(3.0, requires_grad=True))
    assert type(p) is Parameter
    np.testing.assert_array_equal(p, [0.0, 1.0, 2.0])


# --------------------------------------------------------------------------- RemovableHandle


def test_handles_remove_only_their_own_hook_and_are_idempotent():
    m = Identity()
    h1 = m.register_forward_hook(lambda mod, args, out: out + 1)
    h2 = m.register_forward_hook(lambda mod, args, out: out * 10)
    assert isinstance(h1, RemovableHandle) and h1.id != h2.id
    assert m(1) == 20
    h1.remove()
    h1.remove()
    assert m(1) == 10
    assert list(m._forward_hooks) == [h2.id]
    h2.remove()
    assert m(1) == 1 and not m._forward_hooks


def test_handle_as_context_manager():
    m = Identity()
    with m.register_forward_pre_hook(lambda mod, args: 5) as handle:
        assert m(1) == 5
    assert handle.id not in m._forward_pre_hooks and m(1) == 1


def test_handle_removal_clears_kwargs_and_always_call_flags():
    m = Recorder()
    handle = m.register_forward_hook(lambda *a: None, with_kwargs=True, always_call=True)
    pre = m.register_forward_pre_hook(lambda *a: None, with_kwargs=True)
    handle.remove()
    pre.remove()
    assert not m._forward_hooks_with_kwargs and not m._forward_hooks_always_called
    assert not m._forward_pre_hooks_with_kwargs


def test_handle_kept_on_module_follows_deepcopy():
    m = Identity()
    m.handle = m.register_forward_hook(add_one)
    clone = copy.deepcopy(m)
    clone.handle.remove()
    assert clone(1) == 1 and m(1) == 2
    restored = pickle.loads(pickle.dumps(m))
    restored.handle.remove()
    assert restored(1) == 1 and m(1) == 2


def test_hook_ids_do_not_collide_with_unpickled_ones(monkeypatch):
    monkeypatch.setattr(module_mod, "_hook_ids", itertools.count())
    m = Identity()
    m.register_forward_hook(add_one)
    clone = pickle.loads(pickle.dumps(m))
    monkeypatch.setattr(module_mod, "_hook_ids", itertools.count())  # as in a fresh process
    clone.register_forward_hook(add_one)
    assert clone(0) == 2


# --------------------------------------------------------------------------- registration


def test_assignment_before_init_raises_like_torch():
    class BadParam(Module):
        def __init__(self):
            self.w = Parameter([1.0])

    class BadModule(Module):
        def __init__(self):
            self.m = Identity()

    message = "cannot assign {} before Module.__init__() call"
    with pytest.raises(AttributeError, match=re.escape(message.format("parameters"))):
        BadParam()
    with pytest.raises(AttributeError, match=re.escape(message.format("module"))):
        BadModule()


def test_init_creates_registries():
    m = Module()
    assert m.training is True
    assert m._parameters == {} and m._buffers == {} and m._modules == {}
    assert m._non_persistent_buffers_set == set()
    assert isinstance(m._forward_hooks, OrderedDict) and isinstance(m._forward_pre_hooks, OrderedDict)


def test_setattr_routes_to_registries():
    m = Module()
    m.w = Parameter([1.0])
    m.child = Identity()
    m.register_buffer("buf", np.zeros(2))
    m.plain = 3
    assert list(m._parameters) == ["w"] and list(m._modules) == ["child"]
    assert list(m._buffers) == ["buf"] and m.__dict__["plain"] == 3
    m.buf = np.ones(2)  # stays a buffer
    np.testing.assert_array_equal(m._buffers["buf"], [1.0, 1.0])
    m.buf = None
    assert "buf" in m._buffers and m.buf is None
    # re-assigning a name to another kind moves it between registries
    m.child = Parameter([2.0])
    assert "child" in m._parameters and "child" not in m._modules
    m.plain = Identity()
    assert "plain" in m._modules and "plain" not in m.__dict__
    with pytest.raises(TypeError, match="as parameter 'w'"):  # as in torch
        m.w = Identity()
    assert "w" in m._parameters and "w" not in m._modules


def test_setting_parameter_to_none_keeps_it_registered():
    lin = Linear(2, 2)
    lin.bias = None
    assert "bias" in lin._parameters and lin.bias is None
    assert list(lin.state_dict()) == ["weight"]
    assert [n for n, _ in lin.named_parameters()] == ["weight"]


def test_setattr_type_errors_like_torch():
    lin = Linear(2, 2)
    with pytest.raises(TypeError) as info:
        lin.weight = np.zeros((2, 2))
    assert str(info.value) == (
        "cannot assign 'numpy.ndarray' as parameter 'weight' "
        "(wageubn.function.Parameter or None expected)"
    )
    bn = BatchNorm1d(2)
    with pytest.raises(TypeError) as info:
        bn.running_mean = [0.0, 0.0]
    assert str(info.value) == "cannot assign 'list' as buffer 'running_mean' (numpy.ndarray or None expected)"
    seq = Sequential(Identity())
    with pytest.raises(TypeError, match=r"cannot assign 'int' as child module '0'"):
        setattr(seq, "0", 5)
    assert isinstance(seq[0], Identity)


def test_register_parameter_validation():
    m = Module()
    m.attr = 1
    with pytest.raises(TypeError, match="parameter name should be a string. Got int"):
        m.register_parameter(1, None)
    with pytest.raises(KeyError, match=r'contain "\."'):
        m.register_parameter("a.b", None)
    with pytest.raises(KeyError, match="empty string"):
        m.register_parameter("", None)
    with pytest.raises(KeyError, match="attribute 'attr' already exists"):
        m.register_parameter("attr", None)
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        m.register_parameter("training", Parameter())
    with pytest.raises(TypeError, match="cannot assign 'numpy.ndarray' object to parameter 'w'"):
        m.register_parameter("w", np.zeros(1))
    assert m._parameters == {}
    with pytest.raises(AttributeError, match="before Module.__init__"):
        Module.__new__(Module).register_parameter("w", None)


def test_register_buffer_validation_and_persistence():
    m = Module()
    m.register_buffer("keep", np.zeros(1))
    m.register_buffer("temp", np.ones(1), persistent=False)
    m.register_buffer("nothing", None)
    assert list(m.state_dict()) == ["keep"]
    assert [n for n, _ in m.named_buffers()] == ["keep", "temp"]
    assert m._non_persistent_buffers_set == {"temp"}
    m.register_buffer("temp", np.ones(1))  # re-registering as persistent
    assert m._non_persistent_buffers_set == set()
    with pytest.raises(TypeError, match="buffer name should be a string"):
        m.register_buffer(None, np.zeros(1))
    with pytest.raises(KeyError, match=r'contain "\."'):
        m.register_buffer("a.b", np.zeros(1))
    with pytest.raises(KeyError, match="empty string"):
        m.register_buffer("", np.zeros(1))
    with pytest.raises(KeyError, match="attribute 'forward' already exists"):
        m.register_buffer("forward", np.zeros(1))
    with pytest.raises(TypeError, match="cannot assign 'list' object to buffer 'x'"):
        m.register_buffer("x", [1.0])


def test_add_module_validation_and_alias():
    m = Module()
    m.add_module("a", Identity())
    m.register_module("b", None)
    assert list(m._modules) == ["a", "b"] and m.b is None
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        m.add_module("c", 3)
    with pytest.raises(TypeError, match="module name should be a string"):
        m.add_module(3, Identity())
    with pytest.raises(KeyError, match=r'contain "\."'):
        m.add_module("x.y", Identity())
    with pytest.raises(KeyError, match="empty string"):
        m.add_module("", Identity())
    with pytest.raises(KeyError, match="attribute 'eval' already exists"):
        m.add_module("eval", Identity())


def test_getattr_delattr_dir():
    class Net(Module):
        pass

    net = Net()
    net.w = Parameter([1.0])
    net.register_buffer("b", np.zeros(1), persistent=False)
    net.c = Identity()
    net.plain = 1
    with pytest.raises(AttributeError) as info:
        _ = net.missing
    assert str(info.value) == "'Net' object has no attribute 'missing'"
    names = dir(net)
    assert {"w", "b", "c", "plain", "forward", "training"} <= set(names)
    assert names == sorted(names)
    assert "0" not in dir(Sequential(Identity()))
    del net.w, net.b, net.c, net.plain
    assert not net._parameters and not net._buffers and not net._modules
    assert net._non_persistent_buffers_set == set() and "plain" not in net.__dict__
    with pytest.raises(AttributeError):
        del net.w


def test_missing_forward_raises_like_torch():
    class Net(Module):
        pass

    with pytest.raises(NotImplementedError) as info:
        Net()(1)
    assert str(info.value) == 'Module [Net] is missing the required "forward" function'


# --------------------------------------------------------------------------- hooks


def test_forward_pre_hooks_replace_args():
    m = Recorder()
    m.register_forward_pre_hook(lambda mod, args: None)
    assert m(1, 2) == ((1, 2), {})
    m.register_forward_pre_hook(lambda mod, args: args[0] + 10)  # non-tuple is wrapped
    assert m(1, 2) == ((11,), {})
    m.register_forward_pre_hook(lambda mod, args: (args[0], "x"))
    assert m(1, 2, k=3) == ((11, "x"), {"k": 3})


def test_forward_hooks_see_args_and_replace_output():
    m = Recorder()
    seen = []
    m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    m.register_forward_hook(lambda mod, args, out: seen.append((mod, args, out)))
    m.register_forward_hook(lambda mod, args, out: "replaced")
    assert m(3) == "replaced"
    assert seen == [(m, (6,), ((6,), {}))]


def test_hook_order_and_prepend():
    m = Identity()
    calls = []
    m.register_forward_pre_hook(lambda mod, args: calls.append("pre1"))
    m.register_forward_pre_hook(lambda mod, args: calls.append("pre0"), prepend=True)
    m.register_forward_hook(lambda mod, args, out: calls.append("post1"))
    m.register_forward_hook(lambda mod, args, out: calls.append("post0"), prepend=True)
    m.register_forward_hook(lambda mod, args, out: calls.append("post2"))
    m(0)
    assert calls == ["pre0", "pre1", "post0", "post1", "post2"]


def test_hooks_with_kwargs():
    m = Recorder()
    m.register_forward_pre_hook(
        lambda mod, args, kwargs: (args + (9,), {**kwargs, "extra": True}), with_kwargs=True
    )
    seen = {}
    m.register_forward_hook(lambda mod, args, kwargs, out: seen.update(kwargs), with_kwargs=True)
    assert m(1, scale=2) == ((1, 9), {"scale": 2, "extra": True})
    assert seen == {"scale": 2, "extra": True}
    m.register_forward_pre_hook(lambda mod, args, kwargs: "bad", with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        m(1)


def test_always_call_hooks_run_when_forward_raises():
    class Failing(Module):
        def forward(self, x):
            raise ValueError("boom")

    m = Failing()
    calls = []
    m.register_forward_hook(lambda mod, args, out: calls.append(("always", args, out)), always_call=True)
    m.register_forward_hook(lambda mod, args, out: calls.append("normal"))
    with pytest.raises(ValueError, match="boom"):
        m(1)
    assert calls == [("always", (1,), None)]

    def broken(mod, args, out):
        raise KeyError("hook")

    m.register_forward_hook(broken, always_call=True)
    with pytest.warns(UserWarning, match="always_call=True"), pytest.raises(ValueError, match="boom"):
        m(1)


def test_hook_may_remove_itself_during_call():
    m = Identity()
    handles = []
    handles.append(m.register_forward_hook(lambda mod, args, out: handles[0].remove()))
    m.register_forward_hook(add_one)
    assert m(1) == 2 and m(1) == 2
    assert len(m._forward_hooks) == 1


# --------------------------------------------------------------------------- iteration


def test_iteration_names_and_order():
    net = make_net(OURS)
    names = [n for n, _ in net.named_parameters()]
    assert names[:6] == ["fc.weight", "fc.bias", "layer1.0.fc1.weight", "layer1.0.fc1.bias",
                         "layer1.0.bn1.weight", "layer1.0.bn1.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "layer1.0.bn1.running_mean", "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == [
        "flatten", "fc", "layer1", "proc", "blocks", "heads", "empty"]
    assert [n for n, _ in net.named_modules()][:6] == [
        "", "flatten", "fc", "layer1", "layer1.0", "layer1.0.fc1"]
    assert list(net.parameters())[0] is net.fc.weight
    assert list(net.buffers())[0] is net.layer1[0].bn1.running_mean
    assert list(net.children())[1] is net.fc
    assert list(net.modules())[0] is net
    assert [n for n, _ in net.named_parameters(prefix="model", recurse=False)] == []
    assert [n for n, _ in net.fc.named_parameters(prefix="model")] == ["model.weight", "model.bias"]
    assert len(list(net.layer1.parameters(recurse=False))) == 0


def test_shared_parameters_and_modules_are_yielded_once():
    shared = Linear(2, 2)
    net = Sequential(shared, ReLU(), shared)
    net[1].w = shared.weight
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in net.named_parameters(remove_duplicate=False)] == [
        "0.weight", "0.bias", "1.w", "2.weight", "2.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert [n for n, _ in net.named_children()] == ["0", "1"]
    assert len(list(net.modules())) == 3


def test_iteration_matches_torch():
    nn = torch_nn()
    ours, theirs = make_net(OURS), make_net(nn)
    for method in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(ours, method)()] == [n for n, _ in getattr(theirs, method)()], method
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert ours.state_dict()[key].shape == tuple(value.shape), key


def test_apply_visits_children_first_and_returns_self():
    net = Sequential(Sequential(Identity()), ReLU())
    visited = []
    assert net.apply(lambda m: visited.append(m)) is net
    assert visited == [net[0][0], net[0], net[1], net]


def test_get_submodule_and_get_parameter():
    net = make_net(OURS)
    assert net.get_submodule("") is net
    assert net.get_submodule("layer1.0.bn1") is net.layer1[0].bn1
    assert net.get_parameter("layer1.0.fc1.weight") is net.layer1[0].fc1.weight
    assert net.get_parameter("fc.bias") is net.fc.bias
    with pytest.raises(AttributeError, match="Sequential has no attribute `nope`"):
        net.get_submodule("layer1.nope")
    with pytest.raises(AttributeError, match="`weight` is not an nn.Module"):
        net.get_submodule("fc.weight")
    with pytest.raises(AttributeError, match="`running_mean` is not an nn.Parameter"):
        net.get_parameter("layer1.0.bn1.running_mean")
    with pytest.raises(AttributeError, match="Linear has no attribute `gamma`"):
        net.get_parameter("fc.gamma")


def test_train_eval_and_no_ops():
    net = make_net(OURS)
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    net.layer1.train(False)
    assert net.training and not net.layer1[0].bn1.training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train(1)
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())
    assert net.requires_grad_() is net and all(p.requires_grad for p in net.parameters())
    before = snapshot(net)
    assert net.cpu() is net and net.float() is net and net.to("cpu", dtype=None) is net
    assert net.zero_grad() is None
    assert_same_state(net, before)


# --------------------------------------------------------------------------- state_dict


def test_state_dict_order_views_and_keep_vars():
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.child = BatchNorm1d(2)
            self.register_buffer("stat", np.zeros(1))
            self.w = Parameter([1.0])
            self.register_buffer("skip", None)
            self.register_parameter("none", None)
            self.register_buffer("tmp", np.zeros(1), persistent=False)

    net = Net()
    state = net.state_dict()
    assert isinstance(state, OrderedDict)
    # own parameters, then own persistent buffers, then children
    assert list(state) == ["w", "stat", "child.weight", "child.bias", "child.running_mean",
                           "child.running_var", "child.num_batches_tracked"]
    assert type(state["w"]) is np.ndarray and type(state["child.weight"]) is np.ndarray
    assert np.shares_memory(state["w"], net.w)
    state["w"][0] = 7.0  # views: writes show in the module
    assert net.w[0] == 7.0
    kept = net.state_dict(keep_vars=True)
    assert kept["w"] is net.w and kept["stat"] is net.stat
    dest = OrderedDict(existing=1)
    assert net.child.state_dict(destination=dest, prefix="bn.") is dest
    assert list(dest) == ["existing", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                          "bn.num_batches_tracked"]


def test_save_to_state_dict_can_be_extended():
    class WithExtra(Linear):
        def _save_to_state_dict(self, destination, prefix, keep_vars):
            super()._save_to_state_dict(destination, prefix, keep_vars)
            destination[prefix + "scale"] = np.array(2.0)

    net = Sequential(WithExtra(1, 1))
    assert list(net.state_dict()) == ["0.weight", "0.bias", "0.scale"]


def test_state_dict_round_trip():
    src, dst = make_net(OURS), make_net(OURS)
    rng = np.random.default_rng(0)
    for p in src.parameters():
        p[...] = rng.standard_normal(p.shape)
    src.layer1[0].bn1.num_batches_tracked[...] = 5
    result = dst.load_state_dict(src.state_dict())
    assert result == IncompatibleKeys([], []) and repr(result) == "<All keys matched successfully>"
    assert_same_state(dst, src.state_dict())
    x = rng.standard_normal((2, 2, 2))
    np.testing.assert_array_equal(dst(x), src(x))


# --------------------------------------------------------------------------- load_state_dict


def test_load_copies_in_place_with_dtype_cast():
    bn = BatchNorm1d(2)
    weight, count = bn.weight, bn.num_batches_tracked
    state = {
        "weight": np.array([3.0, 4.0], dtype=np.float64),
        "bias": [1, 2],
        "running_mean": (0.5, 0.5),
        "running_var": np.array([2, 2], dtype=np.int32),
        "num_batches_tracked": 7.9,
    }
    bn.load_state_dict(state)
    assert bn.weight is weight and bn.num_batches_tracked is count
    assert bn.weight.dtype == np.float32 and count.dtype == np.int64 and count == 7
    np.testing.assert_array_equal(weight, [3.0, 4.0])
    np.testing.assert_array_equal(bn.running_var, [2.0, 2.0])
    assert bn.running_mean.dtype == np.float32


def test_load_does_not_alias_or_modify_callers_arrays():
    lin = Linear(2, 1)
    weight = np.array([[1.0, 2.0]], dtype=np.float32)
    bias = np.array([3.0], dtype=np.float32)
    lin.load_state_dict({"weight": weight, "bias": bias})
    assert not np.shares_memory(lin.weight, weight)
    lin.weight[...] = 0
    lin.bias += 1
    np.testing.assert_array_equal(weight, [[1.0, 2.0]])
    np.testing.assert_array_equal(bias, [3.0])


def test_load_accepts_one_element_vector_for_scalar():
    bn = BatchNorm1d(1)
    state = {k: v.copy() for k, v in bn.state_dict().items()}
    state["num_batches_tracked"] = np.array([4])
    bn.load_state_dict(state)
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked == 4


def test_load_missing_and_unexpected_keys_messages():
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.a = Parameter([1.0])
            self.b = Parameter([2.0])

    net = Net()
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict({"c": np.zeros(1)})
    assert str(info.value) == (
        'Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: "a", "b". '
        '\n\tUnexpected key(s) in state_dict: "c". '
    )
    result = net.load_state_dict({"a": [5.0], "c": np.zeros(1), "x.y": 1}, strict=False)
    assert result.missing_keys == ["b"] and result.unexpected_keys == ["c", "x.y"]
    assert result == (["b"], ["c", "x.y"])
    assert "missing_keys=['b']" in repr(result)
    assert net.a[0] == 5.0 and net.b[0] == 2.0


def test_load_nested_unexpected_keys():
    net = make_net(OURS)
    state = net.state_dict()
    state["layer1.0.bn1.extra"] = np.zeros(1)
    state["layer1.7.weight"] = np.zeros(1)
    state["nochild.weight"] = np.zeros(1)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == []
    assert sorted(result.unexpected_keys) == ["layer1.0.bn1.extra", "layer1.7.weight", "nochild.weight"]


def test_load_size_mismatch_is_reported_even_when_not_strict():
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.fc = Linear(4, 10)

    net = Net()
    before = snapshot(net)
    state = {"fc.weight": np.zeros((10, 5)), "fc.bias": np.ones(10)}
    for strict in (True, False):
        with pytest.raises(RuntimeError) as info:
            net.load_state_dict(state, strict=strict)
        assert str(info.value) == (
            "Error(s) in loading state_dict for Net:\n\tsize mismatch for fc.weight: copying a param "
            "with shape (10, 5) from checkpoint, the shape in current model is (10, 4)."
        )
    assert_same_state(net, before)  # the valid bias was not copied either


@pytest.mark.parametrize(
    "value, dtype",
    [(np.ones(3, np.complex128), "complex128"), (np.array(["a", "b", "c"]), "<U1"),
     (np.array([None, 1, 2], dtype=object), "object"), ([1, "x", 2], "<U21")],
)
def test_load_rejects_non_real_dtypes_naming_key_and_dtype(value, dtype):
    lin = Linear(2, 3)
    before = snapshot(lin)
    with pytest.raises(TypeError) as info:
        lin.load_state_dict({"weight": np.zeros((3, 2)), "bias": value})
    assert "'bias'" in str(info.value) and dtype in str(info.value)
    assert_same_state(lin, before)


def test_load_rejects_unconvertible_values_and_non_mappings():
    lin = Linear(2, 1)
    with pytest.raises(TypeError, match="'bias'"):
        lin.load_state_dict({"weight": np.zeros((1, 2)), "bias": [[1.0], [1.0, 2.0]]})
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        lin.load_state_dict([("weight", np.zeros((1, 2)))])


def test_nothing_modified_when_keys_are_missing():
    net = make_net(OURS)
    before = snapshot(net)
    state = {k: np.full_like(v, 9) for k, v in net.state_dict().items()}
    del state["fc.bias"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "fc.bias"'):
        net.load_state_dict(state)
    assert_same_state(net, before)


def test_none_and_non_persistent_buffers_are_not_expected():
    m = Module()
    m.register_buffer("none", None)
    m.register_buffer("tmp", np.zeros(1), persistent=False)
    m.w = Parameter([0.0])
    assert m.load_state_dict({"w": [1.0]}) == ([], [])
    result = m.load_state_dict({"w": [1.0], "tmp": [5.0]}, strict=False)
    assert result.unexpected_keys == ["tmp"] and m.tmp[0] == 0.0


def test_load_assign_replaces_arrays_and_keeps_sharing():
    shared = Linear(1, 1)
    net = Sequential(shared, shared)
    old_weight = shared.weight
    old_weight.requires_grad_(False)
    result = net.load_state_dict({"0.weight": [[2.0]], "0.bias": [1.0], "1.weight": [[2.0]],
                                  "1.bias": [1.0]}, assign=True)
    assert result == ([], [])
    assert net[0].weight is not old_weight and old_weight[0, 0] == 0.0
    assert type(net[0].weight) is Parameter and net[0].weight.requires_grad is False
    assert net[0].weight.dtype == np.float32 and net[0].weight[0, 0] == 2.0
    assert net[1].weight is net[0].weight


def test_load_torch_state_dict_and_messages_match_torch():
    torch = pytest.importorskip("torch")
    theirs, ours = make_net(torch.nn), make_net(OURS)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_()
    theirs.layer1[0].bn1.running_var.fill_(3.0)
    theirs.layer1[0].bn1.num_batches_tracked.fill_(11)
    ours.load_state_dict(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy(), err_msg=key)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    theirs.eval()
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)

    # missing + unexpected + size mismatch: same message apart from torch.Size
    bad_ours = {k: v for k, v in ours.state_dict().items() if k != "fc.bias"}
    bad_ours["fc.weight"] = np.zeros((3, 5), np.float32)
    bad_ours["extra"] = np.zeros(1, np.float32)
    bad_theirs = {k: torch.from_numpy(np.array(v)) for k, v in bad_ours.items()}
    with pytest.raises(RuntimeError) as ours_info:
        ours.load_state_dict(bad_ours)
    with pytest.raises(RuntimeError) as theirs_info:
        theirs.load_state_dict(bad_theirs)
    expected = re.sub(r"torch\.Size\(\[(\d+), (\d+)\]\)", r"(\1, \2)", str(theirs_info.value))
    assert str(ours_info.value) == expected


# --------------------------------------------------------------------------- repr


def test_repr_matches_torch():
    nn = torch_nn()
    assert repr(make_net(OURS)) == repr(make_net(nn))
    for build in (
        lambda ns: ns.ModuleList([ns.ReLU(), ns.ReLU()]),
        lambda ns: ns.ModuleList([ns.ReLU(), ns.Identity(), ns.Identity(), ns.ReLU(), ns.ReLU(), ns.ReLU()]),
        lambda ns: ns.Sequential(ns.ReLU(), ns.ReLU()),  # torch only collapses in ModuleList
        lambda ns: ns.Sequential(),
        lambda ns: ns.ModuleDict(),
        lambda ns: ns.Flatten(0, 2),
        lambda ns: ns.ModuleList([ns.ModuleList([ns.Linear(1, 1)])] * 2),
    ):
        assert repr(build(OURS)) == repr(build(nn))


def test_repr_layout_and_extra_repr():
    class Multi(Module):
        def extra_repr(self):
            return "line1\nline2"

    net = Module()
    assert net.extra_repr() == "" and repr(net) == "Module()"
    net.proc = ModuleList([ReLU(), ReLU()])
    net.m = Multi()
    net.add_module("none", None)
    assert repr(net) == (
        "Module(\n  (proc): ModuleList(\n    (0-1): 2 x ReLU()\n  )\n"
        "  (m): Multi(\n    line1\n    line2\n  )\n  (none): None\n)"
    )


# --------------------------------------------------------------------------- pickling


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
def test_network_pickle_and_deepcopy(clone):
    net = make_net(OURS)
    net.layer1.eval()
    net.fc.register_forward_hook(add_one)
    net.register_forward_pre_hook(double_input)
    net.layer1[0].bn1.running_mean[...] = [1, 2, 3]
    net.tied = Linear(3, 3)
    net.tied.weight = net.fc.weight[:, :3].copy().view(Parameter)
    net.heads["a"].weight = net.tied.weight  # shared parameter
    x = np.random.default_rng(2).standard_normal((2, 4))
    expected = net(x)

    copied = clone(net)
    assert type(copied) is type(net) and copied is not net
    assert_same_state(copied, net.state_dict())
    assert copied.training and not copied.layer1.training and not copied.layer1[0].bn1.training
    assert copied.heads["a"].weight is copied.tied.weight
    assert type(copied.fc.weight) is Parameter
    assert not np.shares_memory(copied.fc.weight, net.fc.weight)
    np.testing.assert_array_equal(copied(x), expected)  # hooks survived
    assert len(copied._forward_pre_hooks) == 1 and len(copied.fc._forward_hooks) == 1
    copied.fc.weight[...] = 0
    assert net.fc.weight.any()


# --------------------------------------------------------------------------- Sequential


def test_sequential_construction_forward_and_indexing():
    a, b, c = Linear(2, 2), ReLU(), Identity()
    seq = Sequential(a, b, c)
    assert list(seq._modules) == ["0", "1", "2"] and len(seq) == 3
    assert list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c and seq[-3] is a
    x = np.array([[1.0, -5.0]])
    np.testing.assert_array_equal(seq(x), np.maximum(a(x), 0))
    with pytest.raises(IndexError, match="index 3 is out of range"):
        seq[3]
    with pytest.raises(IndexError):
        seq[-4]
    named = Sequential(OrderedDict([("conv", a), ("act", b)]))
    assert list(named._modules) == ["conv", "act"] and named.act is b
    assert Sequential()(5) == 5


def test_sequential_slice_keeps_keys_like_torch():
    seq = Sequential(Identity(), ReLU(), Flatten())
    part = seq[1:]
    assert type(part) is Sequential and list(part._modules) == ["1", "2"]
    assert part[0] is seq[1]
    nn = torch_nn()
    theirs = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Flatten())
    assert list(part._modules) == list(theirs[1:]._modules)
    assert repr(part) == repr(theirs[1:])


def test_sequential_setitem_delitem_renumber():
    seq = Sequential(Identity(), ReLU(), Flatten(), Identity())
    new = Linear(1, 1)
    seq[-1] = new
    assert seq[3] is new
    kept = seq[2]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and seq[1] is kept
    del seq[0:2]
    assert list(seq._modules) == ["0"] and seq[0] is new
    named = Sequential(OrderedDict([("a", Identity()), ("b", ReLU())]))
    del named[0]
    assert list(named._modules) == ["0"]  # torch renumbers named ones too


def test_sequential_append_extend_insert_pop_add():
    a, b, c, d = Identity(), ReLU(), Flatten(), Linear(1, 1)
    seq = Sequential(a)
    assert seq.append(b) is seq
    assert seq.extend([c]) is seq and list(seq) == [a, b, c]
    assert seq.insert(1, d) is seq and list(seq) == [a, d, b, c]
    seq.insert(-1, Identity())
    assert list(seq._modules) == ["0", "1", "2", "3", "4"] and seq[3] is not c and seq[4] is c
    seq.insert(len(seq), Identity())
    assert len(seq) == 6
    with pytest.raises(IndexError, match="Index out of range: 9"):
        seq.insert(9, Identity())
    assert seq.pop(1) is d and list(seq._modules) == ["0", "1", "2", "3", "4"]
    popped = seq.pop(slice(0, 2))
    assert type(popped) is Sequential and list(popped) == [a, b] and len(seq) == 3
    left, right = Sequential(a), Sequential(b, c)
    combined = left + right
    assert list(combined) == [a, b, c] and list(left) == [a] and list(right) == [b, c]


def test_sequential_type_errors():
    seq = Sequential(Identity())
    for call in (lambda: Sequential(Identity(), 3), lambda: seq.append("relu"),
                 lambda: seq.insert(0, None), lambda: seq.__setitem__(0, [1])):
        with pytest.raises(TypeError, match="expected a Module, got"):
            call()
    with pytest.raises(TypeError, match="expected an iterable of Modules, got int"):
        seq.extend(5)
    with pytest.raises(TypeError, match="unsupported operand"):
        seq + ModuleList()
    with pytest.raises(TypeError):
        seq["0"]
    assert len(seq) == 1


# --------------------------------------------------------------------------- ModuleList


def test_modulelist_basic_ops():
    a, b, c = Identity(), ReLU(), Flatten()
    ml = ModuleList([a, b])
    assert len(ml) == 2 and list(ml) == [a, b] and ml[-1] is b
    assert ml.append(c) is ml and list(ml._modules) == ["0", "1", "2"]
    assert ml.extend((Identity(),)) is ml and len(ml) == 4
    part = ml[1:3]
    assert type(part) is ModuleList and list(part._modules) == ["0", "1"] and list(part) == [b, c]
    ml[0] = c
    assert ml[0] is c
    with pytest.raises(IndexError, match="index 4 is out of range"):
        ml[4]
    with pytest.raises(NotImplementedError, match=r'Module \[ModuleList\] is missing the required "forward"'):
        ml(1)
    assert len(ModuleList()) == 0 and len(ModuleList(None)) == 0


def test_modulelist_delete_and_pop_renumber():
    mods = [Identity() for _ in range(5)]
    ml = ModuleList(mods)
    del ml[1]
    assert list(ml._modules) == ["0", "1", "2", "3"] and list(ml) == [mods[0], *mods[2:]]
    del ml[::2]
    assert list(ml._modules) == ["0", "1"] and list(ml) == [mods[2], mods[4]]
    assert ml.pop(0) is mods[2] and list(ml._modules) == ["0"] and ml[0] is mods[4]
    ml.extend(mods[:2])
    popped = ml.pop(slice(1, None))
    assert type(popped) is ModuleList and list(popped) == mods[:2] and list(ml) == [mods[4]]


def test_modulelist_insert():
    a, b, c = Identity(), ReLU(), Flatten()
    ml = ModuleList([a, b])
    assert ml.insert(1, c) is None
    assert list(ml) == [a, c, b] and list(ml._modules) == ["0", "1", "2"]
    d = Identity()
    ml.insert(-1, d)
    assert list(ml) == [a, c, d, b]
    ml.insert(4, Identity())
    assert len(ml) == 5
    with pytest.raises(IndexError, match="Index out of range: -7"):
        ml.insert(-7, Identity())


def test_modulelist_add_and_iadd():
    a, b = Identity(), ReLU()
    ml = ModuleList([a])
    same = ml
    ml += [b]
    assert ml is same and list(ml) == [a, b]
    combined = ml + ModuleList([a])
    assert type(combined) is ModuleList and list(combined) == [a, b, a] and len(ml) == 2
    assert list((ml + [b])._modules) == ["0", "1", "2"]
    with pytest.raises(TypeError, match="unsupported operand"):
        ml + 1


def test_modulelist_type_errors():
    ml = ModuleList()
    with pytest.raises(TypeError, match="ModuleList.append expected a Module, got int"):
        ml.append(1)
    with pytest.raises(TypeError, match="expected an iterable of Modules, got float"):
        ml.extend(1.5)
    with pytest.raises(TypeError, match="expected a Module, got str"):
        ModuleList(["relu"])
    with pytest.raises(TypeError, match="expected a Module, got NoneType"):
        ml.insert(0, None)
    ml.append(Identity())
    with pytest.raises(TypeError, match="expected a Module"):
        ml[0] = 3
    assert len(ml) == 1


def test_modulelist_matches_torch_after_edits():
    nn = torch_nn()

    def edit(ns):
        ml = ns.ModuleList([ns.ReLU(), ns.Identity(), ns.Flatten(), ns.ReLU()])
        del ml[1]
        ml.append(ns.ReLU())
        ml.insert(0, ns.Identity())
        ml.pop(2)
        ml += [ns.ReLU()]
        return ml

    ours, theirs = edit(OURS), edit(nn)
    assert list(ours._modules) == list(theirs._modules)
    assert repr(ours) == repr(theirs)


# --------------------------------------------------------------------------- ModuleDict


def test_moduledict_mapping_api():
    a, b, c = Identity(), ReLU(), Flatten()
    md = ModuleDict({"a": a, "b": b})
    assert len(md) == 2 and "a" in md and "z" not in md
    assert list(md) == ["a", "b"] and list(md.keys()) == ["a", "b"]
    assert list(md.values()) == [a, b] and list(md.items()) == [("a", a), ("b", b)]
    assert md["b"] is b and md.b is b
    md["c"] = c
    md.update([("a", c), ["d", a]])
    assert list(md) == ["a", "b", "c", "d"] and md["a"] is c
    md.update(ModuleDict({"e": b}))
    md.update(OrderedDict(f=a))
    assert list(md) == ["a", "b", "c", "d", "e", "f"]
    assert md.pop("b") is b and "b" not in md
    del md["c"]
    assert list(md) == ["a", "d", "e", "f"]
    assert [n for n, _ in md.named_children()] == ["a", "d", "e"]  # "f" is the module of "d"
    md.clear()
    assert len(md) == 0 and list(md.state_dict()) == []
    with pytest.raises(KeyError):
        md["a"]


def test_moduledict_errors():
    md = ModuleDict()
    with pytest.raises(TypeError, match="ModuleDict.__setitem__ expected a Module, got int"):
        md["x"] = 1
    with pytest.raises(TypeError, match="should be called with an iterable of key/value pairs, but got int"):
        md.update(3)
    with pytest.raises(TypeError, match="element #0 should be Iterable; is int"):
        md.update([1])
    with pytest.raises(ValueError, match="element #0 has length 3; 2 is required"):
        md.update([("a", Identity(), 3)])
    with pytest.raises(KeyError, match=r'contain "\."'):
        md["a.b"] = Identity()
    with pytest.raises(KeyError, match="attribute 'update' already exists"):
        md["update"] = Identity()
    assert len(md) == 0


# --------------------------------------------------------------------------- Flatten / Identity


def test_flatten_shapes_and_repr():
    x = np.arange(24.0).reshape(2, 3, 4)
    out = Flatten()(x)
    assert out.shape == (2, 12) and np.shares_memory(out, x)
    assert Flatten(0, 1)(x).shape == (6, 4)
    assert Flatten(-2, -1)(x).shape == (2, 12)
    assert Flatten(1, 1)(x).shape == (2, 3, 4)
    assert Flatten(0, -1)(np.array(3.0)).shape == (1,)
    assert Flatten()(np.zeros((0, 3, 2))).shape == (0, 6)
    assert type(Flatten(0)(Parameter(x))) is Tensor  # not a Parameter
    assert repr(Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert Flatten(0, 2).extra_repr() == "start_dim=0, end_dim=2"


def test_flatten_errors():
    with pytest.raises(IndexError, match=re.escape("expected to be in range of [-1, 0], but got 1")):
        Flatten()(np.zeros(3))
    with pytest.raises(RuntimeError, match="start_dim cannot come after end_dim"):
        Flatten(2, 1)(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="expected a numpy.ndarray input, got list"):
        Flatten()([[1, 2]])


def test_flatten_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    for dims in [(1, -1), (0, -1), (1, 2), (-3, -2), (2, 2), (0, 0)]:
        ours = Flatten(*dims)(x)
        theirs = torch.nn.Flatten(*dims)(torch.from_numpy(x)).numpy()
        assert ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)


def test_identity():
    x = np.ones(2)
    ident = Identity(3, key="ignored")
    t = wageubn.from_numpy(x)
    assert ident(t) is t and repr(ident) == "Identity()"
    assert type(ident(x)) is Tensor and ident(x).base is x  # an ndarray comes back as a Tensor view
    assert list(ident.parameters()) == []


# --------------------------------------------------------------------------- docstrings


def test_docstring_examples_run():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = doctest.testmod(module_mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 20 and result.failed == 0
