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

import ctypes
import os

__all__ = ["TIMEOUT", "loaded_openblas", "retime_loaded_openblas"]

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
