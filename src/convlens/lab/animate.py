"""Sliding-window animations in the style of the convolution-arithmetic figures (Dumoulin & Visin).

:func:`animation_frames` turns a trace into plain data (one :class:`Frame` per output position, in
row-major order, no title frames): the kernel footprint (input coordinates of the taps, exactly
``geometry.taps(index)``), the output cell being written and the values written so far.
:func:`save_animation` draws them with Pillow into a GIF: left, the input with its padding (grey)
or inserted zeros (yellow) and the footprint (blue; the dilated extent outlined); right, the output
with the written cells (green) and the current one (dark green).

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

from convlens.errors import ConfigError
from convlens.lab.explain import CELL_INPUT, CELL_INSERTED, CELL_PAD, ConvTrace, PoolTrace
from convlens.lab.explain_backward import ConvBackwardTrace, PoolBackwardTrace

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
    """

    position: int
    index: tuple[int, int]
    footprint: list[tuple[int, ...]]
    output_cell: tuple[int, int]
    targets: list[tuple[int, int]]
    right: np.ndarray
    caption: str


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


def _v(x: float) -> str:
    if np.isnan(x):
        return ""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e6 else f"{x:.2f}"


def scene(trace: Any) -> Scene:
    """The full animation as data (see the module doc)."""
    if isinstance(trace, ConvTrace):
        g = trace.geometry
        frames = [
            Frame(s.position, s.index, g.taps(s.index), s.index, [s.index], s.feature_map,
                  f"out[{s.index[0]},{s.index[1]}] = sum(window * kernel) = {_v(s.total)}")
            for s in trace.steps
        ]  # fmt: skip
        (pt, _), (pl, _) = g.pads
        return Scene(trace.padded, trace.cells, (pt, pl), g.extent, np.zeros(g.output_size, np.int8),
                     "input (grey: padding)", "output", frames)  # fmt: skip
    if isinstance(trace, PoolTrace):
        g = trace.geometry
        frames = [
            Frame(s.position, s.index, g.taps(s.index), s.index, [s.index], s.feature_map,
                  f"out[{s.index[0]},{s.index[1]}] = {trace.pool}(window) = {_v(s.value)}")
            for s in trace.steps
        ]  # fmt: skip
        (pt, _), (pl, _) = g.pads
        return Scene(trace.padded, trace.cells, (pt, pl), g.extent, np.zeros(g.output_size, np.int8),
                     "input", f"{trace.pool} pool", frames)  # fmt: skip
    if isinstance(trace, ConvBackwardTrace):
        inner = trace.trace
        g = inner.geometry
        frames = [
            Frame(s.position, s.index, g.taps(s.index), s.index, [s.index], s.feature_map,
                  f"grad_x_padded[{s.index[0]},{s.index[1]}] = sum(window * flipped kernel) = {_v(s.total)}")
            for s in inner.steps
        ]  # fmt: skip
        (pt, _), (pl, _) = trace.forward.pads
        h, w = trace.forward.input_size
        right_cells = np.full(inner.output.shape, CELL_PAD, np.int8)
        right_cells[pt : pt + h, pl : pl + w] = CELL_INPUT
        return Scene(inner.padded, inner.cells, (0, 0), g.extent, right_cells,
                     "grad_out: zero-inserted + padded", "grad of padded input", frames)  # fmt: skip
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
                                f"grad_out[{s.index[0]},{s.index[1]}] = {grad} -> {how}"))  # fmt: skip
        (pt, _), (pl, _) = g.pads
        return Scene(fwd.padded, fwd.cells, (pt, pl), g.extent, np.zeros(fwd.input.shape, np.int8),
                     "input (window)", "grad_x so far", frames)  # fmt: skip
    raise TypeError(f"animate: expected a ConvTrace, PoolTrace or backward trace, got {type(trace).__name__}.")


def animation_frames(trace: Any) -> list[Frame]:
    """One :class:`Frame` per output position (OH * OW of them, row-major; no title frames).

    Shapes:
        frame.right: the right grid (OH, OW) for forward traces, (H, W) for the pool backward,
        the used padded extent for the conv backward.
    """
    return scene(trace).frames


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


