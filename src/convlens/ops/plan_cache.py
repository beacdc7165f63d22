"""The plans a layer keeps, one per recent input shape.

A layer builds a plan (geometry, algorithm choice, scratch buffers) for each input shape it sees. A training
epoch ends on a smaller batch, and ``predict`` runs pieces of two sizes (see :mod:`convlens.inference`), at
the same time on several threads; keeping only the last shape's plan would rebuild plans (and refault their
buffers) over and over: 20-96 rebuilds per 10,000-image predict on the zoo models (benchmarks/zoo.py), where
this cache builds each once.

>>> plans = ShapePlans(size=2)
>>> built = []
>>> def build(shape):
...     built.append(shape)
...     return f"plan{shape}"
>>> [plans.get(s, lambda s=s: build(s)) for s in [(8, 3), (2, 3), (8, 3)]]
['plan(8, 3)', 'plan(2, 3)', 'plan(8, 3)']
>>> built
[(8, 3), (2, 3)]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ShapePlans"]

P = TypeVar("P")


class ShapePlans(Generic[P]):
    """At most ``size`` plans by key (an input shape); the oldest goes when a new one comes. Thread-safe."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._plans: dict[Hashable, P] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], P]) -> P:
        """The plan for ``key``, from ``build()`` the first time (or again after it was dropped)."""
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        plan = build()
        with self._lock:
            while len(self._plans) >= self.size:
                del self._plans[next(iter(self._plans))]
            return self._plans.setdefault(key, plan)

    def __len__(self) -> int:
        return len(self._plans)

    def clear(self) -> None:
        """Drop every plan."""
        with self._lock:
            self._plans.clear()

    def __deepcopy__(self, memo: dict[int, object]) -> ShapePlans[P]:
        """A copied layer starts with no plans (they are a cache; a lock cannot be copied)."""
        return ShapePlans(self.size)

    def __getstate__(self) -> dict[str, int]:
        return {"size": self.size}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(state["size"])  # type: ignore[misc]
