"""What every quantized layer shares: per-part widths, ``iostrict`` and the ``quant`` flag."""
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from .. import _C
from .._threads import get_num_threads
from .module import Module, Parameter
from .number import CLAMPED, DIRECT, NONE, fmt


def as_input(input, ranks: Iterable[int], layer: str, layout: str) -> np.ndarray:
    """``input`` as an ndarray of real numbers whose rank is in ``ranks`` (no copy when possible)."""
    array = np.asarray(input)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{layer}: input: expected a real-valued array, got dtype {array.dtype}")
    ranks = tuple(ranks)
    if array.ndim not in ranks:
        wanted = " or ".join(f"{r}-d" for r in ranks)
        raise ValueError(f"{layer}: input: expected a {wanted} array {layout}, "
                         f"got shape {array.shape}")
    return array


def weighted_widths(weight_dec, bias_dec, input_dec, output_dec,
                    weight_all, bias_all, input_all, output_all) -> Dict[str, Tuple[int, int]]:
    """The parts of Conv2d, Linear and Adder2d with their (dec, all) widths."""
    return {"weight": (weight_dec, weight_all), "bias": (bias_dec, bias_all),
            "input": (input_dec, input_all), "output": (output_dec, output_all)}


class QuantLayer(Module):
    """Base of the quantized layers.

    Each part ``p`` (weight, bias, input, output, acti, ...) has a fixed-point format
    given by the attributes ``p_dec_bit_width`` and ``p_all_bit_width``.  The quantizer
    is alldirectquant when ``iostrict`` is true, directquant otherwise; both, and every
    width, are read on each call, so changing them later takes effect at once.
    With ``quant`` False (``floatilize()``) the layer computes its plain float version.
    """

    # The part whose format the threshold of the layer's output (``acti_log2_t``) places.
    acti_part = "output"

    def _init_quant(self, widths: Dict[str, Tuple[int, int]], iostrict: bool, retrain: bool = False) -> None:
        self.iostrict = iostrict
        self.parts = tuple(widths)
        for part, (dec, all_) in widths.items():
            setattr(self, f"{part}_dec_bit_width", dec)
            setattr(self, f"{part}_all_bit_width", all_)
            self.fmt(part, CLAMPED)  # fail at construction on a bad width
        self.quant = True
        self.retrain = bool(retrain)
        for attr, part in self.threshold_parts().items():
            dec, all_ = widths[part]
            self.set_threshold(attr, all_ - dec)  # the range the format spans now

    def threshold_parts(self) -> Dict[str, str]:
        """``{threshold attribute: part}``, e.g. ``{"weight_log2_t": "weight", "acti_log2_t": "output"}``.

        Parts whose array is absent (no bias, no running stats) have no threshold.
        """
        arrays = {"weight": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
        out = {}
        for part in self.parts:
            if part in arrays and getattr(self, arrays[part], None) is None:
                continue
            out[f"{'acti' if part == self.acti_part else part}_log2_t"] = part
        return out

    def set_threshold(self, attr: str, log2_t: float) -> None:
        """Store a threshold ``log2(t)`` as a (1,) float32 array; a Parameter when ``retrain``."""
        value = np.array([log2_t], np.float32)
        if self.retrain:
            setattr(self, attr, Parameter(value))
        else:
            self._parameters.pop(attr, None)
            setattr(self, attr, value)

    def quantilize(self) -> None:
        """Compute in fixed point (the default)."""
        self.quant = True

    def floatilize(self) -> None:
        """Compute the plain float layer on the same weights."""
        self.quant = False

    def __setattr__(self, name: str, value) -> None:
        # a width, iostrict or quant changes the formats: forget those computed
        if name.endswith("_bit_width") or name in ("iostrict", "quant"):
            self.__dict__.pop("_fmt_cache", None)
        super().__setattr__(name, value)

    def fmt(self, part: str, kind: Optional[int] = None) -> tuple:
        """The kernel format (kind, dec, all) of ``part`` under the current ``iostrict``.

        Kept until a width, ``iostrict`` or ``quant`` is assigned (layers ask on every call)."""
        cache = self.__dict__.get("_fmt_cache")
        if cache is None:
            cache = self.__dict__["_fmt_cache"] = {}
        found = cache.get((part, kind))
        if found is not None:
            return found
        k = kind
        if k is None:
            k = CLAMPED if self.iostrict else DIRECT
        found = fmt(k, getattr(self, f"{part}_dec_bit_width"), getattr(self, f"{part}_all_bit_width"),
                    f"{part}_dec_bit_width", f"{part}_all_bit_width")
        cache[(part, kind)] = found
        return found

    def q(self, array: Optional[np.ndarray], part: str) -> Optional[np.ndarray]:
        """``array`` quantized in the format of ``part`` (None stays None)."""
        return None if array is None else _C.quantize(array, self.fmt(part), get_num_threads())

    def q_param(self, array: Optional[np.ndarray], part: str) -> Optional[np.ndarray]:
        """A parameter or buffer quantized in the format of ``part``, cached.

        The cache holds a copy of the float values it was computed from, and is used only
        while the array, its values (compared bit for bit, at memory speed) and the format
        are unchanged: in-place edits and new widths are seen on the next call.
        """
        if array is None:
            return None
        f = self.fmt(part)
        cache = self.__dict__.setdefault("_quant_cache", {})
        hit = cache.get(part)
        if hit is not None and hit[0] is array and hit[1] == f and _C.same(array, hit[2]):
            return hit[3]
        out = _C.quantize(array, f)
        cache[part] = (array, f, np.array(array, np.float32), out)
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_quant_cache", None)  # derived data: not pickled, not deep-copied
        state.pop("_fmt_cache", None)
        return state

    def weighted_operands(self, x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray], k: int,
                          adder: bool = False, quantize_input: bool = True):
        """(x, weight, bias, out_fmt, exact) for the kernel of a layer with weight and bias,
        whose outputs each sum ``k`` products (AdderNet's ``|x - w|`` with ``adder``).

        ``quantize_input=False`` leaves the iostrict input quantization to the kernel
        (``in_fmt=self.io_fmt("input")``), which does it while packing its operands.

        With iostrict every operand is on a fixed-point grid and the output format rounds
        the exact sum.  Float32 accumulation already gives it while every partial sum, in
        units of the grid, stays below 2**24 (with 8-bit operands: up to 1040 products);
        beyond that ``exact`` asks the kernel to accumulate in double.
        """
        if not self.quant:
            return x, weight, bias, (NONE, 1, 1), False
        strict = bool(self.iostrict)
        if strict and quantize_input:
            x = self.q(x, "input")
        exact = strict and self._sum_bound(k, adder) >= 2 ** 24
        return x, self.q_param(weight, "weight"), self.q_param(bias, "bias"), self.io_fmt("output"), exact

    def _sum_bound(self, k: int, adder: bool) -> int:
        """The largest |sum| of ``k`` terms, in units of the terms' grid, under iostrict."""
        (_, dx, ax), (_, dw, aw) = self.fmt("input", CLAMPED), self.fmt("weight", CLAMPED)
        bx, bw = 2 ** (ax - 1) - 1, 2 ** (aw - 1) - 1
        if not adder:
            return k * bx * bw
        finest = max(dx, dw)
        return k * (bx * 2 ** (finest - dx) + bw * 2 ** (finest - dw))

    def io_fmt(self, part: str) -> tuple:
        """The format of an input or output: only quantized in iostrict mode."""
        return self.fmt(part) if (self.quant and self.iostrict) else (NONE, 1, 1)
