"""The one training job the server runs at a time, in a background thread, and its event log.

A :class:`~convlens.lab.live.LiveTraining` run hands its events to :meth:`JobSlot.record`: small events
(progress, epoch, state, done) are appended to a numbered log that any number of readers (server-sent
event streams, a status request after a page reload) read from a cursor; feature-map events are large,
so only the latest is kept. A second job while one is active is refused with a StateError (HTTP 409).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convlens.errors import StateError

__all__ = ["JobSlot"]


class JobSlot:
    """At most one training job, its thread and its events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.job: Any = None
        self.job_id = 0
        self.kind = ""
        self.autosave: Path | None = None
        self.saved_as: str | None = None
        self.thread: threading.Thread | None = None
        self.events: list[dict[str, Any]] = []
        self.maps: dict[str, Any] | None = None
        self.maps_seq = 0
        self.started = 0.0

    @property
    def active(self) -> bool:
        """Whether a job is loading, running, paused or stopping."""
        return self.job is not None and self.job.active

    def busy_message(self) -> str:
        """Why a new job cannot start now."""
        what = "the course model (first start)" if self.kind == "course" else f"job {self.job_id}"
        return (
            f"a training job is already {self.job.state}: {what}. One job runs at a time; stop it "
            "(POST /api/train/stop) or wait until it finishes."
        )

    def start(self, job: Any, *, kind: str = "user", autosave: Path | None = None,
              on_done: Callable[[Any], None] | None = None) -> int:  # fmt: skip
        """Run ``job`` (a LiveTraining) in a daemon thread; returns the job id.

        Raises:
            StateError: when a job is active.
        """
        with self._lock:
            if self.active:
                raise StateError(self.busy_message())
            self.job_id += 1
            self.job, self.kind, self.autosave, self.saved_as = job, kind, autosave, None
            self.events, self.maps, self.maps_seq = [], None, 0
            self.started = time.time()
            job.listener = self.record
            job_id = self.job_id
        self.thread = threading.Thread(target=self._run, args=(job, on_done), name=f"convlens-train-{job_id}",
                                       daemon=True)  # fmt: skip
        self.thread.start()
        return job_id

    def _run(self, job: Any, on_done: Callable[[Any], None] | None) -> None:
        job.run()
        if on_done is not None:
            on_done(job)

    def record(self, event: dict[str, Any]) -> None:
        """The job's listener: number and keep the event (the latest feature maps only)."""
        with self._lock:
            if event.get("type") == "maps":
                self.maps_seq += 1
                self.maps = {**event, "seq": self.maps_seq}
            else:
                self.events.append({**event, "seq": len(self.events)})

    def read(self, after: int, maps_seen: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None, bool]:
        """Events numbered above ``after``, the latest maps when newer than ``maps_seen``, and whether the job ended.

        The job counts as ended only after its ``done`` event is in the log.
        """
        with self._lock:
            events = [e for e in self.events if e["seq"] > after]
            maps = self.maps if self.maps is not None and self.maps["seq"] > maps_seen else None
            ended = bool(self.events) and self.events[-1].get("type") == "done"
        return events, maps, ended

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to redraw the job: id, kind, state, all small events, the latest maps."""
        with self._lock:
            if self.job is None:
                return {"job": None, "state": "idle"}
            return {
                "job": self.job_id,
                "kind": self.kind,
                "state": self.job.state,
                "started": self.started,
                "saved_as": self.saved_as,
                "events": list(self.events),
                "maps": self.maps,
            }

    def stop_and_wait(self, timeout: float = 5.0) -> None:
        """Stop the job (server shutdown) and wait a little for its thread."""
        if self.job is not None and self.job.active:
            self.job.stop(evaluate=False)
        if self.thread is not None:
            self.thread.join(timeout)
