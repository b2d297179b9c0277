"""Reliability: regression tests for crashes and undefined behaviour found by the fuzzer and
the sanitizers, leaks, threads (results and the released GIL), argument errors that name the
argument, and what happens when a value exceeds its format.  See docs/reliability.md.

Tests whose failure could kill or poison the interpreter (a use-after-free, undefined
behaviour that UBSan aborts on, a libgomp abort) run their code in a child interpreter with
the same environment, so under .ci/sanitize.sh the child carries the instrumented build.
"""
import gc
import math
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import wageubn
import wageubn.config as cfg
import wageubn.function as nn
from wageubn import _C
from wageubn.function import number as N

REPO = os.path.dirname(os.path.dirname(os.path.abspath(wageubn.__file__)))
UNDER_SANITIZER = "asan" in os.environ.get("LD_PRELOAD", "") or bool(os.environ.get("WAGEUBN_UNDER_SANITIZER"))
F32 = np.float32


def run_isolated(code: str, timeout: float = 120):
    """Run ``code`` in a child interpreter importing this checkout of wageubn; (returncode, stdout, stderr)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def assert_clean_exit(result, expect_in_stdout: str):
    rc, out, err = result
    assert rc == 0, f"child exited with {rc} (negative: killed by signal {-rc})\nstdout:\n{out}\nstderr:\n{err[-3000:]}"
    assert expect_in_stdout in out, (out, err[-3000:])


# ======================================================================================
# Regression tests: one per bug found (they fail until the bug is fixed)
# ======================================================================================

def test_int_sequence_error_does_not_read_the_freed_item():
    """binding.c parse_ints: on a non-int item it released the sequence (the only owner of the
    items when the argument was a generator or any non-tuple/list) and then read the freed
    item's type for the message: a use-after-free (found by the fuzzer as a segfault).
    Here the item's __del__ renames its class, so reading it after the release shows."""
    code = """
        import numpy as np, wageubn._C as C

        class Item:
            def __del__(self):
                type(self).__name__ = "FREED"

        def stride():
            yield Item(); yield 1; yield 1

        x = np.zeros((1, 1, 1, 1), np.float32)
        try:
            C.maxpool(x, (1, 1, 1), stride(), (0, 0, 0), (1, 1, 1))
        except TypeError as e:
            print("message:", e)
    """
    assert_clean_exit(run_isolated(code), "item 0 is Item")


@pytest.mark.parametrize("nthreads", [100_000, 2**31 - 1])
def test_huge_thread_count_does_not_kill_the_process(nthreads):
    """check_threads only rejects nthreads < 1: 100000 threads segfault inside libgomp and
    2**31-1 makes libgomp exit(1) ("Out of memory allocating ...").  The public path is
    wageubn.set_num_threads(n) followed by any layer.  Expected: a ValueError naming nthreads
    (or n), or a correct result."""
    code = f"""
        import numpy as np, wageubn, wageubn._C as C, wageubn.function as nn
        x = np.linspace(-1, 1, 200_000, dtype=np.float32)
        try:
            out = C.clamp(x, 0.0, 1.0, None, None, False, {nthreads})
            assert np.array_equal(out, np.clip(x, 0, 1))
        except ValueError as e:
            assert "nthreads" in str(e), e
        try:
            wageubn.set_num_threads({nthreads})
            out = nn.ReLU()(x)
        except ValueError as e:
            assert "n" in str(e), e
        print("survived")
    """
    assert_clean_exit(run_isolated(code), "survived")


def test_format_none_with_extreme_widths_is_defined():
    """parse_format passes the widths of kind 0 (no quantization) unchecked to
    wg_format_make, whose dec - 1 overflows int for dec = INT_MIN (undefined behaviour,
    reported by UBSan under .ci/sanitize.sh; invisible in the normal build, where CPython's
    -fwrapv makes it wrap).  Kind 0 must ignore its widths."""
    code = """
        import numpy as np, wageubn._C as C
        x = np.array([0.3, -1.5, np.inf], np.float32)
        for fmt in [(0, -2**31, 1), (0, 2**31 - 1, -2**31), (0, 1, -2**31)]:
            assert np.array_equal(C.quantize(x, fmt), x), fmt
            assert np.array_equal(C.clamp(x, -9.0, 9.0, fmt, fmt), np.clip(x, -9, 9)), fmt
        print("defined")
    """
    assert_clean_exit(run_isolated(code), "defined")


def test_inplace_relu_on_non_native_byte_order():
    """py_clamp's inplace path converts with PyArray_FromArray(x, NULL, ...), which keeps a
    byte-swapped float32 array as it is: the kernel then reads big-endian floats as native
    ones and writes garbage (ReLU(inplace=True) of [-1, 0.3, 2] as '>f4' gave [0, 0, 0])."""
    x = np.array([-1.0, 0.3, 2.0], ">f4")
    try:
        out = nn.ReLU(inplace=True)(x)
    except TypeError as e:  # refusing it is fine too
        assert "inplace" in str(e)
        return
    assert out.base is x  # a Tensor view of the very input written in place
    np.testing.assert_array_equal(x, [0.0, 0.296875, 2.0])
    y = np.array([-1.0, 0.3, 7.0], ">f4")
    _C.clamp(y, 0.0, 6.0, None, None, True, 1)
    np.testing.assert_array_equal(y, np.array([0.0, 0.3, 6.0], F32))


