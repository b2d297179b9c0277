"""wageubn.Tensor: the one tensor type, an ndarray subclass with torch's methods.

Every layer, functional and top-level function returns one.  (Skeleton: the methods are
added by the Tensor work; ``_wrap`` is the single conversion point every module uses.)
"""
from typing import Any

import numpy as np


class Tensor(np.ndarray):
    """An ndarray with torch's tensor methods."""


def _wrap(value: Any) -> Any:
    """``value`` as a Tensor view (no copy) when it is an ndarray; anything else unchanged."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return value.view(Tensor)
    return value
