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


def keras_summary(name: str, rows: list[tuple[str, ...]], total: int, trainable: int, connected: bool = False) -> str:
    """Render rows of (layer (type), output shape, params[, connected to]) like Keras 3.

    >>> print(keras_summary("m", [("dense (Dense)", "(None, 2)", 6)], 6, 6).splitlines()[0])
    Model: "m"
    """
    headers = ("Layer (type)", "Output Shape", "Param #", "Connected to")[: 4 if connected else 3]
    minimum = (31, 22, 13, 17)
    widths = [max(minimum[i], len(headers[i]), *(len(str(r[i])) for r in rows)) + 2 for i in range(len(headers))]
    widths[2] = 15 if not connected else widths[2]

    def line(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * w for w in widths) + right

    def row(cells: tuple[Any, ...], sep: str = "│") -> str:
        texts = [f"{cell:,}" if isinstance(cell, int) else str(cell) for cell in cells]
        parts = [
            t.rjust(w - 2) if i == 2 else t.ljust(w - 2) for i, (t, w) in enumerate(zip(texts, widths, strict=True))
        ]
        return sep + sep.join(f" {p} " for p in parts) + sep

    out = [
        f'Model: "{name}"',
        line("┏", "┳", "┓", "━"),
        row(headers, "┃"),
    ]
    out.append(line("┡", "╇", "┩", "━"))
    for i, cells in enumerate(rows):
        out.append(row(cells))
        if i < len(rows) - 1:
            out.append(line("├", "┼", "┤", "─"))
    out.append(line("└", "┴", "┘", "─"))
    non_trainable = total - trainable
    out.append(f" Total params: {total:,} ({format_bytes(total * 4)})")
    out.append(f" Trainable params: {trainable:,} ({format_bytes(trainable * 4)})")
    out.append(f" Non-trainable params: {non_trainable:,} ({format_bytes(non_trainable * 4)})")
    return "\n".join(out)


def _sequential_like(model: Any) -> bool:
    """Keras's rule: no merges, no branches, one input and one output (then no "Connected to" column)."""
    nodes = model.nodes
    consumers: dict[int, int] = {}
    for node in nodes:
        if len(node.inputs) != 1:
            return False
        consumers[id(node.inputs[0])] = consumers.get(id(node.inputs[0]), 0) + 1
    return len(model.inputs) == 1 and len(model.outputs) == 1 and all(c == 1 for c in consumers.values())


def model_summary(model: Any) -> str:
    """Keras's summary table of a built model: Sequential rows from ``compute_output_shape`` (no forward pass);
    a Functional model lists its Input layers too, and a "Connected to" column unless it is a plain chain.
    Frozen layers' weights and every layer's state (moving statistics) count as non-trainable."""
    rows: list[tuple[Any, ...]] = []
    if hasattr(model, "nodes"):
        connected = not _sequential_like(model)
        for tensor in model.inputs:
            layer = tensor.node.layer
            rows.append((f"{layer.name} (InputLayer)", str(tensor.shape), 0, "-")[: 4 if connected else 3])
        for node in model.nodes:
            layer = node.layer
            sources = ", ".join(f"{t.node.layer.name}[0][0]" for t in node.inputs)
            cells = (f"{layer.name} ({type(layer).__name__})", str(node.output.shape), layer.count_params(), sources)
            rows.append(cells[: 4 if connected else 3])
    else:
        connected = False
        shape = model.input_shape
        for layer in model.layers:
            shape = layer.compute_output_shape(shape)
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), layer.count_params()))
    non_trainable = sum(int(sum(w.size for w in layer.state.values())) for layer in model.layers if layer.trainable)
    trainable = sum(layer.count_params() for layer in model.layers if layer.trainable) - non_trainable
    return keras_summary(model.name, rows, model.count_params(), trainable, connected)
