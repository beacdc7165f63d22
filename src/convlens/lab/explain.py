"""Step-by-step traces of a convolution or a pooling on one small 2-D input.

A trace records, for every output position in row-major order, the window the op reads, the
element-wise products (or the max / mean) and the value written, so a terminal, an animation or a
web page can replay the sliding window. All geometry comes from
:class:`convlens.geometry.WindowGeometry` and the windows from :mod:`convlens.ops.windows`, the
same helpers the engine's ops use; tests check that a trace's final map equals ``conv2d`` /
``max_pool2d`` / ``avg_pool2d``.

>>> t = convolution([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
>>> len(t.steps), t.steps[0].products.tolist(), t.steps[0].total
(4, [[1.0, 0.0], [0.0, -5.0]], -4.0)
>>> t.output.tolist()
[[-4.0, -4.0], [-4.0, -4.0]]
>>> p = pooling([[1, 3], [4, 2]], pool_size=2)
>>> p.steps[0].value, p.steps[0].argmax
(4.0, (1, 0))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens import extensions
from convlens.errors import ConfigError, check_choice, check_float
from convlens.geometry import WindowGeometry
from convlens.lab.kernels import MAX_INPUT_CELLS, as_grid, get_kernel
from convlens.ops.windows import pad, window_view

__all__ = [
    "CELL_INPUT",
    "CELL_INSERTED",
    "CELL_PAD",
    "ConvStep",
    "ConvTrace",
    "PoolStep",
    "PoolTrace",
    "convolution",
    "pooling",
]

#: Kinds of cell in a trace's padded grid (``trace.cells``).
CELL_INPUT, CELL_PAD, CELL_INSERTED = 0, 1, 2


def json_grid(a: np.ndarray) -> list[Any]:
    """Nested lists for JSON: floats, ``None`` for NaN (a cell not written yet, or padding)."""
    a = np.asarray(a, dtype=np.float64)
    if not np.isnan(a).any():
        return a.tolist()  # type: ignore[no-any-return]  # the common case, without a Python loop per value
    return [json_grid(r) for r in a] if a.ndim > 1 else [None if np.isnan(v) else float(v) for v in a]


def _partial(output: np.ndarray, position: int) -> np.ndarray:
    """The map after writing output cells ``0..position`` (row-major); later cells are NaN."""
    flat = np.full(output.size, np.nan)
    flat[: position + 1] = output.reshape(-1)[: position + 1]
    return flat.reshape(output.shape)


@dataclass(frozen=True)
class ConvStep:
    """One output position of a convolution.

    Attributes:
        position: row-major number of the step (0-based).
        index: output cell ``(row, col)``.
        start_padded: window top-left in padded-grid coordinates.
        start_input: window top-left in input coordinates (negative: inside the top/left padding).
        window: (KH, KW) values read (dilated taps only; padding reads 0).
        real: (KH, KW) bool, True where the tap lies inside the input (False: padding / inserted zero).
        products: (KH, KW) ``window * kernel``.
        total: ``products.sum() + bias``, the value written to ``index``.
        feature_map: (OH, OW) the map after this step (NaN: not written yet).
    """

    position: int
    index: tuple[int, int]
    start_padded: tuple[int, int]
    start_input: tuple[int, int]
    window: np.ndarray
    real: np.ndarray
    products: np.ndarray
    total: float
    _output: np.ndarray = field(repr=False)

    @property
    def feature_map(self) -> np.ndarray:
        """(OH, OW) feature map after this step; NaN where not yet written."""
        return _partial(self._output, self.position)

    def to_dict(self, include_map: bool = True) -> dict[str, Any]:
        """JSON-ready dict of the step."""
        out: dict[str, Any] = {
            "position": self.position,
            "index": list(self.index),
            "start_padded": list(self.start_padded),
            "start_input": list(self.start_input),
            "window": json_grid(self.window),
            "real": self.real.tolist(),
            "products": json_grid(self.products),
            "total": self.total,
        }
        if include_map:
            out["feature_map"] = json_grid(self.feature_map)
        return out


@dataclass(frozen=True)
class ConvTrace:
    """A convolution replayed position by position (single channel, cross-correlation as in CNNs).

    Attributes:
        geometry: the window geometry (pads, output size, strides, dilation).
        input: (H, W) the input.
        padded: (H + PT + PB, W + PL + PR) the input with its zero border.
        cells: same shape as ``padded``: :data:`CELL_INPUT`, :data:`CELL_PAD` or :data:`CELL_INSERTED`.
        kernel: (KH, KW).
        bias: added to every sum.
        steps: one :class:`ConvStep` per output position, row-major (OH * OW of them).
        output: (OH, OW) the final feature map.
        source: where the input came from (free text, for display).
    """

    geometry: WindowGeometry
    input: np.ndarray
    padded: np.ndarray
    cells: np.ndarray
    kernel: np.ndarray
    bias: float
    steps: list[ConvStep]
    output: np.ndarray
    source: str = ""
    kind: str = "conv"

    def to_dict(self, include_maps: bool = True) -> dict[str, Any]:
        """JSON-ready dict (the web page renders it); NaN becomes ``None``."""
        return {
            "kind": self.kind,
            "geometry": _geometry_dict(self.geometry),
            "input": json_grid(self.input),
            "padded": json_grid(self.padded),
            "cells": self.cells.tolist(),
            "kernel": json_grid(self.kernel),
            "bias": self.bias,
            "output": json_grid(self.output),
            "source": self.source,
            "steps": [s.to_dict(include_maps) for s in self.steps],
        }

    def __repr__(self) -> str:
        return _short_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter: the stage with play/step controls, a GIF, the step table (:mod:`convlens.lab.explain_html`,
        which renders traces and so sits above this module: it is reached as an extension point)."""
        return str(extensions.provider("explain.html")(self))


