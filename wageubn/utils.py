"""Network-wide switches (tqt 1.0.2's ``utils``)."""
from typing import Iterable, Sequence

from .function.module import Module


def make_net_quant_or_not(net: Module, name: str = "net", quant: bool = True, exclude: Sequence[type] = (),
                          show: bool = False) -> None:
    """``quantilize()`` (``quant=True``) or ``floatilize()`` every module of ``net`` that has a
    ``quant`` flag; modules whose class is in ``exclude`` are always floatilized.

    >>> import wageubn.function as nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    >>> make_net_quant_or_not(net, "net", quant=True, exclude=[nn.BatchNorm2d])
    >>> [m.quant for m in net]
    [True, False, True]
    """
    excluded = tuple(exclude)
    for sub_name, module in net.named_modules(prefix=name):
        if not hasattr(module, "quant"):
            continue
        if excluded and isinstance(module, excluded):
            module.floatilize()
            if show:
                print(sub_name, "is excluded")
        else:
            module.quantilize() if quant else module.floatilize()
            if show:
                print(sub_name, "is quanted" if quant else "is floated")


def _isinstance(obj, classes: Iterable[type]) -> bool:
    """isinstance against a list of classes (tqt's helper)."""
    return isinstance(obj, tuple(classes))
