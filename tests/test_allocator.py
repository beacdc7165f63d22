"""The allocator tuning is scoped, re-entrant, and can be switched off."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from convlens import allocator


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", (param, value)))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", (pad,)))
        return 1


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    libc = FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    monkeypatch.delenv("CONVLENS_TUNE_MALLOC", raising=False)
    return libc


def test_tunes_on_entry_and_restores_on_exit(fake: FakeLibc) -> None:
    with allocator.tuned():
        assert fake.calls == [("mallopt", (-4, 0)), ("mallopt", (-1, 2**31 - 1))]
    assert fake.calls[2:] == [
        ("mallopt", (-4, 65536)),
        ("mallopt", (-3, 32 << 20)),
        ("mallopt", (-1, 64 << 20)),
        ("malloc_trim", (0,)),
    ]


def test_nested_use_tunes_once(fake: FakeLibc) -> None:
    with allocator.tuned(), allocator.tuned():
        pass
    assert [c for c, _ in fake.calls].count("malloc_trim") == 1
    assert len(fake.calls) == 6


def test_restores_after_an_exception(fake: FakeLibc) -> None:
    with pytest.raises(RuntimeError, match="boom"), allocator.tuned():
        raise RuntimeError("boom")
    assert fake.calls[-1] == ("malloc_trim", (0,))
    assert allocator._depth == 0


def test_switched_off_by_environment(fake: FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_TUNE_MALLOC", "0")
    with allocator.tuned():
        pass
    assert fake.calls == []


def test_real_libc_round_trip() -> None:
    # On this platform (glibc or not) entering and leaving must simply work.
    with allocator.tuned():
        data = bytearray(10 << 20)
    assert len(data) == 10 << 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tuning is glibc's (Linux); elsewhere a no-op")
def test_large_allocations_reuse_the_heap_after_the_tuning() -> None:
    # Any mallopt call freezes glibc's dynamic mmap threshold. Left at its 128 KB default, every later 1 MB
    # array would be a fresh mmap whose 256 pages fault on first touch, in the user's code after fit/predict.
    # A fresh interpreter: the malloc state of this test process is shared with every other test.
    code = textwrap.dedent(
        """
        import resource
        import numpy as np
        from convlens import allocator
        assert allocator._glibc(), "glibc not found"
        with allocator.tuned():
            pass
        def faults():
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        np.ones(1 << 18, np.float32)  # (1 MB, freed at once)
        before = faults()
        for _ in range(20):
            np.ones(1 << 18, np.float32)
        print((faults() - before) / 20)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "CONVLENS_TUNE_MALLOC"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    per_array = float(done.stdout.strip())
    assert per_array < 16, f"{per_array} page faults per 1 MB array after tuned() (256: a fresh mmap each time)"
