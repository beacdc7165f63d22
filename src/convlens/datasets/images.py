"""Decode one image file and resize it as ``tf.image.resize`` does (for ``image_dataset_from_directory``).

Decoding uses Pillow (the ``lab`` extra), as Keras 3 itself does when ``image_dataset_from_directory`` runs
without TensorFlow (``format="grain"``): ``convert("L" | "RGB" | "RGBA")``, the first frame of an animated GIF.
Resizing follows TensorFlow's ``tf.image.resize`` (``antialias=False``, half-pixel centres), which Keras's
default path calls, computed in float32:

- bilinear: source coordinate ``s = (o + 0.5) * in / out - 0.5``; neighbours ``max(floor(s), 0)`` and
  ``min(ceil(s), in - 1)``; weight ``s - floor(s)``; rows first, then columns (TensorFlow's order);
- nearest: source index ``min(floor((o + 0.5) * in / out), in - 1)``.

>>> image = np.arange(4, dtype=np.float32).reshape(2, 2, 1)
>>> resize(image, (4, 4))[..., 0]
array([[0.  , 0.25, 0.75, 1.  ],
       [0.5 , 0.75, 1.25, 1.5 ],
       [1.5 , 1.75, 2.25, 2.5 ],
       [2.  , 2.25, 2.75, 3.  ]], dtype=float32)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from convlens.errors import ConfigError, DataError

__all__ = ["COLOR_MODES", "FORMATS", "INTERPOLATIONS", "crop_to_aspect_ratio", "load_image", "resize"]

#: File name endings ``image_dataset_from_directory`` picks up (case-insensitive), as Keras.
FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
#: color_mode -> (Pillow mode, channels).
COLOR_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}
#: The interpolations implemented (Keras also names bicubic, area, lanczos3, lanczos5, gaussian, mitchellcubic).
INTERPOLATIONS = ("bilinear", "nearest")


def _source_coordinates(in_size: int, out_size: int) -> npt.NDArray[np.float32]:
    scale = np.float32(in_size) / np.float32(out_size)
    return (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale


def resize(image: npt.NDArray[np.float32], size: tuple[int, int], interpolation: str = "bilinear") -> Any:
    """Resize one channels-last image like ``tf.image.resize(image, size, method, antialias=False)``.

    Args:
        image: float32 pixels.
        size: ``(height, width)`` of the result.
        interpolation: ``'bilinear'`` or ``'nearest'``.

    Returns:
        A new float32 array.

    Shapes:
        image (H, W, C) -> (height, width, C).
    """
    if interpolation == "nearest":
        rows = np.minimum(np.floor(_source_coordinates(image.shape[0], size[0])), image.shape[0] - 1)
        cols = np.minimum(np.floor(_source_coordinates(image.shape[1], size[1])), image.shape[1] - 1)
        return image[rows.astype(np.intp)][:, cols.astype(np.intp)]
    weights = []
    for axis, out_size in enumerate(size):
        source = _source_coordinates(image.shape[axis], out_size) - np.float32(0.5)
        floor = np.floor(source)
        lower = np.maximum(floor, 0).astype(np.intp)
        upper = np.minimum(np.ceil(source), image.shape[axis] - 1).astype(np.intp)
        weights.append((lower, upper, (source - floor).astype(np.float32)))
    (top, bottom, y_lerp), (left, right, x_lerp) = weights
    x_lerp = x_lerp[None, :, None]
    upper_rows, lower_rows = image[top], image[bottom]
    top_row = upper_rows[:, left] + (upper_rows[:, right] - upper_rows[:, left]) * x_lerp
    bottom_row = lower_rows[:, left] + (lower_rows[:, right] - lower_rows[:, left]) * x_lerp
    return top_row + (bottom_row - top_row) * y_lerp[:, None, None]


def crop_to_aspect_ratio(image: npt.NDArray[Any], size: tuple[int, int]) -> npt.NDArray[Any]:
    """The largest centred window of ``image`` with the aspect ratio of ``size`` (Keras's ``smart_resize`` crop).

    Shapes:
        image (H, W, C) -> (CH, CW, C) with CH = clip(int(W * height / width), 1, H),
        CW = clip(int(H * width / height), 1, W); the window starts at ((H - CH) // 2, (W - CW) // 2).
    """
    height, width = image.shape[:2]
    crop_height = max(min(height, int(float(width * size[0]) / size[1])), 1)
    crop_width = max(min(width, int(float(height * size[1]) / size[0])), 1)
    top = int(float(height - crop_height) / 2)
    left = int(float(width - crop_width) / 2)
    return image[top : top + crop_height, left : left + crop_width]


def load_image(
    path: str | os.PathLike[str],
    color_mode: str,
    size: tuple[int, int],
    interpolation: str = "bilinear",
    crop: bool = False,
) -> Any:
    """Decode ``path`` (PNG, JPEG, BMP, GIF's first frame), convert to ``color_mode``, crop (optional), resize.

    Raises:
        DataError: the file cannot be read or decoded (naming it).
        ConfigError: Pillow is not installed.

    Shapes:
        file of any size -> (height, width, channels) float32 in [0, 255]; channels 1, 3 or 4 by ``color_mode``.
    """
    try:
        from PIL import Image
    except ModuleNotFoundError:  # pragma: no cover - pillow is in the lab extra
        raise ConfigError(
            "image_dataset_from_directory: decoding images needs Pillow: pip install 'convlens[lab]'."
        ) from None
    mode, _ = COLOR_MODES[color_mode]
    try:
        with Image.open(path) as opened:
            opened.load()
            pixels = np.asarray(opened.convert(mode), dtype=np.float32)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"image_dataset_from_directory: cannot decode {os.fspath(path)}: {exc}.") from exc
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if crop:
        pixels = crop_to_aspect_ratio(pixels, size)
    return resize(pixels, size, interpolation)
