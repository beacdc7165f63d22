"""The course model learns MNIST: a fixed, seeded run on a subset must reach a known accuracy."""

from __future__ import annotations

import numpy as np

import convlens as cl
from convlens.utils import set_random_seed


def test_course_model_learns_an_mnist_subset() -> None:
    (x_train, y_train), (x_test, y_test) = cl.datasets.mnist.load_data()
    x_train = x_train[:12_000, ..., None] / np.float32(255.0)
    x_test = x_test[:2_000, ..., None] / np.float32(255.0)
    set_random_seed(0)
    model = cl.course.build_course_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train[:12_000], epochs=2, batch_size=32, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test[:2_000], batch_size=500, verbose=0)
    # Observed: 0.919 with seed 0 (0.94 with seeds 1 and 2); the same recipe in PyTorch 2.13 (Keras
    # initialisers, Adam 1e-3, batch 32) lands in the same range. A broken gradient gives < 0.8.
    assert accuracy >= 0.89
    assert loss < 0.35
    assert history.history["loss"][1] < history.history["loss"][0]
    assert history.history["accuracy"][1] > history.history["accuracy"][0]
