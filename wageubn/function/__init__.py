"""Layers, containers and quantizers under torch.nn's names: ``import wageubn.function as nn``.

>>> import numpy as np
>>> import wageubn.function as nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 10))
>>> net(np.zeros((2, 1, 8, 8), np.float32)).shape
(2, 10)
"""
from .module import Flatten, Identity, Module, ModuleDict, ModuleList, Parameter, Sequential
from .pooling import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d
from .activation import ReLU, ReLU6
from .batchnorm import BatchNorm2d
from .conv import Conv2d
from .linear import Linear
from .nonlinear import Hardtanh, LeakyReLU, LogSoftmax, Sigmoid, Softmax, Tanh
from .norm import BatchNorm1d, GroupNorm, LayerNorm
from .convnd import Conv1d, ConvTranspose2d
from .adaptive import AdaptiveAvgPool2d, AdaptiveMaxPool2d
from .dropout import Dropout, Dropout2d
from .upsample import Upsample
from .sparse import Embedding
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from . import extra
from .adder import Adder2d
from . import init, number
from . import functional
from .number import (alldirectquant, constquant, directquant, errorquant, errquant, gbnquant, gradquant,
                     gwquant, shiftquant, sround, weightquant)

__all__ = ["Module", "ModuleList", "ModuleDict", "Sequential", "Parameter", "Flatten", "Identity",
           "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "ReLU", "ReLU6", "BatchNorm2d", "Conv2d", "Linear", "Adder2d",
           "LeakyReLU", "Hardtanh", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "BatchNorm1d", "GroupNorm",
           "LayerNorm", "Conv1d", "ConvTranspose2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Dropout",
           "Dropout2d", "Upsample", "Embedding", "CrossEntropyLoss", "MSELoss", "NLLLoss", "extra", "init", "number", "functional",
           "directquant", "alldirectquant", "weightquant", "sround", "shiftquant", "constquant",
           "errorquant", "errquant", "gwquant", "gbnquant", "gradquant"]
