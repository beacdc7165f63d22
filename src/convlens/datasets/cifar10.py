"""CIFAR-10 (Krizhevsky, 2009) from its *binary* distribution, loaded like ``keras.datasets.cifar10``.

The binary version (``cifar-10-binary.tar.gz``) holds ``cifar-10-batches-bin/data_batch_1.bin`` ...
``data_batch_5.bin`` (10,000 training images each) and ``test_batch.bin`` (10,000 test images): fixed
3,073-byte records, one label byte (0..9) then 1,024 red, 1,024 green and 1,024 blue bytes, each plane a
32x32 image in row-major order. Reading it needs no pickle (Keras reads the Python version, which is
pickled); the result is the same arrays, channels-last.

Where the files come from (see :mod:`convlens.datasets.sources`): ``path=``, ``$CONVLENS_DATA/cifar-10/``, the
download cache ``~/.cache/convlens/datasets/cifar-10/``, then a download of the archive from the dataset
authors' page. A directory may hold the archive, the extracted ``cifar-10-batches-bin/`` folder, or the six
``.bin`` files themselves (extracted files are preferred: no decompression). What is checked:

- every load: each ``.bin`` file's SHA-256 (:data:`SHA256`), whether read from disk or from inside the archive;
- a download: the archive's SHA-256 (:data:`ARCHIVE_SHA256`, the checksum TensorFlow Datasets publishes for
  this URL; the CIFAR page publishes its MD5, c32a1d4ab5d03f1284b67883e8d87530), before the file is kept.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from convlens.datasets import sources
from convlens.datasets.sources import Source
from convlens.errors import DataError

__all__ = ["ARCHIVE", "ARCHIVE_SHA256", "CLASS_NAMES", "FILES", "SHA256", "URL", "load_data"]

#: The record files, training batches first.
FILES = (
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
)

#: SHA-256 of each record file as extracted from the official archive.
SHA256 = {
    "data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    "test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}

#: The binary distribution, its folder inside the archive, its URL and the SHA-256 of the archive itself.
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"

#: Label -> name (``batches.meta.txt`` of the archive, Keras's documentation).
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

SOURCE = Source(
    owner="cifar10.load_data",
    title="CIFAR-10 (binary version)",
    folder="cifar-10",
    expected=f"{ARCHIVE}, or {FOLDER}/ or the files {', '.join(FILES)}",
)

_SIDE = 32
_PIXELS = _SIDE * _SIDE * 3
RECORD_BYTES = 1 + _PIXELS
_NOT_OFFICIAL = " Replace it with the official file (or delete it from the download cache to fetch it again)."

Arrays = tuple[tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]


def _find(directory: Path) -> list[Path] | None:
    """The six extracted record files if all are there, else ``[archive]``, else None."""
    for folder in (directory / FOLDER, directory):
        files = [folder / name for name in FILES]
        if all(f.is_file() for f in files):
            return files
    archive = directory / ARCHIVE
    return [archive] if archive.is_file() else None


def _verify_archive(path: Path, name: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != ARCHIVE_SHA256:
        raise DataError(
            f"{name}: SHA-256 does not match: expected {ARCHIVE_SHA256}, got {actual}. The file downloaded from "
            f"{URL} is not the official archive; it was not kept."
        )


def _fetch(directory: Path) -> None:
    sources.download(URL, directory / ARCHIVE, _verify_archive)


def _read_archive(archive: Path) -> dict[str, bytes]:
    """The six record files' bytes, read from the archive without extracting anything to disk."""
    wanted = {f"{FOLDER}/{name}": name for name in FILES}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                if name is not None and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive.name}: not a readable .tar.gz archive ({exc}).") from exc
    missing = [f"{FOLDER}/{name}" for name in FILES if name not in found]
    if missing:
        raise DataError(f"{archive.name}: missing {', '.join(missing)}: expected all six record files under {FOLDER}/.")
    return found


def _decode(data: bytes, label: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Records -> (images (N, 32, 32, 3), labels (N,)); DataError naming ``label`` for a bad size or label."""
    if len(data) % RECORD_BYTES:
        raise DataError(
            f"{label}: expected whole {RECORD_BYTES}-byte records (1 label + 3*32*32 pixel bytes), found "
            f"{len(data)} bytes ({len(data) // RECORD_BYTES} records and {len(data) % RECORD_BYTES} bytes over)."
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].copy()
    if labels.size and labels.max() >= len(CLASS_NAMES):
        bad = int(np.argmax(labels >= len(CLASS_NAMES)))
        raise DataError(f"{label}: record {bad} has label {labels[bad]}, expected 0..{len(CLASS_NAMES) - 1}.")
    # Planes R, G, B of 32x32 each -> channels-last, as Keras returns them (C-contiguous here).
    images = np.ascontiguousarray(records[:, 1:].reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1))
    return images, labels


def load_data(path: str | os.PathLike[str] | None = None) -> Arrays:
    """Load CIFAR-10 as ``((x_train, y_train), (x_test, y_test))``, with Keras's shapes and dtypes.

    Args:
        path: a directory holding ``cifar-10-binary.tar.gz``, the extracted ``cifar-10-batches-bin/`` folder or
            the six ``.bin`` files, searched alone. None (default): ``$CONVLENS_DATA/cifar-10/``, then the
            cache ``~/.cache/convlens/datasets/cifar-10/`` (``$XDG_CACHE_HOME`` respected), then a download of
            :data:`URL` into that cache (checked against :data:`ARCHIVE_SHA256` before it is kept).

    Returns:
        Fresh, C-contiguous uint8 arrays: pixels 0..255 (RGB), labels 0..9 (:data:`CLASS_NAMES`).

    Raises:
        DataError: a record file whose SHA-256 is not the official one (naming it), a damaged archive or
            missing member, a size that is not whole records, or no files anywhere and no download.

    Shapes:
        x_train (50000, 32, 32, 3), y_train (50000, 1), x_test (10000, 32, 32, 3), y_test (10000, 1).
    """
    found = sources.locate(SOURCE, path, _find, _fetch)
    if len(found) == 1:
        contents = _read_archive(found[0])
        names = {name: f"{name} (in {ARCHIVE})" for name in FILES}
    else:
        contents = {file.name: file.read_bytes() for file in found}
        names = {file.name: file.name for file in found}
    parts = []
    for name in FILES:
        sources.check_sha256(contents[name], SHA256[name], names[name], _NOT_OFFICIAL)
        parts.append(_decode(contents.pop(name), names[name]))
    x_train = np.concatenate([images for images, _ in parts[:5]])
    y_train = np.concatenate([labels for _, labels in parts[:5]])[:, None]
    x_test, y_test = parts[5][0], parts[5][1][:, None]
    return (x_train, y_train), (x_test, y_test)
