"""The notebooks in docs/notebooks, executed in a real Jupyter kernel with nbclient (slow tier: CI runs them).

Each must run without an error and show what a learner should see: the live progress bar updated in place
while an epoch runs, the model's HTML summary, explanations whose HTML holds the products computed by the
op, figures as PNG with short text fallbacks, the widgets as Jupyter widget views.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from convlens import ops

NOTEBOOKS = Path(__file__).resolve().parents[1] / "docs" / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # what a notebook stores for an (any)widget
pytestmark = pytest.mark.slow


class RecordingClient(NotebookClient):
    """Keeps every message the kernel sends while a cell runs, with the kernel's timestamp."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.messages: list[tuple[int, dict[str, Any]]] = []

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        self.messages.append((cell_index, msg))
        return super().process_message(msg, cell, cell_index)


def _run(name: str, tmp_path: Path) -> tuple[Any, RecordingClient]:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = RecordingClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb, client


def _mime(nb: Any) -> list[set[str]]:
    """Per code cell, the MIME types of its rich outputs."""
    return [
        {kind for out in cell.outputs for kind in out.get("data", {})} for cell in nb.cells if cell.cell_type == "code"
    ]


def _text(nb: Any) -> str:
    return "".join(
        out.get("text", "") + "".join(str(v) for v in out.get("data", {}).values())
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


def _data(page: str) -> Any:
    """The trace an explanation's HTML hands its step view (its JSON block)."""
    block = re.search(r'class="convlens-data">(.*?)</script>', page, re.S)
    assert block is not None
    return json.loads(block.group(1).replace("<\\/", "</"))["trace"]


def test_notebooks_are_stored_without_outputs() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == [
        "01_course_example.ipynb",
        "02_stride_and_padding.ipynb",
        "03_what_the_filters_learned.ipynb",
        "04_sweep.ipynb",
    ]
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def test_course_example_live_progress_and_reprs(tmp_path: Path) -> None:
    nb, client = _run("01_course_example.ipynb", tmp_path)
    mime = _mime(nb)
    assert {"text/html", "text/plain"} <= mime[0]  # `model`: the styled summary and Keras's text
    summary = next(o for o in nb.cells[1].outputs if o.output_type == "execute_result")
    assert summary["data"]["text/plain"] == "<Sequential name=sequential, built=True>"
    assert "border:1px solid" in summary["data"]["text/html"]
    assert all("image/png" in m for m in mime[-3:])  # curves, feature maps, Grad-CAM
    # live progress: the fit cell's bar was updated in place, mid-epoch, before the epoch's final line
    fit_cell = next(i for i, c in enumerate(nb.cells) if "model.fit(" in c.source)
    bars = []
    for index, msg in client.messages:
        if index == fit_cell and msg["msg_type"] in ("display_data", "update_display_data"):
            match = re.match(r"\s*(\d+)/(\d+) ", msg["content"]["data"]["text/plain"])
            assert match is not None
            bars.append((msg["header"]["date"], int(match.group(1)), int(match.group(2)), msg["msg_type"]))
    first_final = next(b for b in bars if b[1] == b[2])
    partial = [b for b in bars if b[1] < b[2]]
    assert partial, "no progress update before the epoch ended"
    assert partial[0][0] < first_final[0]  # sent while the epoch was still running
    assert any(kind == "update_display_data" for *_, kind in partial)  # updated in place, not appended
    # the saved notebook keeps one bar per epoch (the final state), not every update
    fit_outputs = nb.cells[fit_cell].outputs
    assert [o.output_type for o in fit_outputs].count("display_data") == 2
    assert "Epoch 2/2" in _text(nb)


def test_stride_and_padding_explanations_hold_the_ops_products(tmp_path: Path) -> None:
    nb, _ = _run("02_stride_and_padding.ipynb", tmp_path)
    x = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float)
    k = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)
    first = next(c for c in nb.cells if "explain.convolution(x, k)" in c.source)
    page = first.outputs[0]["data"]["text/html"]
    products = x[:3, :3] * k
    out = ops.conv2d(x[None, :, :, None], k[:, :, None, None])[0, :, :, 0]
    terms = " + ".join(str(int(v)) for v in products.ravel())
    row = re.search(r'<tr data-step="0">(.*?)</tr>', page)  # step 1's row of the step table
    assert row is not None
    assert "out[0, 0]" in row.group(1)
    assert f"sum = {terms} = {int(out[0, 0])}</td>" in row.group(1)
    assert _data(page)["steps"][0]["products"] == products.tolist()  # what the step view draws
    assert all(f"= {int(v)}</td>" in page for v in out.ravel())  # every step's value in the step table
    assert first.outputs[0]["data"]["text/plain"].startswith("<ConvTrace: convolution, input 5x5")
    ramp = next(c for c in nb.cells if "explain.convolution('ramp:6x6'" in c.source).outputs[0]["data"]["text/html"]
    assert _data(ramp)["geometry"]["pads"] == [[0, 1], [0, 1]]  # TF 'same', 6 -> 3 with stride 2: pad 1, after
    assert "function drawConvSteps(" in ramp  # the page's step view, inlined
    assert "data:image/gif;base64," in ramp
    text = _text(nb)
    assert "same  stride 2: out (14, 14), pads ((0, 1), (0, 1))" in text
    assert "max(window) = 4 at input[1, 0]" in text
    # the widget: shown as a Jupyter widget view; a trait set from Python re-traced (ceil(7 / 3) = 3, 'same')
    widget = next(c for c in nb.cells if "ExplainWidget(" in c.source)
    assert WIDGET_VIEW in {kind for out in widget.outputs for kind in out.get("data", {})}
    changed = next(c for c in nb.cells if "w.strides = [3, 3]" in c.source)
    side = math.ceil(7 / 3)
    assert changed.outputs[0]["text"].startswith(f"[{side}, {side}]\n'same' (TensorFlow rule)")


def test_filters_notebook_pictures(tmp_path: Path) -> None:
    nb, _ = _run("03_what_the_filters_learned.ipynb", tmp_path)
    pictures = [m for m in _mime(nb) if "image/png" in m]
    assert len(pictures) == 6
    assert all("text/plain" in m for m in pictures)
    text = _text(nb)
    assert "reached the upper bound" in text  # the maximisation curve rises to the first layer's bound
    assert "<GradCamResult: HiResCAM of class" in text
    assert "all zero: every position" not in text
    explorer = next(c for c in nb.cells if "FeatureMapExplorer(" in c.source)
    assert WIDGET_VIEW in {kind for out in explorer.outputs for kind in out.get("data", {})}


def test_sweep_notebook(tmp_path: Path) -> None:
    nb, _ = _run("04_sweep.ipynb", tmp_path)
    text = _text(nb)
    assert "sweep: 4/4 trials done (4 ok)" in text
    assert "| rank |" in text
    assert "image/png" in _mime(nb)[-1]
