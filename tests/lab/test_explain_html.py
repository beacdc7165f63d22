"""The explanation's notebook view: static content checked against the ops, the player checked in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convlens import ops
from convlens.lab import explain
from convlens.lab.explain_html import explain_html

X = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float)
K = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)


def _conv_value(x: np.ndarray, k: np.ndarray, padding: str = "valid") -> np.ndarray:
    return ops.conv2d(x[None, :, :, None], k[:, :, None, None], padding=padding)[0, :, :, 0]


def _data(page: str) -> dict[str, Any]:
    block = re.search(r'<script type="application/json" class="convlens-data">(.*?)</script>', page, re.S)
    assert block is not None
    return json.loads(block.group(1).replace("<\\/", "</"))


def test_html_shows_step_one_products_and_sum_from_the_op() -> None:
    trace = explain.convolution(X, K)
    page = trace._repr_html_()
    products = (X[:3, :3] * K).ravel()  # step 1's element-wise products, computed here
    value = _conv_value(X, K)[0, 0]
    terms = " + ".join(str(int(p)) for p in products)
    assert f"sum = {terms} = {int(value)}</td>" in page  # step 1's row of the step table
    data = _data(page)["trace"]  # what the page's step view draws
    assert data["steps"][0]["products"] == products.reshape(3, 3).tolist()
    assert data["output"] == _conv_value(X, K).tolist()
    assert "window" not in data["steps"][0]  # read on `padded` by the view
    assert page.count("<tr data-step=") == 9  # the step table
    assert 'src="data:image/gif;base64,' in page  # the animation that plays without JavaScript
    assert "out height: OH = (H + PT + PB - ((KH - 1) * DH + 1)) // SH + 1 = (5 + 0 + 0 - 3) // 1 + 1 = 3" in page
    assert "<script src" not in page
    assert "http" not in page
    # the player is the page's drawing modules, inlined once; their styles scoped to the fragment
    assert page.count("function drawConvSteps(") == 1
    assert page.count("function createStepper(") == 1
    assert ":root" not in page
    assert ".convlens-explain {" in page


def test_short_text_repr_and_pooling_view() -> None:
    trace = explain.convolution("5x5", "sobel_x")
    text = repr(trace)
    assert text.startswith("<ConvTrace: convolution, input 5x5, window 3x3")
    assert len(text) < 300
    pool = explain.pooling([[1, 3, 0, 0], [4, 2, 0, 5], [0, 0, 1, 1], [0, 0, 1, 0]], pool_size=2)
    page = explain_html(pool, gif=False)
    assert "max(window) = 4 at input[1, 0]" in page
    assert "data:image/gif" not in page
    assert _data(page)["trace"]["steps"][0]["window"] == [[1.0, 3.0], [4.0, 2.0]]
    assert repr(pool).startswith("<PoolTrace: max pooling")


@pytest.mark.slow
def test_player_steps_through_products_in_chromium(tmp_path: Path, browser: Any) -> None:
    x = np.arange(25, dtype=float).reshape(5, 5)
    trace = explain.convolution(x, K, strides=2, padding="same")
    page_file = tmp_path / "explain.html"
    # two explanations on one page: each player drives its own fragment
    other = explain.pooling([[1, 3], [4, 2]], pool_size=2)._repr_html_()
    page_file.write_text(f"<!doctype html><html><body>{trace._repr_html_()}{other}</body></html>")
    padded = np.pad(x, 1)  # TF 'same', 5 -> 3 with stride 2: total padding (3 - 1) * 2 + 3 - 5 = 2, one per side
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    view = page.locator(".convlens-explain").first
    assert not view.locator('[data-role="gif"]').is_visible()  # the player replaces the GIF
    view.locator('[data-step="next"]').click()
    shown = view.locator(".cl-products-grid .cl-cell").evaluate_all("cs => cs.map(c => +c.dataset.value)")
    expected = padded[0:3, 2:5] * K  # step 2: output (0, 1) reads rows 0..2, cols 2..4
    assert shown == expected.ravel().tolist()
    assert view.locator(".cl-stepper-pos").inner_text() == "step 2 / 9"
    marked = view.locator("tr[data-step]").evaluate_all("rs => rs.map(r => r.style.background !== '')")
    assert marked == [i == 1 for i in range(9)]  # the step table's row of the step shown
    stride2 = ops.conv2d(x[None, :, :, None], K[:, :, None, None], strides=2, padding="same")[0, :, :, 0]
    assert float(view.locator(".cl-sum-text").get_attribute("data-total")) == stride2[0, 1]
    view.locator('[data-step="last"]').click()
    out = view.locator(".cl-output-grid .cl-cell").evaluate_all("cs => cs.map(c => +c.dataset.value)")
    assert out == stride2.ravel().tolist()
    pool = page.locator(".convlens-explain").nth(1)
    assert pool.locator(".cl-output-grid .cl-cell").evaluate_all("cs => cs.map(c => +c.dataset.value)") == [4.0]
    assert pool.locator(".cl-stepper-pos").inner_text() == "step 1 / 1"
    page.close()
    assert errors == []
    assert [u for u in requests if not u.startswith("file:")] == []
