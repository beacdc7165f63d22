"""What this machine's thread set-up allows (for tests of the whole-model and data-parallel splits)."""

from __future__ import annotations


def expected_split_threads() -> int:
    """2 where BLAS's thread count can be set; else 1 (see :func:`convlens.inference.split_threads`)."""
    from convlens import blas_threads

    return 2 if blas_threads.can_limit() else 1
