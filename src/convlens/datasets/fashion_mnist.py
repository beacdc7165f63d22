"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; MIT licence), loaded like ``keras.datasets.fashion_mnist``.

60,000 training and 10,000 test images, 28x28 grey, 10 clothing classes (:data:`CLASS_NAMES`), in MNIST's IDX
format. The full set is not packaged: :func:`load_data` finds it (``path=``, ``$CONVLENS_DATA/fashion-mnist/``,
Debian's ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist/``, the download cache) or downloads
it from the URL Keras uses, and checks every file's uncompressed SHA-256 against :data:`SHA256` wherever it
came from (see :mod:`convlens.datasets.sources`). :func:`load_sample` returns the first 100 test images, which
do ship inside the package, so pictures and demos work with no data installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from convlens.datasets import sources
from convlens.datasets.sources import IDX_FILES, IdxArrays, Source

__all__ = ["BASE_URL", "CLASS_NAMES", "FILES", "SHA256", "load_data", "load_sample"]

#: The standard file names, in the order (x_train, y_train, x_test, y_test).
FILES = IDX_FILES

#: SHA-256 of each file's UNCOMPRESSED bytes (the upstream release; Debian's recompressed .gz files match too).
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: Label -> name, as in the data set's README and Keras's documentation.
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Where Keras downloads the files from (``<BASE_URL><name>.gz``).
BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

SOURCE = Source(
    owner="fashion_mnist.load_data",
    title="Fashion-MNIST",
    folder="fashion-mnist",
    expected=", ".join(f"{stem}[.gz]" for stem in FILES),
    debian_package="dataset-fashion-mnist",
)

_SAMPLE_DIR = Path(__file__).parent / "data" / "fashion-mnist-sample"
#: SHA-256 of the packaged sample's uncompressed files (the first 100 records of the official test files).
SAMPLE_SHA256 = {
    "sample-images-idx3-ubyte": "10011aad7e104ca4844b2f2ec20ea5e697cc6fe044fcdfe102805b0cffb2c8b5",
    "sample-labels-idx1-ubyte": "825f333513fdd542aa1aa55ded6b697992e3bbc01f304e46fd0126ead73ad4d6",
}


_NOT_OFFICIAL = " Replace it with the official file (or delete it from the download cache to fetch it again)."


def _fetch(directory: Path) -> None:
    """Download the files the cache lacks, each checked before it takes its name."""
    for stem in FILES:
        target = directory / f"{stem}.gz"
        if not target.is_file():
            sources.download(BASE_URL + target.name, target, _verify)


def _verify(path: Path, name: str) -> None:
    hint = f" The file downloaded from {BASE_URL} is not the official one; it was not kept."
    stem = name.removesuffix(".gz")
    sources.check_sha256(sources.read_uncompressed(path, name), SHA256[stem], name, hint)


def load_data(path: str | os.PathLike[str] | None = None) -> IdxArrays:
    """Load Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``, like Keras.

    Args:
        path: a directory holding the four IDX files (:data:`FILES`, each ``.gz`` or raw), searched alone.
            None (default): ``$CONVLENS_DATA/fashion-mnist/``, then ``/usr/share/datasets/fashion-mnist/``
            (Debian's ``dataset-fashion-mnist``), then the cache ``~/.cache/convlens/datasets/fashion-mnist/``
            (``$XDG_CACHE_HOME`` respected), then a download from :data:`BASE_URL` into that cache.

    Returns:
        Fresh, writable uint8 arrays: pixels 0..255, labels 0..9 (:data:`CLASS_NAMES`).

    Raises:
        DataError: a file whose uncompressed SHA-256 is not the official one (naming it), a malformed file,
            a ``path`` that is not a directory or lacks a file, or no files anywhere and no download.

    Shapes:
        x_train (60000, 28, 28), y_train (60000,), x_test (10000, 28, 28), y_test (10000,).
    """
    paths = sources.locate(SOURCE, path, sources.find_idx_files, _fetch)
    return sources.load_idx_set(paths, [SHA256[stem] for stem in FILES], _NOT_OFFICIAL)


def load_sample() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The first 100 Fashion-MNIST test images and their labels, packaged with convlens (no data needed).

    The images are part of Fashion-MNIST (copyright Zalando SE, MIT licence; see the ``README.md`` beside them).

    Returns:
        ``(x, y)``: fresh, writable uint8 arrays; ``CLASS_NAMES[y[i]]`` names image ``i``.

    Shapes:
        x (100, 28, 28), y (100,).

    >>> x, y = load_sample()
    >>> x.shape, [CLASS_NAMES[label] for label in y[:3]]
    ((100, 28, 28), ['Ankle boot', 'Pullover', 'Trouser'])
    """
    hint = " The packaged Fashion-MNIST sample is damaged; reinstall convlens."
    images, labels = (
        sources.read_idx_checked(_SAMPLE_DIR / f"{stem}.gz", sha, hint) for stem, sha in SAMPLE_SHA256.items()
    )
    return images, labels
