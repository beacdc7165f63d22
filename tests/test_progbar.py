"""Progbar: Keras 3's line format, live redraw on a terminal, one line per run elsewhere."""

from __future__ import annotations

import io
import re

import pytest

from convlens import progbar
from convlens.callbacks import CallbackList
from convlens.errors import ConfigError
from convlens.progbar import Progbar, ProgbarLogger, format_duration, format_step_time, format_value

ANSI = re.compile(r"\x1b\[[0-9;]*m")
BAR = "━"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(progbar, "_clock", fake)
    return fake


def test_formats():
    assert format_value(0.38121) == "0.3812"
    assert format_value(12.0) == "12.0000"
    assert format_value(1e-3) == "1.0000e-03"  # Keras: 4 decimals only when |v| > 1e-3
    assert format_value(0.0011) == "0.0011"
    assert format_value(-2.5e-5) == "-2.5000e-05"
    assert format_duration(59) == "59s"
    assert format_duration(61) == "1:01"
    assert format_duration(3661) == "1:01:01"
    assert format_step_time(0.012) == "12ms/step"
    assert format_step_time(0.0005, "sample") == "500us/sample"
    assert format_step_time(3.2) == "3s/step"


def test_non_tty_writes_only_the_final_line(clock):
    out = io.StringIO()
    bar = Progbar(100, stream=out)
    clock.now = 2.0
    bar.update(1, [("accuracy", 0.5), ("loss", 1.0)])
    clock.now = 2.5
    for step in range(2, 100):
        bar.update(step, [("accuracy", 0.8), ("loss", 0.5)])
    assert out.getvalue() == ""
    clock.now = 52.0
    bar.update(100, [("accuracy", 0.89123), ("loss", 0.38119)])
    # per step after the first: (52 - 2) / 99 = 0.505 s; elapsed 52 s
    assert out.getvalue() == f"100/100 {BAR * 20} 52s 505ms/step - accuracy: 0.8912 - loss: 0.3812\n"


def test_tty_redraws_with_eta_and_colours(clock):
    out = Tty()
    bar = Progbar(100, stream=out, interval=0.0)
    clock.now = 2.0
    bar.update(1, [("loss", 1.0)])
    clock.now = 2.5
    bar.update(2, [("loss", 0.5)])
    clock.now = 51.5
    bar.update(100, [("loss", 0.25)])
    text = out.getvalue()
    assert text.count("\r") == 3
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert "\x1b[32m" in text  # the done part of the bar is green, as Keras
    frames = [ANSI.sub("", f) for f in text.split("\r")[1:]]
    # step 2: 0.5 s/step after the first step, 98 steps left -> ETA 49 s; 2/100 of 20 chars -> 0 done
    assert frames[1] == f"  2/100 {BAR * 20} 49s 500ms/step - loss: 0.5000"
    assert frames[2] == f"100/100 {BAR * 20} 52s 500ms/step - loss: 0.2500\n"


def test_tty_bar_fill_and_padding_when_the_line_shrinks(clock):
    out = Tty()
    bar = Progbar(10, stream=out, interval=0.0)
    clock.now = 1.0
    bar.update(5, [("loss", 123.456)])
    first = out.getvalue()
    assert f"\x1b[32m{BAR * 10}\x1b[0m\x1b[37m{BAR * 10}\x1b[0m" in first
    bar.update(6, [("loss", 1.0)])
    second = out.getvalue()[len(first) :]
    assert len(ANSI.sub("", second)) == len(ANSI.sub("", first))  # old characters overwritten by spaces
    assert second.endswith(" ")


def test_throttles_redraws_on_a_tty(clock):
    out = Tty()
    bar = Progbar(10, stream=out)  # interval 0.05 s
    for step in range(1, 10):
        clock.now = step * 0.01
        bar.update(step)
    clock.now = 0.2
    bar.update(10)
    assert 2 <= out.getvalue().count("\r") <= 4


def test_verbose_2_and_0(clock):
    out = io.StringIO()
    bar = Progbar(3, verbose=2, stream=out)
    for step in (1, 2, 3):
        clock.now = 0.012 * step
        bar.update(step, [("loss", 0.38119), ("val_loss", 2e-5)])
    assert out.getvalue() == "3/3 - 0s - 12ms/step - loss: 0.3812 - val_loss: 2.0000e-05\n"
    silent = io.StringIO()
    quiet = Progbar(3, verbose=0, stream=silent)
    for step in (1, 2, 3):
        quiet.update(step, [("loss", 1.0)])
    assert silent.getvalue() == ""


def test_stateful_metrics_average_the_others(clock):
    out = Tty()
    bar = Progbar(4, stream=out, interval=0.0, stateful_metrics=["acc"])
    clock.now = 1.0
    bar.update(1, [("loss", 1.0), ("acc", 0.1)])
    bar.update(2, [("loss", 3.0), ("acc", 0.2)])
    assert out.getvalue().split("\r")[-1].endswith("loss: 2.0000 - acc: 0.2000")


