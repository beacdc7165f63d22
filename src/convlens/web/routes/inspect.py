"""The inspector: model files, and a model's numbers for one input (:mod:`convlens.lab.inspect`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from convlens.web.routes import BINARY_BODY, State, json_response, read_capped
from convlens.web.schemas import AttributionRequest, ForwardRequest, ImageInput, ModelRef, UnitRequest
from convlens.web.state import LabState

__all__ = ["MAX_MODEL_BYTES", "router"]

router = APIRouter(prefix="/api", tags=["inspector"])

MAX_MODEL_BYTES = 50 * 1024 * 1024


def _describe(state: LabState, name: str) -> dict[str, Any]:
    path = state.models.path(name)
    stat = path.stat()
    entry: dict[str, Any] = {"name": name, "bytes": stat.st_size, "modified": stat.st_mtime}
    try:
        loaded = state.models.load(name)
    except ValueError as exc:  # a convlens error: listed with its reason, not hidden
        return {**entry, "error": str(exc)}
    model = loaded.model
    history = model.history.history if model.history is not None else {}
    return {
        **entry,
        "input_shape": list(model.input_shape[1:]),
        "params": int(model.count_params()),
        "layers": [f"{layer.name} ({type(layer).__name__})" for layer in model.layers],
        "epochs": len(history.get("loss", [])),
        "history": history,
    }


@router.get("/models")
def models(state: State) -> dict[str, Any]:
    """The model files in the models folder (the course model first) and the course model's status."""
    from convlens.web.store import COURSE_MODEL

    return {
        "folder": str(state.models.folder),
        "models": [_describe(state, name) for name in state.models.names()],
        "course_model": COURSE_MODEL,
        "course_training": state.jobs.active and state.jobs.kind == "course",
    }


@router.post(
    "/models",
    status_code=201,
    openapi_extra=BINARY_BODY,
)
async def upload_model(
    request: Request,
    state: State,
    name: str = Query(..., min_length=5, max_length=84, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.npz$"),
    overwrite: bool = Query(False),
) -> dict[str, Any]:
    """Add a model file (the ``.npz`` bytes as the body, at most 50 MiB); it must load, or nothing is kept."""
    data = await read_capped(request, MAX_MODEL_BYTES, "the model file")
    await run_in_threadpool(state.models.add_upload, name, data, overwrite=overwrite)
    return await run_in_threadpool(_describe, state, name)


def _pixels(req: ImageInput) -> tuple[np.ndarray, str]:
    from convlens.lab import samples

    if req.kind == "dataset":
        x, label = samples.sample_image(req.dataset, req.index)
        return x, f"{samples.describe(req.dataset)['label']} test image {req.index} (label {label})"
    arr = np.asarray(req.pixels, dtype=np.float32)
    return arr, f"pixels {'x'.join(str(s) for s in arr.shape)}"


def _model_info(loaded: Any) -> dict[str, Any]:
    return {"source": loaded.source, "trained": loaded.trained, "model_note": loaded.note}


@router.get("/models/{ref}/summary")
def summary(ref: ModelRef, state: State) -> Response:
    """The detailed summary (``convlens summary --detail --format json``): formulas, MACs, receptive fields."""
    from convlens.lab import inspect

    loaded = state.resolver.get(ref)
    return json_response({**_model_info(loaded), **inspect.summary(loaded.model)})


@router.get("/models/{ref}/filters")
def filters(ref: ModelRef, state: State) -> Response:
    """Every conv layer's kernels as (F, C, KH, KW) lists and the symmetric colour bound."""
    from convlens.lab import inspect

    loaded = state.resolver.get(ref)
    return json_response({**_model_info(loaded), **inspect.filters(loaded.model)})


@router.post("/forward")
def forward(req: ForwardRequest, state: State) -> Response:
    """Class probabilities (``model.predict``) and every layer's feature maps for one input."""
    from convlens.lab import inspect

    loaded = state.resolver.get(req.model)
    x, description = _pixels(req.input)
    with loaded.lock:
        result = inspect.forward(loaded.model, x)
    return json_response({**_model_info(loaded), "description": description, **result})


@router.post("/unit")
def unit(req: UnitRequest, state: State) -> Response:
    """One unit: its receptive field on the input and the dot product (or max/mean) behind its value."""
    from convlens.lab import inspect

    loaded = state.resolver.get(req.model)
    x, _ = _pixels(req.input)
    with loaded.lock:
        return json_response(inspect.unit(loaded.model, x, req.layer, tuple(req.index)))


@router.post("/attributions")
def attributions(req: AttributionRequest, state: State) -> Response:
    """Saliency and Grad-CAM of one class (default: the predicted one), from :mod:`convlens.lab.viz`."""
    from convlens.lab import inspect

    loaded = state.resolver.get(req.model)
    x, _ = _pixels(req.input)
    with loaded.lock:
        return json_response(inspect.attributions(loaded.model, x, req.class_index))
