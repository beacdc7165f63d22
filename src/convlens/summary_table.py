"""Keras 3's ``model.summary()`` table, drawn with box characters (no dependency)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_bytes", "keras_summary", "model_summary"]


def format_bytes(n: float) -> str:
    """Keras's size format: ``246.29 KB``.

    >>> format_bytes(63050 * 4)
    '246.29 KB'
    """
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"  # pragma: no cover


def keras_summary(name: str, rows: list[tuple[str, str, int]], total: int, trainable: int) -> str:
    """Render rows of (layer (type), output shape, params) like Keras 3.

    >>> print(keras_summary("m", [("dense (Dense)", "(None, 2)", 6)], 6, 6).splitlines()[0])
    Model: "m"
    """
    widths = [max(31, *(len(r[0]) for r in rows)) + 2, max(22, *(len(r[1]) for r in rows)) + 2, 15]

    def line(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * w for w in widths) + right

    def row(cells: tuple[str, str, str], sep: str = "│") -> str:
        a, b, c = cells
        return f"{sep} {a:<{widths[0] - 2}} {sep} {b:<{widths[1] - 2}} {sep} {c:>{widths[2] - 2}} {sep}"

    out = [
        f'Model: "{name}"',
        line("┏", "┳", "┓", "━"),
        row(("Layer (type)", "Output Shape", "Param #"), "┃"),
    ]
    out.append(line("┡", "╇", "┩", "━"))
    for i, (layer, shape, params) in enumerate(rows):
        out.append(row((layer, shape, f"{params:,}")))
        if i < len(rows) - 1:
            out.append(line("├", "┼", "┤", "─"))
    out.append(line("└", "┴", "┘", "─"))
    non_trainable = total - trainable
    out.append(f" Total params: {total:,} ({format_bytes(total * 4)})")
    out.append(f" Trainable params: {trainable:,} ({format_bytes(trainable * 4)})")
    out.append(f" Non-trainable params: {non_trainable:,} ({format_bytes(non_trainable * 4)})")
    return "\n".join(out)


def model_summary(model: Any) -> str:
    """Keras's summary table of a built ``Sequential``: rows from ``compute_output_shape`` (no forward pass)."""
    rows = []
    shape = model.input_shape
    for layer in model.layers:
        shape = layer.compute_output_shape(shape)
        rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), layer.count_params()))
    non_trainable = sum(int(sum(w.size for w in layer.state.values())) for layer in model.layers if layer.trainable)
    trainable = sum(layer.count_params() for layer in model.layers if layer.trainable) - non_trainable
    return keras_summary(model.name, rows, model.count_params(), trainable)
