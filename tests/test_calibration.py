"""Calibration (wageubn.threshold, utils, wrapper, analyse): agreement with tqt 1.0.2, the C
statistics, hooks on nested networks, and the trained LeNet quantized to 8 bits everywhere.

tqt's entropy search is a Python loop of ~250,000 small torch operations (about 7 s per call
here), so every tqt entropy threshold this file needs is computed in one background
interpreter, started by the first test that uses tqt, while the other tests run.
"""
import json
import math
import os
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

import wageubn.function as nn
import wageubn.threshold as th
from wageubn import _C
from wageubn.analyse import compare, histogram
from wageubn.config import Config, network_config
from wageubn.utils import make_net_quant_or_not
from wageubn.wrapper import OFUNCTION, QFUNCTION

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import lenet  # noqa: E402  (examples/lenet.py)

BINS = 2048
FLOAT_ACCURACY = 0.9725  # the trained LeNet on the 2,000 test digits (README)
EIGHT_BITS = dict(iostrict=True, conv_and_linear_weight=8, conv_and_linear_bias=8, conv_and_linear_in=8,
                  conv_and_linear_out=8, acti_in=8, acti=8)


def float_net_of(net):
    make_net_quant_or_not(net, "net", quant=False)
    return net


# --------------------------------------------------------------------------------------
# tqt's entropy thresholds, computed in a background interpreter
# --------------------------------------------------------------------------------------

def _gaussian(rng):
    return rng.standard_normal(300_000).astype(np.float32)


def _abs_gaussian(rng):
    return np.abs(rng.standard_normal(300_000)).astype(np.float32) * 2


def _relu_gaussian(rng):  # half exact zeros, as after a ReLU
    return np.maximum(rng.normal(0.3, 1.5, 1_000_000), 0).astype(np.float32)


def _uniform(rng):
    return rng.uniform(-1.0, 3.0, 200_000).astype(np.float32)


def _heavy_tailed(rng):  # |Student t, 3 dof|: the range is set by rare outliers
    return np.abs(rng.standard_t(3, 500_000)).astype(np.float32)


def _mnist_pixels(rng):  # 256 discrete values k / 255, 80 % of them zero
    return lenet.load_digits()[0][:2000].ravel()


# name: (data, bin_number, cali_number).  tqt's time grows with cali_number (~9 s at the default
# 128, ~2.5 s at 32), so the default is used for the realistic activation and the pixels only.
ENTROPY_CASES = {
    "relu_gaussian": (_relu_gaussian, BINS, 128),
    "mnist_pixels": (_mnist_pixels, BINS, 128),
    "gaussian": (_gaussian, BINS, 32),
    "abs_gaussian": (_abs_gaussian, BINS, 32),
    "uniform": (_uniform, BINS, 32),
    "heavy_tailed": (_heavy_tailed, BINS, 32),
}

TQT_SCRIPT = r"""
import json, sys
import numpy as np, torch
torch.set_num_threads(1)
from tqt_ref.function import ReLU
from tqt_ref.threshold import entropy_calibration

class Stored:  # a float module after tqt's hook_handler ran
    pass

out = {}
for name, path, bins, cali in json.loads(sys.argv[1]):
    model, qmodel = Stored(), ReLU(retrain=False)
    model.hook_out = torch.from_numpy(np.load(path))
    entropy_calibration(model, qmodel, bin_number=bins, cali_number=cali)
    out[name] = float(qmodel.acti_log2_t)
print(json.dumps(out))
"""


