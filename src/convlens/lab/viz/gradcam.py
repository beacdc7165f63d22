"""Class activation maps from the engine's own gradients: Grad-CAM and HiResCAM.

Both weigh a layer's activations ``A`` (h, w, F) by the gradient ``G = dS / dA`` of the class score
``S`` (the pre-softmax logit when the model ends in softmax, as Selvaraju et al. and Keras's Grad-CAM
example use) and keep the positive part:

- **Grad-CAM** (Selvaraju et al., 2017): ``relu(sum_k alpha_k A_k)`` with one weight per channel,
  ``alpha_k = mean over positions of G_k``.
- **HiResCAM** (Draelos & Carin, 2020): ``relu(sum_k G_k * A_k)``, position by position.

When the layer feeds global average pooling and a Dense layer, G_k is the same at every position and
the two maps are equal (Grad-CAM is then CAM). When it feeds Flatten and a Dense layer, as in the
course model, every position has its own weights, and averaging them can erase the evidence: on a
trained course model every ``alpha_k`` for the predicted class is typically negative, so Grad-CAM is zero
everywhere. HiResCAM keeps the positions apart; for Flatten -> Dense it is each position's exact share of
the logit (``sum(signed map) + bias = logit``). So HiResCAM is the default, and the figure shows both.

>>> import numpy as np
>>> activations = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])   # (2, 2, 1)
>>> gradients = np.array([[[1.0], [-1.0]], [[-1.0], [-1.0]]])  # per-position weights of a Dense head
>>> cam_maps(activations, gradients)["gradcam"].tolist()        # alpha = -0.5: everything cut by the relu
[[0.0, 0.0], [0.0, 0.0]]
>>> cam_maps(activations, gradients)["hirescam"].tolist()       # the top-left position's evidence survives
[[1.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.errors import ConfigError, check_choice
from convlens.lab.viz._figure import FigureResult, new_figure, show_image
from convlens.lab.viz.activations import class_gradient, find_layer, layer_outputs, linear_activation
from convlens.lab.viz.images import model_input

__all__ = ["METHODS", "GradCamResult", "cam_maps", "gradcam", "upsample_nearest", "zero_reason"]

#: The map kinds, default first.
METHODS = ("hirescam", "gradcam")
_TITLES = {"gradcam": "Grad-CAM", "hirescam": "HiResCAM"}


def upsample_nearest(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an (h, w) map to (height, width): output pixel i reads row i * h // height.

    Shapes:
        cam: (h, w); returns (height, width).
    """
    rows = np.arange(height) * cam.shape[0] // height
    cols = np.arange(width) * cam.shape[1] // width
    return cam[rows[:, None], cols[None, :]]


def cam_maps(activations: np.ndarray, gradients: np.ndarray) -> dict[str, np.ndarray]:
    """Both maps, signed (before the relu) and kept (after it), plus Grad-CAM's channel weights.

    Returns a dict with ``weights`` (F,), ``gradcam_signed``, ``gradcam``, ``hirescam_signed`` and
    ``hirescam`` (each (h, w)).

    Shapes:
        activations, gradients: (h, w, F).
    """
    weights = gradients.mean(axis=(0, 1))
    gradcam_signed = (activations * weights).sum(axis=-1)
    hirescam_signed = (activations * gradients).sum(axis=-1)
    return {
        "weights": weights,
        "gradcam_signed": gradcam_signed,
        "gradcam": np.maximum(gradcam_signed, 0.0),
        "hirescam_signed": hirescam_signed,
        "hirescam": np.maximum(hirescam_signed, 0.0),
    }


