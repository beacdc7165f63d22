"""Packaged MNIST: Keras's shapes and dtypes, the official file's facts, hash checks, user directories."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

import convlens.datasets
from convlens.datasets import mnist, sources
from convlens.datasets.idx import write_idx
from convlens.errors import DataError

from .conftest import synthetic_idx_set

PACKAGED = Path(mnist.__file__).parent / "data" / "mnist"
# Per-class counts of the official MNIST release (LeCun et al.), train and test.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def data():
    return mnist.load_data()


@pytest.fixture
def fresh_cache():
    sources.clear_cache()
    yield
    sources.clear_cache()


def _synthetic_dir(directory: Path, n_train: int = 6, n_test: int = 4) -> Path:
    synthetic_idx_set(directory, seed=0, n_train=n_train, n_test=n_test)
    return directory


def test_package_exposes_submodules():
    assert convlens.datasets.mnist is mnist
    assert convlens.datasets.idx.read_idx is not None


def test_shapes_and_dtypes_match_keras(data):
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (60000, 28, 28)
    assert y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28)
    assert y_test.shape == (10000,)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
        assert array.flags.writeable


def test_values_match_the_official_release(data):
    (x_train, y_train), (x_test, y_test) = data
    assert y_train[0] == 5  # the famous first training digit
    assert y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert x_train.min() == 0
    assert x_train.max() == 255
    assert x_test.max() == 255
    # The normalisation constants everyone uses for MNIST (torchvision's Normalize((0.1307,), (0.3081,))).
    # bincount in chunks: it widens uint8 to intp, 8x the memory of the whole set at once.
    histogram = sum(np.bincount(chunk.ravel(), minlength=256) for chunk in np.array_split(x_train, 10))
    levels = np.arange(256) / 255.0
    mean = histogram @ levels / histogram.sum()
    std = np.sqrt(histogram @ (levels - mean) ** 2 / histogram.sum())
    assert abs(mean - 0.1307) < 1e-4
    assert abs(std - 0.3081) < 1e-4


def test_each_call_returns_fresh_arrays(data):
    (x_train, _), _ = data
    (x_again, y_again), _ = mnist.load_data()
    assert not np.shares_memory(x_again, x_train)
    x_again[0] = 7
    y_again[0] = 0
    (x_third, y_third), _ = mnist.load_data()
    assert y_third[0] == 5
    np.testing.assert_array_equal(x_third[0], x_train[0])


def test_sha256_constants_describe_the_packaged_files():
    for stem in mnist.FILES:
        raw = gzip.decompress((PACKAGED / f"{stem}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == mnist.SHA256[stem]
    assert mnist.SHA256["train-images-idx3-ubyte"].startswith("ba891046")
    assert mnist.SHA256["t10k-images-idx3-ubyte"].startswith("0fa7898d")


def test_second_call_skips_decompression(data, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("decompressed again")

    mnist.load_data()
    monkeypatch.setattr(sources.gzip, "decompress", boom)
    (_, y_train), _ = mnist.load_data()
    assert y_train[0] == 5


def test_tampered_packaged_file_fails_the_hash_check(tmp_path, monkeypatch, fresh_cache):
    for stem in mnist.FILES:
        shutil.copy(PACKAGED / f"{stem}.gz", tmp_path / f"{stem}.gz")
    labels = bytearray(gzip.decompress((tmp_path / "train-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = 3  # the first label, 5 in the official file
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    actual = hashlib.sha256(bytes(labels)).hexdigest()
    monkeypatch.setattr(mnist, "_PACKAGED_DIR", tmp_path)
    expected = mnist.SHA256["train-labels-idx1-ubyte"]
    with pytest.raises(
        DataError,
        match=rf"^train-labels-idx1-ubyte\.gz: SHA-256 of the uncompressed data does not match: "
        rf"expected {expected}, got {actual}\. The packaged MNIST file is damaged; reinstall convlens\.$",
    ):
        mnist.load_data()
    # The same tampered file is fine from a user directory: user files are not hash-checked.
    (_, y_train), _ = mnist.load_data(tmp_path)
    assert y_train[0] == 3


def test_missing_packaged_file(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "_PACKAGED_DIR", tmp_path)
    with pytest.raises(
        DataError,
        match=r"^mnist\.load_data: packaged MNIST file .*train-images-idx3-ubyte\.gz "
        r"is missing; reinstall convlens\.$",
    ):
        mnist.load_data()


def test_user_dir_gz_and_raw_match_the_packaged_data(tmp_path, data, fresh_cache):
    gz_dir, raw_dir = tmp_path / "gz", tmp_path / "raw"
    gz_dir.mkdir()
    raw_dir.mkdir()
    for stem in mnist.FILES:
        shutil.copy(PACKAGED / f"{stem}.gz", gz_dir / f"{stem}.gz")
        (raw_dir / stem).write_bytes(gzip.decompress((PACKAGED / f"{stem}.gz").read_bytes()))
    for directory in (gz_dir, str(raw_dir)):
        loaded = mnist.load_data(directory)
        for got, want in zip((*loaded[0], *loaded[1]), (*data[0], *data[1]), strict=True):
            np.testing.assert_array_equal(got, want)


def test_user_dir_mixed_and_prefers_gz(tmp_path, fresh_cache):
    directory = _synthetic_dir(tmp_path / "d")
    # A raw file beside the .gz one is ignored; a raw-only file is used.
    write_idx(directory / "train-labels-idx1-ubyte", np.full(6, 9, np.uint8))
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(directory / "t10k-labels-idx1-ubyte", np.arange(4, dtype=np.uint8))
    (x_train, y_train), (x_test, y_test) = mnist.load_data(directory)
    assert x_train.shape == (6, 28, 28)
    assert x_test.shape == (4, 28, 28)
    assert y_train.tolist() != [9] * 6
    assert y_test.tolist() == [0, 1, 2, 3]


def test_user_dir_cache_sees_rewritten_files(tmp_path, fresh_cache):
    directory = _synthetic_dir(tmp_path / "d", n_train=6)
    assert mnist.load_data(directory)[0][0].shape == (6, 28, 28)
    _synthetic_dir(directory, n_train=8)
    assert mnist.load_data(directory)[0][0].shape == (8, 28, 28)


def test_user_dir_missing_file(tmp_path, fresh_cache):
    directory = _synthetic_dir(tmp_path / "d")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        DataError,
        match=r"^mnist\.load_data: .*d does not hold the MNIST files: expected train-images-idx3-ubyte\[\.gz\], "
        r"train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\], t10k-labels-idx1-ubyte\[\.gz\]\.$",
    ):
        mnist.load_data(directory)


@pytest.mark.parametrize("kind", ["a file", "nothing"])
def test_path_must_be_a_directory(tmp_path, kind):
    target = tmp_path / "mnist.npz"
    if kind == "a file":
        target.write_bytes(b"x")
    with pytest.raises(
        DataError,
        match=rf"^mnist\.load_data: `path` must be a directory holding the MNIST files \(train-images-idx3-ubyte"
        rf"\[\.gz\], .*\), found {kind} at ",
    ):
        mnist.load_data(target)


def test_user_dir_label_count_mismatch(tmp_path, fresh_cache):
    directory = _synthetic_dir(tmp_path / "d")
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(
        DataError,
        match=r"^train-labels-idx1-ubyte\.gz: expected one label per image in train-images-idx3-ubyte\.gz "
        r"\(6\), found 5 labels\.$",
    ):
        mnist.load_data(directory)


def test_user_dir_wrong_image_rank_and_label_dtype(tmp_path, fresh_cache):
    directory = _synthetic_dir(tmp_path / "d")
    write_idx(directory / "t10k-images-idx3-ubyte.gz", np.zeros((4, 784), np.uint8))
    with pytest.raises(
        DataError,
        match=r"^t10k-images-idx3-ubyte\.gz: expected uint8 images of shape \(N, H, W\), "
        r"got uint8 of shape \(4, 784\)\.$",
    ):
        mnist.load_data(directory)
    directory = _synthetic_dir(tmp_path / "e")
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.zeros(6, np.int32))
    with pytest.raises(
        DataError,
        match=r"^train-labels-idx1-ubyte\.gz: expected uint8 labels of shape \(N,\), "
        r"got int32 of shape \(6,\)\.$",
    ):
        mnist.load_data(directory)


def test_user_dir_corrupt_idx_names_the_file(tmp_path, fresh_cache):
    directory = _synthetic_dir(tmp_path / "d")
    (directory / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(12) + b"1"))
    with pytest.raises(DataError, match=r"^train-images-idx3-ubyte\.gz: trailing bytes after IDX data: "):
        mnist.load_data(directory)


def test_sample_is_the_first_100_test_images(data):
    _, (x_test, y_test) = data
    x, y = mnist.load_sample()
    assert x.shape == (100, 28, 28)
    assert x.dtype == y.dtype == np.uint8
    np.testing.assert_array_equal(x, x_test[:100])
    np.testing.assert_array_equal(y, y_test[:100])
    assert mnist.CLASS_NAMES[int(y[0])] == "7"  # the first test digit
