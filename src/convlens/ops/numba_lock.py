"""The lock around Numba's first import, shared by every module that imports it (:mod:`convlens.ops.jit` and
:mod:`convlens.ops.handoff`'s spin-waits). Two threads importing Numba at once fail: Python's import-deadlock
detection hands one of them Numba's partly initialised modules (``AttributeError: partially initialized module
'numba.core.types'``), as when two pieces of a split ``predict`` each reached their first kernel.
"""

from __future__ import annotations

import threading

__all__ = ["NUMBA_IMPORT_LOCK"]

NUMBA_IMPORT_LOCK = threading.Lock()
