"""The ``convlens`` command line: ``train`` and ``summary``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convlens as cl
from convlens.cli import main

COURSE_PARAMS = (3 * 3 * 1 * 32 + 32) + (14 * 14 * 32 * 10 + 10)


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s+train\s+train the course's CNN", out, re.MULTILINE)
    assert re.search(r"^\s+summary\s+print the course model's summary table", out, re.MULTILINE)
    assert main([]) == 0  # no command: the help, not a traceback
    assert "usage: convlens" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"convlens {cl.__version__}"


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert f"Total params: {COURSE_PARAMS:,}" in out
    assert "(None, 28, 28, 32)" in out
    assert "(None, 14, 14, 32)" in out
    assert main(["summary", "--kernel-size", "5", "--padding", "valid", "--pooling", "avg"]) == 0
    out = capsys.readouterr().out
    # 28 - 5 + 1 = 24 -> pool 2 -> 12; params 5*5*1*32+32 + 12*12*32*10+10
    assert "(None, 24, 24, 32)" in out
    assert f"Total params: {5 * 5 * 32 + 32 + 12 * 12 * 32 * 10 + 10:,}" in out


def test_train_saves_a_loadable_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.npz"
    argv = ["train", "--limit", "2000", "--epochs", "1", "--batch-size", "64", "--verbose", "0", "--save", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("convlens train: epochs=1, batch_size=64, filters=32, kernel_size=3")
    assert "limit=2000" in out
    match = re.search(r"Test accuracy: (\d+\.\d\d)%", out)
    assert match is not None
    assert float(match.group(1)) > 50.0  # 2,000 images, one epoch: far above chance (10%)
    assert f"Saved the model to {path}" in out
    model = cl.load_model(path)
    assert model.count_params() == COURSE_PARAMS
    (_, _), (x_test, y_test) = cl.datasets.mnist.load_data()
    accuracy = model.evaluate(x_test[..., None] / 255.0, y_test, batch_size=1000, verbose=0)[1]
    assert accuracy * 100 == pytest.approx(float(match.group(1)), abs=0.006)
    assert np.isfinite(model.get_weights()[0]).all()


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["train", "--epochs", "0"],
        ["train", "--batch-size", "many"],
        ["train", "--padding", "full"],
        ["train", "--verbose", "3"],
        ["summary", "--unknown-flag"],
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: convlens" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "--activation", "nope"], r"convlens summary: error: Conv2D '\w+': unknown `activation` 'nope'"),
        (
            ["summary", "--kernel-size", "40", "--padding", "valid"],
            r"convlens summary: error: Conv2D '\w+': a 'valid'-padded 40x40 window does not fit the 28x28 input",
        ),
        (
            ["train", "--limit", "100", "--validation-split", "1.5", "--verbose", "0"],
            r"convlens train: error: fit: `validation_split` must be < 1.0, got 1.5",
        ),
    ],
)
def test_errors_are_one_line_not_a_traceback(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_installed_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convlens", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: convlens" in result.stdout
    assert "train" in result.stdout
    assert "summary" in result.stdout
    script = Path(sys.executable).with_name("convlens")  # the [project.scripts] entry point
    if script.exists():
        result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert "usage: convlens" in result.stdout
