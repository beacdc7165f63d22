"""Two ways of using the second core, measured in one process on the zoo models (benchmarks/_zoo_models.py).

``--what predict``: ``predict`` of ``--n`` images at batch 1000 with the whole-model split (each thread takes its
own pieces through every layer) against the per-layer split (``CONVLENS_SPLIT_PREDICT=0``), interleaved, and
checks both give the same outputs to float32 rounding.

``--what fit``: ``fit`` for one epoch of ``--batches`` batches of 128 (Adam), each step's two halves on their own
thread (:mod:`convlens.data_parallel`) against the per-layer split (``CONVLENS_SPLIT_TRAIN=0``), interleaved, in
one process, 2 threads; the table also shows the largest weight difference after the epoch (rounding: the
gradients add the two halves' sums).

``--what train``: the ceiling of data-parallel training. One model's forward + backward on each whole batch of
128 (the per-layer split, as ``fit`` runs today) against two copies of the model each running half of every
batch on its own thread, alone (serial kernels, one BLAS thread, its own workspace slot). No optimizer step and
no gradient sum, glibc's allocator tuned as in ``fit``: this is what a data-parallel ``fit`` could reach at
most (batch norm's statistics come from each half here; a real one must sum them across the threads).

Usage: python benchmarks/threads_ab.py --what predict|fit|train [--models lenet5,vgg_bn] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import convlens  # before NumPy, as a user's script

# isort: split
import numpy as np
from _common import machine, table
from _zoo_models import INPUT_SHAPES, MODELS, build

from convlens import allocator, blas_threads, inference
from convlens.ops.parallel import parallel_ranges


def _median_rate(images: int, runs: list[float]) -> str:
    return f"{images / float(np.median(runs)):,.0f}"


def ab_predict(name: str, n: int, rounds: int) -> list[str]:
    model = build(convlens, name)
    x = np.random.default_rng(0).random((n, *INPUT_SHAPES[name]), dtype=np.float32)
    times: dict[str, list[float]] = {"0": [], "1": []}
    outputs: dict[str, Any] = {}
    for _ in range(rounds):
        for flag in ("0", "1"):
            os.environ["CONVLENS_SPLIT_PREDICT"] = flag
            model.predict(x[: 2 * 1000], batch_size=1000, verbose=0)
            start = time.perf_counter()
            outputs[flag] = model.predict(x, batch_size=1000, verbose=0)
            times[flag].append(time.perf_counter() - start)
    os.environ.pop("CONVLENS_SPLIT_PREDICT")
    np.testing.assert_allclose(outputs["1"], outputs["0"], rtol=1e-4, atol=1e-5)
    a, b = (n / float(np.median(times[k])) for k in ("0", "1"))
    return [name, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}"]


def ab_fit(name: str, batches: int, rounds: int) -> list[str]:
    rng = np.random.default_rng(0)
    x = rng.random((128 * batches, *INPUT_SHAPES[name]), dtype=np.float32)
    y = rng.integers(0, 10, 128 * batches)
    models = {}
    for flag in ("0", "1"):
        convlens.utils.set_random_seed(0)
        models[flag] = build(convlens, name)
        models[flag].compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    times: dict[str, list[float]] = {"0": [], "1": []}
    for round_ in range(rounds + 1):
        for flag in ("0", "1"):
            os.environ["CONVLENS_SPLIT_TRAIN"] = flag
            start = time.perf_counter()
            models[flag].fit(x, y, batch_size=128, epochs=1, verbose=0, shuffle=False)
            if round_:  # (the first round warms up: plans, buffers, compiled kernels)
                times[flag].append(time.perf_counter() - start)
    os.environ.pop("CONVLENS_SPLIT_TRAIN")
    pairs = zip(models["0"].get_weights(), models["1"].get_weights(), strict=True)
    diff = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    a, b = (128 * batches / float(np.median(times[k])) for k in ("0", "1"))
    return [name, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}", f"{diff:.1e}"]


def ab_train(name: str, batches: int, rounds: int) -> list[str]:
    models = []
    for _ in range(2):
        convlens.utils.set_random_seed(0)
        model = build(convlens, name)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        models.append(model)
    rng = np.random.default_rng(0)
    x = rng.random((128 * batches, *INPUT_SHAPES[name]), dtype=np.float32)
    y = rng.integers(0, 10, 128 * batches)

    def whole() -> None:
        for i in range(batches):
            models[0]._loss_and_grad(y[i * 128 : (i + 1) * 128], x[i * 128 : (i + 1) * 128])

    def halves() -> None:
        def run(slot: int, _: int) -> None:
            with inference._alone(slot):
                for i in range(batches):
                    lo = i * 128 + slot * 64
                    models[slot]._loss_and_grad(y[lo : lo + 64], x[lo : lo + 64])

        with blas_threads.one_blas_thread():
            parallel_ranges(run, 2, 1 << 30)

    times: dict[str, list[float]] = {"whole": [], "halves": []}
    with allocator.tuned():  # (as fit runs: freed memory stays in the heap)
        whole()
        halves()
        for _ in range(rounds):
            for key, step in (("whole", whole), ("halves", halves)):
                start = time.perf_counter()
                step()
                times[key].append(time.perf_counter() - start)
    a, b = (128 * batches / float(np.median(times[k])) for k in ("whole", "halves"))
    return [name, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--what", choices=("predict", "fit", "train"), default="predict")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000, help="images per predict pass")
    parser.add_argument("--batches", type=int, default=20, help="training batches of 128 per timing")
    args = parser.parse_args()
    print(f"threads A/B ({args.what}), median of {args.rounds} interleaved rounds, images/s; {machine()}")
    if args.what == "predict":
        rows = [ab_predict(name, args.n, args.rounds) for name in args.models.split(",")]
        print(table(["model", "per-layer split", "whole-model split", "ratio"], rows))
    elif args.what == "fit":
        rows = [ab_fit(name, args.batches, args.rounds) for name in args.models.split(",")]
        print(table(["model", "per-layer split", "two halves, one per thread", "ratio", "max weight diff"], rows))
    else:
        rows = [ab_train(name, args.batches, args.rounds) for name in args.models.split(",")]
        print(table(["model", "whole batch, per-layer split", "two halves, one per thread", "ratio"], rows))


if __name__ == "__main__":
    main()
