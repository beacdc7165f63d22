"""PyTorch peer for the course model (run in a subprocess by train_epoch.py / inference.py)."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch


def main() -> None:
    args = json.loads(sys.argv[1])
    torch.manual_seed(0)
    channels_last = args["layout"] == "channels_last"
    n, batch, repeats, mode = args["n"], args["batch"], args["repeats"], args["mode"]
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((n, 1, 28, 28), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, n))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 14 * 14, 10),
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_epoch() -> None:
        perm = torch.randperm(n)
        for lo in range(0, n, batch):
            idx = perm[lo : lo + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    def infer() -> None:
        with torch.inference_mode():
            for lo in range(0, n, batch):
                model(x[lo : lo + batch])

    fn = train_epoch if mode == "train" else infer
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    import resource

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"times": times, "peak_mb": peak_kb / 1024}))


if __name__ == "__main__":
    main()
