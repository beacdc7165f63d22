"""convlens.lab.arithmetic: shapes agree with the ops, MACs with a loop count, receptive fields with gradients."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convlens as cl
from convlens import layers
from convlens.course import build_course_model
from convlens.errors import StateError
from convlens.lab.arithmetic import model_stats, model_totals
from convlens.lab.spec import parse_spec

# ----- independent helpers (no convlens arithmetic) ---------------------------------------------


def tf_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's documented 'same' rule."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def loop_conv2d(
    x: np.ndarray, kernel: np.ndarray, strides: tuple[int, int], pads: Any, dilation: tuple[int, int], groups: int
) -> tuple[np.ndarray, int]:
    """Loop convolution of one sample (H, W, C) that also counts its multiply-adds."""
    (pt, pb), (pl, pr) = pads
    h, w, c = x.shape
    kh, kw, cg, f = kernel.shape
    padded = np.zeros((h + pt + pb, w + pl + pr, c))
    padded[pt : pt + h, pl : pl + w] = x
    rows = [i for i in range(padded.shape[0]) if i % strides[0] == 0 and i + (kh - 1) * dilation[0] < padded.shape[0]]
    cols = [j for j in range(padded.shape[1]) if j % strides[1] == 0 and j + (kw - 1) * dilation[1] < padded.shape[1]]
    out = np.zeros((len(rows), len(cols), f))
    macs = 0
    per_group = f // groups
    for oi, i in enumerate(rows):
        for oj, j in enumerate(cols):
            for o in range(f):
                g = o // per_group
                acc = 0.0
                for a in range(kh):
                    for b in range(kw):
                        for ci in range(cg):
                            acc += padded[i + a * dilation[0], j + b * dilation[1], g * cg + ci] * kernel[a, b, ci, o]
                            macs += 1
                out[oi, oj, o] = acc
    return out, macs


def forward_shapes(model: Any, batch: int = 2) -> list[tuple[int, ...]]:
    x = np.zeros((batch, *model.input_shape[1:]), np.float32)
    shapes = []
    for layer in model.layers:
        x = layer.forward(x, training=False)
        shapes.append(x.shape)
    return shapes


COURSE_PARAMS = (3 * 3 * 1 * 32 + 32) + (14 * 14 * 32 * 10 + 10)

SPECS = [
    "conv32k3s1same-relu, maxpool2, flatten, dense10-softmax",
    "conv4k3s2same, conv4k3s2valid, avgpool2",
    "input17x13x2, conv6k3d2same, conv6k2x3s3p1, maxpool3s2same, gap, dense5",
    "input12x12x4, conv8k3g2same, conv8k1g4, dwconvk3m2s2same, bn, relu, gmp",
    "input9x9x3, zeropad2, conv4k5s2, dropout0.5, flatten, dense3",
    "input30x3, conv4k5s2causal, conv4k3d2same, maxpool2, avgpool3s1same, flatten, dense2",
    "input16x16x1, dwconvk3d2, avgpool3s2same, conv2k3p2, maxpool2s1, bn, flatten",
]


# ----- course facts --------------------------------------------------------------------------


def test_course_model_numbers_follow_from_the_spec() -> None:
    stats = model_stats(build_course_model())
    conv, pool, flat, dense = stats
    assert conv.params_formula == "3*3*1*32 + 32 = 320"
    assert dense.params_formula == "6272*10 + 10 = 62,730"
    assert conv.macs == 28 * 28 * 32 * 3 * 3 * 1
    assert dense.macs == 14 * 14 * 32 * 10
    assert [s.flops for s in stats] == [2 * s.macs for s in stats]
    assert pool.macs == 0
    assert pool.ops == 14 * 14 * 32 * (4 - 1)  # comparisons
    assert pool.ops_kind == "comparisons"
    assert flat.output_shape == (None, 14 * 14 * 32)
    assert conv.dense_params == 784 * 25088 + 25088 == 19_694_080
    assert conv.dense_macs == 784 * 25088
    assert pool.dense_params is None
    assert conv.activation_bytes == 28 * 28 * 32 * 4
    assert dense.activation_bytes == 10 * 4
    totals = model_totals(stats)
    assert totals["params"] == COURSE_PARAMS == 63_050
    assert totals["flops"] == 2 * totals["macs"]
    assert totals["activation_bytes"] == 4 * (28 * 28 * 32 + 2 * 14 * 14 * 32 + 10)


def test_why_strings_carry_the_numbers() -> None:
    stats = model_stats(parse_spec("conv8k3s2same, conv8k3d2valid, maxpool2"))
    assert stats[0].why.endswith("stride 2 on 28: out = ceil(28/2) = 14, pad top 0, bottom 1, left 0, right 1")
    assert stats[0].pads == ((0, 1), (0, 1))
    assert "dilated 2 (extent (3 - 1)*2 + 1 = 5)" in stats[1].why
    assert "out = (14 - 5) // 1 + 1 = 10, no padding" in stats[1].why
    assert "out = (10 - 2) // 2 + 1 = 5" in stats[2].why
    causal = model_stats(parse_spec("input10x2, conv3k3causal"))[0]
    assert causal.why.endswith("out = (10 - 1) // 1 + 1 = 10, pad left 2, right 0")
    explicit = model_stats(parse_spec("input7x5x1, conv2k3s2p1"))[0]
    assert "H: out = (7 + 1 + 1 - 3) // 2 + 1 = 4; W: out = (5 + 1 + 1 - 3) // 2 + 1 = 3" in explicit.why


def _formula_value(formula: str) -> int:
    left, right = formula.split(" = ")
    value = sum(math.prod(int(f) for f in term.split("*")) for term in left.split(" + "))
    assert value == int(right.split(" ")[0].replace(",", ""))
    return value


@pytest.mark.parametrize("spec", SPECS)
def test_params_formula_evaluates_to_the_layer_count(spec: str) -> None:
    model = parse_spec(spec)
    for layer, s in zip(model.layers, model_stats(model), strict=True):
        assert s.params == layer.count_params()
        if s.params:
            assert _formula_value(s.params_formula) == s.params
        else:
            assert s.params_formula == "0"


def test_batch_norm_counts_moving_statistics_as_non_trainable() -> None:
    bn = model_stats(parse_spec("input4x4x3, bn"))[0]
    assert (bn.params, bn.trainable_params) == (4 * 3, 2 * 3)
    assert bn.ops == 2 * 4 * 4 * 3


# ----- (a) shapes equal the ops' shapes ------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_summary_shapes_equal_forward_shapes(spec: str) -> None:
    model = parse_spec(spec)
    stats = model_stats(model)
    assert [(2, *s.output_shape[1:]) for s in stats] == forward_shapes(model)
    assert [s.input_shape for s in stats[1:]] == [s.output_shape for s in stats[:-1]]


def test_channels_first_conv_shapes() -> None:
    model = cl.Sequential([layers.Conv2D(3, 3, strides=2, padding="same", data_format="channels_first")])
    model.build((None, 2, 9, 7))
    (s,) = model_stats(model)
    assert (2, *s.output_shape[1:]) == forward_shapes(model)[0] == (2, 3, 5, 4)
    assert s.macs == 5 * 4 * 3 * 3 * 3 * 2
    assert s.receptive_field == (3, 3)


@given(
    size=st.integers(3, 12),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid", 1]),
)
def test_single_conv_shape_and_field_property(size: int, k: int, s: int, d: int, padding: Any) -> None:
    extent = (k - 1) * d + 1
    if padding == "valid" and extent > size:
        return
    model = cl.Sequential([layers.Conv2D(2, k, strides=s, padding=padding, dilation_rate=d, input_shape=(size, 5, 1))])
    (stat,) = model_stats(model)
    assert (2, *stat.output_shape[1:]) == forward_shapes(model)[0]
    pad_before = {"same": tf_pads(size, k, s, d)[0], "valid": 0, 1: 1}[padding]
    assert stat.receptive_field[0] == extent
    assert stat.jump[0] == s
    assert stat.start[0] == (extent - 1) / 2 - pad_before


# ----- (b) MACs equal a loop count -----------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "channels", "filters", "k", "s", "d", "groups", "padding"),
    [
        ((7, 7), 2, 4, 3, 1, 1, 1, "same"),
        ((8, 6), 2, 4, 3, 2, 1, 2, "same"),
        ((9, 9), 1, 3, 2, 2, 2, 1, "valid"),
        ((6, 7), 4, 4, 3, 1, 1, 4, "valid"),
        ((5, 5), 3, 2, 3, 2, 1, 1, ((1, 0), (2, 1))),
    ],
)
def test_conv_macs_equal_a_loop_count(
    size: tuple[int, int], channels: int, filters: int, k: int, s: int, d: int, groups: int, padding: Any, rng: Any
) -> None:
    layer = layers.Conv2D(filters, k, strides=s, padding=padding, dilation_rate=d, groups=groups, use_bias=False)
    model = cl.Sequential([layer])
    model.build((None, *size, channels))
    if padding == "same":
        pads = tuple(tf_pads(n, k, s, d) for n in size)
    elif padding == "valid":
        pads = ((0, 0), (0, 0))
    else:
        pads = padding
    x = rng.standard_normal((*size, channels))
    out, macs = loop_conv2d(x, layer.params["kernel"].astype(np.float64), (s, s), pads, (d, d), groups)
    np.testing.assert_allclose(layer.forward(x[None].astype(np.float32))[0], out, rtol=1e-4, atol=1e-5)
    (stat,) = model_stats(model)
    assert stat.macs == macs
    assert stat.output_shape[1:] == out.shape


def test_depthwise_and_dense_macs_equal_loop_counts(rng: Any) -> None:
    model = parse_spec("input6x5x3, dwconvk3m2same, dense4")
    dw, _ = model.layers
    kernel = dw.params["kernel"].reshape(3, 3, 1, 6).astype(np.float64)
    x = rng.standard_normal((6, 5, 3))
    _, macs = loop_conv2d(x, kernel, (1, 1), (tf_pads(6, 3, 1, 1), tf_pads(5, 3, 1, 1)), (1, 1), 3)
    dense_macs = sum(1 for _ in np.ndindex(6, 5) for _ in range(6) for _ in range(4))  # positions x D x U
    stats = model_stats(model)
    assert [stats[0].macs, stats[1].macs] == [macs, dense_macs]


@pytest.mark.parametrize(
    ("spec", "size", "k", "s"),
    [
        ("input5x5x1, maxpool3s2same", 5, 3, 2),
        ("input7x7x2, avgpool3s2same", 7, 3, 2),
        ("input6x6x1, maxpool2", 6, 2, 2),
    ],
)
def test_pooling_ops_count_real_cells(spec: str, size: int, k: int, s: int) -> None:
    (stat,) = model_stats(parse_spec(spec))
    channels = int(stat.output_shape[-1])  # type: ignore[arg-type]
    before = tf_pads(size, k, s, 1)[0] if "same" in spec else 0
    windows = math.ceil(size / s) if "same" in spec else (size - k) // s + 1
    per_axis = [sum(1 for t in range(k) if 0 <= o * s - before + t < size) for o in range(windows)]
    real = sum(a * b for a in per_axis for b in per_axis) * channels
    expected = real - windows * windows * channels if "max" in spec else real
    assert stat.ops == expected
    assert stat.macs == 0


# ----- (c) receptive fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("conv1k3, conv1k3", (5, 5)),
        ("conv1k3, maxpool2, conv1k3", (8, 8)),
        ("conv1k3, avgpool2, conv1k3", (8, 8)),
        ("conv1k3d2, conv1k3", (7, 7)),
        ("conv1k3s2, conv1k3s2, conv1k3", (15, 15)),
        ("conv1k7x3, conv1k1", (7, 3)),
    ],
)
def test_receptive_field_sizes(spec: str, field: tuple[int, int]) -> None:
    assert model_stats(parse_spec(spec))[-1].receptive_field == field


def _input_gradient(model: Any, unit: tuple[int, ...]) -> np.ndarray:
    """dy[unit]/dx with every kernel 1 and bias 0: non-zero exactly on the unit's receptive field."""
    for layer in model.layers:
        if "kernel" in layer.params:
            layer.params["kernel"][...] = 1.0
        if "bias" in layer.params:
            layer.params["bias"][...] = 0.0
    first = model.layers[0]
    saved, first.compute_grad_x = first.compute_grad_x, True
    try:
        x = np.ones((1, *model.input_shape[1:]), np.float32)
        for layer in model.layers:
            x = layer.forward(x, training=True)
        grad = np.zeros_like(x)
        grad[(0, *unit, 0)] = 1.0
        for layer in reversed(model.layers):
            grad = layer.backward(grad)
    finally:
        first.compute_grad_x = saved
    return np.asarray(grad[0, ..., 0])


