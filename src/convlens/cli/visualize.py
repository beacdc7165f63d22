"""``convlens visualize KIND MODEL``: pictures of what a saved model learned (PNG or SVG by -o's extension)."""

from __future__ import annotations

import argparse
from typing import Any

from convlens.cli._common import positive_int

_KINDS = {
    "feature-maps": "every layer's activations for one input",
    "filters": "the learned kernels of every conv layer",
    "curves": "loss and metric curves from the history saved with the model",
    "confusion": "confusion matrix on the MNIST test set",
    "wrong": "the most confidently wrong MNIST test images",
    "maximize": "the input a filter responds to most (activation maximisation)",
    "saliency": "which pixels drive a prediction (|d score / d pixel|)",
    "gradcam": "where the evidence for a class is: HiResCAM (default) or Grad-CAM heat map",
    "equivariance": "shift the input: conv maps shift with it, the dense output does not",
}
_TAKES_INPUT = ("feature-maps", "saliency", "gradcam", "equivariance")


def _shift(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two integers 'DY,DX', got {text!r}")
    return parts[0], parts[1]


def add_parser(sub: Any) -> None:
    """Register ``visualize`` and its kinds."""
    viz = sub.add_parser(
        "visualize",
        help="draw feature maps, filters, curves, saliency... of a saved model",
        description="Draw what a model saved by `convlens train --save` (or model.save) learned. "
        "-o picks PNG or SVG by its extension.",
    )
    kinds = viz.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, text in _KINDS.items():
        p = kinds.add_parser(kind, help=text, description=text)
        p.add_argument("model", metavar="MODEL", help="a saved model: .npz, .keras or .onnx")
        p.add_argument("-o", "--output", default=f"{kind}.png", help=f"output .png or .svg (default {kind}.png)")
        if kind in _TAKES_INPUT:
            source = p.add_mutually_exclusive_group()
            source.add_argument("--index", type=int, default=None, help="MNIST test image index (default 0)")
            source.add_argument("--image", default=None, help="your own PNG/JPEG, converted to the model's input")
        if kind in ("saliency", "gradcam"):
            p.add_argument("--class", dest="class_index", type=int, default=None, help="class (default: predicted)")
        if kind == "feature-maps":
            p.add_argument("--scale", choices=["shared", "per-map"], default="shared", help="colour scale")
            p.add_argument("--max-maps", type=positive_int, default=32, help="maps drawn per layer (default 32)")
        if kind == "filters":
            p.add_argument("--max-filters", type=positive_int, default=32, help="filters per layer (default 32)")
        if kind in ("confusion", "wrong"):
            p.add_argument("--limit", type=positive_int, default=None, help="use the first N test images")
        if kind == "wrong":
            p.add_argument("--count", type=positive_int, default=16, help="examples shown (default 16)")
        if kind in ("maximize", "gradcam"):
            p.add_argument("--layer", default=None, help="layer name (maximize: default the first conv)")
        if kind == "gradcam":
            p.add_argument(
                "--method",
                choices=["hirescam", "gradcam"],
                default="hirescam",
                help="hirescam (gradient x activation per position, default) or gradcam (channel weights = "
                "gradient averaged over positions; all zero for many Flatten -> Dense heads)",
            )
        if kind == "maximize":
            p.add_argument("--filter", type=int, default=0, help="filter (channel or unit) index (default 0)")
            p.add_argument("--steps", type=positive_int, default=100, help="gradient-ascent steps (default 100)")
            p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
            p.add_argument("--position", choices=["center", "mean"], default="center", help="centre unit or map mean")
        if kind == "equivariance":
            p.add_argument("--shift", type=_shift, default=(2, 2), help="DY,DX pixels (default 2,2)")


def run(args: argparse.Namespace) -> int:
    """Load the model, draw the picture, save it."""
    from convlens.cli._common import PROGRESS
    from convlens.interop.formats import load_model  # by suffix: .npz, .keras, .onnx
    from convlens.lab import viz

    PROGRESS.will_write(args.output)
    model = load_model(args.model)
    kind = args.kind
    source = {"index": args.index, "image": args.image} if kind in _TAKES_INPUT else {}
    result: Any
    if kind == "feature-maps":
        result = viz.feature_maps(model, scale=args.scale, max_maps=args.max_maps, **source)
    elif kind == "filters":
        result = viz.filters(model, max_filters=args.max_filters)
    elif kind == "curves":
        result = viz.curves(model)
    elif kind == "confusion":
        result = viz.confusion(model, limit=args.limit)
        print(f"accuracy {result.accuracy * 100:.2f}% on {int(result.matrix.sum())} test images")
    elif kind == "wrong":
        result = viz.wrong(model, count=args.count, limit=args.limit)
        print(
            f"{result.total_wrong} wrong; most confident: "
            + ", ".join(
                f"#{i} {p} ({c * 100:.0f}%, true {t})"
                for i, p, c, t in zip(
                    result.indices[:5], result.predicted, result.confidence, result.true, strict=False
                )
            )
        )
    elif kind == "maximize":
        layer = args.layer if args.layer is not None else _first_conv(model)
        result = viz.maximize(model, layer, args.filter, steps=args.steps, seed=args.seed, position=args.position)
        print(
            f"'{result.layer}' filter {result.filter}: pre-activation "
            f"{result.activation_before:.4g} -> {result.activation_after:.4g} ({result.note})"
        )
    elif kind == "saliency":
        result = viz.saliency(model, class_index=args.class_index, **source)
        print(f"saliency of class {result.class_index}")
    elif kind == "gradcam":
        result = viz.gradcam(model, layer=args.layer, class_index=args.class_index, method=args.method, **source)
        print(result.describe())
    else:
        result = viz.equivariance(model, shift=args.shift, **source)
        for name, diff in result.interior_max_diff.items():
            print(f"{name}: map moved by {result.map_shift[name]}, interior max difference {diff:.3g}")
        print(f"output: changed by up to {result.output_change:.3g}")
    path = result.save(args.output)
    PROGRESS.wrote(args.output)
    print(f"Saved {path}")
    return 0


def _first_conv(model: Any) -> str:
    for layer in model.layers:
        if "kernel" in layer.params and layer.params["kernel"].ndim == 4:
            return str(layer.name)
    return str(model.layers[0].name)
