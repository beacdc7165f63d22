"""IDX reader/writer: byte layout against the published format, round trips, and every error message."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.datasets import idx
from convlens.datasets.idx import read_idx, write_idx
from convlens.errors import DataError

# (dtype, IDX type code, struct format of one big-endian value), from the format's published table.
DTYPES = [
    (np.uint8, 0x08, ">B"),
    (np.int8, 0x09, ">b"),
    (np.int16, 0x0B, ">h"),
    (np.int32, 0x0C, ">i"),
    (np.float32, 0x0D, ">f"),
    (np.float64, 0x0E, ">d"),
]
PACKAGED = Path(idx.__file__).parent / "data" / "mnist"


def _sample(dtype: type, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        values = rng.standard_normal(shape) * 1e3
        values.flat[:1] = np.finfo(dt).max  # extremes survive the trip
        return values.astype(dt)
    info = np.iinfo(dt)
    values = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
    values.flat[:1] = info.min
    values.flat[-1:] = info.max
    return values


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize(("dtype", "code", "fmt"), DTYPES)
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2)])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_dtype_and_ndim(tmp_path, rng, dtype, code, fmt, shape, suffix):
    array = _sample(dtype, shape, rng)
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    assert path == tmp_path / f"a.idx{suffix}"
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable
    assert back.flags.c_contiguous


@pytest.mark.parametrize(("dtype", "code", "fmt"), DTYPES)
def test_written_bytes_follow_the_format(tmp_path, rng, dtype, code, fmt):
    array = _sample(dtype, (2, 3), rng)
    raw = write_idx(tmp_path / "a.idx", array).read_bytes()
    expected = _header(code, (2, 3)) + b"".join(struct.pack(fmt, v) for v in array.ravel().tolist())
    assert raw == expected
    gz = write_idx(tmp_path / "a.idx.gz", array).read_bytes()
    assert gz[:2] == b"\x1f\x8b"
    assert gzip.decompress(gz) == expected


def test_hand_built_bytes_decode(rng):
    data = _header(0x0B, (3,)) + struct.pack(">3h", 258, -1, -32768)
    np.testing.assert_array_equal(read_idx(data), np.array([258, -1, -32768], dtype=np.int16))
    np.testing.assert_array_equal(read_idx(gzip.compress(data)), [258, -1, -32768])
    np.testing.assert_array_equal(read_idx(bytearray(data)), [258, -1, -32768])
    np.testing.assert_array_equal(read_idx(memoryview(data)), [258, -1, -32768])


def test_reads_from_bytes_are_writable_copies():
    data = _header(0x08, (2,)) + b"\x01\x02"
    out = read_idx(data)
    out[0] = 9
    assert read_idx(data)[0] == 1


def test_zero_sized_dimension_is_an_empty_array(tmp_path):
    back = read_idx(write_idx(tmp_path / "e.idx", np.zeros((0, 3), np.int32)))
    assert back.shape == (0, 3)
    assert back.dtype == np.int32


def test_gz_and_raw_official_files_read_the_same(tmp_path):
    gz_path = PACKAGED / "t10k-labels-idx1-ubyte.gz"
    raw_path = tmp_path / "t10k-labels-idx1-ubyte"
    raw_path.write_bytes(gzip.decompress(gz_path.read_bytes()))
    from_gz, from_raw = read_idx(gz_path), read_idx(raw_path)
    assert from_gz.shape == (10000,)
    assert from_gz.dtype == np.uint8
    np.testing.assert_array_equal(from_gz, from_raw)
    np.testing.assert_array_equal(read_idx(raw_path.read_bytes()), from_raw)
    # The official test set begins 7, 2, 1, 0, 4.
    assert from_gz[:5].tolist() == [7, 2, 1, 0, 4]


def test_accepts_str_paths(tmp_path):
    write_idx(str(tmp_path / "s.idx"), np.arange(3, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(str(tmp_path / "s.idx")), [0, 1, 2])


@given(
    code_dtype=st.sampled_from([(c, d) for d, c, _ in DTYPES]),
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=5).map(tuple),
    seed=st.integers(0, 2**16),
)
def test_property_encode_decode(code_dtype, shape, seed):
    code, dtype = code_dtype
    array = _sample(dtype, shape, np.random.default_rng(seed)) if np.prod(shape) else np.zeros(shape, dtype)
    data = idx._encode(array)
    assert data[:4] == bytes([0, 0, code, len(shape)])
    assert len(data) == 4 + 4 * len(shape) + array.nbytes
    back = read_idx(data)
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)


# ---------------------------------------------------------------- errors when reading


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            b"\x00\x00",
            r"^x\.idx: truncated IDX header: expected a 4-byte magic number \(0x0000TTNN\), found 2 bytes\.$",
        ),
        (
            b"\x01\x00\x08\x01" + b"\x00" * 8,
            r"^x\.idx: bad IDX magic number: expected two zero bytes, a type code and ndim \(0x0000TTNN\), "
            r"found 0x01000801\.$",
        ),
        (
            b"\x00\x00\x07\x01\x00\x00\x00\x01\x00",
            r"^x\.idx: unknown IDX type code 0x07: expected one of 0x08 \(uint8\), 0x09 \(int8\), "
            r"0x0B \(int16\), 0x0C \(int32\), 0x0D \(float32\), 0x0E \(float64\)\.$",
        ),
        (b"\x00\x00\x08\x00\x05", r"^x\.idx: IDX header declares 0 dimensions: expected ndim >= 1\.$"),
        (
            b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00",
            r"^x\.idx: truncated IDX header: 3 dimensions need 16 header bytes, found 10\.$",
        ),
        (
            _header(0x08, (60000, 28, 28)) + bytes(1000),
            r"^x\.idx: truncated IDX data: header says 60000x28x28 = 47040000 bytes, found 1000\.$",
        ),
        (
            _header(0x0D, (10, 3)) + bytes(100),
            r"^x\.idx: truncated IDX data: header says 10x3 float32 values of 4 bytes = 120 bytes, "
            r"found 100\.$",
        ),
        (
            _header(0x08, (2, 3)) + bytes(11),
            r"^x\.idx: trailing bytes after IDX data: header says 2x3 = 6 bytes, found 11 \(5 extra\)\.$",
        ),
        (b"\x1f\x8b\x08\x00garbage", r"^x\.idx: not a valid gzip stream \(.+\)\.$"),
    ],
    ids=[
        "short",
        "magic",
        "type-code",
        "zero-ndim",
        "short-header",
        "truncated",
        "truncated-f32",
        "trailing",
        "gzip",
    ],
)
def test_read_errors_say_expected_and_found(tmp_path, data, match):
    path = tmp_path / "x.idx"
    path.write_bytes(data)
    with pytest.raises(DataError, match=match):
        read_idx(path)
    # Same message from bytes with an explicit name.
    with pytest.raises(DataError, match=match):
        read_idx(data, name="x.idx")


def test_error_names_the_gz_file_and_sees_through_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_header(0x08, (60000, 28, 28)) + bytes(1000)))
    with pytest.raises(
        DataError,
        match=r"^train-images-idx3-ubyte\.gz: truncated IDX data: header says 60000x28x28 = 47040000 bytes, "
        r"found 1000\.$",
    ):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    full = gzip.compress(_header(0x08, (100,)) + bytes(range(100)))
    with pytest.raises(DataError, match=r"^<bytes>: not a valid gzip stream \(.+\)\.$"):
        read_idx(full[: len(full) // 2])


def test_double_gzip_gets_a_hint():
    data = gzip.compress(gzip.compress(_header(0x08, (1,)) + b"\x00"))
    with pytest.raises(DataError, match=r"found 0x1F8B0800 \(gzip data inside a gzip file\?\)\.$"):
        read_idx(data)


def test_read_bad_source_type():
    with pytest.raises(TypeError, match=r"^read_idx: `source` must be a path or bytes, got int\.$"):
        read_idx(3)  # type: ignore[arg-type]


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


# ---------------------------------------------------------------- errors and atomicity when writing


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros(3, np.int64), r"got int64\. Cast first, e\.g\. array\.astype\(np\.int32\)\.$"),
        (np.zeros(3, np.float16), r"got float16\. Cast first, e\.g\. array\.astype\(np\.float32\)\.$"),
        (
            np.zeros(3, bool),
            r"^write_idx: `array` dtype must be one of uint8, int8, int16, int32, float32, "
            r"float64, got bool\.$",
        ),
    ],
)
def test_write_rejects_unsupported_dtypes(tmp_path, array, match):
    with pytest.raises(TypeError, match=match):
        write_idx(tmp_path / "a.idx", array)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_zero_dimensions(tmp_path):
    with pytest.raises(DataError, match=r"^write_idx: IDX needs at least 1 dimension, got a 0-d array\. "):
        write_idx(tmp_path / "a.idx", np.uint8(3))


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "a.idx.gz"
    write_idx(target, np.arange(4, dtype=np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx.gz"]

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_idx(target, np.arange(9, dtype=np.uint8))
    monkeypatch.undo()
    # The old file is intact and the temporary file is gone.
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx.gz"]
    np.testing.assert_array_equal(read_idx(target), np.arange(4))


def test_write_overwrites_and_is_reproducible(tmp_path):
    first = write_idx(tmp_path / "a.gz", np.arange(6, dtype=np.int32).reshape(2, 3)).read_bytes()
    write_idx(tmp_path / "a.gz", np.ones(2, np.int8))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), [1, 1])
    again = write_idx(tmp_path / "a.gz", np.arange(6, dtype=np.int32).reshape(2, 3)).read_bytes()
    assert again == first  # gzip mtime is pinned to 0


def test_write_accepts_non_contiguous_and_little_or_big_endian(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    view = base[::2, ::3]
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "v.idx", view)), view)
    big = np.arange(5, dtype=">i4")
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "b.idx", big)), big)
