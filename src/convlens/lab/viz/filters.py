"""Filters: the learned kernels of every conv layer, as image grids."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.errors import ConfigError, check_int
from convlens.lab.viz._figure import FigureResult, new_figure, show_image

__all__ = ["FiltersResult", "filters"]


@dataclass(repr=False)
class FiltersResult(FigureResult):
    """The figure; per conv layer its kernel (KH, KW, C, F), the grid ``layout`` (rows, cols) and tile count."""

    kernels: dict[str, np.ndarray] = field(default_factory=dict)
    layout: dict[str, tuple[int, int]] = field(default_factory=dict)
    tiles: dict[str, int] = field(default_factory=dict)
    rgb: dict[str, bool] = field(default_factory=dict)


def _conv_layers(model: Any, layers: Any) -> list[Any]:
    convs = [layer for layer in model.layers if "kernel" in layer.params and layer.params["kernel"].ndim == 4]
    if layers is not None:
        wanted = [layers] if isinstance(layers, str) else list(layers)
        names = [layer.name for layer in convs]
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise ConfigError(f"filters: `layers` must name conv layers ({', '.join(names)}), got {unknown}.")
        convs = [layer for layer in convs if layer.name in wanted]
    if not convs:
        raise ConfigError(f"filters: the model has no conv layer with a (KH, KW, C, F) kernel: {model!r}.")
    return convs


def filter_layout(channels: int, count: int, *, columns: int, max_channels: int, rgb: bool) -> tuple[int, int]:
    """Grid (rows, cols) for ``count`` filters with ``channels`` input channels.

    One channel or RGB: ``count`` tiles wrapped in rows of ``columns``. Otherwise one row per input
    channel (at most ``max_channels``), one column per filter.
    """
    if channels == 1 or rgb:
        cols = min(count, columns)
        return math.ceil(count / cols), cols
    return min(channels, max_channels), count


def filters(
    model: Any,
    layers: str | list[str] | None = None,
    *,
    max_filters: int = 32,
    max_channels: int = 8,
    columns: int = 8,
    rgb: bool = True,
    cmap: str = "RdBu_r",
) -> FiltersResult:
    """Draw each conv layer's kernels: one tile per (input channel, filter), or one RGB tile per filter when C == 3.

    Single-channel tiles share a colour scale symmetric about zero (red positive, blue negative);
    RGB tiles are each stretched to [0, 1].

    Shapes:
        kernels[name]: (KH, KW, C, F); a grid of rows x cols tiles per layer (see :func:`filter_layout`).
    """
    max_filters = check_int(max_filters, "max_filters", owner="filters", minimum=1)
    max_channels = check_int(max_channels, "max_channels", owner="filters", minimum=1)
    columns = check_int(columns, "columns", owner="filters", minimum=1)
    convs = _conv_layers(model, layers)
    result = FiltersResult(figure=None)
    plans = []
    for layer in convs:
        kernel = np.asarray(layer.params["kernel"])
        channels, count = kernel.shape[2], min(kernel.shape[3], max_filters)
        is_rgb = bool(rgb and channels == 3)
        rows, cols = filter_layout(channels, count, columns=columns, max_channels=max_channels, rgb=is_rgb)
        result.kernels[layer.name] = kernel
        result.layout[layer.name] = (rows, cols)
        result.rgb[layer.name] = is_rgb
        result.tiles[layer.name] = count if channels == 1 or is_rgb else rows * cols
        plans.append((layer.name, kernel, count, rows, cols, is_rgb))
    heights = [0.75 * rows + 0.5 for _, _, _, rows, _, _ in plans]
    width = max(cols for *_, cols, _ in plans) * 0.75 + 0.5
    figure = new_figure(width, sum(heights))
    subfigs = np.atleast_1d(figure.subfigures(len(plans), 1, height_ratios=heights))
    for sub, (name, kernel, count, rows, cols, is_rgb) in zip(subfigs, plans, strict=True):
        axes = np.asarray(sub.subplots(rows, cols, squeeze=False))
        bound = float(np.abs(kernel[..., :count]).max()) or 1.0
        im = None
        for r in range(rows):
            for c in range(cols):
                ax = axes[r, c]
                if kernel.shape[2] == 1 or is_rgb:
                    f = r * cols + c
                    if f >= count:
                        ax.set_axis_off()
                        continue
                    tile = kernel[:, :, :, f]
                    if is_rgb:
                        span = float(tile.max() - tile.min()) or 1.0
                        show_image(ax, (tile - tile.min()) / span)
                    else:
                        im = show_image(ax, tile[..., 0], cmap=cmap, vmin=-bound, vmax=bound)
                    ax.set_title(str(f), fontsize=6, pad=1)
                else:
                    im = show_image(ax, kernel[:, :, r, c], cmap=cmap, vmin=-bound, vmax=bound)
                    if r == 0:
                        ax.set_title(str(c), fontsize=6, pad=1)
                    if c == 0:
                        ax.set_ylabel(f"in {r}", fontsize=6)
        if im is not None:
            bar = sub.colorbar(im, ax=list(axes.ravel()), shrink=0.9, aspect=30, pad=0.01)
            bar.ax.tick_params(labelsize=6)
            bar.set_label("weight (red +, blue -)", fontsize=6)
        kind = "RGB per filter" if is_rgb else f"colour scale [-{bound:.3g}, {bound:.3g}]"
        layout = "" if kernel.shape[2] == 1 or is_rgb else " (rows: input channels, columns: filters)"
        sub.suptitle(
            f"{name}: kernel {'x'.join(str(s) for s in kernel.shape)}, {rows}x{cols} grid{layout}, {kind}", fontsize=8
        )
    result.figure = figure
    return result
