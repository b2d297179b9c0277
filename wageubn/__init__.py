"""wageubn: WAGEUBN fixed-point quantized networks on NumPy, computed by C kernels.

``import wageubn.function as nn`` gives the layers and containers under torch.nn's
names; ``wageubn.config`` sets the per-part bit widths of a whole network.
"""
from ._threads import get_num_threads, set_num_threads
from . import function
from . import config
from . import threshold, utils, wrapper, analyse
from .function.init import manual_seed

__version__ = "0.1.0"

__all__ = ["function", "config", "threshold", "utils", "wrapper", "analyse", "get_num_threads", "set_num_threads", "manual_seed", "__version__"]
