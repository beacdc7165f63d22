"""Translation equivariance, shown: shift the input, the conv maps shift with it, the dense output does not.

A conv (and a pool whose stride divides the shift) computes the same numbers at the moved place, so
away from the borders the shifted input's map equals the original map moved by shift / stride,
exactly. The dense layer has one weight per position, so its output simply changes.
"""

from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.errors import ConfigError
from convlens.lab.viz._figure import FigureResult, new_figure, show_image
from convlens.lab.viz.activations import layer_outputs
from convlens.lab.viz.images import model_input

__all__ = ["EquivarianceResult", "equivariance", "shift_image"]


def shift_image(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move an (N, H, W, C) batch down by ``dy`` and right by ``dx`` pixels (negative: up/left), zero-filled.

    Shapes:
        x: (N, H, W, C); returns (N, H, W, C).
    """
    out = np.zeros_like(x)
    height, width = x.shape[1:3]
    src_y, dst_y = slice(max(-dy, 0), height - max(dy, 0)), slice(max(dy, 0), height - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), width - max(dx, 0)), slice(max(dx, 0), width - max(-dx, 0))
    out[:, dst_y, dst_x] = x[:, src_y, src_x]
    return out


def _jumps_and_margins(model: Any) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    """Per layer: cumulative stride (jump) and a safe border margin in output pixels, per axis."""
    jump = [1, 1]
    field_size = [1, 1]
    result = {}
    for layer in model.layers:
        window = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        strides = getattr(layer, "strides", None)
        if window is not None and strides is not None and len(window) == 2:
            dilation = getattr(layer, "dilation_rate", (1, 1))
            for a in (0, 1):
                field_size[a] += (dilation[a] * (window[a] - 1)) * jump[a]
                jump[a] *= strides[a]
        # half a receptive field (in this layer's pixels) reaches the padding; one more for safety
        margins = tuple(math.ceil((field_size[a] - 1) / 2 / jump[a]) + 1 for a in (0, 1))
        result[layer.name] = ((jump[0], jump[1]), (margins[0], margins[1]))
    return result


@dataclass(repr=False)
class EquivarianceResult(FigureResult):
    """The figure and the numbers behind it.

    Attributes:
        shift: (dy, dx) applied to the input.
        map_shift: per 4-D layer, the shift its map should show (dy / SH, dx / SW), None when not whole.
        interior_max_diff: per 4-D layer, max |shifted map - moved original map| over the interior (0.0: exact).
        interiors: per compared layer, the (rows, cols) slices of that interior.
        jumps: per 4-D layer, its stride relative to the input ('SHxSW').
        maps: per 4-D layer, (original map, shifted input's map), each (OH, OW, F).
        output_before, output_after: the model's output for the original and the shifted input.
        output_change: max |output_after - output_before|.
    """

    shift: tuple[int, int] = (0, 0)
    map_shift: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    interior_max_diff: dict[str, float] = field(default_factory=dict)
    maps: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    output_before: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    output_after: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    output_change: float = 0.0
    interiors: dict[str, tuple[slice, slice]] = field(default_factory=dict)
    jumps: dict[str, str] = field(default_factory=dict)


def equivariance(
    model: Any,
    x: Any = None,
    *,
    index: int | None = None,
    image: str | os.PathLike[str] | None = None,
    shift: tuple[int, int] = (2, 2),
) -> EquivarianceResult:
    """Shift the input by ``shift`` = (dy, dx) pixels and compare every layer's output with the original's.

    Shapes:
        x: (H, W, C); maps[name]: ((OH, OW, F), (OH, OW, F)).
    """
    whole = isinstance(shift, (tuple, list)) and len(shift) == 2
    if not (whole and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shift)):
        raise ConfigError(f"equivariance: `shift` must be two integers (dy, dx), got {shift!r}.")
    dy, dx = int(shift[0]), int(shift[1])
    given = model_input(model, x, index=index, image=image)
    if abs(dy) >= given.x.shape[1] or abs(dx) >= given.x.shape[2]:
        raise ConfigError(f"equivariance: `shift` must be smaller than the image {given.x.shape[1:3]}, got {shift!r}.")
    moved = shift_image(given.x, dy, dx)
    before, after = layer_outputs(model, given.x), layer_outputs(model, moved)
    geometry = _jumps_and_margins(model)
    result = EquivarianceResult(figure=None, shift=(dy, dx))
    for layer in model.layers:
        a, b = before[layer.name], after[layer.name]
        if a.ndim != 4:
            continue
        (jy, jx), (my, mx) = geometry[layer.name]
        result.maps[layer.name] = (a[0], b[0])
        result.jumps[layer.name] = f"{jy}x{jx}"
        if dy % jy or dx % jx:
            result.map_shift[layer.name] = None
            result.interior_max_diff[layer.name] = float("nan")
            continue
        sy, sx = dy // jy, dx // jx
        result.map_shift[layer.name] = (sy, sx)
        expected = shift_image(a, sy, sx)[0]
        height, width = a.shape[1:3]
        rows = slice(my + max(sy, 0), height - my + min(sy, 0))
        cols = slice(mx + max(sx, 0), width - mx + min(sx, 0))
        result.interiors[layer.name] = (rows, cols)
        diff = np.abs(b[0][rows, cols] - expected[rows, cols])
        result.interior_max_diff[layer.name] = float(diff.max()) if diff.size else float("nan")
    last = model.layers[-1].name
    result.output_before, result.output_after = before[last][0], after[last][0]
    result.output_change = float(np.abs(result.output_after - result.output_before).max())
    result.figure = _draw(result, given.x[0], moved[0], given.description)
    return result


def _draw(result: EquivarianceResult, x: np.ndarray, moved: np.ndarray, description: str) -> Any:
    names = list(result.maps)
    figure = new_figure(9.5, 2.5 * (len(names) + 2))
    grid = figure.add_gridspec(len(names) + 2, 3)
    dy, dx = result.shift
    first = [figure.add_subplot(grid[0, c]) for c in range(3)]
    show_image(first[0], x)
    first[0].set_title(f"input: {description}", fontsize=8)
    show_image(first[1], moved)
    first[1].set_title(f"shifted by (dy, dx) = ({dy}, {dx})", fontsize=8)
    first[2].set_axis_off()
    first[2].text(0.0, 0.5, textwrap.fill(
        "Each row: one map of a layer for the input and for the shifted input (same colour scale). Right: "
        "|shifted-input map - original map moved by the layer's share of the shift|. Black = 0 = equal; "
        "the dashed box is the interior compared (away from the borders the padding reaches).", 48),
        fontsize=7, va="center")  # fmt: skip
    for row, name in enumerate(names, start=1):
        axes = [figure.add_subplot(grid[row, c]) for c in range(3)]
        a, b = result.maps[name]
        channel = int(np.argmax(a.reshape(-1, a.shape[-1]).max(axis=0)))
        both = np.stack([a[..., channel], b[..., channel]])
        lo, hi = float(both.min()), float(both.max())
        show_image(axes[0], a[..., channel], cmap="viridis", vmin=lo, vmax=hi)
        axes[0].set_title(f"{name} map {channel}, original", fontsize=8)
        im = show_image(axes[1], b[..., channel], cmap="viridis", vmin=lo, vmax=hi)
        axes[1].set_title(f"{name} map {channel}, shifted input", fontsize=8)
        figure.colorbar(im, ax=axes[1], shrink=0.8).ax.tick_params(labelsize=6)
        moved_by = result.map_shift[name]
        if moved_by is None:
            axes[2].set_axis_off()
            axes[2].text(0, 0.5, "not compared: the shift is not a whole\nnumber of this layer's pixels "
                         f"(stride {result.jumps[name]})", fontsize=8)  # fmt: skip
            continue
        diff = np.abs(b[..., channel] - shift_image(a[None], *moved_by)[0][..., channel])
        top = float(diff.max())
        im = show_image(axes[2], diff, cmap="magma", vmin=0.0, vmax=top if top > 0 else 1.0)
        bar = figure.colorbar(im, ax=axes[2], shrink=0.8)
        bar.ax.tick_params(labelsize=6)
        bar.set_label("|difference|, black = 0", fontsize=6)
        rows, cols = _interior(result, name, diff.shape)
        axes[2].add_patch(_box(rows, cols))
        interior = result.interior_max_diff[name]
        verdict = "black everywhere: equal" if top == 0 else f"max {top:.3g} (borders)"
        axes[2].set_title(f"|shifted - original moved {moved_by}|\ninterior max {interior:.3g}; {verdict}", fontsize=8)
    ax = figure.add_subplot(grid[-1, :])
    width = 0.4
    units = np.arange(result.output_before.size)
    ax.bar(units - width / 2, result.output_before, width, label="original input")
    ax.bar(units + width / 2, result.output_after, width, label="shifted input")
    ax.set_xticks(units)
    ax.set_xlabel("output unit (class)", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title(f"dense output: not shifted, changed by up to {result.output_change:.3g}", fontsize=8)
    figure.suptitle("Conv maps move with the input; the dense output does not", fontsize=10)
    return figure


def _interior(result: EquivarianceResult, name: str, shape: tuple[int, ...]) -> tuple[slice, slice]:
    return result.interiors.get(name, (slice(0, shape[0]), slice(0, shape[1])))


def _box(rows: slice, cols: slice) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((cols.start - 0.5, rows.start - 0.5), cols.stop - cols.start, rows.stop - rows.start,
                     fill=False, edgecolor="white", linestyle="--", linewidth=1)  # fmt: skip
