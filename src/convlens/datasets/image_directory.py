"""``image_dataset_from_directory``: your own images, one sub-folder per class, like Keras 3.

Keras returns a ``tf.data.Dataset``; convlens returns an :class:`ImageDataset`, a small iterable that yields the
same ``(images, labels)`` batches as NumPy arrays and that ``model.fit/evaluate/predict`` accept as ``x``. The
file index, the class order, the seeded shuffle of the file list and the training/validation split follow
Keras's code (``keras.src.utils.dataset_utils``), so the same seed puts the same files in the same subset.
For example, with ``photos/cats/*.jpg``, ``photos/dogs/*.png`` and ``photos/foxes/*.png``::

    ds = image_dataset_from_directory("photos", image_size=(64, 64), batch_size=16)   # Found 120 files ...
    ds.class_names                                                                     # ['cats', 'dogs', 'foxes']
    for images, labels in ds.take(1): ...                                              # (16, 64, 64, 3), (16,)
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convlens.datasets.images import COLOR_MODES, FORMATS, INTERPOLATIONS, load_image
from convlens.errors import ConfigError, DataError, check_choice, check_int, normalize_tuple

__all__ = ["ImageDataset", "image_dataset_from_directory"]

_OWNER = "image_dataset_from_directory"
_LABEL_MODES = ("int", "categorical", "binary")


class ImageDataset:
    """Batches of decoded, resized images and their labels, read from files when iterated.

    Attributes:
        file_paths: every file, in the order of the (seeded, once) shuffled index, as Keras's ``file_paths``.
        class_names: the class names (label ``i`` is ``class_names[i]``), or None without labels.
        labels: the integer label of each file (int32), or None.
        batch_size, image_size, color_mode, label_mode, shuffle: as given.

    Iterating decodes one batch at a time; with ``shuffle=True`` each pass visits the files in a new seeded
    order (Keras reshuffles too, within a buffer of 8 batches). :meth:`to_arrays` decodes everything in
    ``file_paths`` order.

    Shapes:
        images (B, height, width, channels) float32 in [0, 255]; labels (B,) int32 for 'int',
        (B, K) float32 one-hot for 'categorical', (B, 1) float32 for 'binary'; B = batch_size (the last batch
        may be smaller).
    """

    def __init__(
        self,
        file_paths: list[str],
        labels: np.ndarray | None,
        class_names: list[str] | None,
        *,
        label_mode: str | None,
        batch_size: int,
        image_size: tuple[int, int],
        color_mode: str,
        interpolation: str,
        crop_to_aspect_ratio: bool,
        shuffle: bool,
        seed: int,
    ) -> None:
        self.file_paths = file_paths
        self.labels = labels
        self.class_names = class_names
        self.label_mode = label_mode
        self.batch_size = batch_size
        self.image_size = image_size
        self.color_mode = color_mode
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.shuffle = shuffle
        self.seed = seed
        self._passes = 0

    @property
    def channels(self) -> int:
        """1, 3 or 4, from ``color_mode``."""
        return COLOR_MODES[self.color_mode][1]

    def __len__(self) -> int:
        """The number of batches in one pass (``ceil(files / batch_size)``)."""
        return -(-len(self.file_paths) // self.batch_size)

    def __repr__(self) -> str:
        what = f"{len(self.class_names)} classes" if self.class_names is not None else "no labels"
        return (
            f"<ImageDataset: {len(self.file_paths)} files, {what}, batches of {self.batch_size} x "
            f"{self.image_size[0]}x{self.image_size[1]}x{self.channels}>"
        )

    def _images(self, indices: Sequence[int]) -> np.ndarray:
        out = np.empty((len(indices), *self.image_size, self.channels), np.float32)
        for row, index in enumerate(indices):
            out[row] = load_image(
                self.file_paths[index], self.color_mode, self.image_size, self.interpolation, self.crop_to_aspect_ratio
            )
        return out

    def _batch(self, indices: Sequence[int]) -> Any:
        images = self._images(indices)
        if self.labels is None:
            return images
        labels = self.labels[list(indices)]
        if self.label_mode == "categorical":
            return images, np.eye(len(self.class_names or ()), dtype=np.float32)[labels]
        if self.label_mode == "binary":
            return images, labels.astype(np.float32)[:, None]
        return images, labels

    def __iter__(self) -> Iterator[Any]:
        order = np.arange(len(self.file_paths))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self._passes]).permutation(order)
        self._passes += 1
        for start in range(0, len(order), self.batch_size):
            yield self._batch(order[start : start + self.batch_size].tolist())

    def take(self, count: int) -> Iterator[Any]:
        """The first ``count`` batches of a pass (``for images, labels in ds.take(1)``, as with tf.data)."""
        return itertools.islice(iter(self), check_int(count, "count", owner="ImageDataset.take", minimum=0))

    def to_arrays(self) -> Any:
        """Every image (and label) at once, in ``file_paths`` order: ``(images, labels)``, or ``images``.

        Shapes:
            images (N, height, width, channels) float32; labels as in the batches, for all N files.
        """
        return self._batch(range(len(self.file_paths)))


def _index(directory: Path, labels: Any, class_names: Sequence[str] | None, follow_links: bool) -> Any:
    """Keras's ``index_directory`` without the shuffle: (relative file paths, int labels or None, class names)."""
    if labels == "inferred":
        subdirs = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise ConfigError(
                    f"{_OWNER}: `class_names` must name sub-folders of {directory} (some of {subdirs}), "
                    f"got {list(class_names)}."
                )
            subdirs = list(class_names)
    else:
        subdirs = [""]
    files: list[str] = []
    found_labels: list[int] = []
    for label, subdir in enumerate(subdirs):
        root = directory / subdir
        for folder, _, names in sorted(os.walk(root, followlinks=follow_links), key=lambda walked: walked[0]):
            for name in sorted(names):
                if name.lower().endswith(FORMATS):
                    files.append(os.path.join(folder, name))
                    found_labels.append(label)
    if labels == "inferred":
        return files, np.asarray(found_labels, dtype=np.int32), list(subdirs)
    if labels is None:
        return files, None, None
    if len(labels) != len(files):
        raise ConfigError(
            f"{_OWNER}: `labels` must have one label per image file ({len(files)} in {directory}), "
            f"got {len(labels)} labels."
        )
    explicit = np.asarray(labels)
    if explicit.ndim != 1 or not np.issubdtype(explicit.dtype, np.integer) or (explicit.size and explicit.min() < 0):
        raise ConfigError(f"{_OWNER}: `labels` must be non-negative integers, got {list(labels)!r}.")
    return files, explicit.astype(np.int32), [str(v) for v in sorted(set(explicit.tolist()))]


