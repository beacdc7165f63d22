"""An explain trace as one self-contained HTML fragment: what Jupyter shows for ``explain.convolution(...)``.

The fragment holds, top to bottom: the set-up line; the step view of the page (``web/static/js/draw``:
the padded input with the window's taps, the kernel, the step's element-wise products and their sum or,
for pooling, the window and its winner, and the output filling in) with play / step / scrub controls;
an animated GIF of the first steps; the step table (every step's window and ``sum = ... = value``); the
output-size formula.

The step view is drawn by the page's own drawing modules (``conv_step.js``, ``stepper.js``), inlined into
one classic ``<script>`` by :mod:`convlens.lab.jsbundle` and fed the JSON block in the fragment
(``<script type="application/json" class="convlens-data">``: ``{"trace": trace_data(trace)}``), with their
stylesheet in a ``<style>`` whose variables are scoped to the fragment. No CDN, nothing fetched.

Without JavaScript (an untrusted notebook, GitHub's viewer) the GIF plays and the table lists the steps,
both styled inline; with it, the step view replaces the GIF.

>>> from convlens.lab.explain import convolution
>>> page = explain_html(convolution([[1, 2], [3, 4]], [[1, 1], [1, 1]]), gif=False)
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

from convlens.lab.explain import ConvStep, ConvTrace, PoolTrace
from convlens.lab.render_explain import describe_geometry, fmt_value, output_formula, sum_text

__all__ = ["explain_html", "gif_data_uri", "step_captions", "trace_data"]


def trace_data(trace: ConvTrace | PoolTrace) -> dict[str, Any]:
    """What the step view (``draw/conv_step.js``) reads: ``trace.to_dict()`` without the partial maps.

    A convolution's steps also leave out their window (the view reads it on ``padded``); a pooling's keep
    theirs (padding shows as ``None`` there). The page's playground sends the same.
    """
    data = trace.to_dict(include_maps=False)
    if data["kind"] == "conv":
        for step in data["steps"]:
            del step["window"], step["real"]
    return data


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


def gif_data_uri(trace: ConvTrace | PoolTrace, max_steps: int | None, fps: float = 2.0) -> str:
    """The animation (:func:`convlens.lab.animate.save_animation`) as a ``data:image/gif;base64,`` URI."""
    from convlens.lab.animate import save_animation

    with tempfile.TemporaryDirectory() as folder:
        path = save_animation(trace, Path(folder) / "explain.gif", fps=fps, max_steps=max_steps)
        data = path.read_bytes()
    return "data:image/gif;base64," + base64.b64encode(data).decode("ascii")


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


# The player: the page's step view and the notebook's step controls on the fragment's JSON block. The
# script finds its fragment from itself (document.currentScript), or by id where a host evaluates it apart.
_PLAYER = """import { drawConvSteps } from "./conv_step.js";
import { createStepper } from "./stepper.js";
const me = document.currentScript;
const root = (me && me.closest(".convlens-explain")) || document.getElementById("ROOT_ID");
if (root && !root.dataset.ready) {
  root.dataset.ready = "1";
  const data = JSON.parse(root.querySelector("script.convlens-data").textContent);
  const gif = root.querySelector('[data-role="gif"]');
  if (gif) gif.hidden = true;
  const view = drawConvSteps(root.querySelector('[data-role="stage"]'), data.trace);
  const rows = root.querySelectorAll("tr[data-step]");
  const mark = (p) => rows.forEach((tr) => { tr.style.background = Number(tr.dataset.step) === p ? "#fff2cc" : ""; });
  createStepper(root.querySelector('[data-role="controls"]'), view.steps, view.show, { onMove: mark });
}
"""


def explain_html(trace: ConvTrace | PoolTrace, *, max_steps: int = 30, gif: bool = True) -> str:
    """The self-contained HTML fragment for ``trace`` (see the module doc).

    Args:
        trace: a convolution or pooling trace.
        max_steps: steps in the GIF and the table (the player covers every step).
        gif: embed the GIF (the animation that plays without JavaScript).
    """
    from convlens.lab.jsbundle import draw_css, script

    g = trace.geometry
    what = "convolution (cross-correlation)" if isinstance(trace, ConvTrace) else f"{trace.pool} pooling"
    captions = step_captions(trace)
    root = f"convlens-explain-{uuid.uuid4().hex[:10]}"
    payload = json.dumps({"trace": trace_data(trace)}, separators=(",", ":")).replace("</", "<\\/")
    source = (
        f"<div style='font:12px sans-serif;color:#555'>input: {html.escape(trace.source)}</div>" if trace.source else ""
    )
    formula = "<br>".join(html.escape(line) for line in output_formula(g))
    player = script(_PLAYER.replace("ROOT_ID", root)).replace("</script", "<\\/script")  # cannot end the tag
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
        'style="font:13px sans-serif;color:#1f2328;background:#fff;padding:6px">'
        f"<div style='font-weight:bold'>{html.escape(what)}: {html.escape(describe_geometry(g))}</div>{source}"
        '<div data-role="controls"></div><div data-role="stage" style="overflow-x:auto"></div>'
        f"{animation}{_step_table(trace, captions, max_steps)}"
        f"<div style='font:12px monospace;margin-top:6px'>{formula}</div>"
        f"<style>{draw_css('.convlens-explain')}</style>"
        f'<script type="application/json" class="convlens-data">{payload}</script>'
        f"<script>{player}</script></div>"
    )
