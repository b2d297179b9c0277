"""Hostile shapes (issue 9): strides, paddings, dilations and kernel sizes near 2**31, 2**32,
2**63 and their products, on every kernel path.

Each call must either raise a ValueError / MemoryError that names an argument, or give the
result of a twin written with Python integers (no wrap possible) or of torch.  The issue's
examples run in child interpreters (on every kernel path: default, ``WAGEUBN_SIMD=avx2``,
``WAGEUBN_PORTABLE=1``), so a regression that crashes fails its test instead of pytest.

Outputs are kept tiny: a shape whose output would be addressable and allocatable but large is
not run (hypothesis ``assume``), so the suite stays small under the sanitizers.
"""
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import wageubn.function as nn
from wageubn import _C
from wageubn.function.pooling import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INT64_MAX = 2**63 - 1
PATHS = {"default": {}, "avx2": {"WAGEUBN_SIMD": "avx2"}, "portable": {"WAGEUBN_PORTABLE": "1"}}
ARGS = ("input", "weight", "kernel_size", "stride", "padding", "dilation", "groups")
# values that wrapped size arithmetic: around 2**31, 2**32, 2**63, their products, and beyond
HOSTILE = [2**31 - 1, 2**31, 2**31 + 1, 2**32 - 2, 2**32 - 1, 2**32, 2**32 + 1, 2**30 - 3,
           2**40, 2**62, 2**63 - 1, 2**63, 2**64, 2**31 * 3, 2**32 * 3, 2**21 * 2**21 + 1]
SMALL = [1, 2, 3]
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


def size_value(small=SMALL, zero=False):
    values = ([0] if zero else []) + small
    return st.one_of(st.sampled_from(values), st.sampled_from(HOSTILE))


@contextlib.contextmanager
def kernel_path(name):
    """The kernels read WAGEUBN_SIMD / WAGEUBN_PORTABLE at each call."""
    saved = {k: os.environ.get(k) for k in ("WAGEUBN_SIMD", "WAGEUBN_PORTABLE")}
    for k in saved:
        os.environ.pop(k, None)
    os.environ.update(PATHS[name])
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_child(code: str, path: str, timeout: float = 120) -> dict:
    """Run ``code`` (which prints one JSON line last) in a child on kernel path ``path``."""
    env = {k: v for k, v in os.environ.items() if k not in ("WAGEUBN_SIMD", "WAGEUBN_PORTABLE")}
    env.update(PATHS[path])
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"child exited with {proc.returncode} (negative: killed by signal "
                                  f"{-proc.returncode})\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def names_argument(message: str) -> bool:
    return re.match(r"(%s): " % "|".join(ARGS), message) is not None


def assert_names_argument(exc: BaseException, *expected: str):
    msg = str(exc)
    assert names_argument(msg), msg
    if expected:
        assert msg.split(":")[0] in expected, msg


# ------------------------------------------------------------------------------------------
# Twins with Python integers
# ------------------------------------------------------------------------------------------

