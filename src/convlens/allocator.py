"""Keep big temporaries off the page-fault path while a model trains or predicts (glibc only).

Every training step allocates a few arrays of some megabytes. With glibc's defaults many of them are
fresh ``mmap`` regions: the memory is returned to the kernel on free and every page faults again on
the next step (about 2 us per 4 KiB page here: a 3 MB array costs ~1.5 ms before any arithmetic). For
the course model that halves the training speed. While :func:`tuned` is active, allocations come from
the heap and freed memory is kept for reuse (``mallopt(M_MMAP_MAX, 0)`` and a high trim threshold:
what PyTorch's performance guide recommends through ``MALLOC_MMAP_MAX_``/``MALLOC_TRIM_THRESHOLD_``).
On exit mmap is allowed again and the unused heap is trimmed.

Any ``mallopt`` call also switches off glibc's dynamic mmap threshold for the rest of the process (glibc
raises the threshold to the size of each freed mmap'ed block, up to 32 MB, so that repeated large
allocations come from the heap). Restoring only the two options left every allocation above the default
128 KB threshold a fresh mmap after the first ``fit``/``predict``: the course model's conv layer called on
its own (128 images) then took 582 page faults a call instead of 10, 1.3-1.6x its time. On exit the
threshold is therefore set where glibc's own rule settles: 32 MB, with the trim threshold twice that.

Set ``CONVLENS_TUNE_MALLOC=0`` to leave the allocator alone. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from convlens import switches

__all__ = ["heap_reuse", "tuned"]

P = ParamSpec("P")
R = TypeVar("R")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_DEFAULT_MMAP_MAX = 65536
#: glibc's dynamic mmap threshold stops rising here (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems) ...
_RESTORED_MMAP_THRESHOLD = 32 << 20
#: ... and sets the trim threshold to twice the mmap threshold.
_RESTORED_TRIM_THRESHOLD = 2 * _RESTORED_MMAP_THRESHOLD

_libc: Any = None
_depth = 0


def _glibc() -> Any:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                _libc = libc
            except (OSError, AttributeError):
                _libc = False
    return _libc


@contextmanager
def tuned() -> Iterator[None]:
    """Context manager: heap allocations without trimming inside, the usual policy restored outside."""
    global _depth
    libc: Any = _glibc() if switches.TUNE_MALLOC.is_on() else False
    if not libc:
        yield
        return
    if _depth == 0:
        libc.mallopt(_M_MMAP_MAX, 0)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_MMAP_THRESHOLD, _RESTORED_MMAP_THRESHOLD)  # (see the module's docstring)
            libc.mallopt(_M_TRIM_THRESHOLD, _RESTORED_TRIM_THRESHOLD)
            libc.malloc_trim(0)


def heap_reuse(function: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run ``function`` inside :func:`tuned` (``Sequential.fit``, ``evaluate``, ``predict``)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with tuned():
            return function(*args, **kwargs)

    return wrapper
