"""The explanation's notebook view: static content checked against the ops, the player checked in Chromium."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from convlens import ops
from convlens.lab import explain
from convlens.lab.explain_html import explain_html

X = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float)
K = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)


def _conv_value(x: np.ndarray, k: np.ndarray, padding: str = "valid") -> np.ndarray:
    return ops.conv2d(x[None, :, :, None], k[:, :, None, None], padding=padding)[0, :, :, 0]


def test_html_shows_step_one_products_and_sum_from_the_op() -> None:
    trace = explain.convolution(X, K)
    page = trace._repr_html_()
    products = (X[:3, :3] * K).ravel()  # step 1's element-wise products, computed here
    value = _conv_value(X, K)[0, 0]
    terms = " + ".join(str(int(p)) for p in products)
    assert f"out[0,0] = sum = {terms} = {int(value)}" in page
    middle = re.search(r'<table data-grid="middle".*?</table>', page, re.S)
    assert middle is not None
    assert re.findall(r">(-?\d+)</td>", middle.group(0)) == [str(int(p)) for p in products]
    assert page.count("<tr data-step=") == 9  # the step table
    assert 'src="data:image/gif;base64,' in page  # the animation that plays without JavaScript
    assert "out height: OH = (H + PT + PB - ((KH - 1) * DH + 1)) // SH + 1 = (5 + 0 + 0 - 3) // 1 + 1 = 3" in page
    assert "(grey: padding)" not in page  # no padding, no legend for it
    assert "(grey: padding)" in explain.convolution(X, K, padding="same")._repr_html_()
    assert "<script src" not in page
    assert "http" not in page


def test_short_text_repr_and_pooling_view() -> None:
    trace = explain.convolution("5x5", "sobel_x")
    text = repr(trace)
    assert text.startswith("<ConvTrace: convolution, input 5x5, window 3x3")
    assert len(text) < 300
    pool = explain.pooling([[1, 3, 0, 0], [4, 2, 0, 5], [0, 0, 1, 1], [0, 0, 1, 0]], pool_size=2)
    page = explain_html(pool, gif=False)
    assert "out[0,0] = max(window) = 4 at input[1, 0]" in page
    assert "data:image/gif" not in page
    assert repr(pool).startswith("<PoolTrace: max pooling")


@pytest.mark.slow
def test_player_steps_through_products_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    browser_path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(browser_path) and os.environ.get("CI") != "true":
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    x = np.arange(25, dtype=float).reshape(5, 5)
    trace = explain.convolution(x, K, strides=2, padding="same")
    page_file = tmp_path / "explain.html"
    page_file.write_text(f"<!doctype html><html><body>{trace._repr_html_()}</body></html>")
    padded = np.pad(x, 1)  # TF 'same', 5 -> 3 with stride 2: total padding (3 - 1) * 2 + 3 - 5 = 2, one per side
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(page_file.as_uri())
        view = page.locator(".convlens-explain")
        assert not view.locator('[data-role="gif"]').is_visible()  # the player replaces the GIF
        view.locator('button[data-action="next"]').click()
        shown = view.locator('[data-grid="middle"]').inner_text().split()
        expected = padded[0:3, 2:5] * K  # step 2: output (0, 1) reads rows 0..2, cols 2..4
        assert shown == [str(int(v)) for v in expected.ravel()]
        assert view.locator('[data-role="label"]').inner_text() == "step 2/9"
        stride2 = ops.conv2d(x[None, :, :, None], K[:, :, None, None], strides=2, padding="same")[0, :, :, 0]
        assert view.locator('[data-role="caption"]').inner_text().endswith(f"= {int(stride2[0, 1])}")
        view.locator('button[data-action="last"]').click()
        out = view.locator('[data-grid="output"]').inner_text().split()
        assert out == [str(int(v)) for v in stride2.ravel()]
        browser.close()
    assert errors == []