def test_histogram_of_a_range_narrower_than_its_bins():
    """wg_histogram computes (v - lo) * (bins / (hi - lo)); when hi - lo is so small that the
    scale is inf, it converts inf or NaN to int64 (undefined behaviour; in practice
    INT64_MIN, whose counts[] index wraps to 0): x == hi lands in bin 0 instead of the last."""
    code = """
        import numpy as np, wageubn._C as C
        x = np.array([0.0], np.float32)
        assert C.histogram(x, 4, -1e-310, 0.0).tolist() == [0, 0, 0, 1], C.histogram(x, 4, -1e-310, 0.0)
        assert C.histogram(x, 4, 0.0, 1e-310).tolist() == [1, 0, 0, 0]
        print("binned")
    """
    assert_clean_exit(run_isolated(code), "binned")


def test_maxpool_with_huge_padding_takes_no_time():
    """pool.c first_tap steps a window start below zero up one dilation at a time: a kernel of
    2**33 with padding 2**32 (accepted: padding <= kernel / 2) loops 2**32 times per output
    (~3 s here; kernel_size=2**40 takes minutes, with the GIL released but uninterruptible).
    Fix: start < 0 ? start + ((-start + dil - 1) / dil) * dil : start."""
    x = np.ones((1, 1, 1, 1), F32)
    t = time.perf_counter()
    out = _C.maxpool(x, (1, 1, 2**33), (1, 1, 1), (0, 0, 2**32), (1, 1, 1))
    elapsed = time.perf_counter() - t
    assert out.shape == (1, 1, 1, 2) and (out == 1).all()
    assert elapsed < 0.25, f"maxpool took {elapsed:.2f} s for a 1-element input"


# ======================================================================================
# Leaks: tracemalloc (Python objects, NumPy data) and the process RSS (C buffers)
# ======================================================================================

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


def _raises(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError, OverflowError, MemoryError):
        return
    raise AssertionError(f"{getattr(fn, '__name__', fn)} accepted bad arguments")


X1 = _x(4096)
IMG = _x(2, 4, 32, 32)
W3 = _x(8, 4, 3, 3)
HIST = np.abs(_x(512)) * 100

C_CALLS = {
    # name: (good call, bad calls); the good calls make C buffers of >= 64 KiB where the kernel allocates
    "quantize": (lambda: _C.quantize(X1, (2, 8, 8)),
                 [lambda: _raises(_C.quantize, X1, (7, 8, 8)), lambda: _raises(_C.quantize, "x", None),
                  lambda: _raises(_C.quantize, X1, (1, 9999, 8))]),
    "sround": (lambda: _C.sround(X1, seed=3), [lambda: _raises(_C.sround, np.array([1j]), seed=3)]),
    "shiftquant": (lambda: _C.shiftquant(X1, 8), [lambda: _raises(_C.shiftquant, X1, 0)]),
    "constquant": (lambda: _C.constquant(X1, 8, 8, seed=1), [lambda: _raises(_C.constquant, X1, 8, 0)]),
    "errorquant": (lambda: _C.errorquant(X1, 8), [lambda: _raises(_C.errorquant, [object()], 8)]),
    "clamp": (lambda: (_C.clamp(X1, 0.0, 6.0, (1, 8, 8), (2, 8, 8), False, 2),
                       _C.clamp(X1.copy()[::2], 0.0, 6.0, None, None, True, 1)),
              [lambda: _raises(_C.clamp, [1.0], 0.0, 1.0, None, None, True, 1),
               lambda: _raises(_C.clamp, X1, 0.0, 1.0, "fmt")]),
    "conv2d": (lambda: (_C.conv2d(IMG, W3, np.ones(8), (1, 1), (1, 1, 1, 1), (1, 1), 1, (2, 8, 12), True, 2),
                        _C.conv2d(IMG, W3[:, :2], None, (2, 1), (0, 0, 1, 1), (1, 2), 2, None, False, 1),
                        _C.conv2d(IMG, W3, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, False, 2, (2, 6, 8)),
                        _C.conv2d(IMG, W3, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, False, 2, (1, 6, 8))),
               [lambda: _raises(_C.conv2d, IMG, W3, np.ones(3), (1, 1), (0, 0, 0, 0), (1, 1), 1, None, False, 1),
                lambda: _raises(_C.conv2d, IMG, W3, None, (1, 1), (0, 0, 0), (1, 1), 1, None, False, 1),
                lambda: _raises(_C.conv2d, IMG, W3, None, (1, 1), (0, 0, 0, 0), (1, 1), 3, None, False, 1)]),
    "adder2d": (lambda: (_C.adder2d(IMG, W3, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, (1, 8, 8), True, 2),
                         _C.adder2d(IMG, W3, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, True, 1, (2, 6, 8))),
                [lambda: _raises(_C.adder2d, IMG, W3, None, (1, 1), (0, 0, 0, 0), (1, 1), 2, None, False, 1)]),
    "linear": (lambda: _C.linear(_x(16, 128), _x(128, 128), _x(128), (2, 8, 12), True, 2),
               [lambda: _raises(_C.linear, _x(16, 128), _x(128, 64), None, None, False, 1)]),
    "batchnorm": (lambda: (_C.batchnorm(IMG, _x(4), np.ones(4, F32), _x(4), _x(4), 1e-5, (1, 8, 8), 2),
                           _C.batchnorm(IMG, _x(4), np.ones(4, F32), None, None, 1e-5, None, 1, 0.0, 6.0,
                                        (2, 8, 8))),
                  [lambda: _raises(_C.batchnorm, IMG, _x(3), np.ones(4, F32))]),
    "batchnorm_stats": (lambda: _C.batchnorm_stats(IMG, 2), [lambda: _raises(_C.batchnorm_stats, X1)]),
    "maxpool": (lambda: _C.maxpool(IMG, (1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 2), ceil_mode=True,
                                   return_indices=True, nthreads=2),
                [lambda: _raises(_C.maxpool, IMG, (1, 2, 2), (1, 1, 1), (0, 0, 3), (1, 1, 1))]),
    "avgpool": (lambda: _C.avgpool(IMG, (1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1), count_include_pad=False,
                                   divisor_override=3, nthreads=2),
                [lambda: _raises(_C.avgpool, IMG, (1, 2, 2), (1, 1, 1), (0, 0, 0), (1, 2, 1))]),
    "moments": (lambda: _C.moments(X1), [lambda: _raises(_C.moments, np.array(["a"]))]),
    "simd_available": (lambda: _C.simd_available(), [lambda: _raises(_C.simd_available, 1)]),
    "int8_available": (lambda: _C.int8_available(), [lambda: _raises(_C.int8_available, 1)]),
    "same": (lambda: (_C.same(X1, X1), _C.same(X1, X1[::2]), _C.same(IMG, IMG.astype(np.float64))),
             [lambda: _raises(_C.same, X1, "b")]),
    "histogram": (lambda: _C.histogram(X1, 64, -2.0, 2.0), [lambda: _raises(_C.histogram, X1, 0, 0.0, 1.0)]),
    "entropy_search": (lambda: _C.entropy_search(HIST, 16), [lambda: _raises(_C.entropy_search, HIST, 0)]),
}

