"""CIFAR-10 from the binary distribution: small archives in the real format, Keras's shapes, checks, downloads."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

import convlens as cl
from convlens.datasets import cifar10, sources
from convlens.errors import DataError

from .conftest import Server

COUNTS = (3, 2, 2, 1, 2, 4)  # records per file (the real files hold 10,000 each)


def _records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The documented layout, written record by record: label byte, then the R, G and B planes, row-major."""
    out = bytearray()
    for image, label in zip(images, labels, strict=True):
        out.append(int(label))
        for channel in range(3):
            for row in range(32):
                out.extend(int(v) for v in image[row, :, channel])
    return bytes(out)


def _dataset(seed: int = 0) -> tuple[dict[str, bytes], list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    contents, images, labels = {}, [], []
    for name, count in zip(cifar10.FILES, COUNTS, strict=True):
        x = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, count, dtype=np.uint8)
        contents[name] = _records(x, y)
        images.append(x)
        labels.append(y)
    return contents, images, labels


def _archive(path: Path, contents: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        members = {f"{cifar10.FOLDER}/{n}": data for n, data in contents.items()}
        members[f"{cifar10.FOLDER}/batches.meta.txt"] = "\n".join(cifar10.CLASS_NAMES).encode() + b"\n\n"
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake(monkeypatch):
    """A small data set in the real format whose checksums stand in for the official ones."""
    contents, images, labels = _dataset()
    for name, data in contents.items():
        monkeypatch.setitem(cifar10.SHA256, name, hashlib.sha256(data).hexdigest())
    return contents, images, labels


def _check(loaded, images, labels) -> None:
    (x_train, y_train), (x_test, y_test) = loaded
    assert x_train.shape == (sum(COUNTS[:5]), 32, 32, 3)
    assert y_train.shape == (sum(COUNTS[:5]), 1)
    assert x_test.shape == (COUNTS[5], 32, 32, 3)
    assert y_test.shape == (COUNTS[5], 1)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
        assert array.flags.c_contiguous
        assert array.flags.writeable
    np.testing.assert_array_equal(x_train, np.concatenate(images[:5]))
    np.testing.assert_array_equal(y_train[:, 0], np.concatenate(labels[:5]))
    np.testing.assert_array_equal(x_test, images[5])
    np.testing.assert_array_equal(y_test[:, 0], labels[5])


def test_reachable_as_keras_spells_it():
    assert cl.datasets.cifar10 is cifar10
    assert cifar10.CLASS_NAMES[0] == "airplane"
    assert cifar10.CLASS_NAMES[9] == "truck"


def test_reads_the_archive_without_extracting(tmp_path, fake):
    contents, images, labels = fake
    _archive(tmp_path / cifar10.ARCHIVE, contents)
    _check(cifar10.load_data(tmp_path), images, labels)
    assert [p.name for p in tmp_path.iterdir()] == [cifar10.ARCHIVE]


@pytest.mark.parametrize("layout", ["folder", "flat"])
def test_reads_extracted_files(tmp_path, fake, layout):
    contents, images, labels = fake
    folder = tmp_path / cifar10.FOLDER if layout == "folder" else tmp_path
    folder.mkdir(exist_ok=True)
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    _check(cifar10.load_data(str(tmp_path)), images, labels)


def test_one_record_decodes_to_the_right_pixels(tmp_path, fake, monkeypatch):
    contents, _, _ = fake
    # Red = row index, green = column index, blue = 7: channels-last must put them at [row, col, 0/1/2].
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    record = bytes([3]) + rows.astype(np.uint8).tobytes() + cols.astype(np.uint8).tobytes() + bytes([7]) * 1024
    contents = {**contents, "test_batch.bin": record}
    monkeypatch.setitem(cifar10.SHA256, "test_batch.bin", hashlib.sha256(record).hexdigest())
    _archive(tmp_path / cifar10.ARCHIVE, contents)
    _, (x_test, y_test) = cifar10.load_data(tmp_path)
    assert y_test.tolist() == [[3]]
    assert x_test[0, 5, 9].tolist() == [5, 9, 7]
    assert x_test[0, 31, 0].tolist() == [31, 0, 7]


def test_corrupted_member_is_a_data_error_naming_it(tmp_path, fake):
    contents, _, _ = fake
    bad = bytearray(contents["data_batch_3.bin"])
    bad[100] ^= 1
    _archive(tmp_path / cifar10.ARCHIVE, {**contents, "data_batch_3.bin": bytes(bad)})
    with pytest.raises(
        DataError,
        match=rf"^data_batch_3\.bin \(in cifar-10-binary\.tar\.gz\): SHA-256 of the uncompressed data does not "
        rf"match: expected {cifar10.SHA256['data_batch_3.bin']}, got {hashlib.sha256(bad).hexdigest()}\. "
        r"Replace it with the official file",
    ):
        cifar10.load_data(tmp_path)


def test_missing_member(tmp_path, fake):
    contents, _, _ = fake
    del contents["test_batch.bin"]
    _archive(tmp_path / cifar10.ARCHIVE, contents)
    with pytest.raises(
        DataError,
        match=r"^cifar-10-binary\.tar\.gz: missing cifar-10-batches-bin/test_batch\.bin: expected all six record "
        r"files under cifar-10-batches-bin/\.$",
    ):
        cifar10.load_data(tmp_path)


def test_not_an_archive(tmp_path):
    (tmp_path / cifar10.ARCHIVE).write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(DataError, match=r"^cifar-10-binary\.tar\.gz: not a readable \.tar\.gz archive \(.+\)\.$"):
        cifar10.load_data(tmp_path)


def test_partial_record_and_bad_label(tmp_path, fake, monkeypatch):
    contents, _, _ = fake
    for name, data, match in [
        (
            "data_batch_2.bin",
            contents["data_batch_2.bin"] + b"\x00" * 5,
            r"^data_batch_2\.bin: expected whole 3073-byte records \(1 label \+ 3\*32\*32 pixel bytes\), "
            r"found 6151 bytes \(2 records and 5 bytes over\)\.$",
        ),
        (
            "data_batch_2.bin",
            b"\x0a" + contents["data_batch_2.bin"][1:],
            r"^data_batch_2\.bin: record 0 has label 10, expected 0\.\.9\.$",
        ),
    ]:
        monkeypatch.setitem(cifar10.SHA256, name, hashlib.sha256(data).hexdigest())
        for other, good in contents.items():
            (tmp_path / other).write_bytes(good)
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=match):
            cifar10.load_data(tmp_path)


