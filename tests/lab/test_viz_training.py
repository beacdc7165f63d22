"""convlens.lab.viz: training curves, confusion matrix, most confidently wrong, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require

require("matplotlib")

from PIL import Image  # noqa: E402

import convlens as cl  # noqa: E402
from convlens.callbacks import History  # noqa: E402
from convlens.cli import main  # noqa: E402
from convlens.errors import ConfigError, StateError  # noqa: E402
from convlens.lab import viz  # noqa: E402


def _tiny(input_shape: tuple[int, int, int] = (6, 6, 1), classes: int = 3) -> cl.Sequential:
    cl.utils.set_random_seed(0)
    model = cl.Sequential(
        [
            cl.layers.Conv2D(2, 3, activation="relu", input_shape=input_shape),
            cl.layers.Flatten(),
            cl.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_curves_read_history() -> None:
    history = History()
    history.history = {"loss": [0.9, 0.5, 0.3], "accuracy": [0.6, 0.8, 0.9], "val_loss": [1.0, 0.7, 0.6]}
    history.epoch = [0, 1, 2]
    result = viz.curves(history)
    assert result.epochs == [1, 2, 3]
    assert result.history == history.history
    loss_ax, metric_ax = result.figure.axes[:2]
    drawn = {line.get_label().split(" ")[0]: list(line.get_ydata()) for line in loss_ax.lines + metric_ax.lines}
    assert drawn == history.history
    assert [line.get_linestyle() for line in loss_ax.lines] == ["-", "--"]  # loss solid, val_loss dashed
    with pytest.raises(StateError, match="curves: no training history"):
        viz.curves(_tiny())


def test_curves_after_the_fact_from_a_saved_model(tmp_path: Path) -> None:
    model = _tiny()
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 12)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, validation_split=0.25)
    model.save(tmp_path / "m.npz")
    result = viz.curves(cl.load_model(tmp_path / "m.npz"))
    assert sorted(result.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    np.testing.assert_allclose(result.history["loss"], model.history.history["loss"], rtol=1e-6)
    assert result.epochs == [1, 2]


def test_confusion_counts_equal_a_manual_count() -> None:
    model = _tiny()
    rng = np.random.default_rng(1)
    x, y = rng.random((40, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 40)
    result = viz.confusion(model, x, y)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    manual = np.zeros((3, 3), np.int64)
    for t, p in zip(y, predicted, strict=True):
        manual[t, p] += 1
    np.testing.assert_array_equal(result.matrix, manual)
    assert result.matrix.sum() == 40
    assert result.accuracy == pytest.approx(np.mean(predicted == y))
    with pytest.raises(ConfigError, match="viz: give both x and y, or neither"):
        viz.confusion(model, x)


def test_wrong_lists_the_most_confident_errors_first() -> None:
    model = _tiny()
    rng = np.random.default_rng(2)
    x, y = rng.random((30, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, 30)
    probs = model.predict(x, verbose=0)
    result = viz.wrong(model, x, y, count=4)
    errors = np.flatnonzero(probs.argmax(axis=1) != y)
    assert result.total_wrong == len(errors)
    assert len(result.indices) == min(4, len(errors))
    assert set(result.indices) <= set(errors)
    np.testing.assert_array_equal(result.true, y[result.indices])
    assert np.all(result.predicted != result.true)
    assert np.all(np.diff(result.confidence) <= 0)  # most confident first
    best_other = probs[errors].max(axis=1).max()
    assert result.confidence[0] == pytest.approx(best_other)


@pytest.fixture(scope="module")
def saved_course_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from convlens.course import build_course_model
    from convlens.layers.base import reset_name_counters

    reset_name_counters()  # layer names as in a fresh `convlens train`: conv2d, max_pooling2d...
    cl.utils.set_random_seed(0)
    model = build_course_model(filters=4)
    path = tmp_path_factory.mktemp("viz") / "course.npz"
    model.save(path)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["feature-maps", "--index", "7"],
        ["filters"],
        ["maximize", "--layer", "conv2d", "--filter", "3", "--steps", "5"],
        ["saliency", "--index", "7"],
        ["gradcam", "--index", "7"],
        ["equivariance", "--shift", "2,-2"],
        ["confusion", "--limit", "200"],
        ["wrong", "--limit", "200", "--count", "4"],
    ],
)
def test_cli_writes_pictures(
    args: list[str], saved_course_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pic.png"
    model = str(saved_course_model)
    assert main(["visualize", args[0], model, *args[1:], "-o", str(out)]) == 0
    assert f"Saved {out}" in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.width > 200
        assert len(np.unique(np.asarray(img.convert("L")))) > 10  # a drawing, not a blank page


def test_cli_svg_errors_and_curves(
    saved_course_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "maps.svg"
    assert main(["visualize", "feature-maps", str(saved_course_model), "--index", "3", "-o", str(out)]) == 0
    assert "<svg" in out.read_text()
    assert main(["visualize", "curves", str(saved_course_model), "-o", str(tmp_path / "c.png")]) == 2
    assert "no training history" in capsys.readouterr().err
    assert main(["visualize", "filters", str(saved_course_model), "-o", str(tmp_path / "f.gif")]) == 2
    assert "must end in .png or .svg" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["visualize", "saliency", str(saved_course_model), "--index", "1", "--image", "x.png"])
