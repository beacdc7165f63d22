"""The detailed model summary: every number of :mod:`convlens.lab.arithmetic` as a table.

Formats: ``'text'`` (box table, no dependency), ``'rich'`` (a rich table rendered to a string),
``'markdown'``, ``'json'`` and ``'html'`` (what Jupyter shows). Below the table come the totals,
"why this shape" for every layer, the "versus dense" comparison for every convolution, and the
footnote saying what MACs and FLOPs count.

>>> from convlens.course import build_course_model
>>> text = render(build_course_model(), columns=["output_shape", "params_formula", "macs"])
>>> print(text.splitlines()[4])
│ (None, 28, 28, 32) │ 3*3*1*32 + 32 = 320   │ 225,792 │
"""

from __future__ import annotations

import html
import io
import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from convlens.errors import ConfigError, check_choice
from convlens.lab.arithmetic import LayerStats, model_stats, model_totals
from convlens.summary_table import format_bytes

__all__ = ["ALL_COLUMNS", "DEFAULT_COLUMNS", "FOOTNOTE", "FORMATS", "render", "rich_renderable"]

FORMATS = ("text", "rich", "markdown", "json", "html")
FOOTNOTE = (
    "FLOPs = 2 x MACs; one MAC = one multiply + one add. Counts are per sample. Bias adds and activations "
    "are not counted; 'other ops' are max-pool comparisons, average-pool adds + divides and batch-norm "
    "scale + shift. Receptive field, jump and start are in input pixels; start is the centre of the first "
    "unit's field (negative: inside the padding)."
)


def _x(values: Sequence[Any]) -> str:
    return "x".join(str(v) for v in values)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _shape(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if v is None else str(v) for v in shape) + ")"


