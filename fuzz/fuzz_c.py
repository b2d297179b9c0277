"""Fuzz target for every entry point of ``wageubn._C``: argument parsing, array conversion and
the kernels behind them.

Each input (a byte string) is decoded into one call: an entry point of ``_C`` (any callable
it exports, so new ones are fuzzed too, with generic arguments), its arguments -- mostly
well-formed and shape-consistent, so the kernels run, then mutated: None, bools, small,
huge and negative ints, floats (NaN, +-Inf, subnormals, +-0, huge), strings, tuples of the
wrong length, arrays of odd dtypes (float16/64, ints, bool, complex, object, str,
datetime, structured, byte-swapped), shapes (0 and 1 sizes, many dims) and layouts
(Fortran, negative and zero strides, misaligned, read-only) -- and random keywords.
The call must return or raise TypeError, ValueError, MemoryError or OverflowError; any
other exception, a crash, a sanitizer report or a hang is a finding.  Array arguments
must come back unchanged (except the output of ``clamp(..., inplace=True)``).

With atheris (``pip install -e ".[fuzz]"``), coverage-guided libFuzzer::

    python fuzz/fuzz_c.py -max_total_time=60 [-timeout=20] [corpus_dir] [crash_file ...]

Without it (or with ``--random``), the same target on random inputs for a bounded time,
reproducible from ``--seed``; a file argument replays a saved input::

    python fuzz/fuzz_c.py --random --max-seconds 60 [--seed 1] [--timeout 20]
    python fuzz/fuzz_c.py crash-<sha1>           # replay (either mode)

In random mode the input being run is kept in ``fuzz-last-input.bin`` (in --artifact-dir,
default the current directory) and removed on a clean exit, so a crash leaves it behind;
Python-level failures are saved as ``crash-<sha1>``.  See docs/reliability.md.
"""
import argparse
import faulthandler
import hashlib
import math
import os
import random
import sys
import tempfile
import time
import warnings

import numpy as np

try:  # atheris is optional: the --random mode needs only numpy
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

import wageubn._C as C

ALLOWED = (TypeError, ValueError, MemoryError, OverflowError)


# --------------------------------------------------------------------------------------
# Decoding bytes into choices (the same in atheris and random mode)
# --------------------------------------------------------------------------------------

