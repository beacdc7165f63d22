"""Timing worker for zoo.py: one contender, one model, one mode, in a fresh process; prints one JSON line.

Argument: a JSON object {"who": "convlens" | "keras" | "torch", "model", "mode": "train" | "infer", "n",
"batch", "repeats", "threads"}. The thread count is also set in the environment by zoo.py (before any library
loads); here it is applied to the frameworks that take it as a call.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ARGS = json.loads(sys.argv[1]) if __name__ == "__main__" else {}
if ARGS.get("who") in ("convlens", "before"):
    import convlens  # before NumPy, as a user's `import convlens as cl` script or the CLI loads it

# isort: split
import numpy as np  # noqa: E402
from _zoo_models import INPUT_SHAPES, build, build_torch, torch_param_count  # noqa: E402


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, *INPUT_SHAPES[name]), dtype=np.float32), rng.integers(0, 10, n)


def _warm_size(n: int, batch: int) -> int:
    """Enough images for two full batches and the epoch's last partial one (so every shape is traced)."""
    return min(n, 2 * batch + n % batch)


def _keras_like(k: Any, args: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any], int]:
    name, mode, n, batch = args["model"], args["mode"], args["n"], args["batch"]
    model = build(k, name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data(name, n)
    w = _warm_size(n, batch)
    if mode == "train":
        return (
            lambda: model.fit(x[:w], y[:w], batch_size=batch, epochs=1, verbose=0),
            lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0),
            int(model.count_params()),
        )
    return (
        lambda: model.predict(x[:w], batch_size=batch, verbose=0),
        lambda: model.predict(x, batch_size=batch, verbose=0),
        int(model.count_params()),
    )


def _convlens(args: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any], int]:
    convlens.utils.set_random_seed(0)
    return _keras_like(convlens, args)


def _keras(args: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any], int]:
    import keras
    import tensorflow as tf

    threads = int(args["threads"])
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(0)
    return _keras_like(keras, args)


def _torch(args: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any], int]:
    import torch

    torch.set_num_threads(int(args["threads"]))
    torch.manual_seed(0)
    name, mode, n, batch = args["model"], args["mode"], args["n"], args["batch"]
    cl = torch.channels_last
    model = build_torch(name).to(memory_format=cl)
    x_np, y_np = _data(name, n)
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous(memory_format=cl)  # NHWC memory, NCHW view
    y = torch.from_numpy(y_np)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train(count: int) -> None:
        model.train()
        perm = torch.randperm(count)
        for lo in range(0, count, batch):
            idx = perm[lo : lo + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()

    def infer(count: int) -> None:
        model.eval()
        with torch.inference_mode():
            outs = [model(x[lo : min(count, lo + batch)]) for lo in range(0, count, batch)]
            torch.cat(outs)

    w = _warm_size(n, batch)
    fn = train if mode == "train" else infer
    return (lambda: fn(w), lambda: fn(n), torch_param_count(model))


def main() -> None:
    runner = {"convlens": _convlens, "before": _convlens, "keras": _keras, "torch": _torch}[ARGS["who"]]
    warm, run, params = runner(ARGS)
    warm()
    times = []
    for _ in range(ARGS["repeats"]):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times, "peak_mb": _peak_mb(), "params": params}))


if __name__ == "__main__":
    main()
