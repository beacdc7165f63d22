"""MNIST handwritten digits, packaged with convlens (no download), loaded like ``keras.datasets.mnist``.

The four original gzipped IDX files ship inside the package. :func:`load_data` checks the SHA-256 of each
file's uncompressed bytes against the constants below, so a corrupt install fails loudly instead of training
on garbage. Uncompressed, verified bytes are cached per file for the life of the process (about 55 MB), so a
second call skips decompression and hashing; every call still returns fresh, writable arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from convlens.datasets.idx import read_idx
from convlens.errors import DataError

__all__ = ["FILES", "SHA256", "load_data"]

#: The standard file names, in the order (x_train, y_train, x_test, y_test).
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: SHA-256 of each file's UNCOMPRESSED bytes (the official MNIST release).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_PACKAGED_DIR = Path(__file__).parent / "data" / "mnist"

# (resolved path, size, mtime_ns) -> uncompressed (and, for packaged files, verified) bytes.
_CACHE: dict[tuple[str, int, int], bytes] = {}
_CACHE_LOCK = threading.Lock()

Arrays = tuple[tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]


def _clear_cache() -> None:
    """Forget every cached file (tests use it; a long-running process could too)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _find(directory: Path, stem: str) -> Path:
    """The gzipped file if present, else the raw one; DataError naming both when neither exists."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"mnist.load_data: missing MNIST file in {directory}: expected {stem}.gz or {stem}, found neither.")


def _uncompressed(path: Path, expected_sha256: str | None) -> bytes:
    """The file's uncompressed bytes, from the cache when the file is unchanged."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path.name}: not a valid gzip stream ({exc}).") from exc
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise DataError(
                f"{path.name}: SHA-256 of the uncompressed data does not match: expected {expected_sha256}, "
                f"got {actual}. The packaged MNIST file is damaged; reinstall convlens."
            )
    with _CACHE_LOCK:
        _CACHE[key] = data
    return data


def _check_pair(images: npt.NDArray[Any], labels: npt.NDArray[Any], image_file: str, label_file: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{image_file}: expected uint8 images of shape (N, H, W), got {images.dtype} of shape {images.shape}."
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{label_file}: expected uint8 labels of shape (N,), got {labels.dtype} of shape {labels.shape}."
        )
    if len(images) != len(labels):
        raise DataError(
            f"{label_file}: expected one label per image in {image_file} ({len(images)}), found {len(labels)} labels."
        )


def load_data(path: str | os.PathLike[str] | None = None) -> Arrays:
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``, like ``keras.datasets.mnist.load_data()``.

    Args:
        path: ``None`` (default) for the copy packaged with convlens, checked against :data:`SHA256`.
            Or a directory holding the four standard files (:data:`FILES`), each gzipped (``.gz``, preferred
            when both exist) or raw. Files from a user directory are NOT hash-checked, so same-format data
            (Fashion-MNIST, KMNIST, a subset written with :func:`convlens.datasets.idx.write_idx`) loads
            too; they are checked for structure instead (uint8, 3-D images, 1-D labels, equal counts).

    Returns:
        Fresh, writable uint8 arrays (for MNIST: pixels 0..255, labels 0..9).

    Raises:
        DataError: a missing file, a path that is not a directory, a hash mismatch (naming the file, the
            expected and the actual hash), a malformed IDX file or inconsistent images and labels.

    Shapes:
        x_train (60000, 28, 28), y_train (60000,), x_test (10000, 28, 28), y_test (10000,) for MNIST;
        (N, H, W) and (N,) for other data in a user directory.

    >>> (x_train, y_train), (x_test, y_test) = load_data()
    >>> x_train.shape, y_train.shape, x_test.shape, y_test.shape, x_train.dtype
    ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,), dtype('uint8'))
    """
    if path is None:
        directory = _PACKAGED_DIR
        paths = [directory / f"{stem}.gz" for stem in FILES]
        hashes: list[str | None] = [SHA256[stem] for stem in FILES]
        for file in paths:
            if not file.is_file():
                raise DataError(f"mnist.load_data: packaged MNIST file {file} is missing; reinstall convlens.")
    else:
        directory = Path(path)
        if not directory.is_dir():
            what = "a file" if directory.exists() else "nothing"
            raise DataError(
                f"mnist.load_data: `path` must be a directory holding the MNIST IDX files, found {what} at {directory}."
            )
        paths = [_find(directory, stem) for stem in FILES]
        hashes = [None] * len(FILES)

    def load(file: Path, sha: str | None) -> npt.NDArray[Any]:
        return read_idx(_uncompressed(file, sha), name=file.name)

    # zlib and hashlib release the GIL: inflating the big training file beside the other three saves ~15%.
    with ThreadPoolExecutor(max_workers=2) as pool:
        arrays = list(pool.map(load, paths, hashes))
    x_train, y_train, x_test, y_test = arrays
    if path is not None:
        _check_pair(x_train, y_train, paths[0].name, paths[1].name)
        _check_pair(x_test, y_test, paths[2].name, paths[3].name)
    return (x_train, y_train), (x_test, y_test)