def render_frame(sc: Scene, frame: Frame) -> Any:
    """Draw one frame as a ``PIL.Image`` (RGB)."""
    from PIL import Image, ImageDraw

    cl, cr = _cell_size(sc.left.shape), _cell_size(sc.right_cells.shape)
    margin, title_h = 12, 20
    lw, lh = sc.left.shape[1] * cl, sc.left.shape[0] * cl
    rw, rh = sc.right_cells.shape[1] * cr, sc.right_cells.shape[0] * cr
    width = margin * 3 + lw + rw
    height = title_h + max(lh, rh) + margin * 2 + 16
    image = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    font, small = _font(max(8, min(12, cl // 3 + 1))), _font(11)
    taps = {(r + sc.offset[0], c + sc.offset[1]) for r, c in frame.footprint}
    top = title_h + margin
    draw.text((margin, 4), sc.left_title, fill=(0, 0, 0), font=small)
    draw.text((margin * 2 + lw, 4), sc.right_title, fill=(0, 0, 0), font=small)
    show_text = cl >= 20
    for (r, c), value in np.ndenumerate(sc.left):
        x0, y0 = margin + c * cl, top + r * cl
        fill = _COLORS["tap"] if (r, c) in taps else _COLORS[int(sc.left_cells[r, c])]
        if not show_text and (r, c) not in taps and sc.left_cells[r, c] == CELL_INPUT:
            level = int(255 - 200 * np.clip(value, 0, 1)) if np.isfinite(value) else 255
            fill = (level, level, level)
        draw.rectangle([x0, y0, x0 + cl, y0 + cl], fill=fill, outline=_COLORS["line"])
        if show_text and np.isfinite(value) and sc.left_cells[r, c] == CELL_INPUT:
            draw.text((x0 + cl / 2, y0 + cl / 2), _v(value), fill=(0, 0, 0), font=font, anchor="mm")
    r0, c0 = min(taps)
    draw.rectangle([margin + c0 * cl, top + r0 * cl, margin + (c0 + sc.extent[1]) * cl,
                    top + (r0 + sc.extent[0]) * cl], outline=(11, 83, 148), width=3)  # fmt: skip
    left_x = margin * 2 + lw
    targets = set(frame.targets)
    show_text = cr >= 20
    for (r, c), value in np.ndenumerate(frame.right):
        x0, y0 = left_x + c * cr, top + r * cr
        fill = _COLORS[int(sc.right_cells[r, c])] if np.isnan(value) else _COLORS["written"]
        if (r, c) in targets:
            fill = _COLORS["current"]
        draw.rectangle([x0, y0, x0 + cr, y0 + cr], fill=fill, outline=_COLORS["line"])
        if show_text and not np.isnan(value):
            ink = (255, 255, 255) if (r, c) in targets else (0, 0, 0)
            draw.text((x0 + cr / 2, y0 + cr / 2), _v(value), fill=ink, font=font, anchor="mm")
    draw.text((margin, height - 18), frame.caption, fill=(0, 0, 0), font=small)
    return image


def save_animation(trace: Any, path: str | Path, *, fps: float = 2.0) -> Path:
    """Render every frame and write a GIF (``.gif``; the last frame is held twice as long).

    Returns the path written. Other extensions raise ``ConfigError`` (an mp4 would need ffmpeg).
    """
    out = Path(path)
    if out.suffix.lower() != ".gif":
        raise ConfigError(f"animate: `path` must end in .gif, got {str(path)!r}.")
    if fps <= 0:
        raise ConfigError(f"animate: `fps` must be > 0, got {fps!r}.")
    sc = scene(trace)
    images = [render_frame(sc, f) for f in sc.frames]
    ms = int(1000 / fps)
    durations = [ms] * (len(images) - 1) + [ms * 3]
    import os
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".gif", dir=out.parent)
    os.close(fd)
    try:
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out