@pytest.mark.parametrize(
    ("spec", "dense"),
    [
        ("input24x24x1, conv1k3, conv1k3", True),
        ("input24x24x1, conv1k3, avgpool2, conv1k3", True),
        ("input31x29x1, conv1k5s2same, avgpool3s2same, conv1k3", True),
        ("input24x24x1, zeropad2, conv1k3s2, conv1k2x3", True),
        ("input30x30x1, conv1k3d2, conv1k3s2, conv1k3d3same", False),
        ("input40x1, conv1k5s2, conv1k3d3, avgpool2", False),
    ],
)
def test_receptive_field_matches_the_input_gradient(spec: str, dense: bool) -> None:
    model = parse_spec(spec)
    stat = model_stats(model)[-1]
    spatial = stat.output_shape[1:-1]
    unit = tuple(int(n) // 2 for n in spatial)  # type: ignore[operator]
    grad = _input_gradient(model, unit)
    hit = np.nonzero(grad)
    low = [int(a.min()) for a in hit]
    high = [int(a.max()) for a in hit]
    centre = [st + u * j for st, u, j in zip(stat.start, unit, stat.jump, strict=True)]
    for axis, r in enumerate(stat.receptive_field):
        assert centre[axis] - (r - 1) / 2 > 0  # not clipped
        assert centre[axis] + (r - 1) / 2 < grad.shape[axis]
        assert high[axis] - low[axis] + 1 == r
        assert (low[axis] + high[axis]) / 2 == centre[axis]
    if dense:
        assert len(hit[0]) == math.prod(stat.receptive_field)


def test_global_field_is_the_part_of_the_input_that_is_read() -> None:
    # windows of 3 every 4 on 10: positions 0..2 and 4..6 are read, 7..9 never.
    stats = model_stats(parse_spec("input10x10x1, conv1k3s4, flatten, dense1"))
    assert stats[0].receptive_field == (3, 3)
    assert stats[1].receptive_field == stats[2].receptive_field == (7, 7)
    assert stats[1].jump == ()
    assert stats[1].start == ()
    assert model_stats(build_course_model())[-1].receptive_field == (28, 28)


def test_an_unbuilt_model_is_refused() -> None:
    with pytest.raises(StateError, match=re.escape("summary: Sequential 'unbuilt' (1 layers) is not built")):
        model_stats(cl.Sequential([layers.Dense(3)], name="unbuilt"))
