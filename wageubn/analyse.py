"""Compare a float network with its quantized twin, layer by layer ("do analyse over the
activations and weights" in the older docs).

>>> import numpy as np, wageubn, wageubn.function as nn
>>> from wageubn.analyse import compare
>>> wageubn.manual_seed(0)
>>> net, qnet = nn.Sequential(nn.Linear(4, 3), nn.ReLU()), nn.Sequential(nn.Linear(4, 3), nn.ReLU())
>>> _ = qnet.load_state_dict(net.state_dict()); _ = [m.floatilize() for m in net]
>>> rows = compare(net, qnet, np.ones((5, 4), np.float32))
>>> [r["layer"] for r in rows], rows[0]["cosine"] > 0.99
(['net.0', 'net.1'], True)
"""
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import _C
from .function._layer import QuantLayer
from .function.module import Module
from .threshold import DEFAULT_END_LIST, _pairs, add_hook, format_of, print_table, remove_hook


def _kl(p_counts: np.ndarray, q_counts: np.ndarray, eps: float = 1e-4) -> float:
    """KL(p || q) of two histograms, each normalised with ``eps`` on its empty bins."""
    def smooth(c):
        c = c / c.sum()
        return np.where(c == 0, eps, c) / (1 + eps * np.count_nonzero(c == 0))
    p, q = smooth(p_counts), smooth(q_counts)
    return float(np.sum(p * np.log(p / q)))


def _format_max(qmodule: QuantLayer, part: str) -> float:
    dec, all_ = getattr(qmodule, f"{part}_dec_bit_width"), getattr(qmodule, f"{part}_all_bit_width")
    return (2.0 ** (all_ - 1) - 1) * 2.0 ** (1 - dec)


def compare(net: Module, qnet: Module, x, name: str = "net", end_list: Sequence[type] = DEFAULT_END_LIST,
            bins: int = 256, show: bool = False) -> List[dict]:
    """Run ``x`` through both networks and compare each hooked layer's outputs.

    Each row: layer, cosine similarity, KL divergence between the two output histograms
    (at most ``bins`` bins over their common range, none finer than the quantization step), max and mean absolute error, the share of
    float values beyond the quantized output format's range (clipped; 0 unless the format
    clamps, i.e. ``iostrict``), and that format.
    """
    outputs = ({}, {})
    handles = []
    for net_, store in zip((net, qnet), outputs):
        handles += add_hook(net_, name, lambda m, i, o, store=store: store.__setitem__(id(m), np.asarray(o)),
                            end_list)
    try:
        net(x)
        qnet(x)
    finally:
        remove_hook(handles)
    rows = []
    for layer, module, qmodule in _pairs(net, qnet, name):
        if id(module) not in outputs[0] or id(qmodule) not in outputs[1]:
            continue
        f = outputs[0][id(module)].astype(np.float64).ravel()
        q = outputs[1][id(qmodule)].astype(np.float64).ravel()
        norm = np.linalg.norm(f) * np.linalg.norm(q)
        finite = np.isfinite(f) & np.isfinite(q)
        lo, hi = (float(min(f[finite].min(), q[finite].min())), float(max(f[finite].max(), q[finite].max()))) \
            if finite.any() else (0.0, 0.0)
        step = 2.0 ** (1 - qmodule.fmt(qmodule.acti_part)[1]) if isinstance(qmodule, QuantLayer) else 0.0
        # Bins no finer than the quantization step, or the discrete quantized values leave
        # empty bins between them and the divergence measures the grid, not the error.
        nbins = int(min(bins, max(16, (hi - lo) / step))) if step > 0 else bins
        kl = _kl(_C.histogram(f, nbins, lo, hi), _C.histogram(q, nbins, lo, hi)) if hi > lo else 0.0
        row = {"layer": layer, "cosine": float(f @ q / norm) if norm > 0 else math.nan, "kl": kl,
               "max_error": float(np.abs(f - q).max()) if f.size else 0.0,
               "mean_error": float(np.abs(f - q).mean()) if f.size else 0.0,
               "clipped": 0.0, "format": "float"}
        if isinstance(qmodule, QuantLayer) and qmodule.quant:
            part = qmodule.acti_part
            if qmodule.iostrict or part == "acti" or type(qmodule).__name__ == "BatchNorm2d":
                row["format"] = format_of(qmodule, part)
            if qmodule.iostrict and f.size:
                row["clipped"] = float(np.mean(np.abs(f) > _format_max(qmodule, part)))
        rows.append(row)
    if show:
        print_table(rows)
    return rows


def histogram(source, part: str = "acti", bins: int = 100,
              range: Optional[Tuple[float, float]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of an array, or of a module's stored output ('acti'), input
    ('input'), 'weight' or 'bias', ready for ``matplotlib.pyplot.stairs(counts, edges)``."""
    if isinstance(source, Module):
        attr = {"acti": "hook_out", "input": "hook_in"}.get(part, part)
        if getattr(source, attr, None) is None:
            raise ValueError(f"part: {type(source).__name__} has no {attr}")
        source = getattr(source, attr)
    values = np.asarray(source, np.float64).ravel()
    values = values[np.isfinite(values)]
    if range is None:
        range = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    lo, hi = range
    if hi <= lo:
        hi = lo + 1.0
    counts = _C.histogram(values, bins, lo, hi)
    return counts, np.linspace(lo, hi, bins + 1)


__all__ = ["compare", "histogram"]
