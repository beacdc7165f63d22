"""The playground: one convolution or pooling traced step by step by :mod:`convlens.lab.explain`."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from fastapi import APIRouter, Response

from convlens.web.routes import json_response
from convlens.web.schemas import PlaygroundInput, PlaygroundRequest

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["playground"])


def _input(source: PlaygroundInput) -> tuple[np.ndarray, str]:
    """The input grid and where it came from; specs are built from validated numbers, never user text."""
    from convlens.lab import samples
    from convlens.lab.kernels import describe_input

    if source.kind == "numbers":
        return describe_input(source.numbers)
    if source.kind == "dataset":
        x, label = samples.sample_image(source.dataset, source.index)
        name = samples.describe(source.dataset)["label"]
        return x.mean(axis=-1).astype(np.float64), (
            f"{name} test image {source.index} (label {label}), pixels / 255"
            + (", channel mean" if x.shape[-1] > 1 else "")
        )
    return describe_input(f"{source.kind}:{source.height}x{source.width}", seed=source.seed)


def _padding(req: PlaygroundRequest) -> Any:
    if isinstance(req.padding, str):
        return req.padding
    p = req.padding
    return ((p.top, p.bottom), (p.left, p.right))


def _lean(trace: dict[str, Any]) -> dict[str, Any]:
    """A conv trace without each step's window: the page reads it on the padded input it already has."""
    if trace["kind"] == "conv":
        for step in trace["steps"]:
            del step["window"], step["real"]
    return trace


@router.post("/playground")
def playground(req: PlaygroundRequest) -> Response:
    """Trace the operation: every step's window, products (conv) or max/mean (pooling), and the output.

    Also returns the output-size formula with the request's numbers, "why this shape", the padding
    comparison (TensorFlow 'same' vs PyTorch k//2, plus explicit pads when given) and, when asked, the
    backward trace (conv: the input gradient as a full convolution with the flipped kernel; pooling: the
    gradient routed back). Steps omit the partial maps (step ``p`` has written output cells ``0..p``), and a
    convolution's steps their window (``padded`` at the step's taps).
    """
    from convlens.lab import explain, explain_backward, padding_compare
    from convlens.lab.arithmetic import explain_geometry
    from convlens.lab.render_explain import output_formula

    x, description = _input(req.input)
    padding = _padding(req)
    trace: Any
    if req.op == "conv":
        trace = explain.convolution(
            x, req.kernel, strides=req.strides, padding=padding, dilation_rate=req.dilation_rate, bias=req.bias
        )
    else:
        trace = explain.pooling(x, pool_size=req.pool_size, strides=req.strides, padding=padding, kind=req.op)
    trace = dataclasses.replace(trace, source=description)
    geometry = trace.geometry
    traced = _lean(trace.to_dict(include_maps=False))
    out: dict[str, Any] = {
        "trace": traced,
        "formula": output_formula(geometry),
        "why": explain_geometry(geometry),
        "comparison": None,
        "backward": None,
    }
    if req.compare and req.op == "conv":
        explicit = padding if isinstance(padding, tuple) else None
        comparison = padding_compare.compare(
            x.shape, trace.kernel.shape, req.strides, req.dilation_rate, explicit=explicit, input=x, kernel=trace.kernel
        )
        out["comparison"] = comparison.to_dict()
    if req.backward:
        backward: Any
        if req.op == "conv":
            backward = explain_backward.convolution_backward(
                x.shape, trace.kernel, strides=req.strides, padding=padding, dilation_rate=req.dilation_rate
            )
            out["backward"] = backward.to_dict(include_maps=False)
            _lean(out["backward"]["trace"])
        else:
            backward = explain_backward.pooling_backward(
                x, pool_size=req.pool_size, strides=req.strides, padding=padding, kind=req.op
            )
            out["backward"] = backward.to_dict()
    return json_response(out)
