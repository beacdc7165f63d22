"""convlens.lab.viz: saliency, Grad-CAM, activation maximisation, translation equivariance."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require

require("matplotlib")

import convlens as cl  # noqa: E402
from convlens.errors import ConfigError  # noqa: E402
from convlens.lab import viz  # noqa: E402
from convlens.lab.viz.activations import linear_activation  # noqa: E402
from convlens.lab.viz.equivariance import shift_image  # noqa: E402
from convlens.lab.viz.saliency import upsample_nearest  # noqa: E402


def test_saliency_of_a_linear_model_is_its_weights() -> None:
    model = cl.Sequential([cl.layers.Flatten(input_shape=(4, 5, 2)), cl.layers.Dense(3, name="d")])
    rng = np.random.default_rng(1)
    x = rng.random((4, 5, 2)).astype(np.float32)
    result = viz.saliency(model, x, class_index=2)
    weights = model.layers[1].params["kernel"][:, 2].reshape(4, 5, 2)
    np.testing.assert_array_equal(result.gradient, weights)
    np.testing.assert_array_equal(result.saliency, np.abs(weights).max(axis=-1))
    assert result.class_index == 2
    assert model.layers[0].compute_grad_x is False  # restored after the pass


def test_saliency_single_channel_equals_abs_weights_and_softmax_uses_logits() -> None:
    model = cl.Sequential([cl.layers.Flatten(input_shape=(3, 3, 1)), cl.layers.Dense(4, activation="softmax")])
    x = np.random.default_rng(2).random((3, 3, 1)).astype(np.float32)
    probs = model.predict(x[None], verbose=0)[0]
    result = viz.saliency(model, x)
    assert result.class_index == int(np.argmax(probs))  # default: the predicted class
    weights = model.layers[1].params["kernel"][:, result.class_index].reshape(3, 3)
    np.testing.assert_array_equal(result.saliency, np.abs(weights))  # d logit / d x, not d softmax / d x
    with pytest.raises(ConfigError, match=r"viz: `class_index` must be in \[0, 4\), got 4"):
        viz.saliency(model, x, class_index=4)


def _two_blob_model() -> cl.Sequential:
    """Conv 1x1 copies channel k to map k; class k sums map k (so class k is driven by channel k's blob)."""
    model = cl.Sequential(
        [
            cl.layers.Conv2D(2, 1, activation="relu", input_shape=(8, 8, 2), name="conv"),
            cl.layers.Flatten(),
            cl.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    kernel = np.eye(2, dtype=np.float32).reshape(1, 1, 2, 2)
    model.layers[0].set_weights([kernel, np.zeros(2, np.float32)])
    dense = np.zeros((8 * 8 * 2, 2), np.float32)
    dense[0::2, 0] = 1.0  # flatten order (h, w, c): even entries are map 0
    dense[1::2, 1] = 1.0
    model.layers[2].set_weights([dense, np.zeros(2, np.float32)])
    return model


def test_gradcam_highlights_the_region_that_drives_the_class() -> None:
    x = np.zeros((8, 8, 2), np.float32)
    x[:3, :3, 0] = 1.0  # top-left blob in channel 0 drives class 0
    x[5:, 5:, 1] = 0.5  # bottom-right blob in channel 1 drives class 1
    model = _two_blob_model()
    zero = viz.gradcam(model, x, layer="conv", class_index=0)
    np.testing.assert_allclose(zero.weights, [1.0, 0.0])  # d logit_0 / d map_0 = 1 everywhere
    expected = np.zeros((8, 8), np.float32)
    expected[:3, :3] = 1.0
    np.testing.assert_array_equal(zero.cam, expected)
    one = viz.gradcam(model, x, class_index=1)  # default layer: the last with a 4-D output = conv
    assert one.layer == "conv"
    assert one.cam[:3, :3].max() == 0.0
    assert one.cam[5:, 5:].min() > 0.0
    with pytest.raises(ConfigError, match=r"gradcam: `layer` must have a 4-D output \(one of 'conv'\), got 'out'"):
        viz.gradcam(model, x, layer="out")
    with pytest.raises(ConfigError, match=r"viz: `layer` must be one of 'conv', .* got 'nope'"):
        viz.gradcam(model, x, layer="nope")


def test_upsample_nearest() -> None:
    cam = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(upsample_nearest(cam, 4, 4), np.kron(cam, np.ones((2, 2))))


def _small_cnn(seed: int = 0) -> cl.Sequential:
    cl.utils.set_random_seed(seed)
    return cl.Sequential(
        [
            cl.layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(16, 16, 1), name="conv"),
            cl.layers.MaxPooling2D(2, name="pool"),
            cl.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv2"),
            cl.layers.Flatten(),
            cl.layers.Dense(5, activation="softmax", name="out"),
        ]
    )


@pytest.mark.parametrize(
    ("layer", "unit", "position"), [("conv", 1, "center"), ("conv2", 2, "mean"), ("out", 3, "center")]
)
def test_maximize_increases_the_chosen_activation(layer: str, unit: int, position: str) -> None:
    model = _small_cnn()
    result = viz.maximize(model, layer, unit, steps=25, position=position)
    assert result.activation_after > result.activation_before + 0.1
    assert result.image.shape == (16, 16, 1)
    assert result.image.min() >= 0.0
    assert result.image.max() <= 1.0
    # the reported number is the pre-activation, recomputed here
    target = model.layers[[lay.name for lay in model.layers].index(layer)]
    with linear_activation(target):
        out = viz.layer_outputs(model, result.image[None])[layer][0]
    if position == "mean" or out.ndim == 1:
        value = out[..., unit].mean() if out.ndim == 3 else out[unit]
    else:
        value = out[out.shape[0] // 2, out.shape[1] // 2, unit]
    assert float(value) == pytest.approx(result.activation_after, rel=1e-5)
    assert target.activation.name != "linear"  # restored


def test_maximize_errors() -> None:
    model = _small_cnn()
    with pytest.raises(ConfigError, match=r"maximize: `filter` must be in \[0, 4\) for layer 'conv', got 9"):
        viz.maximize(model, "conv", 9)
    with pytest.raises(ConfigError, match=r"maximize: `steps` must be an integer >= 1, got 0"):
        viz.maximize(model, "conv", 0, steps=0)


def test_equivariance_conv_maps_shift_exactly_dense_output_changes() -> None:
    model = _small_cnn(1)
    x = np.zeros((16, 16, 1), np.float32)
    x[3:13, 3:13, 0] = np.random.default_rng(4).random((10, 10))
    result = viz.equivariance(model, x, shift=(2, -2))
    assert result.map_shift == {"conv": (2, -2), "pool": (1, -1), "conv2": (1, -1)}
    assert result.interior_max_diff == {"conv": 0.0, "pool": 0.0, "conv2": 0.0}
    original, moved = result.maps["conv"]
    # independent check of the interior, away from borders: moved[i + 2, j - 2] == original[i, j]
    np.testing.assert_array_equal(moved[4:14, 2:12], original[2:12, 4:14])
    assert result.output_change > 0.0
    assert not np.allclose(result.output_after, result.output_before)
    odd = viz.equivariance(model, x, shift=(1, 0))
    assert odd.map_shift["conv"] == (1, 0)
    assert odd.map_shift["pool"] is None
    assert odd.interior_max_diff["conv"] == 0.0
    assert np.isnan(odd.interior_max_diff["pool"])
    with pytest.raises(ConfigError, match=r"equivariance: `shift` must be two integers \(dy, dx\), got 2"):
        viz.equivariance(model, x, shift=2)  # type: ignore[arg-type]


def test_shift_image() -> None:
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    out = shift_image(x, 1, -2)
    assert out[0, 0].sum() == 0
    assert out[0, :, 2:].sum() == 0
    np.testing.assert_array_equal(out[0, 1:, :2], x[0, :3, 2:])


def test_maximize_curve_rises_to_a_first_layer_units_bound() -> None:
    model = _small_cnn()
    kernel, bias = (np.asarray(w) for w in model.layers[0].get_weights())
    bound = float(np.maximum(kernel[..., 1], 0).sum() + bias[1])  # pixels in [0, 1]: 1 under w > 0, 0 under w < 0
    result = viz.maximize(model, "conv", 1, steps=40)
    assert result.jitter == 0  # a 3x3 receptive field: (3 - 1) // 4
    assert result.bound == pytest.approx(bound, rel=1e-6)
    assert len(result.objective) == 41
    assert max(result.objective) <= bound + 1e-5  # a true bound
    assert max(result.objective) >= bound - 1e-2 * abs(bound)
    assert result.objective[-1] > result.objective[0]
    assert "reached the upper bound" in result.note
    assert result.note in " ".join(t.get_text().replace("\n", " ") for ax in result.figure.axes for t in [ax.title])


def test_maximize_says_why_a_curve_is_flat() -> None:
    model = _small_cnn()
    kernel, bias = model.layers[0].get_weights()
    kernel[..., 2] = 0.0  # filter 2 no longer reads the input
    model.layers[0].set_weights([kernel, bias])
    result = viz.maximize(model, "conv", 2, steps=3)
    assert result.note.startswith("flat: the gradient was zero at every step")
