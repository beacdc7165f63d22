"""Saliency (|d score / d input|) for one prediction, from the engine's own gradients.

The score is the class's logit when the model ends in softmax, otherwise its output.
Grad-CAM and HiResCAM live in :mod:`convlens.lab.viz.gradcam` (re-exported here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.lab.viz._figure import FigureResult, new_figure, show_image
from convlens.lab.viz.activations import class_gradient
from convlens.lab.viz.gradcam import GradCamResult, gradcam, upsample_nearest
from convlens.lab.viz.images import model_input

__all__ = ["GradCamResult", "SaliencyResult", "gradcam", "saliency", "upsample_nearest"]


@dataclass(repr=False)
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
