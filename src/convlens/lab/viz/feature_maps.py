"""Feature maps: every layer's activations for one input, one grid per layer."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.errors import check_choice, check_int
from convlens.lab.viz._figure import FigureResult, new_figure, show_image
from convlens.lab.viz.activations import layer_outputs
from convlens.lab.viz.images import model_input

__all__ = ["FeatureMapsResult", "feature_maps"]


@dataclass(repr=False)
class FeatureMapsResult(FigureResult):
    """The figure, and each layer's output for the one input (name -> (H, W, C) or (units,))."""

    maps: dict[str, np.ndarray] = field(default_factory=dict)
    input: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    description: str = ""
    scale: str = "shared"


def feature_maps(
    model: Any,
    x: Any = None,
    *,
    index: int | None = None,
    image: str | os.PathLike[str] | None = None,
    scale: str = "shared",
    max_maps: int = 32,
    columns: int = 8,
    cmap: str = "viridis",
) -> FeatureMapsResult:
    """Draw every layer's output for one input: a grid of maps per conv/pool layer, bars for a small dense one.

    ``scale='shared'`` gives all maps of a layer one colour scale (brightness comparable across
    filters); ``'per-map'`` stretches each map to its own range (shapes visible in weak maps).
    The scale and the input's description are written on the figure. Flatten-like outputs with
    more than 64 values are listed but not drawn (they repeat the previous layer).

    Shapes:
        x: (H, W, C) or (1, H, W, C); maps[name]: (OH, OW, F) for 4-D outputs, (units,) for 2-D ones.
    """
    scale = check_choice(scale, "scale", ("shared", "per-map"), owner="feature_maps")
    max_maps = check_int(max_maps, "max_maps", owner="feature_maps", minimum=1)
    columns = check_int(columns, "columns", owner="feature_maps", minimum=1)
    given = model_input(model, x, index=index, image=image)
    maps = {name: out[0] for name, out in layer_outputs(model, given.x).items()}
    drawn = [name for name, arr in maps.items() if arr.ndim == 3 or arr.size <= 64]
    heights = [1.6]
    for name in drawn:
        arr = maps[name]
        rows = math.ceil(min(arr.shape[-1], max_maps) / columns) if arr.ndim == 3 else 1
        heights.append(0.9 * rows + 0.5)
    figure = new_figure(columns * 1.0 + 0.5, sum(heights))
    subfigs = np.atleast_1d(figure.subfigures(len(heights), 1, height_ratios=heights))
    head = subfigs[0]
    ax = head.subplots(1, 1)
    show_image(ax, given.x[0], cmap="gray")
    skipped = [name for name in maps if name not in drawn]
    note = f"  (not drawn: {', '.join(skipped)} - same values as the layer before)" if skipped else ""
    scale_text = "one colour scale per layer" if scale == "shared" else "each map scaled to its own range"
    head.suptitle(f"Input: {given.description}\nColour: {scale_text}{note}", fontsize=8)
    for sub, name in zip(subfigs[1:], drawn, strict=True):
        _draw_layer(sub, name, maps[name], scale, max_maps, columns, cmap)
    return FeatureMapsResult(figure=figure, maps=maps, input=given.x[0], description=given.description, scale=scale)


def _draw_layer(sub: Any, name: str, arr: np.ndarray, scale: str, max_maps: int, columns: int, cmap: str) -> None:
    if arr.ndim != 3:
        ax = sub.subplots(1, 1)
        ax.bar(np.arange(arr.size), arr, color="tab:blue")
        ax.set_xticks(np.arange(arr.size))
        ax.tick_params(labelsize=6)
        sub.suptitle(f"{name}: {arr.size} values (argmax {int(np.argmax(arr))})", fontsize=8)
        return
    count = min(arr.shape[-1], max_maps)
    rows = math.ceil(count / columns)
    axes = np.asarray(sub.subplots(rows, columns, squeeze=False)).ravel()
    lo, hi = float(arr[..., :count].min()), float(arr[..., :count].max())
    im = None
    for i, ax in enumerate(axes):
        if i >= count:
            ax.set_axis_off()
            continue
        channel = arr[..., i]
        vmin, vmax = (lo, hi) if scale == "shared" else (float(channel.min()), float(channel.max()))
        im = show_image(ax, channel, cmap=cmap, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-12)
        ax.set_title(str(i), fontsize=6, pad=1)
    if scale == "shared" and im is not None:
        bar = sub.colorbar(im, ax=list(axes), shrink=0.9, aspect=30, pad=0.01)
    else:  # each map has its own range: the bar says where its minimum and maximum sit
        from matplotlib.cm import ScalarMappable

        bar = sub.colorbar(ScalarMappable(cmap=cmap), ax=list(axes), shrink=0.9, aspect=30, pad=0.01, ticks=[0, 1])
        bar.ax.set_yticklabels(["map min", "map max"])
    bar.ax.tick_params(labelsize=6)
    shown = f"{count} of {arr.shape[-1]}" if count < arr.shape[-1] else str(count)
    extra = f", colour range [{lo:.3g}, {hi:.3g}]" if scale == "shared" else ", per-map ranges"
    sub.suptitle(f"{name}: {arr.shape[0]}x{arr.shape[1]}, {shown} maps{extra}", fontsize=8)
