"""Entropy (KL) calibration: tqt 1.0.2's ``entropy_calibration`` against wageubn's, in one process.

Usage: ``python benchmarks/entropy.py [--repeats N] [--out PATH | --no-write]``

The data is one activation of a million values, the ReLU of a gaussian (half exact zeros).
tqt (on torch) searches the 1,920 cuts of its 2048-bin histogram in a Python loop of small
tensor operations; wageubn accumulates the histogram and runs the same search in C.  Timed:
tqt's ``entropy_calibration(model, qmodel)``; ours as ``init_kl_j(model, qmodel, compat=True)``
(tqt's exact arithmetic, the same threshold) and ``init_kl_j(model, qmodel)`` (the default
search).  Each call is end to end: histogram of the stored output, search, threshold set.
The calls alternate (tqt, ours compat, ours default) for ``--repeats`` rounds; medians are
reported with the ratio tqt / wageubn.  The requirement is a ratio of at least 100; the
script exits with status 1 below it.

The result goes into benchmarks/RESULTS.md as the section between the ``<!-- entropy -->``
markers (added at the end if absent); the rest of the file is left as it is.
"""
import argparse
import datetime
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reference"))

import wageubn  # noqa: E402
import wageubn.function as nn  # noqa: E402
import wageubn.threshold as th  # noqa: E402
from machine import cpu_and_cores  # noqa: E402

try:
    import torch
    import tqt_ref
    from tqt_ref.threshold import entropy_calibration as tqt_entropy_calibration
except ImportError as exc:  # pragma: no cover - a setup problem, explained
    sys.exit(f"benchmarks/entropy.py needs torch and tqt 1.0.2 as tests/reference/tqt_ref: {exc}.\n"
             "Install them with `pip install -e .[reference]` and `python tools/fetch_reference.py`.")

MARKER = "<!-- entropy -->"
REQUIRED_RATIO = 100.0
N = 1_000_000
BINS, CALI = 2048, 128


class Stored:
    """A float module after a hook stored its output: all that both functions read."""

    def __init__(self, hook_out):
        self.hook_out = hook_out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run(repeats):
    x = np.maximum(np.random.default_rng(0).standard_normal(N), 0).astype(np.float32)
    ours_model, tqt_model = Stored(x), Stored(torch.from_numpy(x))
    width = float(x.max() - x.min()) / BINS

    def tqt():
        qmodel = tqt_ref.function.ReLU(retrain=False)
        tqt_entropy_calibration(tqt_model, qmodel, bin_number=BINS, cali_number=CALI)
        return float(qmodel.acti_log2_t)

    def ours(compat):
        return lambda: th.init_kl_j(ours_model, nn.ReLU(), "acti", BINS, CALI, compat=compat)

    calls = {"tqt": tqt, "ours, compat=True": ours(True), "ours, default": ours(False)}
    for fn in calls.values():  # warm-up (tqt's first call also pays torch's lazy initialisation)
        fn()
    times = {name: [] for name in calls}
    results = {}
    for _ in range(repeats):
        for name, fn in calls.items():
            seconds, results[name] = timed(fn)
            times[name].append(seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    thresholds = {name: 2.0 ** r for name, r in results.items()}
    return medians, thresholds, width


def section(medians, thresholds, width, repeats, cpu, cores, load):
    tqt = medians["tqt"]
    rows = ["| implementation | median time | tqt / this | threshold |", "| --- | --- | --- | --- |"]
    for name, seconds in medians.items():
        ratio = "1" if name == "tqt" else f"{tqt / seconds:.0f}x"
        label = "tqt 1.0.2 `entropy_calibration`" if name == "tqt" else \
            f"wageubn `init_kl_j({'compat=True' if 'compat' in name else ''})`"
        rows.append(f"| {label} | {seconds * 1e3:.1f} ms | {ratio} | {thresholds[name]:.4f} |")
    worst = tqt / max(medians["ours, compat=True"], medians["ours, default"])
    verdict = "met" if worst >= REQUIRED_RATIO else "NOT met"
    lines = [
        MARKER,
        "## Entropy calibration",
        "",
        f"Produced by `python benchmarks/entropy.py` on {datetime.date.today().isoformat()}: one activation "
        f"of {N:,} values (ReLU of a gaussian, half exact zeros), {BINS} bins, cali_number {CALI}, "
        f"median of {repeats} alternating calls each, end to end (histogram, search, threshold).",
        "",
        *rows,
        "",
        f"wageubn is **{worst:.0f}x** faster than tqt (the slower of its two searches); the requirement "
        f"of at least {REQUIRED_RATIO:.0f}x is {verdict}. With `compat=True` the threshold is tqt's "
        f"(one bin is {width:.5f}); the default search keeps empty bins empty and leaves exact zeros "
        "out of the histogram, so its threshold differs.",
        "",
        f"Machine: {cpu}, {cores} cores available; Python {platform.python_version()}, NumPy "
        f"{np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), wageubn "
        f"{wageubn.__version__} ({wageubn.get_num_threads()} threads); load average at the start "
        f"{load:.2f}.",
        MARKER,
    ]
    return "\n".join(lines)


def update_results(path, text):
    """Replace the section between the markers, or append it; leave the rest untouched."""
    path = pathlib.Path(path)
    current = path.read_text() if path.exists() else ""
    start = current.find(MARKER)
    end = current.find(MARKER, start + len(MARKER)) if start >= 0 else -1
    if start >= 0 and end >= 0:
        updated = current[:start] + text + current[end + len(MARKER):]
    else:
        updated = current + ("\n" if current and not current.endswith("\n") else "") + \
            ("\n" if current else "") + text + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(updated)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds (tqt takes ~8 s a call)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"), help="report to update")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args()

    cpu, cores = cpu_and_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch.set_num_threads(cores)
    wageubn.set_num_threads(cores)
    if load > 0.5 * cores:
        print(f"warning: load average {load:.2f} on {cores} cores; figures may be noisy", file=sys.stderr)
    medians, thresholds, width = run(args.repeats)

    tqt = medians["tqt"]
    for name, seconds in medians.items():
        ratio = "" if name == "tqt" else f"   tqt / this = {tqt / seconds:6.0f}x"
        print(f"{name:18s} {seconds * 1e3:9.1f} ms   threshold {thresholds[name]:.5f}{ratio}")
    if abs(thresholds["ours, compat=True"] - thresholds["tqt"]) > width:
        print("warning: compat=True threshold is more than one bin from tqt's", file=sys.stderr)
    worst = tqt / max(medians["ours, compat=True"], medians["ours, default"])
    print(f"ratio (slower of ours): {worst:.0f}x; required >= {REQUIRED_RATIO:.0f}x")

    if not args.no_write:
        update_results(args.out, section(medians, thresholds, width, args.repeats, cpu, cores, load))
        print(f"updated the entropy section of {args.out}")
    return 0 if worst >= REQUIRED_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
