"""What the API's handlers share (:class:`LabState`): its own module, so the routers and the app both import it
and neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field

from convlens.web.jobs import JobSlot
from convlens.web.store import ModelResolver, ModelStore, SweepStore

__all__ = ["LabState"]


@dataclass
class LabState:
    """What the handlers share: the folders, the loaded models, the training slot."""

    models: ModelStore
    sweeps: SweepStore
    jobs: JobSlot = field(default_factory=JobSlot)
    train_course: bool = True
    shutting_down: bool = False
    course_note: str = ""
    resolver: ModelResolver = field(init=False)

    def __post_init__(self) -> None:
        self.resolver = ModelResolver(self.models, self.sweeps)

    def begin_shutdown(self) -> None:
        """The server is stopping (Ctrl-C): end event streams at their next poll and stop the training job.

        Call it from the signal handler, before the server waits for open connections to close.
        """
        self.shutting_down = True
        if self.jobs.active:
            self.jobs.job.stop(evaluate=False)
