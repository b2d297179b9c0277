"""Benchmark networks, written once for either layer namespace.

Every class takes the namespace as its first argument: ``wageubn.function`` (NumPy arrays in
and out) or :func:`reference_namespace` (wageubn 1.2.0 on torch, tensors in and out).  The
bodies only use names both namespaces have, plus ``reshape`` and ``+``, which NumPy arrays and
torch tensors share, so both builds have the same modules, the same state_dict keys and the
same computation.

>>> import numpy as np
>>> import wageubn.function as nn
>>> LeNet(nn)(np.zeros((2, 1, 28, 28), np.float32)).shape
(2, 10)
>>> ResNet20(nn)(np.zeros((1, 3, 32, 32), np.float32)).shape
(1, 10)
>>> ResNet20(nn, adder=True)(np.zeros((1, 3, 32, 32), np.float32)).shape
(1, 10)
"""
import pathlib
import sys
import types

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
from lenet import lenet_class  # noqa: E402


def reference_namespace():
    """``wageubn_ref.function`` with a working ``Linear``.

    The reference Linear reads ``output_all_bit_width`` / ``output_dec_bit_width`` before it
    sets them (AttributeError); class attributes with the documented defaults (12, 12) let
    the constructor run and leave those defaults on the instance, as intended.
    Needs ``tests/reference`` on ``sys.path`` (see benchmarks/run.py).
    """
    import wageubn_ref.function as ref

    linear = type("Linear", (ref.Linear,), {"output_all_bit_width": 12, "output_dec_bit_width": 12})
    names = {k: getattr(ref, k) for k in dir(ref) if not k.startswith("_")}
    names["Linear"] = linear
    return types.SimpleNamespace(**names)


def _flatten(x):
    return x.reshape(x.shape[0], -1)


class _Net:
    """Base of the benchmark networks: ``Cls(nn, ...)`` builds on ``nn.Module`` of namespace ``nn``.

    The instance's class derives from both ``Cls`` and ``nn.Module`` (one such class per
    namespace, cached), so ``isinstance(ResNet20(nn), ResNet20)`` holds for either namespace.
    """

    _bound = {}

    def __new__(cls, nn, *args, **kwargs):
        key = (cls, nn.Module)
        if key not in _Net._bound:
            _Net._bound[key] = type(cls.__name__, (cls, nn.Module), {"__module__": cls.__module__})
        return nn.Module.__new__(_Net._bound[key])


def LeNet(nn):
    """The docs' flat LeNet-5 for 1x28x28 digits (examples/lenet.py), built on namespace ``nn``."""
    return lenet_class(nn)()


class BasicBlock(_Net):
    """Two 3x3 layers with batch norm and ReLU; option-B shortcut (1x1 conv + BN) on a shape change."""

    def __init__(self, nn, cin, cout, stride, adder=False):
        super().__init__()
        self.conv1 = _conv3x3(nn, cin, cout, stride, adder)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = _conv3x3(nn, cout, cout, 1, adder)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = None

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + (x if self.shortcut is None else self.shortcut(x)))


def _conv3x3(nn, cin, cout, stride, adder):
    if adder:
        return nn.Adder2d(cin, cout, 3, stride=stride, padding=1, bias=False)
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class ResNet20(_Net):
    """ResNet-20 for 3x32x32 CIFAR images (He et al. 2016, Sec. 4.2).

    A 3x3 stem to 16 channels, three stages of three BasicBlocks (16, 32, 64 channels; the
    first block of stages 2 and 3 has stride 2), option-B shortcuts (1x1 convolution + batch
    norm where the shape changes), global average pooling and ``Linear(64, 10)``.

    ``adder=True`` gives the AdderNet ResNet-20 (Chen et al. 2020): ``Adder2d`` replaces the
    3x3 convolutions of the blocks.  As in the AdderNet paper and its code, the stem (first
    layer), the 1x1 shortcut convolutions and the classifier stay ordinary layers.
    """

    def __init__(self, nn, adder=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(nn, cin, cout, stride if i == 0 else 1, adder))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(_flatten(self.pool(x)))


def big_conv(nn):
    """One quantized convolution 64 -> 64, 3x3, padding 1 (the GEMM-bound case)."""
    return nn.Conv2d(64, 64, 3, padding=1)
