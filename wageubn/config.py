"""Bit widths of a whole network: :class:`Config` and :func:`network_config`.

>>> import wageubn.function as nn
>>> from wageubn.config import Config, network_config
>>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
>>> network_config(net, "net", Config(iostrict=True, conv_and_linear_weight=6, acti=4, acti_all=8))
>>> net[0].weight_dec_bit_width, net[0].weight_all_bit_width, net[2].acti_all_bit_width, net[1].iostrict
(6, 6, 8, True)
"""
from collections import namedtuple
from typing import Iterable, Optional

from .function import Adder2d, BatchNorm2d, Conv2d, Linear, ReLU, ReLU6
from .function.module import Module
from .function.number import check_width

# Each part's dec width, defaulting to the layers' defaults; each "<part>_all" width
# defaults to the part's dec width.
_DEC_DEFAULTS = {
    "conv_and_linear_weight": 8, "conv_and_linear_bias": 16, "conv_and_linear_in": 8,
    "conv_and_linear_out": 12, "bn_weight": 8, "bn_bias": 8, "bn_mean": 8, "bn_var": 8,
    "bn_in": 8, "bn_out": 8, "acti_in": 8, "acti": 8,
}
_FIELDS = ["iostrict"] + list(_DEC_DEFAULTS) + [f"{p}_all" for p in _DEC_DEFAULTS]


class Config(namedtuple("Config", _FIELDS, defaults=[False, *_DEC_DEFAULTS.values()] + [None] * 12)):
    """The widths of every part (25 fields), all optional; ``*_all`` default to their dec width."""

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls, *args, **kwargs)
        missing = {f"{p}_all": getattr(self, p) for p in _DEC_DEFAULTS if getattr(self, f"{p}_all") is None}
        if missing:
            self = self._replace(**missing)
        for p in _DEC_DEFAULTS:
            check_width(getattr(self, p), p)
            check_width(getattr(self, f"{p}_all"), f"{p}_all", 1)
        return self


_CONV_LINEAR = {"weight": "conv_and_linear_weight", "bias": "conv_and_linear_bias",
                "input": "conv_and_linear_in", "output": "conv_and_linear_out"}
_BN = {"weight": "bn_weight", "bias": "bn_bias", "mean": "bn_mean", "var": "bn_var",
       "input": "bn_in", "output": "bn_out"}
_ACTI = {"input": "acti_in", "acti": "acti"}


def _set_widths(module: Module, config: Config, parts: dict) -> None:
    for part, field in parts.items():
        setattr(module, f"{part}_dec_bit_width", getattr(config, field))
        setattr(module, f"{part}_all_bit_width", getattr(config, f"{field}_all"))


def network_config(net: Module, name: str, config: Config,
                   bn_list: Optional[Iterable[type]] = (BatchNorm2d,),
                   acti_list: Optional[Iterable[type]] = (ReLU, ReLU6),
                   conv_linear_list: Optional[Iterable[type]] = (Conv2d, Linear, Adder2d),
                   show: bool = False) -> None:
    """Set ``config``'s widths and ``iostrict`` on every leaf module of ``net`` whose class is listed.

    Leaves are modules without children, at any depth; ``name`` prefixes the dotted
    names printed with ``show=True``.
    """
    if not isinstance(net, Module):
        raise TypeError(f"net: expected a wageubn.function.Module, got {type(net).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a wageubn.config.Config, got {type(config).__name__}")
    groups = []
    for arg, classes, parts in (("bn_list", bn_list, _BN), ("acti_list", acti_list, _ACTI),
                                ("conv_linear_list", conv_linear_list, _CONV_LINEAR)):
        try:
            classes = tuple(classes or ())
        except TypeError:
            raise TypeError(f"{arg}: expected a list of layer classes, got {classes!r}") from None
        if not all(isinstance(c, type) for c in classes):
            raise TypeError(f"{arg}: expected a list of layer classes, got {classes!r}")
        groups.append((classes, parts))
    for sub_name, module in net.named_modules(prefix=name):
        if next(iter(module.children()), None) is not None:
            continue
        matched = [parts for classes, parts in groups if classes and isinstance(module, classes)]
        for parts in matched:
            _set_widths(module, config, parts)
        if matched:
            module.iostrict = config.iostrict
            if show:
                print(sub_name, "is configured")


config_network = network_config

__all__ = ["Config", "network_config", "config_network"]
