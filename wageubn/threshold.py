"""Hooks, threshold initialisation and automatic fixed-point placement (tqt 1.0.2's API).

The workflow of the documentation:

1. build the float network and its quantized twin from the same model code and load the
   trained weights into both;
2. ``add_hook`` on the float network and run calibration data through it;
3. ``init_network(net, qnet)`` sets every quantized layer's thresholds (``weight_log2_t``,
   ``bias_log2_t``, ``acti_log2_t``, ``input_log2_t``, and BatchNorm's ``mean_log2_t`` /
   ``var_log2_t``) and, by default, places each part's fixed point: ``dec = all - ceil(log2_t)``;
4. ``remove_hook`` and run the quantized network.

``calibrate(net, qnet, batches)`` does steps 2-4 over many batches, accumulating
statistics and histograms in C.

>>> import numpy as np, wageubn.function as nn, wageubn.threshold as th
>>> net, qnet = nn.Sequential(nn.Linear(4, 3), nn.ReLU()), nn.Sequential(nn.Linear(4, 3), nn.ReLU())
>>> _ = qnet.load_state_dict(net.state_dict())
>>> handles = th.add_hook(net, "net", th.hook_handler)
>>> _ = net(np.full((8, 4), 30.0, np.float32))
>>> [(name, out.shape) for name, out in th.get_hook(net, "net")]
[('net.0', (8, 3)), ('net.1', (8, 3))]
>>> rows = th.init_network(net, qnet, "net", acti_method="max")
>>> th.remove_hook(handles); th.remove_hookout(net, "net")
>>> qnet[1].acti_dec_bit_width < 8  # activations far above 1 get integer bits
True
"""
import math
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _C
from .function import Adder2d, BatchNorm2d, Conv2d, Linear, ReLU, ReLU6
from .function._layer import QuantLayer
from .function.module import Module, ModuleDict, ModuleList, RemovableHandle, Sequential
from .function.number import MAX_WIDTH

DEFAULT_END_LIST = (Conv2d, Linear, ReLU, BatchNorm2d, ReLU6, Adder2d)
METHODS = {"max": "max", "3sd": "3sd", "entro": "entro", "kl_j": "entro", "kl": "entro"}

# --------------------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------------------


def hook_handler(module: Module, input: tuple, output) -> None:
    """A forward hook that stores the layer's output as ``module.hook_out``.

    It also keeps the first input as ``module.hook_in``, from which ``init_network``
    places the input format of ``iostrict`` layers.
    """
    module.hook_out = output
    if input:
        module.hook_in = input[0]


def add_hook(net: Module, name: str = "net", hook_handler: Callable = hook_handler,
             end_list: Sequence[type] = DEFAULT_END_LIST, show: bool = False) -> List[RemovableHandle]:
    """Register ``hook_handler`` on every module of ``net`` (at any depth) whose class is in ``end_list``."""
    handles = []
    classes = tuple(end_list)
    for sub_name, module in net.named_modules(prefix=name):
        if classes and isinstance(module, classes):
            handles.append(module.register_forward_hook(hook_handler))
            if show:
                print(sub_name, "has added a hook")
    return handles


def add_hook_general(layer: Module, hook_handler: Callable = hook_handler) -> List[RemovableHandle]:
    """Hook every operation of ``layer``: containers (ModuleList, Sequential, ModuleDict) are
    followed, and so is a module's ``proc``, either a container or a list of attribute names;
    every other module gets the hook."""
    if isinstance(layer, (ModuleList, Sequential)):
        return [h for sub in layer for h in add_hook_general(sub, hook_handler)]
    if isinstance(layer, ModuleDict):
        return [h for sub in layer.values() for h in add_hook_general(sub, hook_handler)]
    proc = getattr(layer, "proc", None)
    if isinstance(proc, Module):
        return add_hook_general(proc, hook_handler)
    if isinstance(proc, (list, tuple)):
        return [h for attr in proc for h in add_hook_general(getattr(layer, attr), hook_handler)]
    return [layer.register_forward_hook(hook_handler)]


def remove_hook(handles: Iterable[RemovableHandle]) -> None:
    """Remove the hooks ``add_hook`` returned."""
    for handle in handles:
        handle.remove()


