"""A short run of every wageubn._C entry point (valid and invalid arguments) for valgrind.

    PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 --track-origins=yes \\
        --suppressions=fuzz/valgrind-python.supp python fuzz/memcheck_smoke.py

Also runs the fuzz target on a few hundred random inputs (fuzz/fuzz_c.py).  Prints "ok" at
the end; see docs/reliability.md.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wageubn.function as nn  # noqa: E402
from wageubn import _C  # noqa: E402

import fuzz_c  # noqa: E402

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
x[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
v = x.ravel()

_C.quantize(v, (2, 8, 8))
_C.quantize(v[::3], (1, -5, 8))
_C.sround(v, seed=1)
_C.shiftquant(v, 4)
_C.constquant(v, 8, 4, seed=2)
_C.errorquant(v, 8)
_C.clamp(v, 0.0, 6.0, (1, 8, 8), (2, 8, 8), False, 2)
_C.clamp(v.copy()[::2], 0.0, 6.0, None, None, True, 2)
for exact in (False, True):
    _C.conv2d(x, w, np.ones(4), (1, 2), (1, 0, 2, 1), (2, 1), 1, (2, 8, 12), exact, 2)
    _C.conv2d(np.ones((1, 4, 6, 6), np.float32), np.ones((4, 2, 1, 1), np.float32), None, (1, 1),
              (0, 0, 0, 0), (1, 1), 2, None, exact, 2)
    _C.adder2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, (1, 8, 8), exact, 2)
    _C.linear(v.reshape(2, -1), rng.standard_normal((5, v.size // 2)).astype(np.float32), np.ones(5), None,
              exact, 2)
_C.batchnorm(x, np.zeros(3), np.ones(3), np.ones(3), np.zeros(3), 1e-5, (1, 8, 8), 2)
_C.batchnorm_stats(x, 2)
_C.maxpool(x.reshape(6, 1, 9, 9), (1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 2, 1), ceil_mode=True,
           return_indices=True, nthreads=2)
_C.avgpool(x.reshape(6, 1, 9, 9), (1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1), ceil_mode=True,
           count_include_pad=False, divisor_override=0, nthreads=2)
for name in ("moments", "histogram", "entropy_search"):
    if hasattr(_C, name):
        {"moments": lambda: _C.moments(v), "histogram": lambda: _C.histogram(v, 16, -2.0, 2.0),
         "entropy_search": lambda: _C.entropy_search(np.abs(v[np.isfinite(v)]) * 10, 8)}[name]()

bad = [lambda: _C.quantize("a", None), lambda: _C.quantize(v, (9, 1, 1)), lambda: _C.conv2d(x, w, None, (1,), (0,) * 4, (1, 1), 1),
       lambda: _C.conv2d(x, w, np.ones(3), (1, 1), (0,) * 4, (1, 1), 1), lambda: _C.linear(v, w),
       lambda: _C.maxpool(x, (1, 2, 2), (1, 1, 1), (0, 0, 3), (1, 1, 1)), lambda: _C.clamp([1.0], 0, 1, None, None, True),
       lambda: _C.batchnorm(x, np.zeros(2), np.ones(3))]
for call in bad:
    try:
        call()
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError("accepted bad arguments")

net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, iostrict=True), nn.BatchNorm2d(4), nn.ReLU6(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
net(x)

rand = np.random.default_rng(1)
for _ in range(int(os.environ.get("WAGEUBN_SMOKE_FUZZ_RUNS", "300"))):
    fuzz_c.TestOneInput(rand.bytes(int(rand.choice([16, 64, 256]))))
print("ok")
