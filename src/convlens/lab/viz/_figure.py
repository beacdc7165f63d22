"""Figure helpers shared by the visualisations: headless figures, atomic PNG/SVG saving, Jupyter display.

Figures are built as bare :class:`matplotlib.figure.Figure` objects on an Agg canvas, never through
``pyplot``: nothing needs a display, nothing is registered in pyplot's figure manager (so no
"More than 20 figures" warning and no leak), and the user's own pyplot backend is left alone.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConfigError
from convlens.files import atomic_write

__all__ = ["FigureResult", "new_figure", "save_figure", "show_image"]

_FORMATS = {".png": "png", ".svg": "svg"}


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure of ``width`` x ``height`` inches on an Agg canvas (no pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(width, 1.0), max(height, 1.0)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write ``figure`` to ``path`` (PNG or SVG, chosen by the extension), atomically.

    The file appears complete or not at all: it is written to a temporary file in the same
    folder and moved into place with ``os.replace``.

    Raises:
        ConfigError: when the extension is neither ``.png`` nor ``.svg``.
    """
    target = Path(path)
    fmt = _FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ConfigError(f"save_figure: `path` must end in .png or .svg, got {str(path)!r}.")
    return atomic_write(target, lambda handle: figure.savefig(handle, format=fmt, dpi=dpi), owner="save_figure")


def png_bytes(figure: Any, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def show_image(
    ax: Any, image: np.ndarray, *, cmap: str = "gray", vmin: float | None = None, vmax: float | None = None
) -> Any:
    """Draw a (H, W) or (H, W, C) array on ``ax`` without ticks (C not 3: the channel mean); returns the AxesImage."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] != 3:
        arr = arr.mean(axis=-1)
    if arr.ndim == 3:
        arr = np.clip(arr, 0.0, 1.0)
    im = ax.imshow(arr, cmap=None if arr.ndim == 3 else cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _field_text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_field_text(v)}" for k, v in list(value.items())[:4]) + (
            ", ..." if len(value) > 4 else "") + "}"  # fmt: skip
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return f"{type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(repr=False)
class FigureResult:
    """Base of every visualisation's result: the ``figure`` plus the numbers drawn on it.

    Jupyter shows the figure inline (``image/png``) with a short ``text/plain`` fallback (the fields and
    their shapes, not their values); :meth:`save` writes PNG or SVG.
    """

    figure: Any

    def describe(self) -> str:
        """One line about what the figure shows; results override it with their key numbers."""
        return ""

    def __repr__(self) -> str:
        parts = [f"{f.name}={_field_text(getattr(self, f.name))}" for f in fields(self) if f.name != "figure"]
        about = self.describe()
        return f"<{type(self).__name__}{': ' + about if about else ''}; " + ", ".join(parts) + ">"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/png": base64.b64encode(png_bytes(self.figure)).decode("ascii"), "text/plain": repr(self)}

    def save(self, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
        """Write the figure to ``path`` (.png or .svg) atomically; returns the path."""
        return save_figure(self.figure, path, dpi=dpi)

    def _repr_png_(self) -> bytes:
        return png_bytes(self.figure)