@dataclass(frozen=True)
class PoolStep:
    """One output position of a pooling.

    Attributes:
        position, index, start_padded, start_input: as in :class:`ConvStep`.
        window: (KH, KW) values read, NaN on padding.
        real: (KH, KW) bool, True inside the input.
        value: the max, or the mean of the real cells.
        argmax: input coordinates of the first maximum in row-major window order (max pooling; padding
            never wins), else None.
        count: number of real cells (the 'same' average divides by it).
    """

    position: int
    index: tuple[int, int]
    start_padded: tuple[int, int]
    start_input: tuple[int, int]
    window: np.ndarray
    real: np.ndarray
    value: float
    argmax: tuple[int, int] | None
    count: int
    _output: np.ndarray = field(repr=False)

    @property
    def feature_map(self) -> np.ndarray:
        """(OH, OW) pooled map after this step; NaN where not yet written."""
        return _partial(self._output, self.position)

    def to_dict(self, include_map: bool = True) -> dict[str, Any]:
        """JSON-ready dict of the step."""
        out: dict[str, Any] = {
            "position": self.position,
            "index": list(self.index),
            "start_padded": list(self.start_padded),
            "start_input": list(self.start_input),
            "window": json_grid(self.window),
            "real": self.real.tolist(),
            "value": self.value,
            "argmax": None if self.argmax is None else list(self.argmax),
            "count": self.count,
        }
        if include_map:
            out["feature_map"] = json_grid(self.feature_map)
        return out


