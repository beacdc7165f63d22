"""Inputs for the visualisations: an MNIST test index, an array, or the user's own PNG/JPEG.

A user's picture is converted to the model's input size and channels, and every step of the
conversion is described in words so the figure can state it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConfigError, DataError, ShapeError

__all__ = ["LoadedImage", "ModelInput", "load_image", "mnist_test", "model_input"]


@dataclass
class LoadedImage:
    """A picture converted for a model.

    Attributes:
        array: (H, W, C) float32 in [0, 1].
        description: the conversion in words (original size and mode -> model size and channels).
        original: the picture as read, (h, w) or (h, w, 3) uint8.
    """

    array: np.ndarray
    description: str
    original: np.ndarray


@dataclass
class ModelInput:
    """One input ready for a model: ``x`` (1, H, W, C) float32, a ``description`` and the ``label`` if known."""

    x: np.ndarray
    description: str
    label: int | None = None


def load_image(
    path: str | os.PathLike[str], input_shape: tuple[int, int, int], *, invert: bool | None = None
) -> LoadedImage:
    """Read a PNG/JPEG with Pillow and convert it to ``input_shape`` (H, W, C), pixels / 255.

    ``C == 1`` converts to greyscale ('L'), ``C == 3`` to RGB. The picture is resized to (H, W)
    with bilinear resampling (aspect ratio not kept). ``invert=None`` inverts a picture whose
    border is mostly light (dark ink on white paper) so it looks like MNIST's light digit on black.

    Shapes:
        returns array (H, W, C), float32.

    Raises:
        DataError: when the file is missing or not an image Pillow can read.
        ShapeError: when C is neither 1 nor 3.
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = (int(s) for s in input_shape)
    if channels not in (1, 3):
        raise ShapeError(f"load_image: the model's input must have 1 or 3 channels, got input shape {input_shape}.")
    file = Path(path)
    try:
        with Image.open(file) as img:
            img.load()
            mode, size = img.mode, img.size
            converted = img.convert("L" if channels == 1 else "RGB")
    except FileNotFoundError:
        raise DataError(f"load_image: no such file: {str(path)!r}.") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"load_image: {str(path)!r} is not an image Pillow can read ({exc}).") from None
    original = np.asarray(converted)
    steps = [f"{file.name}: {size[0]}x{size[1]} {mode}"]
    if converted.mode != mode:
        steps.append(f"-> {converted.mode}")
    if (converted.width, converted.height) != (width, height):
        converted = converted.resize((width, height), Image.Resampling.BILINEAR)
        steps.append(f"-> resized to {width}x{height} (bilinear)")
    array = np.asarray(converted, dtype=np.float32) / np.float32(255.0)
    steps.append("-> / 255")
    if array.ndim == 2:
        array = array[..., None]
    if invert is None:
        border = np.concatenate([array[0].ravel(), array[-1].ravel(), array[:, 0].ravel(), array[:, -1].ravel()])
        invert = bool(border.mean() > 0.5)
    if invert:
        array = np.float32(1.0) - array
        steps.append("-> inverted (1 - x, light background)")
    return LoadedImage(array=np.ascontiguousarray(array), description=" ".join(steps), original=original)


def mnist_test(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test set as the course feeds it: x (N, 28, 28, 1) float32 = pixels / 255, y (N,) uint8."""
    from convlens.datasets import mnist

    _, (x_test, y_test) = mnist.load_data()
    if limit is not None:
        x_test, y_test = x_test[:limit], y_test[:limit]
    return x_test[..., None].astype(np.float32) / np.float32(255.0), y_test


def _input_shape(model: Any) -> tuple[int, int, int]:
    shape = getattr(model, "input_shape", None)
    if shape is None or len(shape) != 4 or any(s is None for s in shape[1:]):
        raise ShapeError(f"viz: the model must be built for images (None, H, W, C), got input shape {shape}.")
    return (int(shape[1]), int(shape[2]), int(shape[3]))


def model_input(
    model: Any, x: Any = None, *, index: int | None = None, image: str | os.PathLike[str] | None = None
) -> ModelInput:
    """Resolve exactly one of ``x`` (an array), ``index`` (MNIST test image) or ``image`` (a file).

    With none given, MNIST test image 0 is used.

    Shapes:
        x: (H, W, C), (1, H, W, C), or (H, W) for one channel; returns x (1, H, W, C) float32.

    Raises:
        ConfigError: when more than one source is given or the index is out of range.
        ShapeError: when ``x`` does not match the model's input shape.
    """
    given = [name for name, value in (("x", x), ("index", index), ("image", image)) if value is not None]
    if len(given) > 1:
        raise ConfigError(f"viz: give one input source (x, index or image), got {', '.join(given)}.")
    shape = _input_shape(model)
    if image is not None:
        loaded = load_image(image, shape)
        return ModelInput(loaded.array[None], loaded.description)
    if x is None:
        index = 0 if index is None else index
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < 10000:
            raise ConfigError(f"viz: `index` must be an MNIST test index in [0, 10000), got {index!r}.")
        images, labels = mnist_test()
        if images.shape[1:] != shape:
            raise ShapeError(f"viz: MNIST images are (28, 28, 1) but the model takes {shape}; pass --image or x.")
        return ModelInput(
            images[index : index + 1], f"MNIST test image {index} (label {labels[index]})", int(labels[index])
        )
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 2 and shape[2] == 1:
        arr = arr[..., None]
    if arr.ndim == 3:
        arr = arr[None]
    if arr.shape[1:] != shape or arr.shape[0] != 1:
        raise ShapeError(f"viz: `x` must be one image of shape {shape}, got {np.shape(x)}.")
    return ModelInput(np.ascontiguousarray(arr), f"array {shape[0]}x{shape[1]}x{shape[2]}")
