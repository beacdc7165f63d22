"""OpenBLAS's idle-thread spinning, tamed whatever the import order.

OpenBLAS's worker threads spin for about 2^28 cycles after every GEMM and compete with the compiled kernels
that run between GEMMs (Winograd transforms, pooling); ``OPENBLAS_THREAD_TIMEOUT=12`` (2^12 cycles) removes
that without slowing GEMMs. OpenBLAS reads the variable when it loads, so ``import convlens`` sets it when
NumPy is not loaded yet. When NumPy came first, :func:`retime_loaded_openblas` sets it anyway and makes the
loaded OpenBLAS read it again: ``openblas_read_env()``, then ``blas_thread_shutdown_()`` (the next GEMM starts
the threads again, with the new timeout). Both are exported by the OpenBLAS NumPy ships (and by OpenBLAS
builds in general); where they are not, nothing happens. Measured: the (128, 14x14, 32->64) and
(32, 56x56, 64->64) convolutions, fwd+bwd, NumPy imported first: 23.6 and 137 ms without this, within noise
of convlens first (21.6 and 116 ms) with it.

A user's own ``OPENBLAS_THREAD_TIMEOUT`` always wins.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["TIMEOUT", "can_limit", "loaded_openblas", "one_blas_thread", "retime_loaded_openblas"]

#: log2 of the cycles OpenBLAS's idle threads spin before sleeping (OpenBLAS's own default: 28).
TIMEOUT = "12"


def loaded_openblas() -> str | None:
    """The path of the OpenBLAS library this process has loaded (None: none, or not Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if line.strip() else ""
                if "openblas" in os.path.basename(path).lower() and ".so" in path:
                    return path
    except OSError:
        return None
    return None


def retime_loaded_openblas() -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` (unless set) and make an already loaded OpenBLAS use it; True if done."""
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return False
    path = loaded_openblas()
    if path is None:
        return False
    try:
        library = ctypes.CDLL(path)  # the loaded library (dlopen of a loaded path returns it)
        read_env, shutdown = library.openblas_read_env, library.blas_thread_shutdown_
    except (OSError, AttributeError):
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = TIMEOUT
    read_env()
    shutdown()
    return True


_LIMIT_LOCK = threading.RLock()  # one thread-split region at a time sets and restores the count (re-entrant)
_THREAD_CONTROLS: tuple[Any, Any] | bool | None = False  # False: not looked up yet; None: not available


def _thread_controls() -> tuple[Any, Any] | None:
    """OpenBLAS's ``(set_num_threads, get_num_threads)`` of the loaded library (None: not found)."""
    global _THREAD_CONTROLS
    if _THREAD_CONTROLS is False:
        _THREAD_CONTROLS = None
        path = loaded_openblas()
        if path is not None:
            try:
                library = ctypes.CDLL(path)
            except OSError:
                library = None
            for prefix, suffix in (("", ""), ("scipy_", "64_"), ("scipy_", ""), ("", "64_")):
                setter = getattr(library, f"{prefix}openblas_set_num_threads{suffix}", None)
                getter = getattr(library, f"{prefix}openblas_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                    _THREAD_CONTROLS = (setter, getter)
                    break
    return _THREAD_CONTROLS if isinstance(_THREAD_CONTROLS, tuple) else None


def can_limit() -> bool:
    """Whether :func:`one_blas_thread` can limit the loaded BLAS to one thread (OpenBLAS found)."""
    return _thread_controls() is not None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[bool]:
    """Context manager: every BLAS call runs on its caller's thread only (yields False when that cannot be set).

    For code that splits work over threads of its own and calls BLAS from each: OpenBLAS's own threads would
    otherwise wait for each other's calls. The previous thread count comes back on exit.
    """
    controls = _thread_controls()
    if controls is None:
        yield False
        return
    setter, getter = controls
    with _LIMIT_LOCK:
        before = getter()
        setter(1)
        try:
            yield True
        finally:
            setter(before)
