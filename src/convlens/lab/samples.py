"""The datasets convlens offers, as the page and the live trainer see them: names, labels, images.

A dataset is any module of :mod:`convlens.datasets` with a Keras-style ``load_data()`` (MNIST, packaged;
Fashion-MNIST and CIFAR-10, found locally or downloaded). :func:`dataset_names` lists them without loading
anything (loading may read large files or download); :func:`arrays` is the sweeps' loader
(:func:`convlens.lab.sweep.trial.load_dataset`: pixels / 255, float32, channels-last, one copy per process).

>>> "mnist" in dataset_names()
True
>>> x, label = sample_image("mnist", 0)
>>> x.shape, x.dtype, label
((28, 28, 1), dtype('float32'), 7)
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import numpy as np

from convlens.errors import ConfigError

__all__ = ["arrays", "dataset_names", "describe", "input_shape", "sample_image"]

_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def dataset_names() -> list[str]:
    """Names of the modules of :mod:`convlens.datasets` that have a ``load_data`` function (MNIST first).

    Nothing is loaded: only the modules are imported.
    """
    import convlens.datasets as package

    names = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"convlens.datasets.{info.name}")
        if callable(getattr(module, "load_data", None)):
            names.append(info.name)
    return sorted(names, key=lambda n: (n != "mnist", n))


def _check(name: str) -> Any:
    names = dataset_names()
    if name not in names:
        raise ConfigError(f"datasets: `dataset` must be one of {names}, got {name!r}.")
    return importlib.import_module(f"convlens.datasets.{name}")


def describe(name: str) -> dict[str, Any]:
    """A JSON-ready description: name, human label, class names (the module's ``CLASS_NAMES``).

    >>> describe("fashion_mnist")["class_names"][:2]
    ['T-shirt/top', 'Trouser']
    """
    module = _check(name)
    names = getattr(module, "CLASS_NAMES", None)
    return {"name": name, "label": _LABELS.get(name, name), "class_names": None if names is None else list(names)}


def arrays(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))`` with x float32 NHWC in [0, 1], cached per process.

    Shapes:
        x_train (N, H, W, C) float32; y_train (N,); x_test (M, H, W, C); y_test (M,).
    """
    from convlens.lab.sweep.trial import load_dataset

    _check(name)
    return load_dataset(name)  # type: ignore[no-any-return]


def input_shape(name: str) -> tuple[int, int, int]:
    """The (H, W, C) of one image of dataset ``name`` (MNIST's is known; others are loaded to see).

    >>> input_shape("mnist")
    (28, 28, 1)
    """
    if name == "mnist":  # packaged and fixed: no need to load 60,000 images to know
        return (28, 28, 1)
    _, (x_test, _) = arrays(name)
    return (int(x_test.shape[1]), int(x_test.shape[2]), int(x_test.shape[3]))


def sample_image(name: str, index: int) -> tuple[np.ndarray, int]:
    """Test image ``index`` of dataset ``name`` (pixels / 255) and its label.

    Shapes:
        returns x (H, W, C) float32.
    """
    _, (x_test, y_test) = arrays(name)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(x_test):
        raise ConfigError(f"datasets: `index` must be in [0, {len(x_test)}) for {name}, got {index!r}.")
    return x_test[index], int(y_test[index])
