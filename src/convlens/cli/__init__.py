"""The ``convlens`` command line.

Each subcommand lives in its own module of this package with two functions:
``add_parser(subparsers)`` (argparse set-up only: cheap imports, so ``convlens --help`` stays fast)
and ``run(args) -> int`` (imports the heavy machinery it needs).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
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
    """Entry point of the ``convlens`` command.

    Exit codes: 0 done; 2 a usage or data error (one line on stderr: what was wrong); 130 Ctrl-C (one line on
    stderr: what finished and what was or was not saved, no traceback). Called without ``argv`` (as the
    ``convlens`` program) it exits at once after Ctrl-C's line; with ``argv`` it returns 130.
    """
    from convlens.cli._common import PROGRESS

    PROGRESS.reset()
    command = "convlens"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        command = f"convlens {args.command}"
        from convlens.errors import ConvlensError

        module = importlib.import_module(COMMANDS[args.command])
        try:
            return int(module.run(args))
        except (ConvlensError, OSError) as exc:
            message = (
                str(exc) if isinstance(exc, ConvlensError) or not exc.filename else f"{exc.strerror}: '{exc.filename}'"
            )
            print(f"{command}: error: {message}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not turn the one line into a traceback
        if sys.stdout.isatty():
            print(file=sys.stdout)  # end a progress bar's line
        sys.stdout.flush()
        print(f"{command}: interrupted (Ctrl-C); {PROGRESS.describe()}", file=sys.stderr, flush=True)
        if argv is None:
            # The `convlens` program itself: everything the command opened was closed while the interrupt
            # unwound, so skip the interpreter's teardown (up to a second with NumPy, Numba and MNIST loaded).
            os._exit(130)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
