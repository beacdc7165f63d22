"""Animation frames: count and footprints equal the geometry; GIFs are written quickly."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.errors import ConfigError
from convlens.geometry import WindowGeometry
from convlens.lab.animate import animation_frames, save_animation
from convlens.lab.explain import convolution, pooling
from convlens.lab.explain_backward import convolution_backward, pooling_backward

CASES = [(5, 3, 1, "valid", 1), (5, 3, 2, "same", 1), (7, 3, 2, 1, 2), (6, 2, 3, ((0, 2), (1, 0)), 1),
         (4, 4, 1, "same", 1), (8, 3, 1, "valid", 3)]  # fmt: skip


@pytest.mark.parametrize(("i", "k", "s", "p", "d"), CASES)
def test_conv_frames_follow_geometry(i: int, k: int, s: int, p: object, d: int) -> None:
    trace = convolution(np.arange(i * i, dtype=float).reshape(i, i), np.ones((k, k)), strides=s, padding=p,
                        dilation_rate=d)  # fmt: skip
    g = WindowGeometry.resolve((i, i), k, s, p, d)
    frames = animation_frames(trace)
    assert len(frames) == g.output_size[0] * g.output_size[1]  # no title frames
    for n, f in enumerate(frames):
        index = divmod(n, g.output_size[1])
        assert f.index == index
        assert f.output_cell == index
        assert f.footprint == g.taps(index)
        assert np.isnan(f.right).sum() == len(frames) - n - 1


@pytest.mark.parametrize(("i", "k", "s", "p"), [(5, 2, 2, "valid"), (5, 3, 2, "same"), (4, 3, 1, "same")])
def test_pool_frames_and_backward_routes(i: int, k: int, s: int, p: str) -> None:
    x = np.random.default_rng(0).standard_normal((i, i))
    g = WindowGeometry.resolve((i, i), k, s, p)
    frames = animation_frames(pooling(x, pool_size=k, strides=s, padding=p))
    assert len(frames) == g.output_size[0] * g.output_size[1]
    assert all(f.footprint == g.taps(f.index) for f in frames)
    back = pooling_backward(x, pool_size=k, strides=s, padding=p)
    bframes = animation_frames(back)
    assert len(bframes) == len(frames)
    for f, step in zip(bframes, back.trace.steps, strict=True):
        assert f.targets == [step.argmax]
        assert x[f.output_cell] == step.value


def test_conv_backward_frames_slide_flipped_kernel_over_expanded_grad() -> None:
    b = convolution_backward(5, "sobel_x", strides=2, padding="same")
    # grad_out 3x3, zero-inserted to 5x5, padded by 2 each side -> 9x9; 'valid' 3x3 -> 7x7 frames
    assert b.trace.padded.shape == (9, 9)
    frames = animation_frames(b)
    assert len(frames) == 49
    assert frames[0].footprint == b.trace.geometry.taps((0, 0))


def test_gif_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    path = save_animation(convolution("5x5", "sobel_x"), tmp_path / "conv.gif")
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames == 9
    with pytest.raises(ConfigError, match=r"`path` must end in .gif, got '.*x.mp4'"):
        save_animation(convolution("5x5", "sobel_x"), tmp_path / "x.mp4")
    with pytest.raises(TypeError, match="expected a ConvTrace"):
        animation_frames("nope")


def test_frames_carry_kernel_and_products_and_max_steps_bounds_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from convlens.lab.animate import _legend, scene

    x = np.arange(36, dtype=float).reshape(6, 6)
    kernel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    trace = convolution(x, kernel, padding="same")
    sc = scene(trace)
    np.testing.assert_array_equal(sc.kernel, kernel)
    first = sc.frames[0]
    padded = np.pad(x, 1)
    np.testing.assert_array_equal(first.products, padded[:3, :3] * kernel)  # independent of the trace
    assert first.caption.endswith(f"= {int((padded[:3, :3] * kernel).sum())}")
    assert len(animation_frames(trace, max_steps=3)) == 3
    path = save_animation(trace, tmp_path / "three.gif", max_steps=3)
    with Image.open(path) as im:
        assert im.n_frames == 3
    labels = [label for _, label in _legend(sc, first)]
    assert "padding (reads 0)" in labels
    assert "inserted zero" not in labels
    valid = scene(convolution(x, kernel))
    assert not any(label.startswith("padding") for _, label in _legend(valid, valid.frames[0]))
    with pytest.raises(ConfigError, match=r"animate: `max_steps` must be an integer >= 1, got 0"):
        animation_frames(trace, max_steps=0)


def test_cli_max_steps_bounds_the_animation(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from convlens.cli import main

    out = tmp_path / "ramp.gif"
    args = ["explain", "--input", "ramp:12x12", "--padding", "same", "--max-steps", "3", "--animate", str(out)]
    assert main(args) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.n_frames == 3  # not 12 * 12
