"""Pooling: the _C kernels against a NumPy twin, the modules against torch.nn, bad input."""
import itertools
import math

import numpy as np
import pytest

import wageubn
from wageubn import _C
from wageubn.function.pooling import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d

MAX = {1: MaxPool1d, 2: MaxPool2d, 3: MaxPool3d}
AVG = {1: AvgPool1d, 2: AvgPool2d, 3: AvgPool3d}
ALL = [MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d]


# --------------------------------------------------------------------------------------
# NumPy twin: loops over output positions, vectorized over planes, torch's window rules.
# --------------------------------------------------------------------------------------

def out_size(n, k, p, s, d, ceil_mode):
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    return o - 1 if ceil_mode and (o - 1) * s >= n + p else o


def np_pool(x, k, s, p, d, ceil_mode, mode, count_include_pad=True, divisor=None):
    """(planes, D, H, W) -> (float32 out, int64 flat indices or None), as torch computes them."""
    x = np.asarray(x).astype(np.float32).astype(np.float64)
    sizes = x.shape[1:]
    osz = [out_size(*a, ceil_mode) for a in zip(sizes, k, p, s, d)]
    out = np.zeros((x.shape[0], *osz))
    idx = np.zeros((x.shape[0], *osz), np.int64)
    flat = x.reshape(x.shape[0], -1)
    for o in itertools.product(*map(range, osz)):
        starts = [oi * si - pi for oi, si, pi in zip(o, s, p)]
        if mode == "max":
            taps = [[st + j * di for j in range(ki)] for st, ki, di in zip(starts, k, d)]
            first = [next(t for t in ts if t >= 0) for ts in taps]
            m = np.full(x.shape[0], -np.inf)
            best = np.full(x.shape[0], np.ravel_multi_index(first, sizes, mode="wrap"))
            for z, y, w in itertools.product(*[[t for t in ts if 0 <= t < n] for ts, n in zip(taps, sizes)]):
                i = np.ravel_multi_index((z, y, w), sizes)
                v = flat[:, i]
                take = (v > m) | np.isnan(v)
                m, best = np.where(take, v, m), np.where(take, i, best)
            out[(slice(None), *o)], idx[(slice(None), *o)] = m, best
        else:
            ends = [min(st + ki, n + pi) for st, ki, n, pi in zip(starts, k, sizes, p)]
            padded = math.prod(e - b for b, e in zip(starts, ends))
            lo = [max(b, 0) for b in starts]
            hi = [min(e, n) for e, n in zip(ends, sizes)]
            window = x[(slice(None), *[slice(a, b) for a, b in zip(lo, hi)])]
            total = window.reshape(x.shape[0], -1).sum(axis=1)
            count = divisor or (padded if count_include_pad else math.prod(b - a for a, b in zip(lo, hi)))
            out[(slice(None), *o)] = total / count if all(a < b for a, b in zip(lo, hi)) else 0.0
    return out.astype(np.float32), (idx if mode == "max" else None)


