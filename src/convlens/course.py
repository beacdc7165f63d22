"""The course's example model and its training run, shared by the CLI, the README and the tests.

The model: Conv2D(32, 3x3, strides 1, 'same', relu) -> MaxPooling2D(2x2) -> Flatten -> Dense(10, softmax),
63,050 parameters for 28x28x1 inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["TrainConfig", "build_course_model", "train_course_model"]


@dataclass
class TrainConfig:
    """Settings of ``convlens train`` (defaults: the course model with Keras's fit defaults)."""

    epochs: int = 1
    batch_size: int = 32
    filters: int = 32
    kernel_size: int = 3
    strides: int = 1
    padding: str = "same"
    pooling: str = "max"
    pool_size: int = 2
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float | None = None
    validation_split: float = 0.1
    seed: int | None = 0
    limit: int | None = None
    save: str | None = None
    verbose: int | str = "auto"

    def describe(self) -> str:
        """One line stating the configuration that ran."""
        parts = [f"{k}={v}" for k, v in asdict(self).items() if k not in ("verbose",) and v is not None]
        return ", ".join(parts)


def build_course_model(
    filters: int = 32,
    kernel_size: int = 3,
    strides: int = 1,
    padding: str = "same",
    pooling: str = "max",
    pool_size: int = 2,
    activation: str = "relu",
    input_shape: tuple[int, int, int] = (28, 28, 1),
    classes: int = 10,
) -> Any:
    """Build (uncompiled) the course's CNN; ``pooling`` is 'max', 'avg' or 'none'.

    Shapes:
        input (N, 28, 28, 1) -> conv (N, OH, OW, filters) -> pool (N, OH // P, OW // P, filters) -> (N, classes)
    """
    from convlens import layers
    from convlens.errors import check_choice
    from convlens.models import Sequential

    pooling = check_choice(pooling, "pooling", ("max", "avg", "none"), owner="course model")
    stack: list[Any] = [
        layers.Conv2D(
            filters,
            (kernel_size, kernel_size),
            strides=(strides, strides),
            padding=padding,
            activation=activation,
            input_shape=input_shape,
        )
    ]
    if pooling == "max":
        stack.append(layers.MaxPooling2D(pool_size=(pool_size, pool_size)))
    elif pooling == "avg":
        stack.append(layers.AveragePooling2D(pool_size=(pool_size, pool_size)))
    stack += [layers.Flatten(), layers.Dense(classes, activation="softmax")]
    return Sequential(stack)


def train_course_model(
    config: TrainConfig, data: Any = None, callbacks: list[Any] | None = None
) -> tuple[Any, Any, list[float]]:
    """Train the course model on MNIST as the course does (pixels / 255); return (model, history, [loss, acc]).

    ``data`` may supply ``((x_train, y_train), (x_test, y_test))``; by default the packaged MNIST is loaded.
    ``callbacks`` go to ``fit``.
    """
    from convlens import optimizers
    from convlens.datasets import mnist
    from convlens.utils import set_random_seed

    if config.seed is not None:
        set_random_seed(config.seed)
    (x_train, y_train), (x_test, y_test) = data if data is not None else mnist.load_data()
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    model = build_course_model(
        config.filters,
        config.kernel_size,
        config.strides,
        config.padding,
        config.pooling,
        config.pool_size,
        config.activation,
    )
    optimizer = optimizers.get(config.optimizer)
    if config.learning_rate is not None:
        optimizer.learning_rate = float(config.learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train[..., None].astype(np.float32) / np.float32(255.0),
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_split=config.validation_split,
        verbose=config.verbose,
        callbacks=callbacks,
    )
    result = model.evaluate(
        x_test[..., None].astype(np.float32) / np.float32(255.0), y_test, batch_size=1000, verbose=0
    )
    if config.save:
        model.save(config.save)
    return model, history, result
