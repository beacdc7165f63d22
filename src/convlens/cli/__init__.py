"""The ``convlens`` command line.

Each subcommand lives in its own module of this package with two functions:
``add_parser(subparsers)`` (argparse set-up only: cheap imports, so ``convlens --help`` stays fast)
and ``run(args) -> int`` (imports the heavy machinery it needs).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

# Subcommand name -> module in this package (order = order in --help).
COMMANDS: dict[str, str] = {
    "train": "convlens.cli.train",
    "summary": "convlens.cli.summary",
    "explain": "convlens.cli.explain",
    "visualize": "convlens.cli.visualize",
    "sweep": "convlens.cli.sweep",
    "convert": "convlens.cli.convert",
    "serve": "convlens.cli.serve",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (exposed for tests and docs)."""
    from convlens import __version__

    parser = argparse.ArgumentParser(
        prog="convlens",
        description="convlens: build, run, measure and see convolutional neural networks "
        "(NumPy, from first principles).",
    )
    parser.add_argument("--version", action="version", version=f"convlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convlens`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from convlens.errors import ConvlensError

    module = importlib.import_module(COMMANDS[args.command])
    try:
        return int(module.run(args))
    except ConvlensError as exc:
        print(f"convlens {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
