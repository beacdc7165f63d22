"""The resource guard: refuse, in microseconds, a request whose arrays could not fit in memory.

Every public call that may allocate more than its inputs (a convolution with a large padding, a pooling
window with 'same' padding, a layer's weights, a file's declared sizes) first asks :func:`check_arrays`
with the shapes it is about to create, computed from the arguments alone (sizes come from
:class:`convlens.geometry.WindowGeometry`). When the total exceeds what this process can still get, it
raises :class:`~convlens.errors.ResourceError` (a ``ConfigError`` and a ``MemoryError``) naming the
estimate and its largest array, before a byte is allocated.

"What this process can still get" (:func:`available_bytes`) is the smallest of: the kernel's
``MemAvailable``, the cgroup's limit minus its usage (containers), the address-space limit
(``RLIMIT_AS``) minus the current size, and ``CONVLENS_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix:
a cap for one process, e.g. one request of a web server). Requests below 64 MiB are never checked unless
that variable is set.

>>> check_arrays([("output", (2, 3), 4)], owner="demo")  # small: returns at once
>>> format_bytes(43.7 * 2**40)
'43.7 TiB'
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import sys
from collections.abc import Sequence
from typing import Any

from convlens.errors import ConfigError, ResourceError
from convlens.switches import MEMORY_LIMIT

__all__ = [
    "MAX_WINDOW_CELLS",
    "available_bytes",
    "check_array_size",
    "check_arrays",
    "check_window",
    "format_bytes",
    "memory_limit",
]

CHECK_FROM = 64 << 20  # below this a request is not worth reading /proc for
# The ops loop over a window's cells in Python (one vectorised pass per cell, ~10 us each): a window of
# 10**6 cells takes seconds before any arithmetic, 10**12 never ends. 65,536 cells is a 256x256 window.
MAX_WINDOW_CELLS = 1 << 16
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def format_bytes(count: float) -> str:
    """``count`` bytes in binary units: '512 B', '1.5 KiB', '43.7 TiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover - the loop returns


def memory_limit() -> int | None:
    """``CONVLENS_MEMORY_LIMIT`` in bytes (None when unset).

    Raises:
        ConfigError: when it is set but not a size such as ``4G`` or ``500000000``.
    """
    text = MEMORY_LIMIT.value()
    if not text:
        return None
    number, unit = text.upper().removesuffix("B").removesuffix("I"), ""
    if number and number[-1] in "KMGT":
        number, unit = number[:-1], number[-1]
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{MEMORY_LIMIT.name} must be a size such as 4G or 500000000, got {text!r}.")
    return int(value * _UNITS[unit])


def _read_int(path: str) -> int | None:
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_file)
        if limit is not None and limit < 2**60:
            usage = _read_int(usage_file) or 0
            return max(limit - usage, 0)
    return None


def _address_space_headroom() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as handle:
            size = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return soft
    return max(soft - size, 0)


def available_bytes() -> int:
    """Bytes this process can still allocate: the smallest of the limits above (see the module docstring)."""
    candidates = [
        value
        for value in (_mem_available(), _cgroup_headroom(), _address_space_headroom(), memory_limit())
        if value is not None
    ]
    if not candidates and sys.platform != "linux":  # pragma: no cover - no /proc: physical memory
        with contextlib.suppress(ValueError, OSError, AttributeError):
            candidates.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return min(candidates) if candidates else sys.maxsize


def _shape_text(shape: Sequence[int]) -> str:
    text = "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    return text if len(text) <= 60 else text[:57] + "..."


def check_arrays(parts: Sequence[tuple[str, Sequence[int], int]], *, owner: str, hint: str = "") -> None:
    """Refuse when the arrays ``parts`` (description, shape, bytes per item) would not fit in memory.

    Raises:
        ResourceError: naming the total estimate, the largest array and the memory available.

    Shapes:
        each part: any shape (Python ints, however large).
    """
    sizes = [math.prod(int(s) for s in shape) * int(itemsize) for _, shape, itemsize in parts]
    total = sum(sizes)
    if total < CHECK_FROM and not MEMORY_LIMIT.value():
        return
    available = available_bytes()
    if total <= available:
        return
    largest = max(range(len(parts)), key=sizes.__getitem__)
    what, shape, _itemsize = parts[largest]
    raise ResourceError(
        f"{owner}: this call needs about {format_bytes(total)} ({what} of shape {_shape_text(shape)} alone "
        f"is {format_bytes(sizes[largest])}), more than the {format_bytes(available)} this process can still "
        f"allocate.{' ' + hint if hint else ''}"
    )


def check_window(window: Sequence[int], name: str, *, owner: str) -> None:
    """Refuse a kernel or pooling window of more than :data:`MAX_WINDOW_CELLS` cells.

    Raises:
        ResourceError: naming the argument and the window.
    """
    cells = math.prod(int(k) for k in window)
    if cells > MAX_WINDOW_CELLS:
        shown = "x".join(str(int(k)) for k in window)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ResourceError(
            f"{owner}: `{name}` {shown} has {cells:,} cells; windows are limited to {MAX_WINDOW_CELLS:,} cells "
            "(256x256). For a window over the whole input use global pooling."
        )


def check_array_size(x: Any, name: str, *, owner: str) -> None:
    """Refuse an input whose logical size exceeds the memory available (a broadcast view of 10**12 values).

    An op reads every value of its input: a view that large would be copied (which cannot succeed) or
    walked value by value (for hours).

    Raises:
        ResourceError: naming the argument, its shape and its logical size.
    """
    nbytes = int(x.size) * int(x.itemsize)
    if nbytes < CHECK_FROM and not MEMORY_LIMIT.value():
        return
    available = available_bytes()
    if nbytes > available:
        raise ResourceError(
            f"{owner}: `{name}` of shape {_shape_text(x.shape)} holds {format_bytes(nbytes)} of values (a "
            f"broadcast or memory-mapped view?), more than the {format_bytes(available)} this process can still "
            "allocate; pass it in smaller pieces."
        )