class Source:
    """Consumes the input bytes; once they run out every choice is the first/smallest one."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def below(self, n: int) -> int:
        """An int in [0, n)."""
        if n <= 1:
            return 0
        v = 0
        for _ in range((n - 1).bit_length() // 8 + 1):
            v = (v << 8) | self.byte()
        return v % n

    def chance(self, num: int, den: int) -> bool:
        return self.below(den) < num

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def raw(self, nbytes: int) -> bytes:
        return bytes(self.byte() for _ in range(nbytes))


INT_EXTREMES = [
    -1, -2, 0, 1, 2, 3, 7, 8, 16, 31, 32, 53, 63, 64, 511, 512, 513, -511, -512, -513, 1000,
    2**30, 2**30 + 1, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32, 2**40, 2**40 + 1, 2**53,
    2**62, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64 - 1, 2**64, 10**30, -10**30,
]
F32 = np.finfo(np.float32)
FLOAT_POOL = [
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 0.3, 1e-3, 6.0, 255.0, 1e6,
    math.nan, -math.nan, math.inf, -math.inf, 5e-324, -5e-324, 2.2250738585072014e-308,
    float(F32.tiny), float(F32.smallest_subnormal), -float(F32.smallest_subnormal),
    float(F32.max), -float(F32.max), float(F32.max) * 2, 1e38, 3.4e38, 1e300, -1e300,
    1.7976931348623157e308, 2.0**-126, 2.0**-149, 2.0**-150, 2.0**100, 2.0**127, 2.0**128,
    16777216.0, 16777217.0, 9007199254740993.0,
]
DTYPES = [
    np.float32, np.float32, np.float32, np.float64, np.float16, np.int8, np.int16, np.int32,
    np.int64, np.uint8, np.uint32, np.uint64, np.bool_, np.complex64, np.longdouble,
    object, "U3", "S2", "M8[s]", "m8[s]", ">f4", ">i8", "V4", [("a", "<f4")],
]


def gen_int(src: Source) -> int:
    r = src.below(8)
    if r < 4:
        return src.below(6)
    if r < 7:
        return src.pick(INT_EXTREMES)
    return int.from_bytes(src.raw(9), "little", signed=True)


def gen_float(src: Source) -> float:
    r = src.below(4)
    if r < 3:
        return src.pick(FLOAT_POOL)
    return float(np.frombuffer(src.raw(8), np.float64)[0]) if src.pos + 8 <= len(src.data) else 0.25


def gen_values(src: Source, n: int) -> np.ndarray:
    """n float64 values, from a pool of special values, raw bits, or a fixed-point grid (the
    integer convolution's operands: 8 or 16 bits, or just too wide)."""
    mode = src.below(5)
    if mode == 4:
        top = src.pick([127, 255, 2047, 32767, 40000])
        q = np.array([src.below(2 * top + 1) - top for _ in range(n)], np.float64)
        return q * 2.0 ** -src.below(12)
    if mode == 0:
        return np.arange(n, dtype=np.float64) * 0.37 - 1.0
    if mode == 1:
        return np.array([src.pick(FLOAT_POOL) for _ in range(n)], np.float64)
    if mode == 2:
        return np.full(n, src.pick(FLOAT_POOL))
    raw = src.raw(4 * n)
    return np.frombuffer(raw.ljust(4 * n, b"\0"), np.float32).astype(np.float64)


def make_array(src: Source, shape, odd: bool = True) -> np.ndarray:
    """An array of ``shape`` (kept small); with ``odd``, sometimes an odd dtype or layout."""
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    vals = gen_values(src, n).reshape(shape)
    dtype = src.pick(DTYPES) if (odd and src.chance(1, 4)) else np.float32
    with np.errstate(all="ignore"):
        try:
            a = vals.astype(dtype)
        except (TypeError, ValueError):
            a = np.zeros(shape, dtype)
    if not odd or not src.chance(1, 3) or a.ndim == 0:
        return a
    layout = src.below(8)
    if layout == 0:
        return np.asfortranarray(a)
    if layout == 1:  # every other element of a bigger array
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if layout == 2:  # negative strides
        return a[tuple(slice(None, None, -1) for _ in range(a.ndim))]
    if layout == 3:  # zero strides (read-only broadcast view)
        return np.broadcast_to(a.reshape(-1)[:1].reshape((1,) * a.ndim), a.shape) if a.size else a
    if layout == 4:  # misaligned data
        if a.dtype.hasobject:
            return a
        buf = bytearray(a.nbytes + 1)
        m = np.frombuffer(buf, a.dtype, count=a.size, offset=1).reshape(a.shape)
        m[...] = a
        return m
    if layout == 5:
        a.flags.writeable = False
        return a
    if layout == 6:  # transposed
        return a.T
    return a.view(np.ndarray)[...]


def gen_shape(src: Source, ndim: int, zero_ok: bool = True):
    return tuple(src.below(5) if (zero_ok and src.chance(1, 8)) else 1 + src.below(4) for _ in range(ndim))


def gen_array(src: Source) -> np.ndarray:
    ndim = src.below(6)
    return make_array(src, gen_shape(src, ndim))


def gen_any(src: Source, depth: int = 0):
    """Any argument value."""
    r = src.below(16 if depth < 2 else 11)
    if r == 0:
        return None
    if r == 1:
        return src.chance(1, 2)
    if r in (2, 3):
        return gen_int(src)
    if r == 4:
        return gen_float(src)
    if r == 5:
        return src.pick(["", "x", "1", "nan", "\udcff", "a" * 100])
    if r == 6:
        return src.raw(src.below(6))
    if r == 7:
        return complex(gen_float(src), 1.0)
    if r == 8:
        return src.pick([np.float32(1.5), np.int64(3), np.bool_(True), np.float64(math.nan),
                         np.uint64(2**64 - 1), np.int8(-1), np.array(2), object(), Ellipsis])
    if r in (9, 10):
        return gen_array(src)
    n = src.below(6)
    items = [gen_any(src, depth + 1) for _ in range(n)]
    if r == 11:
        return tuple(items)
    if r == 12:
        return items
    if r == 13:
        return {str(i): v for i, v in enumerate(items)}
    if r == 14:
        return range(n)
    return iter(items)


def gen_fmt(src: Source):
    if src.chance(1, 6):
        return None
    if src.chance(1, 8):
        return gen_any(src)
    kind = src.below(3) if src.chance(7, 8) else gen_int(src)
    dec = src.pick([-512, -3, 0, 1, 2, 4, 8, 12, 16, 24, 52, 130, 512]) if src.chance(3, 4) else gen_int(src)
    all_ = src.pick([1, 2, 3, 8, 12, 16, 32, 64, 512]) if src.chance(3, 4) else gen_int(src)
    return (kind, dec, all_)


def gen_width(src: Source):
    return src.pick([-512, -4, 0, 1, 2, 3, 8, 16, 24, 32, 64, 512]) if src.chance(3, 4) else gen_int(src)


def gen_threads(src: Source):
    return 1 + src.below(3) if src.chance(7, 8) else src.pick([0, -1, True, 2**31, 1.0])


def gen_seed(src: Source):
    return src.below(2**16) if src.chance(7, 8) else gen_int(src)


def gen_small_ints(src: Source, n: int, lo: int):
    return tuple(lo + src.below(3) for _ in range(n))


# --------------------------------------------------------------------------------------
# Well-formed (mostly) arguments of each entry point: (args, kwargs)
# --------------------------------------------------------------------------------------

def spec_quantize(src):
    return [gen_array(src), gen_fmt(src)], {}


def spec_sround(src):
    return [gen_array(src)], {"seed": gen_seed(src)}


def spec_shiftquant(src):
    return [gen_array(src), gen_width(src)], {}


spec_errorquant = spec_shiftquant


def spec_constquant(src):
    return [gen_array(src), gen_width(src), gen_width(src)], {"seed": gen_seed(src)}


def spec_clamp(src):
    x = gen_array(src)
    lo, hi = sorted([src.pick([0.0, -1.0, -math.inf, 0.5]), src.pick([6.0, math.inf, 1.0, 0.0])])
    if src.chance(1, 6):
        lo, hi = gen_float(src), gen_float(src)
    return [x, lo, hi, gen_fmt(src), gen_fmt(src), src.chance(1, 3), gen_threads(src)], {}


def _patch(src, adder: bool):
    groups = 1 if adder or src.chance(2, 3) else 1 + src.below(3)
    n = src.below(3)
    c = groups * (1 + src.below(3))
    oc = groups * (1 + src.below(3))
    kh, kw = 1 + src.below(3), 1 + src.below(3)
    stride = gen_small_ints(src, 2, 1)
    dil = gen_small_ints(src, 2, 1)
    pad = gen_small_ints(src, 4, 0)
    h = max(1, dil[0] * (kh - 1) + 1 - pad[0] - pad[2] + src.below(4))
    w = max(1, dil[1] * (kw - 1) + 1 - pad[1] - pad[3] + src.below(4))
    x = make_array(src, (n, c, h, w))
    wt = make_array(src, (oc, c // groups, kh, kw))
    b = make_array(src, (oc,)) if src.chance(1, 2) else None
    args = [x, wt, b, stride, pad, dil, groups, gen_fmt(src), src.chance(1, 2), gen_threads(src)]
    return args, ({"in_fmt": gen_fmt(src)} if src.chance(1, 2) else {})


def spec_conv2d(src):
    return _patch(src, False)


def spec_adder2d(src):
    return _patch(src, True)


def spec_linear(src):
    m, k, n = src.below(4), 1 + src.below(5), 1 + src.below(4)
    b = make_array(src, (n,)) if src.chance(1, 2) else None
    return [make_array(src, (m, k)), make_array(src, (n, k)), b, gen_fmt(src), src.chance(1, 2),
            gen_threads(src)], {}


def spec_batchnorm(src):
    shape = (src.below(3), 1 + src.below(3)) + gen_shape(src, src.below(3))
    c = shape[1]
    vec = lambda: make_array(src, (c,))  # noqa: E731
    var = np.abs(make_array(src, (c,), odd=False)) if src.chance(3, 4) else vec()
    eps = src.pick([1e-5, 0.0, 1.0, -1.0, math.nan, math.inf, 1e-300])
    kwargs = {"in_fmt": gen_fmt(src)} if src.chance(1, 2) else {}
    if src.chance(1, 3):
        kwargs["lo"], kwargs["hi"] = src.pick([0.0, -1.0, -math.inf]), src.pick([6.0, math.inf, 0.5])
    return [make_array(src, shape), vec(), var, vec() if src.chance(1, 2) else None,
            vec() if src.chance(1, 2) else None, eps, gen_fmt(src), gen_threads(src)], kwargs


def spec_batchnorm_stats(src):
    shape = (src.below(3), src.below(4)) + gen_shape(src, src.below(3))
    return [make_array(src, shape), gen_threads(src)], {}


def _pool(src, is_max: bool):
    k = gen_small_ints(src, 3, 1)
    s = gen_small_ints(src, 3, 1)
    p = tuple(src.below(ki // 2 + 1) for ki in k)
    d = gen_small_ints(src, 3, 1) if is_max else (1, 1, 1)
    size = tuple(max(1, di * (ki - 1) + 1 - 2 * pi + src.below(3)) for ki, pi, di in zip(k, p, d))
    x = make_array(src, (src.below(3),) + size)
    args = [x, k, s, p, d, src.chance(1, 2), src.chance(1, 2) if is_max else False]
    kw = {"nthreads": gen_threads(src)}
    if not is_max:
        kw["count_include_pad"] = src.chance(1, 2)
        kw["divisor_override"] = src.pick([0, 1, 3, 7])
    return args, kw


def spec_maxpool(src):
    return _pool(src, True)


def spec_avgpool(src):
    return _pool(src, False)


def spec_moments(src):
    return [gen_array(src)], {}


def spec_same(src):
    a = gen_array(src)
    b = np.array(a, copy=True) if src.chance(1, 2) and a.dtype.kind in "biuf" else gen_array(src)
    return [a, b], {}


def spec_histogram(src):
    lo, hi = sorted([gen_float(src) if src.chance(1, 4) else -1.0, gen_float(src) if src.chance(1, 4) else 1.0])
    bins = 1 + src.below(64) if src.chance(7, 8) else gen_int(src)
    return [gen_array(src), bins, lo, hi], ({"skip_zeros": src.chance(1, 2)} if src.chance(1, 2) else {})


def spec_entropy_search(src):
    bins = 1 + src.below(80)
    hist = np.abs(make_array(src, (bins,), odd=False)) if src.chance(3, 4) else make_array(src, (bins,))
    if src.chance(1, 2) and hist.dtype.kind == "f":
        hist = np.floor(hist * 10)
    cali = 1 + src.below(bins) if src.chance(7, 8) else gen_int(src)
    kw = {"symmetric": src.chance(1, 2)}
    if src.chance(1, 2):
        kw["compat"] = src.chance(1, 2)
    return [hist, cali], kw


def spec_generic(src):
    return [gen_any(src) for _ in range(src.below(6))], {}


SPECS = {name[5:]: fn for name, fn in globals().items() if name.startswith("spec_") and name != "spec_generic"}
ENTRY_POINTS = sorted(name for name in dir(C) if not name.startswith("_") and callable(getattr(C, name)))
NEW_ENTRY_POINTS = [name for name in ENTRY_POINTS if name not in SPECS]


def mutate(src: Source, args: list, kwargs: dict):
    """Sometimes replace, drop or add arguments and keywords."""
    if src.chance(1, 3):
        for _ in range(1 + src.below(3)):
            if args and src.chance(3, 4):
                args[src.below(len(args))] = gen_any(src)
            elif kwargs:
                kwargs[src.pick(sorted(kwargs))] = gen_any(src)
    if src.chance(1, 16):
        del args[src.below(len(args) + 1):]
    if src.chance(1, 16):
        args.append(gen_any(src))
    if src.chance(1, 16):
        kwargs[src.pick(["x", "input", "k", "k_dr", "seed", "nthreads", "fmt", "bogus", "weight"])] = gen_any(src)
    return args, kwargs


def snapshot(value):
    """Bytes of every ndarray reachable in an argument, to check it is not modified."""
    if isinstance(value, np.ndarray):
        return [(value, value.tobytes())]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in snapshot(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in snapshot(v)]
    return []


def check_result(name: str, result) -> None:
    """What comes back without an error must be a well-formed result."""
    if name in ("moments",):
        assert isinstance(result, dict), result
    elif name == "same":
        assert isinstance(result, bool), result
    elif name in ("batchnorm_stats", "entropy_search") or isinstance(result, tuple):
        assert isinstance(result, tuple), type(result)
    elif name in SPECS:
        assert isinstance(result, np.ndarray), type(result)
        assert result.flags.c_contiguous or result.size == 0


def TestOneInput(data: bytes) -> None:
    warnings.simplefilter("ignore")  # numpy's cast warnings (ComplexWarning, overflow) are not findings
    src = Source(data)
    name = src.pick(ENTRY_POINTS)
    fn = getattr(C, name)
    with np.errstate(all="ignore"):
        args, kwargs = SPECS.get(name, spec_generic)(src)
        args, kwargs = mutate(src, list(args), dict(kwargs))
    # clamp(..., inplace=True) writes into its first argument, and returns it
    inplace = name == "clamp" and (len(args) <= 5 or not isinstance(args[5], bool) or args[5]
                                   or "inplace" in kwargs)
    before = [] if inplace else snapshot(args) + snapshot(kwargs)
    try:
        with np.errstate(all="ignore"):  # numpy's own float64 -> float32 cast warnings
            result = fn(*args, **kwargs)
    except ALLOWED:
        result = None
    if result is not None and not inplace:
        check_result(name, result)
    for array, data_before in before:
        if array.tobytes() != data_before:
            raise AssertionError(f"{name} modified an array argument")


# --------------------------------------------------------------------------------------
# Drivers
# --------------------------------------------------------------------------------------

def limit_memory(extra_gib: float = 4.0) -> None:
    """Cap the address space (not under ASan, which reserves terabytes of shadow memory), so
    that a legitimately huge request fails with MemoryError instead of swapping the machine."""
    if os.environ.get("LD_PRELOAD", "").find("asan") >= 0:
        return
    try:
        import resource
        with open("/proc/self/statm") as f:
            vm = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = vm + int(extra_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, OSError, ValueError):
        pass


def run_random(max_seconds: float, seed: int, timeout: float, artifact_dir: str, max_runs: int) -> int:
    rng = random.Random(seed)
    last = os.path.join(artifact_dir, "fuzz-last-input.bin")
    fd = os.open(last, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.monotonic()
    runs = 0
    print(f"fuzz_c: random mode, seed {seed}, {max_seconds:g} s, entry points: {', '.join(ENTRY_POINTS)}",
          flush=True)
    if NEW_ENTRY_POINTS:
        print(f"fuzz_c: no spec for {NEW_ENTRY_POINTS}: fuzzed with generic arguments", flush=True)
    while time.monotonic() - start < max_seconds and (max_runs <= 0 or runs < max_runs):
        data = rng.randbytes(rng.choice([8, 32, 64, 128, 256, 512, 1024]))
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        faulthandler.dump_traceback_later(timeout, exit=True)
        try:
            TestOneInput(data)
        except BaseException:
            path = os.path.join(artifact_dir, "crash-" + hashlib.sha1(data).hexdigest())
            with open(path, "wb") as f:
                f.write(data)
            print(f"fuzz_c: failing input saved as {path} (run {runs}); replay: python {sys.argv[0]} {path}",
                  file=sys.stderr, flush=True)
            raise
        finally:
            faulthandler.cancel_dump_traceback_later()
        runs += 1
    os.close(fd)
    os.unlink(last)
    print(f"fuzz_c: {runs} runs in {time.monotonic() - start:.1f} s, no finding", flush=True)
    return 0


def replay(paths) -> int:
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        print(f"fuzz_c: replaying {path} ({len(data)} bytes)", flush=True)
        TestOneInput(data)
    print("fuzz_c: replay finished without a finding", flush=True)
    return 0


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=True)
    parser.add_argument("--random", action="store_true", help="random inputs instead of atheris")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--max-runs", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per input before it is a hang")
    parser.add_argument("--artifact-dir", default=None, help="where failing inputs (and, with atheris, "
                        "the seed corpus) go; default: the current directory (a temporary corpus)")
    parser.add_argument("--seed-inputs", type=int, default=64, help="random seed inputs for atheris' corpus")
    own, rest = parser.parse_known_args(argv[1:])
    limit_memory()
    files = [a for a in rest if not a.startswith("-") and os.path.isfile(a)]
    if own.random or atheris is None:
        if atheris is None and not own.random:
            print("fuzz_c: atheris is not installed; falling back to random inputs", flush=True)
        if files:
            return replay(files)
        seed = own.seed if own.seed is not None else int.from_bytes(os.urandom(4), "little")
        return run_random(own.max_seconds, seed, own.timeout, own.artifact_dir or ".", own.max_runs)
    print(f"fuzz_c: atheris, entry points: {', '.join(ENTRY_POINTS)}", flush=True)
    if NEW_ENTRY_POINTS:
        print(f"fuzz_c: no spec for {NEW_ENTRY_POINTS}: fuzzed with generic arguments", flush=True)
    extra = [] if any(a.startswith("-timeout=") for a in rest) else [f"-timeout={int(own.timeout)}"]
    if not any(a.startswith("-rss_limit_mb=") for a in rest):
        extra.append("-rss_limit_mb=4096")
    if not any(os.path.isdir(a) for a in rest) and not files:
        # libFuzzer starts from an empty input; random seeds reach every entry point at once
        corpus = (os.path.join(own.artifact_dir, "corpus") if own.artifact_dir
                  else tempfile.mkdtemp(prefix="wageubn-fuzz-corpus-"))
        os.makedirs(corpus, exist_ok=True)
        rng = random.Random(own.seed if own.seed is not None else 0)
        for i in range(own.seed_inputs):
            with open(os.path.join(corpus, f"seed-{i}"), "wb") as f:
                f.write(rng.randbytes(rng.choice([16, 64, 256])))
        rest = rest + [corpus]
    # Coverage feedback comes from Python bytecode (this decoder, numpy's Python layer): the
    # C extension is built by gcc, which has no libFuzzer coverage instrumentation.
    atheris.instrument_all()
    atheris.Setup([argv[0]] + extra + rest, TestOneInput)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