def _check_arguments(labels: Any, label_mode: Any, class_names: Any, validation_split: Any, subset: Any) -> None:
    if not (labels in ("inferred", None) or isinstance(labels, (list, tuple, np.ndarray))):
        raise ConfigError(
            f"{_OWNER}: `labels` must be 'inferred', None or a list of integer labels (one per file, in "
            f"alphanumeric order of the paths), got {labels!r}."
        )
    if class_names is not None and not (isinstance(labels, str) and labels == "inferred"):
        raise ConfigError(f"{_OWNER}: `class_names` is only valid with labels='inferred', got labels={labels!r}.")
    if label_mode is not None:
        check_choice(label_mode, "label_mode", _LABEL_MODES, owner=_OWNER)
    if validation_split is not None and not 0 < validation_split < 1:
        raise ConfigError(f"{_OWNER}: `validation_split` must be between 0 and 1, got {validation_split!r}.")
    if (validation_split is None) != (subset is None):
        raise ConfigError(
            f"{_OWNER}: `subset` and `validation_split` go together: set both or neither, got "
            f"validation_split={validation_split!r}, subset={subset!r}."
        )
    if subset is not None:
        check_choice(subset, "subset", ("training", "validation", "both"), owner=_OWNER)


def image_dataset_from_directory(
    directory: str | os.PathLike[str],
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int = 32,
    image_size: int | tuple[int, int] = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    data_format: str | None = None,
    verbose: bool = True,
    **kwargs: Any,
) -> Any:
    """Images from ``directory``'s class sub-folders as batches, like ``keras.utils.image_dataset_from_directory``.

    With ``labels='inferred'`` each sub-folder is a class (alphanumeric order, or ``class_names``' order) and its
    images, at any depth, carry that label; files directly in ``directory`` are ignored. Supported files:
    ``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.gif`` (first frame), decoded with Pillow.

    Args:
        directory: the folder.
        labels: ``'inferred'``, None (images only), or one integer label per file in the alphanumeric order of
            the paths under ``directory``.
        label_mode: ``'int'`` (int32), ``'categorical'`` (one-hot float32), ``'binary'`` (float32 0/1, exactly
            two classes) or None (images only).
        class_names: the classes to use, in this order (sub-folder names; only with labels='inferred').
        color_mode: ``'grayscale'``, ``'rgb'`` or ``'rgba'`` (1, 3 or 4 channels).
        batch_size: images per batch.
        image_size: ``(height, width)`` every image is resized to (an int means square).
        shuffle: shuffle the file list once (seeded) and every pass over the data; False keeps alphanumeric order.
        seed: the shuffle's seed (None: drawn from NumPy's global generator, which
            :func:`convlens.utils.set_random_seed` seeds). Required with validation_split and shuffle.
        validation_split: the fraction held out for validation (the LAST files of the shuffled list).
        subset: ``'training'``, ``'validation'`` or ``'both'`` (returns the pair); only with validation_split.
        interpolation: ``'bilinear'`` or ``'nearest'`` (TensorFlow's resize, no antialiasing).
        follow_links: follow symbolic links to sub-folders.
        crop_to_aspect_ratio: crop the largest centred window with the target aspect ratio before resizing.
        pad_to_aspect_ratio: not implemented (only False).
        data_format: ``'channels_last'`` (or None); convlens is channels-last throughout.
        verbose: print how many files and classes were found, and the split.
        **kwargs: any other Keras argument (``format``) is refused with a ConfigError naming it.

    Returns:
        An :class:`ImageDataset`, or ``(training, validation)`` for subset='both'.

    Raises:
        ConfigError: a bad argument (naming it) or an option convlens does not implement (Keras's other
            interpolations, ``pad_to_aspect_ratio``, ``batch_size=None``).
        DataError: a missing directory, no image files, or, when iterating, a file that cannot be decoded.

    Shapes:
        batches of images (B, height, width, channels) float32 in [0, 255] and labels (B,), (B, K) or (B, 1).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{_OWNER}: `directory` must be an existing folder, got {os.fspath(directory)!r}.")
    _check_arguments(labels, label_mode, class_names, validation_split, subset)
    if kwargs:
        raise ConfigError(
            f"{_OWNER}: convlens does not support the argument(s) {', '.join(f'`{k}`' for k in kwargs)}; it always "
            "returns a convlens ImageDataset of NumPy batches."
        )
    if pad_to_aspect_ratio:
        raise ConfigError(f"{_OWNER}: `pad_to_aspect_ratio=True` is not supported; use crop_to_aspect_ratio=True.")
    if data_format not in (None, "channels_last"):
        raise ConfigError(f"{_OWNER}: `data_format` must be 'channels_last' (or None), got {data_format!r}.")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if batch_size is None:
        raise ConfigError(f"{_OWNER}: `batch_size` must be an integer >= 1 (unbatched datasets are not supported).")
    batch_size = check_int(batch_size, "batch_size", owner=_OWNER, minimum=1)
    size = normalize_tuple(image_size, 2, "image_size", owner=_OWNER)
    color_mode = check_choice(color_mode, "color_mode", tuple(COLOR_MODES), owner=_OWNER)
    interpolation = check_choice(interpolation, "interpolation", INTERPOLATIONS, owner=_OWNER)
    if validation_split and shuffle and seed is None:
        raise ConfigError(
            f"{_OWNER}: `seed` is required with validation_split and shuffle=True, so that the training and "
            "validation subsets do not overlap. Pass seed=..."
        )
    if seed is None:
        seed = int(np.random.randint(1_000_000))  # noqa: NPY002 - Keras draws from the legacy global RNG too
    files, int_labels, names = _index(directory, labels, class_names, follow_links)
    if verbose:
        classes = "" if names is None else f" belonging to {len(names)} classes"
        print(f"Found {len(files)} files{classes}.")
    if label_mode == "binary" and len(names or []) != 2:
        raise ConfigError(f"{_OWNER}: label_mode='binary' needs exactly 2 classes, got class_names={names}.")
    if shuffle:
        # Keras shuffles the list with np.random.RandomState(seed); the same permutation keeps the same subsets.
        order = np.random.RandomState(seed).permutation(len(files))
        files = [files[i] for i in order]
        int_labels = None if int_labels is None else int_labels[order]
    settings: dict[str, Any] = {
        "label_mode": label_mode,
        "batch_size": batch_size,
        "image_size": size,
        "color_mode": color_mode,
        "interpolation": interpolation,
        "crop_to_aspect_ratio": bool(crop_to_aspect_ratio),
        "seed": seed,
    }
    held_out = int(validation_split * len(files)) if validation_split else 0
    parts = {"training": slice(0, len(files) - held_out), "validation": slice(len(files) - held_out, len(files))}
    chosen: list[str | None] = ["training", "validation"] if subset == "both" else [subset]
    datasets = []
    for name in chosen:
        part = parts[name] if name else slice(None)
        subset_files = files[part]
        if not subset_files:
            what = f"{name} images" if name else "images"
            raise DataError(f"{_OWNER}: no {what} in {os.fspath(directory)}: allowed formats {', '.join(FORMATS)}.")
        if verbose and name:
            print(f"Using {len(subset_files)} files for {name}.")
        datasets.append(
            ImageDataset(
                subset_files,
                None if int_labels is None else int_labels[part],
                names,
                shuffle=bool(shuffle) and not (subset == "both" and name == "validation"),
                **settings,
            )
        )
    return tuple(datasets) if subset == "both" else datasets[0]
