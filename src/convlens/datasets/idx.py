"""Read and write IDX files, the format MNIST ships in (http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number ``0x0000TTNN`` (two zero bytes, a type code ``TT``, the number of
dimensions ``NN``), then ``NN`` big-endian uint32 sizes, then the values in C order, big-endian.

Type codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64.

Files may be gzipped; :func:`read_idx` recognises gzip by its content (the ``1f 8b`` signature, which an IDX
file can never start with), :func:`write_idx` gzips when the name ends in ``.gz``.

>>> read_idx(b"\\x00\\x00\\x08\\x02\\x00\\x00\\x00\\x02\\x00\\x00\\x00\\x03" + bytes(range(6)))
array([[0, 1, 2],
       [3, 4, 5]], dtype=uint8)
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from convlens.errors import ConfigTypeError, DataError
from convlens.files import atomic_write, readable_file
from convlens.resources import check_arrays

__all__ = ["read_idx", "write_idx"]

# type code -> (big-endian dtype as stored, readable name)
_CODES: dict[int, tuple[np.dtype[Any], str]] = {
    0x08: (np.dtype(np.uint8), "uint8"),
    0x09: (np.dtype(np.int8), "int8"),
    0x0B: (np.dtype(">i2"), "int16"),
    0x0C: (np.dtype(">i4"), "int32"),
    0x0D: (np.dtype(">f4"), "float32"),
    0x0E: (np.dtype(">f8"), "float64"),
}
_CODE_OF_NAME = {name: code for code, (_, name) in _CODES.items()}
_CODES_TEXT = ", ".join(f"0x{code:02X} ({name})" for code, (_, name) in _CODES.items())
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DIM = 2**32 - 1

Source = str | os.PathLike[str] | bytes | bytearray | memoryview


_MAX_HEADER = 4 + 4 * 255
_CHUNK = 1 << 20


def _dims_text(dims: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in dims)


def _expected_size(head: bytes) -> int | None:
    """Total bytes (header + data) the IDX header at the start of ``head`` declares; None if it is incomplete
    or invalid (:func:`_decode` then says what is wrong)."""
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in _CODES or head[3] == 0:
        return None
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        return None
    count = 1
    for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4):
        count *= int(d)
    return 4 + 4 * ndim + count * _CODES[head[2]][0].itemsize


def _check_memory(expected: int, label: str) -> None:
    # The data bytes and the array decoded from them (a second copy in native byte order).
    check_arrays([("the IDX data", (expected,), 2)], owner=f"read_idx: {label}")


def _gunzip(read: Callable[[int], bytes], label: str) -> tuple[bytes, bool]:
    """Decompress a gzip stream (several members allowed) read through ``read``, never past the size the IDX
    header declares: returns (bytes, complete), ``complete`` False when the stream goes on beyond it."""
    out = bytearray()
    limit = _MAX_HEADER  # until the header is known
    known = False
    decompressor = zlib.decompressobj(31)
    pending = b""
    started = False
    try:
        while True:
            if not pending:
                pending = read(_CHUNK)
                if not pending:
                    break
            started = True
            out += decompressor.decompress(pending, limit + 1 - len(out))
            pending = decompressor.unconsumed_tail
            if decompressor.eof:
                pending = decompressor.unused_data + pending
                decompressor = zlib.decompressobj(31)
                started = False
            if not known:
                expected = _expected_size(bytes(out[:_MAX_HEADER]))
                if expected is not None:
                    _check_memory(expected, label)
                    limit, known = expected, True
                elif len(out) >= 4 and (out[:2] != b"\x00\x00" or out[2] not in _CODES or out[3] == 0):
                    return bytes(out), True  # a bad header: _decode says what is wrong
            if len(out) > limit:
                return bytes(out[: limit + 1]), False
    except zlib.error as exc:
        raise DataError(f"{label}: not a valid gzip stream ({exc}).") from None
    if started:
        raise DataError(f"{label}: not a valid gzip stream (the stream ends before its end-of-stream marker).")
    return bytes(out), True


def _parse_header(
    data: bytes | bytearray | memoryview, size: int, label: str, complete: bool = True
) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """Check the header at the start of ``data`` against the total ``size``: (dims, stored dtype, header bytes).

    ``complete`` False: the stream goes on beyond ``size`` (a gzip stream cut at the declared size).
    """
    if size < 4:
        raise DataError(
            f"{label}: truncated IDX header: expected a 4-byte magic number (0x0000TTNN), found {size} bytes."
        )
    magic = bytes(data[:4])
    if magic[:2] != b"\x00\x00":
        hint = " (gzip data inside a gzip file?)" if magic[:2] == _GZIP_MAGIC else ""
        raise DataError(
            f"{label}: bad IDX magic number: expected two zero bytes, a type code and ndim (0x0000TTNN), "
            f"found 0x{magic.hex().upper()}{hint}."
        )
    code, ndim = magic[2], magic[3]
    if code not in _CODES:
        raise DataError(f"{label}: unknown IDX type code 0x{code:02X}: expected one of {_CODES_TEXT}.")
    if ndim == 0:
        raise DataError(f"{label}: IDX header declares 0 dimensions: expected ndim >= 1.")
    header = 4 + 4 * ndim
    if size < header:
        raise DataError(f"{label}: truncated IDX header: {ndim} dimensions need {header} header bytes, found {size}.")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype, type_name = _CODES[code]
    count = 1
    for d in dims:
        count *= d
    expected = count * dtype.itemsize
    found = size - header
    if found != expected or not complete:
        what = "truncated IDX data" if found < expected else "trailing bytes after IDX data"
        each = "" if dtype.itemsize == 1 else f" {type_name} values of {dtype.itemsize} bytes"
        extra = "" if found < expected else f" ({found - expected} extra)"
        if not complete:
            extra = f" (at least {found - expected} extra: the gzip stream goes on)"
        raise DataError(
            f"{label}: {what}: header says {_dims_text(dims)}{each} = {expected} bytes, found {found}{extra}."
        )
    return dims, dtype, header


def _decode(data: bytes | bytearray | memoryview, label: str, complete: bool = True) -> npt.NDArray[Any]:
    """Parse IDX bytes into a fresh, writable, native-byte-order array (``complete`` False: more data follows)."""
    dims, dtype, header = _parse_header(data, len(data), label, complete)
    count = (len(data) - header) // dtype.itemsize
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=header)
    # astype copies (frombuffer views are read-only) and swaps to native byte order in the same pass.
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def read_idx(source: Source, *, name: str | None = None) -> npt.NDArray[Any]:
    """Read an IDX array from a file (raw or gzipped) or from bytes.

    Args:
        source: a path, or the file's bytes (raw or gzipped).
        name: the label used in error messages; defaults to the file name, or ``"<bytes>"``.

    Returns:
        A fresh, writable array in native byte order with the dtype of the type code
        (uint8, int8, int16, int32, float32 or float64) and the shape of the header.

    Raises:
        DataError: bad magic number, unknown type code, zero dimensions, truncated header or data, trailing
            bytes, or a broken gzip stream; the message names the file, what was expected and what was found.
        FileNotFoundError: when ``source`` is a path that does not exist.
        TypeError: when ``source`` is neither a path nor bytes.

    Shapes:
        file with header dims (D1, ..., Dn) -> array (D1, ..., Dn); values = D1 * ... * Dn.

    >>> read_idx(b"\\x00\\x00\\x0b\\x01\\x00\\x00\\x00\\x02\\x01\\x00\\xff\\xff")
    array([256,  -1], dtype=int16)
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = "<bytes>" if name is None else name
        data = memoryview(source).cast("B")
        if bytes(data[:2]) == _GZIP_MAGIC:
            offset = [0]

            def read_bytes(n: int) -> bytes:
                chunk = bytes(data[offset[0] : offset[0] + n])
                offset[0] += len(chunk)
                return chunk

            payload, complete = _gunzip(read_bytes, label)
            return _decode(payload, label, complete)
        return _decode(data, label)
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigTypeError(f"read_idx: `source` must be a path or bytes, got {type(source).__name__}.")
    path, size = readable_file(source, owner="read_idx", name="source")
    label = path.name if name is None else name
    try:
        with open(path, "rb") as handle:
            head = handle.read(_MAX_HEADER)
            if head[:2] == _GZIP_MAGIC:
                handle.seek(0)
                payload, complete = _gunzip(handle.read, label)
                return _decode(payload, label, complete)
            _parse_header(head, size, label)  # header and size checked before the data is read
            _check_memory(size, label)
            return _decode(head + handle.read(size - len(head)), label)
    except OSError as exc:
        raise DataError(f"{label}: cannot read the file: {exc.strerror or exc}.") from None


