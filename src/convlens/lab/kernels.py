"""Classic image kernels by name, matrices from text, and small generated or loaded inputs.

These feed :mod:`convlens.lab.explain` and ``convlens explain``: a kernel is a name
(``sobel_x``, ``blur``, ...) or numbers (``"1,0,-1;2,0,-2;1,0,-1"``: rows split by ``;``);
an input is numbers, a generated pattern (``random``, ``ramp``, ``checker``, ``5x5``), an MNIST
test digit (``digit:7``) or an image file (grayscale, resized, scaled to 0..1).

>>> get_kernel("sobel_x")
array([[ 1.,  0., -1.],
       [ 2.,  0., -2.],
       [ 1.,  0., -1.]])
>>> parse_matrix("1,2;3,4").tolist()
[[1.0, 2.0], [3.0, 4.0]]
>>> make_input("ramp:2x3").tolist()
[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConfigError, DataError

__all__ = ["KERNELS", "describe_input", "get_kernel", "load_image", "make_input", "parse_matrix"]

_SOBEL_X = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]

#: Name -> 2-D kernel (float64). Sobel follows the course's sign convention (left minus right),
#: as a cross-correlation, which is what every CNN layer computes.
KERNELS: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64),
    "sobel_x": np.array(_SOBEL_X, dtype=np.float64),
    "sobel_y": np.array(_SOBEL_X, dtype=np.float64).T.copy(),
    "prewitt_x": np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=np.float64),
    "prewitt_y": np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], dtype=np.float64),
    "laplacian": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64),
    "blur": np.full((3, 3), 1.0 / 9.0),
    "box": np.full((3, 3), 1.0 / 9.0),
    "gaussian": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64) / 16.0,
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64),
    "edge": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=np.float64),
    "outline": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=np.float64),
    "emboss": np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64),
}

_SIZE = re.compile(r"^(\d+)(?:x(\d+))?$")


def parse_matrix(text: str, *, name: str = "kernel") -> np.ndarray:
    """Parse ``"a,b,c;d,e,f"`` (rows separated by ``;``, values by ``,`` or spaces) into a 2-D array.

    Shapes:
        returns (R, C): R = number of ``;``-separated rows, C = values per row (all rows equal).
    """
    rows = [r for r in text.strip().split(";") if r.strip()]
    try:
        values = [[float(v) for v in re.split(r"[,\s]+", r.strip()) if v] for r in rows]
    except ValueError:
        raise ConfigError(f"explain: `{name}` must be numbers like '1,0,-1;2,0,-2;1,0,-1', got {text!r}.") from None
    if not values or len({len(r) for r in values}) != 1 or not values[0]:
        raise ConfigError(
            f"explain: `{name}` must be rows of equal length separated by ';' (e.g. '1,0;0,1'), got {text!r}."
        )
    return np.array(values, dtype=np.float64)


def get_kernel(spec: Any) -> np.ndarray:
    """A kernel from a name in :data:`KERNELS`, a ``"1,0,-1;..."`` string or a 2-D array-like.

    Shapes:
        returns (KH, KW), float64.
    """
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in KERNELS:
            return KERNELS[key].copy()
        if re.search(r"[a-z]", key.replace("e-", "").replace("e+", "")):
            names = ", ".join(sorted(KERNELS))
            raise ConfigError(f"explain: `kernel` must be one of {names} or numbers like '1,0;0,1', got {spec!r}.")
        return parse_matrix(spec)
    return as_grid(spec, "kernel")


def as_grid(value: Any, name: str) -> np.ndarray:
    """A 2-D float64 grid from nested lists / arrays; a trailing channel axis of 1 is dropped."""
    try:
        grid = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"explain: `{name}` must be a 2-D array of numbers, got {type(value).__name__}.") from None
    if grid.ndim == 3 and grid.shape[2] == 1:
        grid = grid[:, :, 0]
    if grid.ndim != 2 or 0 in grid.shape:
        raise ConfigError(f"explain: `{name}` must be a non-empty 2-D array (H, W), got shape {grid.shape}.")
    if not np.all(np.isfinite(grid)):
        raise ConfigError(f"explain: `{name}` must hold finite numbers only.")
    return grid


MAX_INPUT_CELLS = 256 * 256  # explain steps through every output position in Python: more would not finish


def _size(text: str, default: tuple[int, int]) -> tuple[int, int]:
    if not text:
        return default
    match = _SIZE.match(text.strip())
    if not match or int(match.group(1)) < 1 or (match.group(2) is not None and int(match.group(2)) < 1):
        raise ConfigError(f"explain: input size must look like '5x5' or '7', got {text!r}.")
    height = int(match.group(1))
    width = int(match.group(2) or height)
    if height * width > MAX_INPUT_CELLS:
        raise ConfigError(
            f"explain: input size {height}x{width} is too large to step through; at most {MAX_INPUT_CELLS:,} cells "
            "(e.g. 256x256)."
        )
    return height, width


def load_image(path: str | Path, size: tuple[int, int] = (12, 12)) -> tuple[np.ndarray, str]:
    """Read an image file as a grayscale grid in 0..1, resized to ``size`` (H, W).

    Returns the grid and a sentence stating the conversion (mode, resize, scaling).

    Shapes:
        returns (H, W) float64 with ``(H, W) == size``.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            original = image.size
            mode = image.mode
            gray = image.convert("L").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"explain: cannot read the image {str(path)!r}: {exc}") from None
    grid = np.asarray(gray, dtype=np.float64) / 255.0
    note = (
        f"{path}: {original[0]}x{original[1]} {mode} image converted to grayscale (Pillow 'L': "
        f"0.299 R + 0.587 G + 0.114 B), resized to {size[1]}x{size[0]} (W x H, bilinear), divided by 255."
    )
    return grid, note


