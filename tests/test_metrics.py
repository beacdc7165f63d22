"""Metrics: Keras's resolution of 'accuracy', running means, tie rule, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens import metrics
from convlens.errors import ConfigError, ShapeError
from convlens.metrics import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    Mean,
    MeanAbsoluteError,
    MeanSquaredError,
    SparseCategoricalAccuracy,
)
from tests.conftest import require


def loop_sparse_accuracy(labels, scores):
    hits = 0
    for label, row in zip(labels, scores, strict=True):
        best = 0
        for j in range(1, len(row)):
            if row[j] > row[best]:  # strict: the first maximum wins
                best = j
        hits += int(best == label)
    return hits / len(labels)


def test_sparse_accuracy_matches_loop_and_takes_first_max_on_ties(rng):
    scores = rng.integers(0, 3, size=(50, 4)).astype(float)  # many ties
    labels = rng.integers(0, 4, size=50)
    acc = SparseCategoricalAccuracy()
    acc.update(labels, scores)
    assert acc.result() == pytest.approx(loop_sparse_accuracy(labels, scores))
    tie = SparseCategoricalAccuracy()
    tie.update(np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]]))
    assert tie.result() == 0.5
    column = SparseCategoricalAccuracy()
    column.update(labels[:, None], scores)
    assert column.result() == acc.result()


def test_categorical_and_binary_accuracy():
    y_pred = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.3, 0.3, 0.4]])
    y_true = np.eye(3)[[1, 1, 2]]
    acc = CategoricalAccuracy()
    acc.update(y_true, y_pred)
    assert acc.result() == pytest.approx(2 / 3)
    binary = BinaryAccuracy()
    binary.update(np.array([1, 0, 1, 0]), np.array([[0.9], [0.5], [0.4], [0.1]]))  # 0.5 is not > 0.5
    assert binary.result() == 0.75
    strict = BinaryAccuracy(threshold=0.95)
    strict.update(np.array([[1, 0], [1, 1]]), np.array([[0.9, 0.1], [0.99, 0.97]]))
    assert strict.result() == 0.75


def test_mse_mae_match_torch(rng):
    torch = require("torch")
    y_true, y_pred = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    mse, mae = MeanSquaredError(), MeanAbsoluteError()
    for m in (mse, mae):
        m.update(y_true[:4], y_pred[:4])
        m.update(y_true[4:], y_pred[4:])
    t, p = torch.tensor(y_true), torch.tensor(y_pred)
    assert mse.result() == pytest.approx(torch.nn.functional.mse_loss(p, t).item(), rel=1e-12)
    assert mae.result() == pytest.approx(torch.nn.functional.l1_loss(p, t).item(), rel=1e-12)


@given(sizes=st.lists(st.integers(1, 7), min_size=1, max_size=5))
def test_running_mean_over_uneven_batches_is_the_mean_over_samples(sizes):
    rng = np.random.default_rng(sum(sizes))
    n = sum(sizes)
    labels, scores = rng.integers(0, 5, size=n), rng.normal(size=(n, 5))
    acc = SparseCategoricalAccuracy()
    start = 0
    for size in sizes:
        acc.update(labels[start : start + size], scores[start : start + size])
        start += size
    assert acc.result() == pytest.approx(np.mean(np.argmax(scores, axis=1) == labels))
    acc.reset()
    assert acc.result() == 0.0


@pytest.mark.parametrize(
    ("loss", "cls"),
    [
        ("sparse_categorical_crossentropy", SparseCategoricalAccuracy),
        ("categorical_crossentropy", CategoricalAccuracy),
        ("binary_crossentropy", BinaryAccuracy),
        ("SparseCategoricalCrossentropy", SparseCategoricalAccuracy),
        ("mse", Accuracy),
        (None, Accuracy),
    ],
)
def test_get_resolves_accuracy_from_the_loss(loss, cls):
    metric = metrics.get("accuracy", loss)
    assert type(metric) is cls
    assert metric.name == "accuracy"
    assert metrics.get("acc", loss).name == "acc"  # Keras 3 logs the name as written


@pytest.mark.parametrize(
    ("y_true", "y_pred", "cls"),
    [
        (np.array([0, 1]), np.zeros((2, 3)), SparseCategoricalAccuracy),
        (np.array([[0], [1]]), np.zeros((2, 3)), SparseCategoricalAccuracy),
        (np.eye(3)[:2], np.zeros((2, 3)), CategoricalAccuracy),
        (np.array([[0], [1]]), np.zeros((2, 1)), BinaryAccuracy),
    ],
)
def test_auto_accuracy_uses_keras3_shape_rule(y_true, y_pred, cls):
    acc = Accuracy()
    acc.update(y_true, y_pred)
    assert type(acc.resolved) is cls


def test_get_other_names_and_instances():
    assert type(metrics.get("mse")) is MeanSquaredError
    assert metrics.get("mse").name == "mse"
    assert type(metrics.get("MAE")) is MeanAbsoluteError
    assert type(metrics.get("binary_accuracy", "sparse_categorical_crossentropy")) is BinaryAccuracy
    m = CategoricalAccuracy()
    assert metrics.get(m) is m


def test_mean_is_weighted():
    loss = Mean("loss")
    loss.update_value(2.0, weight=32)
    loss.update_value(1.0, weight=8)  # a short last batch counts less
    assert loss.result() == pytest.approx((2 * 32 + 8) / 40)


def test_errors():
    with pytest.raises(ConfigError, match=r"metrics.get: unknown metric 'f1'; valid names are 'accuracy'"):
        metrics.get("f1")
    with pytest.raises(ShapeError, match=r"SparseCategoricalAccuracy 'accuracy': `y_true` must hold one label"):
        metrics.get("accuracy", "sparse_categorical_crossentropy").update(np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(ShapeError, match=r"CategoricalAccuracy 'categorical_accuracy': `y_true` \(one-hot\)"):
        CategoricalAccuracy().update(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ShapeError, match=r"MeanSquaredError 'mse': `y_true` and `y_pred` must have the same shape"):
        metrics.get("mse").update(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ConfigError, match=r"Mean 'loss': use `update_value\(value, weight\)`"):
        Mean("loss").update(np.zeros(2), np.zeros(2))
    with pytest.raises(ConfigError, match=r"BinaryAccuracy 'binary_accuracy': `threshold` must be a number"):
        BinaryAccuracy(threshold="high")  # type: ignore[arg-type]
