"""FeatureMapExplorer: a model's feature maps over layers and images; a clicked unit's receptive field and sum.

>>> import numpy as np
>>> from convlens.course import build_course_model
>>> from convlens.utils import set_random_seed
>>> set_random_seed(0)
>>> explorer = FeatureMapExplorer(build_course_model(), np.zeros((2, 28, 28, 1), np.float32))
>>> explorer.view["layer"]["class_name"], explorer.view["layer"]["shape"]
('Conv2D', [28, 28, 32])
>>> explorer.unit = [3, 4, 5]
>>> explorer.unit_detail["kind"], explorer.unit_detail["receptive_field"]["rows"]
('conv', [2, 4])
"""

from __future__ import annotations

from typing import Any

import anywidget
import numpy as np
import traitlets as t

from convlens.errors import ConfigError, ConvlensError, ShapeError
from convlens.lab import inspect
from convlens.lab.viz.activations import find_layer
from convlens.widgets._assets import widget_css, widget_esm

__all__ = ["FeatureMapExplorer"]

_OWNER = "FeatureMapExplorer"
SCALES = ("shared", "per-map")


def _images(model: Any, images: Any) -> np.ndarray:
    """(N, H, W, C) float32 for ``model``; (N, H, W) for one channel and a single image are accepted too."""
    shape = tuple(int(s) for s in model.input_shape[1:])
    arr = np.asarray(images, dtype=np.float32)
    if arr.shape == shape or (shape[-1] == 1 and arr.shape == shape[:2]):
        arr = arr.reshape(1, *shape)
    elif arr.ndim == 3 and shape[-1] == 1 and arr.shape[1:] == shape[:2]:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[1:] != shape or arr.shape[0] == 0:
        h, w, c = shape
        raise ShapeError(
            f"{_OWNER}: `images` must be (N, {h}, {w}, {c}) for this model (or (N, {h}, {w}) when C is 1), "
            f"got {np.shape(images)}."
        )
    return arr


class FeatureMapExplorer(anywidget.AnyWidget):  # type: ignore[misc]
    """Pick a layer and an image; see that layer's feature maps; click a unit for how it got its value.

    The numbers are the browser lab's inspector's (:mod:`convlens.lab.inspect`), drawn by the same
    drawing modules: ``view`` holds :func:`convlens.lab.inspect.forward`'s input, probabilities and the
    selected layer's entry; setting ``unit`` (a click, or ``explorer.unit = [row, col, channel]``; ``[i]``
    for a vector layer) fills ``unit_detail`` with :func:`convlens.lab.inspect.unit`: the receptive field
    on the input and the window, kernel, products and sum (or max / mean, or the largest ``x·w``).

    Args:
        model: a built ``Sequential`` taking images.
        images: (N, H, W, C) inputs as the model takes them ((N, H, W) for one channel; or one image).
        labels: N true labels, shown beside each image (optional).
        class_names: names of the output classes, for the probability bars (optional).
        layer: the layer shown first (name or index; default: the first with feature maps).
        image: the image shown first.

    Shapes:
        images: (N, H, W, C); a spatial layer's maps in ``view``: (C, OH, OW) nested lists.
    """

    _esm = widget_esm("feature_maps.js")
    _css = widget_css()

    layers = t.List(t.Dict()).tag(sync=True)
    layer = t.Unicode("").tag(sync=True)
    image = t.Int(0).tag(sync=True)
    image_count = t.Int(0).tag(sync=True)
    scale = t.Unicode("shared").tag(sync=True)
    class_names = t.List(t.Unicode()).tag(sync=True)
    unit = t.List(t.Int()).tag(sync=True)
    view = t.Dict().tag(sync=True)
    unit_detail = t.Dict().tag(sync=True)
    error = t.Unicode("").tag(sync=True)

    def __init__(
        self,
        model: Any,
        images: Any,
        labels: Any = None,
        *,
        class_names: Any = None,
        layer: str | int | None = None,
        image: int = 0,
    ) -> None:
        self._ready = False
        self._model = model
        self._images = _images(model, images)
        count = len(self._images)
        self._labels = None if labels is None else [int(v) for v in np.asarray(labels).reshape(-1)]
        if self._labels is not None and len(self._labels) != count:
            raise ShapeError(f"{_OWNER}: `labels` must hold one label per image ({count}), got {len(self._labels)}.")
        self._forward: tuple[int, dict[str, Any]] | None = None
        first = self._forward_of(0)
        entries = first["layers"]
        if layer is None:
            name = next((e["name"] for e in entries if e["kind"] == "maps"), entries[0]["name"])
        else:
            name = model.layers[find_layer(model, layer)].name
        super().__init__(
            layers=[{"name": e["name"], "class_name": e["class_name"], "shape": e["shape"]} for e in entries],
            layer=name,
            image=int(image),
            image_count=count,
            class_names=[str(c) for c in class_names] if class_names is not None else [],
        )
        self._ready = True
        self._show()

    def __repr__(self) -> str:
        unit = f", unit {self.unit}" if self.unit else ""
        where = f"layer {self.layer!r}, image {self.image} of {self.image_count}{unit}"
        return f"<FeatureMapExplorer: {self._model.name}, {where}>"

    def _forward_of(self, index: int) -> dict[str, Any]:
        if self._forward is None or self._forward[0] != index:
            self._forward = (index, inspect.forward(self._model, self._images[index]))
        return self._forward[1]

    def _check_image(self) -> int:
        if not 0 <= self.image < len(self._images):
            raise ConfigError(f"{_OWNER}: `image` must be in 0..{len(self._images) - 1}, got {self.image}.")
        return int(self.image)

    def _show(self) -> None:
        """Sync ``view`` for the current image and layer, and the unit's detail if one is selected."""
        try:
            index = self._check_image()
            result = self._forward_of(index)
            entry = next((e for e in result["layers"] if e["name"] == self.layer), None)
            if entry is None:
                find_layer(self._model, self.layer)  # raises naming the layers there are
        except ConvlensError as exc:
            with self.hold_sync():
                self.view, self.unit_detail, self.error = {}, {}, str(exc)
            return
        label = "" if self._labels is None else f" (label {self._labels[index]})"
        view = {key: result[key] for key in ("input", "input_shape", "output", "predicted")}
        with self.hold_sync():
            self.view = {**view, "description": f"image {index} of {len(self._images)}{label}", "layer": entry}
            self.error = ""
            self._detail()

    def _detail(self) -> None:
        if not self.unit:
            self.unit_detail = {}
            return
        try:
            x = self._images[self._check_image()]
            self.unit_detail = inspect.unit(self._model, x, self.layer, tuple(self.unit))
        except ConvlensError as exc:
            self.unit_detail = {"error": str(exc)}

    @t.observe("image")
    def _image_changed(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._show()

    @t.observe("layer")
    def _layer_changed(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._ready = False
            self.unit = []  # a unit belongs to its layer
            self._ready = True
            self._show()

    @t.observe("unit")
    def _unit_changed(self, change: dict[str, Any]) -> None:
        if self._ready:
            with self.hold_sync():
                self._detail()
