"""Test accuracy of the course model, convlens vs Keras 3, over several seeds (the issue's accuracy target).

Usage: python benchmarks/accuracy.py [--epochs 3] [--batch 128] [--seeds 0,1,2] [--keras-python PATH]
Keras runs only when an interpreter with tensorflow-cpu is given (--keras-python or CONVLENS_KERAS_PYTHON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

from _common import machine, table

DATA = Path(__file__).resolve().parents[1] / "src" / "convlens" / "datasets" / "data" / "mnist"


def convlens_accuracy(epochs: int, batch: int, seed: int, validation_split: float) -> float:
    from convlens.course import TrainConfig, train_course_model

    config = TrainConfig(epochs=epochs, batch_size=batch, seed=seed, validation_split=validation_split, verbose=0)
    return float(train_course_model(config)[2][1])


def keras_accuracy(python: str, epochs: int, batch: int, seed: int, validation_split: float) -> float:
    args = {
        "mode": "accuracy",
        "epochs": epochs,
        "batch": batch,
        "seed": seed,
        "data_dir": str(DATA),
        "validation_split": validation_split,
    }
    script = Path(__file__).with_name("_keras_course.py")
    out = subprocess.run([python, str(script), json.dumps(args)], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--validation-split", type=float, default=0.1)
    parser.add_argument("--keras-python", default=os.environ.get("CONVLENS_KERAS_PYTHON"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    ours = [convlens_accuracy(args.epochs, args.batch, s, args.validation_split) for s in seeds]
    rows.append(["convlens", *(f"{a:.2%}" for a in ours), f"{statistics.mean(ours):.2%}"])
    if args.keras_python:
        theirs = [keras_accuracy(args.keras_python, args.epochs, args.batch, s, args.validation_split) for s in seeds]
        rows.append(["Keras 3", *(f"{a:.2%}" for a in theirs), f"{statistics.mean(theirs):.2%}"])
    print(
        f"Course model test accuracy, {args.epochs} epoch(s), batch {args.batch}, Adam 1e-3, "
        f"validation_split {args.validation_split}; {machine()}"
    )
    print(table(["", *(f"seed {s}" for s in seeds), "mean"], rows))


if __name__ == "__main__":
    main()
