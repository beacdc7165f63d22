"""A model's numbers for one input as plain data: predictions, every feature map, one unit's dot product.

What the page's inspector (and a notebook widget) draws, computed by the lab's existing machinery and
returned as JSON-ready dicts, never pixels:

* :func:`forward`: the class probabilities (``model.predict``, the fused fast path, so they equal what
  a user's own ``predict`` call gives) and each layer's output for the same input
  (:func:`convlens.lab.viz.activations.layer_outputs`, layer by layer), with per-layer and per-map ranges;
* :func:`unit`: one output unit of one layer: its receptive field on the input (from
  :func:`convlens.lab.arithmetic.model_stats`) and how its value was computed: the window, the kernel,
  the element-wise products and their sum (conv), the window and its max/mean (pooling), the largest
  contributions ``x_i * w_i`` (dense);
* :func:`summary`: the detailed summary (:func:`convlens.lab.summary.render` as JSON);
* :func:`filters`: every conv layer's kernels;
* :func:`attributions`: saliency, HiResCAM and Grad-CAM (:func:`convlens.lab.viz.saliency`,
  :func:`~convlens.lab.viz.gradcam`).

>>> from convlens.course import build_course_model
>>> from convlens.utils import set_random_seed
>>> set_random_seed(0)
>>> model = build_course_model()
>>> x = np.zeros((28, 28, 1), np.float32)
>>> d = unit(model, x, 1, (3, 4, 5))  # layer 1: the max pooling
>>> d["receptive_field"]["rows"], d["receptive_field"]["cols"]
([5, 8], [7, 10])
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from convlens.errors import ConfigError, ShapeError
from convlens.geometry import WindowGeometry

__all__ = ["attributions", "filters", "forward", "receptive_box", "summary", "unit"]

#: Vectors longer than this are not sent (a Flatten output repeats the layer before it).
MAX_VECTOR = 1024


def _grid(a: np.ndarray) -> list[Any]:
    """Nested lists of Python floats (exact float32 values)."""
    return np.asarray(a, dtype=np.float64).tolist()  # type: ignore[no-any-return]


def _as_input(model: Any, x: Any) -> np.ndarray:
    from convlens.lab.viz.images import model_input

    return model_input(model, x).x


def _layer_entry(name: str, class_name: str, out: np.ndarray) -> dict[str, Any]:
    arr = out[0]
    entry: dict[str, Any] = {"name": name, "class_name": class_name, "shape": list(arr.shape)}
    if arr.ndim == 3:
        entry["kind"] = "maps"
        entry["maps"] = _grid(np.moveaxis(arr, -1, 0))  # (C, H, W): one 2-D grid per map
        entry["min"], entry["max"] = float(arr.min()), float(arr.max())
        entry["map_min"] = _grid(arr.min(axis=(0, 1)))
        entry["map_max"] = _grid(arr.max(axis=(0, 1)))
    elif arr.ndim == 1 and arr.size <= MAX_VECTOR:
        entry["kind"] = "vector"
        entry["values"] = _grid(arr)
        entry["min"], entry["max"] = float(arr.min()), float(arr.max())
    else:
        entry["kind"] = "omitted"
        entry["note"] = f"{arr.size:,} values, not sent (more than {MAX_VECTOR})"
    return entry


def forward(model: Any, x: Any) -> dict[str, Any]:
    """Probabilities and every layer's output for one input.

    Args:
        model: a built ``Sequential`` taking images (None, H, W, C).
        x: one image, (H, W, C) or (H, W) for one channel, values as the model was trained on.

    Returns:
        ``{"input": (H, W, C) lists, "output": (classes,), "predicted": int, "layers": [...]}``; each layer
        has ``name``, ``class_name``, ``shape`` and, for (H, W, C) outputs, ``maps`` as (C, H, W) nested lists
        with ``min``/``max`` (the shared colour scale) and ``map_min``/``map_max`` (per map). A Flatten output
        is marked ``same_as`` the layer before it (the same numbers in (H, W, C) order).

    Shapes:
        x: (H, W, C); maps: (C, OH, OW) per spatial layer; output: (classes,).
    """
    from convlens.lab.viz.activations import layer_outputs

    given = _as_input(model, x)
    outputs = layer_outputs(model, given)
    probabilities = np.asarray(model.predict(given, verbose=0))[0]
    layers = []
    previous: str | None = None
    for layer in model.layers:
        out = outputs[layer.name]
        if type(layer).__name__ == "Flatten" and previous is not None:
            layers.append(
                {"name": layer.name, "class_name": "Flatten", "shape": list(out.shape[1:]), "kind": "same_as",
                 "same_as": previous}
            )  # fmt: skip
        else:
            layers.append(_layer_entry(layer.name, type(layer).__name__, out))
        previous = layer.name
    return {
        "input": _grid(given[0]),
        "input_shape": list(given.shape[1:]),
        "output": _grid(probabilities),
        "predicted": int(np.argmax(probabilities)),
        "layers": layers,
    }


def _layer_index(model: Any, layer: str | int) -> int:
    from convlens.lab.viz.activations import find_layer

    return find_layer(model, layer)


def receptive_box(stats: Any, index: tuple[int, ...], input_size: tuple[int, ...]) -> dict[str, Any]:
    """The input rows and columns a unit at spatial ``index`` sees, from a layer's field, jump and start.

    Per axis the field is centred at ``start + index * jump`` and spans ``receptive_field`` pixels; the box
    is clipped to the input (``clipped`` says whether it was). Units without spatial axes (after Flatten)
    see ``stats.receptive_field`` of the input, reported as the whole input box.

    Shapes:
        index: (row, col); returns rows/cols as inclusive ``[first, last]`` input coordinates.
    """
    if not stats.jump:
        return {
            "rows": [0, input_size[0] - 1],
            "cols": [0, input_size[1] - 1],
            "size": list(stats.receptive_field),
            "clipped": False,
            "whole_input": True,
        }
    spans = []
    clipped = False
    for axis in range(2):
        centre = stats.start[axis] + index[axis] * stats.jump[axis]
        half = (stats.receptive_field[axis] - 1) / 2
        first, last = round(centre - half), round(centre + half)
        clipped = clipped or first < 0 or last > input_size[axis] - 1
        spans.append([max(first, 0), min(last, input_size[axis] - 1)])
    return {
        "rows": spans[0],
        "cols": spans[1],
        "size": list(stats.receptive_field),
        "unclipped_first": [
            round(stats.start[a] + index[a] * stats.jump[a] - (stats.receptive_field[a] - 1) / 2) for a in range(2)
        ],
        "clipped": clipped,
        "whole_input": False,
    }


def _window(
    layer_input: np.ndarray, geometry: Any, spatial: tuple[int, int], fill: float
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The (KH, KW, C) taps of the window at ``spatial`` (``fill`` on padding) and the (KH, KW) real mask."""
    kh, kw = geometry.kernel_size
    dh, dw = geometry.dilation_rate
    top, left = geometry.window_start(spatial)
    height, width, channels = layer_input.shape
    window = np.full((kh, kw, channels), fill, dtype=np.float64)
    real = np.zeros((kh, kw), dtype=bool)
    for a in range(kh):
        for b in range(kw):
            r, c = top + a * dh, left + b * dw
            if 0 <= r < height and 0 <= c < width:
                window[a, b] = layer_input[r, c]
                real[a, b] = True
    return window, real, [int(top), int(left)]


