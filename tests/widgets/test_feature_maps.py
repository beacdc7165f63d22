"""FeatureMapExplorer's Python side: layer, image and unit changes sync the inspector's numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convlens import layers as lyr
from convlens.errors import ConfigError, ShapeError
from convlens.models import Sequential
from convlens.utils import set_random_seed
from convlens.widgets import FeatureMapExplorer


@pytest.fixture(scope="module")
def model() -> Any:
    """A small model on 8x8x1 inputs: conv 'same' -> max pool -> flatten -> dense."""
    set_random_seed(1)
    m = Sequential(
        [
            lyr.Input((8, 8, 1)),
            lyr.Conv2D(3, 3, padding="same", activation="relu", name="conv"),
            lyr.MaxPooling2D(2, name="pool"),
            lyr.Flatten(name="flat"),
            lyr.Dense(4, activation="softmax", name="out"),
        ]
    )
    m.build()
    return m


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)


def test_layer_image_and_unit(model: Any, images: np.ndarray) -> None:
    explorer = FeatureMapExplorer(model, images, labels=[2, 0, 1])
    assert [entry["name"] for entry in explorer.layers] == ["conv", "pool", "flat", "out"]
    assert explorer.layer == "conv"
    assert explorer.image_count == 3
    x = images[..., None]
    conv = model.layers[0]
    # the shown maps are the layer's own output for the image, channel-first
    maps = np.maximum(conv.forward(x[:1], training=False), 0)[0]
    np.testing.assert_allclose(np.array(explorer.view["layer"]["maps"]), np.moveaxis(maps, -1, 0), rtol=1e-6)
    assert explorer.view["description"] == "image 0 of 3 (label 2)"
    explorer.set_state({"unit": [0, 7, 2]})  # a click in the view
    detail = explorer.unit_detail
    window = np.pad(images[0].astype(np.float64), 1)[0:3, 7:10]
    kernel = conv.params["kernel"][:, :, 0, 2].astype(np.float64)
    assert detail["sum"] == pytest.approx(float((window * kernel).sum()), abs=1e-12)
    assert detail["receptive_field"]["rows"] == [0, 1]
    assert detail["receptive_field"]["clipped"]
    explorer.set_state({"image": 2})  # the same unit, recomputed on the new image
    assert explorer.view["description"] == "image 2 of 3 (label 1)"
    window = np.pad(images[2].astype(np.float64), 1)[0:3, 7:10]
    assert explorer.unit_detail["sum"] == pytest.approx(float((window * kernel).sum()), abs=1e-12)
    explorer.set_state({"layer": "out"})  # a unit belongs to its layer
    assert explorer.unit == []
    assert explorer.unit_detail == {}
    probabilities = model.predict(x[2:3], verbose=0)[0]
    np.testing.assert_allclose(explorer.view["output"], probabilities, rtol=1e-6)
    np.testing.assert_allclose(explorer.view["layer"]["values"], probabilities, rtol=1e-6)
    explorer.set_state({"unit": [3]})
    assert explorer.unit_detail["kind"] == "dense"
    assert explorer.unit_detail["value"] == pytest.approx(float(probabilities[3]), rel=1e-6)
    assert repr(explorer) == f"<FeatureMapExplorer: {model.name}, layer 'out', image 2 of 3, unit [3]>"


def test_bad_selections_show_their_reason(model: Any, images: np.ndarray) -> None:
    explorer = FeatureMapExplorer(model, images[0], layer="pool")  # one image, (H, W) for one channel
    assert explorer.image_count == 1
    assert explorer.layer == "pool"
    explorer.set_state({"unit": [9, 0, 0]})
    assert explorer.unit_detail == {
        "error": "inspect: `index` for layer 'pool' must lie inside its output (4, 4, 3), got (9, 0, 0)."
    }
    explorer.set_state({"image": 5})
    assert explorer.error == "FeatureMapExplorer: `image` must be in 0..0, got 5."
    assert explorer.view == {}
    explorer.set_state({"image": 0, "layer": "nope"})
    assert explorer.error.startswith("viz: `layer` must be one of 'conv', 'pool', 'flat', 'out'")


def test_constructor_errors(model: Any, images: np.ndarray) -> None:
    with pytest.raises(
        ShapeError, match=r"FeatureMapExplorer: `images` must be \(N, 8, 8, 1\) for this model .* got \(3, 7, 8\)"
    ):
        FeatureMapExplorer(model, images[:, 1:])
    with pytest.raises(ShapeError, match=r"`labels` must hold one label per image \(3\), got 2"):
        FeatureMapExplorer(model, images, labels=[1, 2])
    with pytest.raises(ConfigError, match=r"viz: `layer` must be one of"):
        FeatureMapExplorer(model, images, layer="conv9")


def test_a_missing_anywidget_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import convlens.widgets

    monkeypatch.delitem(sys.modules, "convlens.widgets.feature_maps")
    monkeypatch.setitem(sys.modules, "anywidget", None)  # import anywidget now fails as if not installed
    with pytest.raises(
        ConfigError, match=r"needs anywidget, which is not installed: pip install 'convlens\[widgets\]'"
    ):
        convlens.widgets.FeatureMapExplorer  # noqa: B018