def human(n: float) -> str:
    """Short form of a large count: ``19.7 million``.

    >>> human(19_694_080), human(320), human(2_500)
    ('19.7 million', '320', '2.5 thousand')
    """
    for size, word in ((1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if abs(n) >= size:
            return f"{n / size:.1f} {word}"
    return f"{n:,.0f}"


def _field(s: LayerStats) -> str:
    return _x(s.receptive_field) + ("" if s.jump else " (all)")


# name -> (header, cell text, right-aligned, JSON fields)
_COLUMNS: dict[str, tuple[str, Callable[[LayerStats], str], bool, tuple[str, ...]]] = {
    "layer": ("Layer (type)", lambda s: f"{s.name} ({s.class_name})", False, ("name", "class_name")),
    "output_shape": ("Output shape", lambda s: _shape(s.output_shape), False, ("input_shape", "output_shape")),
    "params": ("Params", lambda s: f"{s.params:,}", True, ("params", "trainable_params")),
    "params_formula": ("Params (formula)", lambda s: s.params_formula, False, ("params", "params_formula")),
    "macs": ("MACs", lambda s: f"{s.macs:,}", True, ("macs",)),
    "flops": ("FLOPs", lambda s: f"{s.flops:,}", True, ("flops",)),
    "ops": ("Other ops", lambda s: f"{s.ops:,} {s.ops_kind}" if s.ops else "-", True, ("ops", "ops_kind")),
    "receptive_field": ("Receptive field", _field, False, ("receptive_field",)),
    "jump": ("Jump", lambda s: _x(s.jump) if s.jump else "-", False, ("jump",)),
    "start": ("Start", lambda s: ", ".join(_num(v) for v in s.start) if s.start else "-", False, ("start",)),
    "memory": ("Activations", lambda s: format_bytes(s.activation_bytes), True, ("activation_bytes",)),
    "why": ("Why this shape", lambda s: s.why, False, ("why", "pads")),
    "dense_params": (
        "Dense params",
        lambda s: "-" if s.dense_params is None else f"{s.dense_params:,}",
        True,
        ("dense_params",),
    ),
    "dense_macs": ("Dense MACs", lambda s: "-" if s.dense_macs is None else f"{s.dense_macs:,}", True, ("dense_macs",)),
}
ALL_COLUMNS: tuple[str, ...] = tuple(_COLUMNS)
DEFAULT_COLUMNS: tuple[str, ...] = (
    "layer",
    "output_shape",
    "params_formula",
    "macs",
    "flops",
    "receptive_field",
    "jump",
    "start",
    "memory",
)


def check_columns(columns: Sequence[str] | str | None) -> tuple[str, ...]:
    """Validate column names (a sequence or one comma-separated string); None gives the defaults.

    >>> check_columns("layer, macs")
    ('layer', 'macs')
    """
    if columns is None:
        return DEFAULT_COLUMNS
    names = columns.split(",") if isinstance(columns, str) else list(columns)
    cleaned = tuple(str(n).strip().lower() for n in names if str(n).strip())
    valid = ", ".join(ALL_COLUMNS)
    if not cleaned:
        raise ConfigError(f"summary: `columns` must name at least one column; valid columns: {valid}.")
    for name in cleaned:
        if name not in _COLUMNS:
            raise ConfigError(f"summary: unknown column {name!r}; valid columns: {valid}.")
    return cleaned


def _cells(stats: Sequence[LayerStats], columns: Sequence[str]) -> tuple[list[str], list[list[str]], list[bool]]:
    headers = [_COLUMNS[c][0] for c in columns]
    rows = [[_COLUMNS[c][1](s) for c in columns] for s in stats]
    right = [_COLUMNS[c][2] for c in columns]
    return headers, rows, right


def _sections(model: Any, stats: Sequence[LayerStats], columns: Sequence[str]) -> dict[str, list[str]]:
    """The text below the table: totals, why this shape, versus dense, footnote."""
    t = model_totals(stats)
    totals = [
        f"Total params: {t['params']:,} ({format_bytes(t['params'] * 4)})",
        f"Trainable params: {t['trainable_params']:,} ({format_bytes(t['trainable_params'] * 4)})",
        f"Non-trainable params: {t['params'] - t['trainable_params']:,}",
        f"MACs: {t['macs']:,} (~{human(t['macs'])}) per sample; FLOPs: {t['flops']:,} (= 2 x MACs)",
        f"Other ops (pooling, normalisation): {t['ops']:,}",
        f"Activation memory: {format_bytes(t['activation_bytes'])} per sample (float32, outputs of every layer)",
    ]
    sections: dict[str, list[str]] = {"Totals": totals}
    if "why" not in columns:
        sections["Why this shape"] = [f"{s.name}: {s.why}" for s in stats]
    if not {"dense_params", "dense_macs"} & set(columns):
        versus = []
        for s in stats:
            if s.dense_params is None or s.dense_macs is None:
                continue
            d_in, d_out = _prod(s.input_shape[1:]), _prod(s.output_shape[1:])
            ratio = s.dense_params / max(s.params, 1)
            versus.append(
                f"{s.name}: {s.params_formula} params vs {d_in}*{d_out} + {d_out} = {s.dense_params:,} "
                f"(~{human(s.dense_params)}, {ratio:,.0f}x more) for a Dense layer mapping {_shape(s.input_shape)} "
                f"to {_shape(s.output_shape)}; MACs {s.macs:,} vs {s.dense_macs:,}"
            )
        if versus:
            sections["Versus dense"] = versus
    sections["Note"] = [FOOTNOTE]
    return sections


def _prod(values: Sequence[int | None]) -> int:
    out = 1
    for v in values:
        out *= int(v or 0)
    return out


def _title(model: Any) -> str:
    return f'Model: "{model.name}", input {_shape(model.input_shape)}'


def _box(headers: list[str], rows: list[list[str]], right: list[bool]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(left: str, mid: str, end: str, fill: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end

    def row(cells: list[str], sep: str = "│") -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
        return sep + sep.join(f" {p} " for p in parts) + sep

    out = [line("┏", "┳", "┓", "━"), row(headers, "┃"), line("┡", "╇", "┩", "━")]
    out += [row(r) for r in rows]
    out.append(line("└", "┴", "┘", "─"))
    return out


def _text(model: Any, stats: Sequence[LayerStats], columns: Sequence[str]) -> str:
    out = [_title(model), *_box(*_cells(stats, columns))]
    for title, lines in _sections(model, stats, columns).items():
        if title == "Totals":
            out += [f" {line}" for line in lines]
        else:
            out += ["", f"{title}:"]
            out += [textwrap.fill(line, 118, initial_indent="  ", subsequent_indent="    ") for line in lines]
    return "\n".join(out)


def _markdown(model: Any, stats: Sequence[LayerStats], columns: Sequence[str]) -> str:
    headers, rows, right = _cells(stats, columns)

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = [f"**{_title(model)}**", "", "| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    for title, lines in _sections(model, stats, columns).items():
        out += ["", f"**{title}**", "", *(f"- {cell(line)}" for line in lines)]
    return "\n".join(out)


_CELL = "border:1px solid #b0b0b0;padding:3px 8px;vertical-align:top;"
_HEAD = _CELL + "background:#eef1f5;font-weight:bold;"


def _html(model: Any, stats: Sequence[LayerStats], columns: Sequence[str]) -> str:
    """A table with its own borders, padding and fonts (inline styles), so it reads the same without Jupyter's CSS."""
    headers, rows, right = _cells(stats, columns)
    esc = html.escape
    align = ["text-align:right;font-family:monospace;white-space:nowrap" if r else "text-align:left" for r in right]
    out = [
        '<div class="convlens-summary" style="font:13px sans-serif;color:#000;background:#fff">',
        f'<p style="margin:4px 0"><b>{esc(_title(model))}</b></p>',
        '<table style="border-collapse:collapse;border:1px solid #808080;margin:4px 0">',
    ]
    out.append(
        "<thead><tr>"
        + "".join(f'<th style="{_HEAD}{a}">{esc(h)}</th>' for h, a in zip(headers, align, strict=True))
        + "</tr></thead><tbody>"
    )
    for i, r in enumerate(rows):
        shade = "background:#f7f7f7;" if i % 2 else ""
        cells = "".join(f'<td style="{_CELL}{shade}{a}">{esc(c)}</td>' for c, a in zip(r, align, strict=True))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    for title, lines in _sections(model, stats, columns).items():
        items = "".join(f"<li>{esc(line)}</li>" for line in lines)
        out.append(
            f'<p style="margin:6px 0 2px"><b>{esc(title)}</b></p><ul style="margin:0;padding-left:20px">{items}</ul>'
        )
    out.append("</div>")
    return "\n".join(out)


def _json(model: Any, stats: Sequence[LayerStats], columns: Sequence[str] | None) -> str:
    layers = []
    for s in stats:
        item = asdict(s)
        if columns is not None:
            keep = {"name"} | {f for c in columns for f in _COLUMNS[c][3]}
            item = {k: v for k, v in item.items() if k in keep}
        layers.append(item)
    doc = {
        "model": model.name,
        "input_shape": list(model.input_shape),
        "layers": layers,
        "totals": model_totals(stats),
        "note": FOOTNOTE,
    }
    return json.dumps(doc, indent=2)


def rich_renderable(model: Any, columns: Sequence[str] | str | None = None) -> Any:
    """A rich ``Group`` (title, table, sections) for ``Console.print``; needs the ``rich`` package."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    names = check_columns(columns)
    stats = model_stats(model)
    headers, rows, right = _cells(stats, names)
    table = Table(title=_title(model), title_justify="left")
    for header, is_right in zip(headers, right, strict=True):
        table.add_column(header, justify="right" if is_right else "left", overflow="fold")
    for r in rows:
        table.add_row(*r)
    parts: list[Any] = [table]
    for title, lines in _sections(model, stats, names).items():
        if title == "Totals":
            parts.append(Text("\n".join(f" {line}" for line in lines)))
        else:
            parts.append(Text(f"\n{title}:\n" + "\n".join(f"  {line}" for line in lines)))
    return Group(*parts)


def render(model: Any, *, columns: Sequence[str] | str | None = None, fmt: str = "text", width: int = 200) -> str:
    """The detailed summary of a built model as a string.

    Args:
        model: a built ``Sequential``.
        columns: column names from :data:`ALL_COLUMNS` (default :data:`DEFAULT_COLUMNS`), a sequence or
            one comma-separated string.
        fmt: 'text', 'rich', 'markdown', 'json' or 'html'.
        width: console width for 'rich'.

    Raises:
        ConfigError: for an unknown format or column (the message lists the valid ones).
        StateError: for a model without an input shape.

    Shapes:
        Output shapes are shown with a None batch axis: (None, OH, OW, F).
    """
    fmt = check_choice(fmt, "format", FORMATS, owner="summary")
    names = check_columns(columns)
    if fmt == "rich":
        from rich.console import Console

        buffer = io.StringIO()
        Console(file=buffer, width=width, force_terminal=False, color_system=None).print(rich_renderable(model, names))
        return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())
    stats = model_stats(model)
    if fmt == "json":
        return _json(model, stats, None if columns is None else names)
    render_fn = {"text": _text, "markdown": _markdown, "html": _html}[fmt]
    return render_fn(model, stats, names)
