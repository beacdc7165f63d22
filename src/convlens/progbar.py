"""A progress bar that looks like Keras 3's, using only the standard library.

::

    422/422 ━━━━━━━━━━━━━━━━━━━━ 5s 12ms/step - accuracy: 0.8912 - loss: 0.3812

Where the bar goes decides how it is drawn (``display='auto'``):

- a terminal: ``verbose=1`` redraws one live line with ``'\\r'`` (ETA while running, elapsed time at
  the end), in Keras's colours;
- a Jupyter kernel (ipykernel, writing to ``sys.stdout``): one output updated in place while the epoch
  runs, through IPython's display handles (``text/plain``: the same line; ``text/html``: a drawn bar),
  so JupyterLab, Notebook 7, VS Code and Colab show it live and a saved notebook keeps only the
  final line (Keras writes ``'\\r'`` to the stream instead, which a saved notebook keeps in full);
- a pipe or a file (CI logs): only the final line of each run, instead of Keras's flood of lines.

``verbose=2`` writes one line per run in Keras's semi-verbose form
``422/422 - 5s - 12ms/step - loss: 0.3812``, wherever the bar goes. Numbers print with 4 decimals,
or in scientific notation when their magnitude is at most 1e-3, as Keras.

Unlike ``keras.utils.Progbar``, values are taken as they come by default (convlens passes
running means already); give ``stateful_metrics`` to get Keras's averaging of every other name.

>>> import io
>>> out = io.StringIO()
>>> bar = Progbar(2, stream=out)
>>> bar.update(1, [("loss", 0.5)])
>>> bar.update(2, [("loss", 0.25)])
>>> text = out.getvalue()
>>> text.startswith("2/2 ━━━━━━━━━━━━━━━━━━━━ ") and text.endswith("/step - loss: 0.2500\\n")
True
"""

from __future__ import annotations

import html
import math
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from convlens.callback_base import Callback
from convlens.errors import ConfigError

__all__ = ["DISPLAYS", "Progbar", "ProgbarLogger", "format_duration", "format_step_time", "format_value", "in_notebook"]

#: Where a bar can draw: ``'auto'`` picks one of the others from the stream and the process.
DISPLAYS = ("auto", "terminal", "notebook", "log")

_BAR_CHAR = "━"
_BOLD, _GREEN, _GREY, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"
_clock = time.perf_counter  # module-level so tests can substitute a fake clock


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (ipykernel with a live shell), as Keras detects it.

    Checked without importing IPython: a process that never loaded ipykernel is not a kernel.
    """
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return getattr(shell, "kernel", None) is not None


def _show(data: dict[str, str], handle: Any) -> Any:
    """Show ``data`` (a MIME bundle) as a new display, or update ``handle``'s display in place; returns the handle."""
    if handle is None:
        from IPython.display import display

        return display(data, raw=True, display_id=True)  # type: ignore[no-untyped-call]
    handle.update(data, raw=True)
    return handle


def bar_html(line: str, fraction: float | None) -> str:
    """The notebook form of a bar line: the counter, a drawn bar (inline styles only), then the rest of the line.

    >>> page = bar_html("1/2 ━━━━ 0s 5ms/step", 0.5)
    >>> page.count("width:50.0%"), "<b>1/2</b>" in page, "━" in page
    (1, True, False)
    """
    counter, found, rest = line.partition(" " + _BAR_CHAR)
    if fraction is None or not found:
        body = html.escape(line)
    else:
        filled = f"{100 * min(max(fraction, 0.0), 1.0):.1f}%"
        drawn = (
            '<span style="display:inline-block;width:12em;height:0.8em;background:#d9d9d9;border-radius:2px;'
            'vertical-align:middle;margin:0 0.6em;overflow:hidden">'
            f'<span style="display:block;width:{filled};height:100%;background:#2e7d32"></span></span>'
        )
        body = f"<b>{html.escape(counter)}</b>{drawn}{html.escape(rest.lstrip(_BAR_CHAR).lstrip())}"
    return (
        '<div class="convlens-progbar" style="font-family:monospace;font-size:12px;line-height:1.4;'
        f'white-space:pre">{body}</div>'
    )


