"""Seeded damaged IDX files (truncations, flipped header bytes, huge dimensions, gzip bombs, special paths) and an
independent IDX reader for the oracle. Shared by the reliability tests and benchmarks/reliability_stress.py.
"""

from __future__ import annotations

import gzip
import random
import struct
import zlib

import numpy as np

from tests.support.damaged_files import Make, lazy_file, special_path, write_file, zeros_gzip
from tests.support.damaged_models import npy_bytes


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of ``array`` (uint8, int8, >i2, >i4, >f4, >f8), written from the format's description."""
    codes = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}
    code = codes[array.dtype.name]
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def idx_reference(data: bytes) -> np.ndarray | None:
    """An independent IDX reader for the oracle: the array, or None when the bytes are not a valid IDX file."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return None
    if len(data) < 4 or data[:2] != b"\x00\x00":
        return None
    kinds = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in kinds or ndim == 0 or len(data) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(kinds[code])
    count = 1
    for d in dims:
        count *= d
    if len(data) - 4 - 4 * ndim != count * dtype.itemsize:
        return None
    return np.frombuffer(data, dtype, count, 4 + 4 * ndim).reshape(dims).astype(dtype.newbyteorder("="))


def idx_damages(rng: random.Random, count: int) -> list[tuple[str, Make, bytes | None]]:
    """``count`` damaged IDX files: ``(label, make, raw bytes or None for non-files and bombs)``."""
    base_arrays = [
        np.arange(60, dtype=np.uint8).reshape(3, 4, 5),
        np.arange(-6, 6, dtype=np.int16).reshape(4, 3),
        np.linspace(-1, 1, 10).astype(np.float32),
        np.arange(24, dtype=np.int32).reshape(2, 3, 4),
    ]
    out: list[tuple[str, Make, bytes | None]] = []
    for i in range(count):
        arr = rng.choice(base_arrays)
        raw = idx_bytes(arr)
        gz = rng.random() < 0.3
        how = rng.choices(
            [
                "truncate",
                "flip",
                "flip_header",
                "dims_huge",
                "ndim_255",
                "trailing",
                "gzip_truncate",
                "gzip_flip",
                "gzip_bomb",
                "gzip_bomb_trailing",
                "double_gzip",
                "special",
                "foreign",
                "valid",
            ],
            [4, 4, 4, 2, 1, 1, 2, 2, 1, 1, 0.5, 1, 1, 1],
        )[0]
        name = f"data{i % 7}.idx" + (".gz" if gz else "")
        data: bytes | None
        if how == "truncate":
            data = raw[: rng.randrange(len(raw))]
        elif how in ("flip", "flip_header"):
            b = bytearray(raw)
            where = rng.randrange(4 + 4 * arr.ndim) if how == "flip_header" else rng.randrange(len(b))
            b[where] ^= rng.randrange(1, 256)
            data = bytes(b)
        elif how == "dims_huge":
            data = raw[:4] + struct.pack(">I", 0xFFFFFFFF) * arr.ndim + raw[4 + 4 * arr.ndim :]
        elif how == "ndim_255":
            data = b"\x00\x00\x08\xff" + b"\x00\x00\x00\x02" * 255 + bytes(64)
        elif how == "trailing":
            data = raw + bytes(rng.randrange(1, 9))
        elif how == "gzip_truncate":
            z = gzip.compress(raw, mtime=0)
            out.append((f"gzip truncate {how}", write_file(name + ".gz", z[: rng.randrange(len(z))]), None))
            continue
        elif how == "gzip_flip":
            z = bytearray(gzip.compress(raw, mtime=0))
            z[rng.randrange(len(z))] ^= rng.randrange(1, 256)
            out.append(("gzip flip", write_file(name + ".gz", bytes(z)), bytes(z)))
            continue
        elif how == "gzip_bomb":
            size = 2**31
            head = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", size), mtime=0)
            out.append(
                ("gzip bomb 2 GiB declared", lazy_file("bomb.idx.gz", lambda h=head: h + zeros_gzip(2**31)), None)
            )
            continue
        elif how == "gzip_bomb_trailing":
            head = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 4), mtime=0)
            out.append(
                ("gzip bomb trailing 2 GiB", lazy_file("bomb2.idx.gz", lambda h=head: h + zeros_gzip(2**31)), None)
            )
            continue
        elif how == "double_gzip":
            data = gzip.compress(gzip.compress(raw, mtime=0), mtime=0)
        elif how == "special":
            kind = rng.choice(["directory", "fifo", "dev_zero", "dangling"])
            out.append((f"special {kind}", special_path(kind, f"special_{kind}.idx"), None))
            continue
        elif how == "foreign":
            data = rng.choice([b"", b"\x89PNG\r\n\x1a\n" + bytes(32), b"hello world\n", npy_bytes(arr)])
        else:
            data = raw
        if gz:
            data = gzip.compress(data, mtime=0)
        out.append((f"{how}{' (gzip)' if gz else ''}", write_file(name, data), data))
    return out