_conv = nn.Conv2d(4, 8, 3, padding=1)
_conv_strict = nn.Conv2d(4, 8, 3, padding=1, iostrict=True)
_bn, _lin, _add = nn.BatchNorm2d(4), nn.Linear(128, 64), nn.Adder2d(4, 4, 3)
PY_CALLS = {
    "quantizers": (lambda: (N.directquant(X1, 8), N.alldirectquant(X1, 8, 8), N.weightquant(X1, 8),
                            N.shiftquant(X1, 8), N.constquant(X1, 8, 8, seed=1), N.errorquant(X1, 8),
                            N.sround(X1, seed=2), N.gradquant(X1, 8, 8, seed=1)),
                   [lambda: _raises(N.directquant, X1, 600), lambda: _raises(N.sround, "x"),
                    lambda: _raises(N.constquant, X1, 0, 8)]),
    "conv": (lambda: (_conv(IMG), _conv_strict(IMG)), [lambda: _raises(_conv, X1)]),
    "linear": (lambda: _lin(_x(16, 128)), [lambda: _raises(_lin, _x(3, 5))]),
    "batchnorm": (lambda: _bn(IMG), [lambda: _raises(_bn, _x(2, 3, 4, 4))]),
    "adder": (lambda: _add(IMG), [lambda: _raises(_add, _x(1, 4, 1, 1))]),
    "activations": (lambda: (nn.ReLU()(X1), nn.ReLU6(iostrict=True)(X1), nn.ReLU(inplace=True)(X1.copy())),
                    [lambda: _raises(nn.ReLU(), np.array([1j]))]),
    "pools": (lambda: (nn.MaxPool2d(3, 2, 1, return_indices=True)(IMG), nn.AvgPool3d(2)(IMG), nn.AvgPool1d(3)(X1[None])),
              [lambda: _raises(nn.MaxPool2d(2), np.zeros((1, 0, 3, 3)))]),
    "config": (lambda: cfg.network_config(nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU()), "n", cfg.Config(acti=4)),
               [lambda: _raises(cfg.Config, acti=600)]),
}


