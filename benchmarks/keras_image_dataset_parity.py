"""convlens's image_dataset_from_directory against Keras 3's: the same files, order, split, labels and pixels.

Writes a folder of random PNG, JPEG, BMP and GIF images (various sizes, three classes), asks Keras (TensorFlow
backend, in the interpreter given) and convlens for the same datasets, and prints the differences.

Usage: python benchmarks/keras_image_dataset_parity.py --keras-python /path/to/python-with-tensorflow
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import convlens as cl  # before NumPy, as the CLI loads it

# isort: split
import numpy as np
from _common import table
from PIL import Image

# (name, keyword arguments): each is one call on both sides.
CASES = [
    ("rgb bilinear, seed 3, training", {"seed": 3, "validation_split": 0.25, "subset": "training"}),
    ("rgb bilinear, seed 3, validation", {"seed": 3, "validation_split": 0.25, "subset": "validation"}),
    # TensorFlow decodes BMP to 3 or 4 channels only, GIF to 3 only, JPEG to 1 or 3: BMP and GIF files are in
    # class b, JPEG files in class c, so the grayscale and rgba cases leave those classes out.
    (
        "grayscale nearest, classes a c",
        {"shuffle": False, "color_mode": "grayscale", "interpolation": "nearest", "class_names": ["a", "c"]},
    ),
    ("rgba bilinear, class a", {"shuffle": False, "color_mode": "rgba", "class_names": ["a"]}),
    ("rgb crop_to_aspect_ratio, unshuffled", {"shuffle": False, "crop_to_aspect_ratio": True}),
    ("categorical, class_names order", {"shuffle": False, "label_mode": "categorical", "class_names": ["c", "a"]}),
]


def write_images(root: Path) -> None:
    rng = np.random.default_rng(0)
    by_class = {
        "a": [("png", "PNG"), ("PNG", "PNG")],
        "b": [("bmp", "BMP"), ("gif", "GIF"), ("png", "PNG")],
        "c": [("jpg", "JPEG"), ("png", "PNG")],
    }
    for name, formats in by_class.items():
        for i in range(7):
            height, width = rng.integers(5, 40, 2)
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            suffix, fmt = formats[i % len(formats)]
            folder = root / name / ("deep" if i == 3 else "")
            folder.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray(pixels if fmt != "GIF" else pixels[..., 0])
            image.save(folder / f"img{i}.{suffix}", format=fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keras-python", default=os.environ.get("CONVLENS_KERAS_PYTHON"))
    args = parser.parse_args()
    if not args.keras_python:
        parser.error("give --keras-python (an interpreter with tensorflow-cpu) or set CONVLENS_KERAS_PYTHON")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_images(root)
        spec = {"root": str(root), "out": tmp, "cases": [kwargs for _, kwargs in CASES], "image_size": [12, 9]}
        script = Path(__file__).with_name("_keras_image_dataset.py")
        subprocess.run([args.keras_python, str(script), json.dumps(spec)], check=True)
        for index, (name, kwargs) in enumerate(CASES):
            theirs = np.load(Path(tmp) / f"case{index}.npz")
            ours = cl.utils.image_dataset_from_directory(root, image_size=(12, 9), verbose=False, **kwargs)
            x, y = (np.concatenate(parts) for parts in zip(*list(ours), strict=True))
            same_files = ours.file_paths == json.loads(str(theirs["file_paths"]))
            same_names = ours.class_names == json.loads(str(theirs["class_names"]))
            if ours.shuffle:
                # Both reshuffle every pass (TensorFlow within a buffer, convlens fully): compare what, not where.
                labels = "yes (as a multiset)" if sorted(y.tolist()) == sorted(theirs["y"].tolist()) else "NO"
                lossless = jpeg_diff = "- (order differs)"
            else:
                labels = "yes" if np.array_equal(y, theirs["y"]) else "NO"
                jpeg = np.array([p.lower().endswith(".jpg") for p in ours.file_paths])
                pixels = np.abs(x - theirs["x"])
                lossless = f"{pixels[~jpeg].max():.2g}"
                jpeg_diff = f"{pixels[jpeg].max():.2g}" if jpeg.any() else "-"
            rows.append([name, "yes" if same_files and same_names else "NO", labels, lossless, jpeg_diff])
    print("convlens vs keras.utils.image_dataset_from_directory (TensorFlow backend), 21 images resized to 12x9")
    headers = ["case", "same files, order, classes", "same labels", "max |pixel diff| PNG/BMP/GIF", "JPEG"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