def format_value(value: float) -> str:
    """Keras's number format: 4 decimals, scientific when ``|value| <= 1e-3``.

    >>> format_value(0.38121), format_value(2.5e-5), format_value(0.0)
    ('0.3812', '2.5000e-05', '0.0000e+00')
    """
    value = float(value)
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_duration(seconds: float) -> str:
    """ETA as Keras: ``45s``, ``2:05``, ``1:02:05``.

    >>> format_duration(45.7), format_duration(125), format_duration(3725)
    ('45s', '2:05', '1:02:05')
    """
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int((seconds % 3600) // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def format_step_time(seconds: float, unit_name: str = "step") -> str:
    """Time per unit as Keras: ``2s/step``, ``12ms/step``, ``850us/step``.

    >>> format_step_time(0.0123), format_step_time(0.00085), format_step_time(2.0)
    ('12ms/step', '850us/step', '2s/step')
    """
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


class Progbar:
    """Keras 3-style progress bar.

    Args:
        target: total number of steps, or None when unknown.
        width: bar width in characters.
        verbose: 0 silent, 1 live bar (final line only in a log), 2 one line per run.
        stateful_metrics: None (default) shows every value as given; an iterable of names
            shows those as given and averages the others over steps, like Keras.
        unit_name: the unit in the step time (``ms/step``).
        stream: where to write; ``sys.stdout`` (looked up at construction) when None.
        interval: minimum seconds between two redraws of the live bar.
        display: 'auto' (a Jupyter kernel writing to ``sys.stdout``: 'notebook'; a terminal stream:
            'terminal'; otherwise 'log'), or one of those forced.

    Shapes:
        no arrays; values are Python or NumPy scalars.
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        stateful_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
        stream: TextIO | None = None,
        interval: float = 0.05,
        display: str = "auto",
    ) -> None:
        if target is not None and (not isinstance(target, int) or isinstance(target, bool) or target < 0):
            raise ConfigError(f"Progbar: `target` must be a non-negative integer or None, got {target!r}.")
        if verbose not in (0, 1, 2):
            raise ConfigError(f"Progbar: `verbose` must be 0, 1 or 2, got {verbose!r}.")
        if not isinstance(width, int) or width < 1:
            raise ConfigError(f"Progbar: `width` must be a positive integer, got {width!r}.")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.unit_name = unit_name
        self.interval = interval
        if display not in DISPLAYS:
            raise ConfigError(f"Progbar: `display` must be one of {', '.join(DISPLAYS)}, got {display!r}.")
        self.stream: TextIO = stream if stream is not None else sys.stdout
        self.average_all = stateful_metrics is None
        self.stateful_metrics = set(stateful_metrics or ())
        if display == "auto":
            isatty = getattr(self.stream, "isatty", None)
            if self.stream is sys.stdout and in_notebook():
                display = "notebook"
            else:
                display = "terminal" if callable(isatty) and isatty() else "log"
        self.display = display
        self.dynamic = display != "log"
        self._handle: Any = None
        self._values: dict[str, list[float]] = {}  # name -> [sum, count]; insertion-ordered
        self._seen = 0
        self._start = _clock()
        self._after_first_step: float | None = None
        self._last_draw = 0.0
        self._prev_width = 0

    def _record(self, current: int, values: Sequence[tuple[str, float]], finalize: bool) -> None:
        for key, value in values:
            value = float(value)
            if self.average_all or key in self.stateful_metrics or finalize:
                self._values[key] = [value, 1.0]
            else:
                weight = max(current - self._seen, 1)
                total = self._values.setdefault(key, [0.0, 0.0])
                total[0] += value * weight
                total[1] += weight
        self._seen = current

    def _step_time(self, current: int, now: float) -> float:
        if not current:
            return 0.0
        if self._after_first_step is not None and current > 1:
            per_step = (now - self._after_first_step) / (current - 1)
        else:
            per_step = (now - self._start) / current
        if current == 1:
            self._after_first_step = now
        return per_step

    def _metrics_text(self) -> str:
        return "".join(
            f" - {key}: {format_value(total / max(count, 1.0))}" for key, (total, count) in self._values.items()
        )

    def _counter(self, current: int) -> str:
        if self.target is None or self.target == 0:
            return f"{current:7d}/Unknown"
        digits = int(math.log10(self.target)) + 1
        return f"{current:{digits}d}/{self.target}"

    def line(self, current: int, now: float, per_step: float, finalize: bool, color: bool = False) -> str:
        """The verbose=1 line (without '\\r' or newline), plain or with Keras's colours."""
        bold, green, grey, reset = (_BOLD, _GREEN, _GREY, _RESET) if color else ("", "", "", "")
        text = f"{bold}{self._counter(current)}{reset}"
        if self.target:
            filled = min(int(self.width * current / self.target), self.width)
            text += " "
            if filled:
                text += f"{green}{_BAR_CHAR * filled}{reset}"
            text += f"{grey}{_BAR_CHAR * (self.width - filled)}{reset}"
        if self.target and not finalize:
            clock = format_duration(per_step * (self.target - current))
        else:
            clock = f"{now - self._start:.0f}s"
        return f"{text} {bold}{clock}{reset} {format_step_time(per_step, self.unit_name)}{self._metrics_text()}"

    def update(
        self, current: int, values: Sequence[tuple[str, float]] | None = None, finalize: bool | None = None
    ) -> None:
        """Record step ``current`` (1-based count of steps done) and redraw if due.

        Args:
            current: steps completed so far.
            values: ``(name, value)`` pairs, shown in first-seen order.
            finalize: whether this is the last update of the run; by default when
                ``current >= target``.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(current, values or [], finalize)
        now = _clock()
        per_step = self._step_time(current, now)
        if self.verbose == 1:
            if not finalize and (not self.dynamic or now - self._last_draw < self.interval):
                return
            if self.display == "notebook":
                plain = self.line(current, now, per_step, finalize)
                fraction = current / self.target if self.target else None
                self._handle = _show({"text/plain": plain, "text/html": bar_html(plain, fraction)}, self._handle)
            else:
                if self.dynamic:
                    plain = self.line(current, now, per_step, finalize)
                    visible = len(plain)
                    text = "\r" + self.line(current, now, per_step, finalize, color=True)
                    text += " " * max(self._prev_width - visible, 0)
                    self._prev_width = visible
                else:
                    text = self.line(current, now, per_step, finalize)
                self.stream.write(text + ("\n" if finalize else ""))
                self.stream.flush()
        elif self.verbose == 2 and finalize:
            text = f"{self._counter(current)} - {now - self._start:.0f}s - "
            text += format_step_time(per_step, self.unit_name) + self._metrics_text()
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last_draw = now

    def add(self, n: int, values: Sequence[tuple[str, float]] | None = None) -> None:
        """Advance by ``n`` steps (Keras's ``Progbar.add``)."""
        self.update(self._seen + n, values)


class ProgbarLogger(Callback):
    """Draw a :class:`~convlens.progbar.Progbar` per epoch (and for evaluate/predict outside fit).

    Reads ``params['steps']``, ``params['epochs']`` and ``params['verbose']`` (0, 1, 2 or 'auto').
    Log keys are shown sorted, as Keras 3 sorts its logs. The model prints ``Epoch i/n`` itself
    unless ``show_epoch=True``.
    """

    def __init__(self, show_epoch: bool = False, stream: TextIO | None = None) -> None:
        super().__init__()
        self.show_epoch = show_epoch
        self.stream = stream
        self.progbar: Progbar | None = None
        self.seen = 0
        self.target: int | None = None
        self.verbose = 1
        self.epochs = 1
        self._in_fit = False

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.epochs = int(params.get("epochs", 1))
        self.target = params.get("steps")

    def _start(self) -> None:
        self.seen = 0
        self.progbar = Progbar(self.target, verbose=self.verbose, stream=self.stream)

    def _update(self, batch: int, logs: dict[str, Any] | None) -> None:
        if self.progbar is None:
            self._start()
        self.seen = batch + 1
        if self.progbar is not None:
            self.progbar.update(self.seen, sorted((logs or {}).items()), finalize=False)

    def _finalize(self, logs: dict[str, Any] | None) -> None:
        if self.progbar is None:
            self._start()
        if self.progbar is not None:
            if self.progbar.target is None:
                self.progbar.target = self.seen
            self.progbar.update(self.progbar.target, sorted((logs or {}).items()), finalize=True)
        self.progbar = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start()
        if self.show_epoch and self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", file=self.stream)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._update(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._finalize(logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._in_fit:
            self._start()

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._start()

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._update(batch, None)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self._finalize(None)
