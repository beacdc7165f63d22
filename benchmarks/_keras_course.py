"""Keras 3 peer for the course model (run in a subprocess by _course_compare.py / accuracy.py).

Needs an interpreter with tensorflow-cpu installed (pass it with --keras-python or CONVLENS_KERAS_PYTHON).
Modes: 'train' / 'infer' time random data like the other peers; 'accuracy' trains on a data set as the course
does (the uint8 arrays convlens loaded, handed over as an .npz file) and reports the test accuracy.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def _scaled(x: np.ndarray) -> np.ndarray:
    return (x[..., None] if x.ndim == 3 else x).astype(np.float32) / np.float32(255.0)


def main() -> None:
    args = json.loads(sys.argv[1])
    import keras

    mode = args["mode"]
    if mode == "accuracy":
        with np.load(args["data"]) as data:
            x, y = _scaled(data["x_train"]), data["y_train"].reshape(-1)
            xt, yt = _scaled(data["x_test"]), data["y_test"].reshape(-1)
        shape, classes = x.shape[1:], int(max(y.max(), yt.max())) + 1
    else:
        shape, classes = (28, 28, 1), 10
    keras.utils.set_random_seed(args.get("seed", 0))
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(32, (3, 3), strides=(1, 1), padding="same", activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if mode == "accuracy":
        model.fit(
            x, y, epochs=args["epochs"], batch_size=args["batch"], validation_split=args["validation_split"], verbose=0
        )
        print(json.dumps({"accuracy": float(model.evaluate(xt, yt, verbose=0)[1])}))
        return
    n, batch, repeats = args["n"], args["batch"], args["repeats"]
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)

    def train_epoch() -> None:
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)

    def infer() -> None:
        model.predict(x, batch_size=batch, verbose=0)

    fn = train_epoch if mode == "train" else infer
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    import resource

    print(json.dumps({"times": times, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
