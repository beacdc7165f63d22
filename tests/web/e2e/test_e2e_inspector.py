"""The inspector in Chromium: a drawn digit's probabilities are model.predict's, a clicked unit lights up
exactly its receptive field (PyTorch's gradient support) and shows the dot product behind its value."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

import convlens as cl
from convlens.lab import samples
from convlens.lab.viz.activations import layer_outputs
from tests.support.receptive import box, receptive_mask
from tests.web.e2e.conftest import Served, open_page

pytestmark = pytest.mark.slow


def _course(server: Served) -> Any:
    return cl.load_model(server.models / "course.npz")


def _bars(page: Any) -> list[float]:
    return [float(v) for v in page.eval_on_selector_all("#in-probs .cl-bar", "bs => bs.map(b => b.dataset.value)")]


def test_a_drawn_digit_gets_model_predict_probabilities(page: Any, server: Served) -> None:
    open_page(page, server, "?tab=inspector&i.src=draw")
    canvas = page.wait_for_selector("#in-sketch canvas")
    b = canvas.bounding_box()
    assert b is not None
    # a "7": a bar across the top, then a stroke down to the lower left
    points = [(0.3, 0.25), (0.72, 0.25), (0.6, 0.5), (0.45, 0.8)]
    page.mouse.move(b["x"] + points[0][0] * b["width"], b["y"] + points[0][1] * b["height"])
    page.mouse.down()
    for fx, fy in points[1:]:
        page.mouse.move(b["x"] + fx * b["width"], b["y"] + fy * b["height"], steps=12)
    page.mouse.up()
    page.wait_for_selector("body[data-in-state='ready']", state="attached")
    page.wait_for_selector("#in-probs .cl-bar")
    packed = parse_qs(urlparse(page.url).query)["i.px"][0]
    head, shape, data = packed.split(":")
    assert (head, shape) == ("u8", "28x28x1")
    raw = np.frombuffer(base64.b64decode(data), np.uint8)
    assert 20 < (raw > 0).sum() < 500  # something was drawn, not everything
    pixels = (raw.astype(np.float64) / 255).astype(np.float32).reshape(1, 28, 28, 1)
    expected = _course(server).predict(pixels, verbose=0)[0]
    assert _bars(page) == expected.tolist()
    assert page.get_attribute("#in-probs", "data-predicted") == str(int(np.argmax(expected)))


def test_a_clicked_unit_lights_exactly_its_receptive_field(page: Any, server: Served) -> None:
    model = _course(server)
    conv, pool = model.layers[0].name, model.layers[1].name
    open_page(page, server, "?tab=inspector&i.idx=3")
    page.wait_for_selector("body[data-in-state='ready']", state="attached")
    x, _ = samples.sample_image("mnist", 3)
    assert _bars(page) == model.predict(x[None], verbose=0)[0].tolist()
    image = x[..., 0]
    for layer, size, (row, col, channel), chain in [
        (pool, 14, (0, 13, 5), [("conv", 3, 1, "same"), ("pool", 2, 2, "valid")]),
        (pool, 14, (6, 4, 30), [("conv", 3, 1, "same"), ("pool", 2, 2, "valid")]),
        (conv, 28, (27, 10, 2), [("conv", 3, 1, "same")]),
    ]:
        tile = page.wait_for_selector(f".layer-block[data-layer='{layer}'] .cl-map[data-channel='{channel}'] canvas")
        tile.scroll_into_view_if_needed()
        b = tile.bounding_box()
        assert b is not None
        cell = b["width"] / size
        page.mouse.click(b["x"] + (col + 0.5) * cell, b["y"] + (row + 0.5) * cell)
        page.wait_for_selector(f"#in-unit .cl-unit-head:has-text('[{row}, {col}], map {channel}')")
        layers = [{"kind": k, "kernel": (n, n), "strides": (s, s), "padding": p} for k, n, s, p in chain]
        mask = receptive_mask(layers, (28, 28), (row, col))
        shown = json.loads(page.get_attribute("#in-input", "data-box") or "null")
        assert {"rows": shown["rows"], "cols": shown["cols"]} == box(mask)
        # and on the pixels: a cell is tinted blue exactly when it lies in the field
        tinted = np.array(page.evaluate(
            """() => { const c = document.getElementById('in-input'); const s = c.width / 28;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const out = [];
                for (let r = 0; r < 28; r++) { const row = [];
                  for (let q = 0; q < 28; q++) {
                    const i = (Math.floor((r + 0.5) * s) * c.width + Math.floor((q + 0.5) * s)) * 4;
                    row.push(d[i + 2] > d[i] + 20); } out.push(row); } return out; }"""
        ))  # fmt: skip
        np.testing.assert_array_equal(tinted, mask)
        value = float(page.get_attribute("#in-unit .cl-unit-head", "data-value") or "nan")
        assert value == float(list(layer_outputs(model, x[None]).values())[model.layers.index(next(
            lay for lay in model.layers if lay.name == layer))][0, row, col, channel])  # fmt: skip
    # the last click was a conv unit: its products are window x kernel, their sum + bias the pre-activation
    kernel = model.layers[0].params["kernel"][..., 0, 2].astype(np.float64)
    window = np.pad(image.astype(np.float64), 1)[27:30, 10:13]
    products = [
        float(v) for v in page.eval_on_selector_all(".cl-unit-products .cl-cell", "cs => cs.map(c => c.dataset.value)")
    ]
    assert products == (window * kernel).ravel().tolist()
    assert float(page.get_attribute("#in-unit [data-sum]", "data-sum") or "nan") == pytest.approx(
        (window * kernel).sum(), abs=1e-12
    )
    query = parse_qs(urlparse(page.url).query)
    assert query["i.layer"] == [conv]
    assert query["i.unit"] == ["27,10,2"]


def test_views_summary_filters_and_attributions(page: Any, server: Served) -> None:
    open_page(page, server, "?tab=inspector&i.view=summary")
    page.wait_for_selector("#in-panel .cl-summary")
    rows = page.eval_on_selector_all("#in-panel .cl-summary tbody tr", "rs => rs.map(r => r.cells[2].textContent)")
    assert rows == ["3*3*1*32 + 32 = 320", "0", "0", "6272*10 + 10 = 62,730"]
    assert "Total params: 63,050" in page.text_content("#in-panel")
    page.click("#in-view [data-value='filters']")
    page.wait_for_selector("#in-panel .cl-filters")
    assert len(page.query_selector_all("#in-panel .cl-filters canvas.cl-heatmap")) == 32
    page.click("#in-view [data-value='attributions']")
    page.wait_for_selector("#in-panel figure canvas")
    assert "Grad-CAM on" in page.text_content("#in-panel")
    assert "HiResCAM on" in page.text_content("#in-panel")
