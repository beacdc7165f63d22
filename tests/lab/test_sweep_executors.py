"""Executors: the local process pool and a real Dask LocalCluster give identical results for the same seeds."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from convlens.errors import ConfigError
from convlens.lab.sweep.executors import run_local, run_sweep, varying_keys
from convlens.lab.sweep.grid import expand
from convlens.lab.sweep.progress import SweepProgress
from convlens.lab.sweep.store import ResultStore
from tests.conftest import require

GRID = {
    "kernel_size": [3, 5],
    "strides": [1, 2],
    "seed": [0, 1],
    "filters": [4],
    "train_limit": [256],
    "test_limit": [256],
}


def _numbers(records: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        r["config_hash"]: (r["status"], r["test_accuracy"], r["test_loss"], repr(r["history"]), r["params"])
        for r in records
    }


def test_local_pool_and_dask_give_identical_results(tmp_path: Path) -> None:
    distributed = require("distributed")
    configs = expand(GRID)
    local: list[dict[str, Any]] = []
    run_local(configs, local.append, workers=2)
    assert len(local) == len(configs)
    assert {r["status"] for r in local} == {"OK"}
    assert len({r["worker"] for r in local}) >= 1
    assert all(r["worker"].split(":")[1] != str(os.getpid()) for r in local)  # ran in the pool, not here

    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        db = tmp_path / "dask.db"
        outcome = run_sweep(
            configs,
            db,
            executor="dask",
            scheduler=cluster.scheduler_address,
            progress=SweepProgress(len(configs), stream=io.StringIO()),
        )
    assert outcome.ran == len(configs)
    with ResultStore(db) as store:
        remote = store.trials()
    assert _numbers(remote) == _numbers(local)
    # Different seeds really give different numbers, so the equality above can fail.
    by_seed = {(r["config"]["kernel_size"], r["config"]["strides"], r["seed"]): r["test_loss"] for r in local}
    assert by_seed[(3, 1, 0)] != by_seed[(3, 1, 1)]


def test_in_process_workers_zero_matches_a_pool_result() -> None:
    configs = expand({**GRID, "kernel_size": [3], "strides": [1], "seed": [0]})
    here: list[dict[str, Any]] = []
    run_local(configs, here.append, workers=0)
    assert here[0]["worker"].endswith(f":{os.getpid()}")
    assert here[0]["status"] == "OK"


def test_bad_executor_settings() -> None:
    configs = expand({"kernel_size": [3]})
    with pytest.raises(ConfigError, match=r"`executor` must be one of \['local', 'dask'\], got 'ray'"):
        run_sweep(configs, ":memory:", executor="ray")
    with pytest.raises(ConfigError, match=r"the grid is empty"):
        run_sweep([], ":memory:")
    with pytest.raises(ConfigError, match=r"`workers` must be >= 0, got -1"):
        run_local(configs, print, workers=-1)
    with pytest.raises(ConfigError, match=r"the dask executor needs `--scheduler`"):
        run_sweep(configs, ":memory:", executor="dask", scheduler=None, progress=SweepProgress(1, stream=io.StringIO()))


def test_varying_keys() -> None:
    assert varying_keys(expand(GRID)) == ["kernel_size", "strides", "seed"]
    assert varying_keys([]) == []


def test_workers_start_with_their_share_of_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """While workers start, every thread variable (BLAS's and convlens's own) holds their share; afterwards the
    environment is as it was."""
    from convlens.lab.sweep import executors

    monkeypatch.setenv("CONVLENS_NUM_THREADS", "7")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with executors._blas_threads(1):
        assert {name: os.environ[name] for name in executors.WORKER_THREAD_VARIABLES} == dict.fromkeys(
            executors.WORKER_THREAD_VARIABLES, "1"
        )
        assert "CONVLENS_NUM_THREADS" in executors.WORKER_THREAD_VARIABLES
    assert os.environ["CONVLENS_NUM_THREADS"] == "7"
    assert "OMP_NUM_THREADS" not in os.environ
