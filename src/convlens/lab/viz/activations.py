"""Run a model layer by layer, and take gradients with respect to its input with the engine's own backward.

The model's fused stages (Conv + MaxPool) are only used by ``fit``/``predict``; here every layer is
called on its own, so each layer's output is visible. For gradients, layers run ``forward(training=True)``
(so they keep what ``backward`` needs) with the two layers whose training behaviour differs made to
act as at inference: ``Dropout`` is skipped (it is the identity at inference) and
``BatchNormalization`` is frozen (``trainable=False`` makes it use its moving statistics).
The first layer's ``compute_grad_x`` is switched on for the pass and restored after it.
Note that a gradient pass overwrites the layers' ``grads`` (never their weights).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.errors import ConfigError

__all__ = ["GradientPass", "class_gradient", "find_layer", "layer_outputs", "linear_activation", "run_gradient"]


def find_layer(model: Any, layer: str | int) -> int:
    """Index of ``layer`` (a name or an index) in ``model.layers``.

    Raises:
        ConfigError: naming the layers there are when it is not found.
    """
    layers = model.layers
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if -len(layers) <= layer < len(layers):
            return int(layer) % len(layers)
    else:
        for i, candidate in enumerate(layers):
            if candidate.name == layer:
                return i
    names = ", ".join(repr(candidate.name) for candidate in layers)
    raise ConfigError(f"viz: `layer` must be one of {names} (or an index), got {layer!r}.")


def layer_outputs(model: Any, x: np.ndarray, upto: int | None = None) -> dict[str, np.ndarray]:
    """Every layer's output for ``x`` at inference, in layer order (name -> array); layers ``0..upto`` only if given.

    Shapes:
        x: (N, H, W, C); each value: that layer's output shape with batch N.
    """
    outputs: dict[str, np.ndarray] = {}
    out = np.asarray(x, dtype=np.float32)
    for layer in model.layers if upto is None else model.layers[: upto + 1]:
        out = layer.forward(out, training=False)
        outputs[layer.name] = out
    return outputs


def _skipped(layer: Any) -> bool:
    return type(layer).__name__ in ("Dropout", "SpatialDropout1D", "SpatialDropout2D")


@contextmanager
def _gradient_mode(model: Any) -> Iterator[None]:
    """Let the first layer compute dL/dx and freeze BatchNormalization; restore both afterwards."""
    layers = model.layers
    saved_grad_x = [layer.compute_grad_x for layer in layers]
    frozen = [layer for layer in layers if type(layer).__name__ == "BatchNormalization" and layer.trainable]
    try:
        for layer in layers:
            layer.compute_grad_x = True
        for layer in frozen:
            layer.trainable = False
        yield
    finally:
        for layer, flag in zip(layers, saved_grad_x, strict=True):
            layer.compute_grad_x = flag
        for layer in frozen:
            layer.trainable = True


@contextmanager
def linear_activation(layer: Any) -> Iterator[None]:
    """Temporarily give ``layer`` a linear activation, so its output is its pre-activation."""
    from convlens.ops.activations import get_activation

    saved = getattr(layer, "activation", None)
    if saved is None:
        yield
        return
    layer.activation = get_activation("linear")
    try:
        yield
    finally:
        layer.activation = saved


@dataclass
class GradientPass:
    """Result of :func:`run_gradient`.

    Attributes:
        outputs: each layer's output up to the target layer (name -> (N, ...)).
        grad_x: d objective / d input, (N, H, W, C).
        grads: d objective / d (each layer's output), name -> array of that output's shape.
    """

    outputs: dict[str, np.ndarray]
    grad_x: np.ndarray
    grads: dict[str, np.ndarray]


def run_gradient(
    model: Any,
    x: np.ndarray,
    target: int,
    seed: Callable[[np.ndarray], np.ndarray],
    *,
    backward_last: Callable[[Any, np.ndarray], np.ndarray] | None = None,
) -> GradientPass:
    """Forward ``x`` through layers ``0..target``; ``seed(output)`` gives d objective / d output; backward to x.

    ``backward_last(layer, grad)`` replaces the target layer's own ``backward`` (e.g. its
    ``backward_linear``, to differentiate its pre-activation).

    Shapes:
        x: (N, H, W, C); returns grad_x (N, H, W, C).
    """
    layers = model.layers[: target + 1]
    outputs: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    with _gradient_mode(model):
        out = np.asarray(x, dtype=np.float32)
        for layer in layers:
            if not _skipped(layer):
                out = layer.forward(out, training=True)
            outputs[layer.name] = out
        grad = np.asarray(seed(out), dtype=out.dtype)
        for i, layer in enumerate(reversed(layers)):
            grads[layer.name] = grad
            if _skipped(layer):
                continue
            last = i == 0 and backward_last is not None
            grad = backward_last(layer, grad) if last else layer.backward(grad)  # type: ignore[misc]
    return GradientPass(outputs=outputs, grad_x=grad, grads=grads)


def class_gradient(model: Any, x: np.ndarray, class_index: int | None = None) -> tuple[GradientPass, int, np.ndarray]:
    """Gradient of one class score with respect to the input; returns (pass, class, model output).

    The score is the class's logit when the last layer ends in softmax (its pre-activation, as
    saliency and Grad-CAM use), otherwise the class's output. ``class_index=None`` takes the
    predicted class.

    Shapes:
        x: (1, H, W, C); output (1, classes).
    """
    last = model.layers[-1]
    probs = layer_outputs(model, x)[last.name]
    if probs.ndim != 2:
        raise ConfigError(f"viz: the model's output must be (N, classes), got shape {probs.shape}.")
    classes = probs.shape[1]
    if class_index is None:
        class_index = int(np.argmax(probs[0]))
    if (
        isinstance(class_index, bool)
        or not isinstance(class_index, (int, np.integer))
        or not 0 <= class_index < classes
    ):
        raise ConfigError(f"viz: `class_index` must be in [0, {classes}), got {class_index!r}.")
    activation = getattr(getattr(last, "activation", None), "name", None)
    use_logits = activation == "softmax" and hasattr(last, "backward_linear")

    def seed(out: np.ndarray) -> np.ndarray:
        grad = np.zeros_like(out)
        grad[:, class_index] = 1.0
        return grad

    def backward_logits(layer: Any, grad: np.ndarray) -> np.ndarray:
        return np.asarray(layer.backward_linear(grad))

    result = run_gradient(model, x, len(model.layers) - 1, seed, backward_last=backward_logits if use_logits else None)
    return result, int(class_index), probs
