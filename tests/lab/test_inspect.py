"""convlens.lab.inspect: the inspector's numbers equal the engine's, receptive fields equal PyTorch's."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from convlens import layers
from convlens.course import build_course_model
from convlens.errors import ConfigError, ShapeError
from convlens.lab import inspect
from convlens.lab.viz.activations import layer_outputs
from convlens.models import Sequential
from convlens.utils import set_random_seed
from tests.support.receptive import box, receptive_mask
from tests.support.reference import conv2d_reference


@pytest.fixture(scope="module")
def course() -> Any:
    set_random_seed(3)
    model = build_course_model()
    # non-zero biases so the bias term of the dot product is exercised
    model.layers[0].params["bias"][...] = np.linspace(-0.1, 0.1, 32, dtype=np.float32)
    return model


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).random((28, 28, 1)).astype(np.float32)


def test_forward_probabilities_are_predict_and_maps_are_each_layers_output(course: Any, image: np.ndarray) -> None:
    out = inspect.forward(course, image)
    assert out["output"] == course.predict(image[None], verbose=0)[0].tolist()
    assert out["predicted"] == int(np.argmax(out["output"]))
    outputs = list(layer_outputs(course, image[None]).values())
    names = [layer.name for layer in course.layers]
    conv = out["layers"][0]
    assert conv["kind"] == "maps"
    assert conv["shape"] == [28, 28, 32]
    assert conv["name"] == names[0]
    np.testing.assert_array_equal(np.moveaxis(np.array(conv["maps"]), 0, -1), outputs[0][0])
    assert conv["min"] == float(outputs[0].min())
    assert conv["map_max"] == outputs[0][0].max(axis=(0, 1)).tolist()
    assert out["layers"][2] == {"name": names[2], "class_name": "Flatten", "shape": [6272], "kind": "same_as",
                                "same_as": names[1]}  # fmt: skip
    assert out["layers"][3]["values"] == outputs[3][0].tolist()
    # probabilities by the fused predict path and by layers agree to rounding
    np.testing.assert_allclose(out["layers"][3]["values"], out["output"], rtol=1e-5, atol=1e-7)


def test_conv_unit_is_the_dot_product_of_its_window(course: Any, image: np.ndarray) -> None:
    d = inspect.unit(course, image, 0, (0, 5, 7))
    kernel = course.layers[0].params["kernel"].astype(np.float64)
    bias = course.layers[0].params["bias"].astype(np.float64)
    reference = conv2d_reference(image[None].astype(np.float64), kernel, bias, pads=((1, 1), (1, 1)))
    assert d["kind"] == "conv"
    # the window of output (0, 5) under 'same' 3x3: input rows -1..1 (row -1 is padding), cols 4..6
    assert d["window_start"] == [-1, 4]
    assert d["real"] == [[False] * 3, [True] * 3, [True] * 3]
    padded = np.pad(image[..., 0].astype(np.float64), 1)
    np.testing.assert_array_equal(np.array(d["window"])[..., 0], padded[0:3, 5:8])
    np.testing.assert_array_equal(np.array(d["products"])[..., 0], padded[0:3, 5:8] * kernel[..., 0, 7])
    assert d["pre_activation"] == pytest.approx(reference[0, 0, 5, 7], abs=1e-12)
    assert d["bias"] == pytest.approx(bias[7])
    assert d["value"] == pytest.approx(max(reference[0, 0, 5, 7], 0.0), abs=1e-6)
    assert d["activated"] == pytest.approx(d["value"], abs=1e-6)


def test_pool_and_dense_units(course: Any, image: np.ndarray) -> None:
    outputs = list(layer_outputs(course, image[None]).values())
    pool = inspect.unit(course, image, 1, (3, 4, 2))
    conv = outputs[0][0, 6:8, 8:10, 2]
    assert pool["kind"] == "pool"
    assert pool["window"] == conv.astype(np.float64).tolist()
    assert pool["result"] == pool["value"] == float(conv.max())
    assert conv[tuple(pool["argmax"])] == conv.max()
    dense = inspect.unit(course, image, 3, (4,))
    flat = outputs[2][0].astype(np.float64)
    weights = course.layers[3].params["kernel"][:, 4].astype(np.float64)
    assert dense["sum"] == pytest.approx(float(flat @ weights), rel=1e-12)
    assert abs(dense["top"][0]["product"]) == pytest.approx(np.abs(flat * weights).max())
    assert np.array(dense["contribution_map"]).shape == (14, 14)
    assert dense["receptive_field"]["whole_input"] is True
    assert dense["value"] == pytest.approx(outputs[3][0, 4])


@pytest.mark.parametrize(("layer", "unit"), [(0, (0, 0)), (0, (13, 27)), (1, (0, 0)), (1, (6, 13)), (1, (13, 13))])
def test_receptive_box_equals_the_torch_gradient_support(course: Any, image: np.ndarray, layer: int, unit: Any) -> None:
    d = inspect.unit(course, image, layer, (*unit, 0))
    chain = [{"kind": "conv", "kernel": (3, 3), "strides": (1, 1), "padding": "same"}]
    if layer == 1:
        chain.append({"kind": "pool", "kernel": (2, 2), "strides": (2, 2), "padding": "valid"})
    mask = receptive_mask(chain, (28, 28), unit)
    expected = box(mask)
    assert {k: d["receptive_field"][k] for k in ("rows", "cols")} == expected
    assert mask.sum() == (expected["rows"][1] - expected["rows"][0] + 1) * (
        expected["cols"][1] - expected["cols"][0] + 1
    )


def test_receptive_box_with_strides_and_dilation() -> None:
    set_random_seed(0)
    model = Sequential([
        layers.Conv2D(2, 3, strides=2, padding="same", input_shape=(17, 15, 1)),
        layers.Conv2D(1, 3, dilation_rate=2, padding="valid"),
    ])  # fmt: skip
    chain = [
        {"kind": "conv", "kernel": (3, 3), "strides": (2, 2), "padding": "same"},
        {"kind": "conv", "kernel": (3, 3), "strides": (1, 1), "padding": "valid", "dilation": (2, 2)},
    ]
    x = np.zeros((17, 15, 1), np.float32)
    for unit in [(0, 0), (2, 3), (4, 3)]:
        d = inspect.unit(model, x, 1, (*unit, 0))
        assert {k: d["receptive_field"][k] for k in ("rows", "cols")} == box(receptive_mask(chain, (17, 15), unit))


def test_unit_outside_the_map_is_refused(course: Any, image: np.ndarray) -> None:
    name = course.layers[0].name
    with pytest.raises(
        ShapeError,
        match=re.escape(
            f"inspect: `index` for layer '{name}' must lie inside its output (28, 28, 32), got (28, 0, 0)."
        ),
    ):
        inspect.unit(course, image, 0, (28, 0, 0))
    with pytest.raises(ConfigError, match=f"viz: `layer` must be one of '{name}'"):
        inspect.unit(course, image, "nope", (0, 0, 0))


def test_summary_and_filters(course: Any) -> None:
    s = inspect.summary(course)
    assert s["totals"]["params"] == 63050
    assert s["layers"][0]["params_formula"] == "3*3*1*32 + 32 = 320"
    assert s["layers"][0]["dense_params"] == 784 * 25088 + 25088
    f = inspect.filters(course)
    kernel = course.layers[0].params["kernel"]
    assert f["layers"][0]["shape"] == [3, 3, 1, 32]
    np.testing.assert_array_equal(np.array(f["layers"][0]["kernels"])[7, 0], kernel[:, :, 0, 7])
    assert f["layers"][0]["bound"] == float(np.abs(kernel).max())
    dense_only = Sequential([layers.Flatten(input_shape=(4, 4, 1)), layers.Dense(2)])
    with pytest.raises(ConfigError, match="has no conv layer with a"):
        inspect.filters(dense_only)


def test_attributions_are_the_viz_numbers(course: Any, image: np.ndarray) -> None:
    from convlens.lab import viz

    a = inspect.attributions(course, image)
    sal = viz.saliency(course, image)
    cam = viz.gradcam(course, image)
    assert a["class_index"] == sal.class_index == cam.class_index
    assert a["saliency"] == sal.saliency.astype(np.float64).tolist()
    assert list(a["cams"]) == ["hirescam", "gradcam"]
    assert a["method"] == cam.method
    assert a["cams"]["hirescam"]["small"] == cam.hirescam_small.astype(np.float64).tolist()
    assert a["cams"]["gradcam"]["small"] == cam.gradcam_small.astype(np.float64).tolist()
    np.testing.assert_array_equal(np.array(a["cams"][cam.method]["map"]), cam.cam)
    assert a["layer"] == course.layers[1].name
    assert a["describe"] == cam.describe()
    for method in ("hirescam", "gradcam"):
        assert a["cams"][method]["zero_reason"] == cam.zero_reasons.get(method)
