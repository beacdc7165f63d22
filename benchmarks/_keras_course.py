"""Keras 3 peer for the course model (run in a subprocess by _course_compare.py / accuracy.py).

Needs an interpreter with tensorflow-cpu installed (pass it with --keras-python or CONVLENS_KERAS_PYTHON).
Modes: 'train' / 'infer' time random data like the other peers; 'accuracy' trains on MNIST as the course does
(reading the same IDX files convlens packages, given by path) and reports the test accuracy.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def _idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main() -> None:
    args = json.loads(sys.argv[1])
    import keras

    keras.utils.set_random_seed(args.get("seed", 0))
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, (3, 3), strides=(1, 1), padding="same", activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    mode = args["mode"]
    if mode == "accuracy":
        d = args["data_dir"]
        x = _idx(f"{d}/train-images-idx3-ubyte.gz")[..., None] / 255.0
        y = _idx(f"{d}/train-labels-idx1-ubyte.gz")
        xt = _idx(f"{d}/t10k-images-idx3-ubyte.gz")[..., None] / 255.0
        yt = _idx(f"{d}/t10k-labels-idx1-ubyte.gz")
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
