"""FeatureMapExplorer's bundled view in Chromium: a clicked unit's receptive field and sum, layer and image changes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from convlens.course import build_course_model
from convlens.datasets import mnist
from convlens.utils import set_random_seed
from convlens.widgets import FeatureMapExplorer
from tests.widgets.e2e.host import Host

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data() -> tuple[Any, np.ndarray, np.ndarray]:
    set_random_seed(0)
    (_, _), (x_test, y_test) = mnist.load_data()
    return build_course_model(), x_test[:3, ..., None].astype(np.float32) / 255.0, y_test[:3]


def _click_pixel(page: Any, selector: str, row: int, col: int) -> None:
    """Click the centre of pixel (row, col) of a heat-map canvas."""
    box = page.locator(selector).bounding_box()
    size = page.eval_on_selector(selector, "c => [c.width, c.height]")
    page.mouse.click(box["x"] + (col + 0.5) * box["width"] / size[0], box["y"] + (row + 0.5) * box["height"] / size[1])


def test_a_clicked_unit_shows_its_receptive_field_and_sum(page: Any, data: tuple[Any, np.ndarray, np.ndarray]) -> None:
    model, x, y = data
    explorer = FeatureMapExplorer(model, x, y)
    host = Host(page, explorer)
    assert page.locator(".clw-maps .cl-map canvas").count() == 32  # conv2d: 32 maps
    _click_pixel(page, ".clw-maps .cl-map[data-channel='5'] canvas", 10, 12)
    assert host.pump() == [{"unit": [10, 12, 5]}]
    page.wait_for_selector(".clw-unit[data-state='ready']")
    # the dot product, recomputed here from the layer's weights on the 'same'-padded input
    kernel = model.layers[0].params["kernel"][:, :, 0, 5].astype(np.float64)
    bias = float(model.layers[0].params["bias"][5])
    window = np.pad(x[0, :, :, 0].astype(np.float64), 1)[10:13, 12:15]
    total = float((window * kernel).sum())
    assert float(page.get_attribute(".clw-unit [data-sum]", "data-sum")) == pytest.approx(total, abs=1e-12)
    shown = float(page.get_attribute(".clw-unit .cl-unit-head", "data-value"))
    assert shown == pytest.approx(max(total + bias, 0.0), rel=1e-5, abs=1e-6)  # relu; the engine's float32
    # a 3x3 'same' window at (10, 12) sees input rows 9..11 and columns 11..13
    box = json.loads(page.get_attribute(".clw-input canvas", "data-box"))
    assert (box["rows"], box["cols"], box["clipped"]) == ([9, 11], [11, 13], False)
    assert page.locator(".clw-maps .cl-map.is-selected").get_attribute("data-channel") == "5"


def test_layer_and_image_selectors(page: Any, data: tuple[Any, np.ndarray, np.ndarray]) -> None:
    model, x, y = data
    explorer = FeatureMapExplorer(model, x, y, class_names=[f"digit {i}" for i in range(10)])
    host = Host(page, explorer)
    pool, dense = model.layers[1].name, model.layers[-1].name  # names depend on the models made before
    host.slide(".clw-explorer select[data-trait='layer']", pool)
    host.pump()
    assert page.get_attribute(".clw-maps", "data-layer") == pool
    assert page.eval_on_selector(".clw-maps .cl-map canvas", "c => [c.width, c.height]") == [14, 14]
    page.click(".clw-explorer [data-move='1']")
    host.pump()
    assert explorer.image == 1
    assert page.text_content(".clw-explorer .clw-nav + span") == f"image 1 of 3 (label {y[1]})"
    probabilities = model.predict(x[1:2], verbose=0)[0]
    assert page.get_attribute(".clw-probs", "data-predicted") == str(int(np.argmax(probabilities)))
    # a dense unit: click its bar
    host.slide(".clw-explorer select[data-trait='layer']", dense)
    host.pump()
    page.click(".clw-maps .cl-bar[data-index='3']")
    assert host.pump() == [{"unit": [3]}]
    page.wait_for_selector(".clw-unit[data-state='ready']")
    head = page.locator(".clw-unit .cl-unit-head")
    assert float(head.get_attribute("data-value")) == pytest.approx(float(probabilities[3]), rel=1e-6)
    assert "(digit 3)" in page.text_content(".clw-unit")