@dataclass(frozen=True)
class PoolTrace:
    """A max or average pooling replayed position by position (fields as :class:`ConvTrace`)."""

    geometry: WindowGeometry
    input: np.ndarray
    padded: np.ndarray
    cells: np.ndarray
    pool: str
    steps: list[PoolStep]
    output: np.ndarray
    source: str = ""
    kind: str = "pool"

    def to_dict(self, include_maps: bool = True) -> dict[str, Any]:
        """JSON-ready dict; NaN (padding in a window, unwritten cells) becomes ``None``."""
        return {
            "kind": self.kind,
            "pool": self.pool,
            "geometry": _geometry_dict(self.geometry),
            "input": json_grid(self.input),
            "padded": json_grid(self.padded),
            "cells": self.cells.tolist(),
            "output": json_grid(self.output),
            "source": self.source,
            "steps": [s.to_dict(include_maps) for s in self.steps],
        }

    def __repr__(self) -> str:
        return _short_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter: the stage with play/step controls, a GIF, the step table (:mod:`convlens.lab.explain_html`,
        which renders traces and so sits above this module: it is reached as an extension point)."""
        return str(extensions.provider("explain.html")(self))


def _short_repr(trace: ConvTrace | PoolTrace) -> str:
    """One line instead of a dataclass dump of every array."""
    g = trace.geometry
    what = "convolution" if isinstance(trace, ConvTrace) else f"{trace.pool} pooling"
    size = "x".join(str(v) for v in g.input_size)
    window = "x".join(str(v) for v in g.kernel_size)
    out = "x".join(str(v) for v in g.output_size)
    return (
        f"<{type(trace).__name__}: {what}, input {size}, window {window}, strides {g.strides}, padding "
        f"{g.padding!r} {g.pads}, output {out}, {len(trace.steps)} steps; .steps, .output, .to_dict(); "
        "render_text(trace) prints every step>"
    )


def _geometry_dict(g: WindowGeometry) -> dict[str, Any]:
    return {
        "input_size": list(g.input_size),
        "kernel_size": list(g.kernel_size),
        "strides": list(g.strides),
        "dilation_rate": list(g.dilation_rate),
        "padding": g.padding,
        "pads": [list(p) for p in g.pads],
        "output_size": list(g.output_size),
        "extent": list(g.extent),
    }


def _windows(grid: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    """(OH, OW, KH, KW) windows of an already padded 2-D grid (the engine's window view)."""
    return window_view(grid[None, :, :, None], geometry)[0, :, :, :, :, 0]


def _padded(grid: np.ndarray, geometry: WindowGeometry, value: float) -> tuple[np.ndarray, np.ndarray]:
    padded = pad(grid[None, :, :, None], geometry, value)[0, :, :, 0].copy()
    cells = pad(np.zeros((1, *grid.shape, 1), np.int8), geometry, CELL_PAD)[0, :, :, 0].copy()
    return padded, cells


def _starts(geometry: WindowGeometry, index: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    padded = geometry.window_start(index, padded=True)
    start = geometry.window_start(index)
    return (int(padded[0]), int(padded[1])), (int(start[0]), int(start[1]))


def _grid_input(input: Any, seed: int) -> tuple[np.ndarray, str]:
    if isinstance(input, str):
        from convlens.lab.kernels import describe_input

        return describe_input(input, seed=seed)
    return as_grid(input, "input"), ""


def check_traceable(geometry: WindowGeometry, owner: str) -> None:
    """Refuse a trace too large to step through: one step per output position, one grid cell per padded cell.

    Raises:
        ConfigError: naming the output and padded sizes.
    """
    steps = int(np.prod(geometry.output_size, dtype=object))
    cells = int(np.prod(geometry.padded_size, dtype=object))
    if steps > MAX_INPUT_CELLS or cells > 16 * MAX_INPUT_CELLS:
        shown = "x".join(str(v) for v in geometry.output_size)
        padded = "x".join(str(v) for v in geometry.padded_size)
        raise ConfigError(
            f"{owner}: a {shown} output over a {padded} padded grid is too large to step through; at most "
            f"{MAX_INPUT_CELLS:,} steps and {16 * MAX_INPUT_CELLS:,} grid cells (use less padding or a smaller input)."
        )


def conv_trace(
    geometry: WindowGeometry,
    x: np.ndarray,
    padded: np.ndarray,
    cells: np.ndarray,
    kernel: np.ndarray,
    bias: float = 0.0,
    source: str = "",
) -> ConvTrace:
    """Build a :class:`ConvTrace` from an already padded grid (used by the backward explainer too).

    Shapes:
        x: (H, W); padded, cells: geometry.padded_size; kernel: geometry.kernel_size; output: geometry.output_size.

    Raises:
        ConfigError: for more than 65,536 steps (see :func:`check_traceable`).
    """
    windows = _windows(padded, geometry)
    real = _windows(cells, geometry) == CELL_INPUT
    products = windows * kernel
    output = products.sum(axis=(2, 3)) + bias
    steps = []
    oh, ow = geometry.output_size
    for position in range(oh * ow):
        index = divmod(position, ow)
        start_padded, start_input = _starts(geometry, index)
        steps.append(
            ConvStep(
                position,
                index,
                start_padded,
                start_input,
                windows[index].copy(),
                real[index].copy(),
                products[index].copy(),
                float(output[index]),
                output,
            )
        )
    return ConvTrace(geometry, x, padded, cells, kernel, float(bias), steps, output, source)


def convolution(
    input: Any,
    kernel: Any,
    *,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
    bias: float = 0.0,
    seed: int = 0,
) -> ConvTrace:
    """Trace a single-channel 2-D convolution (cross-correlation, as ``Conv2D``) step by step.

    Args:
        input: (H, W) numbers, or a spec for :func:`convlens.lab.kernels.make_input` (``"5x5"``, ``"ramp"``,
            ``"digit:0"``, an image path).
        kernel: (KH, KW) numbers, a name (``"sobel_x"``) or ``"1,0,-1;2,0,-2;1,0,-1"``.
        strides: int or (SH, SW).
        padding: 'valid', 'same', an int, (PH, PW) or ((PT, PB), (PL, PR)).
        dilation_rate: int or (DH, DW).
        bias: added to every sum.
        seed: seed of a random generated input.

    Shapes:
        input: (H, W); kernel: (KH, KW); output: (OH, OW),
        OH = (H + PT + PB - ((KH - 1) * DH + 1)) // SH + 1 (see :class:`WindowGeometry`).
    """
    x, source = _grid_input(input, seed)
    k = get_kernel(kernel)
    bias = check_float(bias, "bias", owner="explain.convolution")
    geometry = WindowGeometry.resolve(x.shape, k.shape, strides, padding, dilation_rate, owner="explain.convolution")
    check_traceable(geometry, "explain.convolution")
    padded, cells = _padded(x, geometry, 0.0)
    return conv_trace(geometry, x, padded, cells, k, bias, source)


def pooling(
    input: Any,
    *,
    pool_size: Any = 2,
    strides: Any = None,
    padding: str = "valid",
    kind: str = "max",
    seed: int = 0,
) -> PoolTrace:
    """Trace a 2-D max or average pooling step by step (Keras semantics, as the engine).

    Padded cells never win a max; 'same' averaging divides by the number of real cells.

    Args:
        input: (H, W) numbers or an input spec (see :func:`convolution`).
        pool_size: int or (KH, KW).
        strides: int or (SH, SW); None means ``pool_size`` (Keras).
        padding: 'valid' or 'same'.
        kind: 'max' or 'avg'.
        seed: seed of a random generated input.

    Shapes:
        input: (H, W); output: (OH, OW); 'valid': OH = (H - KH) // SH + 1; 'same': OH = ceil(H / SH).
    """
    owner = "explain.pooling"
    kind = check_choice(kind, "kind", ("max", "avg"), owner=owner)
    padding = check_choice(padding, "padding", ("valid", "same"), owner=owner)
    x, source = _grid_input(input, seed)
    stride = pool_size if strides is None else strides
    geometry = WindowGeometry.resolve(x.shape, pool_size, stride, padding, owner=owner)
    check_traceable(geometry, owner)
    padded, cells = _padded(x, geometry, np.nan)
    windows = _windows(padded, geometry)
    real = _windows(cells, geometry) == CELL_INPUT
    counts = real.sum(axis=(2, 3))
    if kind == "max":
        masked = np.where(real, windows, -np.inf)
        flat = masked.reshape(*masked.shape[:2], -1)
        first = flat.argmax(axis=2)  # argmax returns the first maximum: row-major tie-break, as the engine
        output = np.take_along_axis(flat, first[..., None], axis=2)[..., 0]
    else:
        output = np.where(real, windows, 0.0).sum(axis=(2, 3)) / counts
    steps = []
    oh, ow = geometry.output_size
    kw = geometry.kernel_size[1]
    for position in range(oh * ow):
        index = divmod(position, ow)
        start_padded, start_input = _starts(geometry, index)
        argmax = None
        if kind == "max":
            a, b = divmod(int(first[index]), kw)
            argmax = (start_input[0] + a, start_input[1] + b)
        steps.append(
            PoolStep(
                position,
                index,
                start_padded,
                start_input,
                windows[index].copy(),
                real[index].copy(),
                float(output[index]),
                argmax,
                int(counts[index]),
                output,
            )
        )
    return PoolTrace(geometry, x, padded, cells, kind, steps, output, source)
