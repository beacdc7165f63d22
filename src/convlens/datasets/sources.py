"""Where dataset files come from, and the checks they pass: one copy of the machinery every loader shares.

A named data set (Fashion-MNIST, CIFAR-10) is looked for in this order; the first place that holds a complete
set of files wins:

1. ``path=`` given to ``load_data``: that directory and nothing else (a missing file is an error there);
2. ``$CONVLENS_DATA/<folder>/`` (for example ``$CONVLENS_DATA/fashion-mnist/``);
3. the Debian package's directory, ``/usr/share/datasets/<folder>/`` (``apt-get install dataset-fashion-mnist``);
4. the download cache, ``$XDG_CACHE_HOME/convlens/datasets/<folder>/`` (``~/.cache/...`` when unset);
5. a download from the URL Keras uses into that cache: each file goes to a temporary name beside its target,
   is checked, and only then renamed (``os.replace``), so a broken download never sits under the final name.

Every file is checked against the SHA-256 of its *uncompressed* content wherever it was found (a recompressed
``.gz``, as Debian ships, still passes); a mismatch is a :class:`~convlens.errors.DataError` naming the file.
Verified bytes of IDX files are kept for the life of the process, keyed by (path, size, mtime), so a second
``load_data`` skips decompressing and hashing.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import threading
import uuid
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from convlens import switches
from convlens.datasets.idx import read_idx
from convlens.errors import DataError

__all__ = [
    "DEBIAN_ROOT",
    "IDX_FILES",
    "DownloadError",
    "IdxArrays",
    "Source",
    "cache_dir",
    "check_sha256",
    "clear_cache",
    "download",
    "find_idx_files",
    "load_idx_set",
    "locate",
    "read_idx_checked",
    "read_uncompressed",
    "search_dirs",
    "uncompressed",
]

#: The four standard IDX file names of MNIST-like data, in the order (x_train, y_train, x_test, y_test).
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: Where Debian's ``dataset-*`` packages put their files (``dpkg -L dataset-fashion-mnist``).
DEBIAN_ROOT = Path("/usr/share/datasets")

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
T = TypeVar("T")

# (resolved path, size, mtime_ns, expected sha256 or None) -> uncompressed (and checked) bytes.
_CACHE: dict[tuple[str, int, int, str | None], bytes] = {}
_CACHE_LOCK = threading.Lock()

IdxArrays = tuple[
    tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]
]


@dataclass(frozen=True)
class Source:
    """A named data set: how messages name it and where its files may be.

    Attributes:
        owner: the public function, for messages (``"fashion_mnist.load_data"``).
        title: the data set's name (``"Fashion-MNIST"``).
        folder: the sub-folder name under ``$CONVLENS_DATA``, the Debian root and the cache (``"fashion-mnist"``).
        expected: what a complete directory holds, for messages (``"train-images-idx3-ubyte[.gz], ..."``).
        debian_package: the Debian package that installs the files, or None.
    """

    owner: str
    title: str
    folder: str
    expected: str
    debian_package: str | None = None


def clear_cache() -> None:
    """Forget every cached file (tests use it; a long-running process could too)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def cache_dir(folder: str) -> Path:
    """The download cache of one data set: ``$XDG_CACHE_HOME/convlens/datasets/<folder>`` (``~/.cache`` default).

    Shapes:
        no arrays.
    """
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "convlens" / "datasets" / folder


def search_dirs(source: Source) -> list[Path]:
    """The directories searched when no ``path=`` is given, in order (steps 2-4 of the module docstring).

    Shapes:
        no arrays.
    """
    dirs = []
    data_root = switches.DATA.value()
    if data_root:
        dirs.append(Path(data_root) / source.folder)
    if source.debian_package:
        dirs.append(DEBIAN_ROOT / source.folder)
    dirs.append(cache_dir(source.folder))
    return dirs


def check_sha256(data: bytes, expected: str, label: str, hint: str = "") -> None:
    """Raise a DataError naming ``label`` when ``sha256(data)`` is not ``expected``.

    Shapes:
        no arrays.
    """
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataError(
            f"{label}: SHA-256 of the uncompressed data does not match: expected {expected}, got {actual}.{hint}"
        )


def read_uncompressed(path: Path, label: str | None = None) -> bytes:
    """The file's bytes, gunzipped when they are gzip (recognised by content); no cache, no hash check.

    Raises:
        DataError: a broken gzip stream, naming ``label`` (default: the file name).

    Shapes:
        no arrays.
    """
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{label or path.name}: not a valid gzip stream ({exc}).") from exc
    return data


