"""Grad-CAM and HiResCAM: known answers on hand-set models, PyTorch autograd references, a trained course model."""

from __future__ import annotations

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConfigError
from convlens.lab import viz
from tests.support.gradcam_reference import reference_cams


def _flatten_head() -> cl.Sequential:
    """4x4 input -> relu(1x1 conv, weight 1) -> 2x2 max pool -> Flatten -> Dense(2, softmax).

    Class 0's weights are +1 on the top-left pooled cell and -1 on the three others: its evidence sits at
    the top left, but its mean weight is -0.5, so Grad-CAM's channel weight is negative.
    """
    model = cl.Sequential(
        [
            cl.layers.Conv2D(1, 1, activation="relu", input_shape=(4, 4, 1), name="conv"),
            cl.layers.MaxPooling2D(2, name="pool"),
            cl.layers.Flatten(name="flat"),
            cl.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    model.layers[0].set_weights([np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)])
    dense = np.array([[1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0]], np.float32)
    model.layers[3].set_weights([dense, np.array([0.25, 0.0], np.float32)])
    return model


def _quadrant_input() -> np.ndarray:
    x = np.full((4, 4, 1), 0.1, np.float32)
    x[0, 1, 0] = 2.0  # top-left quadrant's max
    x[0, 3, 0] = x[3, 0, 0] = x[2, 2, 0] = 0.5  # the other quadrants' maxima
    return x


def test_flatten_head_known_answer_and_reference() -> None:
    model, x = _flatten_head(), _quadrant_input()
    # pooled A = [[2, .5], [.5, .5]]; logit_0 = 2 - 1.5 + 0.25 = 0.75 > logit_1 = -0.5: class 0 predicted
    hires = viz.gradcam(model, x)
    assert (hires.class_index, hires.layer, hires.method) == (0, "pool", "hirescam")
    assert hires.score == pytest.approx(0.75)
    np.testing.assert_allclose(hires.cam_small, [[2.0, 0.0], [0.0, 0.0]])  # G * A = [[2, -.5], [-.5, -.5]]
    np.testing.assert_allclose(hires.signed.sum() + 0.25, hires.score, rtol=1e-6)  # the logit, position by position
    np.testing.assert_allclose(hires.cam, np.kron([[2.0, 0.0], [0.0, 0.0]], np.ones((2, 2))))
    grad = viz.gradcam(model, x, method="gradcam")
    np.testing.assert_allclose(grad.weights, [-0.5])  # mean of (1, -1, -1, -1)
    assert not grad.cam_small.any()
    assert grad.zero_reasons["gradcam"].startswith("all 1 channel weights alpha_k (the gradient of the class-0 score")
    assert "gradcam" in hires.zero_reasons
    assert "hirescam" not in hires.zero_reasons
    assert "all zero" in grad.describe()
    # the figure says so in words
    texts = " ".join(t.get_text() for t in grad.figure.texts)
    assert "Grad-CAM is all zero: all 1 channel weights" in texts
    ref = reference_cams(model, x, "pool", 0)
    np.testing.assert_allclose(grad.cam_small, ref["gradcam"], atol=1e-6)
    np.testing.assert_allclose(hires.cam_small, ref["hirescam"], atol=1e-6)
    np.testing.assert_allclose(grad.weights, ref["weights"], rtol=1e-6)
    assert hires.score == pytest.approx(float(ref["logit"]), rel=1e-6)


def test_gap_head_gradcam_is_cam_and_equals_hirescam() -> None:
    """Conv 1x1 splits x into relu(x) and relu(-x); GAP -> Dense: Grad-CAM = CAM (Zhou et al.) / (H * W)."""
    model = cl.Sequential(
        [
            cl.layers.Conv2D(2, 1, activation="relu", input_shape=(4, 4, 1), name="conv"),
            cl.layers.GlobalAveragePooling2D(),
            cl.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    model.layers[0].set_weights([np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 2), np.zeros(2, np.float32)])
    w = np.array([[2.0, -1.0], [-3.0, 1.0]], np.float32)
    model.layers[2].set_weights([w, np.zeros(2, np.float32)])
    x = np.linspace(-1.0, 1.5, 16, dtype=np.float32).reshape(4, 4, 1)
    expected = np.maximum(2.0 * np.maximum(x[..., 0], 0) - 3.0 * np.maximum(-x[..., 0], 0), 0) / 16.0
    for method in ("gradcam", "hirescam"):
        result = viz.gradcam(model, x, class_index=0, method=method)
        np.testing.assert_allclose(result.cam_small, expected, atol=1e-7)
        np.testing.assert_allclose(result.cam_small, reference_cams(model, x, "conv", 0)[method], atol=1e-7)


@pytest.mark.parametrize("layer", ["conv", "pool"])
@pytest.mark.parametrize("class_index", [0, 3])
def test_random_cnn_equals_torch_autograd(layer: str, class_index: int) -> None:
    cl.utils.set_random_seed(3)
    model = cl.Sequential(
        [
            cl.layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 2), name="conv"),
            cl.layers.MaxPooling2D(2, name="pool"),
            cl.layers.Flatten(),
            cl.layers.Dense(5, activation="softmax", name="out"),
        ]
    )
    x = np.random.default_rng(5).random((8, 8, 2)).astype(np.float32)
    ref = reference_cams(model, x, layer, class_index)
    for method in ("gradcam", "hirescam"):
        result = viz.gradcam(model, x, layer=layer, class_index=class_index, method=method)
        np.testing.assert_allclose(result.cam_small, ref[method], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.weights, ref["weights"], rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_trained_course_model_map_is_not_constant() -> None:
    from convlens.course import build_course_model

    cl.utils.set_random_seed(0)
    model = build_course_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    (x_train, y_train), _ = cl.datasets.mnist.load_data()
    model.fit(x_train[:1024, ..., None] / 255.0, y_train[:1024], epochs=1, batch_size=64, verbose=0)
    result = viz.gradcam(model, index=7)  # MNIST test image 7, a 9
    assert result.layer == model.layers[1].name  # the last layer with a 4-D output: the max pooling
    assert result.cam_small.max() > result.cam_small.min()
    assert result.cam_small.max() > 0
    assert "hirescam" not in result.zero_reasons
    # Flatten -> Dense: the signed map is each position's share of the logit
    bias = float(model.layers[-1].params["bias"][result.class_index])
    assert float(result.signed.sum()) + bias == pytest.approx(result.score, rel=1e-4, abs=1e-4)


def test_gradcam_method_error() -> None:
    with pytest.raises(ConfigError, match=r"gradcam: `method` must be one of .*'hirescam'.*'gradcam'.*got 'cam'"):
        viz.gradcam(_flatten_head(), _quadrant_input(), method="cam")
