"""Keras side of keras_image_dataset_parity.py: run image_dataset_from_directory per case, save what it yields."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main() -> None:
    import keras

    spec = json.loads(sys.argv[1])
    for index, kwargs in enumerate(spec["cases"]):
        ds = keras.utils.image_dataset_from_directory(
            spec["root"], image_size=tuple(spec["image_size"]), verbose=False, **kwargs
        )
        batches = [(x.numpy(), y.numpy()) for x, y in ds]
        np.savez(
            os.path.join(spec["out"], f"case{index}.npz"),
            x=np.concatenate([x for x, _ in batches]),
            y=np.concatenate([y for _, y in batches]),
            file_paths=json.dumps(list(ds.file_paths)),
            class_names=json.dumps(list(ds.class_names)),
        )


if __name__ == "__main__":
    main()
