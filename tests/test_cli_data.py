"""``convlens train --dataset`` and ``--data-dir``: the course model takes the data's shape and classes."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convlens as cl
from convlens.cli import main
from convlens.datasets import cifar10, sources
from tests.support.shared_data import SHARED, shared_copy


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVLENS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "DEBIAN_ROOT", tmp_path / "no-debian")


def _train(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, cl.Sequential]:
    path = tmp_path / "model.npz"
    assert main(["train", "--epochs", "1", "--verbose", "0", "--save", str(path), *argv]) == 0
    return capsys.readouterr().out, cl.load_model(path)


@pytest.mark.slow  # loads and checks all of Fashion-MNIST, tests on 10,000 images: a few seconds
def test_fashion_mnist(tmp_path, capsys, monkeypatch):
    shared_copy("fashion-mnist")
    monkeypatch.setenv("CONVLENS_DATA", str(SHARED))  # SHARED/fashion-mnist: the documented layout
    out, model = _train(["--dataset", "fashion_mnist", "--limit", "1000", "--batch-size", "64"], tmp_path, capsys)
    assert "dataset=fashion_mnist" in out
    accuracy = float(re.search(r"Test accuracy: (\d+\.\d\d)%", out).group(1))
    assert accuracy > 40.0  # 1,000 images, one epoch: far above chance (10%)
    assert model.input_shape == (None, 28, 28, 1)


def _cifar_archive(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    with tarfile.open(directory / cifar10.ARCHIVE, "w:gz") as tar:
        for name in cifar10.FILES:
            data = rng.integers(0, 256, (20, 3073), dtype=np.uint8)
            data[:, 0] %= 10
            payload = data.tobytes()
            monkeypatch.setitem(cifar10.SHA256, name, hashlib.sha256(payload).hexdigest())
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def test_cifar10_gives_a_colour_input(tmp_path, capsys, monkeypatch):
    _cifar_archive(tmp_path / "data" / "cifar-10", monkeypatch)
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "data"))
    out, model = _train(["--dataset", "cifar10", "--validation-split", "0"], tmp_path, capsys)
    assert "Test accuracy: " in out
    assert model.input_shape == (None, 32, 32, 3)
    assert model.layers[0].params["kernel"].shape == (3, 3, 3, 32)


def test_data_dir_trains_on_a_folder_and_tests_on_the_held_out_part(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name, level in (("bright", 200), ("dark", 40), ("mid", 120)):
        for i in range(10):
            pixels = np.clip(level + rng.integers(-20, 20, (12, 10, 3)), 0, 255).astype(np.uint8)
            (tmp_path / "pics" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(tmp_path / "pics" / name / f"{i}.png")
    argv = ["--data-dir", str(tmp_path / "pics"), "--image-size", "8", "--color-mode", "grayscale"]
    out, model = _train([*argv, "--validation-split", "0"], tmp_path, capsys)
    assert "Found 30 files belonging to 3 classes.\nUsing 24 files for training.\nUsing 6 files for validation." in out
    assert re.search(r"Held-out accuracy \(20% of the images\): \d+\.\d\d%", out)
    assert model.input_shape == (None, 8, 8, 1)
    assert model.output_shape == (None, 3)


def test_dataset_and_data_dir_exclude_each_other(tmp_path, capsys):
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "convlens train: error: --dataset and --data-dir: give one of them, got both.\n"


def test_sweep_has_a_dataset_axis(capsys):
    assert main(["sweep", "run", "--dataset", "mnist,cifar10", "--strides", "1,2", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        "dataset=mnist strides=1",
        "dataset=mnist strides=2",
        "dataset=cifar10 strides=1",
        "dataset=cifar10 strides=2",
    ]
