"""Sweep reports: a table sorted by test accuracy (terminal, CSV, Markdown) and an HTML page.

The HTML page embeds (as base64 PNG) plots of test accuracy against parameters, MACs and training
time with each plot's Pareto front marked, the ranked table, each trial's first-layer feature maps
as thumbnails, and the invalid/failed trials with their reasons.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from convlens.errors import ConfigError

__all__ = [
    "FORMATS",
    "figure_png",
    "pareto_front",
    "print_table",
    "ranked",
    "table",
    "to_csv",
    "to_html",
    "to_markdown",
    "write_report",
]

FORMATS = ("html", "csv", "markdown", "table", "png")
_PLOTS = (("params", "parameters"), ("macs", "MACs"), ("train_time", "train time (s)"))


def pareto_front(costs: Sequence[float], accuracies: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats: lower-or-equal cost AND higher-or-equal accuracy, one strictly.

    Returned in order of increasing cost. Equal points are all on the front (neither beats the other).

    Shapes:
        costs (P,), accuracies (P,) -> indices (K,), K <= P.

    >>> pareto_front([1, 2, 3, 2], [0.5, 0.9, 0.8, 0.4])
    [0, 1]
    """
    if len(costs) != len(accuracies):
        raise ConfigError(f"pareto_front: got {len(costs)} costs but {len(accuracies)} accuracies.")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -accuracies[i]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if accuracies[i] > best:
            front.append(i)
            best = accuracies[i]
        elif front and accuracies[i] == best and costs[i] == costs[front[-1]] and accuracies[front[-1]] == best:
            front.append(i)
    return front


