"""MNIST handwritten digits, packaged with convlens (no download), loaded like ``keras.datasets.mnist``.

The four original gzipped IDX files ship inside the package. :func:`load_data` checks the SHA-256 of each
file's uncompressed bytes against the constants below, so a corrupt install fails loudly instead of training
on garbage. Uncompressed, verified bytes are cached per file for the life of the process (about 55 MB), so a
second call skips decompression and hashing; every call still returns fresh, writable arrays. The reading and
checking machinery is shared with the other data sets (:mod:`convlens.datasets.sources`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from convlens.datasets import sources
from convlens.datasets.sources import IDX_FILES, IdxArrays, Source
from convlens.errors import DataError

__all__ = ["CLASS_NAMES", "FILES", "SHA256", "load_data", "load_sample"]

#: The standard file names, in the order (x_train, y_train, x_test, y_test).
FILES = IDX_FILES

#: SHA-256 of each file's UNCOMPRESSED bytes (the official MNIST release).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Label -> name (the digits themselves).
CLASS_NAMES = tuple(str(digit) for digit in range(10))

SOURCE = Source(
    owner="mnist.load_data", title="MNIST", folder="mnist", expected=", ".join(f"{stem}[.gz]" for stem in FILES)
)

_PACKAGED_DIR = Path(__file__).parent / "data" / "mnist"
_DAMAGED = " The packaged MNIST file is damaged; reinstall convlens."


def _packaged(stem: str) -> Path:
    file = _PACKAGED_DIR / f"{stem}.gz"
    if not file.is_file():
        raise DataError(f"mnist.load_data: packaged MNIST file {file} is missing; reinstall convlens.")
    return file


def load_data(path: str | os.PathLike[str] | None = None) -> IdxArrays:
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
        paths = [_packaged(stem) for stem in FILES]
        return sources.load_idx_set(paths, [SHA256[stem] for stem in FILES], _DAMAGED)
    found = sources.locate(SOURCE, path, sources.find_idx_files, fetch=None)  # that directory only
    return sources.load_idx_set(found, [None] * len(FILES))


def load_sample() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The first 100 MNIST test images and their labels, for pictures and demos (cheap: no training set).

    Reads only the packaged test files (checked against :data:`SHA256`, cached like :func:`load_data`).

    Returns:
        ``(x, y)``: fresh, writable uint8 arrays.

    Shapes:
        x (100, 28, 28), y (100,).

    >>> x, y = load_sample()
    >>> x.shape, y[:5].tolist()
    ((100, 28, 28), [7, 2, 1, 0, 4])
    """
    images, labels = (sources.read_idx_checked(_packaged(stem), SHA256[stem], _DAMAGED) for stem in FILES[2:])
    return images[:100].copy(), labels[:100].copy()
