"""``convlens summary``: the course model's summary table."""

from __future__ import annotations

import argparse
from typing import Any

from convlens.cli._common import add_model_flags


def add_parser(sub: Any) -> None:
    """Register ``summary``."""
    summary = sub.add_parser("summary", help="print the course model's summary table")
    add_model_flags(summary)


def run(args: argparse.Namespace) -> int:
    """Build the course model with the given flags and print its summary."""
    from convlens.course import build_course_model

    model = build_course_model(
        args.filters, args.kernel_size, args.strides, args.padding, args.pooling, args.pool_size, args.activation
    )
    model.summary()
    return 0
