"""Progress over a sweep's trials: a live one-line bar on a terminal, plain lines otherwise.

Each finished trial updates the count, the best test accuracy so far and its configuration.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["SweepProgress"]


class SweepProgress:
    """Report finished trials to ``stream`` (a bar that redraws on a TTY; one line per trial otherwise).

    Args:
        total: trials in the sweep (finished ones included).
        done: trials already finished before this run (``--resume``).
        keys: the configuration keys shown (the axes that vary).
        stream: where to write (default stderr).
        live: force the bar on/off (default: when ``stream`` is a TTY).
        width: bar width in characters.
    """

    def __init__(
        self,
        total: int,
        done: int = 0,
        keys: Sequence[str] = (),
        stream: TextIO | None = None,
        live: bool | None = None,
        width: int = 24,
    ) -> None:
        self.total, self.done, self.keys = total, done, list(keys)
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.width = width
        self.best: tuple[float, str] | None = None
        self.counts = {"OK": 0, "INVALID": 0, "FAILED": 0}
        self.start = time.perf_counter()

    def _label(self, result: dict[str, Any]) -> str:
        config = result["config"]
        return " ".join(f"{k}={config[k]}" for k in self.keys) or result["config_hash"]

    def update(self, result: dict[str, Any]) -> None:
        """Count one finished trial (a :func:`~convlens.lab.sweep.trial.run_trial` record) and redraw."""
        self.done += 1
        status = result["status"]
        self.counts[status] = self.counts.get(status, 0) + 1
        accuracy = result.get("test_accuracy")
        if status == "OK" and accuracy is not None and (self.best is None or accuracy > self.best[0]):
            self.best = (float(accuracy), self._label(result))
        best = f"best {self.best[0] * 100:.2f}% ({self.best[1]})" if self.best else "best -"
        elapsed = time.perf_counter() - self.start
        if self.live:
            filled = round(self.width * self.done / max(self.total, 1))
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r\x1b[K[{bar}] {self.done}/{self.total}  {best}  {elapsed:.0f}s")
        else:
            if status == "OK" and accuracy is not None:
                what = f"acc {accuracy * 100:.2f}% in {result['train_time']:.1f}s"
            else:
                what = f"{status}: {result.get('reason') or ''}".strip()
                what = what if len(what) <= 120 else what[:117] + "..."
            self.stream.write(f"[{self.done}/{self.total}] {self._label(result)}: {what}; {best}\n")
        self.stream.flush()

    def close(self, interrupted: bool = False) -> None:
        """End the bar's line and print the totals (only end the line when ``interrupted``: the caller says
        what was saved)."""
        if self.live:
            self.stream.write("\n")
        if interrupted:
            self.stream.flush()
            return
        counts = ", ".join(f"{n} {s.lower()}" for s, n in self.counts.items() if n)
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"sweep: {self.done}/{self.total} trials done ({counts or 'none new'}) in {elapsed:.1f}s\n")
        self.stream.flush()
