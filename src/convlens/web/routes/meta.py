"""What the page needs to start (version, folders, kernels, datasets) and images: test images, uploads."""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from convlens.web.routes import BINARY_BODY, State, json_response, read_capped

__all__ = ["MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "router"]

router = APIRouter(prefix="/api", tags=["meta"])

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096


@router.get("/info")
def info(state: State) -> dict[str, Any]:
    """Version, folders, named kernels, datasets, limits and the course model's status."""
    from convlens import __version__
    from convlens.lab import samples
    from convlens.lab.kernels import KERNELS
    from convlens.web import schemas
    from convlens.web.store import COURSE_MODEL

    return {
        "version": __version__,
        "models_dir": str(state.models.folder),
        "sweeps_dir": str(state.sweeps.folder),
        "kernels": {name: k.tolist() for name, k in KERNELS.items()},
        "datasets": [samples.describe(name) for name in samples.dataset_names()],
        "course_model": COURSE_MODEL,
        "course_ready": state.models.path(COURSE_MODEL).is_file(),
        "course_note": state.course_note,
        "limits": {
            "grid": schemas.MAX_GRID,
            "kernel": schemas.MAX_KERNEL,
            "image_bytes": MAX_IMAGE_BYTES,
            "image_pixels": MAX_IMAGE_PIXELS,
        },
    }


@router.get("/datasets/{name}/images/{index}")
def dataset_image(name: str, index: int) -> Response:
    """Test image ``index`` of a dataset, pixels / 255, as (H, W, C) lists, with its label."""
    from convlens.lab import samples

    x, label = samples.sample_image(name, index)
    info = samples.describe(name)
    names = info["class_names"]
    return json_response(
        {
            "dataset": name,
            "index": index,
            "label": label,
            "label_name": names[label] if names else str(label),
            "pixels": x.astype(float).tolist(),
            "description": f"{info['label']} test image {index} (label {label}), pixels / 255",
        }
    )


def _decode(data: bytes, height: int, width: int, channels: int, invert: str) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError

    from convlens.lab.viz.images import load_image

    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h = probe.size
            fmt = probe.format
    except (UnidentifiedImageError, OSError) as exc:
        raise HTTPException(422, f"the upload is not an image Pillow can read ({exc}).") from None
    if w * h > MAX_IMAGE_PIXELS:
        raise HTTPException(
            413, f"the image is {w}x{h} = {w * h:,} pixels; the limit is {MAX_IMAGE_PIXELS:,} (e.g. 4096x4096)."
        )
    fd, tmp = tempfile.mkstemp(prefix="convlens-upload-", suffix=f".{(fmt or 'img').lower()}")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        flag = None if invert == "auto" else invert == "yes"
        loaded = load_image(tmp, (height, width, channels), invert=flag)
    finally:
        os.unlink(tmp)
    description = loaded.description.replace(os.path.basename(tmp), f"upload ({fmt})")
    return {"pixels": loaded.array.astype(float).tolist(), "description": description}


@router.post(
    "/images",
    openapi_extra=BINARY_BODY,
)
async def upload_image(
    request: Request,
    height: int = Query(28, ge=1, le=64),
    width: int = Query(28, ge=1, le=64),
    channels: Literal[1, 3] = Query(1),
    invert: Literal["auto", "yes", "no"] = Query("auto"),
) -> dict[str, Any]:
    """Convert an uploaded PNG/JPEG (the raw bytes as the body) to (H, W, C) pixels / 255.

    Greyscale or RGB, resized bilinearly; ``invert=auto`` inverts a light-background picture (MNIST digits
    are light on black). At most 5 MiB and 16,777,216 pixels.
    """
    data = await read_capped(request, MAX_IMAGE_BYTES, "the image")
    return await run_in_threadpool(_decode, data, height, width, channels, invert)
