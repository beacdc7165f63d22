"""The results store and --resume: a killed sweep loses nothing and repeats nothing."""

from __future__ import annotations

import io
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convlens.errors import ConfigError, DataError
from convlens.lab.sweep.executors import run_sweep
from convlens.lab.sweep.grid import expand
from convlens.lab.sweep.progress import SweepProgress
from convlens.lab.sweep.store import ResultStore, sweep_id_for

# Trials of ~0.2 s each, so polling catches the database part-way through.
FLAGS = ["--kernel-size", "1,2,3,4,5,6", "--filters", "8", "--train-limit", "1024", "--test-limit", "64"]
GRID = {"kernel_size": [1, 2, 3, 4, 5, 6], "filters": [8], "train_limit": [1024], "test_limit": [64]}


def _rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, config_hash, recorded, test_accuracy FROM trials ORDER BY id").fetchall()


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM trials").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_resume_after_sigkill_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    command = [sys.executable, "-m", "convlens", "sweep", "run", *FLAGS, "--workers", "0", "--db", str(db)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _count(db) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    before = _rows(db)
    configs = expand(GRID)
    assert 2 <= len(before) < len(configs), "the sweep should be killed part-way"

    with pytest.raises(ConfigError, match=r"already holds \d+ finished trial\(s\) of this sweep .*pass --resume"):
        run_sweep(configs, db, workers=0, progress=SweepProgress(6, stream=io.StringIO()))
    outcome = run_sweep(configs, db, workers=0, resume=True, progress=SweepProgress(6, stream=io.StringIO()))
    assert (outcome.total, outcome.skipped, outcome.ran) == (6, len(before), 6 - len(before))

    after = _rows(db)
    hashes = [row[1] for row in after]
    assert sorted(hashes) == sorted(c.config_hash() for c in configs)  # every config exactly once
    assert after[: len(before)] == before  # earlier rows unchanged: same ids, timestamps, results
    with ResultStore(db) as store:
        assert store.sweeps() == [sweep_id_for(configs)]
        assert {t["status"] for t in store.trials()} == {"OK"}


def test_store_ignores_a_second_row_for_the_same_config(tmp_path: Path) -> None:
    config = expand(GRID)[0]
    record = {"config": config.to_dict(), "config_hash": config.config_hash(), "status": "OK", "test_accuracy": 0.5}
    with ResultStore(tmp_path / "r.db") as store:
        store.ensure_sweep("abc", [config])
        assert store.add_trial("abc", record) == 1
        assert store.add_trial("abc", {**record, "test_accuracy": 0.9}) == -1
        (row,) = store.trials("abc")
        assert row["test_accuracy"] == 0.5
        assert row["config"] == config.to_dict()
        assert store.finished_hashes("abc") == {config.config_hash()}
        assert store.finished_hashes("other") == set()
    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_rejects_other_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataError, match=r"is not a convlens sweep database"):
        ResultStore(junk)
    with pytest.raises(ConfigError, match=r"no results database at"):
        ResultStore(tmp_path / "missing.db", create=False)
