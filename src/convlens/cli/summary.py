"""``convlens summary [SPEC]``: Keras's summary table, or the detailed one (``--detail``, ``--columns``, ``--format``).

SPEC is a compact layer string (``"conv32k3same-relu, maxpool2, flatten, dense10-softmax"``), a ``.py``
file defining ``model``, or a saved ``.npz`` model; without it the course model (shaped by the model
flags) is summarised. The detailed summary is plain text when stdout is not a terminal and a rich table
when it is (or with ``--format rich``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from convlens.cli._common import add_model_flags

# Kept here (not imported) so that ``convlens --help`` stays fast; a test pins them to convlens.lab.summary.
FORMATS = ("text", "rich", "markdown", "json", "html")
COLUMNS = (
    "layer, output_shape, params, params_formula, macs, flops, ops, receptive_field, jump, start, memory, why, "
    "dense_params, dense_macs"
)
# Model flag (argparse dest) -> parameter of convlens.course.build_course_model.
_COURSE_FLAGS = {
    "filters": "filters",
    "kernel_size": "kernel_size",
    "strides": "strides",
    "padding": "padding",
    "pooling": "pooling",
    "pool_size": "pool_size",
    "activation": "activation",
}


def add_parser(sub: Any) -> None:
    """Register ``summary``."""
    summary = sub.add_parser(
        "summary",
        help="print the course model's summary table, or any model's (SPEC)",
        description="Summarise the course model or SPEC: Keras's table by default; --detail adds parameter "
        "formulas, MACs and FLOPs, receptive field, jump, start, activation memory, why each shape, and the "
        "versus-dense comparison.",
    )
    summary.add_argument(
        "spec",
        nargs="?",
        metavar="SPEC",
        help="a compact layer string such as 'conv32k3same-relu, maxpool2, flatten, dense10-softmax', "
        "a .py file defining `model`, or a saved model: .npz, .keras, .onnx (default: the course model)",
    )
    summary.add_argument("--detail", action="store_true", help="the detailed summary with the default columns")
    summary.add_argument("--columns", help=f"comma-separated columns of the detailed summary, from: {COLUMNS}")
    summary.add_argument(
        "--format",
        choices=FORMATS,
        help="output format of the detailed summary (default: rich in a terminal, text otherwise)",
    )
    add_model_flags(summary)


def _course_flags_changed(args: argparse.Namespace) -> list[str]:
    import inspect

    from convlens.course import build_course_model

    defaults = inspect.signature(build_course_model).parameters
    return [
        "--" + dest.replace("_", "-")
        for dest, param in _COURSE_FLAGS.items()
        if getattr(args, dest) != defaults[param].default
    ]


def run(args: argparse.Namespace) -> int:
    """Build or load the model and print its summary."""
    from convlens.errors import ConfigError

    if args.spec is not None:
        changed = _course_flags_changed(args)
        if changed:
            raise ConfigError(
                f"{', '.join(changed)} shape the course model and cannot be combined with SPEC; "
                "put the setting in SPEC instead."
            )
        from convlens.lab.spec import load_model_spec

        model = load_model_spec(args.spec)
    else:
        from convlens.course import build_course_model

        model = build_course_model(
            args.filters, args.kernel_size, args.strides, args.padding, args.pooling, args.pool_size, args.activation
        )
    if not (args.detail or args.columns is not None or args.format is not None):
        print(model.summary_text())
        return 0
    from convlens.lab.summary import check_columns, render, rich_renderable

    columns = check_columns(args.columns)
    tty = sys.stdout.isatty()
    fmt = args.format or ("rich" if tty else "text")
    if fmt == "rich" and tty:
        from rich.console import Console

        Console().print(rich_renderable(model, columns))
    else:
        print(render(model, columns=columns, fmt=fmt))
    return 0
