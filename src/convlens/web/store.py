"""Files the server may read and write: model files in ``--models``, sweep databases in ``--sweeps``.

Names are checked against one pattern (letters, digits, ``_ . -``, the right suffix, no leading dot) and
the resolved path must sit directly in the configured folder, so no request reaches any other file.
Loaded models are cached by (path, modification time, size) and each carries a lock: a model's layers
keep scratch buffers, so two requests never run the same model object at once.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convlens.errors import ConfigError, DataError, StateError

__all__ = ["COURSE_MODEL", "LoadedModel", "ModelStore", "SweepStore", "check_name"]

COURSE_MODEL = "course.npz"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")


def check_name(name: str, suffix: str, what: str) -> str:
    """``name`` if it is a plain file name ending in ``suffix``; else ConfigError saying what is allowed.

    >>> check_name("course.npz", ".npz", "model")
    'course.npz'
    """
    if not isinstance(name, str) or not _NAME.match(name) or not name.endswith(suffix) or ".." in name:
        raise ConfigError(
            f"{what} name must be letters, digits, '_', '.' or '-' (at most 80, no leading '.' or '..') "
            f"ending in {suffix}, got {name!r}."
        )
    return name


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise ConfigError(f"{name!r} is not a file directly in {str(folder)!r}.")
    return path


@dataclass
class LoadedModel:
    """A model with the lock that serialises its use and where it came from."""

    model: Any
    source: str
    trained: bool = True
    note: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelStore:
    """The models folder: list, load (cached), save, accept uploads."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser()
        self._cache: dict[str, tuple[tuple[int, int], LoadedModel]] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        """The path of model ``name`` inside the folder (checked)."""
        return _inside(self.folder, check_name(name, ".npz", "model"))

    def names(self) -> list[str]:
        """Model files in the folder, the course model first."""
        if not self.folder.is_dir():
            return []
        names = [p.name for p in self.folder.iterdir() if p.is_file() and _NAME.match(p.name) and p.suffix == ".npz"]
        return sorted(names, key=lambda n: (n != COURSE_MODEL, n.lower()))

    def load(self, name: str) -> LoadedModel:
        """Load model ``name`` (cached until the file changes).

        Raises:
            ConfigError: a bad name, or no such model (the message lists the folder).
            DataError: the file is not a convlens model.
        """
        from convlens.saving import load_model

        path = self.path(name)
        if not path.is_file():
            raise ConfigError(f"no model {name!r} in {str(self.folder)!r}; have {self.names()}.")
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
        try:
            model = load_model(path)
        except (KeyError, TypeError, ValueError) as exc:  # malformed configs the loader does not name yet
            if isinstance(exc, ConfigError):
                raise
            raise DataError(f"{name!r} is not a loadable convlens model: {type(exc).__name__}: {exc}.") from None
        loaded = LoadedModel(model, name)
        with self._lock:
            self._cache[name] = (key, loaded)
        return loaded

    def save(self, model: Any, name: str) -> Path:
        """Save ``model`` as ``name`` in the folder (atomically, by :meth:`Sequential.save`)."""
        path = self.path(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        model.save(path)
        return path

    def add_upload(self, name: str, data: bytes, *, overwrite: bool = False) -> LoadedModel:
        """Store uploaded bytes as model ``name`` after checking that they load; returns the model.

        Raises:
            StateError: the name exists and ``overwrite`` is False.
            DataError: the bytes are not a convlens model (nothing is kept).
        """
        from convlens.saving import load_model

        path = self.path(name)
        if path.exists() and not overwrite:
            raise StateError(f"a model named {name!r} exists already; choose another name or overwrite it.")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            try:
                load_model(tmp)
            except (KeyError, TypeError, ValueError) as exc:
                if isinstance(exc, ConfigError):
                    raise
                raise DataError(f"the upload is not a loadable convlens model: {type(exc).__name__}: {exc}.") from None
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.load(name)


class SweepStore:
    """The sweeps folder: SQLite result files written by ``convlens sweep run``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser()

    def path(self, name: str) -> Path:
        """The path of database ``name`` inside the folder (checked)."""
        path = _inside(self.folder, check_name(name, ".db", "sweep database"))
        if not path.is_file():
            raise ConfigError(f"no sweep database {name!r} in {str(self.folder)!r}; have {self.names()}.")
        return path

    @staticmethod
    def _is_sweep_db(path: Path) -> bool:
        """Read-only look for the ``trials`` and ``sweeps`` tables (other SQLite files are left untouched)."""
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
        except sqlite3.Error:
            return False
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        except sqlite3.Error:
            return False
        finally:
            conn.close()
        return {"trials", "sweeps"} <= {r[0] for r in rows}

    def names(self) -> list[str]:
        """Sweep databases in the folder (files ending in .db with the sweep tables)."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if p.is_file() and p.suffix == ".db" and _NAME.match(p.name)]
        return sorted(p.name for p in found if self._is_sweep_db(p))

    def trials(self, name: str) -> list[dict[str, Any]]:
        """Every trial row of database ``name`` (JSON columns decoded)."""
        from convlens.lab.sweep.store import ResultStore

        path = self.path(name)
        if not self._is_sweep_db(path):
            raise DataError(f"{name!r} is not a convlens sweep database.")
        with ResultStore(path, create=False) as store:
            return store.trials()

    def trial(self, name: str, trial_id: int) -> dict[str, Any]:
        """One trial row by id."""
        for row in self.trials(name):
            if row["id"] == trial_id:
                return row
        raise ConfigError(f"sweep database {name!r} has no trial {trial_id}.")


def trial_model_name(config_hash: str) -> str:
    """The file name under which a trained model of a sweep trial's configuration is saved."""
    return f"trial-{config_hash}.npz"


class ModelResolver:
    """Model references of the API: a file name in the models folder, or ``trial:DB:ID``.

    A trial reference opens ``trial-<config hash>.npz`` when one was saved (trained live from the
    Experiments tab); otherwise the configuration is built with the trial's seed, untrained (sweeps keep
    no weights), and ``note`` says so.
    """

    def __init__(self, models: ModelStore, sweeps: SweepStore) -> None:
        self.models = models
        self.sweeps = sweeps
        self._built: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, ref: str) -> LoadedModel:
        """The model for ``ref`` (see the class doc)."""
        if not ref.startswith("trial:"):
            return self.models.load(ref)
        _, db, trial_id = ref.split(":")
        row = self.sweeps.trial(db, int(trial_id))
        saved = trial_model_name(row["config_hash"])
        if saved in self.models.names():
            loaded = self.models.load(saved)
            loaded.note = f"trained model {saved} of trial {trial_id} ({db})"
            return loaded
        with self._lock:
            cached = self._built.get(ref)
            if cached is not None:
                return cached
        from convlens.lab import samples
        from convlens.lab.sweep.grid import TrialConfig
        from convlens.lab.sweep.trial import build_model
        from convlens.layers.base import reset_name_counters
        from convlens.utils import set_random_seed

        config = TrialConfig.from_dict(row["config"])
        set_random_seed(config.seed)
        reset_name_counters()
        model = build_model(
            config,
            input_shape=samples.input_shape(config.dataset),
            classes=len(samples.describe(config.dataset)["class_names"]),
        )
        loaded = LoadedModel(
            model,
            ref,
            trained=False,
            note=f"trial {trial_id} of {db}: its configuration with fresh weights (seed {config.seed}); the sweep "
            f"kept no weights. Train it from the Experiments tab to inspect trained weights.",
        )
        with self._lock:
            self._built[ref] = loaded
        return loaded
