"""Interruptions: a save killed half-way leaves no corrupt model and no temporary for good; sweep workers die
with their parent; Ctrl-C in the command line prints one line and exits 130."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import convlens as cl
from convlens.cli import main
from convlens.cli._common import Progress
from convlens.files import TEMP_MARK

SAVER = """
import sys
import convlens as cl
model = cl.Sequential([cl.layers.Dense(256, input_shape=(1024,))])
print("ready", flush=True)
while True:
    model.save(sys.argv[1])
"""


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if TEMP_MARK in p.name]


def _kill_during_save(folder: Path, rng: random.Random) -> bool:
    """Start a process that saves in a loop, SIGKILL it at a random moment; return whether it left a temporary."""
    child = subprocess.Popen([sys.executable, "-c", SAVER, str(folder / "m.npz")], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.0, 0.05))
    child.kill()
    child.communicate()
    return bool(_temps(folder))


def _check_after_kill(folder: Path) -> None:
    path = folder / "m.npz"
    if path.exists():  # never half a file under the real name: the old or the new model, complete
        cl.load_model(path)
    model = cl.Sequential([cl.layers.Dense(2, input_shape=(3,))])
    model.save(path)  # the next save of the same target removes the dead writer's temporary
    assert _temps(folder) == []
    cl.load_model(path)


def test_kill_during_save(tmp_path: Path) -> None:
    _kill_during_save(tmp_path, random.Random(0))
    _check_after_kill(tmp_path)


@pytest.mark.slow
def test_many_kills_during_save(tmp_path: Path) -> None:
    rng = random.Random(1)
    left_temporaries = 0
    for i in range(30):
        folder = tmp_path / str(i)
        folder.mkdir()
        left_temporaries += _kill_during_save(folder, rng)
        _check_after_kill(folder)
    assert left_temporaries > 0  # the kills did land in the middle of saves


# ----- Ctrl-C in the command line ---------------------------------------------------------------------------------
def test_progress_describes_what_was_done() -> None:
    progress = Progress()
    assert progress.describe() == "nothing was written."
    progress.finished = lambda: "2 of 3 epoch(s) finished"
    progress.will_write("m.npz")
    assert progress.describe() == "2 of 3 epoch(s) finished; did not write m.npz."
    progress.wrote("m.npz")
    assert progress.describe() == "2 of 3 epoch(s) finished; wrote m.npz."


def test_ctrl_c_prints_one_line_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(config: Any, data: Any = None, callbacks: Any = None) -> Any:
        tracker = callbacks[0]
        tracker.set_params({"epochs": 3, "steps": 10})
        tracker.on_train_begin()
        tracker.on_epoch_begin(0)
        tracker.on_train_batch_end(4)
        raise KeyboardInterrupt

    monkeypatch.setattr("convlens.course.train_course_model", interrupted)
    assert main(["train", "--save", "m.npz", "--verbose", "0"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "convlens train: interrupted (Ctrl-C); 0 of 3 epoch(s) finished (epoch 1 stopped at batch 5 of 10); "
        "did not write m.npz."
    ]

    def summary_interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("convlens.cli.summary.run", summary_interrupted)
    assert main(["summary"]) == 130
    assert capsys.readouterr().err.strip() == "convlens summary: interrupted (Ctrl-C); nothing was written."


def test_missing_model_file_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["visualize", "feature-maps", str(tmp_path / "nope.npz"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"convlens visualize: error: load_model: no such file: '{tmp_path / 'nope.npz'}'."]


def test_sweep_refuses_unknown_values_before_training(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert main(["sweep", "run", "--optimizer", "adamw", "--db", str(db), "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "convlens sweep: error: sweep: axis `optimizer` value 'adamw' is not valid (must be one of "
        "['adam', 'sgd', 'rmsprop'])."
    )
    assert main(["sweep", "run", "--activation", "relu,nope", "--db", str(db), "--workers", "0"]) == 2
    assert "axis `activation` value 'nope' is not valid (choose one of" in capsys.readouterr().err
    assert not db.exists()


def _default_sigint() -> None:
    # A process started with SIGINT ignored (a background job of a non-interactive shell, some CI runners)
    # passes that on and Python then never raises KeyboardInterrupt: give the child the default, as a terminal does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "convlens", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


@pytest.mark.slow
def test_ctrl_c_during_train_is_one_line_within_a_second(tmp_path: Path) -> None:
    child = _run_cli(["train", "--epochs", "50", "--limit", "3000", "--verbose", "0", "--save", "m.npz"], tmp_path)
    assert child.stdout is not None
    assert child.stdout.readline().startswith("convlens train: ")
    time.sleep(3.0)  # past loading MNIST, inside fit
    sent = time.perf_counter()
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=10)
    assert time.perf_counter() - sent < 1.0
    assert child.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("convlens train: interrupted (Ctrl-C); ")
    assert lines[0].endswith("did not write m.npz.")
    assert "Traceback" not in err
    assert not (tmp_path / "m.npz").exists()


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


SWEEP = [
    "sweep",
    "run",
    "--kernel-size",
    "3,5",
    "--epochs",
    "20",
    "--train-limit",
    "2000",
    "--test-limit",
    "100",
    "--workers",
    "2",
    "--db",
    "s.db",
]


def _workers_of(child: subprocess.Popen[str]) -> set[int]:
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        # The pool's workers: children of the driver that are Python (the resource tracker is one too, so wait
        # for at least two besides it).
        workers = {p for p in _children(child.pid) if _alive(p)}
        if len(workers) >= 3:
            time.sleep(2.0)  # let them start their trials
            return {p for p in _children(child.pid) if _alive(p)}
        time.sleep(0.2)
    raise AssertionError("the sweep's workers did not start")


@pytest.mark.slow
def test_sweep_workers_die_with_their_parent(tmp_path: Path) -> None:
    child = _run_cli(SWEEP, tmp_path)
    workers = _workers_of(child)
    child.kill()
    child.communicate()
    deadline = time.perf_counter() + 3.0
    while time.perf_counter() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)


@pytest.mark.slow
def test_ctrl_c_during_sweep_stops_the_workers(tmp_path: Path) -> None:
    child = _run_cli(SWEEP, tmp_path)
    workers = _workers_of(child)
    sent = time.perf_counter()
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=10)
    assert time.perf_counter() - sent < 1.5
    assert child.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("convlens sweep: interrupted (Ctrl-C); 0 trial(s) finished in this run (0 of 2 in all)")
    assert "Traceback" not in err
    time.sleep(0.5)
    assert not any(_alive(p) for p in workers)
