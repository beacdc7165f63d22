"""convlens.lab.viz: inputs, feature maps, filters (content of the pictures, not only files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require

require("matplotlib")
PIL = require("PIL")

from PIL import Image  # noqa: E402

import convlens as cl  # noqa: E402
from convlens.errors import ConfigError, DataError, ShapeError  # noqa: E402
from convlens.lab import viz  # noqa: E402
from convlens.lab.viz._figure import save_figure  # noqa: E402
from convlens.lab.viz.filters import filter_layout  # noqa: E402
from convlens.lab.viz.images import model_input  # noqa: E402


def _axes_with_images(figure: object) -> list[object]:
    return [ax for ax in figure.axes if ax.images]  # type: ignore[attr-defined]  # subfigures' axes included


def _edge_model() -> cl.Sequential:
    model = cl.Sequential([cl.layers.Conv2D(1, 3, padding="valid", input_shape=(8, 8, 1), name="edge")])
    kernel = np.zeros((3, 3, 1, 1), np.float32)
    kernel[:, 0, 0, 0], kernel[:, 2, 0, 0] = -1.0, 1.0  # dark-to-light from left to right: a vertical edge
    model.layers[0].set_weights([kernel, np.zeros(1, np.float32)])
    return model


def test_vertical_edge_kernel_lights_the_edge_columns(tmp_path: Path) -> None:
    x = np.zeros((8, 8, 1), np.float32)
    x[:, 4:] = 1.0  # edge between columns 3 and 4
    result = viz.feature_maps(_edge_model(), x)
    fmap = result.maps["edge"][..., 0]
    assert fmap.shape == (6, 6)
    # valid 3-wide windows starting at columns 2 and 3 straddle the edge: 3 rows x (1 - 0) = 3
    expected = np.zeros((6, 6), np.float32)
    expected[:, 2:4] = 3.0
    np.testing.assert_array_equal(fmap, expected)
    path = result.save(tmp_path / "maps.png")
    with Image.open(path) as img:
        width, height = result.figure.get_size_inches() * 100
        assert img.size == (round(width), round(height))
        assert img.format == "PNG"
    assert "one colour scale per layer" in result.figure.subfigs[0]._suptitle.get_text()


def test_feature_maps_per_map_scale_is_stated_and_grid_counts() -> None:
    model = cl.Sequential(
        [
            cl.layers.Conv2D(5, 3, padding="same", activation="relu", input_shape=(6, 6, 1), name="c"),
            cl.layers.MaxPooling2D(2, name="p"),
            cl.layers.Flatten(name="f"),
            cl.layers.Dense(3, name="d"),
        ]
    )
    x = np.random.default_rng(0).random((6, 6, 1)).astype(np.float32)
    result = viz.feature_maps(model, x, scale="per-map", columns=4)
    assert list(result.maps) == ["c", "p", "f", "d"]
    np.testing.assert_allclose(result.maps["d"], model.predict(x[None], verbose=0)[0], rtol=1e-6)
    assert "each map scaled to its own range" in result.figure.subfigs[0]._suptitle.get_text()
    # input + 5 conv maps + 5 pool maps (the dense layer is a bar chart, 45-value flatten is drawn as bars)
    assert len(_axes_with_images(result.figure)) == 1 + 5 + 5
    with pytest.raises(ConfigError, match=r"feature_maps: `scale` must be one of 'shared', 'per-map', got 'log'"):
        viz.feature_maps(model, x, scale="log")


def test_filter_grid_layout_and_tile_count() -> None:
    one = cl.Sequential([cl.layers.Conv2D(6, 3, input_shape=(8, 8, 1), name="one")])
    result = viz.filters(one, columns=4)
    assert result.layout["one"] == (2, 4)
    assert result.tiles["one"] == 6
    assert len(_axes_with_images(result.figure)) == 6
    two = cl.Sequential([cl.layers.Conv2D(5, 3, input_shape=(8, 8, 2), name="two")])
    result = viz.filters(two)
    assert result.layout["two"] == (2, 5)  # rows: input channels, columns: filters
    assert result.tiles["two"] == 10
    np.testing.assert_array_equal(result.kernels["two"], two.layers[0].params["kernel"])
    images = _axes_with_images(result.figure)
    assert len(images) == 10
    # tile (channel 1, filter 3) shows exactly kernel[:, :, 1, 3]
    np.testing.assert_array_equal(images[1 * 5 + 3].images[0].get_array(), two.layers[0].params["kernel"][:, :, 1, 3])


def test_filters_rgb_tiles() -> None:
    model = cl.Sequential([cl.layers.Conv2D(3, 2, input_shape=(8, 8, 3), name="rgb")])
    result = viz.filters(model)
    assert result.rgb["rgb"]
    assert result.layout["rgb"] == (1, 3)
    tile = _axes_with_images(result.figure)[0].images[0].get_array()
    assert tile.shape == (2, 2, 3)
    assert float(np.min(tile)) == 0.0
    assert float(np.max(tile)) == 1.0
    assert filter_layout(1, 20, columns=8, max_channels=8, rgb=False) == (3, 8)


def test_filters_errors() -> None:
    dense = cl.Sequential([cl.layers.Flatten(input_shape=(4, 4, 1)), cl.layers.Dense(2)])
    with pytest.raises(ConfigError, match="filters: the model has no conv layer"):
        viz.filters(dense)
    with pytest.raises(ConfigError, match=r"filters: `layers` must name conv layers \(edge\), got \['nope'\]"):
        viz.filters(_edge_model(), layers="nope")


def test_load_image_converts_and_describes(tmp_path: Path) -> None:
    picture = np.full((30, 40, 3), 255, np.uint8)  # white paper
    picture[:, 18:22] = 0  # a black vertical stroke
    path = tmp_path / "digit.png"
    Image.fromarray(picture).save(path)
    loaded = viz.load_image(path, (28, 28, 1))
    assert loaded.array.shape == (28, 28, 1)
    assert loaded.array.dtype == np.float32
    assert "40x30 RGB" in loaded.description
    assert "resized to 28x28" in loaded.description
    assert "inverted" in loaded.description
    assert loaded.array[:, 0].max() == 0.0  # background black after inversion, like MNIST
    assert loaded.array[14, 14, 0] == pytest.approx(1.0)  # the stroke is now bright
    result = viz.feature_maps(_edge_model_28(), image=path)
    assert "digit.png" in result.description
    assert "inverted" in result.description


def _edge_model_28() -> cl.Sequential:
    return cl.Sequential([cl.layers.Conv2D(2, 3, input_shape=(28, 28, 1))])


def test_input_errors(tmp_path: Path) -> None:
    model = _edge_model()
    with pytest.raises(DataError, match="load_image: no such file"):
        viz.load_image(tmp_path / "none.png", (8, 8, 1))
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(DataError, match="is not an image Pillow can read"):
        viz.load_image(tmp_path / "bad.png", (8, 8, 1))
    with pytest.raises(ShapeError, match=r"load_image: the model's input must have 1 or 3 channels"):
        viz.load_image(tmp_path / "bad.png", (8, 8, 2))
    with pytest.raises(ConfigError, match="viz: give one input source"):
        model_input(model, np.zeros((8, 8, 1)), index=3)
    with pytest.raises(ShapeError, match=r"viz: `x` must be one image of shape \(8, 8, 1\), got \(7, 8, 1\)"):
        model_input(model, np.zeros((7, 8, 1)))
    with pytest.raises(ConfigError, match=r"`index` must be an MNIST test index in \[0, 10000\), got -1"):
        model_input(model, index=-1)
    with pytest.raises(ConfigError, match=r"save_figure: `path` must end in .png or .svg, got '.*x.jpg'"):
        save_figure(viz.filters(model).figure, tmp_path / "x.jpg")


def test_svg_and_repr_png(tmp_path: Path) -> None:
    result = viz.filters(_edge_model())
    svg = result.save(tmp_path / "f.svg").read_text()
    assert svg.lstrip().startswith("<?xml")
    assert "<svg" in svg
    assert result._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temp file


def test_jupyter_bundle_has_the_picture_and_a_short_text() -> None:
    import base64

    result = viz.feature_maps(_edge_model(), np.random.default_rng(0).random((8, 8, 1)).astype(np.float32))
    bundle = result._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    text = bundle["text/plain"]
    assert text.startswith("<FeatureMapsResult; maps={")
    assert len(text) < 400
    assert "input=array(8, 8, 1)" in text
    assert repr(result) == text