def test_unknown_target(clock):
    out = io.StringIO()
    bar = Progbar(None, stream=out)
    bar.update(3, [("loss", 0.5)])
    assert out.getvalue() == ""
    bar.update(3, [("loss", 0.5)], finalize=True)
    assert out.getvalue().startswith("      3/Unknown 0s")


def test_progbar_logger_one_line_per_epoch_sorted_keys(clock):
    out = io.StringIO()
    logger = ProgbarLogger(show_epoch=True, stream=out)
    callbacks = CallbackList([logger], params={"epochs": 2, "steps": 3, "verbose": 1})
    callbacks.on_train_begin()
    for epoch in range(2):
        callbacks.on_epoch_begin(epoch)
        for batch in range(3):
            callbacks.on_train_batch_end(batch, {"loss": 0.5, "accuracy": 0.75})
        callbacks.on_epoch_end(epoch, {"val_loss": 0.25, "loss": 0.5, "accuracy": 0.75, "val_accuracy": 0.8})
    callbacks.on_train_end()
    lines = out.getvalue().splitlines()
    assert lines[0] == "Epoch 1/2"
    assert lines[2] == "Epoch 2/2"
    assert len(lines) == 4
    assert lines[1].startswith(f"3/3 {BAR * 20} 0s ")
    assert lines[1].endswith("- accuracy: 0.7500 - loss: 0.5000 - val_accuracy: 0.8000 - val_loss: 0.2500")


def test_progbar_logger_evaluate_outside_fit_and_unknown_steps(clock):
    out = io.StringIO()
    callbacks = CallbackList([ProgbarLogger(stream=out)], params={"verbose": 1, "steps": None, "epochs": 1})
    callbacks.on_test_begin()
    for batch in range(4):
        callbacks.on_test_batch_end(batch, {"loss": 1.0})
    callbacks.on_test_end({"loss": 0.75})
    assert out.getvalue().startswith(f"4/4 {BAR * 20} 0s ")
    assert out.getvalue().endswith("- loss: 0.7500\n")


def test_errors():
    with pytest.raises(ConfigError, match=r"Progbar: `target` must be a non-negative integer or None, got -1"):
        Progbar(-1)
    with pytest.raises(ConfigError, match=r"Progbar: `verbose` must be 0, 1 or 2, got 3"):
        Progbar(3, verbose=3)
    with pytest.raises(ConfigError, match=r"Progbar: `width` must be a positive integer, got 0"):
        Progbar(3, width=0)
    with pytest.raises(
        ConfigError, match=r"Progbar: `display` must be one of auto, terminal, notebook, log, got 'html'"
    ):
        Progbar(3, display="html")


class FakeDisplay:
    """Stands in for IPython's display handles: records each bundle shown or updated in place."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, dict[str, str]]] = []

    def __call__(self, data: dict[str, str], handle: object) -> object:
        self.shown.append(("update" if handle is not None else "display", data))
        return handle if handle is not None else object()


def test_notebook_display_updates_one_output_in_place(clock, monkeypatch):
    fake = FakeDisplay()
    monkeypatch.setattr(progbar, "_show", fake)
    out = io.StringIO()
    bar = Progbar(4, stream=out, display="notebook", interval=0.0)
    for step in (1, 2, 3, 4):
        clock.now = float(step)
        bar.update(step, [("loss", 1.0 / step)])
    assert out.getvalue() == ""  # nothing on the stream: the display carries it
    assert [kind for kind, _ in fake.shown] == ["display", "update", "update", "update"]
    middle = fake.shown[1][1]
    # live, before the run ended: step 2 of 4 with an ETA (1 s/step after the first step, 2 steps left)
    assert middle["text/plain"] == f"2/4 {BAR * 10}{BAR * 10} 2s 1s/step - loss: 0.5000"
    assert "width:50.0%" in middle["text/html"]
    assert "<b>2/4</b>" in middle["text/html"]
    assert fake.shown[-1][1]["text/plain"].startswith(f"4/4 {BAR * 20} 4s ")


def test_auto_display_picks_notebook_only_for_stdout_in_a_kernel(monkeypatch):
    monkeypatch.setattr(progbar, "in_notebook", lambda: True)
    assert Progbar(3).display == "notebook"
    assert Progbar(3, stream=io.StringIO()).display == "log"  # a file given explicitly stays a log
    assert Progbar(3, stream=Tty()).display == "terminal"
    monkeypatch.setattr(progbar, "in_notebook", lambda: False)
    assert Progbar(3, stream=Tty()).display == "terminal"


def test_in_notebook_needs_a_kernel_shell(monkeypatch):
    import sys
    import types

    assert progbar.in_notebook() is False  # pytest is no kernel
    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    assert progbar.in_notebook() is True
    fake_ipython.get_ipython = lambda: None  # type: ignore[attr-defined]
    assert progbar.in_notebook() is False
