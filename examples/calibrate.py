"""Calibrate the trained LeNet to 8-bit fixed point everywhere, with automatic placement.

Run from anywhere: ``python examples/calibrate.py``.
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import wageubn.threshold as th  # noqa: E402
from wageubn.config import Config, network_config  # noqa: E402
from wageubn.utils import make_net_quant_or_not  # noqa: E402
from lenet import load_digits, load_lenet  # noqa: E402

train_x, _, test_x, test_y = load_digits()
net, qnet = load_lenet(), load_lenet()        # the float network and its quantized twin
make_net_quant_or_not(net, "net", quant=False)  # net computes in float


def accuracy(model):
    return np.mean(model(test_x).argmax(axis=1) == test_y)


# Every part 8 bits wide, inputs and outputs included (iostrict): a real 8-bit datapath.
eight_bits = Config(iostrict=True, conv_and_linear_weight=8, conv_and_linear_bias=8,
                    conv_and_linear_in=8, conv_and_linear_out=8, acti_in=8, acti=8)
network_config(qnet, "net", eight_bits)
print(f"float:                         {accuracy(net):.2%}")
print(f"8 bits, default fixed point:   {accuracy(qnet):.2%}")

# Calibration data through the float network; thresholds and formats for every layer.
batches = [train_x[i:i + 500] for i in range(0, 2000, 500)]
th.calibrate(net, qnet, batches, acti_method="entro", show=True)
print(f"8 bits, calibrated placement:  {accuracy(qnet):.2%}")
