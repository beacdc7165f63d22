"""Training: loss and metric curves from ``History``, the confusion matrix, the most confidently wrong examples."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.errors import ConfigError, ShapeError, StateError, check_int
from convlens.lab.viz._figure import FigureResult, new_figure, show_image
from convlens.lab.viz.images import mnist_test

__all__ = ["ConfusionResult", "CurvesResult", "WrongResult", "confusion", "curves", "wrong"]


@dataclass(repr=False)
class CurvesResult(FigureResult):
    """The figure, the ``history`` drawn (name -> one value per epoch) and the ``epochs`` (1-based)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)


def _history_dict(source: Any) -> tuple[dict[str, list[float]], list[int] | None]:
    if isinstance(source, dict):
        return {str(k): [float(v) for v in vs] for k, vs in source.items()}, None
    history = getattr(source, "history", None)
    if history is not None and not isinstance(history, dict):  # a model: its History
        history = getattr(history, "history", None)
        epoch = getattr(source.history, "epoch", None)
    else:
        epoch = getattr(source, "epoch", None)
    if not history:
        raise StateError(
            f"curves: no training history in {source!r}; train with fit (or `convlens train --save`) first."
        )
    return {str(k): [float(v) for v in vs] for k, vs in history.items()}, list(epoch) if epoch else None


def curves(source: Any) -> CurvesResult:
    """Plot loss curves (left) and metric curves (right), training solid and validation dashed.

    ``source`` is a model (its saved ``history``), a ``History`` or a dict name -> per-epoch values.
    """
    history, epoch = _history_dict(source)
    length = max(len(v) for v in history.values())
    epochs = [e + 1 for e in epoch] if epoch and len(epoch) == length else list(range(1, length + 1))
    losses = sorted(k for k in history if k.removeprefix("val_") == "loss")
    metrics = sorted(k for k in history if k not in losses)
    panels = [("loss", losses)] + ([("metrics", metrics)] if metrics else [])
    figure = new_figure(5.0 * len(panels), 3.4)
    axes = np.atleast_1d(figure.subplots(1, len(panels), squeeze=False)[0])
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            values = history[key]
            style = "--" if key.startswith("val_") else "-"
            ax.plot(epochs[: len(values)], values, style, marker="o", label=f"{key} (last {values[-1]:.4g})")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"Training history: {length} epoch{'s' if length != 1 else ''}", fontsize=10)
    return CurvesResult(figure=figure, history=history, epochs=epochs)


def _test_data(x: Any, y: Any, limit: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    if (x is None) != (y is None):
        raise ConfigError("viz: give both x and y, or neither (the MNIST test set).")
    if x is None:
        x_arr, y_arr = mnist_test(limit)
        return x_arr, y_arr.astype(np.int64), f"MNIST test set ({x_arr.shape[0]} images)"
    x_arr, y_arr = np.asarray(x, dtype=np.float32), np.asarray(y).astype(np.int64).ravel()
    if limit is not None:
        x_arr, y_arr = x_arr[:limit], y_arr[:limit]
    if x_arr.shape[0] != y_arr.shape[0]:
        raise ShapeError(
            f"viz: x and y must have the same number of samples, got {x_arr.shape[0]} and {y_arr.shape[0]}."
        )
    return x_arr, y_arr, f"{x_arr.shape[0]} samples"


@dataclass(repr=False)
class ConfusionResult(FigureResult):
    """The figure; ``matrix[true, predicted]`` counts, the ``accuracy``, and each sample's ``predicted`` class."""

    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    accuracy: float = 0.0
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def confusion(model: Any, x: Any = None, y: Any = None, *, limit: int | None = None) -> ConfusionResult:
    """Confusion matrix of the model's predictions (default: on the MNIST test set, pixels / 255).

    Shapes:
        x: (N, H, W, C); y: (N,) integer labels; matrix: (K, K) with K = number of classes.
    """
    x_arr, y_arr, what = _test_data(x, y, limit)
    probs = model.predict(x_arr, batch_size=500, verbose=0)
    classes = probs.shape[-1]
    predicted = np.argmax(probs, axis=-1).astype(np.int64)
    if y_arr.min() < 0 or y_arr.max() >= classes:
        raise ConfigError(f"confusion: labels must be in [0, {classes}), got [{y_arr.min()}, {y_arr.max()}].")
    matrix = np.bincount(y_arr * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    accuracy = float(np.trace(matrix) / matrix.sum())
    figure = new_figure(6.0, 5.4)
    ax = figure.subplots(1, 1)
    im = ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    figure.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(f"Confusion matrix on {what}: accuracy {accuracy * 100:.2f}%", fontsize=9)
    return ConfusionResult(figure=figure, matrix=matrix, accuracy=accuracy, predicted=predicted)


@dataclass(repr=False)
class WrongResult(FigureResult):
    """The figure and, most confident first: sample ``indices``, ``predicted``/``true`` classes, ``confidence``."""

    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    true: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    total_wrong: int = 0


def wrong(
    model: Any, x: Any = None, y: Any = None, *, count: int = 16, columns: int = 8, limit: int | None = None
) -> WrongResult:
    """The ``count`` misclassified samples the model was most sure of (highest predicted probability).

    Shapes:
        x: (N, H, W, C); y: (N,); indices: (min(count, wrong),).
    """
    count = check_int(count, "count", owner="wrong", minimum=1)
    x_arr, y_arr, what = _test_data(x, y, limit)
    probs = model.predict(x_arr, batch_size=500, verbose=0)
    predicted = np.argmax(probs, axis=-1)
    wrong_idx = np.flatnonzero(predicted != y_arr)
    confidence = probs[wrong_idx, predicted[wrong_idx]]
    order = np.argsort(-confidence, kind="stable")[:count]
    indices = wrong_idx[order]
    shown = max(len(indices), 1)
    cols = min(columns, shown)
    rows = math.ceil(shown / cols)
    figure = new_figure(cols * 1.3, rows * 1.5 + 0.5)
    axes = np.asarray(figure.subplots(rows, cols, squeeze=False)).ravel()
    for k, ax in enumerate(axes):
        if k >= len(indices):
            ax.set_axis_off()
            continue
        i = indices[k]
        show_image(ax, x_arr[i])
        ax.set_title(f"#{i}: {predicted[i]} ({probs[i, predicted[i]] * 100:.0f}%)\ntrue {y_arr[i]}", fontsize=7)
    figure.suptitle(
        f"Most confidently wrong: {len(indices)} of {len(wrong_idx)} errors on {what} (predicted (confidence), true)",
        fontsize=9,
    )
    return WrongResult(
        figure=figure,
        indices=indices,
        predicted=predicted[indices],
        true=y_arr[indices],
        confidence=probs[indices, predicted[indices]],
        total_wrong=len(wrong_idx),
    )
