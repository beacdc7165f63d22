"""Helpers of the damaged-file generators (tests/support/damaged_models.py, damaged_idx.py): writing a damage
into a folder, special paths (directories, FIFOs, links), and cached streams of zeros for the bombs.

A damage is ``(label, make)``: ``make(folder) -> path`` writes the damaged file (or directory, FIFO, link) into
``folder`` and returns the path to read. Nothing here imports convlens: the damages work on bytes and on the
documented file layouts.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

Make = Callable[[Path], Path]
Damage = tuple[str, Make]

_BOMB_CACHE: dict[tuple[str, int], bytes] = {}
_CRC_CACHE: dict[tuple[str, int], int] = {}


def write_file(name: str, data: bytes) -> Make:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def lazy_file(name: str, build: Callable[[], bytes]) -> Make:
    """Like :func:`_write`, computing the bytes only when the file is made (bombs take seconds to build)."""

    def make(folder: Path) -> Path:
        return write_file(name, build())(folder)

    return make


def special_path(kind: str, name: str) -> Make:
    def make(folder: Path) -> Path:
        path = folder / name
        if kind == "directory":
            path.mkdir(exist_ok=True)
        elif kind == "fifo":
            if not path.exists():
                os.mkfifo(path)
        elif kind == "dev_zero":
            if not path.exists():
                path.symlink_to("/dev/zero")
        elif kind == "dangling" and not path.is_symlink():
            path.symlink_to(folder / "does-not-exist")
        return path

    return make


def zeros_deflated(size: int) -> bytes:
    """A raw-deflate stream of ``size`` zero bytes (cached: a 2 GiB stream takes a few seconds once)."""
    key = ("deflate", size)
    if key not in _BOMB_CACHE:
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        chunk = bytes(1 << 20)
        parts = [comp.compress(chunk) for _ in range(size >> 20)]
        parts.append(comp.compress(bytes(size & ((1 << 20) - 1))))
        parts.append(comp.flush())
        _BOMB_CACHE[key] = b"".join(parts)
    return _BOMB_CACHE[key]


def zeros_crc(size: int, start: int = 0) -> int:
    """CRC-32 of ``size`` zero bytes continuing from ``start`` (cached for a start of 0)."""
    key = ("crc", size)
    if start == 0 and key in _CRC_CACHE:
        return _CRC_CACHE[key]
    crc = start
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(bytes(size & ((1 << 20) - 1)), crc)
    if start == 0:
        _CRC_CACHE[key] = crc
    return crc


def zeros_gzip(size: int) -> bytes:
    """One gzip member holding ``size`` zero bytes (cached)."""
    key = ("gzip", size)
    if key not in _BOMB_CACHE:
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        trailer = struct.pack("<II", zeros_crc(size) & 0xFFFFFFFF, size & 0xFFFFFFFF)
        _BOMB_CACHE[key] = header + zeros_deflated(size) + trailer
    return _BOMB_CACHE[key]