def _leak_check(good, bads, n):
    """After 2n traced warm-up calls (NumPy and CPython fill bounded caches, more of them
    with PYTHONMALLOC=malloc under the sanitizers), n more calls must not grow the traced
    memory by 24 KiB (a leak of a small object per call) nor the RSS by 8 MiB (the good
    calls allocate >= 64 KiB C buffers)."""
    def once():
        good()
        for bad in bads:
            bad()

    if UNDER_SANITIZER:
        # 5-10x slower there, and NumPy's bounded caches fill more slowly with PYTHONMALLOC=malloc:
        # a run of the same paths for ASan to watch; the normal run measures
        for _ in range(max(20, n // 8)):
            once()
        return
    for _ in range(20):
        once()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(2 * n):
            once()
        gc.collect()
        traced0, rss0 = tracemalloc.get_traced_memory()[0], rss_bytes()
        for _ in range(n):
            once()
        gc.collect()
        traced1, rss1 = tracemalloc.get_traced_memory()[0], rss_bytes()
    finally:
        tracemalloc.stop()
    assert traced1 - traced0 < 24 * 1024, f"traced Python memory grew by {traced1 - traced0} bytes in {n} calls"
    assert rss1 - rss0 < 8 * 2**20, f"RSS grew by {(rss1 - rss0) / 2**20:.1f} MiB in {n} calls"


@pytest.mark.parametrize("name", sorted(C_CALLS))
def test_c_entry_points_do_not_leak(name):
    good, bads = C_CALLS[name]
    _leak_check(good, bads, 400 if name in ("conv2d", "adder2d", "linear", "entropy_search") else 2000)


def test_every_c_entry_point_is_leak_tested():
    exported = {n for n in dir(_C) if not n.startswith("_") and callable(getattr(_C, n))}
    assert exported <= set(C_CALLS), f"add leak cases for {sorted(exported - set(C_CALLS))}"


@pytest.mark.parametrize("name", sorted(PY_CALLS))
def test_public_api_does_not_leak(name):
    good, bads = PY_CALLS[name]
    _leak_check(good, bads, 400)


# ======================================================================================
# Threads
# ======================================================================================

@pytest.fixture
def threads():
    old = wageubn.get_num_threads()
    yield
    wageubn.set_num_threads(old)


def small_net(seed):
    wageubn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, iostrict=True), nn.ReLU6(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 3 * 3, 10))


def _run_threads(jobs):
    """Run callables concurrently, starting together; re-raise the first error."""
    barrier = threading.Barrier(len(jobs))
    results, errors = [None] * len(jobs), []

    def work(i):
        try:
            barrier.wait()
            results[i] = jobs[i]()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("kernel_threads", [1, 2])
def test_threads_on_one_network_give_single_threaded_results(threads, kernel_threads):
    wageubn.set_num_threads(kernel_threads)
    net = small_net(0)
    xs = [_x(4, 3, 16, 16, seed=s) for s in range(4)]
    want = [net(x) for x in xs]
    outs = _run_threads([lambda x=x: [net(x) for _ in range(5)] for x in xs])
    for got, w in zip(outs, want):
        for g in got:
            np.testing.assert_array_equal(g, w)


def test_threads_on_different_networks_give_single_threaded_results(threads):
    wageubn.set_num_threads(2)
    nets = [small_net(s) for s in range(4)]
    x = _x(4, 3, 16, 16, seed=9)
    want = [net(x) for net in nets]
    outs = _run_threads([lambda net=net: [net(x) for _ in range(5)] for net in nets])
    for got, w in zip(outs, want):
        for g in got:
            np.testing.assert_array_equal(g, w)


def test_kernels_release_the_gil(threads):
    """Two threads, each running its own network, finish in clearly less than twice the time
    of one thread running one: the kernels run without the GIL (2 cores here)."""
    if (os.cpu_count() or 1) < 2 or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs")
    if UNDER_SANITIZER:  # ASan maps and poisons every large buffer: the kernel serializes that
        pytest.skip("a timing test: meaningless under the sanitizers")
    wageubn.set_num_threads(1)  # each kernel single-threaded
    nets = [nn.Conv2d(32, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)]
    x = _x(2, 32, 48, 48)
    nets[0](x)
    t = time.perf_counter()
    nets[0](x)
    reps = max(1, min(60, int(0.4 / max(time.perf_counter() - t, 1e-4))))

    def job(net):
        return lambda: [net(x) for _ in range(reps)]

    ratios = []
    for _ in range(5):  # best of five: the machine may be busy for a moment
        t = time.perf_counter()
        _run_threads([job(nets[0])])
        one = time.perf_counter() - t
        t = time.perf_counter()
        _run_threads([job(nets[0]), job(nets[1])])
        two = time.perf_counter() - t
        ratios.append(two / one)
        if ratios[-1] < 1.6:
            break
    assert min(ratios) < 1.6, f"two threads took {min(ratios):.2f}x the time of one"


# ======================================================================================
# Errors name the argument
# ======================================================================================

x4 = np.ones((1, 2, 6, 6), F32)


def _bn_float_train(**kw):
    bn = nn.BatchNorm2d(2, **kw)
    bn.floatilize()
    bn.train()
    return bn(x4)


