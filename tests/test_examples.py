"""The README's examples run as written and print what the README shows."""
import pathlib
import re
import subprocess
import sys

import numpy as np

import wageubn.threshold as th

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_example(name: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True,
                          timeout=300, cwd=str(ROOT / "tests"))
    assert done.returncode == 0, done.stderr
    return done.stdout


def percentages(text: str) -> dict:
    return {m.group(1).strip(): float(m.group(2)) for m in re.finditer(r"^(.+?):\s+([\d.]+)%$", text, re.M)}


def test_quickstart_prints_the_readme_accuracies():
    acc = percentages(run_example("quickstart.py"))
    readme = percentages((ROOT / "README.md").read_text())
    assert acc["float accuracy"] == readme["float accuracy"] == 97.25
    assert acc["quantized, iostrict=True"] == readme["quantized, iostrict=True"]
    assert acc["quantized, default widths"] > 96


def test_calibration_example_recovers_8_bit_accuracy():
    out = run_example("calibrate.py")
    acc = percentages(out)
    assert acc["8 bits, calibrated placement"] >= acc["float"] - 1.0
    assert acc["8 bits, default fixed point"] < acc["float"] - 5.0
    assert re.search(r"^net\.proc\.0\s+weight\s+max\s+\S+\s+\S+\s+Q-1\.8", out, re.M)
    readme = percentages((ROOT / "README.md").read_text())
    assert readme["8 bits, calibrated placement"] == acc["8 bits, calibrated placement"]


def test_calibrate_progress_bar_is_optional(monkeypatch):
    import wageubn.function as nn
    net, qnet = nn.Sequential(nn.Linear(3, 2), nn.ReLU()), nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    batches = [np.full((4, 3), v, np.float32) for v in (1.0, 5.0)]
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    rows = th.calibrate(net, qnet, batches, acti_method="max", progress=True)
    assert {r["part"] for r in rows} >= {"weight", "acti"}
