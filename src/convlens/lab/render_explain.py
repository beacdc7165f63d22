"""Terminal rendering of explain traces: plain text (pipes, tests) or rich (a TTY).

In the grids, ``.`` is a zero-padding cell, ``_`` an inserted zero (strided backward) and ``?``
an output cell not written yet.

>>> from convlens.lab.explain import convolution
>>> print(render_text(convolution([[1, 2], [3, 4]], [[1, 1], [1, 1]])).splitlines()[-1])
out width:  OW = (W + PL + PR - ((KW - 1) * DW + 1)) // SW + 1 = (2 + 0 + 0 - 2) // 1 + 1 = 1
"""

from __future__ import annotations

import sys
from typing import IO, Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.lab.explain import CELL_INPUT, CELL_INSERTED, CELL_PAD, ConvStep, ConvTrace, PoolStep, PoolTrace

__all__ = [
    "describe_geometry",
    "fmt_value",
    "format_grid",
    "output_formula",
    "print_text",
    "render_comparison",
    "render_text",
    "sum_text",
]

_MARK = {CELL_PAD: ".", CELL_INSERTED: "_"}
_MAX_TERMS = 16


def fmt_value(x: float) -> str:
    """Short number: integers without decimals, else up to 3 significant decimals."""
    if np.isnan(x):
        return "?"
    if float(x).is_integer() and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.3g}" if abs(x) < 1e-2 or abs(x) >= 1e4 else f"{x:.3f}".rstrip("0")


def format_grid(a: np.ndarray, cells: np.ndarray | None = None, width: int | None = None) -> list[str]:
    """Lines of a right-aligned grid; cells marked padding/inserted print as ``.``/``_``."""
    texts = [
        [_MARK.get(int(cells[r, c]), "") if cells is not None and cells[r, c] != CELL_INPUT else fmt_value(v)
         for c, v in enumerate(row)]
        for r, row in enumerate(a)
    ]  # fmt: skip
    w = width or max(len(t) for row in texts for t in row)
    return [" ".join(t.rjust(w) for t in row) for row in texts]


def _side_by_side(blocks: list[tuple[str, list[str]]], gap: int = 4) -> list[str]:
    widths = [max(len(title), *(len(x) for x in lines)) for title, lines in blocks]
    height = max(len(lines) for _, lines in blocks)
    out = ["".ljust(0) + (" " * gap).join(t.ljust(w) for (t, _), w in zip(blocks, widths, strict=True))]
    for i in range(height):
        out.append((" " * gap).join((ls[i] if i < len(ls) else "").ljust(w)
                                    for (_, ls), w in zip(blocks, widths, strict=True)))  # fmt: skip
    return [line.rstrip() for line in out]


def output_formula(g: WindowGeometry) -> list[str]:
    """The output-size formula with the user's numbers (result taken from the geometry)."""
    lines = []
    for axis, (name, big, pad, k, d, s) in enumerate(
        [("height", "H", "PT + PB", "KH", "DH", "SH"), ("width", "W", "PL + PR", "KW", "DW", "SW")]
    ):
        b, a = g.pads[axis]
        o = "OH" if axis == 0 else "OW"
        lines.append(
            f"out {name}: {' ' * (6 - len(name))}{o} = ({big} + {pad} - (({k} - 1) * {d} + 1)) // {s} + 1 = "
            f"({g.input_size[axis]} + {b} + {a} - {g.extent[axis]}) // {g.strides[axis]} + 1 = {g.output_size[axis]}"
        )
    if g.padding == "same":
        lines.insert(0, "'same' (TensorFlow rule): out = ceil(in / stride); the odd padded pixel goes bottom/right")
    return lines


def describe_geometry(g: WindowGeometry) -> str:
    """One line: input, window, stride, dilation, padding per side, output."""
    (pt, pb), (pl, pr) = g.pads
    parts = [
        f"input {g.input_size[0]}x{g.input_size[1]}",
        f"window {g.kernel_size[0]}x{g.kernel_size[1]}",
        f"stride {g.strides[0]}x{g.strides[1]}",
    ]
    if g.dilation_rate != (1, 1):
        parts.append(f"dilation {g.dilation_rate[0]}x{g.dilation_rate[1]} (extent {g.extent[0]}x{g.extent[1]})")
    parts.append(f"padding {g.padding!r}: top {pt}, bottom {pb}, left {pl}, right {pr}")
    parts.append(f"output {g.output_size[0]}x{g.output_size[1]}")
    return ", ".join(parts)


def sum_text(products: np.ndarray, bias: float, total: float, *, limit: int = _MAX_TERMS) -> str:
    """``sum = p1 + p2 + ... (+ bias b) = total``, negative terms in brackets, at most ``limit`` terms shown.

    >>> sum_text(np.array([[1.0, -2.0], [0.5, 0.0]]), 0.0, -0.5)
    'sum = 1 + (-2) + 0.5 + 0 = -0.5'
    """
    terms = [fmt_value(v) if v >= 0 else f"({fmt_value(v)})" for v in products.reshape(-1)]
    if len(terms) > limit:
        terms = [*terms[: limit - 2], "...", terms[-1]]
    tail = f" + bias {fmt_value(bias)}" if bias else ""
    return f"sum = {' + '.join(terms)}{tail} = {fmt_value(total)}"


def _span(start: int, extent: int) -> str:
    return f"{start}..{start + extent - 1}"