class TqtEntropy:
    """The data of ENTROPY_CASES and, on first access, tqt's ``acti_log2_t`` for each."""

    def __init__(self, tqt_ref, directory):
        rng = np.random.default_rng(2024)
        self.data, jobs = {}, []
        for name, (make, bins, cali) in ENTROPY_CASES.items():
            self.data[name] = make(rng)
            np.save(directory / f"{name}.npy", self.data[name])
            jobs.append((name, str(directory / f"{name}.npy"), bins, cali))
        reference_dir = pathlib.Path(tqt_ref.__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(reference_dir),
                                                                        os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-c", TQT_SCRIPT, json.dumps(jobs)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.results = None

    def __getitem__(self, name):
        if self.results is None:
            out, err = self.proc.communicate(timeout=900)
            assert self.proc.returncode == 0, f"tqt's entropy_calibration failed:\n{err}"
            self.results = json.loads(out.strip().splitlines()[-1])
        return self.results[name]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def tqt_entropy(tqt_ref, tmp_path_factory):
    runner = TqtEntropy(tqt_ref, tmp_path_factory.mktemp("tqt_entropy"))
    yield runner
    runner.close()


def stored(x):
    """A float wageubn module holding ``x`` as its stored output (what hook_handler leaves)."""
    module = nn.ReLU()
    module.floatilize()
    module.hook_out = x
    return module


# --------------------------------------------------------------------------------------
# max and 3sd against tqt 1.0.2
# --------------------------------------------------------------------------------------

def test_max_and_3sd_match_tqt_for_weight_bias_and_stored_activations(torch, tqt_ref, tqt_entropy):
    # (tqt_entropy is requested here only to start tqt's slow entropy searches early.)
    tth, tfn = tqt_ref.threshold, tqt_ref.function
    torch.manual_seed(0)
    tconv, tlinear = torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8 * 6 * 6, 5)
    with torch.no_grad():
        tconv.bias.add_(0.25)  # |mean| matters for 3sd
        tlinear.weight.mul_(3.0)
    tnet = torch.nn.Sequential(tconv, torch.nn.ReLU(), torch.nn.Flatten(), tlinear)
    ours = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    ours.load_state_dict(tnet.state_dict(), strict=True)
    float_net_of(ours)
    x = np.random.default_rng(1).standard_normal((16, 3, 8, 8)).astype(np.float32)

    handles = tth.add_hook(tnet, "net", tth.hook_handler)
    with torch.no_grad():
        tnet(torch.from_numpy(x))
    tth.remove_hook(handles)
    handles = th.add_hook(ours, "net", th.hook_handler)
    ours(x)
    th.remove_hook(handles)
    for t_mod, o_mod in ((tnet[0], ours[0]), (tnet[1], ours[1]), (tnet[3], ours[3])):
        np.testing.assert_allclose(o_mod.hook_out, t_mod.hook_out.numpy(), rtol=1e-5, atol=1e-5)
        o_mod.hook_out = t_mod.hook_out.numpy()  # the same data on both sides from here on

    cases = [  # (tqt function, ours, our part, float modules, tqt qmodule factory, our qmodule factory)
        (tth.threshold_weight_max, th.init_max, "weight", 0, lambda: tfn.Conv2d(3, 8, 3, retrain=False),
         lambda: nn.Conv2d(3, 8, 3)),
        (tth.threshold_bias_max, th.init_max, "bias", 0, lambda: tfn.Conv2d(3, 8, 3, retrain=False),
         lambda: nn.Conv2d(3, 8, 3)),
        (tth.threshold_weight_3sd, th.init_3sd, "weight", 3, lambda: tfn.Linear(288, 5, retrain=False),
         lambda: nn.Linear(288, 5)),
        (tth.threshold_bias_3sd, th.init_3sd, "bias", 3, lambda: tfn.Linear(288, 5, retrain=False),
         lambda: nn.Linear(288, 5)),
        (tth.threshold_activation_max, th.init_max, "acti", 1, lambda: tfn.ReLU(retrain=False), nn.ReLU),
        (tth.threshold_activation_3sd, th.init_3sd, "acti", 1, lambda: tfn.ReLU(retrain=False), nn.ReLU),
        (tth.threshold_activation_max, th.init_max, "acti", 3, lambda: tfn.ReLU(retrain=False), nn.ReLU),
        (tth.threshold_activation_3sd, th.init_3sd, "acti", 3, lambda: tfn.ReLU(retrain=False), nn.ReLU),
    ]
    seen = set()
    for t_fn, o_fn, part, index, t_q, o_q in cases:
        tq, oq = t_q(), o_q()
        t_fn(tnet[index], tq)
        returned = o_fn(ours[index], oq, part)
        expect = getattr(tq, f"{part}_log2_t")
        assert isinstance(expect, torch.Tensor) and not isinstance(expect, torch.nn.Parameter)
        got = getattr(oq, f"{part}_log2_t")
        assert got.dtype == np.float32 and got.shape == (1,)
        assert got[0] == np.float32(returned)
        np.testing.assert_allclose(got, expect.numpy(), rtol=2e-7, atol=2e-7, err_msg=f"{t_fn.__name__} {index}")
        seen.add(round(float(got[0]), 3))
        # tqt's own names are aliases with the same result
        alias = getattr(th, t_fn.__name__)
        oq2 = o_q()
        assert alias(ours[index], oq2) == returned
    assert len(seen) == len(cases)  # eight different thresholds: the comparison is not vacuous


# --------------------------------------------------------------------------------------
# Statistics (C moments and histograms)
# --------------------------------------------------------------------------------------

def assert_histogram_close(counts, x, lo, hi, bins=BINS):
    """Our counts against np.histogram: totals equal, a value on a bin edge may move one bin."""
    expect, _ = np.histogram(x, bins=bins, range=(lo, hi))
    assert counts.shape == (bins,) and counts.sum() == expect.sum() == x.size
    position = (x.astype(np.float64) - lo) / ((hi - lo) / bins)
    on_edge = int(np.sum(np.abs(position - np.round(position)) < 1e-3))
    assert np.abs(np.cumsum(counts - expect)).max() <= on_edge
    assert np.sum(counts != expect) <= 2 * on_edge


def test_statistics_streaming_moments_equal_numpy_over_concatenation(rng):
    batches = [rng.normal(5.0, 2.0, (64, 3, 7)).astype(np.float32),
               rng.normal(-1.0, 0.5, 1000).astype(np.float32),
               rng.uniform(0, 40, (10, 10)).astype(np.float32),
               np.array([3.25], np.float32)]
    stats = th.Statistics()
    for batch in batches:
        assert stats.update(batch) is stats
    everything = np.concatenate([b.ravel() for b in batches]).astype(np.float64)
    assert stats.count == everything.size
    assert stats.mean == pytest.approx(everything.mean(), rel=1e-12)
    assert stats.std == pytest.approx(everything.std(ddof=1), rel=1e-12)
    assert (stats.min, stats.max) == (everything.min(), everything.max())
    assert stats.hist.sum() == everything.size
    # thresholds follow: max |v| and |mean| + 3 std
    assert stats.threshold("max") == pytest.approx(math.log2(np.abs(everything).max()), abs=1e-9)
    assert stats.threshold("3sd") == pytest.approx(
        math.log2(abs(everything.mean()) + 3 * everything.std(ddof=1)), abs=1e-9)


def test_statistics_histogram_of_one_batch_is_numpys(rng):
    x = rng.standard_normal(200_000).astype(np.float32) * 3 + 1
    stats = th.Statistics(BINS).update(x)
    assert (stats.lo, stats.hi) == (float(x.min()), float(x.max()))
    assert_histogram_close(stats.hist, x, stats.lo, stats.hi)
    # values exactly on edges: a grid of 0, 1/8, ..., 4 over 32 bins
    grid = np.arange(33, dtype=np.float32) / 8
    small = th.Statistics(32).update(grid)
    assert small.hist.sum() == 33 and small.hist[-1] == 2  # the maximum goes into the last bin
    assert_histogram_close(small.hist, grid, 0.0, 4.0, bins=32)


