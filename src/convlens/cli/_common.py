"""Argument helpers shared by the subcommands, and what a command has done so far (for Ctrl-C's one line)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


class Progress:
    """What the running command has finished and written: ``convlens`` prints :meth:`describe` on Ctrl-C.

    A command calls :meth:`will_write` for each file it means to write, :meth:`wrote` once it is written,
    and sets :attr:`finished` (a callable, e.g. "1 of 3 epochs") as it goes.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (the start of a command)."""
        self.finished: Callable[[], str] | None = None
        self.pending: list[str] = []
        self.written: list[str] = []

    def will_write(self, path: str) -> None:
        self.pending.append(path)

    def wrote(self, path: str) -> None:
        if path in self.pending:
            self.pending.remove(path)
        self.written.append(path)

    def describe(self) -> str:
        """One sentence: what finished, what was written and what was not."""
        parts = []
        if self.finished is not None:
            parts.append(self.finished())
        if self.written:
            parts.append("wrote " + ", ".join(self.written))
        if self.pending:
            parts.append("did not write " + ", ".join(self.pending))
        if not self.written and not self.pending:
            parts.append("nothing was written")
        return "; ".join(parts) + "."


PROGRESS = Progress()


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
