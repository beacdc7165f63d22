"""Test accuracy of the course model, convlens vs Keras 3, over several seeds (the issue's accuracy target).

Usage: python benchmarks/accuracy.py [--dataset mnist|fashion_mnist|cifar10] [--epochs 3] [--batch 128]
       [--seeds 0,1,2] [--keras-python PATH]
Keras runs only when an interpreter with tensorflow-cpu is given (--keras-python or CONVLENS_KERAS_PYTHON); it
trains on the very arrays convlens loads (handed over in a temporary .npz), with the model's input shape and
class count taken from them, as `convlens train --dataset` does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import convlens  # noqa: F401  (before NumPy, as the CLI loads it)

# isort: split
import numpy as np
from _common import machine, table


def convlens_accuracy(dataset: str, epochs: int, batch: int, seed: int, validation_split: float) -> float:
    from convlens.course import TrainConfig, train_course_model

    config = TrainConfig(
        epochs=epochs, batch_size=batch, seed=seed, validation_split=validation_split, verbose=0, dataset=dataset
    )
    return float(train_course_model(config)[2][1])


def save_arrays(dataset: str, path: Path) -> None:
    """The data set's uint8 arrays, as convlens loads them, for the Keras peer."""
    from convlens import datasets

    (x_train, y_train), (x_test, y_test) = getattr(datasets, dataset).load_data()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def keras_accuracy(python: str, data: Path, epochs: int, batch: int, seed: int, validation_split: float) -> float:
    args = {
        "mode": "accuracy",
        "epochs": epochs,
        "batch": batch,
        "seed": seed,
        "data": str(data),
        "validation_split": validation_split,
    }
    script = Path(__file__).with_name("_keras_course.py")
    out = subprocess.run([python, str(script), json.dumps(args)], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", choices=["mnist", "fashion_mnist", "cifar10"], default="mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--validation-split", type=float, default=0.1)
    parser.add_argument("--keras-python", default=os.environ.get("CONVLENS_KERAS_PYTHON"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    ours = [convlens_accuracy(args.dataset, args.epochs, args.batch, s, args.validation_split) for s in seeds]
    rows.append(["convlens", *(f"{a:.2%}" for a in ours), f"{statistics.mean(ours):.2%}", _spread(ours)])
    if args.keras_python:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / f"{args.dataset}.npz"
            save_arrays(args.dataset, data)
            theirs = [
                keras_accuracy(args.keras_python, data, args.epochs, args.batch, s, args.validation_split)
                for s in seeds
            ]
        rows.append(["Keras 3", *(f"{a:.2%}" for a in theirs), f"{statistics.mean(theirs):.2%}", _spread(theirs)])
    print(
        f"Course model test accuracy on {args.dataset}, {args.epochs} epoch(s), batch {args.batch}, Adam 1e-3, "
        f"validation_split {args.validation_split}; {machine()}"
    )
    print(table(["", *(f"seed {s}" for s in seeds), "mean", "max - min"], rows))


def _spread(values: list[float]) -> str:
    return f"{(max(values) - min(values)) * 100:.2f} points"


if __name__ == "__main__":
    main()
