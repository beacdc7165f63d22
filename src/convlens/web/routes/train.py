"""Live training: start, pause, resume, stop, save, and the event stream (server-sent events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from convlens.errors import StateError
from convlens.web.routes import State, json_response, json_safe
from convlens.web.schemas import SaveRequest, TrainRequest
from convlens.web.state import LabState

__all__ = ["router"]

router = APIRouter(prefix="/api/train", tags=["train"])

POLL_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0


@router.post("", status_code=202)
def start(req: TrainRequest, state: State) -> dict[str, Any]:
    """Start a run in the background (409 while another runs). The model is built first, so an
    architecture that cannot exist (a kernel larger than its input map) is a 422 at once."""
    from convlens.lab.live import LiveTraining
    from convlens.lab.sweep.grid import TrialConfig

    if state.jobs.active:
        raise StateError(state.jobs.busy_message())
    config = TrialConfig.from_dict(req.trial_config())
    job = LiveTraining(config, spec=req.spec, validation_split=req.validation_split)
    job_id = state.jobs.start(job)
    return {"job": job_id, "state": job.state, "config": config.to_dict(), "config_hash": config.config_hash()}


@router.get("")
def status(state: State) -> Response:
    """The current (or last) job: id, kind, state, every small event so far and the latest feature maps."""
    return json_response(state.jobs.snapshot())


def _control(state: LabState, action: str) -> dict[str, Any]:
    job = state.jobs.job
    if job is None or not job.active:
        raise StateError(f"there is no active training job to {action}; start one with POST /api/train.")
    getattr(job, action)()
    return {"job": state.jobs.job_id, "state": job.state}


@router.post("/pause")
def pause(state: State) -> dict[str, Any]:
    """Pause after the current batch."""
    return _control(state, "pause")


@router.post("/resume")
def resume(state: State) -> dict[str, Any]:
    """Resume a paused job."""
    return _control(state, "resume")


@router.post("/stop")
def stop(state: State) -> dict[str, Any]:
    """Stop after the current batch; the model trained so far is evaluated and can be saved."""
    return _control(state, "stop")


@router.post("/save")
def save(req: SaveRequest, state: State) -> dict[str, Any]:
    """Save the last job's model (finished or stopped) into the models folder; open it in the inspector."""
    job = state.jobs.job
    if job is None or job.state not in ("finished", "stopped"):
        what = "no job has run yet" if job is None else f"the job is {job.state}"
        raise StateError(f"nothing to save: {what}; save after a run finishes or is stopped.")
    path = state.models.path(req.name)
    if path.exists() and not req.overwrite:
        raise StateError(f"a model named {req.name!r} exists already; choose another name or overwrite it.")
    state.models.save(job.model, req.name)
    state.jobs.saved_as = req.name
    return {"name": req.name, "path": str(path)}


def _sse(event: dict[str, Any], name: str, ident: str | None = None) -> str:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(json_safe(event), separators=(',', ':'))}\n\n"


@router.get("/events")
async def events(
    request: Request,
    state: State,
    job: int | None = Query(None, description="the job to follow (default: the current one)"),
    after: int = Query(-1, ge=-1, description="send events numbered above this"),
) -> StreamingResponse:
    """Server-sent events of a job: ``progress``, ``epoch``, ``state``, ``maps`` (latest only), ``done``;
    then ``end``. Reconnecting with ``Last-Event-ID`` (``JOB:SEQ``) resumes after the last event seen."""
    last = request.headers.get("last-event-id", "")
    if ":" in last:
        head, _, tail = last.partition(":")
        if head.isdigit() and tail.lstrip("-").isdigit():
            job, after = int(head), int(tail)
    slot = state.jobs
    wanted = slot.job_id if job is None else job

    async def stream() -> AsyncIterator[str]:
        cursor, maps_seen, quiet = after, 0, 0.0
        yield "retry: 2000\n\n"
        while True:
            if slot.job_id != wanted or slot.job is None:
                yield _sse({"job": wanted, "reason": "no such job (a newer one started, or none ran)"}, "end")
                return
            batch, maps, ended = slot.read(cursor, maps_seen)
            for event in batch:
                cursor = event["seq"]
                yield _sse(event, event["type"], f"{wanted}:{cursor}")
            if maps is not None:
                maps_seen = maps["seq"]
                yield _sse(maps, "maps")
            if ended and not batch:
                yield _sse({"job": wanted}, "end")
                return
            if state.shutting_down or await request.is_disconnected():
                return
            quiet = 0.0 if batch or maps is not None else quiet + POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
