"""Sliding-window animations in the style of the convolution-arithmetic figures (Dumoulin & Visin).

:func:`animation_frames` turns a trace into plain data (one :class:`Frame` per output position, in
row-major order, no title frames): the kernel footprint (input coordinates of the taps, exactly
``geometry.taps(index)``), the output cell being written and the values written so far.
:func:`save_animation` draws them with Pillow into a GIF: left, the input with its padding (grey)
or inserted zeros (yellow) and the footprint (blue; the dilated extent outlined); then the kernel's
numbers and the current step's element-wise products (window x kernel) with their sum (for pooling:
the window, its winner in orange); right, the output with the written cells (green) and the current one
(dark green). The legend names only the kinds of cell the animation draws; ``max_steps`` keeps the
first N frames.

Supported traces: :class:`~convlens.lab.explain.ConvTrace`, :class:`~convlens.lab.explain.PoolTrace`,
:class:`~convlens.lab.explain_backward.ConvBackwardTrace` (the flipped kernel over the zero-inserted,
padded ``grad_out``) and :class:`~convlens.lab.explain_backward.PoolBackwardTrace` (gradients routed to
the arg-max cells).

>>> from convlens.lab.explain import convolution
>>> frames = animation_frames(convolution("ramp:5x5", "sobel_x"))
>>> len(frames), frames[0].footprint[:3], frames[-1].output_cell
(9, [(0, 0), (0, 1), (0, 2)], (2, 2))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConfigError, check_float, check_int
from convlens.lab.explain import CELL_INPUT, CELL_INSERTED, CELL_PAD, ConvTrace, PoolTrace
from convlens.lab.explain_backward import ConvBackwardTrace, PoolBackwardTrace
from convlens.lab.render_explain import sum_text

__all__ = ["Frame", "Scene", "animation_frames", "render_frame", "save_animation", "scene"]


@dataclass(frozen=True)
class Frame:
    """One animation frame (one output position).

    Attributes:
        position: row-major step number.
        index: the output index of the step (for backward traces: the grad_out / grad_padded index).
        footprint: input coordinates of the window taps (``geometry.taps(index)``; negative or
            >= size means padding), row-major.
        output_cell: the cell of the right grid being written.
        targets: every right-grid cell that receives a value this frame (avg-pool backward: several).
        right: the right grid so far (NaN: not written yet).
        caption: one line describing the step.
        window: (KH, KW) values the window reads (padding reads 0; pooling: NaN), or None.
        products: (KH, KW) ``window * kernel`` for convolutions, else None.
        winner: (row, col) inside the window of a max pooling's winner, else None.
    """

    position: int
    index: tuple[int, int]
    footprint: list[tuple[int, ...]]
    output_cell: tuple[int, int]
    targets: list[tuple[int, int]]
    right: np.ndarray
    caption: str
    window: np.ndarray | None = None
    products: np.ndarray | None = None
    winner: tuple[int, int] | None = None


@dataclass(frozen=True)
class Scene:
    """What every frame shares: the left grid, its cell kinds, the offset of input coords in it, titles."""

    left: np.ndarray
    left_cells: np.ndarray
    offset: tuple[int, int]
    extent: tuple[int, ...]
    right_cells: np.ndarray
    left_title: str
    right_title: str
    frames: list[Frame]
    kernel: np.ndarray | None = None
    kernel_title: str = "kernel"


def _v(x: float) -> str:
    if np.isnan(x):
        return ""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e6 else f"{x:.2f}"


def _conv_frames(trace: ConvTrace, target: str) -> list[Frame]:
    g = trace.geometry
    return [
        Frame(s.position, s.index, g.taps(s.index), s.index, [s.index], s.feature_map,
              f"{target}[{s.index[0]},{s.index[1]}] = {sum_text(s.products, trace.bias, s.total, limit=10)}",
              s.window, s.products)
        for s in trace.steps
    ]  # fmt: skip


def _pool_winner(trace: PoolTrace, step: Any) -> tuple[int, int] | None:
    if step.argmax is None:
        return None
    return (step.argmax[0] - step.start_input[0], step.argmax[1] - step.start_input[1])


def scene(trace: Any) -> Scene:
    """The full animation as data (see the module doc)."""
    if isinstance(trace, ConvTrace):
        g = trace.geometry
        (pt, _), (pl, _) = g.pads
        return Scene(trace.padded, trace.cells, (pt, pl), g.extent, np.zeros(g.output_size, np.int8),
                     "input", "output", _conv_frames(trace, "out"), trace.kernel)  # fmt: skip
    if isinstance(trace, PoolTrace):
        g = trace.geometry
        frames = [
            Frame(s.position, s.index, g.taps(s.index), s.index, [s.index], s.feature_map,
                  f"out[{s.index[0]},{s.index[1]}] = {trace.pool}(window) = {_v(s.value)}", s.window, None,
                  _pool_winner(trace, s))
            for s in trace.steps
        ]  # fmt: skip
        (pt, _), (pl, _) = g.pads
        return Scene(trace.padded, trace.cells, (pt, pl), g.extent, np.zeros(g.output_size, np.int8),
                     "input", f"{trace.pool} pool", frames)  # fmt: skip
    if isinstance(trace, ConvBackwardTrace):
        inner = trace.trace
        g = inner.geometry
        frames = _conv_frames(inner, "grad_x_padded")
        (pt, _), (pl, _) = trace.forward.pads
        h, w = trace.forward.input_size
        right_cells = np.full(inner.output.shape, CELL_PAD, np.int8)
        right_cells[pt : pt + h, pl : pl + w] = CELL_INPUT
        return Scene(inner.padded, inner.cells, (0, 0), g.extent, right_cells,
                     "grad_out, zero-inserted", "grad of padded input", frames, inner.kernel,
                     "flipped kernel")  # fmt: skip
    if isinstance(trace, PoolBackwardTrace):
        fwd = trace.trace
        g = fwd.geometry
        frames = []
        for s in fwd.steps:
            if s.argmax is not None:
                targets = [(int(s.argmax[0]), int(s.argmax[1]))]
            else:
                targets = [
                    (int(r), int(c))
                    for r, c in g.taps(s.index)
                    if 0 <= r < g.input_size[0] and 0 <= c < g.input_size[1]
                ]
            grad = _v(trace.grad_out[s.index])
            how = "its arg-max" if s.argmax is not None else f"{s.count} cells (/ {s.count})"
            frames.append(Frame(s.position, s.index, g.taps(s.index), targets[0], targets, trace.partial[s.position],
                                f"grad_out[{s.index[0]},{s.index[1]}] = {grad} -> {how}", s.window, None,
                                _pool_winner(fwd, s)))  # fmt: skip
        (pt, _), (pl, _) = g.pads
        return Scene(fwd.padded, fwd.cells, (pt, pl), g.extent, np.zeros(fwd.input.shape, np.int8),
                     "input (window)", "grad_x so far", frames)  # fmt: skip
    raise TypeError(f"animate: expected a ConvTrace, PoolTrace or backward trace, got {type(trace).__name__}.")


def animation_frames(trace: Any, max_steps: int | None = None) -> list[Frame]:
    """One :class:`Frame` per output position (OH * OW of them, row-major; no title frames), the first
    ``max_steps`` only when given.

    Shapes:
        frame.right: the right grid (OH, OW) for forward traces, (H, W) for the pool backward,
        the used padded extent for the conv backward.
    """
    return _first(scene(trace).frames, max_steps)


def _first(frames: list[Frame], max_steps: int | None) -> list[Frame]:
    return frames if max_steps is None else frames[: check_int(max_steps, "max_steps", owner="animate", minimum=1)]


_COLORS = {
    CELL_INPUT: (255, 255, 255),
    CELL_PAD: (217, 217, 217),
    CELL_INSERTED: (255, 242, 204),
    "tap": (111, 168, 220),
    "written": (182, 215, 168),
    "current": (56, 118, 29),
    "target": (230, 145, 56),
    "line": (90, 90, 90),
}


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the bitmap font has one size
        return ImageFont.load_default()


def _cell_size(shape: tuple[int, ...]) -> int:
    return max(10, min(34, 420 // max(shape)))


def _legend(sc: Scene, frame: Frame) -> list[tuple[tuple[int, int, int], str]]:
    """Swatches for the kinds of cell this animation draws, and only those."""
    items = [(_COLORS["tap"], "window")]
    kinds = set(np.unique(sc.left_cells).tolist())
    if CELL_PAD in kinds:
        items.append((_COLORS[CELL_PAD], "padding (reads 0)" if sc.kernel is not None else "padding (never wins)"))
    if CELL_INSERTED in kinds:
        items.append((_COLORS[CELL_INSERTED], "inserted zero"))
    if frame.winner is not None:
        items.append((_COLORS["target"], "winner"))
    items += [(_COLORS["written"], "written"), (_COLORS["current"], "this step")]
    if CELL_PAD in set(np.unique(sc.right_cells).tolist()):
        items.append((_COLORS[CELL_PAD], "cropped (forward padding)"))
    return items


def _grid(draw: Any, origin: tuple[int, int], values: np.ndarray, size: int, font: Any,
          fill: Any, ink: Any = (0, 0, 0)) -> None:  # fmt: skip
    """Cells of ``values`` at ``origin``; ``fill(r, c)`` gives each cell's colour; numbers when cells are big."""
    x, y = origin
    for (r, c), value in np.ndenumerate(values):
        x0, y0 = x + c * size, y + r * size
        draw.rectangle([x0, y0, x0 + size, y0 + size], fill=fill(r, c), outline=_COLORS["line"])
        if size >= 20 and np.isfinite(value):
            draw.text((x0 + size / 2, y0 + size / 2), _v(value), fill=ink, font=font, anchor="mm")