PUBLIC_ERRORS = [
    # (id, call, exception type(s), regex the message must match)
    ("directquant.k", lambda: N.directquant([1.0], "8"), TypeError, r"^k: "),
    ("alldirectquant.kall", lambda: N.alldirectquant([1.0], 8, 0), ValueError, r"^kall: "),
    ("weightquant.k", lambda: N.weightquant([1.0], 0), ValueError, r"^k: "),
    ("shiftquant.x", lambda: N.shiftquant("x", 8), TypeError, r"^x: "),
    ("constquant.k_dr", lambda: N.constquant([1.0], 600, 8), ValueError, r"^k_dr: "),
    ("errorquant.k", lambda: N.errorquant([1.0], 2.0), TypeError, r"^k: "),
    ("sround.seed", lambda: N.sround([1.0], seed="a"), TypeError, r"^seed: "),
    ("gwquant.kgw", lambda: N.gwquant([1.0], "a", 8), TypeError, r"kgw"),
    ("gwquant.kdr", lambda: N.gwquant([1.0], 8, 0), ValueError, r"kdr|k_dr"),
    ("gbnquant.k", lambda: N.gbnquant([1.0], None), TypeError, r"^k: "),
    ("Conv2d.in_channels", lambda: nn.Conv2d(0, 3, 3), ValueError, r"in_channels"),
    ("Conv2d.kernel_size", lambda: nn.Conv2d(2, 3, "3"), TypeError, r"kernel_size"),
    ("Conv2d.stride", lambda: nn.Conv2d(2, 3, 3, stride=0), ValueError, r"stride"),
    ("Conv2d.padding", lambda: nn.Conv2d(2, 3, 3, padding=-1), ValueError, r"padding"),
    ("Conv2d.dilation", lambda: nn.Conv2d(2, 3, 3, dilation=(1,)), TypeError, r"dilation"),
    ("Conv2d.groups", lambda: nn.Conv2d(2, 3, 3, groups=2), ValueError, r"groups"),
    ("Conv2d.padding_mode", lambda: nn.Conv2d(2, 3, 3, padding_mode="mirror"), ValueError, r"padding_mode"),
    ("Conv2d.weight_dec_bit_width", lambda: nn.Conv2d(2, 3, 3, weight_dec_bit_width=1.5), TypeError,
     r"weight_dec_bit_width"),
    ("Conv2d.output_all_bit_width", lambda: nn.Conv2d(2, 3, 3, output_all_bit_width=0), ValueError,
     r"output_all_bit_width"),
    ("Conv2d.input", lambda: nn.Conv2d(2, 3, 3)(np.ones((2, 6, 6, 1, 1))), ValueError, r"input"),
    ("Linear.out_features", lambda: nn.Linear(3, "3"), ValueError, r"out_features"),
    ("Linear.bias_all_bit_width", lambda: nn.Linear(3, 3, bias_all_bit_width=600), ValueError,
     r"bias_all_bit_width"),
    ("Linear.input", lambda: nn.Linear(3, 3)(np.ones((2, 4))), ValueError, r"input"),
    ("Adder2d.kernel_size", lambda: nn.Adder2d(2, 2, 0), ValueError, r"kernel_size"),
    ("Adder2d.input_channel", lambda: nn.Adder2d(0, 2, 1), ValueError, r"input_channel"),
    ("BatchNorm2d.num_features", lambda: nn.BatchNorm2d(0), ValueError, r"num_features"),
    ("BatchNorm2d.eps", lambda: nn.BatchNorm2d(2, eps=-1.0), ValueError, r"eps"),
    ("BatchNorm2d.momentum", lambda: _bn_float_train(momentum="a"), (TypeError, ValueError), r"momentum"),
    ("BatchNorm2d.mean_dec_bit_width", lambda: nn.BatchNorm2d(2, mean_dec_bit_width=10**6), ValueError,
     r"mean_dec_bit_width"),
    ("ReLU.acti_all_bit_width", lambda: nn.ReLU(acti_all_bit_width=0), ValueError, r"acti_all_bit_width"),
    ("ReLU6.input_dec_bit_width", lambda: nn.ReLU6(input_dec_bit_width=None), TypeError, r"input_dec_bit_width"),
    ("ReLU.input", lambda: nn.ReLU()(np.array([1j])), TypeError, r"input"),
    ("MaxPool2d.kernel_size", lambda: nn.MaxPool2d((2, 2, 2)), TypeError, r"kernel_size"),
    ("MaxPool2d.padding", lambda: nn.MaxPool2d(2, padding=2), ValueError, r"padding"),
    ("MaxPool3d.dilation", lambda: nn.MaxPool3d(2, dilation=0), ValueError, r"dilation"),
    ("AvgPool1d.kernel_size", lambda: nn.AvgPool1d(2.5), TypeError, r"kernel_size"),
    ("AvgPool2d.divisor_override", lambda: nn.AvgPool2d(2, divisor_override=1.5), TypeError, r"divisor_override"),
    ("AvgPool3d.stride", lambda: nn.AvgPool3d(2, stride=-1), ValueError, r"stride"),
    ("set_num_threads.n", lambda: wageubn.set_num_threads(0), ValueError, r"set_num_threads"),
    ("set_num_threads.type", lambda: wageubn.set_num_threads("2"), (TypeError, ValueError), r"set_num_threads"),
    ("manual_seed.seed", lambda: wageubn.manual_seed("a"), (TypeError, ValueError), r"seed"),
    ("Config.acti", lambda: cfg.Config(acti=600), ValueError, r"^acti: "),
    ("Config.bn_in_all", lambda: cfg.Config(bn_in_all=0), ValueError, r"^bn_in_all: "),
    ("Config.conv_and_linear_weight", lambda: cfg.Config(conv_and_linear_weight="8"), TypeError,
     r"^conv_and_linear_weight: "),
    ("network_config.config", lambda: cfg.network_config(nn.ReLU(), "n", {}), TypeError, r"config"),
    ("network_config.net", lambda: cfg.network_config(42, "n", cfg.Config()), TypeError, r"net"),
    ("network_config.name", lambda: cfg.network_config(nn.Sequential(nn.ReLU()), 5, cfg.Config()),
     TypeError, r"name"),
    ("network_config.bn_list", lambda: cfg.network_config(nn.Sequential(nn.ReLU()), "n", cfg.Config(), bn_list=5),
     TypeError, r"bn_list"),
]


