"""Helper threads that take a piece of work in microseconds: the thread team behind :mod:`convlens.ops.parallel`
and the split training step (:mod:`convlens.data_parallel`).

A compiled kernel split over two threads hands a piece to a second thread and waits for it. Through a
``ThreadPoolExecutor`` each hand-off costs ~50 us on the 2-core AMD EPYC KVM (a futex wakes the sleeping thread,
and a halted virtual CPU takes tens of microseconds to wake), about as long as the piece itself for a batch norm
of (128, 13x13, 64). PyTorch's OpenMP threads spin between ops instead. Here each helper thread, after its
piece, **spins** for up to ``CONVLENS_SPIN_US`` microseconds (default 1000) watching a flag for the next piece,
and a caller waiting for a helper spins on the helper's done-flag as long; only then does either sleep on a
condition variable. The spins are compiled (:mod:`convlens.ops._spin_kernels`: atomic loads, the CPU's
spin-wait hint, a ``sched_yield()`` every 16 reads so other threads that want the core get it) and run without
the GIL. Two no-op pieces split and joined: 71 us through the executor, 14 us here; two pieces of 50 us each:
106 -> 63 us (AMD EPYC, 2 threads).

Without Numba (or with ``CONVLENS_JIT=0``, ``CONVLENS_SPIN_US=0``, or off POSIX) the same helpers sleep at
once: a hand-off is a condition-variable wake (~40 us here).

Each helper has one flag row (int64, one cache line): ``POSTED``, the number of pieces handed to it; ``DONE``,
the number it finished; ``SLEEPING`` and ``WAITING``, set by the helper or its caller before they sleep. With the
compiled operations loaded every access to the flags is a sequentially consistent atomic, so whoever sees a
piece's ``DONE`` sees its results, and of a sleeper and the thread that would wake it one always sees the other
(see :class:`_Helper`); without them nobody spins and every access runs under the GIL.

>>> out = []
>>> run_pieces([lambda: out.append(1), lambda: out.append(2)])
>>> sorted(out)
[1, 2]
"""

from __future__ import annotations

import atexit
import importlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlens import switches
from convlens.ops.numba_lock import NUMBA_IMPORT_LOCK

__all__ = ["SpinBarrier", "run_pieces", "spin_microseconds", "spinning"]

POSTED, DONE, SLEEPING, WAITING = 0, 1, 2, 3
_FLAG_COLUMNS = 8  # (64 bytes: a helper's flags on a cache line of their own)
#: Microseconds a helper that sees a new piece spins on before it takes the GIL: the caller posts and then runs
#: a few microseconds of Python before its own piece's kernel lets the GIL go. A thread that asks for a taken
#: GIL sleeps (CPython does not spin for it) and wakes ~25 us later here, longer than the whole hand-off.
LINGER_US = 4


class _Compiled:
    """The compiled flag operations, with the spin reads per microsecond measured on this machine."""

    def __init__(self, module: Any) -> None:
        self.spin = module.spin_until_changed
        self.finish = module.finish_and_spin
        self.store = module.store
        self.load = module.load
        self.spin_all = module.spin_until_all
        probe = np.zeros(_FLAG_COLUMNS, np.int64)
        self.store(probe, DONE, 0)
        self.load(probe, DONE)
        self.finish(probe, DONE, WAITING, POSTED, 0, 1, 0)
        self.spin_all(probe, 0, 0, 1, 0)
        self.spin(probe, DONE, 0, 16, 0)  # (each compiled, or loaded from the disk cache)
        reads = 1 << 14
        start = time.perf_counter()
        self.spin(probe, DONE, 0, reads, 0)
        self.reads_per_us = max(1.0, reads / max((time.perf_counter() - start) * 1e6, 1e-3))
        self.linger = int(LINGER_US * self.reads_per_us)


_COMPILED: _Compiled | None = None
_UNAVAILABLE = False
_SPIN_CACHE: tuple[str, str, int] = ("", "", 0)  # (SPIN_US's value, JIT's value, spin reads)


def _compiled() -> _Compiled | None:
    """The compiled flag operations, once Numba is on (None without it)."""
    global _COMPILED, _UNAVAILABLE
    if _COMPILED is None:
        if os.name != "posix" or _UNAVAILABLE or not switches.JIT.is_on():  # (sched_yield is POSIX's)
            return None
        with NUMBA_IMPORT_LOCK:  # (the lock of Numba's first import: see convlens.ops.numba_lock)
            if _COMPILED is None and not _UNAVAILABLE:
                try:  # (not through convlens.ops.jit, which imports this module's user, convlens.ops.parallel)
                    _COMPILED = _Compiled(importlib.import_module("convlens.ops._spin_kernels"))
                except (ImportError, OSError):  # (no Numba, or llvmlite's library fails to load)
                    _UNAVAILABLE = True
                    return None
    return _COMPILED


