"""Quantized batch normalisation (``wageubn.function.BatchNorm2d``)."""
from typing import Optional

import numpy as np

from .. import _C
from .._threads import get_num_threads
from ._layer import QuantLayer, as_input
from .conv import positive_int
from .functional import _batch_statistics
from .module import Parameter


class BatchNorm2d(QuantLayer):
    """torch.nn.BatchNorm2d with WAGEUBN fixed-point statistics, weight, bias and output.

    Quantized (the default), it always normalises with the running statistics, in
    training mode too, and never updates them (the reference "focuses on inference").
    Floatilized, it is torch's BatchNorm2d: batch statistics and running-stat updates
    in training mode, running statistics in eval mode.

    >>> import numpy as np, wageubn.function as nn
    >>> bn = nn.BatchNorm2d(2)
    >>> bn(np.full((1, 2, 1, 1), 0.3)).ravel()
    tensor([0.296875, 0.296875], dtype=float32)
    """

    _ranks, _layout = (4,), "(n, c, h, w)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 weight_dec_bit_width: int = 8, bias_dec_bit_width: int = 8, mean_dec_bit_width: int = 8,
                 var_dec_bit_width: int = 8, output_dec_bit_width: int = 8, input_dec_bit_width: int = 8,
                 weight_all_bit_width: int = 8, bias_all_bit_width: int = 8, mean_all_bit_width: int = 8,
                 var_all_bit_width: int = 8, output_all_bit_width: int = 8, input_all_bit_width: int = 8,
                 iostrict: bool = False, *, bias: bool = True, retrain: bool = False):
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        if not (isinstance(eps, (int, float)) and eps >= 0):
            raise ValueError(f"eps: expected a non-negative number, got {eps!r}")
        self.eps = eps
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, (int, float))):
            raise TypeError(f"momentum: expected None or a number, got {momentum!r}")
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, np.float32))
            if bias:
                self.bias = Parameter(np.zeros(num_features, np.float32))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, np.float32))
            self.register_buffer("running_var", np.ones(num_features, np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self._init_quant({"weight": (weight_dec_bit_width, weight_all_bit_width),
                          "bias": (bias_dec_bit_width, bias_all_bit_width),
                          "mean": (mean_dec_bit_width, mean_all_bit_width),
                          "var": (var_dec_bit_width, var_all_bit_width),
                          "output": (output_dec_bit_width, output_all_bit_width),
                          "input": (input_dec_bit_width, input_all_bit_width)}, iostrict, retrain)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    def _batch_stats(self, x: np.ndarray):
        """Batch mean and biased variance; in float training mode also update the running stats
        (F.batch_norm's update, with the cumulative average when momentum is None)."""
        if not (self.training and not self.quant):
            mean, var = _C.batchnorm_stats(x, get_num_threads())
            return mean.astype(np.float32), var.astype(np.float32)
        if self.running_mean is None:
            return _batch_statistics(x, None, None, 0.0, type(self).__name__)
        tracked = int(self.num_batches_tracked) + 1
        factor = 1.0 / tracked if self.momentum is None else self.momentum
        stats = _batch_statistics(x, self.running_mean, self.running_var, factor, type(self).__name__)
        self.num_batches_tracked += 1
        return stats

    def forward(self, input) -> np.ndarray:
        name = type(self).__name__
        x = as_input(input, self._ranks, name, self._layout)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input: expected {self.num_features} channels, got shape {x.shape}")
        if self.running_mean is None or (self.training and not self.quant):
            mean, var = self._batch_stats(x)
        else:
            mean, var = self.running_mean, self.running_var
        weight, bias = self.weight, self.bias
        if self.quant:  # the input is quantized (iostrict) by the kernel, in the same pass
            mean, var = self.q_param(mean, "mean"), self.q_param(var, "var")
            weight, bias = self.q_param(weight, "weight"), self.q_param(bias, "bias")
        out_fmt = self.fmt("output") if self.quant else self.io_fmt("output")
        return _C.batchnorm(x, mean, var, weight, bias, float(self.eps), out_fmt, get_num_threads(),
                            in_fmt=self.io_fmt("input"))
