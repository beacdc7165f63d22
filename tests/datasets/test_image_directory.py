"""image_dataset_from_directory: Keras's index, order, split and label modes; decoding and resizing checked
against Pillow's documented conversions and PyTorch's interpolation; errors that name the file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convlens as cl
from convlens.datasets.image_directory import ImageDataset, image_dataset_from_directory
from convlens.datasets.images import crop_to_aspect_ratio, resize
from convlens.errors import ConfigError, DataError
from tests.conftest import require

torch = require("torch")


def _save(path: Path, pixels: np.ndarray, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two classes ('cats' sorts first), PNG/BMP/GIF/JPEG, a nested folder, and files that must be ignored."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"

    def image() -> np.ndarray:
        return rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)

    _save(root / "dogs" / "d1.png", image())
    _save(root / "dogs" / "d0.BMP", image(), "BMP")
    _save(root / "dogs" / "inner" / "d2.png", image())
    _save(root / "cats" / "c1.gif", image()[..., 0])
    _save(root / "cats" / "c0.png", image())
    _save(root / "cats" / "c2.jpg", image())
    _save(root / "top_level.png", image())  # not in a class folder: ignored
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    _save(root / ".hidden" / "h.png", image())
    return root


EXPECTED_ORDER = ["cats/c0.png", "cats/c1.gif", "cats/c2.jpg", "dogs/d0.BMP", "dogs/d1.png", "dogs/inner/d2.png"]


def _relative(ds: ImageDataset, root: Path) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in ds.file_paths]


def test_reachable_as_keras_spells_it():
    assert cl.utils.image_dataset_from_directory is image_dataset_from_directory


def test_index_classes_and_alphanumeric_order(tree, capsys):
    ds = image_dataset_from_directory(tree, image_size=(4, 4), batch_size=4, shuffle=False)
    assert capsys.readouterr().out == "Found 6 files belonging to 2 classes.\n"
    assert ds.class_names == ["cats", "dogs"]
    assert _relative(ds, tree) == EXPECTED_ORDER
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert len(ds) == 2
    batches = list(ds)
    assert [b[0].shape for b in batches] == [(4, 4, 4, 3), (2, 4, 4, 3)]
    assert batches[0][0].dtype == np.float32
    assert batches[0][1].dtype == np.int32
    assert np.concatenate([b[1] for b in batches]).tolist() == [0, 0, 0, 1, 1, 1]


def test_class_names_choose_and_order_the_classes(tree):
    ds = image_dataset_from_directory(tree, class_names=["dogs", "cats"], image_size=4, shuffle=False, verbose=False)
    assert ds.class_names == ["dogs", "cats"]
    assert _relative(ds, tree)[:3] == ["dogs/d0.BMP", "dogs/d1.png", "dogs/inner/d2.png"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    only = image_dataset_from_directory(tree, class_names=["dogs"], image_size=4, shuffle=False, verbose=False)
    assert _relative(only, tree) == ["dogs/d0.BMP", "dogs/d1.png", "dogs/inner/d2.png"]


def test_seeded_shuffle_is_kerass_list_shuffle(tree):
    ds = image_dataset_from_directory(tree, image_size=4, seed=7, verbose=False)
    # Keras: rng = np.random.RandomState(seed); rng.shuffle(file_paths) on the alphanumeric list.
    expected = list(EXPECTED_ORDER)
    np.random.RandomState(7).shuffle(expected)
    assert _relative(ds, tree) == expected
    assert ds.labels.tolist() == [0 if p.startswith("cats") else 1 for p in expected]


def test_each_pass_reshuffles_the_same_files(tree):
    ds = image_dataset_from_directory(tree, image_size=2, seed=1, batch_size=6, verbose=False)
    first, second = (next(iter(ds))[0].reshape(6, -1) for _ in range(2))
    assert not np.array_equal(first, second)
    assert sorted(map(tuple, first.tolist())) == sorted(map(tuple, second.tolist()))
    fixed = image_dataset_from_directory(tree, image_size=2, shuffle=False, batch_size=6, verbose=False)
    np.testing.assert_array_equal(next(iter(fixed))[0], next(iter(fixed))[0])


@pytest.mark.parametrize("subset", ["training", "validation", "both"])
def test_validation_split_takes_the_last_files(tree, subset, capsys):
    whole = image_dataset_from_directory(tree, image_size=4, seed=3, verbose=False)
    result = image_dataset_from_directory(tree, image_size=4, seed=3, validation_split=0.34, subset=subset)
    out = capsys.readouterr().out
    held_out = int(0.34 * 6)  # Keras: int(validation_split * files), the last ones of the shuffled list
    if subset == "both":
        training, validation = result
        assert out.endswith("Using 4 files for training.\nUsing 2 files for validation.\n")
        assert not validation.shuffle
    else:
        training = validation = result
        assert out.endswith(f"Using {4 if subset == 'training' else 2} files for {subset}.\n")
    if subset != "validation":
        assert training.file_paths == whole.file_paths[:-held_out]
        assert training.labels.tolist() == whole.labels.tolist()[:-held_out]
    if subset != "training":
        assert validation.file_paths == whole.file_paths[-held_out:]


def test_label_modes(tree):
    common = {"image_size": 3, "shuffle": False, "verbose": False, "batch_size": 6}
    _, categorical = next(iter(image_dataset_from_directory(tree, label_mode="categorical", **common)))
    assert categorical.dtype == np.float32
    np.testing.assert_array_equal(categorical, np.eye(2)[[0, 0, 0, 1, 1, 1]])
    _, binary = next(iter(image_dataset_from_directory(tree, label_mode="binary", **common)))
    assert binary.dtype == np.float32
    assert binary.tolist() == [[0.0]] * 3 + [[1.0]] * 3
    for kwargs in ({"label_mode": None}, {"labels": None}):
        ds = image_dataset_from_directory(tree, **kwargs, **common)
        images = next(iter(ds))
        assert isinstance(images, np.ndarray)
        assert images.shape == (6, 3, 3, 3)


def test_explicit_labels_follow_the_sorted_paths(tmp_path):
    for name in ("b.png", "a.png", "sub/c.png"):
        _save(tmp_path / name, np.zeros((2, 2, 3), np.uint8))
    ds = image_dataset_from_directory(tmp_path, labels=[5, 3, 5], image_size=2, shuffle=False, verbose=False)
    assert _relative(ds, tmp_path) == ["a.png", "b.png", "sub/c.png"]
    assert ds.labels.tolist() == [5, 3, 5]
    assert ds.class_names == ["3", "5"]


@pytest.mark.parametrize(("color_mode", "channels"), [("grayscale", 1), ("rgb", 3), ("rgba", 4)])
def test_color_modes(tmp_path, color_mode, channels):
    pixel = np.array([200, 100, 50], np.uint8)
    _save(tmp_path / "k" / "a.png", np.tile(pixel, (3, 3, 1)))
    ds = image_dataset_from_directory(tmp_path, color_mode=color_mode, image_size=3, verbose=False)
    images, _ = ds.to_arrays()
    assert images.shape == (1, 3, 3, channels)
    # Pillow's documented conversions: L = R*299/1000 + G*587/1000 + B*114/1000; RGBA adds an opaque alpha.
    expected = {1: [round((200 * 299 + 100 * 587 + 50 * 114) / 1000)], 3: [200, 100, 50], 4: [200, 100, 50, 255]}
    assert images[0, 1, 1].tolist() == expected[channels]


def _torch_resize(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    extra = {"align_corners": False, "antialias": False} if mode == "bilinear" else {}
    out = torch.nn.functional.interpolate(tensor, size=size, mode=mode, **extra)
    return out[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize(
    ("shape", "size"), [((7, 5), (3, 11)), ((28, 28), (13, 40)), ((5, 9), (5, 9)), ((1, 1), (4, 3)), ((30, 2), (7, 7))]
)
def test_resize_matches_pytorch(shape, size):
    # TensorFlow's resize (half-pixel centres, no antialiasing) is PyTorch's align_corners=False / nearest-exact.
    image = np.random.default_rng(0).random((*shape, 3), dtype=np.float32) * 255
    np.testing.assert_allclose(resize(image, size), _torch_resize(image, size, "bilinear"), rtol=1e-6, atol=2e-4)
    np.testing.assert_array_equal(resize(image, size, "nearest"), _torch_resize(image, size, "nearest-exact"))


def test_loaded_pixels_are_the_file_resized(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    _save(tmp_path / "k" / "a.png", pixels)
    for interpolation, mode in (("bilinear", "bilinear"), ("nearest", "nearest-exact")):
        ds = image_dataset_from_directory(tmp_path, image_size=(4, 6), interpolation=interpolation, verbose=False)
        images, _ = ds.to_arrays()
        np.testing.assert_allclose(images[0], _torch_resize(pixels.astype(np.float32), (4, 6), mode), atol=2e-4)


def test_crop_to_aspect_ratio_takes_the_centre(tmp_path):
    pixels = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)
    _save(tmp_path / "k" / "a.png", pixels)
    assert crop_to_aspect_ratio(pixels, (2, 2)).tolist() == pixels[:, 2:6].tolist()
    ds = image_dataset_from_directory(tmp_path, image_size=2, crop_to_aspect_ratio=True, verbose=False)
    expected = _torch_resize(pixels[:, 2:6].astype(np.float32), (2, 2), "bilinear")
    np.testing.assert_allclose(ds.to_arrays()[0][0], expected, atol=2e-4)


def test_undecodable_file_names_it(tmp_path):
    _save(tmp_path / "k" / "good.png", np.zeros((2, 2, 3), np.uint8))
    bad = tmp_path / "k" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ds = image_dataset_from_directory(tmp_path, image_size=2, shuffle=False, verbose=False)
    with pytest.raises(
        DataError, match=rf"^image_dataset_from_directory: cannot decode {re.escape(os.fspath(bad))}: .+\.$"
    ):
        ds.to_arrays()


def test_take_and_repr(tree):
    ds = image_dataset_from_directory(tree, image_size=(3, 2), batch_size=4, seed=0, verbose=False)
    assert len(list(ds.take(1))) == 1
    assert repr(ds) == "<ImageDataset: 6 files, 2 classes, batches of 4 x 3x2x3>"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": "folders"}, ConfigError, r"`labels` must be 'inferred', None or a list of integer labels"),
        ({"labels": None, "class_names": ["a"]}, ConfigError, r"`class_names` is only valid with labels='inferred'"),
        ({"class_names": ["cats", "birds"]}, ConfigError, r"`class_names` must name sub-folders of .* \(some of "),
        ({"label_mode": "sparse"}, ConfigError, r"`label_mode` must be one of 'int', 'categorical', 'binary'"),
        ({"labels": [0, 1]}, ConfigError, r"`labels` must have one label per image file \(8 in .*\), got 2 labels\."),
        ({"color_mode": "cmyk"}, ConfigError, r"`color_mode` must be one of 'grayscale', 'rgb', 'rgba', got 'cmyk'"),
        ({"interpolation": "bicubic"}, ConfigError, r"`interpolation` must be one of 'bilinear', 'nearest'"),
        ({"validation_split": 1.5, "subset": "both"}, ConfigError, r"`validation_split` must be between 0 and 1"),
        ({"validation_split": 0.2}, ConfigError, r"`subset` and `validation_split` go together"),
        ({"validation_split": 0.2, "subset": "test", "seed": 1}, ConfigError, r"`subset` must be one of 'training'"),
        ({"validation_split": 0.2, "subset": "both"}, ConfigError, r"`seed` is required with validation_split"),
        ({"batch_size": None}, ConfigError, r"`batch_size` must be an integer >= 1 \(unbatched datasets are not"),
        ({"batch_size": 0}, ConfigError, r"`batch_size` must be an integer >= 1, got 0\."),
        ({"image_size": (2, 0)}, ConfigError, r"`image_size` must be positive integers, got \(2, 0\)\."),
        ({"pad_to_aspect_ratio": True}, ConfigError, r"`pad_to_aspect_ratio=True` is not supported"),
        ({"data_format": "channels_first"}, ConfigError, r"`data_format` must be 'channels_last' \(or None\)"),
        ({"format": "grain"}, ConfigError, r"convlens does not support the argument\(s\) `format`; it always"),
    ],
)
def test_argument_errors(tree, kwargs, error, match):
    # (With explicit labels every image under the folder counts, hidden folders and top-level files too: 8.)
    with pytest.raises(error, match=rf"^image_dataset_from_directory: {match}"):
        image_dataset_from_directory(tree, verbose=False, **kwargs)


def test_binary_needs_two_classes(tmp_path):
    for name in ("a", "b", "c"):
        _save(tmp_path / name / "x.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(
        ConfigError,
        match=r"^image_dataset_from_directory: label_mode='binary' needs exactly 2 classes, got "
        r"class_names=\['a', 'b', 'c'\]\.$",
    ):
        image_dataset_from_directory(tmp_path, label_mode="binary", verbose=False)


def test_missing_directory_and_no_images(tmp_path):
    with pytest.raises(DataError, match=r"^image_dataset_from_directory: `directory` must be an existing folder, got "):
        image_dataset_from_directory(tmp_path / "nope")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(
        DataError,
        match=r"^image_dataset_from_directory: no images in .*: allowed formats \.bmp, \.gif, \.jpeg, \.jpg, \.png\.$",
    ):
        image_dataset_from_directory(tmp_path, verbose=False)
