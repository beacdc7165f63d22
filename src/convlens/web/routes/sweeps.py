"""Experiments: sweep databases in ``--sweeps``, their ranked table (as ``convlens sweep report``), Pareto fronts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import Response

from convlens.web.routes import State, json_response
from convlens.web.store import trial_model_name

__all__ = ["router"]

router = APIRouter(prefix="/api/sweeps", tags=["experiments"])

DbName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}\.db$")]
_COSTS = ("params", "macs", "train_time")


@router.get("")
def databases(state: State) -> dict[str, Any]:
    """Sweep databases (``*.db`` with the sweep tables) in the sweeps folder."""
    return {"folder": str(state.sweeps.folder), "databases": state.sweeps.names()}


def _public(trial: dict[str, Any], saved: set[str]) -> dict[str, Any]:
    row = {k: v for k, v in trial.items() if k not in ("feature_png", "error")}
    row["has_png"] = trial.get("feature_png") is not None
    row["saved_model"] = (
        trial_model_name(trial["config_hash"]) if trial_model_name(trial["config_hash"]) in saved else None
    )
    return row


@router.get("/{db}")
def sweep(db: DbName, state: State) -> Response:
    """Every trial, ranked as ``convlens sweep report`` ranks them, the report's table text, and for each cost
    (params, MACs, train time) the ids on the Pareto front of test accuracy versus that cost."""
    from convlens.lab.sweep import report

    trials = state.sweeps.trials(db)
    ranked = report.ranked(trials)
    headers, rows = report.table(trials)
    ok = [t for t in ranked if t["status"] == "OK" and t.get("test_accuracy") is not None]
    fronts = {}
    for cost in _COSTS:
        points = [t for t in ok if t.get(cost) is not None]
        front = report.pareto_front([t[cost] for t in points], [t["test_accuracy"] for t in points])
        fronts[cost] = [points[i]["id"] for i in front]
    saved = set(state.models.names())
    return json_response(
        {
            "database": db,
            "sweeps": sorted({t["sweep_id"] for t in trials}),
            "headers": headers,
            "rows": rows,
            "trials": [_public(t, saved) for t in ranked],
            "fronts": fronts,
        }
    )


@router.get("/{db}/trials/{trial_id}/features.png")
def features(trial_id: int, db: DbName, state: State) -> Response:
    """The trial's first-layer feature maps (the PNG the sweep stored)."""
    png = state.sweeps.trial(db, trial_id).get("feature_png")
    if not png:
        raise HTTPException(404, f"trial {trial_id} of {db} has no feature-map picture (it did not train).")
    return Response(bytes(png), media_type="image/png")
