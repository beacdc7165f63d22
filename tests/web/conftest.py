"""Fixtures of the web tests: a models folder with a small trained course model, a sweep database, a client."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("fastapi") is None:  # the web extra is part of the test extra
    if os.environ.get("CI") == "true":
        raise ModuleNotFoundError("fastapi is missing: CI installs the test extra (pip install -e '.[test]').")
    collect_ignore_glob = ["*.py", "e2e/*.py"]


def train_course(path: Path, images: int = 2000, epochs: int = 1) -> Any:
    """The course model trained briefly on the first ``images`` MNIST images (seed 0), saved to ``path``."""
    from convlens.lab import samples
    from convlens.lab.sweep.grid import TrialConfig
    from convlens.lab.sweep.trial import build_model
    from convlens.layers.base import reset_name_counters
    from convlens.utils import set_random_seed

    (x, y), _ = samples.arrays("mnist")
    set_random_seed(0)
    reset_name_counters()
    model = build_model(TrialConfig())
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:images], y[:images], epochs=epochs, batch_size=64, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def make_sweep(path: Path) -> list[dict[str, Any]]:
    """A real sweep database: four tiny trials (one INVALID), written by the sweep store."""
    from convlens.lab import samples
    from convlens.lab.sweep.grid import expand
    from convlens.lab.sweep.store import ResultStore, sweep_id_for
    from convlens.lab.sweep.trial import run_trial

    (x, y), (xt, yt) = samples.arrays("mnist")
    configs = expand(
        {"kernel_size": [3, 5], "strides": [1, 2], "filters": [4], "train_limit": [300], "test_limit": [100]}
    )
    configs.append(expand({"kernel_size": [9], "padding": ["valid"], "conv_blocks": [3], "filters": [4]})[0])
    sweep = sweep_id_for(configs)
    records = []
    with ResultStore(path) as store:
        store.ensure_sweep(sweep, configs)
        for config in configs:
            record = run_trial(config, data=((x[:300], y[:300]), (xt[:100], yt[:100])))
            store.add_trial(sweep, record)
            records.append(record)
    return records


@pytest.fixture(scope="session")
def lab_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(models folder with course.npz, sweeps folder with sweep.db and a non-sweep SQLite file)."""
    import sqlite3

    root = tmp_path_factory.mktemp("lab")
    train_course(root / "models" / "course.npz")
    sweeps = root / "sweeps"
    sweeps.mkdir()
    make_sweep(sweeps / "sweep.db")
    sqlite3.connect(sweeps / "other.db").execute("CREATE TABLE t (x)").connection.close()
    return root / "models", sweeps


@pytest.fixture
def client(lab_dirs: tuple[Path, Path]) -> Iterator[Any]:
    """A TestClient of an app on the shared folders (no first-start training)."""
    from fastapi.testclient import TestClient

    from convlens.web import create_app

    app = create_app(*lab_dirs, train_course=False)
    with TestClient(app) as c:
        yield c
    app.state.lab.jobs.stop_and_wait(10)
