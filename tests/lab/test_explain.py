"""Explain traces: sums equal the engine's ops, step layout, kernels, inputs, backward traces, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.cli import main
from convlens.errors import ConfigError, ShapeError
from convlens.geometry import WindowGeometry
from convlens.lab.explain import CELL_PAD, convolution, pooling
from convlens.lab.explain_backward import convolution_backward, pooling_backward
from convlens.lab.kernels import KERNELS, get_kernel, make_input, parse_matrix
from convlens.ops.conv import conv2d, conv2d_backward
from convlens.ops.pooling import avg_pool2d, max_pool2d, max_pool2d_backward


def _loop_conv(x: np.ndarray, k: np.ndarray, g: WindowGeometry) -> np.ndarray:
    """Obviously-right loop reference over output positions and taps."""
    out = np.zeros(g.output_size)
    for o in np.ndindex(*g.output_size):
        for (r, c), w in zip(g.taps(o), k.reshape(-1), strict=True):
            if 0 <= r < x.shape[0] and 0 <= c < x.shape[1]:
                out[o] += x[r, c] * w
    return out


paddings = st.one_of(
    st.sampled_from(["valid", "same"]),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
)


@given(
    h=st.integers(1, 7), w=st.integers(1, 7), kh=st.integers(1, 3), kw=st.integers(1, 3),
    s=st.integers(1, 3), d=st.integers(1, 2), padding=paddings, seed=st.integers(0, 99),
)  # fmt: skip
def test_conv_trace_equals_conv2d(h: int, w: int, kh: int, kw: int, s: int, d: int, padding: object, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal((h, w)), rng.standard_normal((kh, kw))
    try:
        g = WindowGeometry.resolve((h, w), (kh, kw), s, padding, d)
    except ShapeError:
        with pytest.raises(ShapeError):
            convolution(x, k, strides=s, padding=padding, dilation_rate=d)
        return
    t = convolution(x, k, strides=s, padding=padding, dilation_rate=d, bias=0.5)
    engine = conv2d(x[None, :, :, None], k[:, :, None, None], np.array([0.5]), strides=s, padding=padding,
                    dilation_rate=d)[0, :, :, 0]  # fmt: skip
    np.testing.assert_allclose(t.output, engine, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.output, _loop_conv(x, k, g) + 0.5, rtol=1e-12, atol=1e-12)
    assert len(t.steps) == g.output_size[0] * g.output_size[1]
    for step in t.steps:
        assert step.total == pytest.approx(step.products.sum() + 0.5)
        np.testing.assert_array_equal(step.products, step.window * k)
    np.testing.assert_array_equal(t.steps[-1].feature_map, t.output)


@given(
    h=st.integers(1, 7), w=st.integers(1, 7), p=st.integers(1, 3), s=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]), kind=st.sampled_from(["max", "avg"]), seed=st.integers(0, 99),
)  # fmt: skip
def test_pool_trace_equals_engine(h: int, w: int, p: int, s: int, padding: str, kind: str, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal((h, w))
    if padding == "valid" and p > min(h, w):
        return
    t = pooling(x, pool_size=p, strides=s, padding=padding, kind=kind)
    op = max_pool2d if kind == "max" else avg_pool2d
    engine = op(x[None, :, :, None], pool_size=p, strides=s, padding=padding)[0, :, :, 0]
    np.testing.assert_allclose(t.output, engine, rtol=1e-12, atol=1e-12)
    for step in t.steps:
        assert step.count == int(step.real.sum())
        if kind == "max":
            assert x[step.argmax] == step.value  # type: ignore[index]


def test_max_pool_tie_goes_to_first_cell_and_padding_never_wins() -> None:
    t = pooling([[-5.0, -1.0, -1.0], [-1.0, -3.0, -2.0], [-4.0, -6.0, -7.0]], pool_size=2, padding="same")
    assert t.steps[0].argmax == (0, 1)  # tie between (0, 1) and (1, 0): first in row-major order
    assert t.steps[-1].value == -7.0  # padded cells (value 0 would win) are left out
    assert t.steps[-1].count == 1


def test_same_avg_pool_counts_real_cells_only() -> None:
    t = pooling(np.ones((3, 3)) * 6.0, pool_size=2, padding="same", kind="avg")
    assert [s.count for s in t.steps] == [4, 2, 2, 1]
    np.testing.assert_array_equal(t.output, np.full((2, 2), 6.0))


def test_step_coordinates_and_padded_border() -> None:
    t = convolution("ramp:5x5", "identity", padding="same", strides=2)
    assert t.padded.shape == (7, 7)
    assert (t.cells[0] == CELL_PAD).all()
    assert (t.cells[:, -1] == CELL_PAD).all()
    assert [s.index for s in t.steps[:4]] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert t.steps[0].start_input == (-1, -1)
    assert t.steps[0].start_padded == (0, 0)
    assert t.steps[4].start_input == (1, 1)
    # identity kernel reads the window centre: input rows 0, 2, 4
    np.testing.assert_array_equal(t.output, np.arange(1.0, 26.0).reshape(5, 5)[::2, ::2])
    assert not t.steps[0].real[0].any()


def test_course_example_3x3_over_5x5() -> None:
    x = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]])
    t = convolution(x, "1,0,1;0,1,0;1,0,1")
    # the classic textbook feature map of this example
    np.testing.assert_array_equal(t.output, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_kernels_by_name_and_numbers() -> None:
    np.testing.assert_array_equal(get_kernel("sobel_y"), get_kernel("sobel_x").T)
    assert get_kernel("blur").sum() == pytest.approx(1.0)
    assert get_kernel("gaussian").sum() == pytest.approx(1.0)
    assert get_kernel("laplacian").sum() == 0.0
    assert get_kernel("sharpen").sum() == 1.0
    np.testing.assert_array_equal(get_kernel("1,0,-1;2,0,-2;1,0,-1"), KERNELS["sobel_x"])
    np.testing.assert_array_equal(parse_matrix("1 2; 3 4"), [[1, 2], [3, 4]])
    with pytest.raises(ConfigError, match=r"`kernel` must be one of .*sobel_x.*got 'nope'"):
        get_kernel("nope")
    with pytest.raises(ConfigError, match="rows of equal length"):
        get_kernel("1,2;3")


def test_generated_inputs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    np.testing.assert_array_equal(make_input("checker:2x3"), [[0, 1, 0], [1, 0, 1]])
    r = make_input("4x6", seed=3)
    assert r.shape == (4, 6)
    assert r.min() >= 0
    assert r.max() <= 9
    np.testing.assert_array_equal(make_input("4x6", seed=3), r)
    d = make_input("digit:0")
    assert d.shape == (28, 28)
    assert d.min() >= 0.0
    assert d.max() <= 1.0
    path = tmp_path / "im.png"
    Image.new("RGB", (40, 20), (255, 0, 0)).save(path)
    im = make_input(str(path), image_size=(4, 8))
    assert im.shape == (4, 8)
    np.testing.assert_allclose(im, round(0.299 * 255) / 255, atol=1 / 255)
    with pytest.raises(ConfigError, match="`input` must be numbers"):
        make_input("whatever")
    with pytest.raises(ConfigError, match="needs a test-image index"):
        make_input("digit:x")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"explain.pooling: `kind` must be one of 'max', 'avg', got 'min'"):
        pooling("5x5", kind="min")
    with pytest.raises(ConfigError, match=r"explain.pooling: `padding` must be one of"):
        pooling("5x5", padding=1)
    with pytest.raises(ShapeError, match="does not fit the 2x2 input"):
        convolution([[1, 2], [3, 4]], "sobel_x")
    with pytest.raises(ConfigError, match="non-empty 2-D array"):
        convolution(np.zeros((2, 2, 2)), "sobel_x")
    with pytest.raises(ShapeError, match=r"`grad_out` must have the output shape \(3, 3\)"):
        convolution_backward(5, "sobel_x", np.ones((2, 2)))


@pytest.mark.parametrize(("size", "s", "padding", "d"), [(5, 1, "valid", 1), (5, 2, "same", 1), (7, 2, 1, 2),
                                                         (6, 3, ((0, 2), (1, 0)), 1), (4, 2, "valid", 1)])  # fmt: skip
def test_conv_backward_trace_equals_engine(size: int, s: int, padding: object, d: int) -> None:
    rng = np.random.default_rng(0)
    k = rng.standard_normal((3, 3)) if size > 4 else rng.standard_normal((2, 2))
    b = convolution_backward(size, k, strides=s, padding=padding, dilation_rate=d)
    x = rng.standard_normal((1, size, size, 1))
    g = b.grad_out[None, :, :, None]
    engine = conv2d_backward(g, x, k[:, :, None, None], strides=s, padding=padding, dilation_rate=d).x
    np.testing.assert_allclose(b.grad_x, engine[0, :, :, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(b.trace.kernel, k[::-1, ::-1])


@pytest.mark.parametrize(("kind", "p", "s", "padding"), [("max", 2, 2, "valid"), ("max", 3, 2, "same"),
                                                         ("avg", 2, 1, "valid")])  # fmt: skip
def test_pool_backward_trace(kind: str, p: int, s: int, padding: str) -> None:
    x = np.random.default_rng(1).standard_normal((5, 5))
    b = pooling_backward(x, pool_size=p, strides=s, padding=padding, kind=kind)
    if kind == "max":
        engine = max_pool2d_backward(b.grad_out[None, :, :, None], x[None, :, :, None], pool_size=p, strides=s,
                                     padding=padding)[0, :, :, 0]  # fmt: skip
        np.testing.assert_allclose(b.grad_x, engine, rtol=1e-12)
    assert b.grad_x.sum() == pytest.approx(b.grad_out.sum())
    np.testing.assert_array_equal(b.partial[-1], b.grad_x)


def test_to_dict_is_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    t = convolution("ramp:4x4", "sobel_x", padding="same")
    d = json.loads(json.dumps(t.to_dict()))
    assert d["geometry"]["pads"] == [[1, 1], [1, 1]]
    assert len(d["steps"]) == 16
    assert d["steps"][0]["feature_map"][0][1] is None
    p = json.loads(json.dumps(pooling("ramp:4x4", padding="same", pool_size=3).to_dict()))
    assert p["steps"][0]["argmax"] == [1, 1]
    assert p["steps"][-1]["window"][2][2] is None


def test_cli_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--input", "1,1,1,0,0;0,1,1,1,0;0,0,1,1,1;0,0,1,1,0;0,1,1,0,0",
                 "--kernel", "1,0,1;0,1,0;1,0,1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("Step ") == 9
    assert "Step 9/9: output[2, 2]" in out
    assert "sum = 1 + 0 + 1 + 0 + 1 + 0 + 0 + 0 + 1 = 4" in out
    assert "(5 + 0 + 0 - 3) // 1 + 1 = 3" in out
    assert "\x1b[" not in out  # no colour codes when not a TTY
    assert main(["explain", "--input", "ramp:4x4", "--pool", "max", "--step", "4"]) == 0
    out = capsys.readouterr().out
    assert "Step 4/4" in out
    assert "Step 1/4" not in out
    assert "max = 16 at input[3, 3]" in out
    assert main(["explain", "--input", "ramp:4x4", "--json", "--padding", "1,0,0,1", "--dilation", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["geometry"]["pads"] == [[1, 0], [0, 1]]
    assert d["geometry"]["extent"] == [5, 5]
    assert main(["explain", "--kernel", "bad"]) == 2
    assert "`kernel` must be one of" in capsys.readouterr().err
    assert main(["explain", "--input", "ramp:4x4", "--step", "99"]) == 2


def test_cli_backward(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--backward", "--stride", "2", "--padding", "same", "--max-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "flipped kernel" in out
    assert "grad_x" in out
    assert main(["explain", "--backward", "--pool", "max", "--input", "ramp:4x4", "--max-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("0 3 0 4")  # grads 1..4 land on each window's max (bottom-right)
