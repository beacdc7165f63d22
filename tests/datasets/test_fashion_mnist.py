"""Fashion-MNIST: Keras's shapes and dtypes, the published facts and checksums, the search order, downloads."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import convlens as cl
from convlens.datasets import fashion_mnist, sources
from convlens.datasets.idx import read_idx, write_idx
from convlens.errors import DataError

from .conftest import Server, shared_copy, synthetic_idx_set


@pytest.fixture(scope="module")
def official() -> Path:
    return shared_copy("fashion-mnist")


@pytest.fixture(scope="module")
def data(official: Path):
    return fashion_mnist.load_data(official)


def _fake(monkeypatch: pytest.MonkeyPatch, hashes: dict[str, str]) -> None:
    """Make ``hashes`` the official checksums (synthetic data sets stand in for the real one)."""
    for stem, sha in hashes.items():
        monkeypatch.setitem(fashion_mnist.SHA256, stem, sha)


def test_reachable_as_keras_spells_it():
    assert cl.datasets.fashion_mnist is fashion_mnist


def test_shapes_and_dtypes_match_keras(data):
    (x_train, y_train), (x_test, y_test) = data
    assert (x_train.shape, y_train.shape, x_test.shape, y_test.shape) == (
        (60000, 28, 28),
        (60000,),
        (10000, 28, 28),
        (10000,),
    )
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
        assert array.flags.writeable


def test_published_facts(data):
    (x_train, y_train), (_, y_test) = data
    # From the data set's README (and /work/shared/data/fashion-mnist/README.md).
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(y_train, minlength=10).tolist() == [6000] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [1000] * 10
    histogram = sum(np.bincount(chunk.ravel(), minlength=256) for chunk in np.array_split(x_train, 10))
    assert abs(histogram @ np.arange(256) / histogram.sum() / 255.0 - 0.2860) < 1e-4


def test_sha256_table_is_the_shared_readme(official, data):
    readme = (official / "README.md").read_text()
    published = dict(re.findall(r"^\| (\S+-ubyte) +\| ([0-9a-f]{64}) \|$", readme, flags=re.MULTILINE))
    assert published == fashion_mnist.SHA256
    # `data` loaded, so every shared file passed the check against this table (the next test shows it can fail).


def test_sample_is_the_first_100_test_images(official):
    x, y = fashion_mnist.load_sample()
    assert x.shape == (100, 28, 28)
    assert y.shape == (100,)
    assert x.dtype == y.dtype == np.uint8
    np.testing.assert_array_equal(x, read_idx(official / "t10k-images-idx3-ubyte.gz")[:100])
    np.testing.assert_array_equal(y, read_idx(official / "t10k-labels-idx1-ubyte.gz")[:100])
    x[:] = 0  # fresh arrays: the next call is unaffected
    assert fashion_mnist.load_sample()[0].any()


def test_sample_ships_its_licence():
    readme = (Path(fashion_mnist.__file__).parent / "data" / "fashion-mnist-sample" / "README.md").read_text()
    assert "MIT License" in readme
    assert "Zalando SE" in readme


def test_class_names():
    assert len(fashion_mnist.CLASS_NAMES) == 10
    assert fashion_mnist.CLASS_NAMES[0] == "T-shirt/top"
    assert fashion_mnist.CLASS_NAMES[9] == "Ankle boot"


def test_corrupted_file_is_a_data_error_naming_it(tmp_path, monkeypatch):
    _fake(monkeypatch, synthetic_idx_set(tmp_path, seed=0))
    labels = bytearray(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = (labels[8] + 1) % 10
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))  # raw files count too
    expected = fashion_mnist.SHA256["t10k-labels-idx1-ubyte"]
    actual = hashlib.sha256(bytes(labels)).hexdigest()
    with pytest.raises(
        DataError,
        match=rf"^t10k-labels-idx1-ubyte: SHA-256 of the uncompressed data does not match: expected {expected}, "
        rf"got {actual}\. Replace it with the official file \(or delete it from the download cache to fetch it "
        r"again\)\.$",
    ):
        fashion_mnist.load_data(tmp_path)


# ---------------------------------------------------------------- the search order


def test_explicit_path_is_searched_alone(tmp_path, monkeypatch):
    _fake(monkeypatch, synthetic_idx_set(tmp_path / "data" / "fashion-mnist", seed=1))
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "data"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        DataError,
        match=r"^fashion_mnist\.load_data: .*empty does not hold the Fashion-MNIST files: expected "
        r"train-images-idx3-ubyte\[\.gz\], train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\], "
        r"t10k-labels-idx1-ubyte\[\.gz\]\.$",
    ):
        fashion_mnist.load_data(empty)


@pytest.mark.parametrize("kind", ["a file", "nothing"])
def test_path_must_be_a_directory(tmp_path, kind):
    target = tmp_path / "fashion.npz"
    if kind == "a file":
        target.write_bytes(b"x")
    with pytest.raises(
        DataError,
        match=rf"^fashion_mnist\.load_data: `path` must be a directory holding the Fashion-MNIST files "
        rf"\(train-images-idx3-ubyte\[\.gz\], .*\), found {kind} at ",
    ):
        fashion_mnist.load_data(str(target))


def test_search_order_env_then_debian_then_cache(tmp_path, monkeypatch):
    # Three complete sets with different contents; each one's labels identify where the data came from.
    places = {
        "env": tmp_path / "env" / "fashion-mnist",
        "debian": sources.DEBIAN_ROOT / "fashion-mnist",
        "cache": sources.cache_dir("fashion-mnist"),
    }
    hashes = {name: synthetic_idx_set(place, seed=seed) for seed, (name, place) in enumerate(places.items())}
    labels = {name: read_idx(place / "train-labels-idx1-ubyte.gz").tolist() for name, place in places.items()}
    assert len({tuple(v) for v in labels.values()}) == 3
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "env"))
    for name in ("env", "debian", "cache"):
        _fake(monkeypatch, hashes[name])
        (_, y_train), _ = fashion_mnist.load_data()
        assert y_train.tolist() == labels[name], name
        shutil.rmtree(places[name])  # the next place answers once this one is gone


def test_incomplete_directory_is_skipped(tmp_path, monkeypatch):
    synthetic_idx_set(tmp_path / "env" / "fashion-mnist", seed=4)
    (tmp_path / "env" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    _fake(monkeypatch, synthetic_idx_set(sources.cache_dir("fashion-mnist"), seed=5))
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "env"))
    (_, y_train), _ = fashion_mnist.load_data()
    np.testing.assert_array_equal(y_train, read_idx(sources.cache_dir("fashion-mnist") / "train-labels-idx1-ubyte.gz"))


# ---------------------------------------------------------------- downloads (a loopback server, no internet)


def test_download_checks_caches_and_is_not_repeated(http_server: Server, monkeypatch):
    _fake(monkeypatch, synthetic_idx_set(http_server.root, seed=6))
    monkeypatch.setattr(fashion_mnist, "BASE_URL", http_server.url)
    _, (x_test, _) = fashion_mnist.load_data()
    np.testing.assert_array_equal(x_test, read_idx(http_server.root / "t10k-images-idx3-ubyte.gz"))
    assert sorted(http_server.requests) == sorted(f"/{stem}.gz" for stem in fashion_mnist.FILES)
    cache = sources.cache_dir("fashion-mnist")
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{stem}.gz" for stem in fashion_mnist.FILES)
    fashion_mnist.load_data()  # from the cache now
    assert len(http_server.requests) == 4


def test_download_only_fetches_what_the_cache_lacks(http_server: Server, monkeypatch):
    hashes = synthetic_idx_set(http_server.root, seed=7)
    _fake(monkeypatch, hashes)
    cache = sources.cache_dir("fashion-mnist")
    cache.mkdir(parents=True)
    shutil.copy(http_server.root / "train-images-idx3-ubyte.gz", cache)
    monkeypatch.setattr(fashion_mnist, "BASE_URL", http_server.url)
    fashion_mnist.load_data()
    assert sorted(http_server.requests) == sorted(f"/{stem}.gz" for stem in fashion_mnist.FILES[1:])


def test_corrupted_download_is_refused_and_not_kept(http_server: Server, monkeypatch):
    _fake(monkeypatch, synthetic_idx_set(http_server.root, seed=8))
    write_idx(http_server.root / "train-labels-idx1-ubyte.gz", np.zeros(6, np.uint8))  # not what the hash says
    actual = hashlib.sha256(gzip.decompress((http_server.root / "train-labels-idx1-ubyte.gz").read_bytes()))
    monkeypatch.setattr(fashion_mnist, "BASE_URL", http_server.url)
    with pytest.raises(
        DataError,
        match=rf"^train-labels-idx1-ubyte\.gz: SHA-256 of the uncompressed data does not match: expected "
        rf"{fashion_mnist.SHA256['train-labels-idx1-ubyte']}, got {actual.hexdigest()}\. The file downloaded from "
        rf"{re.escape(http_server.url)} is not the official one; it was not kept\.$",
    ):
        fashion_mnist.load_data()
    # The good file before it was kept; the bad one (and every temporary file) is gone.
    assert [p.name for p in sources.cache_dir("fashion-mnist").iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_no_files_and_no_download_says_where_it_looked(http_server: Server, monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_mnist, "BASE_URL", http_server.url)  # serves nothing: 404
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "env"))
    with pytest.raises(
        DataError,
        match=r"^fashion_mnist\.load_data: no Fashion-MNIST files found \(looked in .*env/fashion-mnist, "
        r".*debian/fashion-mnist, .*cache/convlens/datasets/fashion-mnist\) and the download of "
        r"http://127\.0\.0\.1:\d+/train-images-idx3-ubyte\.gz failed \(HTTP 404: File not found\)\. "
        r"To work offline, pass path=DIR, put them in \$CONVLENS_DATA/fashion-mnist, "
        r"or apt-get install dataset-fashion-mnist\.$",
    ):
        fashion_mnist.load_data()
    assert list(sources.cache_dir("fashion-mnist").iterdir()) == []
