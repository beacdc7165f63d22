"""IDX files: damaged files are refused or read exactly as an independent reader reads them; gzip is
decompressed no further than the header's declared size; paths that are not files are refused."""

from __future__ import annotations

import gzip
import random
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from convlens.datasets.idx import read_idx
from convlens.errors import ConvlensError, DataError, FileAccessError, MissingFileError, ResourceError
from tests.support import damaged_files
from tests.support import damaged_idx as dmg


def test_seeded_damages_match_an_independent_reader(tmp_path: Path) -> None:
    refused = matched = 0
    for i, (label, make, data) in enumerate(dmg.idx_damages(random.Random(5), 200)):
        if "bomb" in label:
            continue  # 2 GiB streams: see the small bombs below and benchmarks/reliability_stress.py
        folder = tmp_path / str(i)
        folder.mkdir()
        try:
            result = read_idx(make(folder))
        except ConvlensError:
            refused += 1
            continue
        assert data is not None, label
        reference = dmg.idx_reference(data)
        assert reference is not None, label
        assert result.dtype == reference.dtype, label
        np.testing.assert_array_equal(result, reference, err_msg=label)
        matched += 1
    assert refused > 0
    assert matched > 0


def _gzip_bomb(declared: int, actual: int) -> bytes:
    header = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", declared), mtime=0)
    return header + damaged_files.zeros_gzip(actual)


def test_gzip_is_never_decompressed_past_the_declared_size() -> None:
    bomb = _gzip_bomb(4, 64 << 20)  # 64 MiB of zeros behind a 4-byte array
    assert len(bomb) < 100_000
    start = time.perf_counter()
    with pytest.raises(
        DataError,
        match=r"^<bytes>: trailing bytes after IDX data: header says 4 = 4 bytes, found 5 \(at least 1 extra: the "
        r"gzip stream goes on\)\.$",
    ):
        read_idx(bomb)
    assert time.perf_counter() - start < 0.5


def test_a_declared_size_beyond_the_memory_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_MEMORY_LIMIT", "1M")
    path = tmp_path / "big.idx.gz"
    path.write_bytes(_gzip_bomb(64 << 20, 64 << 20))
    with pytest.raises(ResourceError, match=r"^read_idx: big\.idx\.gz: this call needs about 128\.0 MiB"):
        read_idx(path)
    raw = tmp_path / "big.idx"
    raw.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 4 << 20) + bytes(4 << 20))
    with pytest.raises(ResourceError, match=r"^read_idx: big\.idx: this call needs about 8\.0 MiB"):
        read_idx(raw)


def test_huge_declared_dimensions_are_compared_with_the_file_size_first(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(10))
    with pytest.raises(DataError, match=r"^x\.idx: truncated IDX data: header says 4294967295x4294967295x4294967295"):
        read_idx(path)


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("directory", FileAccessError, r"^read_idx: `source` '.*x\.idx' is a directory, not a file\.$"),
        ("fifo", FileAccessError, r"is a FIFO \(named pipe\), not a file\.$"),
        ("dev_zero", FileAccessError, r"is a device, not a file\.$"),
        ("dangling", MissingFileError, r"^read_idx: no such file: "),
    ],
)
def test_paths_that_are_not_files(tmp_path: Path, kind: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        read_idx(damaged_files.special_path(kind, "x.idx")(tmp_path))


def test_idx_reference_agrees_with_read_idx_on_valid_files() -> None:
    # The oracle itself: both readers agree on files written from the format's description.
    for array in (np.arange(6, dtype=np.uint8).reshape(2, 3), np.linspace(0, 1, 5).astype(np.float64)):
        data = dmg.idx_bytes(array)
        np.testing.assert_array_equal(dmg.idx_reference(data), array)
        np.testing.assert_array_equal(read_idx(data), array)
        np.testing.assert_array_equal(read_idx(gzip.compress(data)), array)