def test_statistics_later_batch_out_of_range_doubles_range_and_keeps_counts(rng):
    first = rng.uniform(0.0, 1.0, 50_000).astype(np.float32)
    first[:2] = 0.0, 1.0  # range exactly [0, 1]
    stats = th.Statistics(BINS).update(first)
    assert (stats.lo, stats.hi) == (0.0, 1.0)
    second = rng.uniform(0.0, 3.5, 20_000).astype(np.float32)
    stats.update(second)
    assert (stats.lo, stats.hi) == (0.0, 4.0)  # doubled twice; the lower edge did not move
    assert stats.hist.sum() == first.size + second.size
    assert_histogram_close(stats.hist, np.concatenate([first, second]), 0.0, 4.0)
    third = np.array([-3.0], np.float32)  # below: grows downwards, the upper edge stays
    stats.update(third)
    assert (stats.lo, stats.hi) == (-4.0, 4.0)
    assert stats.hist.sum() == first.size + second.size + 1
    assert_histogram_close(stats.hist, np.concatenate([first, second, third]), -4.0, 4.0)
    assert (stats.min, stats.max) == (-3.0, float(second.max()))


def test_statistics_ignore_nan_and_inf(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    dirty = x.copy()
    dirty[::7] = np.nan
    dirty[3::11] = np.inf
    dirty[5::13] = -np.inf
    finite = dirty[np.isfinite(dirty)].astype(np.float64)
    stats = th.Statistics().update(dirty)
    assert stats.count == finite.size < x.size
    assert stats.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert stats.std == pytest.approx(finite.std(ddof=1), rel=1e-12)
    assert (stats.min, stats.max) == (finite.min(), finite.max())
    assert stats.hist.sum() == finite.size
    assert all(math.isfinite(stats.threshold(m)) for m in ("max", "3sd", "entro"))
    nothing = th.Statistics().update(np.array([np.nan, np.inf], np.float32))
    assert nothing.count == 0
    with pytest.raises(ValueError, match="no finite value"):
        nothing.threshold("max")


def test_statistics_all_equal_values():
    stats = th.Statistics().update(np.full(100, -2.5, np.float32)).update(np.full(3, -2.5, np.float32))
    assert (stats.count, stats.mean, stats.std, stats.min, stats.max) == (103, -2.5, 0.0, -2.5, -2.5)
    for method in ("max", "3sd", "entro"):
        assert 2 ** stats.threshold(method) == pytest.approx(2.5, rel=1e-6), method
    # a later batch with a spread keeps the point mass in the histogram
    stats.update(np.array([0.5, 1.5], np.float32))
    assert (stats.lo, stats.hi) == (-2.5, 1.5) and stats.hist.sum() == 105
    assert stats.hist[0] == 103


def test_statistics_skip_zeros_only_affects_the_histogram(rng):
    x = np.maximum(rng.standard_normal(10_000), 0).astype(np.float32)
    zeros = int(np.sum(x == 0))
    assert 4000 < zeros < 6000
    kept, skipped = th.Statistics().update(x), th.Statistics(skip_zeros=True).update(x)
    assert kept.hist.sum() == x.size and skipped.hist.sum() == x.size - zeros
    assert kept.hist[0] - skipped.hist[0] == zeros and np.array_equal(kept.hist[1:], skipped.hist[1:])
    assert (kept.count, kept.mean, kept.std) == (skipped.count, skipped.mean, skipped.std)
    only_zeros = th.Statistics(skip_zeros=True).update(np.zeros(10, np.float32)).update(np.ones(1, np.float32))
    assert only_zeros.hist.sum() == 1 and math.isfinite(only_zeros.threshold("entro"))


# --------------------------------------------------------------------------------------
# Hooks on nested networks
# --------------------------------------------------------------------------------------

class Nested(nn.Module):
    """``proc`` lists attribute names; ``stack`` is a ModuleList holding a Sequential."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.stack = nn.ModuleList([nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 1), nn.ReLU6()), nn.MaxPool2d(2)])
        self.heads = nn.ModuleDict({"fc": nn.Linear(4 * 4 * 4, 3)})
        self.unused = nn.ReLU()  # not in proc
        self.proc = ["conv", "stack", "heads"]

    def forward(self, x):
        x = self.conv(x)
        for layer in self.stack:
            x = layer(x)
        return self.heads["fc"](x.reshape(x.shape[0], -1))


HOOKED = ["net.conv", "net.stack.0.0", "net.stack.0.1", "net.stack.0.2", "net.heads.fc", "net.unused"]
SHAPES = {"net.conv": (2, 4, 8, 8), "net.stack.0.0": (2, 4, 8, 8), "net.stack.0.1": (2, 4, 8, 8),
          "net.stack.0.2": (2, 4, 8, 8), "net.stack.1": (2, 4, 4, 4), "net.heads.fc": (2, 3)}


def test_add_hook_reaches_listed_classes_at_any_depth(capsys):
    net = Nested()
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    handles = th.add_hook(net, "net", th.hook_handler, show=True)
    assert len(handles) == 6
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == HOOKED
    net(x)
    got = th.get_hook(net, "net")
    assert [name for name, _ in got] == HOOKED[:-1]  # unused never ran
    for name, out in got:
        assert out.shape == SHAPES[name], name
    np.testing.assert_array_equal(dict(got)["net.heads.fc"], net(x))
    assert net.stack[0][1].hook_in.shape == (2, 4, 8, 8)
    th.get_hook(net, "model", show=True)  # the prefix is the given name
    assert capsys.readouterr().out.splitlines()[0] == "model.conv hook has been fetched"

    th.remove_hook(handles)
    th.remove_hookout(net, "net", show=True)
    removed = capsys.readouterr().out.splitlines()
    assert removed == [f"{name} has removed hookout" for name in HOOKED[:-1]]
    assert th.get_hook(net, "net") == [] and not hasattr(net.conv, "hook_in")
    net(x)  # hooks really gone: nothing stored
    assert th.get_hook(net, "net") == []
    # end_list chooses the classes
    handles = th.add_hook(net, "net", th.hook_handler, end_list=[nn.MaxPool2d])
    net(x)
    assert [(n, o.shape) for n, o in th.get_hook(net, "net")] == [("net.stack.1", (2, 4, 4, 4))]
    th.remove_hook(handles)


def test_add_hook_general_follows_proc_lists_and_containers():
    net = Nested()
    handles = th.add_hook_general(net, th.hook_handler)
    assert len(handles) == 6  # conv, relu, conv, relu6, pool, fc (not unused, not the containers)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    net(x)
    got = th.get_hook(net, "net")
    assert [name for name, _ in got] == list(SHAPES)
    assert {name: out.shape for name, out in got} == SHAPES
    assert "hook_out" not in net.stack.__dict__ and "hook_out" not in net.__dict__
    th.remove_hook(handles)
    th.remove_hookout(net, "net")
    net(x)
    assert th.get_hook(net, "net") == []
    # a container proc and a bare ModuleDict / Sequential
    holder = nn.Module()
    holder.proc = nn.Sequential(nn.Linear(2, 2), nn.ModuleDict({"a": nn.ReLU(), "b": nn.Identity()}))
    assert len(th.add_hook_general(holder)) == 3


# --------------------------------------------------------------------------------------
# The trained LeNet on real digits, quantized to 8 bits everywhere
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    train_x, train_y, test_x, test_y = lenet.load_digits()
    return train_x[:2000], test_x, test_y


@pytest.fixture(scope="module")
def float_lenet():
    return float_net_of(lenet.load_lenet())


def eight_bit_lenet():
    qnet = lenet.load_lenet()
    network_config(qnet, "net", Config(**EIGHT_BITS))
    return qnet


def accuracy(net, digits):
    _, test_x, test_y = digits
    return float(np.mean(net(test_x).argmax(axis=1) == test_y))


@pytest.fixture(scope="module")
def calibrated_max(float_lenet, digits):
    """The 8-bit LeNet calibrated by 'max' over four batches, placed; (qnet, rows, accuracy)."""
    train_x = digits[0]
    qnet = eight_bit_lenet()
    # batches as (input, label) tuples from an iterator, as a data loader gives them
    rows = th.calibrate(float_lenet, qnet, iter([(train_x[i:i + 500], None) for i in range(0, 2000, 500)]),
                        acti_method="max")
    return qnet, rows, accuracy(qnet, digits)


def test_lenet_float_twin_reproduces_float_accuracy(float_lenet, digits):
    assert all(m.quant is False for m in float_lenet.modules() if hasattr(m, "quant"))
    assert accuracy(float_lenet, digits) == FLOAT_ACCURACY
    assert accuracy(eight_bit_lenet(), digits) < FLOAT_ACCURACY - 0.05  # the gap calibration closes


@pytest.mark.parametrize("method", ["max", "entro"])
def test_lenet_documented_workflow_init_network(float_lenet, digits, method):
    train_x = digits[0]
    qnet = eight_bit_lenet()
    handles = th.add_hook(float_lenet, "net", th.hook_handler)
    float_lenet(train_x)
    th.remove_hook(handles)
    rows = th.init_network(float_lenet, qnet, "net", acti_method=method)
    th.remove_hookout(float_lenet, "net")
    # 5 weighted layers x (weight, bias, input, output) + 4 ReLUs x (input, acti)
    assert len(rows) == 28 and {r["method"] for r in rows} == {"max", method}
    for r in rows:
        layer = qnet.get_submodule(r["layer"][len("net."):])
        dec, all_ = getattr(layer, f"{r['part']}_dec_bit_width"), getattr(layer, f"{r['part']}_all_bit_width")
        assert all_ == 8 and dec == 8 - math.ceil(r["log2_t"])  # placed
    got = accuracy(qnet, digits)
    assert got >= FLOAT_ACCURACY - 0.01, f"{method}: {got:.2%} against float {FLOAT_ACCURACY:.2%}"


def test_entropy_threshold_is_a_magnitude_on_signed_data(rng):
    """A format holds [-t, t], so negating the data must not move its threshold.  The cut of
    tqt's search is a position in [min, max]; for signed data (a Conv2d/Linear output before
    its ReLU) that position is not a magnitude."""
    x = (rng.standard_normal(200_000) * 3 - 2).astype(np.float32)
    width = float(np.abs(x).max()) / BINS
    for symmetric in (False, True):
        t, t_negated = (2 ** th.Statistics(skip_zeros=True).update(v).threshold("entro", symmetric=symmetric)
                        for v in (x, -x))
        assert abs(t - t_negated) <= 2 * width, (symmetric, t, t_negated)


def test_lenet_calibrate_over_batches(float_lenet, digits, calibrated_max):
    train_x = digits[0]
    batches = [train_x[i:i + 500] for i in range(0, 2000, 500)]
    qnet = eight_bit_lenet()
    rows = th.calibrate(float_lenet, qnet, batches)  # entropy for activations by default
    assert {r["method"] for r in rows} == {"max", "entro"} and len(rows) == 28
    assert all("hook_out" not in m.__dict__ for m in float_lenet.modules())  # hooks gone
    assert all(not m._forward_hooks for m in float_lenet.modules())
    got = accuracy(qnet, digits)
    assert got >= FLOAT_ACCURACY - 0.01, f"calibrate: {got:.2%}"

    # 'max' over batches equals 'max' over their concatenation (init_network on one batch)
    qmax, rows_max, got = calibrated_max
    assert got >= FLOAT_ACCURACY - 0.01, f"calibrate max: {got:.2%}"
    qref = eight_bit_lenet()
    handles = th.add_hook(float_lenet, "net", th.hook_handler)
    float_lenet(train_x)
    th.remove_hook(handles)
    rows_ref = th.init_network(float_lenet, qref, "net", acti_method="max")
    th.remove_hookout(float_lenet, "net")
    assert [(r["layer"], r["part"], r["format"]) for r in rows_max] == \
        [(r["layer"], r["part"], r["format"]) for r in rows_ref]
    np.testing.assert_allclose([r["log2_t"] for r in rows_max], [r["log2_t"] for r in rows_ref], atol=1e-9)


def test_lenet_without_placement_clips_and_loses_accuracy(float_lenet, digits, calibrated_max):
    train_x, test_x, _ = digits
    batches = [train_x[i:i + 500] for i in range(0, 2000, 500)]
    unplaced = eight_bit_lenet()
    th.calibrate(float_lenet, unplaced, batches, acti_method="max", place_formats=False)
    placed, _, acc_placed = calibrated_max
    # thresholds are set either way; only placement changes the formats
    np.testing.assert_array_equal(unplaced.proc[9].acti_log2_t, placed.proc[9].acti_log2_t)
    assert unplaced.proc[9].acti_log2_t[0] > 4  # ReLU outputs reach beyond 16
    assert all(getattr(m, f"{p}_dec_bit_width") == 8 for m in unplaced.modules() if hasattr(m, "parts")
               for p in m.parts)
    acc_unplaced = accuracy(unplaced, digits)
    assert acc_unplaced < FLOAT_ACCURACY - 0.05 < acc_placed

    # why: the default Q0.7 formats clip most large activations; placed formats clip none
    rows_unplaced = compare(float_lenet, unplaced, test_x[:500])
    rows_placed = compare(float_lenet, placed, test_x[:500])
    clipped_unplaced = {r["layer"]: r["clipped"] for r in rows_unplaced}
    assert clipped_unplaced["net.proc.10"] > 0.5 and max(clipped_unplaced.values()) > 0.5
    assert {r["format"] for r in rows_unplaced} == {"Q0.7"}
    assert max(r["clipped"] for r in rows_placed) < 0.01
    assert min(r["cosine"] for r in rows_placed) > 0.999 > max(r["cosine"] for r in rows_unplaced[2:])


def test_init_network_show_prints_table_in_q_notation(float_lenet, digits, capsys):
    qnet = eight_bit_lenet()
    handles = th.add_hook(float_lenet, "net", th.hook_handler)
    float_lenet(digits[0][:500])
    th.remove_hook(handles)
    rows = th.init_network(float_lenet, qnet, "net", acti_method="max", show=True)
    th.remove_hookout(float_lenet, "net")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "part", "method", "log2_t", "threshold", "format"]
    assert len(lines) == 1 + len(rows) == 29
    table = [line.split() for line in lines[1:]]
    assert [t[:3] for t in table] == [[r["layer"], r["part"], r["method"]] for r in rows]
    by_part = {(t[0], t[1]): t for t in table}
    # first conv: |w| <= 0.447 -> ceil(log2) = -1 -> dec 9: no integer bit, 8 fraction bits
    weight = by_part[("net.proc.0", "weight")]
    assert weight[5] == "Q-1.8" and float(weight[4]) == pytest.approx(0.4471, abs=1e-4)
    # pixels reach 1.0 exactly, which Q0.7 (at most 127/128) cannot hold: one integer bit
    assert by_part[("net.proc.0", "input")][5] == "Q1.6"
    for t in table:
        m = re.fullmatch(r"Q(-?\d+)\.(-?\d+)", t[5])
        assert m, t
        integer, fraction = int(m.group(1)), int(m.group(2))
        assert integer + fraction + 1 == 8  # sign + integer + fraction = all bits
        assert 2.0 ** (integer - 1) < float(t[4]) * (1 + 1e-3) and float(t[4]) <= 2.0 ** integer * (1 + 1e-3)
        assert float(t[3]) == pytest.approx(math.log2(float(t[4])), abs=2e-3)


# --------------------------------------------------------------------------------------
# retrain: thresholds as Parameters or as plain arrays
# --------------------------------------------------------------------------------------

def small_twins(retrain):
    def build(**kw):
        return nn.Sequential(nn.Conv2d(1, 3, 3, **kw), nn.BatchNorm2d(3, **kw), nn.ReLU(**kw), nn.Flatten(),
                             nn.Linear(3 * 4 * 4, 2, **kw))
    net, qnet = float_net_of(build()), build(retrain=retrain)
    qnet.load_state_dict(net.state_dict(), strict=False)
    return net, qnet


def test_retrain_thresholds_are_parameters_in_state_dict(torch):
    conv = nn.Conv2d(1, 2, 3, retrain=True)
    extra = ["weight_log2_t", "bias_log2_t", "input_log2_t", "acti_log2_t"]
    assert [n for n, _ in conv.named_parameters()] == ["weight", "bias"] + extra
    assert list(conv.state_dict()) == ["weight", "bias"] + extra
    bn, relu = nn.BatchNorm2d(2, retrain=True), nn.ReLU(retrain=True)
    assert {"mean_log2_t", "var_log2_t", "acti_log2_t"} <= set(dict(bn.named_parameters()))
    assert list(relu.state_dict()) == ["input_log2_t", "acti_log2_t"]
    result = conv.load_state_dict(torch.nn.Conv2d(1, 2, 3).state_dict(), strict=False)
    assert result.missing_keys == extra and result.unexpected_keys == []
    with pytest.raises(RuntimeError, match="weight_log2_t"):
        conv.load_state_dict(torch.nn.Conv2d(1, 2, 3).state_dict(), strict=True)


def test_default_state_dict_keys_are_torchs(torch):
    pairs = [(nn.Conv2d(2, 4, 3), torch.nn.Conv2d(2, 4, 3)), (nn.Conv2d(2, 4, 3, bias=False),
             torch.nn.Conv2d(2, 4, 3, bias=False)), (nn.Linear(5, 3), torch.nn.Linear(5, 3)),
             (nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)), (nn.ReLU(), torch.nn.ReLU()),
             (nn.ReLU6(), torch.nn.ReLU6())]
    for ours, theirs in pairs:
        assert list(ours.state_dict()) == list(theirs.state_dict()), type(ours).__name__
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
        result = ours.load_state_dict(theirs.state_dict(), strict=True)
        assert result.missing_keys == [] and result.unexpected_keys == []
        assert hasattr(ours, "acti_log2_t") and not isinstance(ours.acti_log2_t, nn.Parameter)
    tnet = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU())
    nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).load_state_dict(tnet.state_dict(), strict=True)


@pytest.mark.parametrize("retrain", [False, True])
def test_thresholds_from_init_network_survive_pickling(retrain):
    net, qnet = small_twins(retrain)
    x = np.random.default_rng(3).standard_normal((8, 1, 6, 6)).astype(np.float32) * 4
    handles = th.add_hook(net, "net", th.hook_handler)
    net(x)
    th.remove_hook(handles)
    rows = th.init_network(net, qnet, "net", acti_method="max")
    th.remove_hookout(net, "net")
    assert len(rows) == 4 + 6 + 2 + 4
    twin = pickle.loads(pickle.dumps(qnet))
    for row in rows:
        layer, part = twin.get_submodule(row["layer"][len("net."):]), row["part"]
        attr = next(a for a, p in layer.threshold_parts().items() if p == part)
        value = getattr(layer, attr)
        assert isinstance(value, nn.Parameter) is retrain
        assert value.dtype == np.float32 and value[0] == np.float32(row["log2_t"])
        assert th.format_of(layer, part) == row["format"]
    names = [n for n, _ in twin.named_parameters()]
    assert ("0.weight_log2_t" in names) is retrain and ("0.weight_log2_t" in twin.state_dict()) is retrain
    np.testing.assert_array_equal(twin(x), qnet(x))


# --------------------------------------------------------------------------------------
# utils.make_net_quant_or_not and wrapper.QFUNCTION / OFUNCTION
# --------------------------------------------------------------------------------------

def test_make_net_quant_or_not_exclude_and_show(capsys, tqt_ref):
    def build(space, **kw):
        return space.Sequential(space.Conv2d(1, 2, 3, **kw), space.Sequential(space.BatchNorm2d(2, **kw),
                                space.ReLU(**kw)), space.MaxPool2d(2))
    net = build(nn)
    make_net_quant_or_not(net, "net", quant=False, show=True)
    assert capsys.readouterr().out.splitlines() == ["net.0 is floated", "net.1.0 is floated", "net.1.1 is floated"]
    make_net_quant_or_not(net, "net", quant=True, exclude=[nn.BatchNorm2d], show=True)
    out = capsys.readouterr().out.split()
    assert [net[0].quant, net[1][0].quant, net[1][1].quant] == [True, False, True]
    # the same names and words as tqt's own function on the twin network
    tnet = build(tqt_ref.function, retrain=False)
    tqt_ref.utils.make_net_quant_or_not(tnet, "net", quant=True, exclude=[tqt_ref.function.BatchNorm2d], show=True)
    assert out == capsys.readouterr().out.split() == \
        ["net.0", "is", "quanted", "net.1.0", "is", "excluded", "net.1.1", "is", "quanted"]
    assert [tnet[0].quant, tnet[1][0].quant, tnet[1][1].quant] == [True, False, True]
    make_net_quant_or_not(net, "net", quant=True)
    assert net[1][0].quant is True


LENET_LAYERS = [  # tqt's example style: the layers of a ModuleList chosen from a dict
    ("Conv2d", (1, 6, 5, 1, 2), {"weight_bit_width": 8}), ("ReLU", (), {"acti_bit_width": 8}),
    ("MaxPool2d", ((2, 2),), {}),
    ("Conv2d", (6, 16, 5), {"weight_bit_width": 8}), ("ReLU", (), {"acti_bit_width": 8}),
    ("MaxPool2d", ((2, 2),), {}),
    ("Conv2d", (16, 120, 5), {"weight_bit_width": 8}), ("ReLU", (), {"acti_bit_width": 8}),
    ("Linear", (120, 84), {"weight_bit_width": 8}), ("ReLU", (), {"acti_bit_width": 8}),
    ("Linear", (84, 10), {"weight_bit_width": 8, "bias_bit_width": 16}),
]


class WrappedLeNet(nn.Module):
    def __init__(self, quant, retrain=False):
        super().__init__()
        functions = QFUNCTION if quant else OFUNCTION
        self.proc = nn.ModuleList([functions[kind](*args, **kw, **({"retrain": retrain} if kw else {}))
                                   for kind, args, kw in LENET_LAYERS])

    forward = lenet.LeNet.forward


def test_wrapper_twins_load_and_calibrate_end_to_end(digits):
    fnet, qnet = WrappedLeNet(quant=False), WrappedLeNet(quant=True)
    with np.load(lenet.WEIGHTS) as weights:
        fnet.load_state_dict(dict(weights), strict=True)
    assert [m.quant for m in fnet.proc if hasattr(m, "quant")] == [False] * 9
    assert [m.quant for m in qnet.proc if hasattr(m, "quant")] == [True] * 9
    assert (qnet.proc[0].weight_dec_bit_width, qnet.proc[0].weight_all_bit_width) == (8, 8)
    assert (qnet.proc[1].acti_dec_bit_width, qnet.proc[1].acti_all_bit_width) == (8, 8)
    result = qnet.load_state_dict(fnet.state_dict(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(qnet.proc[8].weight, fnet.proc[8].weight)
    assert accuracy(fnet, digits) == FLOAT_ACCURACY

    network_config(qnet, "net", Config(**EIGHT_BITS))
    rows = th.calibrate(fnet, qnet, [digits[0][i:i + 1000] for i in (0, 1000)])
    assert len(rows) == 28
    got = accuracy(qnet, digits)
    assert got >= FLOAT_ACCURACY - 0.01, f"wrapper twins: {got:.2%}"

    # retrain=True twins: the thresholds are the only keys the float twin lacks
    rnet = WrappedLeNet(quant=True, retrain=True)
    result = rnet.load_state_dict(fnet.state_dict(), strict=False)
    assert result.unexpected_keys == [] and result.missing_keys and \
        all(k.endswith("_log2_t") for k in result.missing_keys)
    assert isinstance(rnet.proc[0].weight_log2_t, nn.Parameter)


# --------------------------------------------------------------------------------------
# analyse
# --------------------------------------------------------------------------------------

def test_compare_rows_are_sane(float_lenet, digits, calibrated_max, capsys):
    x = digits[1][:300]
    twin = float_net_of(lenet.load_lenet())
    rows = compare(float_lenet, twin, x, show=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "cosine", "kl", "max_error", "mean_error", "clipped", "format"]
    assert [line.split()[0] for line in lines[1:]] == [r["layer"] for r in rows]
    assert [r["layer"] for r in rows] == [f"net.proc.{i}" for i in (0, 1, 3, 4, 6, 7, 8, 9, 10)]
    for r in rows:
        assert r["cosine"] == pytest.approx(1.0, abs=1e-6)
        assert r["kl"] == pytest.approx(0.0, abs=1e-9) and r["max_error"] == r["mean_error"] == 0.0
        assert r["clipped"] == 0.0 and r["format"] == "float"

    coarse = lenet.load_lenet()
    network_config(coarse, "net", Config(iostrict=True, acti=3, conv_and_linear_out=3, conv_and_linear_in=3,
                                         acti_in=3))
    th.calibrate(float_lenet, coarse, [digits[0][:500]], acti_method="max")
    fine = calibrated_max[0]
    rows_coarse, rows_fine = compare(float_lenet, coarse, x), compare(float_lenet, fine, x)
    for c, f in zip(rows_coarse, rows_fine):
        assert 0 < c["cosine"] < f["cosine"] <= 1 + 1e-9
        assert c["mean_error"] > f["mean_error"] > 0 and c["max_error"] >= c["mean_error"]
        assert c["kl"] > 0 and 0 <= c["clipped"] <= 1
    assert rows_coarse[-1]["format"] == "Q5.-3" and rows_fine[-1]["format"] == "Q5.2"
    assert rows_coarse[1]["format"].startswith("Q2.")  # the first ReLU's acti


def test_histogram_of_stored_output_and_parameter():
    layer = nn.Conv2d(1, 2, 3)
    layer.floatilize()
    handles = th.add_hook(layer, "conv", th.hook_handler)
    layer(np.random.default_rng(0).standard_normal((4, 1, 9, 9)).astype(np.float32))
    th.remove_hook(handles)
    counts, edges = histogram(layer)
    assert counts.shape == (100,) and edges.shape == (101,)
    assert counts.sum() == layer.hook_out.size
    assert edges[0] == pytest.approx(layer.hook_out.min()) and edges[-1] == pytest.approx(layer.hook_out.max())
    counts, edges = histogram(layer, "input", bins=10)
    assert counts.sum() == layer.hook_in.size and edges.shape == (11,)
    counts, edges = histogram(layer, "weight", bins=8)
    assert counts.sum() == layer.weight.size == 18
    layer.hook_out = layer.hook_out.copy()
    layer.hook_out.flat[:7] = [np.nan, np.inf, -np.inf, np.nan, 1e3, -1e3, 0.0]
    counts, edges = histogram(layer, bins=20)
    assert counts.sum() == layer.hook_out.size - 4 and (edges[0], edges[-1]) == (-1e3, 1e3)
    values = np.random.default_rng(1).uniform(0.01, 0.99, 1000)
    counts, edges = histogram(values, bins=7, range=(0.0, 1.0))
    expect, expect_edges = np.histogram(values, bins=7, range=(0.0, 1.0))
    np.testing.assert_array_equal(counts, expect)
    np.testing.assert_allclose(edges, expect_edges)
    with pytest.raises(ValueError, match="part"):
        histogram(nn.ReLU())


# --------------------------------------------------------------------------------------
# Entropy calibration against tqt 1.0.2 (tqt's results come from the background run)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in ENTROPY_CASES if n != "mnist_pixels"])
def test_entropy_compat_matches_tqt(tqt_entropy, name):
    x = tqt_entropy.data[name]
    _, bins, cali = ENTROPY_CASES[name]
    width = float(x.max() - x.min()) / bins
    q1, q2 = nn.ReLU(), nn.ReLU()
    ours = th.init_kl_j(stored(x), q1, "acti", bins, cali, compat=True)
    alias = th.entropy_calibration(stored(x), q2, bins, cali)
    assert alias == ours and q1.acti_log2_t[0] == q2.acti_log2_t[0] == np.float32(ours)
    expect = 2.0 ** tqt_entropy[name]
    assert abs(2.0 ** ours - expect) <= width, f"{name}: ours {2 ** ours:.6g}, tqt {expect:.6g}, bin {width:.3g}"
    if name == "uniform":  # nothing to gain by clipping a uniform distribution
        assert expect > float(x.max()) - width
    else:  # a real search: tqt's cut is neither the smallest allowed nor the maximum
        assert float(x.min()) + (cali + 2) * width < expect < float(x.max()) - width


def test_default_entropy_differs_from_tqt_on_discrete_pixels(tqt_entropy):
    """MNIST pixels take 256 values k/255, so 7 of every 8 of the 2048 bins are empty.  tqt adds
    1e-12 to every bin, and the candidate's empty bins then carry mass that the reference does
    not: its KL grows with the cut, and tqt settles near the smallest cut (128.5 bins = max/16),
    which clips almost every ink pixel.  The default search keeps empty bins empty and stays
    near 1."""
    x = tqt_entropy.data["mnist_pixels"]
    assert x.min() == 0 and x.max() == 1 and len(np.unique(x)) == 256
    width = 1.0 / BINS
    tqt_t = 2.0 ** tqt_entropy["mnist_pixels"]
    assert 128.5 * width <= tqt_t < 2 * 128.5 * width  # between max/16 and max/8
    compat = 2.0 ** th.init_kl_j(stored(x), nn.ReLU(), compat=True)
    assert abs(compat - tqt_t) <= width
    default = 2.0 ** th.init_kl_j(stored(x), nn.ReLU())
    assert 0.9 < default <= 1.0 + width
    share_clipped = lambda t: float(np.mean(x[x > 0] > t))
    assert share_clipped(tqt_t) > 0.9 and share_clipped(default) < 0.05


def test_symmetric_jeffreys_divergence():
    x = _relu_gaussian(np.random.default_rng(7))
    stats = th.Statistics(BINS, skip_zeros=True).update(x)
    best_kl, kl = _C.entropy_search(stats.hist, 128, False, False)
    best_j, jeffreys = _C.entropy_search(stats.hist, 128, True, False)
    assert kl.shape == jeffreys.shape == (BINS,)
    assert np.isnan(kl[:128]).all() and np.isnan(jeffreys[:128]).all()  # no cut below cali_number
    both = np.isfinite(kl) & np.isfinite(jeffreys)
    assert both[128:600].all()
    assert (kl[both] >= 0).all() and (jeffreys[both] >= kl[both] - 1e-12).all()  # KL(p||q) + KL(q||p)
    assert not np.allclose(jeffreys[both], kl[both], rtol=0.05)
    assert best_kl == np.nanargmin(kl) and best_j == np.nanargmin(jeffreys)
    q = nn.ReLU()
    log2_t = th.init_kl_j(stored(x), q, symmetric=True)
    width = float(x.max()) / BINS
    assert math.isfinite(log2_t) and 128 * width < 2.0 ** log2_t <= float(x.max())
    assert 2.0 ** log2_t == pytest.approx(stats.lo + (best_j + 0.5) * (stats.hi - stats.lo) / BINS, rel=1e-9)
    assert q.acti_log2_t[0] == np.float32(log2_t)
    # every cut from cali_number on is a candidate with a finite divergence
    assert np.isfinite(jeffreys[128:]).all(), f"NaN for cuts {np.flatnonzero(np.isnan(jeffreys[128:]))[[0, -1]] + 128}"
    assert np.isfinite(kl[128:]).all(), f"NaN for cuts {np.flatnonzero(np.isnan(kl[128:]))[[0, -1]] + 128}"


def test_smoothed_divergence_never_takes_the_log_of_a_negative_probability():
    """The default search smooths both distributions by giving each empty bin 1e-4 and taking
    1e-4 * zeros / nonzeros from every non-empty one.  A sparse tail has non-empty bins
    smaller than that: they go negative, log(p / q) is NaN, and every such cut silently drops
    out of the search.  For these exponential activations the KL of every cut from 1152 on is
    NaN (Jeffreys: from 1108), and the search picks 1095 (1076); with a smoothing that keeps
    probabilities positive (add 1e-4 to the empty bins, renormalise) both are smallest at
    cut 1279, which the search cannot reach now."""
    x = np.random.default_rng(7).exponential(1.0, 300_000).astype(np.float32)
    stats = th.Statistics(BINS, skip_zeros=True).update(x)
    for symmetric in (False, True):
        _, divergence = _C.entropy_search(stats.hist, 128, symmetric, False)
        nan = np.flatnonzero(np.isnan(divergence[128:])) + 128
        assert nan.size == 0, f"symmetric={symmetric}: {nan.size} NaN divergences, cuts {nan[0]}..{nan[-1]}"


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

def test_bad_input_names_the_argument():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    module, q = stored(x), nn.ReLU()
    net, qnet = small_twins(False)
    with pytest.raises(ValueError, match="method"):
        th.init_network(net, qnet, "net", acti_method="entropy")
    with pytest.raises(ValueError, match="method"):
        th.init_network(net, qnet, "net", weight_method="mean")
    with pytest.raises(ValueError, match="method"):
        th.calibrate(net, qnet, [], bias_method="kl_x")
    with pytest.raises(ValueError, match="method"):
        th.Statistics().update(x).threshold("minmax")
    with pytest.raises(ValueError, match="cali_number"):
        th.init_kl_j(module, q, bin_number=128, cali_number=128)
    with pytest.raises(ValueError, match="cali_number"):
        th.init_kl_j(module, q, cali_number=0)
    for bins in (2047, 1, 0, 2048.0, True):
        with pytest.raises(ValueError, match="bin_number"):
            th.init_kl_j(module, q, bin_number=bins)
    with pytest.raises(ValueError, match="bin_number"):
        th.Statistics(33)
    with pytest.raises(ValueError, match="hook_out"):
        th.init_max(nn.ReLU(), q, "acti")
    with pytest.raises(ValueError, match="hook_in"):
        th.init_3sd(nn.ReLU(), q, "input")
    with pytest.raises(ValueError, match="part"):
        th.init_max(nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1), "gradient")
    with pytest.raises(ValueError, match="part"):
        th.init_max(module, q, "weight")  # a ReLU has no weight threshold
    with pytest.raises(TypeError, match="qmodule"):
        th.init_max(module, nn.MaxPool2d(2), "acti")
    assert q.acti_log2_t[0] == 0.0  # untouched by the failures: all - dec of the default format
    # mismatched structures: different children, and a different layer at the same place
    with pytest.raises(ValueError, match="net"):
        th.init_network(nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Linear(2, 2), nn.ReLU()), "net")
    with pytest.raises(ValueError, match="net.1"):
        th.init_network(nn.Sequential(nn.ReLU(), nn.Sequential(nn.Linear(2, 2))),
                        nn.Sequential(nn.ReLU(), nn.Sequential(nn.Linear(2, 2), nn.ReLU())), "net")


def test_init_network_rejects_a_different_layer_at_the_same_place():
    """Same children names, different layers: the Linear's weights must not set the Conv2d's
    thresholds."""
    net, qnet = nn.Sequential(nn.Linear(4, 3)), nn.Sequential(nn.Conv2d(4, 3, 1))
    with pytest.raises((TypeError, ValueError), match="net.0"):
        th.init_network(net, qnet, "net", acti_method="max")
