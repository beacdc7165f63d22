"""The results database: SQLite (stdlib ``sqlite3``), WAL mode, one committed row per finished trial.

Tables:

- ``sweeps``: ``sweep_id`` (a digest of the planned configurations, so rerunning the same command
  finds the same sweep), ``created``, ``plan`` (JSON list of configurations);
- ``trials``: one row per finished trial, unique on ``(sweep_id, config_hash)``; ``--resume`` skips every
  configuration that already has a row, so nothing finished is lost or repeated.

Only the driver process writes (executors hand results back to it), so there is one writer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from convlens.errors import ConfigError, DataError
from convlens.lab.sweep.grid import TrialConfig

__all__ = ["ResultStore", "sweep_id_for"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    plan TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sweep_id TEXT NOT NULL REFERENCES sweeps(sweep_id),
    config_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    error TEXT,
    test_accuracy REAL,
    test_loss REAL,
    params INTEGER,
    macs INTEGER,
    receptive_field TEXT,
    train_time REAL,
    history TEXT,
    layers TEXT,
    feature_png BLOB,
    seed INTEGER,
    started REAL,
    finished REAL,
    worker TEXT,
    recorded REAL NOT NULL,
    UNIQUE (sweep_id, config_hash)
);
"""
_JSON_COLUMNS = ("config", "receptive_field", "history", "layers")
_COLUMNS = (
    "status",
    "reason",
    "error",
    "test_accuracy",
    "test_loss",
    "params",
    "macs",
    "receptive_field",
    "train_time",
    "history",
    "layers",
    "feature_png",
    "seed",
    "started",
    "finished",
    "worker",
)


def sweep_id_for(configs: Sequence[TrialConfig]) -> str:
    """A 12-hex-digit digest of the planned configurations (order-free).

    >>> sweep_id_for([TrialConfig()]) == sweep_id_for([TrialConfig()])
    True
    """
    joined = ",".join(sorted(c.config_hash() for c in configs))
    return hashlib.sha256(joined.encode()).hexdigest()[:12]


class ResultStore:
    """One SQLite results file. Use as a context manager, or call :meth:`close`.

    Raises:
        DataError: when ``path`` exists but is not a convlens sweep database.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ConfigError(f"sweep: no results database at {str(self.path)!r}.")
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            if create:
                self._conn.executescript(_SCHEMA)
            self._conn.execute("SELECT count(*) FROM trials").fetchone()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"sweep: {str(self.path)!r} is not a convlens sweep database ({exc}).") from None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (every row is already committed)."""
        self._conn.close()

    def ensure_sweep(self, sweep_id: str, configs: Sequence[TrialConfig]) -> None:
        """Record the sweep and its plan unless it is already there."""
        plan = json.dumps([c.to_dict() for c in configs])
        with self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO sweeps (sweep_id, created, plan) VALUES (?, ?, ?)",
                (sweep_id, time.time(), plan),
            )

    def finished_hashes(self, sweep_id: str) -> set[str]:
        """Config hashes of the trials of ``sweep_id`` that already have a row."""
        rows = self._conn.execute("SELECT config_hash FROM trials WHERE sweep_id = ?", (sweep_id,))
        return {row[0] for row in rows}

    def add_trial(self, sweep_id: str, result: dict[str, Any]) -> int:
        """Insert one finished trial (a :func:`~convlens.lab.sweep.trial.run_trial` record) and commit.

        A second row for the same configuration is ignored (returns -1): nothing is ever repeated.
        """
        values: list[Any] = [sweep_id, result["config_hash"], json.dumps(result["config"])]
        for column in _COLUMNS:
            value = result.get(column)
            values.append(json.dumps(value) if column in _JSON_COLUMNS and value is not None else value)
        names = ", ".join(("sweep_id", "config_hash", "config", *_COLUMNS, "recorded"))
        marks = ", ".join("?" * (len(values) + 1))
        with self._conn:
            cursor = self._conn.execute(
                f"INSERT OR IGNORE INTO trials ({names}) VALUES ({marks})",  # fixed column names, values bound
                (*values, time.time()),
            )
        return int(cursor.lastrowid) if cursor.rowcount and cursor.lastrowid is not None else -1

    def sweeps(self) -> list[str]:
        """Sweep ids in creation order."""
        return [row[0] for row in self._conn.execute("SELECT sweep_id FROM sweeps ORDER BY created, sweep_id")]

    def trials(self, sweep_id: str | None = None) -> list[dict[str, Any]]:
        """Every trial row (of one sweep, or all) as dicts with JSON columns decoded, in insertion order."""
        query = "SELECT * FROM trials" + (" WHERE sweep_id = ?" if sweep_id else "") + " ORDER BY id"
        cursor = self._conn.execute(query, (sweep_id,) if sweep_id else ())
        names = [d[0] for d in cursor.description]
        return [self._decode(dict(zip(names, row, strict=True))) for row in cursor]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.trials())

    @staticmethod
    def _decode(row: dict[str, Any]) -> dict[str, Any]:
        for column in _JSON_COLUMNS:
            if row.get(column) is not None:
                row[column] = json.loads(row[column])
        return row
