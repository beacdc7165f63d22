"""The helper-thread team (convlens.ops.handoff): every piece runs once, on the threads promised, errors reach the
caller after every piece has stopped, no wake-up is lost (spinning, sleeping, and the two mixed), and the barrier
lets no thread through before all have arrived."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from convlens.ops import handoff
from convlens.ops.handoff import SpinBarrier, run_pieces

#: The waits each test runs under: spinning first (the default), sleeping at once, spinning too briefly to
#: catch anything (so every hand-off sleeps and wakes), and no compiled kernels at all.
MODES = {
    "spin": {},
    "sleep": {"CONVLENS_SPIN_US": "0"},
    "brief": {"CONVLENS_SPIN_US": "1"},
    "no-jit": {"CONVLENS_JIT": "0"},
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("CONVLENS_SPIN_US", raising=False)
    for name, value in MODES[request.param].items():
        monkeypatch.setenv(name, value)
    return str(request.param)


def _finishes(work: Callable[[], object], seconds: float = 20.0) -> None:
    """Run ``work`` on a thread; fail (instead of hanging the suite) when it has not returned in ``seconds``."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung: a wake-up was lost"
    if errors:
        raise errors[0]


def test_the_spin_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_SPIN_US", "0")
    assert not handoff.spinning()
    monkeypatch.setenv("CONVLENS_SPIN_US", "250")
    assert handoff.spin_microseconds() == 250
    monkeypatch.setenv("CONVLENS_SPIN_US", "soon")  # (not a whole number: the default)
    assert handoff.spin_microseconds() == 1000
    monkeypatch.setenv("CONVLENS_JIT", "0")
    assert not handoff.spinning()


def test_every_piece_runs_once_the_last_on_the_calling_thread(mode: str) -> None:
    def work() -> None:
        for pieces in (1, 2, 3, 5):
            for _ in range(30):
                seen: list[tuple[int, int]] = []
                lock = threading.Lock()

                def piece(i: int, seen: list[tuple[int, int]] = seen, lock: threading.Lock = lock) -> None:
                    with lock:
                        seen.append((i, threading.get_ident()))

                run_pieces([lambda i=i: piece(i) for i in range(pieces)])
                assert sorted(i for i, _ in seen) == list(range(pieces))
                idents = dict(seen)
                assert idents[pieces - 1] == threading.get_ident()
                assert len(set(idents.values())) == pieces  # (each helper one piece: pieces - 1 helpers)

    _finishes(work)


def test_pieces_after_idle_gaps_still_wake_their_helper(mode: str) -> None:
    """A helper that went to sleep (its spin ran out) takes the next piece; a caller that went to sleep (the
    piece outlasted its spin) is woken."""

    def work() -> None:
        for gap in (0.0, 0.002, 0.0, 0.004):
            out = np.zeros(2)
            time.sleep(gap)
            run_pieces([lambda o=out: (time.sleep(0.003), o.__setitem__(0, 1)), lambda o=out: o.__setitem__(1, 2)])
            assert out.tolist() == [1, 2]

    _finishes(work)