@pytest.mark.parametrize("call,exc,words", [c[1:] for c in PUBLIC_ERRORS], ids=[c[0] for c in PUBLIC_ERRORS])
def test_public_api_errors_name_the_argument(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


# Every argument of every _C entry point: (name, valid arguments, {argument: [bad values]}).
# Bad values are of the wrong type or out of range; each must give TypeError or ValueError
# whose message names the argument.
_img, _w = np.ones((1, 2, 5, 5), F32), np.ones((3, 2, 3, 3), F32)
_pool = dict(input=_img, kernel_size=(1, 2, 2), stride=(1, 1, 1), padding=(0, 0, 0), dilation=(1, 1, 1))
WRONG_INT = ["8", 8.5, None, 2**70]
C_ARGS = {
    "quantize": (dict(x=[1.0], fmt=(1, 8, 8)),
                 {"x": ["a", [1j]], "fmt": ["8", (1, 8), (1, 8.0, 8), (5, 8, 8), (1, 9999, 8), (1, 8, 0),
                                           (1, 2**70, 8)]}),
    "sround": (dict(x=[1.0], seed=1), {"x": [None], "seed": ["1", 1.5]}),
    "shiftquant": (dict(x=[1.0], k=8), {"x": [object()], "k": WRONG_INT + [0, 513]}),
    "errorquant": (dict(x=[1.0], k=8), {"k": WRONG_INT + [0]}),
    "constquant": (dict(x=[1.0], k=8, k_dr=8, seed=1), {"k": WRONG_INT + [-513], "k_dr": WRONG_INT + [0],
                                                         "seed": ["1"]}),
    "clamp": (dict(x=[1.0], lo=0.0, hi=1.0, in_fmt=None, out_fmt=None, nthreads=1),
              {"x": ["a"], "lo": ["0"], "hi": [None], "in_fmt": [(1, 8)], "out_fmt": [8],
               "nthreads": WRONG_INT + [0]}),
    "conv2d": (dict(input=_img, weight=_w, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
                    groups=1, out_fmt=None, nthreads=1),
               {"input": [np.ones((2, 5, 5))], "weight": [np.ones((3, 3, 3, 3))], "bias": [np.ones(2)],
                "stride": [(1,), (0, 1), (1, 2**70)], "padding": [(0, 0), (0, -1, 0, 0), (0, 0, 0, 2**70)],
                "dilation": [(1, "1"), (1, 0)], "groups": WRONG_INT + [0, 2], "out_fmt": [(3, 8, 8)],
                "nthreads": WRONG_INT + [0], "in_fmt": [(2, 8), "f", (2, 8, 0)]}),
    "adder2d": (dict(input=_img, weight=_w, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
                     groups=1, out_fmt=None, nthreads=1),
                {"weight": ["w"], "groups": WRONG_INT + [2], "stride": [None], "nthreads": WRONG_INT,
                 "in_fmt": [(5, 8, 8)]}),
    "linear": (dict(input=np.ones((2, 3)), weight=np.ones((4, 3)), bias=None, out_fmt=None, nthreads=1),
               {"input": [np.ones((2, 5))], "weight": [np.ones(3)], "bias": [np.ones(3)], "out_fmt": ["f"],
                "nthreads": WRONG_INT + [0]}),
    "batchnorm": (dict(input=_img, mean=np.zeros(2), var=np.ones(2), weight=None, bias=None, eps=1e-5,
                       out_fmt=None, nthreads=1),
                  {"input": [np.ones(3)], "mean": [np.zeros(3)], "var": ["v"], "weight": [np.ones(5)],
                   "bias": [[1j, 1j]], "eps": ["1e-5", None], "out_fmt": [(1, 8, 600)], "nthreads": WRONG_INT,
                   "lo": ["0"], "hi": [None], "in_fmt": [(1, 8, 600)]}),
    "batchnorm_stats": (dict(input=_img, nthreads=1), {"input": [np.ones(3), "x"], "nthreads": WRONG_INT + [0]}),
    "maxpool": (dict(_pool, ceil_mode=False, return_indices=False, nthreads=1),
                {"input": [np.ones((2, 2))], "kernel_size": [(2, 2), (0, 1, 1), (1, 1, 2.0)],
                 "stride": [(1, 1, 0), None], "padding": [(0, 0, 5), (0, 0, -1)], "dilation": [(1, 1, 0)],
                 "nthreads": WRONG_INT + [0]}),
    "avgpool": (dict(_pool, ceil_mode=False, count_include_pad=True, divisor_override=0, nthreads=1),
                {"kernel_size": [(2, 2, 2, 2)], "dilation": [(1, 2, 1)], "divisor_override": WRONG_INT + [-1],
                 "nthreads": WRONG_INT}),
    "moments": (dict(x=[1.0]), {"x": ["a", None]}),
    "simd_available": (dict(), {}),
    "int8_available": (dict(), {}),
    "same": (dict(a=[1.0], b=[1.0]), {"a": ["a", [1j]], "b": [None, np.array([object()])]}),
    "histogram": (dict(x=[1.0], bins=4, lo=0.0, hi=1.0),
                  {"x": [[1j]], "bins": WRONG_INT + [0, 2**31], "lo": ["0", math.nan, 2.0], "hi": [None, math.inf]}),
    "entropy_search": (dict(hist=np.ones(8), cali_number=2),
                       {"hist": [np.ones((2, 4)), "h"], "cali_number": WRONG_INT + [0, 8]}),
}


# where the message may use another (documented) name for the argument
C_ALIASES = {("batchnorm", "mean"): "running_mean", ("batchnorm", "var"): "running_var", ("clamp", "x"): "input"}


@pytest.mark.parametrize("name", sorted(C_ARGS))
def test_c_entry_point_errors_name_the_argument(name):
    good, bads = C_ARGS[name]
    fn = getattr(_C, name)
    with np.errstate(all="ignore"):
        fn(**good)  # the valid call works
    failures = []
    for arg, values in bads.items():
        for value in values:
            try:
                with np.errstate(all="ignore"):
                    fn(**dict(good, **{arg: value}))
            except (TypeError, ValueError) as e:
                names = "|".join(filter(None, [arg, C_ALIASES.get((name, arg))]))
                if not re.search(rf"\b({names})\b", str(e)):
                    failures.append(f"{arg}={value!r}: {type(e).__name__}: {e}")
            except Exception as e:  # OverflowError and anything else
                failures.append(f"{arg}={value!r}: {type(e).__name__} (not TypeError/ValueError): {e}")
            else:
                failures.append(f"{arg}={value!r}: accepted")
    assert not failures, f"_C.{name}:\n  " + "\n  ".join(failures)


def test_every_c_entry_point_has_an_error_table():
    exported = {n for n in dir(_C) if not n.startswith("_") and callable(getattr(_C, n))}
    assert exported <= set(C_ARGS), f"add error cases for {sorted(exported - set(C_ARGS))}"


# ======================================================================================
# Overflow: what happens when a value exceeds its format (docs/reliability.md)
# ======================================================================================

FMAX = float(np.finfo(F32).max)


def test_alldirectquant_clamps_to_its_format():
    b = 127 / 128  # (2**7 - 1) * 2**-7
    np.testing.assert_array_equal(N.alldirectquant([1e6, -1e6, np.inf, -np.inf, 0.999], 8, 8), [b, -b, b, -b, b])
    assert np.isnan(N.alldirectquant([np.nan], 8, 8)[0])
    np.testing.assert_array_equal(N.weightquant([5.0, -5.0], 4), [7 / 8, -7 / 8])
    # the clamp bound itself can exceed float32: saturation then reads inf
    assert N.alldirectquant([np.inf], 1, 512)[0] == np.inf
    assert N.alldirectquant([1e30], 1, 200)[0] == F32(1e30)


def test_directquant_is_unbounded_and_overflows_to_inf_at_float32s_end():
    np.testing.assert_array_equal(N.directquant([1e6, np.inf, -np.inf], 8), [1e6, np.inf, -np.inf])
    assert N.directquant([FMAX], 1)[0] == FMAX  # an integer: unchanged
    assert N.directquant([FMAX], -103)[0] == FMAX  # FMAX = (2**24 - 1) * 2**104 is on the 2**104 grid
    # on the 2**105 grid FMAX is a tie between (2**23 - 1) and 2**23 steps: half to even rounds up
    # to 2**128, past float32's range
    assert N.directquant([FMAX], -104)[0] == np.inf
    assert N.directquant([-FMAX], -104)[0] == -np.inf
    assert N.directquant([3.4e38], -127)[0] == np.inf  # round(0.999) steps of 2**128
    assert N.directquant([3.4e38], -512)[0] == 0.0 and N.directquant([np.inf], -512)[0] == np.inf


def test_float64_input_beyond_float32_becomes_inf():
    """Inputs are converted to float32 first (numpy's cast, which may warn about the overflow)."""
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(N.directquant(np.array([1e300, -1e300]), 8), [np.inf, -np.inf])
        np.testing.assert_array_equal(N.alldirectquant(np.array([1e300]), 8, 8), [127 / 128])


def _exact_linear(k, out_dec=1, out_all=64, in_dec=1, w_dec=1):
    lin = nn.Linear(k, 1, bias=False, iostrict=True, input_dec_bit_width=in_dec, input_all_bit_width=64,
                    weight_dec_bit_width=w_dec, weight_all_bit_width=64, output_dec_bit_width=out_dec,
                    output_all_bit_width=out_all)
    return lin


def test_iostrict_accumulation_is_exact_while_integer_sums_fit_in_53_bits():
    # 32 products of (2**24 - 1)**2: the sum 32 * (2**48 - 2**25 + 1) < 2**53 is exact in double
    v = float(2**24 - 1)
    for k in (1, 2, 31, 32):
        lin = _exact_linear(k)
        lin.weight[...] = v
        out = lin(np.full((1, k), v, F32))[0, 0]
        exact = k * (2**24 - 1) ** 2
        assert out == F32(exact), (k, out, exact)  # one rounding, from the exact integer
    # on a coarse output grid (2**20 units) the exact sum decides the rounding
    lin = _exact_linear(32, out_dec=-19)
    lin.weight[...] = v
    exact = 32 * (2**24 - 1) ** 2
    assert lin(np.full((1, 32), v, F32))[0, 0] == F32(round(exact / 2**20) * 2**20)
    # the double accumulator keeps what a float32 one drops: 2**24 + 1 + 1 + 1 + 1
    lin = _exact_linear(5)
    lin.weight[...] = 1.0
    x = np.array([[2.0**24, 1, 1, 1, 1]], F32)
    assert lin(x)[0, 0] == 2**24 + 4
    # fine grids: values on 2**-(dec-1) grids are integers in those units, same rule
    lin = _exact_linear(4, out_dec=24, in_dec=24, w_dec=24)
    lin.weight[...] = [[0.5, 2.0**-23, -0.25, 2.0**-23]]
    assert lin(np.array([[0.75, 2.0**-23, 0.5, 2.0**-23]], F32))[0, 0] == F32(0.375 - 0.125)


def test_iostrict_output_saturates_and_float_output_overflows_to_inf():
    conv = nn.Conv2d(1, 1, 1, bias=False, iostrict=True, input_dec_bit_width=1, input_all_bit_width=64,
                     weight_dec_bit_width=1, weight_all_bit_width=64, output_dec_bit_width=1,
                     output_all_bit_width=16)
    conv.weight[...] = 2.0**40
    out = conv(np.full((1, 1, 1, 2), 2.0**40, F32))
    np.testing.assert_array_equal(out.ravel(), [2**15 - 1, 2**15 - 1])  # clamped to the output format
    conv.iostrict = False  # float output: the float32 product overflows to inf
    conv.weight[...] = 2.0**100
    assert conv(np.full((1, 1, 1, 1), 2.0**100, F32))[0, 0, 0, 0] == np.inf
    # batch norm computes in double: a result beyond float32 becomes +-inf at the final cast
    bn = nn.BatchNorm2d(1, eps=0.0)
    bn.running_var[...] = 2.0**-7  # on the 8-bit grid: x * 2**3.5
    out = bn(np.array([[[[1e38, -1e38, 1.0]]]], F32)).ravel()
    assert out[0] == np.inf and out[1] == -np.inf and out[2] == F32(round(2**3.5 * 128) / 128)
    bn.running_var[...] = 2.0**-20  # quantized to 0: 1 / sqrt(0 + eps=0) is inf, 0 * inf NaN
    assert np.isnan(bn(np.ones((1, 1, 1, 1), F32))).all()


def test_activations_do_not_fault_in_fresh_pages_on_every_call():
    # _C tunes glibc's malloc at import (csrc/binding.c): MiB-sized activations are reused
    # from the heap instead of being mapped and faulted in again on each call
    if UNDER_SANITIZER:  # ASan brings its own allocator; mallopt does not reach it
        pytest.skip("AddressSanitizer replaces glibc's malloc")
    bench = str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks")
    code = textwrap.dedent(f"""
        import resource, sys, numpy as np
        sys.path.insert(0, {bench!r})
        import wageubn.function as nn, models
        net = models.ResNet20(nn).eval()  # activations of several sizes, 0.25 to 1 MiB
        x = np.random.default_rng(0).random((8, 3, 32, 32), dtype=np.float32)
        for _ in range(3):
            net(x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            net(x)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)

    def faults(env):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, **env})
        return int(out.stdout)
    tuned, untuned = faults({}), faults({"WAGEUBN_MALLOC_TUNING": "0"})
    assert tuned < 200 < untuned, (tuned, untuned)  # here: 0 against about 2,600


def test_import_stays_light():
    # `import wageubn` loads NumPy's core only: numpy.random (about 15 ms) waits for the first
    # layer or seed that needs it, and torch is never imported
    code = "import sys, wageubn; print(sorted(m for m in ('numpy.random', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
