"""wageubn quick start: a trained LeNet on MNIST digits, in float and in WAGEUBN fixed point.

Run from the repository root (needs only numpy and wageubn):

    python examples/quickstart.py
"""
import pathlib

import numpy as np

import wageubn.function as nn
from wageubn.config import Config, network_config

ROOT = pathlib.Path(__file__).resolve().parent.parent
digits = np.load(ROOT / "examples" / "data" / "mnist10k.npz")
test_x = (digits["images"][8000:] / 255.0).astype(np.float32)[:, None]  # (2000, 1, 28, 28)
test_y = digits["labels"][8000:]


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.proc = nn.ModuleList([
            nn.Conv2d(1, 6, 5, 1, 2), nn.ReLU(), nn.MaxPool2d((2, 2)),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d((2, 2)),
            nn.Conv2d(16, 120, 5), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)])

    def forward(self, x):
        for idx, p in enumerate(self.proc):
            x = p(x)
            if idx == 7:
                x = x.reshape(x.shape[0], -1)
        return x


def accuracy(net):
    return np.mean(net(test_x).argmax(axis=1) == test_y)


net = LeNet()
net.load_state_dict(dict(np.load(ROOT / "tests" / "data" / "lenet_mnist.npz")))  # trained on torch

for layer in net.modules():  # float: every quantized layer computes its plain float version
    if hasattr(layer, "floatilize"):
        layer.floatilize()
print(f"float accuracy:                  {accuracy(net):.2%}")

for layer in net.modules():  # back to fixed point (the default): 8-bit weights, 16-bit biases, ...
    if hasattr(layer, "quantilize"):
        layer.quantilize()
print(f"quantized, default widths:       {accuracy(net):.2%}")

# iostrict: inputs and outputs of every layer are fixed point too, clamped to their ranges
network_config(net, "net", Config(iostrict=True))
print(f"quantized, iostrict=True:        {accuracy(net):.2%}")
