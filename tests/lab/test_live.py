"""convlens.lab.live: live training is plain fit (same weights), its curves are exact, pause/stop work."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import numpy as np
import pytest

from convlens import optimizers
from convlens.errors import ConfigError, ShapeError
from convlens.lab import samples
from convlens.lab.live import LiveTraining
from convlens.lab.sweep.grid import TrialConfig
from convlens.lab.sweep.trial import build_model
from convlens.layers.base import reset_name_counters
from convlens.utils import set_random_seed

SMALL = TrialConfig(filters=4, epochs=2, batch_size=50, train_limit=400, test_limit=200, seed=5)


def _plain_fit(cfg: TrialConfig, validation_split: float) -> Any:
    (x, y), _ = samples.arrays("mnist")
    set_random_seed(cfg.seed)
    reset_name_counters()
    model = build_model(cfg)
    model.compile(optimizer=optimizers.get(cfg.optimizer), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[: cfg.train_limit], y[: cfg.train_limit], epochs=cfg.epochs, batch_size=cfg.batch_size,
              validation_split=validation_split, verbose=0)  # fmt: skip
    return model


def test_live_training_gives_the_same_weights_as_fit_and_exact_interval_means() -> None:
    events: list[dict[str, Any]] = []
    job = LiveTraining(SMALL, listener=events.append, validation_split=0.25, report_every=0.0, maps_every=0.0)
    job.run()
    reference = _plain_fit(SMALL, 0.25)
    for got, want in zip(job.model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)  # the probes between batches change nothing
    assert events[-1]["state"] == "finished"
    assert events[-1]["type"] == "done"
    start = next(e for e in events if e["type"] == "start")
    assert (start["train_images"], start["validation_images"], start["steps"]) == (300, 100, 6)
    progress = [e for e in events if e["type"] == "progress"]
    epochs = [e for e in events if e["type"] == "epoch"]
    assert len(progress) == 12
    assert [e["epoch"] for e in epochs] == [0, 1]
    history = reference.history.history
    for epoch in range(2):
        points = [p for p in progress if p["epoch"] == epoch]
        counts = np.diff([0] + [p["seen"] - epoch * 300 for p in points])
        # the interval means, weighted by their image counts, give back fit's epoch mean
        assert np.dot(counts, [p["loss"] for p in points]) / 300 == pytest.approx(history["loss"][epoch], rel=1e-9)
        assert np.dot(counts, [p["accuracy"] for p in points]) / 300 == pytest.approx(history["accuracy"][epoch])
        assert epochs[epoch]["logs"]["val_loss"] == pytest.approx(history["val_loss"][epoch], rel=1e-6)
    maps = [e for e in events if e["type"] == "maps"]
    assert np.array(maps[-1]["maps"]).shape == (4, 28, 28)
    _test_loss, test_acc = reference.evaluate(
        *[a[:200] for a in samples.arrays("mnist")[1]], batch_size=1000, verbose=0
    )
    assert events[-1]["test_accuracy"] == pytest.approx(test_acc)


def _start_until_progress(job: LiveTraining, events: list[dict[str, Any]]) -> tuple[threading.Thread, float]:
    """Run ``job`` in a thread until its first progress event; returns the thread and a 30 s deadline."""
    thread = threading.Thread(target=job.run)
    thread.start()
    deadline = time.monotonic() + 30
    while not any(e["type"] == "progress" for e in events) and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread, deadline


def test_pause_resume_and_stop_from_another_thread() -> None:
    cfg = TrialConfig(filters=4, epochs=50, batch_size=20, train_limit=2000, test_limit=100)
    events: list[dict[str, Any]] = []
    job = LiveTraining(cfg, listener=events.append, validation_split=0.0, report_every=0.0)
    thread, deadline = _start_until_progress(job, events)
    job.pause()
    while job.state != "paused" and time.monotonic() < deadline:
        time.sleep(0.01)
    seen = len([e for e in events if e["type"] == "progress"])
    time.sleep(0.3)
    assert job.state == "paused"
    assert len([e for e in events if e["type"] == "progress"]) == seen
    job.resume()
    while len([e for e in events if e["type"] == "progress"]) == seen and time.monotonic() < deadline:
        time.sleep(0.01)
    job.stop()
    thread.join(30)
    assert not thread.is_alive()
    done = events[-1]
    assert done["type"] == "done"
    assert done["state"] == "stopped"
    assert job.state == "stopped"
    assert 0 < done["trained_images"] < 50 * 2000
    assert 0.0 <= done["test_accuracy"] <= 1.0
    states = [e["state"] for e in events if e["type"] == "state"]
    assert states[:4] == ["loading", "running", "paused", "running"]
    assert "stopping" in states


def test_architectures_that_cannot_exist_fail_before_training() -> None:
    with pytest.raises(ShapeError, match="does not fit the"):
        LiveTraining(TrialConfig(kernel_size=7, padding="valid", conv_blocks=3))
    with pytest.raises(ConfigError, match=re.escape("live training: `validation_split` must be in [0, 1), got 1.0.")):
        LiveTraining(SMALL, validation_split=1.0)
    with pytest.raises(ConfigError, match=re.escape("live training: the model takes (32, 32, 3) but MNIST images are")):
        LiveTraining(SMALL, spec="input32x32x3, conv4k3, flatten, dense10-softmax")
    job = LiveTraining(SMALL, spec="conv4k5same-relu, maxpool2, flatten, dense10-softmax")
    assert job.model.input_shape == (None, 28, 28, 1)
    assert job.model.layers[0].kernel_size == (5, 5)


def test_a_failing_run_reports_instead_of_raising() -> None:
    events: list[dict[str, Any]] = []
    job = LiveTraining(TrialConfig(filters=2, train_limit=10, test_limit=10), listener=events.append)
    job.dataset = "no_such_dataset"  # loading now fails inside the thread
    job.run()
    assert events[-1] == {"type": "done", "state": "failed", "error": job.error}
    assert "datasets: `dataset` must be one of" in str(job.error)


def test_samples_lists_and_loads() -> None:
    assert samples.dataset_names()[0] == "mnist"
    x, label = samples.sample_image("mnist", 1)
    (_, _), (x_test, y_test) = samples.arrays("mnist")
    np.testing.assert_array_equal(x, x_test[1])
    assert label == int(y_test[1]) == 2
    digits = [str(d) for d in range(10)]
    assert samples.describe("mnist") == {"name": "mnist", "label": "MNIST", "class_names": digits}
    assert samples.dataset_names() == ["mnist", "cifar10", "fashion_mnist"]  # what convlens.datasets offers
    assert samples.input_shape("mnist") == samples.arrays("mnist")[1][0].shape[1:]
    with pytest.raises(ConfigError, match=re.escape("datasets: `index` must be in [0, 10000) for mnist, got 10000.")):
        samples.sample_image("mnist", 10000)
    with pytest.raises(ConfigError, match=re.escape("datasets: `dataset` must be one of")):
        samples.arrays("cifar100")


def test_stop_without_evaluation_ends_at_once() -> None:
    cfg = TrialConfig(filters=2, epochs=100, batch_size=10, train_limit=500, test_limit=10)
    events: list[dict[str, Any]] = []
    job = LiveTraining(cfg, listener=events.append, validation_split=0.0, report_every=0.0)
    thread, _deadline = _start_until_progress(job, events)
    job.stop(evaluate=False)
    thread.join(30)
    done = events[-1]
    assert done["type"] == "done"
    assert done["state"] == "stopped"
    assert "test_accuracy" not in done
    assert 0 < done["trained_images"] < 100 * 500
