"""Checked ``.npz`` archives: written with a SHA-256 of every array and of the config, read within bounds.

An archive is a NumPy ``.npz`` (a zip of ``.npy`` members, ``np.load``-able by anyone) holding:

* ``__config__``: UTF-8 JSON as a uint8 array; since format 2 its ``checksums`` maps every other array's
  name to ``{"sha256", "dtype", "shape"}`` (the hash covers the data bytes after the ``.npy`` header);
* ``__checksum__``: the SHA-256 (hex, as uint8) of the ``__config__`` bytes;
* the arrays.

:class:`ArchiveReader` never trusts a declared size: it refuses a path that is not a regular file, more than
100,000 members, a config over 16 MiB or nested deeper than 64 levels, a member whose ``.npy`` header does not
match its size in the zip, a dtype that is not plain numbers (objects, strings, records), a shape other than
the one the caller expects, and anything the resource guard says would not fit in memory, all before reading
the data. With checksums, a flipped byte, a changed dtype or shape is a :class:`~convlens.errors.DataError`
naming the array. Files of format 1 (no checksums) are read with the structural checks only.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.npz"
>>> write_archive(path, {"format": "demo/2"}, {"w": np.arange(3.0)}, owner="demo")
>>> with ArchiveReader(path, owner="demo") as archive:
...     archive.config()["format"], archive.array("w", shape=(3,))
('demo/2', array([0., 1., 2.]))
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from types import TracebackType
from typing import IO, Any

import numpy as np

from convlens.errors import DataError, short_repr
from convlens.files import atomic_write, readable_file, remove_stale_temps
from convlens.resources import check_arrays

__all__ = ["MAX_CONFIG_BYTES", "MAX_JSON_DEPTH", "ArchiveReader", "json_depth", "write_archive"]

CONFIG = "__config__"
CHECKSUM = "__checksum__"
MAX_CONFIG_BYTES = 16 << 20
MAX_JSON_DEPTH = 64
MAX_MEMBERS = 100_000
_HEADER_BYTES = 1 << 16  # an .npy header is at most this long (NumPy's own default limit is 10,000 bytes)
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _data_bytes(array: np.ndarray) -> bytes:
    return np.asarray(array, order="C").tobytes()


def write_archive(path: Any, config: dict[str, Any], arrays: dict[str, np.ndarray], *, owner: str) -> None:
    """Write ``config`` (with ``checksums`` of ``arrays`` added) and ``arrays`` to ``path``, atomically.

    Shapes:
        arrays: any shapes; written C-contiguous.
    """
    arrays = {name: np.asarray(value, order="C") for name, value in arrays.items()}
    config = dict(config)
    config["checksums"] = {
        name: {"sha256": _sha256(_data_bytes(a)), "dtype": a.dtype.str, "shape": list(a.shape)}
        for name, a in arrays.items()
    }
    text = json.dumps(config).encode("utf-8")
    members = {
        **arrays,
        CONFIG: np.frombuffer(text, np.uint8),
        CHECKSUM: np.frombuffer(_sha256(text).encode("ascii"), np.uint8),
    }

    def write(handle: IO[bytes]) -> None:
        np.savez(handle, **members)  # type: ignore[arg-type]

    atomic_write(path, write, owner=owner)


def json_depth(text: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON ``text`` (strings skipped), computed without recursion.

    >>> json_depth(b'{"a": [1, [2, "]]"]]}')
    3
    """
    structural = _STRINGS.sub(b"", text)
    steps = np.frombuffer(structural, np.uint8)
    opens = (steps == ord("[")) | (steps == ord("{"))
    closes = (steps == ord("]")) | (steps == ord("}"))
    if not opens.any():
        return 0
    return int(np.cumsum(opens.astype(np.int64) - closes.astype(np.int64)).max())


