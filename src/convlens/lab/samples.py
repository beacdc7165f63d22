"""The datasets convlens offers, as the page and the live trainer see them: names, shapes, images.

A dataset is any module of :mod:`convlens.datasets` with a Keras-style ``load_data()`` returning
``((x_train, y_train), (x_test, y_test))`` of uint8 images. :func:`dataset_names` lists them without
loading anything (loading may read large files); :func:`arrays` loads one on first use, scales the
pixels to [0, 1] as the course does (``x / 255``, float32, channels-last) and keeps it for the life of
the process. MNIST ships inside the package, so it is always there.

>>> "mnist" in dataset_names()
True
>>> x, label = sample_image("mnist", 0)
>>> x.shape, x.dtype, label
((28, 28, 1), dtype('float32'), 7)
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Any

import numpy as np

from convlens.errors import ConfigError, DataError

__all__ = ["CLASS_NAMES", "arrays", "dataset_names", "describe", "sample_image"]

#: Class names where the labels mean something beyond their number.
CLASS_NAMES: dict[str, list[str]] = {
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}  # fmt: skip

_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_CACHE: dict[str, tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {}
_LOCK = threading.Lock()


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


def describe(name: str) -> dict[str, Any]:
    """A JSON-ready description: name, human label, class names (None: the digits themselves).

    >>> describe("mnist")["label"]
    'MNIST'
    """
    _check(name)
    return {"name": name, "label": _LABELS.get(name, name), "class_names": CLASS_NAMES.get(name)}


def _check(name: str) -> None:
    names = dataset_names()
    if name not in names:
        raise ConfigError(f"datasets: `dataset` must be one of {names}, got {name!r}.")


def _scaled(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"datasets: expected images (N, H, W) or (N, H, W, C), got shape {x.shape}.")
    return x.astype(np.float32) / np.float32(255.0)


def arrays(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))`` with x float32 NHWC in [0, 1], cached per process.

    MNIST comes from :func:`convlens.lab.sweep.trial.load_mnist` (the sweeps' cache, the same arrays).

    Shapes:
        x_train (N, H, W, C) float32; y_train (N,); x_test (M, H, W, C); y_test (M,).
    """
    _check(name)
    with _LOCK:
        if name not in _CACHE:
            if name == "mnist":
                from convlens.lab.sweep.trial import load_mnist

                _CACHE[name] = load_mnist()
            else:
                module = importlib.import_module(f"convlens.datasets.{name}")
                (x_train, y_train), (x_test, y_test) = module.load_data()
                _CACHE[name] = ((_scaled(x_train), np.asarray(y_train)), (_scaled(x_test), np.asarray(y_test)))
        return _CACHE[name]


def sample_image(name: str, index: int) -> tuple[np.ndarray, int]:
    """Test image ``index`` of dataset ``name`` (pixels / 255) and its label.

    Shapes:
        returns x (H, W, C) float32.
    """
    _, (x_test, y_test) = arrays(name)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(x_test):
        raise ConfigError(f"datasets: `index` must be in [0, {len(x_test)}) for {name}, got {index!r}.")
    return x_test[index], int(y_test[index])