def uncompressed(path: Path, expected_sha256: str | None, hint: str = "") -> bytes:
    """The file's uncompressed bytes, checked against ``expected_sha256`` (None: unchecked); cached per process.

    Raises:
        DataError: a broken gzip stream or a hash mismatch, naming the file.

    Shapes:
        no arrays.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected_sha256)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    data = read_uncompressed(path)
    if expected_sha256 is not None:
        check_sha256(data, expected_sha256, path.name, hint)
    with _CACHE_LOCK:
        _CACHE[key] = data
    return data


def read_idx_checked(path: Path, expected_sha256: str | None, hint: str = "") -> npt.NDArray[Any]:
    """:func:`~convlens.datasets.idx.read_idx` of :func:`uncompressed` bytes (hash-checked, cached).

    Shapes:
        file with header dims (D1, ..., Dn) -> array (D1, ..., Dn).
    """
    return read_idx(uncompressed(path, expected_sha256, hint), name=path.name)


def find_idx_files(directory: Path, stems: Sequence[str] = IDX_FILES) -> list[Path] | None:
    """Each stem as ``stem.gz`` (preferred) or raw ``stem`` in ``directory``; None when any is missing.

    Shapes:
        no arrays.
    """
    found = []
    for stem in stems:
        candidates = [p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()]
        if not candidates:
            return None
        found.append(candidates[0])
    return found


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


def load_idx_set(paths: Sequence[Path], hashes: Sequence[str | None], hint: str = "") -> IdxArrays:
    """Read the four IDX files (x_train, y_train, x_test, y_test), each checked against its hash (None: unchecked).

    Raises:
        DataError: a hash mismatch, a malformed file, or images and labels that do not pair up; naming the file.

    Shapes:
        x_train (N, H, W) uint8, y_train (N,) uint8, x_test (M, H, W) uint8, y_test (M,) uint8.
    """

    def load(file: Path, sha: str | None) -> npt.NDArray[Any]:
        return read_idx_checked(file, sha, hint)

    # zlib and hashlib release the GIL: inflating the big training file beside the other three saves ~15%.
    with ThreadPoolExecutor(max_workers=2) as pool:
        x_train, y_train, x_test, y_test = pool.map(load, paths, hashes)
    _check_pair(x_train, y_train, paths[0].name, paths[1].name)
    _check_pair(x_test, y_test, paths[2].name, paths[3].name)
    return (x_train, y_train), (x_test, y_test)


class DownloadError(DataError):
    """The file could not be fetched (no network, HTTP error); a checksum failure is a plain DataError."""


def download(url: str, target: Path, verify: Callable[[Path, str], None], *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``target`` atomically: stream to a temporary file beside it, check it, rename it.

    ``verify(temporary_path, name)`` raises a DataError naming ``name`` to reject the file; the temporary file
    is then removed and ``target`` is left as it was.

    Raises:
        DownloadError: the download failed (naming the URL and the reason).
        DataError: ``verify``'s error.

    Shapes:
        no arrays.
    """
    import urllib.error
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    print(f"Downloading data from {url}", file=sys.stderr, flush=True)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "xb") as handle:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"the download of {url} failed (HTTP {exc.code}: {exc.reason}).") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DownloadError(f"the download of {url} failed ({reason}).") from exc
        verify(tmp, target.name)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def locate(
    source: Source,
    path: str | os.PathLike[str] | None,
    find: Callable[[Path], T | None],
    fetch: Callable[[Path], None] | None,
) -> T:
    """Search for a complete set of files in the documented order; download into the cache as the last resort.

    Args:
        source: the data set.
        path: an explicit directory (searched alone) or None.
        find: ``find(directory)`` returns what ``load_data`` needs from a directory, or None when incomplete.
        fetch: ``fetch(cache_directory)`` downloads the files there (None: no download).

    Raises:
        DataError: ``path`` is not a directory or lacks files; or nothing found and the download failed, with
            every place searched and how to provide the files.

    Shapes:
        no arrays.
    """
    if path is not None:
        directory = Path(path)
        if not directory.is_dir():
            what = "a file" if directory.exists() else "nothing"
            raise DataError(
                f"{source.owner}: `path` must be a directory holding the {source.title} files "
                f"({source.expected}), found {what} at {directory}."
            )
        found = find(directory)
        if found is None:
            raise DataError(
                f"{source.owner}: {directory} does not hold the {source.title} files: expected {source.expected}."
            )
        return found
    searched = search_dirs(source)
    for directory in searched:
        if directory.is_dir() and (found := find(directory)) is not None:
            return found
    where = ", ".join(str(d) for d in searched)
    ways = "pass path=DIR, put them in $CONVLENS_DATA/" + source.folder
    if source.debian_package:
        ways += f", or apt-get install {source.debian_package}"
    if fetch is None:
        raise DataError(f"{source.owner}: no {source.title} files found (looked in {where}); {ways}.")
    cache = cache_dir(source.folder)
    try:
        fetch(cache)
    except DownloadError as exc:
        raise DataError(
            f"{source.owner}: no {source.title} files found (looked in {where}) and {exc} To work offline, {ways}."
        ) from exc
    found = find(cache)
    if found is None:  # pragma: no cover - fetch wrote every file or raised
        raise DataError(f"{source.owner}: the download into {cache} is incomplete: expected {source.expected}.")
    return found
