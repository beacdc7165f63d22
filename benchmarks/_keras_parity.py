"""Keras side of keras_parity.py: build, predict and train the course model variants; save everything."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main() -> None:
    import keras

    args = json.loads(sys.argv[1])
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((64, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    for strides, padding in args["cases"]:
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Conv2D(32, (3, 3), strides=strides, padding=padding, activation="relu"),
                keras.layers.MaxPooling2D((2, 2)),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        before = model.get_weights()
        predictions = model.predict(x, verbose=0)
        for _ in range(args["steps"]):
            model.train_on_batch(x, y)
        after = model.get_weights()
        arrays = {"x": x, "y": y, "predictions": predictions}
        arrays.update({f"before_{i}": w for i, w in enumerate(before)})
        arrays.update({f"after_{i}": w for i, w in enumerate(after)})
        np.savez(os.path.join(args["out"], f"keras_{strides}_{padding}.npz"), **arrays)


if __name__ == "__main__":
    main()