def _step_lines(trace: ConvTrace | PoolTrace, position: int) -> list[str]:
    g = trace.geometry
    step = trace.steps[position]
    (r, c), (pr, pc) = step.start_input, step.start_padded
    head = (
        f"Step {position + 1}/{len(trace.steps)}: output[{step.index[0]}, {step.index[1]}]  window rows "
        f"{_span(r, g.extent[0])}, cols {_span(c, g.extent[1])} of the input "
        f"(padded grid rows {_span(pr, g.extent[0])}, cols {_span(pc, g.extent[1])})"
    )
    cells = np.where(step.real, CELL_INPUT, CELL_PAD)
    window = format_grid(step.window, cells)
    if isinstance(trace, ConvTrace) and isinstance(step, ConvStep):
        blocks = [("window", window), ("kernel", format_grid(trace.kernel)), ("products", format_grid(step.products))]
        result = sum_text(step.products, trace.bias, step.total)
    elif isinstance(trace, PoolTrace) and isinstance(step, PoolStep):
        blocks = [("window", window)]
        if trace.pool == "max" and step.argmax is not None:
            result = f"max = {fmt_value(step.value)} at input[{step.argmax[0]}, {step.argmax[1]}]"
        else:
            total = float(np.where(step.real, step.window, 0.0).sum())
            result = f"avg = {fmt_value(total)} / {step.count} real cells = {fmt_value(step.value)}"
    else:  # pragma: no cover - a trace always holds its own kind of step
        raise TypeError(f"explain: unexpected step {type(step).__name__}.")
    lines = [head, *("  " + line for line in _side_by_side(blocks)), "  " + result, "  map so far:"]
    lines += ["    " + line for line in format_grid(step.feature_map)]
    return lines


def render_text(trace: ConvTrace | PoolTrace, step: int | None = None, *, max_steps: int | None = None) -> str:
    """The whole explanation as plain text: setup, steps (all, or only ``step``, 1-based), result, formula."""
    g = trace.geometry
    what = "convolution (cross-correlation)" if isinstance(trace, ConvTrace) else f"{trace.pool} pooling"
    lines = [f"{what}: {describe_geometry(g)}"]
    if trace.source:
        lines.append(f"input: {trace.source}")
    blocks = [("input", format_grid(trace.input))]
    if g.is_padded:
        blocks.append(("padded input (. = padding)", format_grid(trace.padded, trace.cells)))
    if isinstance(trace, ConvTrace):
        blocks.append(("kernel", format_grid(trace.kernel)))
    lines += _side_by_side(blocks)
    lines.append("")
    if step is not None:
        if not 1 <= step <= len(trace.steps):
            from convlens.errors import ConfigError

            raise ConfigError(f"explain: `step` must be between 1 and {len(trace.steps)}, got {step}.")
        positions = [step - 1]
    else:
        positions = list(range(len(trace.steps)))
        if max_steps is not None and len(positions) > max_steps:
            positions = positions[:max_steps]
    for p in positions:
        lines += [*_step_lines(trace, p), ""]
    if len(positions) < len(trace.steps) and step is None:
        lines += [f"... {len(trace.steps) - len(positions)} more steps (use --step N to see one)", ""]
    lines.append(f"output ({g.output_size[0]}x{g.output_size[1]}):")
    lines += ["  " + line for line in format_grid(trace.output)]
    lines += output_formula(g)
    return "\n".join(lines)


def render_comparison(comp: Any) -> str:
    """Plain-text table of a :class:`~convlens.lab.padding_compare.PaddingComparison`."""
    first = comp.results[0].geometry
    lines = [
        f"padding conventions for input {first.input_size[0]}x{first.input_size[1]}, kernel "
        f"{first.kernel_size[0]}x{first.kernel_size[1]}, stride {first.strides[0]}, dilation {first.dilation_rate[0]}",
        "",
    ]
    for r in comp.results:
        g = r.geometry
        lines.append(f"{r.label}")
        for axis, name in enumerate(("rows", "cols")):
            b, a = g.pads[axis]
            read_b, read_a = r.pad_read[axis]
            unused = b + a - read_b - read_a
            note = f"; {unused} padded {name} never read" if unused else ""
            unread = f"; input {name} never read: {list(r.unread[axis])}" if r.unread[axis] else ""
            e = g.extent[axis]
            spans = f"{_span(r.first_window[axis][0], e)}, last {_span(r.last_window[axis][0], e)}"
            lines.append(
                f"  {name}: pads (before {b}, after {a}) -> {g.output_size[axis]} outputs; first window reads "
                f"{spans}{note}{unread}"
            )
    lines.append("")
    for (a, b), shift in comp.shifts.items():
        if shift is None:
            lines.append(f"{a} vs {b}: different output sizes, not comparable cell by cell")
            continue
        rows, cols = comp.differing[(a, b)]
        where = f"differ at output rows {rows} and cols {cols}" if rows else "identical outputs"
        lines.append(f"{a} vs {b}: windows shifted by {shift[0]} row(s), {shift[1]} col(s); on this input {where}")
    return "\n".join(lines)


def print_text(text: str, file: IO[str] | None = None) -> None:
    """Print plain text, or with rich highlighting when ``file`` is a terminal."""
    out = file or sys.stdout
    if out.isatty():
        try:
            from rich.console import Console
            from rich.highlighter import ReprHighlighter
        except ImportError:  # pragma: no cover - rich is optional
            print(text, file=out)
            return
        console = Console(file=out, highlight=False)
        highlighter = ReprHighlighter()
        for line in text.splitlines():
            style = "bold cyan" if line.startswith(("Step ", "output (", "convolution", "max pool", "avg pool")) else ""
            console.print(highlighter(line), style=style, soft_wrap=True)
        return
    print(text, file=out)