def test_extracted_files_are_preferred_to_the_archive(tmp_path, fake):
    contents, images, labels = fake
    (tmp_path / cifar10.ARCHIVE).write_bytes(b"broken, and never opened")
    (tmp_path / cifar10.FOLDER).mkdir()
    for name, data in contents.items():
        (tmp_path / cifar10.FOLDER / name).write_bytes(data)
    _check(cifar10.load_data(tmp_path), images, labels)


def test_found_under_convlens_data(tmp_path, fake, monkeypatch):
    contents, images, labels = fake
    (tmp_path / "cifar-10").mkdir()
    _archive(tmp_path / "cifar-10" / cifar10.ARCHIVE, contents)
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path))
    _check(cifar10.load_data(), images, labels)


def test_download_checks_the_archive_and_caches_it(http_server: Server, fake, monkeypatch):
    contents, images, labels = fake
    archive = _archive(http_server.root / cifar10.ARCHIVE, contents)
    monkeypatch.setattr(cifar10, "URL", http_server.url + cifar10.ARCHIVE)
    monkeypatch.setattr(cifar10, "ARCHIVE_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    _check(cifar10.load_data(), images, labels)
    _check(cifar10.load_data(), images, labels)
    assert http_server.requests == [f"/{cifar10.ARCHIVE}"]
    assert [p.name for p in sources.cache_dir("cifar-10").iterdir()] == [cifar10.ARCHIVE]


def test_corrupted_download_is_refused_and_not_kept(http_server: Server, fake, monkeypatch):
    contents, _, _ = fake
    archive = _archive(http_server.root / cifar10.ARCHIVE, contents)
    url = http_server.url + cifar10.ARCHIVE
    monkeypatch.setattr(cifar10, "URL", url)
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(
        DataError,
        match=rf"^cifar-10-binary\.tar\.gz: SHA-256 does not match: expected {cifar10.ARCHIVE_SHA256}, got "
        rf"{actual}\. The file downloaded from {re.escape(url)} is not the official archive; it was not kept\.$",
    ):
        cifar10.load_data()
    assert list(sources.cache_dir("cifar-10").iterdir()) == []
