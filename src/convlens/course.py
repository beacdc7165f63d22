"""The course's example model and its training run, shared by the CLI, the README and the tests.

The model: Conv2D(32, 3x3, strides 1, 'same', relu) -> MaxPooling2D(2x2) -> Flatten -> Dense(10, softmax),
63,050 parameters for 28x28x1 inputs. Its input shape and class count follow the data: MNIST (packaged),
Fashion-MNIST, CIFAR-10 (32x32x3) or a folder of your own images (:func:`load_course_data`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["DATASETS", "CourseData", "TrainConfig", "build_course_model", "load_course_data", "train_course_model"]

#: The named data sets ``convlens train --dataset`` and the sweep's ``--dataset`` axis accept.
DATASETS = ("mnist", "fashion_mnist", "cifar10")


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
    dataset: str | None = "mnist"
    data_dir: str | None = None
    image_size: int | None = None
    color_mode: str | None = None

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
        input (N, H, W, C) (default 28x28x1) -> conv (N, OH, OW, filters) -> pool (N, OH // P, OW // P, filters)
        -> (N, classes)
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


@dataclass
class CourseData:
    """Training and test arrays scaled as the course does (pixels / 255, float32, channels-last).

    Shapes:
        x (N, H, W, C) float32 in [0, 1]; y (N,) integer labels in [0, len(class_names)).
    """

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    class_names: list[str]


def _scaled(x: np.ndarray) -> np.ndarray:
    x = x[..., None] if x.ndim == 3 else x
    return x.astype(np.float32) / np.float32(255.0)


def load_course_data(
    dataset: str | None = "mnist",
    data_dir: str | None = None,
    image_size: int = 64,
    color_mode: str = "rgb",
    seed: int = 0,
) -> CourseData:
    """A named data set (:data:`DATASETS`), or a folder of images with one sub-folder per class.

    A folder is split with ``image_dataset_from_directory(..., validation_split=0.2, subset='both', seed=seed)``:
    the model trains on 80% and is tested on the 20% held out. Images are resized to ``image_size`` squared.

    Raises:
        ConfigError: an unknown data set name.
        DataError: files that cannot be found, checked or decoded.

    Shapes:
        mnist, fashion_mnist (N, 28, 28, 1); cifar10 (N, 32, 32, 3); a folder (N, image_size, image_size, C).
    """
    if data_dir is not None:
        from convlens.datasets.image_directory import image_dataset_from_directory

        training, held_out = image_dataset_from_directory(
            data_dir, image_size=image_size, color_mode=color_mode, validation_split=0.2, subset="both", seed=seed
        )
        (x_train, y_train), (x_test, y_test) = training.to_arrays(), held_out.to_arrays()
        return CourseData((_scaled(x_train), y_train), (_scaled(x_test), y_test), list(training.class_names))
    from convlens import datasets
    from convlens.errors import check_choice

    name = check_choice(dataset, "dataset", DATASETS, owner="course data")
    module = getattr(datasets, name)
    (x_train, y_train), (x_test, y_test) = module.load_data()
    names = list(module.CLASS_NAMES)
    return CourseData((_scaled(x_train), y_train.reshape(-1)), (_scaled(x_test), y_test.reshape(-1)), names)


def train_course_model(
    config: TrainConfig, data: CourseData | None = None, callbacks: list[Any] | None = None
) -> tuple[Any, Any, list[float]]:
    """Train the course model as the course does (pixels / 255); return (model, history, [loss, acc]).

    ``data`` may supply the arrays; by default they come from ``config`` (:func:`load_course_data`): the
    packaged MNIST unless ``config.dataset`` or ``config.data_dir`` says otherwise. ``callbacks`` go to ``fit``.
    """
    from convlens import optimizers
    from convlens.utils import set_random_seed

    if config.seed is not None:
        set_random_seed(config.seed)
    if data is None:
        data = load_course_data(
            config.dataset,
            config.data_dir,
            config.image_size or 64,
            config.color_mode or "rgb",
            config.seed or 0,
        )
    (x_train, y_train), (x_test, y_test) = data.train, data.test
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
        input_shape=x_train.shape[1:],
        classes=len(data.class_names),
    )
    optimizer = optimizers.get(config.optimizer)
    if config.learning_rate is not None:
        optimizer.learning_rate = float(config.learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train,
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_split=config.validation_split,
        verbose=config.verbose,
        callbacks=callbacks,
    )
    result = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    if config.save:
        model.save(config.save)
    return model, history, result
