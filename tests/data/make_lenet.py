"""Train the docs' LeNet on torch and save its weights as tests/data/lenet_mnist.npz.

    python tests/data/make_lenet.py

Trains on the first 8,000 digits of examples/data/mnist10k.npz (inputs ``images / 255``,
no other scaling: some activations exceed 1, which later calibration work relies on),
deterministically (seed 0, one thread), and prints the float test accuracy on the last
2,000.  The architecture is examples/lenet.py's ``LeNet`` written with torch.nn.
The .npz holds float32 arrays keyed by torch's state_dict names.
"""
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn as nn

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from lenet import lenet_class  # noqa: E402

DIGITS = ROOT / "examples" / "data" / "mnist10k.npz"
OUT = pathlib.Path(__file__).resolve().parent / "lenet_mnist.npz"
EPOCHS, BATCH, LR, N_TRAIN = 12, 64, 1e-3, 8000


LeNet = lenet_class(nn)  # the network of examples/lenet.py, on torch


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    with np.load(DIGITS) as data:
        x = torch.from_numpy((data["images"] / 255.0).astype(np.float32)[:, None])
        y = torch.from_numpy(data["labels"].astype(np.int64))
    train_x, train_y, test_x, test_y = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]

    net = LeNet()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.time()
    for epoch in range(EPOCHS):
        net.train()
        order = torch.randperm(N_TRAIN)
        total = 0.0
        for i in range(0, N_TRAIN, BATCH):
            idx = order[i:i + BATCH]
            opt.zero_grad()
            loss = loss_fn(net(train_x[idx]), train_y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        net.eval()
        with torch.no_grad():
            acc = (net(test_x).argmax(1) == test_y).float().mean().item()
        print(f"epoch {epoch + 1}: loss {total / N_TRAIN:.4f}, test accuracy {acc:.2%} "
              f"({time.time() - start:.0f} s)")

    state = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    np.savez(OUT, **state)
    with torch.no_grad():
        peak = max(float(a.max()) for a in _activations(net, test_x))
    print(f"float test accuracy: {acc:.2%} on {len(test_y)} digits; largest activation {peak:.2f}")
    print(f"saved {OUT} ({OUT.stat().st_size} bytes)")


def _activations(net, x):
    for idx, p in enumerate(net.proc):
        x = p(x)
        yield x
        if idx == 7:
            x = x.reshape(x.shape[0], -1)


if __name__ == "__main__":
    main()