def spin_microseconds() -> int:
    """``CONVLENS_SPIN_US`` as an integer (the default, 1000, when it is not a whole number)."""
    raw = switches.SPIN_US.value()
    return int(raw) if raw.isdigit() else int(switches.SPIN_US.default)


def _spin_reads() -> int:
    """How many flag reads a wait spins before it sleeps (0: no spinning), for the current switches."""
    global _SPIN_CACHE
    raw, jit = switches.SPIN_US.value(), switches.JIT.value()
    if raw == _SPIN_CACHE[0] and jit == _SPIN_CACHE[1]:
        return _SPIN_CACHE[2]
    us = spin_microseconds()
    compiled = _compiled() if us > 0 and jit != "0" else None
    reads = 0 if compiled is None else max(1, int(us * compiled.reads_per_us))
    _SPIN_CACHE = (raw, jit, reads)
    return reads


def spinning() -> bool:
    """Whether waiting threads spin before they sleep (Numba on, POSIX, ``CONVLENS_SPIN_US`` not 0)."""
    return _spin_reads() > 0


def _store(flags: np.ndarray, column: int, value: int) -> None:
    """``flags[column] = value``, sequentially consistent when the compiled operations are loaded (a spin may
    read it; without them no thread spins and every access runs under the GIL)."""
    compiled = _COMPILED
    if compiled is None:
        flags[column] = value
    else:
        compiled.store(flags, column, value)


def _load(flags: np.ndarray, column: int) -> int:
    compiled = _COMPILED
    return int(flags[column]) if compiled is None else int(compiled.load(flags, column))


class _Helper:
    """One helper thread: runs the pieces posted to it, one at a time, in order.

    Who sleeps says so in its flags (``SLEEPING``: the helper, for a piece; ``WAITING``: the caller, for the
    piece's end) before it checks the flag it waits for, and the other side writes that flag before it checks
    theirs: one of the two always sees the other, so no wake-up is lost.
    """

    def __init__(self, name: str) -> None:
        self.flags = np.zeros(_FLAG_COLUMNS, np.int64)
        self.cond = threading.Condition(threading.Lock())
        self.call: Callable[[], object] | None = None
        self.error: BaseException | None = None
        self.posted = 0
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def post(self, call: Callable[[], object] | None) -> None:
        """Hand ``call`` to the helper (None stops it)."""
        self.call = call
        self.posted += 1
        _store(self.flags, POSTED, self.posted)
        if _load(self.flags, SLEEPING):
            with self.cond:
                self.cond.notify()

    def wait(self) -> BaseException | None:
        """Wait until the last posted piece has returned; its error, if it raised one."""
        posted, flags = self.posted, self.flags
        reads, compiled = _spin_reads(), _COMPILED
        if reads == 0 or compiled is None or compiled.spin(flags, DONE, posted - 1, reads, 0) != posted:
            with self.cond:
                _store(flags, WAITING, 1)
                try:
                    while _load(flags, DONE) != posted:
                        self.cond.wait()
                finally:
                    _store(flags, WAITING, 0)
        error, self.error = self.error, None
        return error

    def _loop(self) -> None:
        flags, seen, finished = self.flags, 0, False
        while True:
            reads, compiled = _spin_reads(), _COMPILED
            if reads and compiled is not None:
                if finished:
                    got = compiled.finish(flags, DONE, WAITING, POSTED, seen, reads, compiled.linger)
                    if got < 0:  # (the caller sleeps: wake it, then spin for the next piece)
                        with self.cond:
                            self.cond.notify()
                        got = compiled.spin(flags, POSTED, seen, reads, compiled.linger)
                else:
                    got = compiled.spin(flags, POSTED, seen, reads, compiled.linger)
            else:
                if finished:
                    with self.cond:
                        _store(flags, DONE, seen)
                        self.cond.notify()
                got = seen
            finished = False
            if got == seen:
                with self.cond:
                    _store(flags, SLEEPING, 1)
                    while _load(flags, POSTED) == seen:
                        self.cond.wait()
                    _store(flags, SLEEPING, 0)
            seen += 1
            call, self.call = self.call, None
            if call is None:
                return
            try:
                call()
            except BaseException as error:  # (handed to the caller by wait())
                self.error = error
            del call  # (the piece's arrays are not kept alive until the next piece)
            finished = True


