"""Where trials run: a local process pool, the driver process itself, or a Dask distributed cluster.

Every executor ships :func:`~convlens.lab.sweep.trial.run_trial` (with the configuration as a dict)
to its workers and calls ``on_result(record)`` in the driver as each trial completes; the driver is
the only process that writes the results database.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convlens import switches
from convlens.errors import ConfigError
from convlens.lab.sweep.grid import TrialConfig
from convlens.lab.sweep.progress import SweepProgress
from convlens.lab.sweep.store import ResultStore, sweep_id_for
from convlens.lab.sweep.trial import FAILED, run_trial

__all__ = [
    "BLAS_THREAD_VARIABLES",
    "EXECUTORS",
    "SweepRun",
    "cpu_count",
    "run_dask",
    "run_local",
    "run_sweep",
    "varying_keys",
]

OnResult = Callable[[dict[str, Any]], None]
EXECUTORS = ("local", "dask")
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
#: Set in the workers as well: convlens's own threads (each would otherwise split its ops over every core, and
#: its helper threads spin between pieces on cores the other workers use).
WORKER_THREAD_VARIABLES = (*BLAS_THREAD_VARIABLES, switches.NUM_THREADS.name)


def cpu_count() -> int:
    """Cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


@contextmanager
def _blas_threads(threads: int) -> Iterator[None]:
    """Set the BLAS and convlens thread variables while workers start: 'spawn' children read them before NumPy
    loads."""
    saved = {name: os.environ.get(name) for name in WORKER_THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in WORKER_THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Pool initializer: a worker never outlives the sweep that started it.

    On Linux the kernel sends SIGKILL to the worker when its parent dies (``PR_SET_PDEATHSIG``); everywhere a
    watchdog thread exits the worker within a second once its parent is gone. Workers ignore Ctrl-C: the
    driver stops them (and says so) instead of each printing a traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="convlens-parent-watchdog", daemon=True).start()


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Kill a pool's workers now (after Ctrl-C: a running trial may take minutes to finish)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        with contextlib.suppress(Exception):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in list(processes.values()):
        with contextlib.suppress(Exception):
            process.join(1.0)


def _failed(config: TrialConfig, exc: BaseException) -> dict[str, Any]:
    """The record of a trial whose worker died (the trial function itself never raises)."""
    return {
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "status": FAILED,
        "reason": f"{type(exc).__name__}: {exc}",
        "seed": config.seed,
    }


def run_local(configs: Sequence[TrialConfig], on_result: OnResult, workers: int | None = None) -> None:
    """Run trials in a 'spawn' process pool (``workers`` processes, default one per core).

    BLAS and convlens threads are split between the workers (cores // workers each, at least one) through
    ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/.../``CONVLENS_NUM_THREADS`` in the workers' environment.
    ``workers=0`` runs the trials one after another in this process (for debugging and quick tests).

    Shapes:
        no arrays.
    """
    cores = cpu_count()
    workers = cores if workers is None else workers
    if workers < 0:
        raise ConfigError(f"sweep: `workers` must be >= 0, got {workers}.")
    if not configs:
        return
    if workers == 0:
        for config in configs:
            on_result(run_trial(config))
        return
    workers = min(workers, len(configs))
    with _blas_threads(max(1, cores // workers)):
        pool = concurrent.futures.ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        try:
            futures = {pool.submit(run_trial, config.to_dict()): config for config in configs}
            for future in concurrent.futures.as_completed(futures):
                try:
                    record = future.result()
                except Exception as exc:  # the worker died (killed, out of memory): record and go on
                    record = _failed(futures[future], exc)
                on_result(record)
        except BaseException:  # Ctrl-C, or on_result failed: stop the workers now, not after their trials
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True, cancel_futures=True)


def run_dask(configs: Sequence[TrialConfig], on_result: OnResult, scheduler: Any) -> None:
    """Run trials on an existing Dask distributed cluster.

    Args:
        configs: the trials.
        on_result: called in this (driver) process as each trial completes.
        scheduler: the scheduler's address (``tcp://host:8786``) or a ``distributed.Client``.

    Shapes:
        no arrays.
    """
    try:
        from distributed import Client, as_completed
    except ModuleNotFoundError:
        raise ConfigError("sweep: the dask executor needs dask.distributed: pip install 'convlens[sweep]'.") from None
    if not scheduler:
        raise ConfigError("sweep: the dask executor needs `--scheduler`, e.g. tcp://host:8786.")
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler) if own else scheduler  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise ConfigError(f"sweep: cannot reach the Dask scheduler at {scheduler!r}: {exc}.") from None
    try:
        futures = {
            client.submit(run_trial, config.to_dict(), pure=False, key=f"convlens-trial-{config.config_hash()}"): config
            for config in configs
        }
        for future in as_completed(list(futures)):  # type: ignore[no-untyped-call]
            try:
                record = future.result()
            except Exception as exc:  # the worker died or the task was lost
                record = _failed(futures[future], exc)
            on_result(record)
    finally:
        if own:
            client.close()


@dataclass(frozen=True)
class SweepRun:
    """What :func:`run_sweep` did: the sweep's id, its size, the trials skipped as already finished, those run."""

    sweep_id: str
    total: int
    skipped: int
    ran: int


def varying_keys(configs: Sequence[TrialConfig]) -> list[str]:
    """The configuration keys whose value differs between ``configs`` (in axis order).

    >>> varying_keys([TrialConfig(kernel_size=3), TrialConfig(kernel_size=5)])
    ['kernel_size']
    """
    dicts = [c.to_dict() for c in configs]
    return [k for k in (dicts[0] if dicts else {}) if len({repr(d[k]) for d in dicts}) > 1]


def run_sweep(
    configs: Sequence[TrialConfig],
    db: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    scheduler: Any = None,
    resume: bool = False,
    progress: SweepProgress | None = None,
) -> SweepRun:
    """Run a sweep into the SQLite file ``db``, committing one row per finished trial.

    The sweep's id is a digest of its configurations, so running the same grid again finds it:
    with ``resume=True`` the finished trials are skipped; without it, a database that already holds
    some of them is refused (nothing is ever run twice).

    Raises:
        ConfigError: unknown executor, finished trials present without ``resume``, unreachable scheduler.

    Shapes:
        no arrays.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"sweep: `executor` must be one of {list(EXECUTORS)}, got {executor!r}.")
    if not configs:
        raise ConfigError("sweep: the grid is empty.")
    sweep_id = sweep_id_for(configs)
    with ResultStore(db) as store:
        done = store.finished_hashes(sweep_id)
        if done and not resume:
            raise ConfigError(
                f"sweep: {str(db)!r} already holds {len(done)} finished trial(s) of this sweep ({sweep_id}); "
                "pass --resume to run only the rest, or choose another --db."
            )
        store.ensure_sweep(sweep_id, configs)
        todo = [c for c in configs if c.config_hash() not in done]
        bar = progress if progress is not None else SweepProgress(len(configs), len(configs) - len(todo))

        def on_result(record: dict[str, Any]) -> None:
            store.add_trial(sweep_id, record)
            bar.update(record)

        try:
            if executor == "dask":
                run_dask(todo, on_result, scheduler)
            else:
                run_local(todo, on_result, workers)
        except KeyboardInterrupt:
            bar.close(interrupted=True)
            raise
        bar.close()
    return SweepRun(sweep_id, len(configs), len(configs) - len(todo), len(todo))