def test_many_callers_at_once_lose_nothing(mode: str) -> None:
    """Four threads split at once: some find every helper taken and run their pieces themselves."""
    counts = np.zeros(4, np.int64)

    def caller(slot: int) -> None:
        for _ in range(150):
            hits = [0, 0]
            run_pieces([lambda h=hits: h.__setitem__(0, 1), lambda h=hits: h.__setitem__(1, 1)], helpers=2)
            counts[slot] += sum(hits)

    def work() -> None:
        threads = [threading.Thread(target=caller, args=(slot,)) for slot in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    _finishes(work, 60.0)
    assert counts.tolist() == [300] * 4


def test_a_helpers_error_reaches_the_caller_after_every_piece_stopped(mode: str) -> None:
    finished: list[str] = []

    def slow() -> None:
        time.sleep(0.05)
        finished.append("slow")

    def fail() -> None:
        raise ValueError("piece 1")

    with pytest.raises(ValueError, match="piece 1"):
        run_pieces([slow, fail, lambda: None])
    assert finished == ["slow"]
    with pytest.raises(KeyError):  # (the caller's own piece's error comes first)
        run_pieces([fail, lambda: {}["x"]])
    run_pieces([lambda: finished.append("again"), lambda: None])  # (the helpers are back in the team)
    assert finished == ["slow", "again"]


def test_pieces_that_wait_for_each_other_all_run_at_once(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``all_at_once``: even with every helper taken by another caller, the team grows so that pieces meeting at
    a barrier never wait for one another in a queue."""
    team = handoff._Team()
    monkeypatch.setattr(handoff, "_TEAM", team)  # (a team of none yet: the holder takes the only two)
    hold = threading.Event()

    def holder() -> None:
        run_pieces([hold.wait, hold.wait, hold.wait], helpers=2)

    def work() -> None:
        busy = threading.Thread(target=holder)
        busy.start()
        time.sleep(0.01)
        barrier = SpinBarrier(3)
        passed: list[int] = []
        run_pieces(
            [lambda s=s: (barrier.wait(s), barrier.wait(s), passed.append(s)) for s in range(3)], all_at_once=True
        )
        hold.set()
        busy.join()
        assert sorted(passed) == [0, 1, 2]
        assert team.count == 4

    try:
        _finishes(work)
    finally:
        team.stop()  # (its helper threads end)


@pytest.mark.parametrize("parties", [1, 2, 3])
def test_no_thread_passes_the_barrier_before_all_arrived(mode: str, parties: int) -> None:
    rounds = 60
    arrived = np.zeros(parties, np.int64)
    behind: list[tuple[int, int]] = []
    barrier = SpinBarrier(parties)

    def party(slot: int) -> None:
        for r in range(1, rounds + 1):
            if slot == r % parties:
                time.sleep(0.0005)  # (a different latecomer each round)
            arrived[slot] = r
            barrier.wait(slot)
            if int(arrived.min()) < r:
                behind.append((slot, r))

    def work() -> None:
        threads = [threading.Thread(target=party, args=(s,)) for s in range(parties)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    _finishes(work, 60.0)
    assert behind == []
    assert arrived.tolist() == [rounds] * parties


def test_an_aborted_barrier_breaks_every_wait(mode: str) -> None:
    barrier = SpinBarrier(2)
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            barrier.wait(0)
        except threading.BrokenBarrierError as error:
            errors.append(error)

    def work() -> None:
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.005)
        barrier.abort()
        thread.join()
        with pytest.raises(threading.BrokenBarrierError):
            barrier.wait(1)

    _finishes(work)
    assert len(errors) == 1


def test_the_compiled_spin_sees_another_threads_store() -> None:
    """The spin reads the flag afresh each time (a hoisted load would spin forever) and gives up after its
    reads; the end of a piece reports a sleeping caller instead of spinning on."""
    from convlens.ops.jit import jit_enabled

    if not jit_enabled():
        pytest.skip("needs Numba")
    compiled = handoff._compiled()
    assert compiled is not None
    flags = np.zeros(8, np.int64)
    assert compiled.spin(flags, handoff.DONE, 0, 1000, 0) == 0  # (nothing changes: gives up)
    timer = threading.Timer(0.01, lambda: compiled.store(flags, handoff.DONE, 7))
    timer.start()
    assert compiled.spin(flags, handoff.DONE, 0, 1 << 40, 0) == 7
    timer.join()
    compiled.store(flags, handoff.WAITING, 1)
    assert compiled.finish(flags, handoff.DONE, handoff.WAITING, handoff.POSTED, 8, 1 << 40, 0) == -1
    assert compiled.load(flags, handoff.DONE) == 8


_FIRST_IMPORT_RACE = """
import threading
from convlens.ops import handoff, jit
barrier, errors = threading.Barrier(2), []
def run(first):
    barrier.wait()
    try:
        first()
    except BaseException as error:
        errors.append(repr(error))
threads = [threading.Thread(target=run, args=(f,)) for f in (jit.numba_module, handoff.spinning)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors
assert handoff.spinning()
"""


def test_numba_imported_by_two_threads_at_once() -> None:
    """A fresh interpreter whose first kernel call and first hand-off import Numba at the same moment (two pieces
    of a split predict): both imports share one lock (without it: "partially initialized module")."""
    import subprocess
    import sys

    from convlens.ops.jit import jit_enabled

    if not jit_enabled():
        pytest.skip("needs Numba")
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _FIRST_IMPORT_RACE], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
