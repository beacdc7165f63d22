"""ExplainWidget's bundled view in Chromium: it renders the trace, a slider re-traces, steps move the window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convlens.geometry import WindowGeometry
from convlens.ops.conv import conv2d
from convlens.widgets import ExplainWidget
from tests.support.reference import conv2d_reference, tf_same_pads
from tests.widgets.e2e.host import Host

pytestmark = pytest.mark.slow

SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float)


def _values(page: Any, selector: str) -> list[float]:
    return [float(v) for v in page.eval_on_selector_all(selector, "cells => cells.map(c => c.dataset.value)")]


def test_slider_change_retraces_and_redraws(page: Any) -> None:
    widget = ExplainWidget("ramp", "sobel_x", input_size=(7, 6))
    host = Host(page, widget)
    assert host.exports == ["render"]
    x = np.arange(1, 43, dtype=float).reshape(7, 6)  # 'ramp' 7x6: 1, 2, 3, ... row-major
    outputs = page.locator(".clw-explain .cl-output-grid .cl-cell")
    assert outputs.count() == 5 * 4  # 'valid' 3x3 on 7x6
    assert page.text_content(".clw-outsize") == "Output 5 × 4"
    # the strides slider (rows): 2 -> a new trace from Python, a new output grid
    host.slide("input[data-trait='strides'][data-index='0']", 2)
    host.pump()
    g = WindowGeometry.resolve((7, 6), (3, 3), (2, 1), "valid")
    assert widget.strides == [2, 1]
    assert page.text_content(".clw-outsize") == f"Output {g.output_size[0]} × {g.output_size[1]}"
    assert outputs.count() == g.output_size[0] * g.output_size[1] == 3 * 4
    engine = conv2d(x[None, ..., None], SOBEL_X[..., None, None], strides=(2, 1))[0, ..., 0]
    reference = conv2d_reference(x[None, ..., None], SOBEL_X[..., None, None], None, (2, 1), ((0, 0), (0, 0)))
    np.testing.assert_array_equal(engine, reference[0, ..., 0])
    assert _values(page, ".clw-explain .cl-output-grid .cl-cell") == engine.ravel().tolist()
    assert page.text_content(".clw-formula").splitlines()[-1].endswith(f"// 1 + 1 = {g.output_size[1]}")
    # padding 'same' from the select
    host.slide("select[data-trait='padding']", "same")
    host.pump()
    same = WindowGeometry.resolve((7, 6), (3, 3), (2, 1), "same")
    assert outputs.count() == same.output_size[0] * same.output_size[1] == 4 * 6
    (pt, pb), (pl, pr) = tf_same_pads(7, 3, 2, 1), tf_same_pads(6, 3, 1, 1)
    assert page.locator(".clw-explain .cl-input-grid .cl-cell.is-pad").count() == (7 + pt + pb) * (6 + pl + pr) - 7 * 6


def test_steps_show_the_engines_products(page: Any) -> None:
    widget = ExplainWidget("random", "sobel_x", input_size=(5, 5), strides=2, padding="same", seed=3)
    host = Host(page, widget)
    x = np.asarray(widget.trace["input"], dtype=float)
    pads = WindowGeometry.resolve((5, 5), (3, 3), 2, "same").pads
    padded = np.pad(x, pads)
    page.click(".clw-explain [data-step='next']")
    assert host.pump()[0] == {"step": 1}  # the view tells Python where it is
    assert widget.step == 1
    expected = padded[0:3, 2:5] * SOBEL_X  # step 2: output (0, 1), rows 0..2, cols 2..4 of the padded input
    assert _values(page, ".clw-explain .cl-products-grid .cl-cell") == expected.ravel().tolist()
    engine = conv2d(x[None, ..., None], SOBEL_X[..., None, None], strides=2, padding="same")[0, ..., 0]
    assert float(page.get_attribute(".clw-explain .cl-sum-text", "data-total")) == engine[0, 1]
    assert page.text_content(".clw-explain .cl-stepper-pos") == "step 2 / 9"
    # Python moves the view too
    widget.step = 8
    host.push()
    assert page.text_content(".clw-explain .cl-stepper-pos") == "step 9 / 9"


def test_a_setting_without_output_says_why_and_pooling_draws(page: Any) -> None:
    widget = ExplainWidget("ramp", "ones", input_size=(4, 4), kernel_size=(3, 3))
    host = Host(page, widget)
    host.slide("input[data-trait='kernel_size'][data-index='0']", 6)
    host.pump()
    assert page.get_attribute(".clw-explain", "data-state") == "error"
    assert "does not fit the 4x4 input" in page.text_content(".clw-explain .error-box")
    assert page.text_content(".clw-outsize") == "No output"
    host.slide("select[data-trait='op']", "max")
    host.pump()
    assert page.get_attribute(".clw-explain", "data-state") == "ready"
    assert page.locator(".clw-explain .cl-output-grid .cl-cell").count() == 3 * 3  # 2x2 pool, stride 1
    x = np.arange(1, 17, dtype=float).reshape(4, 4)
    shown = _values(page, ".clw-explain .cl-output-grid .cl-cell")
    assert shown == [x[r : r + 2, c : c + 2].max() for r in range(3) for c in range(3)]