def _check_index(shape: tuple[int, ...], index: tuple[int, ...], name: str) -> tuple[int, ...]:
    if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape, strict=True)):
        raise ShapeError(f"inspect: `index` for layer '{name}' must lie inside its output {shape}, got {index}.")
    return tuple(int(i) for i in index)


def unit(model: Any, x: Any, layer: str | int, index: Any, *, top: int = 12) -> dict[str, Any]:
    """How one output unit got its value, and which input pixels it sees.

    Args:
        model: a built ``Sequential`` taking images.
        x: the input image (H, W, C).
        layer: a layer name or index.
        index: the unit: ``(row, col, channel)`` for a spatial output, ``(i,)`` for a vector.
        top: how many of a dense unit's largest contributions to list.

    Returns:
        ``value`` (the layer's output there), ``receptive_field`` (see :func:`receptive_box`) and ``kind``:
        ``'conv'`` (``window``, ``kernel``, ``products`` (KH, KW, C/groups), ``real``, ``sum``, ``bias``,
        ``pre_activation``, ``activation``), ``'pool'`` (``window``, ``real``, ``pool``, ``argmax``), ``'dense'``
        (``top`` contributions with their flat index, ``sum``, ``bias``, ``pre_activation``) or ``'other'``.
        Sums are in float64; ``value`` is the engine's float32 output.

    Shapes:
        conv window/kernel/products: (KH, KW, C // groups); pool window: (KH, KW).
    """
    from convlens import layers as lyr
    from convlens.lab.arithmetic import model_stats
    from convlens.lab.viz.activations import layer_outputs

    given = _as_input(model, x)
    position = _layer_index(model, layer)
    target = model.layers[position]
    outputs = layer_outputs(model, given)
    out = outputs[target.name][0]
    idx = _check_index(out.shape, tuple(int(i) for i in np.atleast_1d(index)), target.name)
    layer_input = given[0] if position == 0 else outputs[model.layers[position - 1].name][0]
    stats = model_stats(model)[position]
    input_size = tuple(int(s) for s in given.shape[1:3])
    detail: dict[str, Any] = {
        "layer": target.name,
        "class_name": type(target).__name__,
        "index": list(idx),
        "value": float(out[idx]),
        "receptive_field": receptive_box(stats, idx[:2] if out.ndim == 3 else (), input_size),
        "kind": "other",
    }
    if isinstance(target, lyr.Conv2D) and target.data_format == "channels_last" and out.ndim == 3:
        geometry = target.geometry((None, *layer_input.shape))
        window, real, start = _window(layer_input, geometry, (idx[0], idx[1]), 0.0)
        filt = idx[2]
        group_size = layer_input.shape[-1] // target.groups
        group = filt // (target.filters // target.groups)
        window = window[..., group * group_size : (group + 1) * group_size]
        kernel = np.asarray(target.params["kernel"][..., filt], dtype=np.float64)
        bias = float(target.params["bias"][filt]) if target.use_bias else 0.0
        products = window * kernel
        total = float(products.sum())
        pre = total + bias
        detail.update(
            kind="conv",
            window=_grid(window),
            kernel=_grid(kernel),
            products=_grid(products),
            real=real.tolist(),
            window_start=start,
            channels=[group * group_size, (group + 1) * group_size - 1],
            sum=total,
            bias=bias,
            pre_activation=pre,
            activation=target.activation.name,
            activated=float(target.activation.forward(np.array([pre]))[0]),
            dilation_rate=list(geometry.dilation_rate),
        )
    elif isinstance(target, (lyr.MaxPooling2D, lyr.AveragePooling2D)) and out.ndim == 3:
        geometry = WindowGeometry.resolve(
            layer_input.shape[:2], target.pool_size, target.strides, target.padding, owner=repr(target)
        )
        window, real, start = _window(layer_input[..., idx[2] : idx[2] + 1], geometry, (idx[0], idx[1]), np.nan)
        values = window[..., 0]
        detail.update(kind="pool", pool=target.kind, window=_nan_grid(values), real=real.tolist(), window_start=start)
        if target.kind == "max":
            flat = np.where(real, values, -np.inf).reshape(-1)
            a, b = divmod(int(np.argmax(flat)), geometry.kernel_size[1])
            detail["argmax"] = [a, b]
            detail["result"] = float(flat.max())
        else:
            detail["count"] = int(real.sum())
            detail["result"] = float(values[real].sum() / real.sum())
    elif isinstance(target, lyr.Dense) and out.ndim == 1:
        flat = np.asarray(layer_input, dtype=np.float64).reshape(-1)
        weights = np.asarray(target.params["kernel"][:, idx[0]], dtype=np.float64)
        contributions = flat * weights
        bias = float(target.params["bias"][idx[0]]) if target.use_bias else 0.0
        order = np.argsort(-np.abs(contributions), kind="stable")[:top]
        total = float(contributions.sum())
        detail.update(
            kind="dense",
            inputs=int(flat.size),
            input_shape=list(layer_input.shape),
            top=[
                {"index": int(i), "x": float(flat[i]), "w": float(weights[i]), "product": float(contributions[i])}
                for i in order
            ],
            sum=total,
            bias=bias,
            pre_activation=total + bias,
            activation=target.activation.name,
        )
        source = model.layers[position - 1] if position > 0 else None
        if source is not None and type(source).__name__ == "Flatten" and position >= 2:
            spatial = outputs[model.layers[position - 2].name][0]
            if spatial.ndim == 3:
                detail["source_shape"] = list(spatial.shape)
                detail["contribution_map"] = _grid(contributions.reshape(spatial.shape).sum(axis=-1))
    return detail