class _Team:
    """The process's helper threads; a caller claims some for one split and gives them back after."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.free: list[_Helper] = []
        self.count = 0

    def claim(self, wanted: int, limit: int | None) -> list[_Helper]:
        """Up to ``wanted`` helpers: free ones, then new ones while the team has fewer than ``limit`` (None: no
        limit, every one wanted)."""
        with self.lock:
            taken = self.free[len(self.free) - min(wanted, len(self.free)) :]
            del self.free[len(self.free) - len(taken) :]
            while len(taken) < wanted and (limit is None or self.count < limit):
                self.count += 1
                taken.append(_Helper(f"convlens-{self.count}"))
        return taken

    def give_back(self, helpers: list[_Helper]) -> None:
        with self.lock:
            self.free.extend(helpers)

    def stop(self) -> None:
        with self.lock:
            helpers, self.free = self.free, []
        for helper in helpers:
            helper.post(None)


_TEAM: _Team | None = None
_TEAM_LOCK = threading.Lock()


def _team() -> _Team:
    global _TEAM
    if _TEAM is None:
        with _TEAM_LOCK:
            if _TEAM is None:
                _TEAM = _Team()
    return _TEAM


def _forget_team() -> None:
    """In a forked child: the parent's helper threads do not exist here (and its locks may be held)."""
    global _TEAM, _TEAM_LOCK
    _TEAM, _TEAM_LOCK = None, threading.Lock()


def _stop_team() -> None:
    if _TEAM is not None:
        _TEAM.stop()


os.register_at_fork(after_in_child=_forget_team)
atexit.register(_stop_team)


def run_pieces(calls: Sequence[Callable[[], object]], *, helpers: int | None = None, all_at_once: bool = False) -> None:
    """Run every call in ``calls``: the last on this thread, the others on helper threads, and return when all
    have returned.

    The team grows to at most ``helpers`` threads (default ``len(calls) - 1``) for this; when fewer are free
    (another thread's split holds them), this thread runs the rest itself, one after another, unless
    ``all_at_once`` (pieces that wait for each other, such as the split step's halves at their barriers): then
    the team grows by as many as needed.

    Raises:
        BaseException: this thread's piece's error, else the first helper's in order, after every piece has
            returned (nothing runs on behind an error).
    """
    wanted = len(calls) - 1
    if wanted <= 0:
        for call in calls:
            call()
        return
    taken = _team().claim(wanted, None if all_at_once else (wanted if helpers is None else helpers))
    for helper, call in zip(taken, calls, strict=False):
        helper.post(call)
    first: BaseException | None = None
    try:
        for call in calls[len(taken) :]:
            call()
    except BaseException as raised:
        first = raised
    interrupt: BaseException | None = None
    for helper in taken:
        while True:
            try:
                failed = helper.wait()
                break
            except BaseException as stop:  # (Ctrl-C while waiting: wait on, then raise it)
                interrupt = interrupt or stop
        first = first or failed
    _team().give_back(taken)
    if first is not None:
        raise first
    if interrupt is not None:
        raise interrupt


class SpinBarrier:
    """A barrier for ``parties`` threads that spins as the helpers do, then sleeps (``threading.Barrier``'s
    sleeping wake-up costs ~40 us here, several times per training step with batch norm).

    Each party counts its own arrivals in a flag of its own (``flags[8 * party]``: a cache line each) and waits
    until every party's count has reached its own; :meth:`abort` breaks the barrier for good (every wait then
    raises ``threading.BrokenBarrierError``).

    >>> barrier = SpinBarrier(1)
    >>> barrier.wait(0)
    """

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.flags = np.zeros(8 * (parties + 1), np.int64)  # (party p: [arrivals, asleep, ...]; then broken)
        self.arrivals = [0] * parties
        self.cond = threading.Condition(threading.Lock())

    def _state(self, target: int) -> int:
        """1: every party has arrived ``target`` times; -1: broken; 0: waiting."""
        flags = self.flags
        if _load(flags, 8 * self.parties):
            return -1
        return int(all(_load(flags, 8 * p) >= target for p in range(self.parties)))

    def wait(self, party: int) -> None:
        """Wait until every party has called ``wait`` as often as ``party`` has.

        Raises:
            threading.BrokenBarrierError: the barrier was (or gets) aborted.
        """
        flags, target = self.flags, self.arrivals[party] + 1
        self.arrivals[party] = target
        _store(flags, 8 * party, target)
        if any(_load(flags, 8 * p + 1) for p in range(self.parties) if p != party):
            with self.cond:  # (a party sleeps: wake it to look)
                self.cond.notify_all()
        reads, compiled = _spin_reads(), _COMPILED
        state = 0
        if reads and compiled is not None:
            state = compiled.spin_all(flags, self.parties, target, reads, compiled.linger)
        if state == 0:
            with self.cond:
                _store(flags, 8 * party + 1, 1)
                try:
                    while (state := self._state(target)) == 0:
                        self.cond.wait()
                finally:
                    _store(flags, 8 * party + 1, 0)
        if state < 0:
            raise threading.BrokenBarrierError

    def abort(self) -> None:
        """Break the barrier: every party's wait, now or later, raises ``threading.BrokenBarrierError``."""
        _store(self.flags, 8 * self.parties, 1)
        with self.cond:
            self.cond.notify_all()