def conv_axis(n, p0, p1, k, s, d):
    """(windows, padded extent, span); windows < 1 when none fits."""
    ext, span = n + p0 + p1, d * (k - 1) + 1
    return ((ext - span) // s + 1 if span <= ext else 0), ext, span


def conv_twin(x, w, b, stride, pads, dil, adder=False):
    """Direct definition: taps in the zero padding read 0 (AdderNet's -|0 - w| counts too)."""
    n, c, h, wd = x.shape  # n == 1
    oc, cg, kh, kw = w.shape
    oh = conv_axis(h, pads[0], pads[2], kh, stride[0], dil[0])[0]
    ow = conv_axis(wd, pads[1], pads[3], kw, stride[1], dil[1])[0]
    out = np.zeros((n, oc, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            col = np.zeros((c, kh, kw))
            for u in range(kh):
                y = oy * stride[0] + u * dil[0] - pads[0]
                for v in range(kw):
                    xx = ox * stride[1] + v * dil[1] - pads[1]
                    if 0 <= y < h and 0 <= xx < wd:
                        col[:, u, v] = x[0, :, y, xx]
            for o in range(oc):
                out[0, o, oy, ox] = (-np.abs(col - w[o]).sum() if adder else (col * w[o]).sum())
    if b is not None:
        out += np.asarray(b, np.float64)[None, :, None, None]
    return out.astype(np.float32)


def pool_axis(n, k, p, s, d, ceil_mode):
    """torch's pooling_output_shape with Python ints (< 1: no window)."""
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    if num < 0:
        return 0
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def axis_taps(o, n, k, p, s, d):
    """The in-range taps of window o: start + i * d for i < k, within [0, n)."""
    start = o * s - p
    i = 0 if start >= 0 else (-start + d - 1) // d
    taps = []
    while i < k and start + i * d < n:
        taps.append(start + i * d)
        i += 1
    return taps


def maxpool_twin(x, k, s, p, d, ceil_mode):
    planes, *spatial = x.shape
    outs = [pool_axis(spatial[i], k[i], p[i], s[i], d[i], ceil_mode) for i in range(3)]
    out = np.full([planes] + outs, -np.inf, np.float32)
    for o in np.ndindex(*outs):
        taps = [axis_taps(o[i], spatial[i], k[i], p[i], s[i], d[i]) for i in range(3)]
        for z in taps[0]:
            for y in taps[1]:
                for xx in taps[2]:
                    out[(slice(None),) + o] = np.maximum(out[(slice(None),) + o], x[:, z, y, xx])
    return out


def avgpool_twin(x, k, s, p, ceil_mode, count_include_pad, divisor):
    planes, *spatial = x.shape
    outs = [pool_axis(spatial[i], k[i], p[i], s[i], 1, ceil_mode) for i in range(3)]
    out = np.zeros([planes] + outs, np.float32)
    for o in np.ndindex(*outs):
        lo, hi, padded = [], [], []
        for i in range(3):
            start = o[i] * s[i] - p[i]
            end = min(start + k[i], spatial[i] + p[i])
            padded.append(end - start)
            lo.append(max(start, 0))
            hi.append(min(end, spatial[i]))
        if any(a >= b for a, b in zip(lo, hi)):
            continue
        for pl in range(planes):
            total = 0.0
            for z in range(lo[0], hi[0]):
                for y in range(lo[1], hi[1]):
                    for xx in range(lo[2], hi[2]):
                        total += float(x[pl, z, y, xx])
            count = [b - a for a, b in zip(lo, hi)]
            if divisor:
                div = float(divisor)
            elif count_include_pad:
                div = float(padded[0]) * float(padded[1]) * float(padded[2])
            else:
                div = float(count[0]) * float(count[1]) * float(count[2])
            out[(pl,) + o] = np.float32(total / div)
    return out


# ------------------------------------------------------------------------------------------
# The examples, in child interpreters on every kernel path
# ------------------------------------------------------------------------------------------

SAME_DIL = (2**32 - 2, 2**30 - 3)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_dilated_same_conv_runs_in_small_memory_and_matches_torch(path, torch):
    """The padded-buffer size wrapped to 0 and gigabytes were written into it (segfault); a
    padded copy of the image would be 2**62 elements although the output has 6: padding that
    no window reads is never materialised."""
    result = run_child(f"""
        import json, resource, tracemalloc
        import numpy as np, wageubn.function as nn
        x = np.full((1, 1, 2, 3), .1, np.float32)
        conv = nn.Conv2d(1, 1, 2, padding="same", dilation={SAME_DIL})
        conv.quant = False
        conv.weight[...] = np.array([[[[0.5, -1.0], [2.0, 0.25]]]], np.float32)
        conv.bias[...] = 0.125
        conv(np.full((1, 1, 2, 3), .1, np.float32))  # warm-up: thread pools, caches
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        out = conv(x)
        peak = tracemalloc.get_traced_memory()[1]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
        print(json.dumps({{"out": out.tolist(), "rss_kib": rss, "peak": peak}}))
    """, path)
    assert result["rss_kib"] < 16 * 1024, result  # a padded copy would be 2**64 bytes
    assert result["peak"] < 64 * 1024, result
    tconv = torch.nn.Conv2d(1, 1, 2, padding="same", dilation=SAME_DIL)
    with torch.no_grad():
        tconv.weight.copy_(torch.tensor([[[[0.5, -1.0], [2.0, 0.25]]]]))
        tconv.bias.fill_(0.125)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = tconv(torch.full((1, 1, 2, 3), .1)).numpy()
    np.testing.assert_array_equal(np.array(result["out"], np.float32), expected)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_dilated_same_conv_on_every_kernel_path(path):
    """The same wrap on the float, double, row-kernel, integer (VNNI packing) and AdderNet
    kernels: each operand set below selects one of them where it runs."""
    result = run_child(f"""
        import json
        import numpy as np
        from wageubn import _C
        dil = {SAME_DIL}
        th, tw = dil[0], dil[1]
        pads = (th // 2, tw // 2, th - th // 2, tw - tw // 2)
        rng = np.random.default_rng(0)
        grid = lambda shape, e, lo, hi: (rng.integers(lo, hi + 1, shape) * 2.0 ** -e).astype(np.float32)
        cases = {{
            "float": (grid((1, 2, 2, 3), 4, -8, 8), grid((16, 2, 2, 2), 6, -127, 127), False, False),
            "double": (grid((1, 2, 2, 3), 4, -8, 8), grid((16, 2, 2, 2), 6, -127, 127), True, False),
            "rows": (grid((1, 1, 2, 9), 4, -8, 8), grid((3, 1, 2, 2), 6, -127, 127), False, False),
            "int8": (grid((1, 4, 2, 3), 4, 0, 255), grid((16, 4, 2, 2), 6, -127, 127), True, False),
            "adder": (grid((1, 2, 2, 3), 4, -8, 8), grid((4, 2, 2, 2), 6, -127, 127), False, True),
        }}
        out = {{}}
        for name, (x, w, exact, adder) in cases.items():
            f = _C.adder2d if adder else _C.conv2d
            r = f(x, w, None, (1, 1), pads, dil, 1, None, exact, 1)
            out[name] = [x.tolist(), w.tolist(), r.tolist(), pads]
        print(json.dumps(out))
    """, path)
    for name, (x, w, r, pads) in result.items():
        x, w = np.array(x, np.float32), np.array(w, np.float32)
        expected = conv_twin(x, w, None, (1, 1), pads, SAME_DIL, adder=name == "adder")
        np.testing.assert_array_equal(np.array(r, np.float32), expected, err_msg=name)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_window_span_that_wraps_to_zero_is_rejected(path):
    """dilation * (k - 1) = 2**64 wrapped to 0: the window check accepted a window 2**64 wide
    and read far past the buffer."""
    result = run_child("""
        import json
        import numpy as np, wageubn.function as nn
        conv = nn.Conv2d(1, 1, (1, 2**24 + 1), dilation=(1, 2**40), bias=False)
        try:
            conv(np.ones((1, 1, 1, 3), np.float32))
            print(json.dumps({"error": None}))
        except ValueError as e:
            print(json.dumps({"error": str(e)}))
    """, path)
    assert result["error"] is not None and result["error"].startswith("dilation: "), result


@pytest.mark.parametrize("path", sorted(PATHS))
def test_pool_examples(path):
    """MaxPool1d whose span (2**32) * (2**32) + 1 wrapped to 1 returned its input; AvgPool3d's
    padded count (2**21 + 1)**3 * ... overflowed into inf; a huge stride / kernel / padding
    that fits gives the twin's result."""
    result = run_child("""
        import json
        import numpy as np
        from wageubn.function.pooling import AvgPool3d, MaxPool1d, MaxPool2d
        out = {}
        x = np.arange(5, dtype=np.float32)[None, None]
        try:
            out["wrap"] = MaxPool1d(2**32 + 1, stride=1, dilation=2**32)(x).tolist()
        except ValueError as e:
            out["wrap"] = str(e)
        out["avg"] = AvgPool3d(2**22, stride=1, padding=2**21)(np.ones((1, 1, 1, 1, 1), np.float32)).tolist()
        out["big"] = MaxPool1d(2**40, stride=2**62, padding=2**39)(x).tolist()
        out["far"] = MaxPool2d((1, 3), stride=(2**63 - 1, 2**62), padding=(0, 1))(np.ones((1, 2, 4), np.float32)).tolist()
        print(json.dumps(out))
    """, path)
    assert isinstance(result["wrap"], str) and result["wrap"].startswith("dilation: "), result
    one = np.ones((1, 1, 1, 1), np.float32)
    np.testing.assert_array_equal(np.array(result["avg"], np.float32)[0],
                                  avgpool_twin(one, (2**22,) * 3, (1,) * 3, (2**21,) * 3, False, True, 0))
    assert np.isfinite(result["avg"]).all() and (np.array(result["avg"]) > 0).all()
    assert result["big"] == [[[4.0]]]
    assert result["far"] == [[[1.0]]]


def test_padding_near_2_31_names_padding():
    with pytest.raises(ValueError) as e:
        nn.Conv2d(1, 1, 1, padding=2**31)(np.ones((1, 1, 1, 1), np.float32))
    assert_names_argument(e.value, "padding")


def test_padding_mode_assigned_after_construction_is_checked_at_call():
    conv = nn.Conv2d(1, 1, 1)
    conv.padding_mode = "bogus"
    with pytest.raises(ValueError, match="^padding_mode: .*'bogus'"):
        conv(np.ones((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="^padding_mode: "):
        nn.Conv2d(1, 1, 1, padding_mode="bogus")


def test_replicate_padding_that_cannot_be_addressed_names_padding():
    conv = nn.Conv2d(1, 1, 1, padding=2**62, padding_mode="replicate")
    with pytest.raises(ValueError) as e:
        conv(np.ones((1, 1, 1, 1), np.float32))
    assert_names_argument(e.value, "padding")


@pytest.mark.parametrize("value", [2**63, 2**64, 10**30])
@pytest.mark.parametrize("arg", ["stride", "padding", "dilation", "kernel_size"])
def test_conv_ints_beyond_int64(arg, value):
    kwargs = {"kernel_size": 1, arg: value}
    with pytest.raises(ValueError) as e:
        nn.Conv2d(1, 1, **kwargs)(np.ones((1, 1, 2, 2), np.float32))
    assert_names_argument(e.value, arg)


@pytest.mark.parametrize("value", [2**31, 2**32, 2**62])
def test_kernel_size_whose_weight_cannot_be_addressed(value):
    with pytest.raises(ValueError) as e:
        nn.Conv2d(1, 1, (value, value))
    assert_names_argument(e.value, "kernel_size")
    with pytest.raises(ValueError) as e:
        nn.Adder2d(1, 1, (value, value))
    assert_names_argument(e.value, "kernel_size")


@pytest.mark.parametrize("cls", [MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d])
@pytest.mark.parametrize("value", [2**63, 2**64])
def test_pool_ints_beyond_int64(cls, value):
    for kwargs in ({"kernel_size": value}, {"kernel_size": 2, "stride": value}):
        with pytest.raises(ValueError) as e:
            cls(**kwargs)
        assert_names_argument(e.value, *kwargs)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_addressable_output_too_large_is_a_memory_error(path):
    """2**41 outputs (8 TiB) can be addressed but not allocated.  (A pool's output is at most
    about its input: torch's rule padding <= kernel / 2.)"""
    with kernel_path(path):
        with pytest.raises(MemoryError):
            _C.conv2d(np.ones((1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1), np.float32), None,
                      (1, 1), (2**19, 2**20, 2**19, 2**20), (1, 1))


def test_avgpool_counts_match_torch_where_torch_runs(torch):
    """Padded counts of 2**40 and more: torch's int64 products hold them, so does the double."""
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 2, 3)
    for k, p, inc in [((2**20, 2**20), (2**19, 2**19), True), ((2**20, 3), (2**19, 1), False),
                      ((2**30, 3), (2**29, 1), True)]:
        ours = AvgPool2d(k, stride=1, padding=p, count_include_pad=inc)(x)
        ref = torch.nn.functional.avg_pool2d(torch.from_numpy(x), k, 1, p, count_include_pad=inc).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------------------
# Hypothesis over hostile values, every kernel path
# ------------------------------------------------------------------------------------------

SMALL_OUTPUT = 1024          # computed and compared with the twin
SURELY_TOO_BIG = 2**40       # bytes: more than this machine (and ASan's allocator) can give


def classify(big: int, out_elems: int, fits: bool):
    """What a call must do: 'error' (ValueError naming an argument: some size passes int64, or
    no window fits), 'big' (ValueError or MemoryError), 'run' (the twin's result); None: an
    output that could be allocated but is not small, not run."""
    if big > INT64_MAX or not fits:
        return "error"
    if out_elems <= SMALL_OUTPUT:
        return "run"
    if out_elems * 4 > SURELY_TOO_BIG:
        return "big"
    return None


@st.composite
def conv_case(draw):
    kind = draw(st.sampled_from(["float", "double", "rows", "int8", "adder"]))
    c, oc, w = {"float": (2, 16, 3), "double": (2, 16, 3), "rows": (1, 3, 9), "int8": (4, 16, 3),
                "adder": (2, 4, 3)}[kind]
    h = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    stride = (draw(size_value()), draw(size_value()))
    pads = tuple(draw(size_value(zero=True)) for _ in range(4))
    dil = (draw(size_value()), draw(size_value()))
    return kind, (1, c, h, w), (oc, c, kh, kw), stride, pads, dil


@pytest.mark.parametrize("path", sorted(PATHS))
@SETTINGS
@given(case=conv_case())
def test_hostile_conv_and_adder_kernels(path, case):
    kind, xs, ws, stride, pads, dil = case
    (oh, ext_h, span_h) = conv_axis(xs[2], pads[0], pads[2], ws[2], stride[0], dil[0])
    (ow, ext_w, span_w) = conv_axis(xs[3], pads[1], pads[3], ws[3], stride[1], dil[1])
    out_elems = ws[0] * oh * ow
    big = max(max(stride), max(pads), max(dil), ext_h, ext_w, span_h, span_w, out_elems * 8)
    verdict = classify(big, out_elems, oh >= 1 and ow >= 1)
    assume(verdict is not None)
    event(verdict)
    rng = np.random.default_rng(len(str(case)))
    lo = 0 if kind == "int8" else -8
    x = (rng.integers(lo, 9, xs) * 2.0**-4).astype(np.float32)
    w = (rng.integers(-127, 128, ws) * 2.0**-6).astype(np.float32)
    f = _C.adder2d if kind == "adder" else _C.conv2d
    with kernel_path(path):
        if verdict == "run":
            out = f(x, w, None, stride, pads, dil, 1, None, kind in ("double", "int8"), 1)
            np.testing.assert_array_equal(out, conv_twin(x, w, None, stride, pads, dil, kind == "adder"))
            return
        with pytest.raises((ValueError, MemoryError) if verdict == "big" else ValueError) as e:
            f(x, w, None, stride, pads, dil, 1, None, False, 1)
        if isinstance(e.value, ValueError):
            assert_names_argument(e.value)


@pytest.mark.parametrize("path", sorted(PATHS))
@SETTINGS
@given(k=st.tuples(size_value(), size_value()), s=st.tuples(size_value(), size_value()),
       p=st.tuples(size_value(zero=True), size_value(zero=True)),
       d=st.tuples(size_value(), size_value()), adder=st.booleans())
def test_hostile_conv2d_and_adder2d_layers(path, k, s, p, d, adder):
    """The layers (float: quant off), hostile values through their Python validation."""
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 1, 2, 4) / 8
    weight_bytes = 2 * math.prod(k) * 4
    assume(weight_bytes <= 2**16 or weight_bytes > SURELY_TOO_BIG)  # never fill gigabytes
    with kernel_path(path):
        try:
            layer = nn.Adder2d(1, 2, k, stride=s, padding=p) if adder else \
                nn.Conv2d(1, 2, k, stride=s, padding=p, dilation=d)
        except (ValueError, MemoryError) as e:
            assert weight_bytes > SURELY_TOO_BIG or max(k + s + p + d) > INT64_MAX, (k, s, p, d)
            if isinstance(e, ValueError):
                assert_names_argument(e)
            return
        d = (1, 1) if adder else d
        oh, ext_h, span_h = conv_axis(2, p[0], p[0], k[0], s[0], d[0])
        ow, ext_w, span_w = conv_axis(4, p[1], p[1], k[1], s[1], d[1])
        big = max(ext_h, ext_w, span_h, span_w, 2 * oh * ow * 8)
        verdict = classify(big, 2 * oh * ow, oh >= 1 and ow >= 1)
        assume(verdict is not None)
        event(verdict)
        layer.quant = False
        if verdict == "run":
            np.testing.assert_allclose(layer(x), conv_twin(x, np.asarray(layer.weight), None if layer.bias is None
                                                           else np.asarray(layer.bias), s, p + p, d, adder),
                                       rtol=1e-5, atol=1e-6)
            return
        with pytest.raises((ValueError, MemoryError) if verdict == "big" else ValueError) as e:
            layer(x)
        if isinstance(e.value, ValueError):
            assert_names_argument(e.value)


POOLS = {(True, 1): MaxPool1d, (True, 2): MaxPool2d, (True, 3): MaxPool3d,
         (False, 1): AvgPool1d, (False, 2): AvgPool2d, (False, 3): AvgPool3d}


@st.composite
def pool_case(draw):
    is_max, n = draw(st.booleans()), draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(n))
    k = tuple(draw(size_value()) for _ in range(n))
    s = tuple(draw(size_value()) for _ in range(n))
    # torch's rule pad <= kernel / 2: draw the padding as a fraction of the kernel
    p = tuple(ki // draw(st.sampled_from([2, 3, 2**31, 2**62])) for ki in k)
    dil = tuple(draw(size_value()) for _ in range(n)) if is_max else (1,) * n
    ceil_mode = draw(st.booleans())
    extra = {"count_include_pad": draw(st.booleans())} if not is_max else {"dilation": dil}
    if not is_max and n > 1 and draw(st.booleans()):
        extra["divisor_override"] = draw(st.sampled_from([1, 3, 2**31, 2**40]))
    return is_max, spatial, k, s, p, dil, ceil_mode, extra


@pytest.mark.parametrize("path", sorted(PATHS))
@SETTINGS
@given(case=pool_case())
def test_hostile_pools(path, case):
    is_max, spatial, k, s, p, dil, ceil_mode, extra = case
    n = len(spatial)
    outs = [pool_axis(spatial[i], k[i], p[i], s[i], dil[i], ceil_mode) for i in range(n)]
    # what the kernels form: padded extent, span, pad + span, extent + a dilation step, and the
    # last window's end plus a step
    budget = max(k + s + p + dil)
    for i in range(n):
        ext, span = spatial[i] + 2 * p[i], dil[i] * (k[i] - 1) + 1
        last = (outs[i] - 1) * s[i] + span + dil[i] if outs[i] >= 1 else 0
        budget = max(budget, ext, span, p[i] + span, ext + dil[i], last)
    out_elems = 2 * math.prod(outs)
    verdict = classify(max(budget, out_elems * 8), out_elems, min(outs) >= 1)
    assume(verdict is not None)
    event(verdict)
    x = np.random.default_rng(sum(spatial)).standard_normal((2,) + spatial).astype(np.float32)
    try:
        layer = POOLS[is_max, n](k, stride=s, padding=p, ceil_mode=ceil_mode, **extra)
    except ValueError as e:  # the window checked at construction
        assert verdict == "error" and max(k + s + p + dil) > INT64_MAX, (case, e)
        assert names_argument(str(e)), str(e)
        return
    with kernel_path(path):
        if verdict == "run":
            out = layer(x)
            pre = (1,) * (3 - n)
            x3 = x.reshape((2,) + pre + spatial)
            k3, s3, p3, d3 = pre + k, pre + s, (0,) * (3 - n) + p, pre + dil
            if is_max:
                expected = maxpool_twin(x3, k3, s3, p3, d3, ceil_mode)
                np.testing.assert_array_equal(out, expected.reshape(out.shape))
            else:
                expected = avgpool_twin(x3, k3, s3, p3, ceil_mode, extra["count_include_pad"],
                                        extra.get("divisor_override", 0))
                np.testing.assert_allclose(out, expected.reshape(out.shape), rtol=1e-6, atol=0)
            return
        with pytest.raises((ValueError, MemoryError) if verdict == "big" else ValueError) as e:
            layer(x)
        if isinstance(e.value, ValueError):
            assert names_argument(str(e.value)), str(e.value)