def ranked(trials: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """OK trials by test accuracy (highest first; ties: fewer parameters first), then INVALID, then FAILED."""
    order = {"OK": 0, "INVALID": 1, "FAILED": 2}

    def key(t: dict[str, Any]) -> tuple[int, float, float, int]:
        accuracy = t.get("test_accuracy")
        return (
            order.get(t["status"], 3),
            -(accuracy if accuracy is not None else -1.0),
            t.get("params") or 0,
            t.get("id") or 0,
        )

    return sorted(trials, key=key)


def _config_keys(trials: Sequence[dict[str, Any]]) -> list[str]:
    configs = [t["config"] for t in trials]
    keys = [k for k in (configs[0] if configs else {}) if len({repr(c.get(k)) for c in configs}) > 1]
    keys = keys or ["kernel_size", "strides", "padding"]
    if "dataset" not in keys and any(c.get("dataset", "mnist") != "mnist" for c in configs):
        keys.insert(0, "dataset")  # say which data a non-MNIST sweep ran on
    return keys


def _rf_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


def table(trials: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headers and text rows of the ranked table (the varying configuration keys, then the measurements).

    Shapes:
        no arrays.
    """
    keys = _config_keys(trials)
    headers = ["rank", *keys, "params", "MACs", "RF", "train s", "test acc", "status"]
    rows = []
    for rank, t in enumerate(ranked(trials), start=1):
        ok = t["status"] == "OK"
        status = t["status"] if ok else f"{t['status']}: {t.get('reason') or ''}"
        rows.append(
            [
                str(rank) if ok else "-",
                *(str(t["config"].get(k)) for k in keys),
                "" if t.get("params") is None else f"{t['params']:,}",
                "" if t.get("macs") is None else f"{t['macs']:,}",
                _rf_text(t.get("receptive_field")),
                "" if t.get("train_time") is None else f"{t['train_time']:.1f}",
                "" if t.get("test_accuracy") is None else f"{t['test_accuracy'] * 100:.2f}%",
                status,
            ]
        )
    return headers, rows


def to_csv(trials: Sequence[dict[str, Any]]) -> str:
    """The ranked table as CSV (raw numbers: accuracy as a fraction, times in seconds)."""
    keys = list(trials[0]["config"]) if trials else []
    columns = ["status", *keys, "params", "macs", "receptive_field", "train_time", "test_loss", "test_accuracy"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*columns, "reason"])
    for t in ranked(trials):
        values = [t["status"], *(t["config"].get(k) for k in keys)]
        values += [t.get(c) for c in ("params", "macs")] + [_rf_text(t.get("receptive_field"))]
        values += [t.get(c) for c in ("train_time", "test_loss", "test_accuracy")]
        writer.writerow(["" if v is None else v for v in values] + [t.get("reason") or ""])
    return buffer.getvalue()


def to_markdown(trials: Sequence[dict[str, Any]]) -> str:
    """The ranked table as a GitHub Markdown table."""
    headers, rows = table(trials)

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def print_table(trials: Sequence[dict[str, Any]], stream: TextIO | None = None) -> None:
    """Print the ranked table: a rich table on a terminal, aligned plain text otherwise."""
    stream = stream if stream is not None else sys.stdout
    headers, rows = table(trials)
    if stream.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ModuleNotFoundError:  # pragma: no cover - rich is in the lab extra
            pass
        else:
            grid = Table(title="convlens sweep: trials by test accuracy")
            for header in headers:
                grid.add_column(header, justify="left" if header == "status" else "right")
            for row in rows:
                grid.add_row(*row)
            Console(file=stream).print(grid)
            return
    rows = [[*row[:-1], row[-1] if len(row[-1]) <= 90 else row[-1][:87] + "..."] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    last = len(headers) - 1
    for row in [headers, *rows]:
        cells = [c.ljust(w) if i == last else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        stream.write("  ".join(cells).rstrip() + "\n")


def figure_png(trials: Sequence[dict[str, Any]], dpi: int = 90) -> bytes:
    """Accuracy vs parameters, MACs and train time (Pareto front in red), as one PNG.

    Shapes:
        no arrays.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ok = [t for t in trials if t["status"] == "OK" and t.get("test_accuracy") is not None]
    fig = Figure(figsize=(12, 3.6), dpi=dpi, layout="constrained")
    for ax, (column, label) in zip(fig.subplots(1, 3), _PLOTS, strict=True):
        points = [(t[column], t["test_accuracy"] * 100) for t in ok if t.get(column) is not None]
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        if not points:
            ax.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center", transform=ax.transAxes)
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.scatter(xs, ys, s=24, color="tab:blue", alpha=0.7, label="trial")
        front = pareto_front(xs, ys)
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "o-", color="tab:red", ms=6, label="Pareto front")
        if column in ("params", "macs"):
            ax.set_xscale("log")
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"convlens sweep: {len(ok)} trials (upper left is better)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _img(data: bytes | None, alt: str) -> str:
    if not data:
        return ""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def to_html(trials: Sequence[dict[str, Any]], title: str = "convlens sweep report") -> str:
    """A self-contained HTML page: plots, the ranked table with feature-map thumbnails, invalid/failed trials."""
    headers, rows = table(trials)
    order = ranked(trials)
    body = [f"<h1>{html.escape(title)}</h1>"]
    counts = {s: sum(t["status"] == s for t in trials) for s in ("OK", "INVALID", "FAILED")}
    body.append("<p>" + ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) + " trials.</p>")
    body.append('<div class="plots">' + _img(figure_png(trials), "accuracy vs cost, Pareto front") + "</div>")
    body.append("<h2>Trials by test accuracy</h2><table><tr>")
    body.append("".join(f"<th>{html.escape(h)}</th>" for h in headers) + "<th>first-layer feature maps</th></tr>")
    for trial, row in zip(order, rows, strict=True):
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
        thumb = _img(trial.get("feature_png"), f"feature maps of trial {trial.get('id')}")
        body.append(f'<tr class="{trial["status"].lower()}">{cells}<td class="thumb">{thumb}</td></tr>')
    body.append("</table>")
    style = (
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}tr.invalid,tr.failed{color:#888}"
        "td:nth-last-child(2){text-align:left;max-width:28em}.plots img{max-width:100%}"
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def write_report(trials: Sequence[dict[str, Any]], fmt: str = "table", output: str | Path | None = None) -> str | None:
    """Render ``trials`` as ``fmt`` ('html', 'csv', 'markdown', 'table', 'png') to ``output`` or stdout.

    HTML and PNG need ``output``. Files are written atomically. Returns the path written, if any.

    Shapes:
        no arrays.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"sweep report: `format` must be one of {list(FORMATS)}, got {fmt!r}.")
    if fmt in ("html", "png") and output is None:
        raise ConfigError(f"sweep report: the {fmt} format needs an output file (-o report.{fmt}).")
    if fmt == "table" and output is None:
        print_table(trials)
        return None
    content: str | bytes
    if fmt == "html":
        content = to_html(trials)
    elif fmt == "png":
        content = figure_png(trials)
    elif fmt == "csv":
        content = to_csv(trials)
    elif fmt == "markdown":
        content = to_markdown(trials)
    else:
        text = io.StringIO()
        print_table(trials, text)
        content = text.getvalue()
    if output is None:
        sys.stdout.write(content if isinstance(content, str) else "")
        return None
    path = Path(output)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content, encoding="utf-8")
    tmp.replace(path)
    return str(path)
