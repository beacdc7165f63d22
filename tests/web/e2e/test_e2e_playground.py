"""The playground in Chromium: the step shown is the engine's, settings update the formula, links reproduce."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import pytest

from convlens.geometry import WindowGeometry
from convlens.lab.render_explain import fmt_value, output_formula
from convlens.ops.conv import conv2d
from tests.support.reference import conv2d_reference
from tests.web.e2e.conftest import Served, Watch, open_page

pytestmark = pytest.mark.slow

X = np.array([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7], [9, 3, 2, 3, 8, 4, 6], [2, 6, 4, 3, 3, 8, 3],
              [2, 7, 9, 5, 0, 2, 8], [8, 4, 1, 9, 7, 1, 6]], dtype=float)  # fmt: skip
K = np.array([[1, 0, -1], [2, -1, -2], [1, 3, -1]], dtype=float)


def _rows(a: np.ndarray) -> str:
    return ";".join(",".join(f"{v:g}" for v in r) for r in a)


def _values(page: Any, selector: str) -> list[float]:
    return [float(v) for v in page.eval_on_selector_all(selector, "cells => cells.map(c => c.dataset.value)")]


def test_a_step_shows_the_engines_products_and_sum(page: Any, server: Served) -> None:
    query = {"p.src": "numbers", "p.nums": _rows(X), "p.k": "custom", "p.kn": _rows(K), "p.s": "2,1",
             "p.pad": "1,0,2,1", "p.bias": "0.5", "p.step": "9"}  # fmt: skip
    open_page(page, server, "?" + urlencode(query))
    page.wait_for_selector("body[data-pg-state='ready']", state="attached")
    pads = ((1, 0), (2, 1))
    engine = conv2d(X[None, ..., None], K[..., None, None], np.array([0.5]), strides=(2, 1), padding=pads)[0, ..., 0]
    reference = conv2d_reference(X[None, ..., None], K[..., None, None], np.array([0.5]), (2, 1), pads)[0, ..., 0]
    np.testing.assert_array_equal(engine, reference)
    oh, ow = engine.shape
    assert page.text_content("#pg-outsize") == f"Output {oh} × {ow}"
    row, col = divmod(8, ow)  # step 9 (1-based) is output cell 8 in row-major order
    padded = np.pad(X, pads)
    products = padded[row * 2 : row * 2 + 3, col : col + 3] * K
    assert _values(page, "#pg-steps .cl-products-grid .cl-cell") == products.ravel().tolist()
    total = float(page.get_attribute("#pg-steps .cl-sum-text", "data-total"))
    assert total == engine[row, col] == products.sum() + 0.5
    assert page.text_content("#pg-steps .cl-sum-text").endswith(f"+ bias 0.5 = {fmt_value(engine[row, col])}")
    # the output shows exactly the cells written so far, the current one marked
    written = page.eval_on_selector_all(
        "#pg-steps .cl-output-grid .cl-cell", "cs => cs.map(c => !c.classList.contains('is-unwritten'))"
    )
    assert written == [i <= 8 for i in range(oh * ow)]
    current = page.eval_on_selector("#pg-steps .cl-output-grid .is-current", "c => [c.dataset.r, c.dataset.c]")
    assert current == [str(row), str(col)]
    # the window's taps on the padded input
    taps = page.eval_on_selector_all(
        "#pg-steps .cl-input-grid .is-tap", "cs => cs.map(c => [+c.dataset.r, +c.dataset.c])"
    )
    assert sorted(taps) == [[row * 2 + a, col + b] for a in range(3) for b in range(3)]
    # stepping with the buttons moves to the next cell
    page.click("#pg-stepper [data-step='next']")
    assert (
        _values(page, "#pg-steps .cl-products-grid .cl-cell")
        == (
            padded[row * 2 : row * 2 + 3, col + 1 : col + 4] * K
            if col + 1 < ow
            else padded[(row + 1) * 2 : (row + 1) * 2 + 3, 0:3] * K
        )
        .ravel()
        .tolist()
    )
    assert parse_qs(urlparse(page.url).query)["p.step"] == ["10"]


def test_stride_and_padding_update_formula_and_size(page: Any, server: Served, watch: Watch) -> None:
    watch.allow(422)  # the kernel-larger-than-input step below
    open_page(page, server, "?p.src=ramp&p.h=9&p.w=7&p.k=sobel_y")
    page.wait_for_selector("body[data-pg-state='ready']", state="attached")
    assert page.text_content("#pg-outsize") == "Output 7 × 5"

    def formula_after(change: Any, geometry: WindowGeometry) -> None:
        change()
        size = "x".join(str(s) for s in geometry.output_size)
        page.wait_for_selector(f"#pg-outsize[data-size='{size}']")
        assert page.text_content("#pg-formula") == "\n".join(output_formula(geometry))

    formula_after(lambda: page.fill("#pg-stride-h", "2"), WindowGeometry.resolve((9, 7), 3, (2, 1), "valid"))
    formula_after(lambda: page.select_option("#pg-padding", "same"), WindowGeometry.resolve((9, 7), 3, (2, 1), "same"))
    assert "(9 + 1 + 1 - 3) // 2 + 1 = 5" in page.text_content("#pg-formula")
    formula_after(lambda: page.fill("#pg-stride-w", "3"), WindowGeometry.resolve((9, 7), 3, (2, 3), "same"))
    query = parse_qs(urlparse(page.url).query)
    assert query["p.s"] == ["2,3"]
    assert query["p.pad"] == ["same"]
    # the comparison table follows too: PyTorch's k//2 pads 1 on every side
    assert "PyTorch padding=k//2 = 1" in page.text_content("#pg-compare-box")
    # a kernel larger than the input says why, and what to change
    page.select_option("#pg-padding", "valid")
    page.fill("#pg-height", "2")
    page.wait_for_selector("body[data-pg-state='error']", state="attached")
    text = page.text_content("#pg-error")
    assert "does not fit the 2x7 input" in text
    assert "Use a smaller kernel_size, padding='same', or a larger input." in text
    assert page.is_hidden("#pg-steps-card")


def test_a_link_reproduces_the_state(page: Any, server: Served, browser: Any) -> None:
    open_page(page, server, "?p.src=random&p.h=6&p.w=6&p.seed=3")
    page.wait_for_selector("body[data-pg-state='ready']", state="attached")
    page.click("#pg-op [data-value='max']")
    page.fill("#pg-stride-w", "2")
    page.wait_for_selector("#pg-outsize[data-size='5x3']")
    page.click("#pg-stepper [data-step='last']")
    url = page.url
    shown = _values(page, "#pg-steps .cl-products-grid .cl-cell")
    other = browser.new_context().new_page()
    try:
        other.goto(url)
        other.wait_for_selector("body[data-pg-state='ready']", state="attached")
        assert other.text_content("#pg-outsize") == "Output 5 × 3"
        assert _values(other, "#pg-steps .cl-products-grid .cl-cell") == shown
        assert other.text_content("#pg-pos") == "step 15 / 15"
    finally:
        other.context.close()


def test_the_page_formats_numbers_as_the_terminal(page: Any, server: Served, watch: Watch) -> None:
    open_page(page, server)
    values = [0, 1, -3, 0.5, 1.0001, 0.00123, 12345.678, -0.0456, 2 / 3, 1e-7, 999.9996, -2.5e-5]
    script = (
        "async (vs) => { const m = await import('/static/js/draw/format.js'); return vs.map((v) => m.fmtValue(v)); }"
    )
    shown = page.evaluate(script, values)
    expected = [re.sub(r"\.$", "", fmt_value(v)) for v in values]  # the page drops a bare trailing "."
    assert shown == expected
    # and the page asked nothing from any other host
    assert all(urlparse(u).hostname == "127.0.0.1" for u in watch.requests)
    assert {"/static/js/app.js", "/api/info", "/api/playground"} <= {urlparse(u).path for u in watch.requests}
