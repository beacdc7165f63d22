"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that shape the course's CNN (shared by train, summary and sweep)."""
    group = parser.add_argument_group("model (the course's CNN)")
    group.add_argument("--filters", type=positive_int, default=32, help="Conv2D filters (default 32)")
    group.add_argument("--kernel-size", type=positive_int, default=3, help="square kernel size (default 3)")
    group.add_argument("--strides", type=positive_int, default=1, help="conv strides (default 1)")
    group.add_argument("--padding", choices=["same", "valid"], default="same", help="conv padding (default same)")
    group.add_argument(
        "--pooling", choices=["max", "avg", "none"], default="max", help="pooling after the conv (default max)"
    )
    group.add_argument("--pool-size", type=positive_int, default=2, help="pooling window (default 2)")
    group.add_argument("--activation", default="relu", help="conv activation (default relu)")