def random_window(rng, dims, mode):
    """kernel, stride, padding, dilation (each `dims` long) and a fitting spatial size."""
    k = rng.integers(1, 5, dims)
    s = rng.integers(1, 4, dims)
    d = rng.integers(1, 4, dims) if mode == "max" else np.ones(dims, int)
    p = np.array([rng.integers(0, ki // 2 + 1) for ki in k])
    eff = d * (k - 1) + 1
    size = [int(rng.integers(max(1, e - 2 * pi), e + 7)) for e, pi in zip(eff, p)]
    return [tuple(int(v) for v in a) for a in (k, s, p, d)] + [tuple(size)]


def three(t, fill):
    return (fill,) * (3 - len(t)) + tuple(t)


# --------------------------------------------------------------------------------------
# (a) kernels and modules against the twin
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_kernel_matches_twin(seed, mode):
    rng = np.random.default_rng(seed)
    dims = int(rng.integers(1, 4))
    k, s, p, d, size = random_window(rng, dims, mode)
    ceil_mode = bool(rng.integers(2))
    k3, s3, p3, d3, size3 = three(k, 1), three(s, 1), three(p, 0), three(d, 1), three(size, 1)
    x = rng.standard_normal((int(rng.integers(1, 5)), *size3)).astype(np.float32)
    if seed % 3 == 0:  # NaN and -inf entries
        x[rng.random(x.shape) < 0.15] = np.nan
        x[rng.random(x.shape) < 0.15] = -np.inf
    before = x.copy()
    if mode == "max":
        out, idx = _C.maxpool(x, k3, s3, p3, d3, ceil_mode=ceil_mode, return_indices=True,
                              nthreads=int(rng.integers(1, 4)))
        want, want_idx = np_pool(x, k3, s3, p3, d3, ceil_mode, "max")
        np.testing.assert_array_equal(idx, want_idx)
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(_C.maxpool(x, k3, s3, p3, d3, ceil_mode=ceil_mode), out)
    else:
        cip = bool(rng.integers(2))
        div = int(rng.integers(1, 7)) if seed % 4 == 1 else 0
        out = _C.avgpool(x, k3, s3, p3, d3, ceil_mode=ceil_mode, count_include_pad=cip,
                         divisor_override=div, nthreads=int(rng.integers(1, 4)))
        want, _ = np_pool(x, k3, s3, p3, d3, ceil_mode, "avg", cip, div)
    assert out.dtype == np.float32 and out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(x, before)


def test_twin_sanity():
    # hand-checked values keep the twin itself honest
    x = np.array([[[[1.0, 5.0, 2.0, 0.0, 3.0]]]])
    out, idx = np_pool(x, (1, 1, 3), (1, 1, 2), (0, 0, 1), (1, 1, 1), False, "max")
    np.testing.assert_array_equal(out.ravel(), [5, 5, 3])
    np.testing.assert_array_equal(idx.ravel(), [1, 1, 4])
    avg, _ = np_pool(x, (1, 1, 2), (1, 1, 2), (0, 0, 1), (1, 1, 1), True, "avg", False)
    np.testing.assert_allclose(avg.ravel(), [1, 3.5, 1.5])  # windows [pad,1] [5,2] [0,3]
    avg, _ = np_pool(x, (1, 1, 2), (1, 1, 2), (0, 0, 1), (1, 1, 1), True, "avg", True)
    np.testing.assert_allclose(avg.ravel(), [0.5, 3.5, 1.5])


def test_max_nan_and_ties():
    x = np.array([[[[1.0, np.nan, 3.0, np.nan, 2.0, 2.0, -np.inf, -np.inf]]]], np.float32)
    out, idx = _C.maxpool(x, (1, 1, 4), (1, 1, 4), (0, 0, 0), (1, 1, 1), return_indices=True)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 3  # NaN wins; the last NaN, as torch
    assert out[0, 0, 0, 1] == 2.0 and idx[0, 0, 0, 1] == 4  # ties keep the first
    x = np.full((1, 1, 1, 4), -np.inf, np.float32)
    out, idx = _C.maxpool(x, (1, 1, 2), (1, 1, 2), (0, 0, 1), (1, 1, 1), return_indices=True)
    assert np.all(out == -np.inf)
    np.testing.assert_array_equal(idx.ravel(), [0, 1, 3])  # first in-range tap


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("view", ["flip", "transpose", "step", "negstep2d"])
def test_noncontiguous_inputs(mode, view, rng):
    base = rng.standard_normal((3, 2, 9, 11)).astype(np.float32)
    x = {"flip": base[..., ::-1], "transpose": base.swapaxes(-1, -2),
         "step": base[:, :, ::2, 1::3], "negstep2d": base[::-1, :, ::-2, ::-1]}[view]
    assert not x.flags.c_contiguous
    before = base.copy()
    m = {"max": MaxPool2d(3, stride=2, padding=1, return_indices=True),
         "avg": AvgPool2d(3, stride=2, padding=1, count_include_pad=False)}[mode]
    got, want = m(x), m(np.ascontiguousarray(x))
    got, want = (got, want) if mode == "max" else ((got, None), (want, None))
    np.testing.assert_array_equal(got[0], want[0])
    planes = np.ascontiguousarray(x).reshape(-1, 1, *x.shape[2:])
    ref, ref_idx = np_pool(planes, (1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1), False, mode, False)
    np.testing.assert_allclose(got[0], ref.reshape(got[0].shape), rtol=1e-6, atol=1e-6)
    if mode == "max":
        np.testing.assert_array_equal(got[1], ref_idx.reshape(got[1].shape))
    np.testing.assert_array_equal(base, before)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.uint8, np.bool_])
def test_other_dtypes(dtype, rng):
    x = (rng.standard_normal((2, 3, 7, 6)) * 50).astype(dtype)
    before = x.copy()
    out, idx = MaxPool2d(2, padding=1, return_indices=True)(x)
    assert out.dtype == np.float32 and idx.dtype == np.int64
    want, want_idx = np_pool(x.reshape(6, 1, 7, 6), (1, 2, 2), (1, 2, 2), (0, 1, 1), (1, 1, 1), False, "max")
    np.testing.assert_array_equal(out, want.reshape(out.shape))
    np.testing.assert_array_equal(idx, want_idx.reshape(idx.shape))
    avg = AvgPool2d(3, stride=2, ceil_mode=True)(x)
    want, _ = np_pool(x.reshape(6, 1, 7, 6), (1, 3, 3), (1, 2, 2), (0, 0, 0), (1, 1, 1), True, "avg")
    np.testing.assert_allclose(avg, want.reshape(avg.shape), rtol=1e-6)
    np.testing.assert_array_equal(x, before)


def test_lists_are_accepted():
    out = AvgPool1d(2)([[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(out, np.array([[1.5, 3.5], [5.5, 7.5]], np.float32))


@pytest.mark.parametrize("cls", ALL)
def test_empty_batch(cls):
    n = int(cls.__name__[-2])
    m = cls(2, ceil_mode=True) if cls.__name__.startswith("Avg") else cls(2, ceil_mode=True, return_indices=True)
    x = np.zeros((0, 3) + (5,) * n, np.float32)
    got = m(x)
    out, idx = got if isinstance(got, tuple) else (got, None)
    assert out.shape == (0, 3) + (3,) * n and out.dtype == np.float32
    if idx is not None:
        assert idx.shape == out.shape and idx.dtype == np.int64


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_modules_match_twin_and_keep_rank(dims, rng):
    for trial in range(6):
        for mode, classes in (("max", MAX), ("avg", AVG)):
            k, s, p, d, size = random_window(rng, dims, mode)
            ceil_mode = bool(trial % 2)
            batched = trial < 3
            lead = (2, 3) if batched else (3,)
            x = rng.standard_normal(lead + size)
            if mode == "max":
                m = classes[dims](k, s, p, d, return_indices=True, ceil_mode=ceil_mode)
                out, idx = m(x)
            else:
                kw = {} if dims == 1 else {"divisor_override": 3 if trial == 4 else None}
                m = classes[dims](k, s, p, ceil_mode, trial % 3 != 0, **kw)
                out = m(x)
            assert out.ndim == x.ndim and out.shape[:len(lead)] == lead
            planes = x.reshape((-1,) + (1,) * (3 - dims) + size)
            want, want_idx = np_pool(planes, three(k, 1), three(s, 1), three(p, 0), three(d, 1), ceil_mode,
                                     mode, trial % 3 != 0, 3 if (trial == 4 and dims > 1) else None)
            np.testing.assert_allclose(out, want.reshape(out.shape), rtol=1e-6, atol=1e-6)
            if mode == "max":
                np.testing.assert_array_equal(idx, want_idx.reshape(out.shape))


def test_negative_divisor_override():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    np.testing.assert_array_equal(AvgPool2d(2, divisor_override=-2)(x), -AvgPool2d(2, divisor_override=2)(x))
    assert AvgPool2d(2, divisor_override=-2)(x)[0, 0, 0] == -(0 + 1 + 4 + 5) / 2


def test_attributes_are_read_at_call_time():
    m = MaxPool2d(2)
    x = np.random.default_rng(0).standard_normal((1, 6, 6))
    assert m(x).shape == (1, 3, 3)
    m.kernel_size, m.stride = 3, 1
    assert m(x).shape == (1, 4, 4)
    m.return_indices = True
    assert isinstance(m(x), tuple)
    m.padding = 2
    with pytest.raises(ValueError, match="padding"):
        m(x)


def test_threads_do_not_change_results(rng):
    x = rng.standard_normal((4, 8, 70, 70)).astype(np.float32)  # > 16384 outputs: parallel path
    old = wageubn.get_num_threads()
    try:
        results = []
        for n in (1, 4):
            wageubn.set_num_threads(n)
            results.append((MaxPool2d(3, 1, 1, return_indices=True)(x), AvgPool2d(3, 1, 1)(x)))
    finally:
        wageubn.set_num_threads(old)
    (m1, i1), a1 = results[0]
    (m4, i4), a4 = results[1]
    np.testing.assert_array_equal(m1, m4)
    np.testing.assert_array_equal(i1, i4)
    np.testing.assert_array_equal(a1, a4)


def test_hooks_run_through_call():
    m = AvgPool1d(2)
    seen = []
    m.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    m(np.zeros((1, 2, 8)))
    assert seen == [(1, 2, 4)]


# --------------------------------------------------------------------------------------
# (b) parity with torch.nn
# --------------------------------------------------------------------------------------

def _maybe_tuple(rng, t):
    return t[0] if len(set(t)) == 1 and rng.integers(2) else (list(t) if rng.integers(3) == 0 else t)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("name", [c.__name__ for c in ALL])
def test_torch_parity(torch, name, seed):
    rng = np.random.default_rng(1000 * seed + len(name))
    cls = globals()[name]
    tcls = getattr(torch.nn, name)
    dims, mode = int(name[-2]), name[:3].lower()
    k, s, p, d, size = random_window(rng, dims, mode)
    ceil_mode = bool(rng.integers(2))
    args = [_maybe_tuple(rng, k), None if seed % 4 == 0 else _maybe_tuple(rng, s), _maybe_tuple(rng, p)]
    if mode == "max":
        args += [_maybe_tuple(rng, d), True, ceil_mode]
    else:
        args += [ceil_mode, bool(rng.integers(2))]
        if dims > 1:
            args.append([None, None, 1, 5, -3][seed % 5])
    ours, theirs = cls(*args), tcls(*args)
    assert repr(ours) == repr(theirs)
    for attr in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
                 "count_include_pad", "divisor_override"):
        assert getattr(ours, attr, "absent") == getattr(theirs, attr, "absent"), attr
    lead = [(int(rng.integers(1, 3)), int(rng.integers(1, 4))), (int(rng.integers(1, 4)),), (0, 2)][seed % 3]
    x = rng.standard_normal(lead + size).astype(np.float32)
    if mode == "max" and seed % 2:
        x[rng.random(x.shape) < 0.1] = np.nan
        x[rng.random(x.shape) < 0.1] = -np.inf
    got = ours(x)
    want = theirs(torch.from_numpy(x))
    if mode == "max":
        (got, got_idx), (want, want_idx) = got, want
        np.testing.assert_array_equal(got_idx, want_idx.numpy())
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ALL)
def test_torch_parity_repr_defaults(torch, cls):
    for args in [(3,), (2, 1), ((1, 2, 3)[: int(cls.__name__[-2])], None, 0)]:
        assert repr(cls(*args)) == repr(getattr(torch.nn, cls.__name__)(*args))


@pytest.mark.parametrize("cls", ALL)
def test_torch_parity_rejects_same_windows(torch, cls):
    dims = int(cls.__name__[-2])
    tcls = getattr(torch.nn, cls.__name__)
    x = np.zeros((1, 2) + (4,) * dims, np.float32)
    for kwargs in ({"kernel_size": 2, "padding": 2}, {"kernel_size": 5}, {"kernel_size": 2, "stride": 0}):
        with pytest.raises(RuntimeError):
            tcls(**kwargs)(torch.from_numpy(x))
        with pytest.raises(ValueError):
            cls(**kwargs)(x)
    if cls.__name__.startswith("Max"):  # torch bounds padding by kernel_size even when dilated
        with pytest.raises(RuntimeError):
            tcls(2, padding=2, dilation=4)(torch.from_numpy(x))
        with pytest.raises(ValueError, match="padding"):
            cls(2, padding=2, dilation=4)


# --------------------------------------------------------------------------------------
# (c) bad input
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL)
def test_wrong_rank(cls):
    dims = int(cls.__name__[-2])
    m = cls(1)
    for shape in [(4,) * dims, (1,) * (dims + 3)]:
        with pytest.raises(ValueError, match=r"input.*got shape \(" + ", ".join(map(str, shape))):
            m(np.zeros(shape))


@pytest.mark.parametrize("cls", ALL)
def test_zero_sized_non_batch_dims(cls):
    dims = int(cls.__name__[-2])
    for shape in [(2, 0) + (4,) * dims, (2, 3, 0) + (4,) * (dims - 1), (0,) + (4,) * dims]:
        with pytest.raises(ValueError, match="input"):
            cls(1)(np.zeros(shape))


@pytest.mark.parametrize("cls", ALL)
def test_bad_window_arguments(cls):
    with pytest.raises(ValueError, match="padding"):
        cls(3, padding=2)
    with pytest.raises(ValueError, match="padding"):
        cls(3, padding=-1)
    with pytest.raises(ValueError, match="stride"):
        cls(3, stride=0)
    with pytest.raises(ValueError, match="kernel_size"):
        cls(0)
    for bad in (2.5, "3", None, True, (2, 2, 2, 2)):
        with pytest.raises(TypeError, match="kernel_size"):
            cls(bad)
    with pytest.raises(TypeError, match="stride"):
        cls(2, stride=1.0)
    if cls.__name__.startswith("Max"):
        with pytest.raises(ValueError, match="dilation"):
            cls(2, dilation=0)
    m = cls(2)
    m.kernel_size = 1.5  # changed after construction: caught on call
    with pytest.raises(TypeError, match="kernel_size"):
        m(np.zeros((1,) * (int(cls.__name__[-2]) + 1)))


@pytest.mark.parametrize("cls", ALL)
def test_kernel_larger_than_input(cls):
    dims = int(cls.__name__[-2])
    with pytest.raises(ValueError, match="input"):
        cls(5)(np.zeros((1, 2) + (4,) * dims))


@pytest.mark.parametrize("cls", [AvgPool2d, AvgPool3d])
def test_bad_divisor_override(cls):
    with pytest.raises(ValueError, match="divisor_override"):
        cls(2, divisor_override=0)
    with pytest.raises(TypeError, match="divisor_override"):
        cls(2, divisor_override=1.5)


@pytest.mark.parametrize("cls", ALL)
def test_non_numeric_input(cls):
    dims = int(cls.__name__[-2])
    shape = (1, 2) + (3,) * dims
    for bad in (np.zeros(shape, np.complex64), np.zeros(shape, object), np.full(shape, "a"), "abc"):
        with pytest.raises(TypeError, match="input"):
            cls(1)(bad)


def test_kernel_entry_points_validate():
    x = np.zeros((1, 1, 4, 4), np.float32)
    ones, zeros = (1, 1, 1), (0, 0, 0)
    with pytest.raises(ValueError, match="input"):
        _C.maxpool(np.zeros((4, 4)), ones, ones, zeros, ones)
    with pytest.raises(ValueError, match="padding"):
        _C.avgpool(x, (1, 2, 2), ones, (0, 2, 2), ones)
    with pytest.raises(ValueError, match="stride"):
        _C.maxpool(x, (1, 2, 2), (1, 0, 1), zeros, ones)
    with pytest.raises(ValueError, match="padding"):
        _C.maxpool(x, (1, 2, 2), ones, (0, -1, 0), ones)
    with pytest.raises(TypeError, match="kernel_size"):
        _C.maxpool(x, (1, 2.0, 2), ones, zeros, ones)
    with pytest.raises(TypeError, match="kernel_size"):
        _C.maxpool(x, (1, 2), ones, zeros, ones)
    with pytest.raises(ValueError, match="input"):
        _C.maxpool(x, (1, 5, 5), ones, zeros, ones)
    with pytest.raises(TypeError, match="input"):
        _C.avgpool(x.astype(np.complex64), ones, ones, zeros, ones)
    with pytest.raises(ValueError, match="divisor_override"):
        _C.avgpool(x, ones, ones, zeros, ones, divisor_override=-1)
