"""The docs' LeNet-5 for 28x28 MNIST digits, on wageubn, and helpers to load digits and weights.

``lenet_class(torch.nn)`` gives the same network on torch (tests/data/make_lenet.py
trains it that way).  Quantized by default: call ``floatilize()`` on every layer for
the float network.

>>> from lenet import load_digits, load_lenet, WEIGHTS, DIGITS
>>> _, _, test_x, test_y = load_digits(DIGITS)
>>> net = load_lenet(WEIGHTS)
>>> net(test_x[:5]).argmax(1).tolist() == test_y[:5].tolist()
True
"""
import pathlib

import numpy as np

import wageubn.function as nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "data" / "mnist10k.npz"
WEIGHTS = ROOT / "tests" / "data" / "lenet_mnist.npz"
N_TRAIN = 8000


def lenet_class(nn):
    """The docs' LeNet built on the layer namespace ``nn``: ``wageubn.function`` or ``torch.nn``.

    conv-relu-pool, conv-relu-pool, conv-relu, then flatten and two fully connected layers;
    the body only uses names both namespaces have (tests/data/make_lenet.py trains it on torch).
    """

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.proc = nn.ModuleList([
                nn.Conv2d(1, 6, 5, 1, 2), nn.ReLU(), nn.MaxPool2d((2, 2)),
                nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d((2, 2)),
                nn.Conv2d(16, 120, 5), nn.ReLU(),
                nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
            ])

        def forward(self, x):
            for idx, p in enumerate(self.proc):
                x = p(x)
                if idx == 7:
                    x = x.reshape(x.shape[0], -1)
            return x

    LeNet.__qualname__ = "LeNet"
    return LeNet


LeNet = lenet_class(nn)  # picklable as lenet.LeNet


def load_digits(path=DIGITS):
    """(train_x, train_y, test_x, test_y): the first 8,000 digits and the last 2,000.

    Images are float32 ``images / 255`` of shape (N, 1, 28, 28), labels int64.
    """
    with np.load(path) as data:
        x = (data["images"] / 255.0).astype(np.float32)[:, None]
        y = data["labels"].astype(np.int64)
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def load_lenet(weights_path=WEIGHTS):
    """A quantized wageubn LeNet (default widths) with the trained weights loaded."""
    net = LeNet()
    with np.load(weights_path) as weights:
        net.load_state_dict(dict(weights))
    return net