def zero_reason(method: str, activations: np.ndarray, gradients: np.ndarray, class_index: int) -> str:
    """Why the ``method`` map is zero everywhere, in one sentence; ``''`` when it is not.

    Shapes:
        activations, gradients: (h, w, F).
    """
    maps = cam_maps(activations, gradients)
    if maps[method].max() > 0:
        return ""
    height, width, channels = activations.shape
    if not np.any(activations):
        return "the layer's activations are all zero for this input."
    if not np.any(gradients):
        return f"the gradient of the class-{class_index} score with respect to this layer is zero everywhere."
    if method == "hirescam":
        return (
            f"every position's contribution sum_k G_k A_k to the class-{class_index} score is <= 0: "
            "no position holds evidence for this class."
        )
    positive = int((maps["weights"] > 0).sum())
    if positive == 0:
        return (
            f"all {channels} channel weights alpha_k (the gradient of the class-{class_index} score averaged over "
            f"the {height}x{width} positions) are negative, so sum_k alpha_k A_k <= 0 wherever A >= 0; "
            "a Flatten -> Dense head has different weights at each position and their mean hides where the "
            "evidence is: HiResCAM (method='hirescam') keeps them apart."
        )
    return (
        f"sum_k alpha_k A_k <= 0 at every position: {positive} of {channels} channel weights are positive, "
        "but the channels with negative weights are stronger wherever the positive ones fire."
    )


@dataclass(repr=False)
class GradCamResult(FigureResult):
    """The figure and the maps.

    Attributes:
        cam: the chosen ``method``'s map at input size (H, W), nearest-neighbour upsampled.
        cam_small: the chosen map at the layer's size (h, w).
        weights: Grad-CAM's channel weights alpha_k (F,).
        gradcam_small, hirescam_small: both maps at the layer's size (after the relu).
        signed: the chosen map before the relu (h, w): positive = evidence for the class, negative = against.
        class_index, layer, method: what was explained, where, how.
        score: the differentiated class score (the logit when the model ends in softmax).
        zero_reasons: method -> why its map is all zero (only for maps that are).
    """

    cam: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    cam_small: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    class_index: int = 0
    layer: str = ""
    method: str = "hirescam"
    gradcam_small: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    hirescam_small: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    signed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    score: float = 0.0
    zero_reasons: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: the method, class, layer and the map's range (or why it is zero)."""
        name = _TITLES[self.method]
        text = f"{name} of class {self.class_index} on '{self.layer}' (score {self.score:.4g}): "
        reason = self.zero_reasons.get(self.method)
        if reason:
            return text + "all zero: " + reason
        return text + f"min {float(self.cam_small.min()):.4g}, max {float(self.cam_small.max()):.4g}"


def _score(model: Any, x: np.ndarray, class_index: int) -> float:
    """The differentiated score: the last layer's pre-activation when it is a softmax, else the output."""
    last = model.layers[-1]
    if getattr(getattr(last, "activation", None), "name", None) == "softmax":
        with linear_activation(last):
            return float(layer_outputs(model, x)[last.name][0, class_index])
    return float(layer_outputs(model, x)[last.name][0, class_index])


def gradcam(
    model: Any,
    x: Any = None,
    *,
    index: int | None = None,
    image: str | os.PathLike[str] | None = None,
    layer: str | int | None = None,
    class_index: int | None = None,
    method: str = "hirescam",
) -> GradCamResult:
    """Where the evidence for a class is: HiResCAM (default) or Grad-CAM on a layer with a 4-D output.

    ``layer`` defaults to the last layer with a 4-D output (e.g. the last conv or pool layer);
    ``class_index=None`` explains the predicted class. The figure shows the input, both maps (a map
    that is zero everywhere says why) and the chosen map over the input.

    Shapes:
        A: (h, w, F) the layer's output; cam_small: (h, w); cam: (H, W).
    """
    method = check_choice(method, "method", METHODS, owner="gradcam")
    given = model_input(model, x, index=index, image=image)
    result, chosen, output = class_gradient(model, given.x, class_index)
    spatial = [i for i, lay in enumerate(model.layers) if result.outputs[lay.name].ndim == 4]
    if not spatial:
        raise ConfigError(f"gradcam: the model has no layer with a 4-D (N, H, W, C) output: {model!r}.")
    chosen_layer = model.layers[spatial[-1] if layer is None else find_layer(model, layer)]
    if result.outputs[chosen_layer.name].ndim != 4:
        names = ", ".join(repr(model.layers[i].name) for i in spatial)
        raise ConfigError(f"gradcam: `layer` must have a 4-D output (one of {names}), got '{chosen_layer.name}'.")
    activations = result.outputs[chosen_layer.name][0]
    gradients = result.grads[chosen_layer.name][0]
    maps = cam_maps(activations, gradients)
    reasons = {m: zero_reason(m, activations, gradients, chosen) for m in METHODS}
    height, width = given.x.shape[1:3]
    out = GradCamResult(
        figure=None,
        cam=upsample_nearest(maps[method], height, width),
        cam_small=maps[method],
        weights=maps["weights"],
        class_index=chosen,
        layer=chosen_layer.name,
        method=method,
        gradcam_small=maps["gradcam"],
        hirescam_small=maps["hirescam"],
        signed=maps[f"{method}_signed"],
        score=_score(model, given.x, chosen),
        zero_reasons={m: r for m, r in reasons.items() if r},
    )
    out.figure = _draw(out, given.x[0], float(output[0, chosen]), given.description)
    return out


