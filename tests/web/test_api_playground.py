"""POST /api/playground: traces equal the engine and a loop reference; bad settings are 422s that explain."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from convlens.geometry import WindowGeometry
from convlens.lab.render_explain import output_formula
from convlens.ops.conv import conv2d
from tests.support.reference import conv2d_reference, tf_same_pads

X = [[3, 1, 4, 1, 5, 9], [2, 6, 5, 3, 5, 8], [9, 7, 9, 3, 2, 3], [8, 4, 6, 2, 6, 4], [3, 3, 8, 3, 2, 7]]
K = [[1, 0, -1], [2, 1, -2], [1, 0, -3]]


def _post(client: Any, **body: Any) -> Any:
    return client.post("/api/playground", json=body)


@pytest.mark.parametrize(
    ("strides", "padding", "dilation", "pads"),
    [
        ((1, 1), "valid", (1, 1), ((0, 0), (0, 0))),
        ((2, 1), "same", (1, 1), None),
        ((1, 2), {"top": 2, "bottom": 0, "left": 1, "right": 3}, (1, 1), ((2, 0), (1, 3))),
        ((1, 1), "same", (2, 2), None),
    ],
)
def test_every_step_is_the_window_times_the_kernel(client: Any, strides: Any, padding: Any, dilation: Any,
                                                   pads: Any) -> None:  # fmt: skip
    r = _post(client, input={"kind": "numbers", "numbers": X}, kernel=K, strides=list(strides), padding=padding,
              dilation_rate=list(dilation), bias=0.5)  # fmt: skip
    assert r.status_code == 200, r.text
    trace = r.json()["trace"]
    x, k = np.array(X, float), np.array(K, float)
    if pads is None:  # TensorFlow's documented rule, computed independently
        pads = tuple(tf_same_pads(n, 3, s, d) for n, s, d in zip(x.shape, strides, dilation, strict=True))
    reference = conv2d_reference(x[None, ..., None], k[..., None, None], np.array([0.5]), strides, pads, dilation)[
        0, ..., 0
    ]
    assert trace["output"] == reference.tolist()
    engine = conv2d(x[None, ..., None], k[..., None, None], np.array([0.5]), strides=strides, padding=pads,
                    dilation_rate=dilation)[0, ..., 0]  # fmt: skip
    np.testing.assert_array_equal(np.array(trace["output"]), engine)
    padded = np.pad(x, pads)
    oh, ow = reference.shape
    assert len(trace["steps"]) == oh * ow
    assert trace["geometry"]["pads"] == [list(p) for p in pads]
    for step in trace["steps"]:
        r0, c0 = step["index"][0] * strides[0], step["index"][1] * strides[1]
        window = padded[r0 : r0 + 2 * dilation[0] + 1 : dilation[0], c0 : c0 + 2 * dilation[1] + 1 : dilation[1]]
        assert step["products"] == (window * k).tolist()
        assert step["total"] == reference[tuple(step["index"])]
        assert "feature_map" not in step  # the page fills the map in itself: steps stay small


def test_formula_why_and_output_size_follow_the_geometry(client: Any) -> None:
    r = _post(client, input={"kind": "ramp", "height": 28, "width": 28}, kernel="sobel_x", strides=[2, 2],
              padding="same")  # fmt: skip
    body = r.json()
    g = WindowGeometry.resolve((28, 28), 3, 2, "same")
    assert body["formula"] == output_formula(g)
    assert body["trace"]["geometry"]["output_size"] == [math.ceil(28 / 2)] * 2
    assert body["why"] == "'same', 3x3, stride 2 on 28: out = ceil(28/2) = 14, pad top 0, bottom 1, left 0, right 1"
    cmp = body["comparison"]
    assert [c["name"] for c in cmp["results"]] == ["tensorflow_same", "pytorch_k//2"]
    assert [c["pads"][0] for c in cmp["results"]] == [[0, 1], [1, 1]]
    assert cmp["shifts"] == {"tensorflow_same vs pytorch_k//2": [1, 1]}


def test_inputs_from_generators_and_the_dataset(client: Any) -> None:
    from convlens.lab import samples

    ramp = _post(client, input={"kind": "ramp", "height": 2, "width": 3}, kernel=[[1]]).json()["trace"]
    assert ramp["input"] == [[1, 2, 3], [4, 5, 6]]
    assert ramp["source"] == "ramp 1..6 (2x3, row-major)"
    checker = _post(client, input={"kind": "checker", "height": 2, "width": 2}, kernel=[[1]]).json()["trace"]
    assert checker["input"] == [[0, 1], [1, 0]]
    digit = _post(client, input={"kind": "dataset", "dataset": "mnist", "index": 3}, kernel="blur").json()["trace"]
    x, label = samples.sample_image("mnist", 3)
    assert digit["input"] == x[..., 0].astype(float).tolist()
    assert digit["source"] == f"MNIST test image 3 (label {label}), pixels / 255"


def test_pooling_and_backward_traces(client: Any) -> None:
    from convlens.ops.pooling import max_pool2d

    r = _post(client, input={"kind": "numbers", "numbers": X}, op="max", pool_size=[2, 2], strides=[2, 2],
              padding="same", backward=True)  # fmt: skip
    body = r.json()
    x = np.array(X, float)[None, ..., None]
    assert (
        body["trace"]["output"] == max_pool2d(x, pool_size=(2, 2), strides=(2, 2), padding="same")[0, ..., 0].tolist()
    )
    assert body["comparison"] is None
    assert body["backward"]["kind"] == "pool_backward"
    last = body["trace"]["steps"][-1]  # bottom-right window: padding never wins
    assert last["window"][1] == [None, None]
    assert last["value"] == 7.0
    conv = _post(client, input={"kind": "numbers", "numbers": X}, kernel=K, strides=[2, 2], padding="same",
                 backward=True).json()  # fmt: skip
    from convlens.ops.conv import conv2d_backward

    pads = (tf_same_pads(5, 3, 2, 1), tf_same_pads(6, 3, 2, 1))
    grad_out = np.arange(1, 10, dtype=float).reshape(1, 3, 3, 1)
    grads = conv2d_backward(grad_out, np.array(X, float)[None, ..., None], np.array(K, float)[..., None, None],
                            strides=(2, 2), padding=pads)  # fmt: skip
    assert conv["backward"]["grad_x"] == grads.x[0, ..., 0].tolist()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"input": {"kind": "ramp", "height": 3, "width": 3}, "kernel": [[1] * 5] * 5},
            "explain.convolution: a 'valid'-padded 5x5 window does not fit the 3x3 input (3x3 after padding): the "
            "output would be empty. Use a smaller kernel_size, padding='same', or a larger input.",
        ),
        (
            {"input": {"kind": "ramp", "height": 65, "width": 3}},
            "input.height: Input should be less than or equal to 64",
        ),
        ({"input": {"kind": "numbers", "numbers": [[1, 2], [3]]}}, "`numbers` rows must all have the same length"),
        ({"input": {"kind": "numbers"}}, "input kind 'numbers' needs `numbers`"),
        ({"kernel": "sobel_z"}, "explain: `kernel` must be one of blur, box, edge"),
        ({"strides": [0, 1]}, "strides.0: Input should be greater than or equal to 1"),
        ({"op": "max", "padding": {"top": 1}}, "explain.pooling: `padding` must be one of 'valid', 'same'"),
        ({"input": {"kind": "dataset", "dataset": "nope"}}, "datasets: `dataset` must be one of ['mnist'"),
        ({"input": {"kind": "ramp", "path": "/etc/passwd"}}, "input.path: Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_422_with_the_reason(client: Any, body: dict[str, Any], message: str) -> None:
    r = client.post("/api/playground", json=body)
    assert r.status_code == 422
    assert message in r.json()["detail"]