def _nan_grid(a: np.ndarray) -> list[Any]:
    return [[None if np.isnan(v) else float(v) for v in row] for row in a]


def summary(model: Any) -> dict[str, Any]:
    """The detailed summary as data: every layer's numbers, totals and the footnote.

    It is :func:`convlens.lab.summary.render` with ``fmt='json'`` (so the page shows what
    ``convlens summary --detail --format json`` prints), decoded.
    """
    from convlens.lab.summary import render

    return json.loads(render(model, fmt="json"))  # type: ignore[no-any-return]


def filters(model: Any, *, max_filters: int = 64, max_channels: int = 16) -> dict[str, Any]:
    """Every conv layer's kernels as (F, C, KH, KW) nested lists, with the symmetric colour bound.

    Shapes:
        kernel (KH, KW, C, F) -> kernels (min(F, max_filters), min(C, max_channels), KH, KW).
    """
    layers = []
    for layer in model.layers:
        kernel = layer.params.get("kernel")
        if kernel is None or kernel.ndim != 4:
            continue
        shown = kernel[:, :, :max_channels, :max_filters]
        layers.append(
            {
                "name": layer.name,
                "shape": list(kernel.shape),
                "kernels": _grid(np.transpose(shown, (3, 2, 0, 1))),
                "bound": float(np.abs(kernel).max()),
                "shown": [int(shown.shape[3]), int(shown.shape[2])],
            }
        )
    if not layers:
        raise ConfigError(f"inspect: {model!r} has no conv layer with a (KH, KW, C, F) kernel.")
    return {"layers": layers}