def make_input(spec: Any, *, seed: int = 0, image_size: tuple[int, int] = (12, 12)) -> np.ndarray:
    """Build an input grid from numbers, a generator spec or an image path (see the module doc).

    Generator specs: ``"5x5"`` (random integers 0..9), ``"random[:HxW]"`` (same), ``"ramp[:HxW]"``
    (1, 2, 3, ... row-major), ``"checker[:HxW]"`` (0/1 checkerboard), ``"digit:N"`` (MNIST test image
    N, pixels / 255). Default size 5x5.

    Shapes:
        returns (H, W) float64.
    """
    return _make(spec, seed=seed, image_size=image_size)[0]


def describe_input(spec: Any, *, seed: int = 0, image_size: tuple[int, int] = (12, 12)) -> tuple[np.ndarray, str]:
    """Like :func:`make_input`, also returning a sentence saying where the numbers came from."""
    return _make(spec, seed=seed, image_size=image_size)


def _make(spec: Any, *, seed: int, image_size: tuple[int, int]) -> tuple[np.ndarray, str]:
    if not isinstance(spec, str):
        grid = as_grid(spec, "input")
        return grid, f"given {grid.shape[0]}x{grid.shape[1]} input"
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    if _SIZE.match(kind):
        kind, rest = "random", kind
    if kind == "random":
        h, w = _size(rest, (5, 5))
        grid = np.random.default_rng(seed).integers(0, 10, size=(h, w)).astype(np.float64)
        return grid, f"random {h}x{w} integers 0..9 (seed {seed})"
    if kind == "ramp":
        h, w = _size(rest, (5, 5))
        return np.arange(1, h * w + 1, dtype=np.float64).reshape(h, w), f"ramp 1..{h * w} ({h}x{w}, row-major)"
    if kind == "checker":
        h, w = _size(rest, (5, 5))
        return np.indices((h, w)).sum(axis=0) % 2 * 1.0, f"{h}x{w} checkerboard of 0 and 1"
    if kind == "digit":
        return _digit(rest)
    if Path(text).is_file():
        return load_image(text, image_size)
    if re.fullmatch(r"[\d\s.,;eE+-]+", text):
        grid = parse_matrix(text, name="input")
        return grid, f"given {grid.shape[0]}x{grid.shape[1]} input"
    raise ConfigError(
        "explain: `input` must be numbers ('1,2;3,4'), 'HxW', 'random[:HxW]', 'ramp[:HxW]', 'checker[:HxW]', "
        f"'digit:N' or an image file, got {spec!r}."
    )


def _digit(rest: str) -> tuple[np.ndarray, str]:
    from convlens.datasets import mnist

    if not rest.strip().isdigit():
        raise ConfigError(f"explain: `input` 'digit:N' needs a test-image index N, got 'digit:{rest}'.")
    index = int(rest)
    (_, _), (x_test, y_test) = mnist.load_data()
    if index >= len(x_test):
        raise ConfigError(f"explain: MNIST has {len(x_test)} test images (0..{len(x_test) - 1}), got digit:{index}.")
    grid = x_test[index].astype(np.float64) / 255.0
    return grid, f"MNIST test image {index} (label {int(y_test[index])}), 28x28 pixels / 255"