def render_frame(sc: Scene, frame: Frame) -> Any:
    """Draw one frame as a ``PIL.Image`` (RGB): input, kernel and products (or window), output, legend, caption."""
    from PIL import Image, ImageDraw

    cl, cr = _cell_size(sc.left.shape), _cell_size(sc.right_cells.shape)
    middle = [] if frame.window is None else ([("kernel", sc.kernel)] if sc.kernel is not None else [])
    if frame.products is not None:
        middle.append(("products", frame.products))
    elif frame.window is not None:
        middle.append(("window", frame.window))
    cm = max(24, min(34, 150 // max(frame.window.shape))) if frame.window is not None else 0
    margin, title_h, legend_h = 12, 20, 18
    lw, lh = sc.left.shape[1] * cl, sc.left.shape[0] * cl
    rw, rh = sc.right_cells.shape[1] * cr, sc.right_cells.shape[0] * cr
    mw = sum(grid.shape[1] * cm + margin for _, grid in middle)
    mh = max((grid.shape[0] * cm for _, grid in middle), default=0)
    width = max(margin * 3 + lw + mw + rw, 360)
    height = title_h + max(lh, rh, mh) + margin * 2 + legend_h + 18
    image = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    font, small = _font(max(8, min(12, cl // 3 + 1))), _font(11)
    mid_font = _font(max(8, min(12, cm // 3)))
    taps = {(r + sc.offset[0], c + sc.offset[1]) for r, c in frame.footprint}
    top = title_h + margin

    def left_fill(r: int, c: int) -> Any:
        if (r, c) in taps:
            return _COLORS["tap"]
        value = sc.left[r, c]
        if cl < 20 and sc.left_cells[r, c] == CELL_INPUT:  # no room for numbers: grey levels show the values
            level = int(255 - 200 * np.clip(value, 0, 1)) if np.isfinite(value) else 255
            return (level, level, level)
        return _COLORS[int(sc.left_cells[r, c])]

    shown_left = np.where(sc.left_cells == CELL_INPUT, sc.left, np.nan)
    draw.text((margin, 4), sc.left_title, fill=(0, 0, 0), font=small)
    _grid(draw, (margin, top), shown_left, cl, font, left_fill)
    r0, c0 = min(taps)
    draw.rectangle([margin + c0 * cl, top + r0 * cl, margin + (c0 + sc.extent[1]) * cl,
                    top + (r0 + sc.extent[0]) * cl], outline=(11, 83, 148), width=3)  # fmt: skip
    x = margin * 2 + lw
    for title, grid in middle:
        name = sc.kernel_title if title == "kernel" else title
        draw.text((x, 4), name, fill=(0, 0, 0), font=small)

        def mid_fill(r: int, c: int, title: str = title) -> Any:
            if title == "window" and frame.winner == (r, c):
                return _COLORS["target"]
            return (255, 255, 255) if title == "kernel" else (222, 235, 247)

        _grid(draw, (x, top), grid, cm, mid_font, mid_fill)
        x += grid.shape[1] * cm + margin
    targets = set(frame.targets)

    def right_fill(r: int, c: int) -> Any:
        if (r, c) in targets:
            return _COLORS["current"]
        return _COLORS[int(sc.right_cells[r, c])] if np.isnan(frame.right[r, c]) else _COLORS["written"]

    draw.text((x, 4), sc.right_title, fill=(0, 0, 0), font=small)
    shown_right = frame.right.copy()
    for r, c in targets:  # written below in white, on the dark green
        shown_right[r, c] = np.nan
    _grid(draw, (x, top), shown_right, cr, font, right_fill)
    if cr >= 20:
        for r, c in targets:
            if np.isfinite(frame.right[r, c]):
                draw.text((x + c * cr + cr / 2, top + r * cr + cr / 2), _v(frame.right[r, c]), fill=(255, 255, 255),
                          font=font, anchor="mm")  # fmt: skip
    y = height - legend_h - 18
    lx = margin
    for color, label in _legend(sc, frame):
        draw.rectangle([lx, y + 3, lx + 10, y + 13], fill=color, outline=_COLORS["line"])
        draw.text((lx + 14, y + 1), label, fill=(0, 0, 0), font=small)
        lx += 24 + int(draw.textlength(label, font=small))
    draw.text((margin, height - 18), frame.caption, fill=(0, 0, 0), font=small)
    return image


def save_animation(trace: Any, path: str | Path, *, fps: float = 2.0, max_steps: int | None = None) -> Path:
    """Render the frames (the first ``max_steps`` when given) and write a GIF (``.gif``; the last frame is
    held three times as long).

    Returns the path written. Other extensions raise ``ConfigError`` (an mp4 would need ffmpeg).
    """
    out = Path(path)
    if out.suffix.lower() != ".gif":
        raise ConfigError(f"animate: `path` must end in .gif, got {str(path)!r}.")
    fps = check_float(fps, "fps", owner="animate")
    if fps <= 0:
        raise ConfigError(f"animate: `fps` must be > 0, got {fps!r}.")
    sc = scene(trace)
    images = [render_frame(sc, f) for f in _first(sc.frames, max_steps)]
    ms = int(1000 / fps)
    durations = [ms] * (len(images) - 1) + [ms * 3]
    from convlens.files import atomic_write

    def write(handle: Any) -> None:
        images[0].save(
            handle, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=True
        )

    return atomic_write(out, write, owner="animate")
