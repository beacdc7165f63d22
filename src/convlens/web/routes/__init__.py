"""The API's routers, one module per tab (plus ``meta``: version, datasets, kernels, uploads of images)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response

from convlens.web.state import LabState

__all__ = ["BINARY_BODY", "State", "json_response", "json_safe", "lab", "read_capped"]


def lab(request: Request) -> LabState:
    """The application's shared state (a FastAPI dependency)."""
    state: LabState = request.app.state.lab
    return state


#: OpenAPI for a request whose body is a file's raw bytes (uploads are read with :func:`read_capped`).
BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}

#: A handler parameter that receives the shared state.
State = Annotated[LabState, Depends(lab)]


async def read_capped(request: Request, limit: int, what: str) -> bytes:
    """The raw request body, refused with 413 as soon as it exceeds ``limit`` bytes (header or stream)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(413, f"{what} is {int(length):,} bytes; the limit is {limit:,} bytes.")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"{what} is over {limit:,} bytes (the limit).")
        chunks.append(chunk)
    if total == 0:
        raise HTTPException(422, f"{what} is empty: send the file's bytes as the request body.")
    return b"".join(chunks)


def json_safe(value: Any) -> Any:
    """NaN and infinities (not JSON) as None, recursively."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def json_response(content: Any, status_code: int = 200) -> Response:
    """JSON written by ``json.dumps`` directly: large nested lists of floats (traces, feature maps) skip
    FastAPI's per-value ``jsonable_encoder`` walk, which costs more than computing them. NaN becomes null."""
    try:
        text = json.dumps(content, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(json_safe(content), separators=(",", ":"), allow_nan=False)
    return Response(text, status_code=status_code, media_type="application/json")
