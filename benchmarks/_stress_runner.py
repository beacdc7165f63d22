"""Run stress cases in forked worker processes with a memory limit and a per-case timeout; classify outcomes.

A worker is forked after every case exists, so a case is just its index. Each worker caps its address space
(``RLIMIT_AS``: what it had after start-up plus ``memory_gib``), runs cases one by one with output captured,
and answers with an outcome. The driver kills a worker that overruns a case's timeout (a hang) and forks a
new one; a worker that dies (a signal, the kernel's OOM killer) is a blow-up too.

Classes:
    clean_error      a convlens error (ConvlensError subclass), the documented answer to a bad argument
    valid            returned, and the oracle found nothing wrong
    other_exception  any other exception (NumPy, Python internals, a bare TypeError...)
    silent_wrong     returned although the argument was invalid, or the oracle rejected the result
    memory_or_hang   MemoryError, a timeout, or the worker died
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import multiprocessing.connection
import os
import resource
import signal
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

CLASSES = ("clean_error", "valid", "other_exception", "silent_wrong", "memory_or_hang")


@dataclass
class Case:
    """One call: ``run()`` performs it; ``kind`` says what a right answer is (see tests/support/bad_values.py).

    ``check(result)`` returns a description of what is wrong with a returned result (None when fine);
    ``arg`` is the argument the case damaged: a clean error should name it.
    """

    family: str
    label: str
    run: Callable[[], Any]
    kind: str = "any"
    arg: str | None = None
    check: Callable[[Any], str | None] | None = None
    timeout: float = 4.0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    cls: str
    detail: str
    seconds: float
    names_arg: bool | None = None  # for clean errors of cases with an `arg`


def _convlens_error() -> type[BaseException]:
    from convlens.errors import ConvlensError

    return ConvlensError


def run_case(case: Case) -> Outcome:
    """Run one case in this process and classify it (no timeout here: the driver enforces it)."""
    err_cls = _convlens_error()
    sink = io.StringIO()
    start = time.perf_counter()
    try:
        with (
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            result = case.run()
    except err_cls as exc:  # first: a ResourceError is a convlens error (and a MemoryError)
        seconds = time.perf_counter() - start
        names = None if case.arg is None else (case.arg.lower() in str(exc).lower())
        return Outcome("clean_error", f"{type(exc).__name__}: {exc}"[:300], seconds, names)
    except MemoryError as exc:
        return Outcome("memory_or_hang", f"MemoryError: {exc}"[:300], time.perf_counter() - start)
    except SystemExit as exc:  # the CLI: argparse's usage errors exit 2 with one line on stderr
        seconds = time.perf_counter() - start
        code = exc.code if isinstance(exc.code, int) else 1
        text = sink.getvalue()
        if code == 2 and "Traceback" not in text:
            return Outcome(
                "clean_error", f"exit 2: {text.strip().splitlines()[-1] if text.strip() else ''}"[:300], seconds
            )
        if code == 0:
            return _returned(case, 0, seconds)
        return Outcome("other_exception", f"exit {code}: {text[-300:]}", seconds)
    except BaseException as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{tb[-1].filename.rsplit('/', 2)[-1]}:{tb[-1].lineno}" if tb else "?"
        return Outcome("other_exception", f"{type(exc).__name__}: {exc} [{where}]"[:300], time.perf_counter() - start)
    return _returned(case, result, time.perf_counter() - start)


def _returned(case: Case, result: Any, seconds: float) -> Outcome:
    if case.kind == "invalid":
        return Outcome("silent_wrong", f"accepted an invalid {case.arg or 'argument'}: {case.label}", seconds)
    if case.check is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem = case.check(result)
        except Exception as exc:
            problem = f"oracle failed on the result: {type(exc).__name__}: {exc}"
        if problem:
            return Outcome("silent_wrong", problem[:300], seconds)
    return Outcome("valid", "", seconds)


# ----- the worker pool ---------------------------------------------------------------------------
def _vm_size() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _worker(conn: Any, cases: Sequence[Case], memory_bytes: int, workdir: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir(workdir)
    limit = _vm_size() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            index = conn.recv()
        except EOFError:
            return
        if index is None:
            return
        outcome = run_case(cases[index])
        conn.send(outcome)


class _Slot:
    def __init__(self, ctx: Any, cases: Sequence[Case], memory_bytes: int, workdir: str) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, cases, memory_bytes, workdir), daemon=True)
        self.proc.start()
        child.close()
        self.index: int | None = None
        self.started = 0.0

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join(5)
        self.conn.close()


def run_cases(
    cases: Sequence[Case],
    *,
    workers: int = 2,
    memory_gib: float = 2.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Run every case in ``workers`` forked processes; return the outcomes in case order."""
    ctx = multiprocessing.get_context("fork")
    memory_bytes = int(memory_gib * 2**30)
    outcomes: list[Outcome | None] = [None] * len(cases)
    todo = list(range(len(cases)))
    todo.reverse()
    with tempfile.TemporaryDirectory(prefix="convlens-stress-") as workdir:
        slots = [_Slot(ctx, cases, memory_bytes, workdir) for _ in range(max(1, workers))]
        done = 0
        try:
            while done < len(cases):
                for slot in slots:
                    if slot.index is None and todo:
                        slot.index = todo.pop()
                        slot.started = time.perf_counter()
                        slot.conn.send(slot.index)
                busy = [s for s in slots if s.index is not None]
                ready = multiprocessing.connection.wait([s.conn for s in busy], timeout=0.05)
                now = time.perf_counter()
                for i, slot in enumerate(slots):
                    if slot.index is None:
                        continue
                    case = cases[slot.index]
                    outcome: Outcome | None = None
                    if slot.conn in ready:
                        try:
                            outcome = slot.conn.recv()
                        except (EOFError, OSError):
                            slot.proc.join(1)
                            outcome = Outcome(
                                "memory_or_hang", f"worker died (exit {slot.proc.exitcode})", now - slot.started
                            )
                    elif now - slot.started > case.timeout:
                        outcome = Outcome("memory_or_hang", f"timeout after {case.timeout:.0f} s", now - slot.started)
                    if outcome is None:
                        continue
                    outcomes[slot.index] = outcome
                    done += 1
                    if progress is not None:
                        progress(done, len(cases))
                    if outcome.cls == "memory_or_hang" and not outcome.detail.startswith("MemoryError"):
                        slot.kill()
                        slots[i] = _Slot(ctx, cases, memory_bytes, workdir)
                    else:
                        slot.index = None
        finally:
            for slot in slots:
                with contextlib.suppress(Exception):
                    slot.conn.send(None)
                slot.kill()
    return [o for o in outcomes if o is not None]