def attributions(model: Any, x: Any, class_index: int | None = None) -> dict[str, Any]:
    """Saliency, HiResCAM and Grad-CAM of one class for one input: the numbers :mod:`convlens.lab.viz` draws.

    Returns ``saliency`` (H, W); ``cams``: for each method (HiResCAM first, the viz default) its map at the
    layer's size (``small``) and nearest-upsampled to the input (``map``), and why it is all zero when it is;
    ``layer``, Grad-CAM's channel ``weights``, the differentiated ``score`` and a one-line ``describe``.

    Shapes:
        saliency (H, W); cams[m]["small"] (h, w); cams[m]["map"] (H, W); weights (F,).
    """
    from convlens.lab import viz
    from convlens.lab.viz.gradcam import upsample_nearest

    given = _as_input(model, x)[0]
    sal = viz.saliency(model, given, class_index=class_index)
    cam = viz.gradcam(model, given, class_index=sal.class_index)
    height, width = given.shape[:2]
    cams = {}
    for method, small in (("hirescam", cam.hirescam_small), ("gradcam", cam.gradcam_small)):
        cams[method] = {
            "small": _grid(small),
            "map": _grid(upsample_nearest(small, height, width)),
            "zero_reason": cam.zero_reasons.get(method),
        }
    return {
        "class_index": sal.class_index,
        "saliency": _grid(sal.saliency),
        "cams": cams,
        "method": cam.method,
        "layer": cam.layer,
        "weights": _grid(cam.weights),
        "score": cam.score,
        "describe": cam.describe(),
    }
