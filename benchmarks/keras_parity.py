"""convlens against Keras 3 itself: copy a Keras model's weights, compare predictions and the weights after a few
training steps (Adam, sparse categorical cross-entropy) for the course model with stride 1/2 and 'same'/'valid'.

Usage: python benchmarks/keras_parity.py --keras-python /path/to/python-with-tensorflow [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from _common import table

CASES = [(1, "same"), (2, "same"), (1, "valid")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keras-python", default=os.environ.get("CONVLENS_KERAS_PYTHON"), required=False)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if not args.keras_python:
        parser.error("give --keras-python (an interpreter with tensorflow-cpu) or set CONVLENS_KERAS_PYTHON")
    import convlens as cl

    rows = []
    with tempfile.TemporaryDirectory() as out:
        spec = json.dumps({"cases": CASES, "steps": args.steps, "out": out})
        script = Path(__file__).with_name("_keras_parity.py")
        subprocess.run([args.keras_python, str(script), spec], check=True)
        for strides, padding in CASES:
            data = np.load(Path(out) / f"keras_{strides}_{padding}.npz")
            model = cl.Sequential(
                [
                    cl.layers.Conv2D(
                        32, (3, 3), strides=strides, padding=padding, activation="relu", input_shape=(28, 28, 1)
                    ),
                    cl.layers.MaxPooling2D((2, 2)),
                    cl.layers.Flatten(),
                    cl.layers.Dense(10, activation="softmax"),
                ]
            )
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.set_weights([data[f"before_{i}"] for i in range(4)])
            predictions = model.predict(data["x"], verbose=0)
            for _ in range(args.steps):
                model.train_on_batch(data["x"], data["y"])
            rel = max(
                float(np.abs(w - data[f"after_{i}"]).max() / np.abs(data[f"after_{i}"]).max())
                for i, w in enumerate(model.get_weights())
            )
            rows.append(
                [
                    f"stride {strides}, '{padding}'",
                    f"{np.abs(predictions - data['predictions']).max():.1e}",
                    f"{rel:.1e}",
                ]
            )
    print(f"convlens vs Keras, course model, float32, {args.steps} Adam steps on 64 random images")
    print(table(["case", "max |prediction difference|", "max relative weight difference after training"], rows))


if __name__ == "__main__":
    main()
