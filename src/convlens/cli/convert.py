"""``convlens convert IN OUT``: a model between formats, chosen by suffix, checked by its outputs.

Models: ``.npz`` (convlens), ``.keras`` (Keras 3), ``.onnx``. Weights only: ``.weights.h5`` (Keras 3),
``.safetensors`` and ``.pt``/``.pth`` (torch state dicts); reading them needs ``--architecture``.
After writing, the output is read back with convlens and run on random inputs next to the input model.
"""

from __future__ import annotations

import argparse
from typing import Any

_MODEL = (".npz", ".keras", ".onnx")
_WEIGHTS = (".weights.h5", ".safetensors", ".pt", ".pth")


def add_parser(sub: Any) -> None:
    """Register ``convert``."""
    convert = sub.add_parser(
        "convert",
        help="convert a model between .npz, .keras, .onnx and weight files (.weights.h5, .safetensors, .pt)",
        description="Convert IN to OUT by their suffixes: models .npz (convlens), .keras (Keras 3), .onnx; "
        "weights .weights.h5 (Keras 3), .safetensors and .pt (torch state dicts, in torch layouts). Reading a "
        "weight file needs --architecture. The result is read back and compared on random inputs.",
    )
    convert.add_argument("input", metavar="IN", help="the model or weight file to read")
    convert.add_argument("output", metavar="OUT", help="the file to write (its suffix picks the format)")
    convert.add_argument(
        "--architecture",
        metavar="SPEC",
        help="for weight files: the model they belong to, as for `convlens summary` (a layer string such as "
        "'input28x28x1, conv32k3same-relu, maxpool2, flatten, dense10-softmax', a .py file or a model file)",
    )
    convert.add_argument("--check-samples", type=int, default=8, help="random inputs for the check (0: no check)")


def _read(path: str, architecture: str | None) -> Any:
    from convlens.errors import ConfigError
    from convlens.interop.formats import load_model, suffix

    if suffix(path) in _WEIGHTS:
        if architecture is None:
            raise ConfigError(f"--architecture: '{path}' holds weights only; say which model they belong to.")
        from convlens.lab.spec import load_model_spec

        return load_model(path, architecture=load_model_spec(architecture))
    return load_model(path)


def _write(model: Any, path: str) -> None:
    from convlens.interop.formats import suffix

    if suffix(path) == ".onnx":
        model.export(path)
    elif suffix(path) in _WEIGHTS:
        model.save_weights(path)
    else:
        model.save(path)


def run(args: argparse.Namespace) -> int:
    """Read, write, read back, compare."""
    import numpy as np

    from convlens.lab.spec import load_model_spec

    model = _read(args.input, args.architecture)
    _write(model, args.output)
    print(f"Converted {args.input} -> {args.output}: {len(model.layers)} layers, {model.count_params():,} parameters")
    if args.check_samples > 0:
        from convlens.interop.formats import suffix

        # Weights go into a fresh copy of the architecture, never into the model they came from.
        back = _weights_into(model, args.output) if suffix(args.output) in _WEIGHTS else load_model_spec(args.output)
        x = np.random.default_rng(0).normal(size=(args.check_samples, *model.input_shape[1:])).astype(np.float32)
        diff = float(np.max(np.abs(back.predict(x, verbose=0) - model.predict(x, verbose=0))))
        print(
            f"Check: {args.output} read back by convlens; max |difference| on {args.check_samples} random inputs: "
            f"{diff:.3g}"
        )
    return 0


def _weights_into(model: Any, path: str) -> Any:
    """A fresh copy of ``model``'s architecture with the weights read from ``path``."""
    from convlens.interop.formats import load_model
    from convlens.layers import LAYER_REGISTRY
    from convlens.models import Sequential

    config = model.get_config()
    copy = Sequential(
        [LAYER_REGISTRY[e["class_name"]].from_config({**e["config"], "name": None}) for e in config["layers"]]
    )
    copy.build(model.input_shape)
    return load_model(path, architecture=copy)