def _draw(result: GradCamResult, x: np.ndarray, probability: float, description: str) -> Any:
    figure = new_figure(11.0, 3.9)
    axes = figure.subplots(1, 4)
    show_image(axes[0], x)
    axes[0].set_title("input", fontsize=8)
    shape = f"{result.cam_small.shape[0]}x{result.cam_small.shape[1]}"
    formulas = {"gradcam": "relu(sum_k alpha_k A_k)", "hirescam": "relu(sum_k G_k * A_k)"}
    for ax, method in zip(axes[1:3], ("gradcam", "hirescam"), strict=True):
        small = result.gradcam_small if method == "gradcam" else result.hirescam_small
        top = float(small.max())
        im = ax.imshow(small, cmap="jet", vmin=0.0, vmax=top if top > 0 else 1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        mark = " (shown)" if method == result.method else ""
        ax.set_title(f"{_TITLES[method]}{mark} on '{result.layer}' ({shape})\n{formulas[method]}", fontsize=8)
        bar = figure.colorbar(im, ax=ax, shrink=0.75)
        bar.ax.tick_params(labelsize=6)
        if method in result.zero_reasons:
            ax.text(0.5, 0.5, "all zero\n(see below)", transform=ax.transAxes, ha="center", va="center",
                    fontsize=9, color="white", bbox={"facecolor": "black", "alpha": 0.6})  # fmt: skip
    show_image(axes[3], x)
    if result.method not in result.zero_reasons:  # zero cells stay see-through
        axes[3].imshow(np.ma.masked_less_equal(result.cam, 0.0), cmap="jet", alpha=0.55, interpolation="nearest",
                       vmin=0.0, vmax=float(result.cam.max()))  # fmt: skip
    axes[3].set_title(f"{_TITLES[result.method]} over the input\n(nearest upsampling)", fontsize=8)
    figure.suptitle(
        f"{_TITLES[result.method]} of class {result.class_index} (logit {result.score:.3g}, probability "
        f"{probability:.3g}); input: {description}",
        fontsize=9,
    )
    notes = [
        "S = class score (pre-softmax logit), A_k = channel k of the layer, G_k = dS/dA_k, "
        "alpha_k = mean of G_k over positions. Grad-CAM: Selvaraju et al. 2017; HiResCAM: Draelos & Carin 2020.",
        *(f"{_TITLES[m]} is all zero: {r}" for m, r in result.zero_reasons.items()),
    ]
    text = "\n".join(textwrap.fill(n, 190) for n in notes)
    figure.get_layout_engine().set(rect=(0, 0.05 + 0.035 * text.count("\n"), 1, 0.95 - 0.035 * text.count("\n")))
    figure.text(0.01, 0.01, text, fontsize=7, va="bottom", ha="left")
    return figure
