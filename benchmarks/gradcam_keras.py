"""convlens's Grad-CAM and HiResCAM against Keras's official Grad-CAM example run by TensorFlow itself.

Two models: the hand-set one of tests/lab/test_viz_gradcam.py (4x4 input, the answer known: Grad-CAM all zero,
HiResCAM [[2, 0], [0, 0]]) and a course model (given with --model, e.g. `convlens train --save /tmp/course.npz`),
on MNIST test image 7. Prints the largest differences of the signed maps (before the relu).

Usage: python benchmarks/gradcam_keras.py --keras-python /path/to/python-with-tensorflow [--model course.npz]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import table


def _hand_set() -> tuple[object, np.ndarray]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.lab.test_viz_gradcam import _flatten_head, _quadrant_input

    return _flatten_head(), _quadrant_input()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keras-python", default=os.environ.get("CONVLENS_KERAS_PYTHON"))
    parser.add_argument("--model", default=None, help="a saved course model (.npz)")
    args = parser.parse_args()
    if not args.keras_python:
        parser.error("give --keras-python (an interpreter with tensorflow-cpu) or set CONVLENS_KERAS_PYTHON")
    import convlens as cl
    from convlens.lab import viz
    from convlens.lab.viz.images import model_input

    cases = [("hand-set 4x4", *_hand_set())]
    if args.model:
        model = cl.load_model(args.model)
        cases.append(
            (f"course model {Path(args.model).name}, test image 7", model, model_input(model, None, index=7).x[0])
        )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, model, x in cases:
            ours = viz.gradcam(model, x, method="gradcam")
            hires = viz.gradcam(model, x)
            conv, dense = model.layers[0], model.layers[-1]
            given, result = Path(folder) / "in.npz", Path(folder) / "out.npz"
            weights = {"conv_kernel": conv.params["kernel"], "conv_bias": conv.params["bias"],
                       "dense_kernel": dense.params["kernel"], "dense_bias": dense.params["bias"]}  # fmt: skip
            np.savez(given, x=np.asarray(x, np.float32)[None], padding=conv.padding, class_index=ours.class_index,
                     **weights)  # fmt: skip
            keras_side = Path(__file__).with_name("_keras_gradcam.py")
            subprocess.run([args.keras_python, str(keras_side), str(given), str(result)], check=True)
            keras_out = np.load(result)
            rows.append([
                name, ours.class_index, f"{float(keras_out['logit']):.6g}", f"{ours.score:.6g}",
                f"{np.abs(keras_out['weights'] - ours.weights).max():.2e}",
                f"{np.abs(np.maximum(keras_out['heatmap'], 0) - ours.gradcam_small).max():.2e}",
                f"{np.abs(keras_out['hires'] - hires.signed).max():.2e}",
                f"{int((keras_out['weights'] > 0).sum())}/{keras_out['weights'].size}",
                f"{float(np.maximum(keras_out['hires'], 0).max()):.4g}",
            ])  # fmt: skip
    print(table(["model", "class", "Keras logit", "convlens logit", "max diff alpha", "max diff Grad-CAM",
                 "max diff HiResCAM (signed)", "alpha > 0 (Keras)", "HiResCAM max (Keras)"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