def get_hook(net: Module, name: str = "net", show: bool = False) -> List[Tuple[str, np.ndarray]]:
    """``[(dotted name, stored output)]`` for every module of ``net`` that holds a ``hook_out``."""
    found = []
    for sub_name, module in net.named_modules(prefix=name):
        if "hook_out" in module.__dict__:
            found.append((sub_name, module.hook_out))
            if show:
                print(sub_name, "hook has been fetched")
    return found


def remove_hookout(net: Module, name: str = "net", show: bool = False) -> None:
    """Delete the stored outputs (and inputs) of every module of ``net``."""
    for sub_name, module in net.named_modules(prefix=name):
        stored = [k for k in ("hook_out", "hook_in") if k in module.__dict__]
        for key in stored:
            delattr(module, key)
        if stored and show:
            print(sub_name, "has removed hookout")


# --------------------------------------------------------------------------------------
# Statistics of a stream of arrays
# --------------------------------------------------------------------------------------


class Statistics:
    """Streaming moments and a histogram of every finite value seen, computed in C.

    The histogram spans ``[lo, hi]`` of the first batch; a later batch beyond it doubles the
    range (merging pairs of bins) until it fits, so bin edges never move.  For one batch
    it is exactly tqt's ``histc`` over ``[min, max]``.  With ``skip_zeros`` exact zeros are
    left out of the histogram (not of the moments): every format holds 0 exactly, and the
    spike of zeros after a ReLU would otherwise dominate the entropy search.
    """

    def __init__(self, bins: int = 2048, skip_zeros: bool = False):
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2 or bins % 2:
            raise ValueError(f"bin_number: expected an even int >= 2, got {bins!r}")
        self.bins = int(bins)
        self.skip_zeros = bool(skip_zeros)
        self.count = 0.0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.lo = self.hi = None
        self.hist: Optional[np.ndarray] = None
        self.point_mass = 0.0  # values seen while every value was one number

    def update(self, x) -> "Statistics":
        x = np.asarray(x)
        m = _C.moments(x)
        if m["count"] == 0:
            return self
        total = self.count + m["count"]  # Chan et al.'s pairwise update
        delta = m["mean"] - self.mean
        self.m2 += m["m2"] + delta * delta * self.count * m["count"] / total
        self.mean += delta * m["count"] / total
        self.count = total
        self.min, self.max = min(self.min, m["min"]), max(self.max, m["max"])
        self._add_histogram(x, m["min"], m["max"], m["count"])
        return self

    def _add_histogram(self, x: np.ndarray, lo: float, hi: float, count: float) -> None:
        if self.hist is None:
            if lo == hi and (self.lo is None or self.lo == lo):
                self.lo = self.hi = lo
                self.point_mass += count
                return
            point, mass = self.lo, self.point_mass
            self.lo, self.hi = min(lo, point if point is not None else lo), max(hi, point if point is not None else hi)
            self.hist = np.zeros(self.bins)
            if mass:
                self.hist += _C.histogram(np.array([point], np.float32), self.bins, self.lo, self.hi,
                                          self.skip_zeros) * mass
        while hi > self.hi or lo < self.lo:
            width = self.hi - self.lo
            merged = self.hist.reshape(-1, 2).sum(axis=1)
            empty = np.zeros(self.bins // 2)
            if hi > self.hi:
                self.hist, self.hi = np.concatenate([merged, empty]), self.lo + 2 * width
            else:
                self.hist, self.lo = np.concatenate([empty, merged]), self.hi - 2 * width
        self.hist += _C.histogram(x, self.bins, self.lo, self.hi, self.skip_zeros)

    @property
    def std(self) -> float:
        """Standard deviation with Bessel's correction, as torch.std."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else math.nan

    def method_used(self, method: str, compat: bool = False) -> str:
        """The method :meth:`threshold` really applies (signed data turns 'entro' into 'max')."""
        method = _method(method)
        if method == "entro" and not compat and self.min < 0:
            return "max"
        return method

    def threshold(self, method: str = "max", cali_number: int = 128, symmetric: bool = False,
                  compat: bool = False, eps: float = 1e-8) -> float:
        """``log2`` of the threshold: 'max' (max |v|), '3sd' (|mean| + 3 std) or 'entro' (KL).

        'entro' is tqt's search (``compat=True``: its exact arithmetic, +1e-12 on every bin),
        or by default the same search with empty bins kept empty and smoothed divergences
        (TensorRT's form), which also works on discrete-valued data such as image pixels.
        The search picks a cut of the histogram over [min, max], a magnitude only for
        non-negative data: by default signed data falls back to 'max' (see ``method_used``).
        """
        if self.count == 0:
            raise ValueError("threshold: no finite value has been seen")
        method = _method(method)
        if method == "max":
            return math.log2(max(abs(self.min), abs(self.max)) + eps)
        if method == "3sd":
            return math.log2(abs(self.mean) + 3 * self.std + eps)
        if not 1 <= cali_number < self.bins:
            raise ValueError(f"cali_number: expected 1 <= cali_number < bin_number ({self.bins}), got {cali_number}")
        if self.hist is None:  # every value was the same: tqt's bin width is 0
            return math.log2(abs(self.lo) + 1e-12)
        if not self.hist.any() or (self.min < 0 and not compat):
            # Only zeros were histogrammed, or the data is signed: the search returns a cut
            # position, which is a magnitude only for non-negative data.
            return self.threshold("max", eps=eps)
        hist = self.hist + 1e-12 if compat else self.hist
        best, _ = _C.entropy_search(hist, cali_number, symmetric, compat)
        width = (self.hi - self.lo) / self.bins
        return math.log2(abs(self.lo + (best + 0.5) * width + 1e-12))


def _method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {sorted(METHODS)}, got {method!r}")
    return METHODS[method]


# --------------------------------------------------------------------------------------
# Per-layer initialisers
# --------------------------------------------------------------------------------------

_SOURCES = {"weight": "weight", "bias": "bias", "acti": "hook_out", "input": "hook_in",
            "mean": "running_mean", "var": "running_var"}


def _source(module: Module, part: str) -> np.ndarray:
    if part not in _SOURCES:
        raise ValueError(f"part: expected one of {sorted(_SOURCES)}, got {part!r}")
    value = getattr(module, _SOURCES[part], None)
    if value is None:
        where = "run data through the float network with hooks first" if part in ("acti", "input") else \
            "the module has none"
        raise ValueError(f"{type(module).__name__} has no {_SOURCES[part]} for part {part!r} ({where})")
    return np.asarray(value)


def _init(module: Module, qmodule: QuantLayer, part: str, method: str, stats: Optional[Statistics] = None,
          **kw) -> float:
    if not isinstance(qmodule, QuantLayer):
        raise TypeError(f"qmodule: expected a quantized wageubn layer, got {type(qmodule).__name__}")
    attr = f"{part}_log2_t"
    if attr not in qmodule.threshold_parts():
        raise ValueError(f"part: {type(qmodule).__name__} has no {attr}")
    if stats is None:
        skip = method == "entro" and not kw.get("compat", False)
        stats = Statistics(kw.pop("bin_number", 2048), skip_zeros=skip).update(_source(module, part))
    log2_t = stats.threshold(method, **kw)
    qmodule.set_threshold(attr, log2_t)
    return log2_t


def init_max(module: Module, qmodule: QuantLayer, part: str = "weight", eps: float = 1e-8) -> float:
    """``log2(max |v| + eps)`` of ``module``'s weight, bias, stored output ('acti') or input."""
    return _init(module, qmodule, part, "max", eps=eps)


def init_3sd(module: Module, qmodule: QuantLayer, part: str = "weight", eps: float = 1e-8) -> float:
    """``log2(|mean| + 3 std + eps)`` (std with Bessel's correction) of the chosen part."""
    return _init(module, qmodule, part, "3sd", eps=eps)


def init_kl_j(module: Module, qmodule: QuantLayer, part: str = "acti", bin_number: int = 2048,
              cali_number: int = 128, symmetric: bool = False, compat: bool = False) -> float:
    """Entropy calibration: the cut of a ``bin_number``-bin histogram whose first bins, merged
    into ``cali_number`` groups, lose the least information.  ``symmetric=True`` uses the
    symmetric (Jeffreys) divergence instead of KL.  ``compat=True`` is tqt 1.0.2's exact
    algorithm; by default exact zeros are left out and empty bins stay empty (see
    :meth:`Statistics.threshold`)."""
    return _init(module, qmodule, part, "entro", bin_number=bin_number, cali_number=cali_number,
                 symmetric=symmetric, compat=compat)


# tqt's names
def threshold_weight_max(module, qmodule, eps=1e-8): return init_max(module, qmodule, "weight", eps)
def threshold_bias_max(module, qmodule, eps=1e-8): return init_max(module, qmodule, "bias", eps)
def threshold_activation_max(module, qmodule, eps=1e-8): return init_max(module, qmodule, "acti", eps)
def threshold_weight_3sd(module, qmodule, eps=1e-8): return init_3sd(module, qmodule, "weight", eps)
def threshold_bias_3sd(module, qmodule, eps=1e-8): return init_3sd(module, qmodule, "bias", eps)
def threshold_activation_3sd(module, qmodule, eps=1e-8): return init_3sd(module, qmodule, "acti", eps)


def entropy_calibration(model, qmodel, bin_number=2048, cali_number=128):
    return init_kl_j(model, qmodel, "acti", bin_number, cali_number, compat=True)


# --------------------------------------------------------------------------------------
# Whole networks
# --------------------------------------------------------------------------------------


def place(qmodule: QuantLayer, parts: Optional[Iterable[str]] = None) -> None:
    """Set each part's dec width from its threshold: ``dec = all - ceil(log2_t)``, so the
    format's largest value ``2**(all - dec)`` reaches the threshold."""
    for attr, part in qmodule.threshold_parts().items():
        if parts is not None and part not in parts:
            continue
        log2_t = float(np.asarray(getattr(qmodule, attr)).ravel()[0])
        if not math.isfinite(log2_t):
            continue
        all_ = getattr(qmodule, f"{part}_all_bit_width")
        dec = int(min(max(all_ - math.ceil(log2_t), -MAX_WIDTH), MAX_WIDTH))
        setattr(qmodule, f"{part}_dec_bit_width", dec)


def format_of(qmodule: QuantLayer, part: str) -> str:
    """A part's format in signed Q notation, ``Q<integer bits>.<fraction bits>`` (plus a sign bit):
    ``all - dec`` integer bits and ``dec - 1`` fraction bits."""
    dec, all_ = getattr(qmodule, f"{part}_dec_bit_width"), getattr(qmodule, f"{part}_all_bit_width")
    return f"Q{all_ - dec}.{dec - 1}"


def _pairs(net: Module, qnet: Module, name: str):
    """Leaves of the float network and its twin, side by side (same structure required)."""
    keys, qkeys = list(net._modules), list(qnet._modules)
    if keys != qkeys:
        raise ValueError(f"{name}: the float network has children {keys}, the quantized one {qkeys}")
    if not keys:
        if type(net).__name__ != type(qnet).__name__:
            raise TypeError(f"{name}: float {type(net).__name__} paired with quantized {type(qnet).__name__}")
        yield name, net, qnet
    for key in keys:
        yield from _pairs(net._modules[key], qnet._modules[key], f"{name}.{key}")


def _set_layer(name: str, qmodule: QuantLayer, stats: Dict[str, Statistics], methods: Dict[str, str],
               options: dict, place_formats: bool) -> List[dict]:
    rows = []
    for attr, part in qmodule.threshold_parts().items():
        key = attr[:-len("_log2_t")]
        if key not in stats:
            continue
        method = methods.get(key, "max")
        log2_t = stats[key].threshold(method, **options)
        qmodule.set_threshold(attr, log2_t)
        if place_formats:
            place(qmodule, [part])
        used = stats[key].method_used(method, options.get("compat", False))
        rows.append({"layer": name, "part": part, "method": used, "log2_t": log2_t,
                     "threshold": 2.0 ** log2_t, "format": format_of(qmodule, part)})
    return rows


def _parameter_stats(module: Module, bin_number: int) -> Dict[str, Statistics]:
    stats = {}
    for key, attr in (("weight", "weight"), ("bias", "bias"), ("mean", "running_mean"), ("var", "running_var")):
        value = getattr(module, attr, None)
        if value is not None and np.size(value):
            stats[key] = Statistics(bin_number).update(value)
    return stats


def _walk(net: Module, qnet: Module, name: str, collect: Callable, weight_method: str, bias_method: str,
          acti_method: str, bin_number: int, options: dict, place_formats: bool, show: bool) -> List[dict]:
    methods = {"weight": weight_method, "bias": bias_method, "acti": acti_method, "input": acti_method,
               "mean": "max", "var": "max"}
    for m in methods.values():
        _method(m)
    rows = []
    for sub_name, module, qmodule in _pairs(net, qnet, name):
        if not (isinstance(qmodule, QuantLayer) and qmodule.quant):
            continue
        stats = _parameter_stats(module, bin_number)
        stats.update(collect(module))
        rows += _set_layer(sub_name, qmodule, stats, methods, options, place_formats)
    if show:
        print_table(rows)
    return rows


def init_network(net: Module, qnet: Module, name: str = "net", weight_method: str = "max",
                 bias_method: str = "max", acti_method: str = "entro", bin_number: int = 2048,
                 cali_number: int = 128, show: bool = False, place_formats: bool = True,
                 symmetric: bool = False, compat: bool = False) -> List[dict]:
    """Set the thresholds of every quantized layer of ``qnet`` from its float twin ``net``.

    Weights and biases give their own thresholds; activations come from the outputs (and
    inputs) stored by the hooks; BatchNorm's running statistics by 'max'.  Methods: 'max',
    '3sd', 'entro' (aliases 'kl_j', 'kl'; ``symmetric`` and ``compat`` as in :func:`init_kl_j`).
    With ``place_formats`` (default) each part's dec width follows: ``dec = all - ceil(log2_t)``.
    Returns the per-layer rows; ``show=True`` prints them as a table.
    """
    def stored(module):
        return {key: Statistics(bin_number, skip_zeros=not compat).update(getattr(module, attr))
                for key, attr in (("acti", "hook_out"), ("input", "hook_in")) if attr in module.__dict__}

    return _walk(net, qnet, name, stored, weight_method, bias_method, acti_method, bin_number,
                 dict(cali_number=cali_number, symmetric=symmetric, compat=compat), place_formats, show)


def calibrate(net: Module, qnet: Module, batches: Iterable, name: str = "net", weight_method: str = "max",
              bias_method: str = "max", acti_method: str = "entro", bin_number: int = 2048,
              cali_number: int = 128, place_formats: bool = True, symmetric: bool = False,
              compat: bool = False, end_list: Sequence[type] = DEFAULT_END_LIST, progress: bool = False,
              show: bool = False) -> List[dict]:
    """Run ``batches`` through the float network ``net``, accumulate every hooked layer's
    input and output statistics across all batches (in C), then set ``qnet``'s thresholds and
    formats as :func:`init_network` does.  Returns the per-layer rows (printed with ``show``).

    ``batches`` yields inputs (or tuples whose first item is the input).  ``progress=True``
    shows a tqdm progress bar when tqdm is installed.
    """
    stats: Dict[int, Dict[str, Statistics]] = {}

    def accumulate(module, input, output):
        entry = stats.setdefault(id(module), {key: Statistics(bin_number, skip_zeros=not compat)
                                              for key in ("acti", "input")})
        entry["acti"].update(output)
        if input:
            entry["input"].update(input[0])

    if progress:
        try:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc="calibrating")
        except ImportError:
            pass
    handles = add_hook(net, name, accumulate, end_list)
    try:
        for batch in batches:
            net(batch[0] if isinstance(batch, (tuple, list)) else batch)
    finally:
        remove_hook(handles)

    def collected(module):
        return {k: s for k, s in stats.get(id(module), {}).items() if s.count > 0}

    return _walk(net, qnet, name, collected, weight_method, bias_method, acti_method, bin_number,
                 dict(cali_number=cali_number, symmetric=symmetric, compat=compat), place_formats, show)


def print_table(rows: List[dict], file=None) -> None:
    """Print rows of dicts as an aligned table (floats with 4 significant digits)."""
    if not rows:
        print("(no rows)", file=file)
        return
    keys = list(rows[0])
    cells = [[f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)), file=file)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)), file=file)


__all__ = ["hook_handler", "add_hook", "add_hook_general", "remove_hook", "get_hook", "remove_hookout",
           "Statistics", "init_max", "init_3sd", "init_kl_j", "init_network", "calibrate", "place",
           "format_of", "print_table", "threshold_weight_max", "threshold_bias_max",
           "threshold_activation_max", "threshold_weight_3sd", "threshold_bias_3sd",
           "threshold_activation_3sd", "entropy_calibration"]