class ArchiveReader:
    """Read a checked archive: :meth:`config` first, then :meth:`array` for each member needed.

    Raises (from every method): :class:`~convlens.errors.DataError` naming the file and the member;
    :class:`~convlens.errors.MissingFileError` when the path does not exist;
    :class:`~convlens.errors.ResourceError` when a declared array would not fit in memory.
    """

    def __init__(self, path: Any, *, owner: str) -> None:
        self.owner = owner
        self.path, self.size = readable_file(path, owner=owner)
        remove_stale_temps(self.path)
        self.label = f"{owner}: '{self.path}'"
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise DataError(f"{self.label} is not a convlens model file (.npz): {exc}.") from None
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            self._zip.close()
            raise DataError(f"{self.label} has {len(infos)} members, more than the {MAX_MEMBERS} any model needs.")
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if not info.filename.endswith(".npy") or info.is_dir():
                # np.savez writes only .npy members: another (a renamed one: a damaged directory) is not ours
                self._zip.close()
                raise DataError(
                    f"{self.label} has a member {short_repr(info.filename, 60)} that is not a .npy array; "
                    "convlens writes nothing else."
                )
            self._members.setdefault(info.filename[: -len(".npy")], info)
        self._checksums: dict[str, Any] | None = None

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def names(self) -> list[str]:
        """The array members (without ``.npy``)."""
        return [name for name in self._members if name not in (CONFIG, CHECKSUM)]

    def _bad(self, what: str) -> DataError:
        return DataError(f"{self.label}: {what}.")

    # ----- raw members --------------------------------------------------------------------------------
    def _read_member(
        self, name: str, kinds: str, shape: tuple[int, ...] | None
    ) -> tuple[np.ndarray, bytes, np.dtype[Any]]:
        """Parse member ``name`` (header first, sizes checked): (array, its data bytes, the stored dtype)."""
        info = self._members.get(name)
        if info is None:
            raise self._bad(f"has no array '{name}'")
        try:
            with self._zip.open(info) as stream:
                head = io.BytesIO(stream.read(min(info.file_size, _HEADER_BYTES)))
                declared, fortran, dtype = _npy_header(head)
                if dtype.hasobject or dtype.names is not None or dtype.shape != () or dtype.kind not in kinds:
                    raise self._bad(f"array '{name}' has dtype {dtype}, expected plain {_kinds_text(kinds)}")
                if not all(isinstance(d, int) and d >= 0 for d in declared):
                    raise self._bad(f"array '{name}' declares an invalid shape {declared}")
                if shape is not None and tuple(declared) != tuple(shape):
                    raise self._bad(f"array '{name}' has shape {tuple(declared)}, expected {tuple(shape)}")
                count = 1
                for d in declared:
                    count *= d
                nbytes = count * dtype.itemsize
                header_len = head.tell()
                if header_len + nbytes != info.file_size:
                    raise self._bad(
                        f"array '{name}' declares {tuple(declared)} {dtype} ({nbytes} bytes) but its member holds "
                        f"{info.file_size - header_len} data bytes"
                    )
                if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                    raise self._bad(f"array '{name}' has inconsistent sizes in the zip directory")
                check_arrays([(f"array '{name}'", tuple(declared), dtype.itemsize)], owner=self.label)
                data = head.read() + stream.read(nbytes - (head.getbuffer().nbytes - header_len))
        except (
            zipfile.BadZipFile, OSError, EOFError, ValueError, SyntaxError, TypeError, KeyError, NotImplementedError
        ) as exc:  # fmt: skip
            if isinstance(exc, DataError):
                raise
            raise self._bad(f"array '{name}' is damaged ({type(exc).__name__}: {exc})") from None
        if len(data) != nbytes:
            raise self._bad(f"array '{name}' is truncated: {len(data)} of {nbytes} data bytes")
        order = "F" if fortran else "C"
        array = np.frombuffer(data, dtype, count).reshape(tuple(declared), order=order)  # type: ignore[call-overload]
        return array.astype(dtype.newbyteorder("="), copy=True), data, dtype

    # ----- the config -------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The JSON config (verified against ``__checksum__`` when the file has one)."""
        info = self._members.get(CONFIG)
        if info is None:
            raise self._bad("has no __config__ entry; it was not written by convlens")
        if info.file_size > MAX_CONFIG_BYTES + _HEADER_BYTES:
            raise self._bad(f"has a __config__ of {info.file_size} bytes, more than the {MAX_CONFIG_BYTES} allowed")
        raw, data, _ = self._read_member(CONFIG, "u", None)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise self._bad(f"has a __config__ of dtype {raw.dtype} and shape {raw.shape}, expected 1-D uint8")
        if CHECKSUM in self._members:
            digest, _, _ = self._read_member(CHECKSUM, "u", (64,))
            if digest.tobytes().decode("ascii", "replace") != _sha256(data):
                raise self._bad("has a damaged __config__: its SHA-256 differs from the one saved with it")
        if json_depth(data) > MAX_JSON_DEPTH:
            raise self._bad(f"has a __config__ nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            config = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise self._bad(f"has a corrupt __config__ ({type(exc).__name__}: {str(exc)[:100]})") from None
        if not isinstance(config, dict):
            raise self._bad(f"has a __config__ that is a JSON {type(config).__name__}, expected an object")
        checksums = config.get("checksums")
        if checksums is not None and not isinstance(checksums, dict):
            raise self._bad("has a __config__ whose `checksums` is not an object")
        if checksums is not None:
            missing = sorted(str(name) for name in checksums if name not in self._members)
            if missing:
                raise self._bad(f"lacks array(s) {', '.join(missing[:5])} listed in its checksums")
        self._checksums = checksums
        return config

    @property
    def has_checksums(self) -> bool:
        """Whether :meth:`config` found per-array checksums (format 2 and later)."""
        return self._checksums is not None

    # ----- arrays --------------------------------------------------------------------------------------------
    def declared_shape(self, name: str) -> tuple[int, ...]:
        """The shape member ``name``'s ``.npy`` header declares (reads the header only)."""
        info = self._members.get(name)
        if info is None:
            raise self._bad(f"has no array '{name}'")
        try:
            with self._zip.open(info) as stream:
                shape = _npy_header(io.BytesIO(stream.read(min(info.file_size, _HEADER_BYTES))))[0]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, SyntaxError, TypeError, NotImplementedError) as exc:
            raise self._bad(f"array '{name}' is damaged ({type(exc).__name__}: {exc})") from None
        return tuple(int(d) for d in shape)

    def array(self, name: str, *, shape: tuple[int, ...] | None = None, kinds: str = "f") -> np.ndarray:
        """Member ``name`` (a fresh, native-order array), checked against ``shape``, ``kinds`` and its checksum.

        Shapes:
            returns ``shape`` when given, else the declared shape.
        """
        record = None
        if self._checksums is not None:
            record = self._checksums.get(name)
            if not isinstance(record, dict):
                raise self._bad(f"has array '{name}' without a checksum (a member added after saving?)")
        array, data, stored = self._read_member(name, kinds, shape)
        if record is not None:
            saved = f"{record.get('dtype')} {tuple(record.get('shape') or ())}"
            if record.get("dtype") != stored.str or list(array.shape) != record.get("shape"):
                raise self._bad(f"array '{name}' is {stored.str} {array.shape} but was saved as {saved}")
            if _sha256(data) != record.get("sha256"):
                raise self._bad(f"array '{name}' is damaged: its SHA-256 differs from the one saved with it")
        return array


def _npy_header(head: io.BytesIO) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, fortran_order, dtype) from the start of an ``.npy`` member; ``head`` is left after the header."""
    version = np.lib.format.read_magic(head)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(head, max_header_size=_HEADER_BYTES)
    return shape, fortran, np.dtype(dtype)


def _kinds_text(kinds: str) -> str:
    return " or ".join({"f": "floats", "i": "integers", "u": "unsigned integers"}[k] for k in kinds)
