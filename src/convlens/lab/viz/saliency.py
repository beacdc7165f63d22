"""Saliency (|d score / d input|) and Grad-CAM for one prediction, from the engine's own gradients.

The score is the class's logit when the model ends in softmax, otherwise its output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.errors import ConfigError
from convlens.lab.viz._figure import FigureResult, new_figure, show_image
from convlens.lab.viz.activations import class_gradient, find_layer
from convlens.lab.viz.images import model_input

__all__ = ["GradCamResult", "SaliencyResult", "gradcam", "saliency", "upsample_nearest"]


@dataclass
class SaliencyResult(FigureResult):
    """The figure; ``saliency`` (H, W) = max over channels of |gradient|; ``gradient`` (H, W, C); the class."""

    saliency: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    gradient: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    class_index: int = 0
    output: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def saliency(
    model: Any,
    x: Any = None,
    *,
    index: int | None = None,
    image: str | os.PathLike[str] | None = None,
    class_index: int | None = None,
) -> SaliencyResult:
    """Which pixels change the class score most: |d score / d x|, maximum over channels.

    ``class_index=None`` explains the predicted class.

    Shapes:
        x: (H, W, C); saliency: (H, W); gradient: (H, W, C).
    """
    given = model_input(model, x, index=index, image=image)
    result, chosen, output = class_gradient(model, given.x, class_index)
    gradient = result.grad_x[0]
    sal = np.abs(gradient).max(axis=-1)
    figure = new_figure(8.0, 3.2)
    axes = figure.subplots(1, 3)
    show_image(axes[0], given.x[0])
    axes[0].set_title("input", fontsize=8)
    im = axes[1].imshow(sal, cmap="hot", interpolation="nearest")
    axes[1].set_axis_off()
    axes[1].set_title("|d score / d pixel|", fontsize=8)
    figure.colorbar(im, ax=axes[1], shrink=0.8)
    show_image(axes[2], given.x[0])
    axes[2].imshow(sal, cmap="hot", alpha=0.6, interpolation="nearest")
    axes[2].set_title("overlay", fontsize=8)
    figure.suptitle(
        f"Saliency of class {chosen} (output {output[0, chosen]:.3g}, predicted {int(np.argmax(output[0]))}); "
        f"input: {given.description}",
        fontsize=8,
    )
    return SaliencyResult(figure=figure, saliency=sal, gradient=gradient, class_index=chosen, output=output[0])


def upsample_nearest(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an (h, w) map to (height, width): output pixel i reads row i * h // height.

    Shapes:
        cam: (h, w); returns (height, width).
    """
    rows = np.arange(height) * cam.shape[0] // height
    cols = np.arange(width) * cam.shape[1] // width
    return cam[rows[:, None], cols[None, :]]


@dataclass
class GradCamResult(FigureResult):
    """The figure; ``cam`` at input size (H, W), ``cam_small`` at the layer's size, channel ``weights`` (F,)."""

    cam: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    cam_small: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    class_index: int = 0
    layer: str = ""


def gradcam(
    model: Any,
    x: Any = None,
    *,
    index: int | None = None,
    image: str | os.PathLike[str] | None = None,
    layer: str | int | None = None,
    class_index: int | None = None,
) -> GradCamResult:
    """Grad-CAM: relu(sum_k alpha_k A_k) with alpha_k = mean over positions of d score / d A_k.

    ``layer`` is a layer with a 4-D output (default: the last one, e.g. the last conv or pool layer).

    Shapes:
        A: (h, w, F) the layer's output; cam_small: (h, w); cam: (H, W) (nearest-neighbour upsampled).
    """
    given = model_input(model, x, index=index, image=image)
    result, chosen, output = class_gradient(model, given.x, class_index)
    spatial = [i for i, lay in enumerate(model.layers) if result.outputs[lay.name].ndim == 4]
    if not spatial:
        raise ConfigError(f"gradcam: the model has no layer with a 4-D (N, H, W, C) output: {model!r}.")
    chosen_layer = model.layers[spatial[-1] if layer is None else find_layer(model, layer)]
    maps = result.outputs[chosen_layer.name]
    if maps.ndim != 4:
        names = ", ".join(repr(model.layers[i].name) for i in spatial)
        raise ConfigError(f"gradcam: `layer` must have a 4-D output (one of {names}), got '{chosen_layer.name}'.")
    grads = result.grads[chosen_layer.name][0]
    weights = grads.mean(axis=(0, 1))
    cam_small = np.maximum((maps[0] * weights).sum(axis=-1), 0.0)
    height, width = given.x.shape[1:3]
    cam = upsample_nearest(cam_small, height, width)
    figure = new_figure(8.0, 3.2)
    axes = figure.subplots(1, 3)
    show_image(axes[0], given.x[0])
    axes[0].set_title("input", fontsize=8)
    im = axes[1].imshow(cam_small, cmap="jet", interpolation="nearest")
    axes[1].set_axis_off()
    axes[1].set_title(f"Grad-CAM on '{chosen_layer.name}' ({cam_small.shape[0]}x{cam_small.shape[1]})", fontsize=8)
    figure.colorbar(im, ax=axes[1], shrink=0.8)
    show_image(axes[2], given.x[0])
    axes[2].imshow(cam, cmap="jet", alpha=0.5, interpolation="nearest")
    axes[2].set_title("overlay (nearest upsampling)", fontsize=8)
    figure.suptitle(
        f"Grad-CAM of class {chosen} (output {output[0, chosen]:.3g}); input: {given.description}", fontsize=8
    )
    return GradCamResult(
        figure=figure, cam=cam, cam_small=cam_small, weights=weights, class_index=chosen, layer=chosen_layer.name
    )
