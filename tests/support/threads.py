"""What this machine's thread set-up allows (for tests of the whole-model and data-parallel splits)."""

from __future__ import annotations


def expected_split_threads() -> int:
    """2 where this machine's threads may each launch compiled kernels (or none run) and BLAS's thread count
    can be set; else 1 (see :func:`convlens.inference.split_threads`)."""
    from convlens import blas_threads
    from convlens.ops import jit

    if not blas_threads.can_limit():
        return 1
    return 2 if not jit.jit_enabled() or jit.threadsafe_launches() else 1