def _encode(array: npt.NDArray[Any]) -> bytes:
    type_name = array.dtype.name
    if type_name not in _CODE_OF_NAME:
        hint = ""
        if array.dtype.kind in "iu":
            hint = " Cast first, e.g. array.astype(np.int32)."
        elif array.dtype.kind == "f":
            hint = " Cast first, e.g. array.astype(np.float32)."
        raise TypeError(
            f"write_idx: `array` dtype must be one of uint8, int8, int16, int32, float32, float64, "
            f"got {type_name}.{hint}"
        )
    if array.ndim == 0:
        raise DataError("write_idx: IDX needs at least 1 dimension, got a 0-d array. Use array.reshape(1).")
    if array.ndim > 255:
        raise DataError(f"write_idx: IDX allows at most 255 dimensions, got {array.ndim}.")
    if any(d > _MAX_DIM for d in array.shape):
        raise DataError(f"write_idx: IDX sizes must fit in uint32 (<= {_MAX_DIM}), got shape {array.shape}.")
    code = _CODE_OF_NAME[type_name]
    dtype = _CODES[code][0]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def write_idx(path: str | os.PathLike[str], array: npt.ArrayLike) -> Path:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``; atomically.

    The bytes go to a temporary file in the same folder, which then replaces ``path`` (``os.replace``), so a
    crash never leaves a half-written file under the final name. Gzip output is reproducible (mtime 0).

    Args:
        path: where to write.
        array: uint8, int8, int16, int32, float32 or float64 values with at least one dimension.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError: for any other dtype (int64 and bool included: cast first).
        DataError: for a 0-d array, more than 255 dimensions or a size above 2**32 - 1.

    Shapes:
        array (D1, ..., Dn), 1 <= n <= 255 -> file of 4 + 4*n header bytes + D1*...*Dn*itemsize data bytes.
    """
    from convlens.files import as_path

    target = as_path(path, owner="write_idx")
    payload = _encode(np.asarray(array))
    if target.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    return atomic_write(target, lambda handle: handle.write(payload), owner="write_idx", make_parents=False)
