"""An explain trace as one self-contained HTML fragment: what Jupyter shows for ``explain.convolution(...)``.

The fragment holds, top to bottom: the set-up line; a stage (the padded input with the window, the kernel,
the step's element-wise products or, for pooling, the window and its winner, and the output so far) with
play / step / scrub controls; the current step's sum; an animated GIF of the first steps; the step table
(every step's window and ``sum = ... = value``); the output-size formula. Everything is styled inline
(no stylesheet, no CDN), so it reads the same in JupyterLab, VS Code, a browser or an exported page.

Without JavaScript (an untrusted notebook, GitHub's viewer) the stage shows step 1, the GIF plays and the
table lists the steps. With it, a small inline script drives the stage from the JSON block in the fragment
(``<script type="application/json" class="convlens-data">``): ``{"trace": {...}, "view": {...}}``. ``trace``
holds the fields of ``trace.to_dict()`` the player needs (kind, geometry, cells, padded, each step's
``start_padded``), under the same names; ``view`` holds the preformatted cell texts and captions, so the
script formats nothing itself. A later widget can render ``trace.to_dict()`` with the page's drawing modules.

>>> from convlens.lab.explain import convolution
>>> page = explain_html(convolution([[1, 2], [3, 4]], [[1, 1], [1, 1]]))
>>> "sum = 1 + 2 + 3 + 4 = 10" in page, page.count('class="convlens-data"')
(True, 1)
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from convlens.lab.explain import (
    CELL_INPUT,
    CELL_INSERTED,
    CELL_PAD,
    ConvStep,
    ConvTrace,
    PoolTrace,
    _geometry_dict,
)
from convlens.lab.render_explain import describe_geometry, fmt_value, output_formula, sum_text

__all__ = ["COLORS", "explain_html", "gif_data_uri", "step_captions"]

#: Cell colours, the same as the GIF's (convlens.lab.animate).
COLORS = {
    "input": "#ffffff",
    "pad": "#d9d9d9",
    "inserted": "#fff2cc",
    "tap": "#6fa8dc",
    "written": "#b6d7a8",
    "current": "#38761d",
    "winner": "#e69138",
    "products": "#deebf7",
}
_KIND = {CELL_INPUT: "input", CELL_PAD: "pad", CELL_INSERTED: "inserted"}
_TD = "border:1px solid #888;text-align:center;padding:0;font:{font}px monospace;width:{size}px;height:{size}px;"
_TABLE = "border-collapse:collapse;margin:0 0 4px 0;"


def _text(value: float) -> str:
    return "" if not np.isfinite(value) else fmt_value(float(value))


def step_captions(trace: ConvTrace | PoolTrace) -> list[str]:
    """One caption per step: ``out[r,c] = sum = p1 + ... = value`` (pooling: ``max(window) = v at input[i, j]``)."""
    out = []
    for s in trace.steps:
        head = f"out[{s.index[0]},{s.index[1]}] = "
        if isinstance(s, ConvStep):
            out.append(head + sum_text(s.products, trace.bias if isinstance(trace, ConvTrace) else 0.0, s.total))
        elif s.argmax is not None:
            out.append(head + f"max(window) = {fmt_value(s.value)} at input[{s.argmax[0]}, {s.argmax[1]}]")
        else:
            total = float(np.where(s.real, np.nan_to_num(s.window), 0.0).sum())
            out.append(head + f"avg = {fmt_value(total)} / {s.count} real cells = {fmt_value(s.value)}")
    return out


def _middle(trace: ConvTrace | PoolTrace) -> tuple[str, list[list[list[str]]], list[Any]]:
    """Title, per-step cell texts and per-step winner (pooling) of the grid between kernel and output."""
    if isinstance(trace, ConvTrace):
        texts = [[[_text(v) for v in row] for row in s.products] for s in trace.steps]
        return "products (window x kernel)", texts, [None] * len(trace.steps)
    texts = [[[_text(v) for v in row] for row in s.window] for s in trace.steps]
    winners = [
        None if s.argmax is None else [s.argmax[0] - s.start_input[0], s.argmax[1] - s.start_input[1]]
        for s in trace.steps
    ]
    return "window", texts, winners


def _cell_size(shape: tuple[int, ...]) -> int:
    return max(10, min(30, 360 // max(shape)))


def _table(name: str, texts: list[list[str]], colors: list[list[str]], size: int, *, numbers: bool = True) -> str:
    td = (
        _TD.format(font=max(8, min(12, size // 2 - 2)), size=size)
        if numbers
        else f"border:1px solid #999;padding:0;width:{size}px;height:{size}px;"
    )
    rows = []
    for row_texts, row_colors in zip(texts, colors, strict=True):
        cells = "".join(
            f'<td style="{td}background:{color}">{html.escape(t) if numbers else ""}</td>'
            for t, color in zip(row_texts, row_colors, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f'<table data-grid="{name}" style="{_TABLE}">{"".join(rows)}</table>'


def _grey(value: float) -> str:
    level = int(255 - 200 * float(np.clip(value, 0.0, 1.0))) if np.isfinite(value) else 255
    return f"rgb({level},{level},{level})"


def _figure(title: str, body: str) -> str:
    return (
        '<div style="display:inline-block;vertical-align:top;margin-right:16px">'
        f'<div style="font:12px sans-serif;margin-bottom:2px">{html.escape(title)}</div>{body}</div>'
    )


def gif_data_uri(trace: ConvTrace | PoolTrace, max_steps: int | None, fps: float = 2.0) -> str:
    """The animation (:func:`convlens.lab.animate.save_animation`) as a ``data:image/gif;base64,`` URI."""
    from convlens.lab.animate import save_animation

    with tempfile.TemporaryDirectory() as folder:
        path = save_animation(trace, Path(folder) / "explain.gif", fps=fps, max_steps=max_steps)
        data = path.read_bytes()
    return "data:image/gif;base64," + base64.b64encode(data).decode("ascii")


def _stage(trace: ConvTrace | PoolTrace, middle_title: str, middle: list[list[list[str]]], winners: list[Any]) -> str:
    g = trace.geometry
    step = trace.steps[0]
    size = _cell_size(trace.padded.shape)
    numbers = size >= 20
    taps = {(step.start_padded[0] + a * g.dilation_rate[0], step.start_padded[1] + b * g.dilation_rate[1])
            for a in range(g.kernel_size[0]) for b in range(g.kernel_size[1])}  # fmt: skip
    kinds = trace.cells
    colors = [
        [
            COLORS["tap"] if (r, c) in taps
            else COLORS[_KIND[int(kinds[r, c])]] if numbers or kinds[r, c] != CELL_INPUT
            else _grey(trace.padded[r, c])
            for c in range(kinds.shape[1])
        ]
        for r in range(kinds.shape[0])
    ]  # fmt: skip
    texts = [[_text(v) if k == CELL_INPUT else "" for v, k in zip(row, krow, strict=True)]
             for row, krow in zip(trace.padded, kinds, strict=True)]  # fmt: skip
    parts = [_figure("input" + (" (grey: padding)" if g.is_padded else ""), _table("input", texts, colors, size,
                                                                                   numbers=numbers))]  # fmt: skip
    msize = max(22, min(30, 120 // max(g.kernel_size)))
    if isinstance(trace, ConvTrace):
        kernel_texts = [[_text(v) for v in row] for row in trace.kernel]
        white = [[COLORS["input"]] * len(row) for row in kernel_texts]
        parts.append(_figure("kernel", _table("kernel", kernel_texts, white, msize)))
    fill = [[COLORS["products"]] * len(row) for row in middle[0]]
    if winners[0] is not None:
        fill[winners[0][0]][winners[0][1]] = COLORS["winner"]
    parts.append(_figure(middle_title, _table("middle", middle[0], fill, msize)))
    oh, ow = g.output_size
    osize = _cell_size((oh, ow))
    out_texts = [["" for _ in range(ow)] for _ in range(oh)]
    out_colors = [[COLORS["input"]] * ow for _ in range(oh)]
    out_texts[0][0] = _text(trace.output[0, 0]) if osize >= 20 else ""
    out_colors[0][0] = COLORS["current"]
    title = "output" if isinstance(trace, ConvTrace) else f"{trace.pool} pool"
    parts.append(_figure(title, _table("output", out_texts, out_colors, osize, numbers=osize >= 20)))
    return "".join(parts)


def _controls(n: int) -> str:
    button = "font:13px sans-serif;margin-right:4px;padding:1px 8px;cursor:pointer"
    names = [("first", "« first"), ("prev", "‹ prev"), ("play", "▶ play"), ("next", "next ›"), ("last", "last »")]
    buttons = "".join(f'<button type="button" data-action="{a}" style="{button}">{t}</button>' for a, t in names)
    return (
        f'<div class="cl-controls" style="margin:4px 0">{buttons}'
        f'<input type="range" min="1" max="{n}" value="1" data-action="scrub" style="vertical-align:middle;width:12em">'
        f' <span data-role="label" style="font:12px sans-serif">step 1/{n}</span></div>'
    )


def _step_table(trace: ConvTrace | PoolTrace, captions: list[str], limit: int) -> str:
    g = trace.geometry
    th = "border:1px solid #999;padding:2px 6px;background:#f0f0f0;font:12px sans-serif;text-align:left"
    td = "border:1px solid #ccc;padding:2px 6px;font:12px monospace;text-align:left;white-space:nowrap"
    head = "".join(f'<th style="{th}">{h}</th>' for h in ("step", "output", "window (input rows, cols)", "value"))
    rows = []
    steps: list[Any] = list(trace.steps[:limit])
    for i, (s, caption) in enumerate(zip(steps, captions, strict=False)):
        (r, c), (er, ec) = s.start_input, g.extent
        where = f"rows {r}..{r + er - 1}, cols {c}..{c + ec - 1}"
        value = caption.split(" = ", 1)[1]
        cells = [str(i + 1), f"out[{s.index[0]}, {s.index[1]}]", where, value]
        rows.append(
            f'<tr data-step="{i}">' + "".join(f'<td style="{td}">{html.escape(x)}</td>' for x in cells) + "</tr>"
        )
    more = len(trace.steps) - limit
    note = (
        f"<p style='font:12px sans-serif'>... {more} more steps (the player steps through all).</p>" if more > 0 else ""
    )
    table = (
        f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    opened = " open" if len(trace.steps) <= 16 else ""
    return (
        f'<details{opened}><summary style="font:12px sans-serif;cursor:pointer">all steps '
        f"({len(trace.steps)})</summary>{table}{note}</details>"
    )


def explain_html(trace: ConvTrace | PoolTrace, *, max_steps: int = 30, gif: bool = True) -> str:
    """The self-contained HTML fragment for ``trace`` (see the module doc).

    Args:
        trace: a convolution or pooling trace.
        max_steps: steps in the GIF and the table (the player covers every step).
        gif: embed the GIF (the animation that plays without JavaScript).
    """
    g = trace.geometry
    what = "convolution (cross-correlation)" if isinstance(trace, ConvTrace) else f"{trace.pool} pooling"
    captions = step_captions(trace)
    middle_title, middle, winners = _middle(trace)
    root = f"convlens-explain-{uuid.uuid4().hex[:10]}"
    oh, ow = g.output_size
    view = {
        "captions": captions,
        "middle": middle,
        "winners": winners,
        "output": [[_text(v) for v in row] for row in trace.output],
        "colors": COLORS,
        "numbers": {"input": _cell_size(trace.padded.shape) >= 20, "output": _cell_size((oh, ow)) >= 20},
    }
    slim = {  # what the player needs of the trace (trace.to_dict() has everything, for a richer front end)
        "kind": trace.kind,
        "geometry": _geometry_dict(trace.geometry),
        "cells": trace.cells.tolist(),
        "padded": [[None if not np.isfinite(v) else round(float(v), 3) for v in row] for row in trace.padded],
        "steps": [{"start_padded": list(s.start_padded)} for s in trace.steps],
    }
    payload = json.dumps({"trace": slim, "view": view}, separators=(",", ":")).replace("</", "<\\/")
    source = (
        f"<div style='font:12px sans-serif;color:#555'>input: {html.escape(trace.source)}</div>" if trace.source else ""
    )
    formula = "<br>".join(html.escape(line) for line in output_formula(g))
    animation = ""
    if gif:
        shown = min(max_steps, len(trace.steps))
        animation = (
            '<div data-role="gif" style="margin:6px 0"><div style="font:12px sans-serif;color:#555">animation of '
            f'the first {shown} of {len(trace.steps)} steps:</div><img alt="sliding-window animation" '
            f'src="{gif_data_uri(trace, max_steps)}"></div>'
        )
    return (
        f'<div class="convlens-explain" id="{root}" data-convlens-view="explain" '
        'style="font:13px sans-serif;color:#000;background:#fff;padding:6px">'
        f"<div style='font-weight:bold'>{html.escape(what)}: {html.escape(describe_geometry(g))}</div>{source}"
        f'<div data-role="stage" style="margin-top:6px">{_stage(trace, middle_title, middle, winners)}</div>'
        f"{_controls(len(trace.steps))}"
        f'<div data-role="caption" style="font:13px monospace;margin:2px 0 6px">{html.escape(captions[0])}</div>'
        f"{animation}{_step_table(trace, captions, max_steps)}"
        f"<div style='font:12px monospace;margin-top:6px'>{formula}</div>"
        f'<script type="application/json" class="convlens-data">{payload}</script>'
        f"<script>{_PLAYER.replace('ROOT_ID', root)}</script></div>"
    )


# The player: reads the JSON block, recolours and refills the four grids for a step. Plain ES5, no imports.
_PLAYER = """(function () {
  var root = document.getElementById("ROOT_ID");
  if (!root || root.dataset.ready) { return; }
  root.dataset.ready = "1";
  var data = JSON.parse(root.querySelector("script.convlens-data").textContent);
  var trace = data.trace, view = data.view, colors = view.colors, steps = trace.steps, n = steps.length;
  var g = trace.geometry, kinds = ["input", "pad", "inserted"];
  var ow = g.output_size[1], timer = null, current = 0;
  var gif = root.querySelector('[data-role="gif"]');
  if (gif) { gif.style.display = "none"; }
  function each(name, width, visit) {
    Array.prototype.forEach.call(root.querySelectorAll('[data-grid="' + name + '"] td'), function (td, i) {
      visit(td, Math.floor(i / width), i % width);
    });
  }
  function grey(v) {
    var l = Math.round(255 - 200 * Math.min(Math.max(v, 0), 1));
    return "rgb(" + l + "," + l + "," + l + ")";
  }
  function show(k) {
    current = Math.max(0, Math.min(n - 1, k));
    var s = steps[current], taps = {};
    for (var a = 0; a < g.kernel_size[0]; a++) {
      for (var b = 0; b < g.kernel_size[1]; b++) {
        taps[(s.start_padded[0] + a * g.dilation_rate[0]) + "," + (s.start_padded[1] + b * g.dilation_rate[1])] = 1;
      }
    }
    each("input", trace.cells[0].length, function (td, r, c) {
      var kind = kinds[trace.cells[r][c]];
      var plain = kind === "input" && !view.numbers.input ? grey(trace.padded[r][c]) : colors[kind];
      td.style.background = taps[r + "," + c] ? colors.tap : plain;
    });
    var winner = view.winners[current];
    each("middle", view.middle[0][0].length, function (td, r, c) {
      td.textContent = view.middle[current][r][c];
      td.style.background = winner && winner[0] === r && winner[1] === c ? colors.winner : colors.products;
    });
    each("output", ow, function (td, r, c) {
      var p = r * ow + c;
      td.textContent = p <= current && view.numbers.output ? view.output[r][c] : "";
      td.style.color = p === current ? "#fff" : "#000";
      td.style.background = p === current ? colors.current : (p < current ? colors.written : colors.input);
    });
    root.querySelector('[data-role="caption"]').textContent = view.captions[current];
    root.querySelector('[data-role="label"]').textContent = "step " + (current + 1) + "/" + n;
    root.querySelector('[data-action="scrub"]').value = current + 1;
    Array.prototype.forEach.call(root.querySelectorAll("tr[data-step]"), function (tr) {
      tr.style.background = +tr.dataset.step === current ? "#fff2cc" : "";
    });
  }
  function stop() {
    if (timer) { clearInterval(timer); timer = null; }
    root.querySelector('[data-action="play"]').textContent = "\\u25b6 play";
  }
  function play() {
    if (timer) { stop(); return; }
    if (current >= n - 1) { show(0); }
    root.querySelector('[data-action="play"]').textContent = "\\u23f8 pause";
    timer = setInterval(function () { if (current >= n - 1) { stop(); } else { show(current + 1); } }, 500);
  }
  var actions = {
    first: function () { stop(); show(0); }, prev: function () { stop(); show(current - 1); },
    next: function () { stop(); show(current + 1); }, last: function () { stop(); show(n - 1); }, play: play
  };
  Array.prototype.forEach.call(root.querySelectorAll("button[data-action]"), function (button) {
    button.addEventListener("click", actions[button.dataset.action]);
  });
  root.querySelector('[data-action="scrub"]').addEventListener("input", function (event) {
    stop();
    show(+event.target.value - 1);
  });
  show(0);
})();"""
