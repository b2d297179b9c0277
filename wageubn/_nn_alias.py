"""Makes ``wageubn.nn`` an alias: it is ``wageubn.function`` (the same module object), so ``from wageubn import nn``
and ``import wageubn.nn as nn`` work as ``torch.nn`` does; ``import wageubn.nn.init`` (or any
other submodule) gives the very module ``wageubn.function.init``.

>>> import wageubn.nn as nn, wageubn.function
>>> nn is wageubn.function
True
>>> import wageubn.nn.init
>>> wageubn.nn.init is wageubn.function.init
True
"""
import importlib
import importlib.abc
import importlib.util
import sys

from . import function

_ALIAS, _TARGET = "wageubn.nn.", function.__name__ + "."


class _AliasLoader(importlib.abc.Loader):
    """Loads ``wageubn.nn.X`` as the already imported (or now imported) ``wageubn.function.X``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.saved = {k: module.__dict__[k] for k in ("__spec__", "__loader__", "__package__")
                      if k in module.__dict__}
        return module

    def exec_module(self, module) -> None:
        # The target ran when imported under its own name; the import system has just
        # stamped the alias's spec on it: put the module's own back.
        module.__dict__.update(self.saved)


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(_ALIAS):
            return None
        real = _TARGET + fullname[len(_ALIAS):]
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())
sys.modules["wageubn.nn"] = function
