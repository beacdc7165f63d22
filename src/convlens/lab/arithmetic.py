"""Per-layer arithmetic of a model: shapes, parameters, MACs, receptive fields, memory, "why this shape".

Everything is computed from the layers' own settings and :class:`convlens.geometry.WindowGeometry`
(the same geometry the ops use); nothing here runs a forward pass.

What is counted (per sample, i.e. for a batch of one):

* **MACs** (multiply-accumulates): ``Conv2D`` ``OH*OW*F*KH*KW*(C/groups)`` (``Conv1D`` and
  ``DepthwiseConv2D`` alike, depthwise having ``groups = C``); ``Dense`` ``D*U`` per position.
  Bias additions, activations, dropout and padding are not counted. **FLOPs = 2 x MACs** (one MAC is
  one multiply plus one add), as most papers and ``fvcore``-style counters report.
* **ops** (not MACs, reported separately): max pooling counts comparisons (``real taps - 1`` per
  window, padded cells excluded); average pooling counts additions plus one division per window
  (``real taps`` per window); global pooling the same over the whole map; batch normalisation at
  inference is a scale and a shift, 2 ops per element.
* **Receptive field** per spatial axis, in input pixels, with the recurrences (``e`` the dilated
  kernel extent ``(k - 1) * d + 1``, ``pb`` the padding before)::

      r_out = r_in + (e - 1) * j_in      j_out = j_in * s      start_out = start_in + ((e - 1) / 2 - pb) * j_in

  ``start`` is the centre of the first output unit's field in input coordinates (negative when it lies
  in the padding). Fields are not clipped to the input. Once the spatial axes are gone (``Flatten``,
  global pooling) ``receptive_field`` is the part of the input any unit sees (clipped), ``jump`` and
  ``start`` are empty.
* **Activation memory**: output elements x 4 bytes (float32), per sample.

>>> from convlens.course import build_course_model
>>> stats = model_stats(build_course_model())
>>> stats[0].params_formula, stats[0].macs, stats[0].receptive_field
('3*3*1*32 + 32 = 320', 225792, (3, 3))
>>> stats[1].receptive_field, stats[1].jump, stats[1].start
((4, 4), (2, 2), (0.5, 0.5))
>>> model_totals(stats)["params"]
63050
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from convlens import layers as lyr
from convlens.errors import StateError
from convlens.geometry import WindowGeometry

__all__ = ["BYTES_PER_ELEMENT", "LAYER_KINDS", "LayerStats", "model_stats", "model_totals"]

BYTES_PER_ELEMENT = 4  # float32
Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class LayerStats:
    """The arithmetic of one layer for one sample.

    Attributes:
        name: layer name (``conv2d``).
        class_name: layer class (``Conv2D``).
        input_shape: input shape, batch axis None.
        output_shape: output shape, batch axis None (from ``layer.compute_output_shape``).
        params: all weights (trainable and not).
        trainable_params: trainable weights only.
        params_formula: the count in the layer's numbers, e.g. ``"3*3*1*32 + 32 = 320"``.
        macs: multiply-accumulates per sample (bias adds not counted).
        flops: ``2 * macs``.
        ops: other arithmetic not counted as MACs (pooling comparisons/additions, BN scale+shift).
        ops_kind: what ``ops`` counts ("" when zero).
        receptive_field: field size in input pixels per spatial axis.
        jump: distance in input pixels between neighbouring output units, per axis (``()`` once global).
        start: centre of the first output unit's field in input coordinates, per axis (``()`` once global).
        activation_bytes: output bytes per sample at float32.
        why: the output-size formula with the layer's numbers, padding per side included.
        pads: ``(before, after)`` padding per spatial axis for windowed layers, else None.
        dense_params: parameters of a Dense layer mapping the same input to the same output (conv layers).
        dense_macs: MACs of that Dense layer (conv layers).
    """

    name: str
    class_name: str
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable_params: int
    params_formula: str
    macs: int
    flops: int
    ops: int
    ops_kind: str
    receptive_field: tuple[int, ...]
    jump: tuple[int, ...]
    start: tuple[float, ...]
    activation_bytes: int
    why: str
    pads: tuple[tuple[int, int], ...] | None = None
    dense_params: int | None = None
    dense_macs: int | None = None


@dataclass
class _Field:
    """Receptive-field state while walking the layers."""

    size: tuple[int, ...]  # the model's input spatial size
    r: tuple[int, ...]
    j: tuple[int, ...]
    start: tuple[float, ...]
    spatial: bool = True

    def through(self, g: WindowGeometry) -> None:
        r, j, st = [], [], []
        for a, (e, s, (pb, _)) in enumerate(zip(g.extent, g.strides, g.pads, strict=True)):
            r.append(self.r[a] + (e - 1) * self.j[a])
            st.append(self.start[a] + ((e - 1) / 2 - pb) * self.j[a])
            j.append(self.j[a] * s)
        self.r, self.j, self.start = tuple(r), tuple(j), tuple(st)

    def shift(self, pads: Sequence[tuple[int, int]]) -> None:
        self.start = tuple(st - pb * jj for st, (pb, _), jj in zip(self.start, pads, self.j, strict=True))

    def globalise(self, out_spatial: Sequence[int | None]) -> None:
        """The spatial axes vanish: keep the input extent any output unit sees (clipped to the input)."""
        if not self.spatial:
            return
        covered = []
        for a, n in enumerate(out_spatial):
            half = (self.r[a] - 1) / 2
            lo = max(self.start[a] - half, 0.0)
            hi = min(self.start[a] + ((n or 1) - 1) * self.j[a] + half, self.size[a] - 1.0)
            covered.append(max(math.floor(hi) - math.ceil(lo) + 1, 0))
        self.r, self.j, self.start, self.spatial = tuple(covered), (), (), False


def _prod(values: Sequence[int | None]) -> int:
    return math.prod(int(v or 0) for v in values)


def _spatial(layer: Any, shape: Shape) -> tuple[int | None, ...]:
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return tuple(shape[2:])
    return tuple(shape[1:-1])


def _channels(layer: Any, shape: Shape) -> int:
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return int(shape[1] or 0)
    return int(shape[-1] or 0)


def _x(values: Sequence[Any]) -> str:
    return "x".join(str(v) for v in values)


def _side_names(rank: int) -> list[tuple[str, str]]:
    return [("left", "right")] if rank == 1 else [("top", "bottom"), ("left", "right"), ("front", "back")][:rank]


def explain_geometry(g: WindowGeometry) -> str:
    """The output-size formula of a window geometry with its numbers, padding per side included.

    >>> explain_geometry(WindowGeometry.resolve((28, 28), 3, 2, "same"))
    "'same', 3x3, stride 2 on 28: out = ceil(28/2) = 14, pad top 0, bottom 1, left 0, right 1"
    >>> explain_geometry(WindowGeometry.resolve((28, 26), 5, 1, "valid"))
    "'valid', 5x5, stride 1: H: out = (28 - 5) // 1 + 1 = 24; W: out = (26 - 5) // 1 + 1 = 22, no padding"
    """
    label = "explicit padding" if g.padding == "explicit" else repr(g.padding)
    parts = []
    for i, e, s, (pb, pa), o in zip(g.input_size, g.extent, g.strides, g.pads, g.output_size, strict=True):
        if g.padding == "same":
            formula = f"ceil({i}/{s}) = {o}"
        elif g.padding == "causal":
            formula = f"({i} - 1) // {s} + 1 = {o}"
        elif g.padding == "explicit":
            formula = f"({i} + {pb} + {pa} - {e}) // {s} + 1 = {o}"
        else:
            formula = f"({i} - {e}) // {s} + 1 = {o}"
        parts.append((i, s, formula))
    head = f"{label}, {_x(g.kernel_size)}"
    if any(d > 1 for d in g.dilation_rate):
        exts = [f"({k} - 1)*{d} + 1 = {e}" for k, d, e in zip(g.kernel_size, g.dilation_rate, g.extent, strict=True)]
        ext = exts[0] if len(set(exts)) == 1 else ", ".join(exts)
        dil = str(g.dilation_rate[0]) if len(set(g.dilation_rate)) == 1 else _x(g.dilation_rate)
        head += f" dilated {dil} (extent {ext})"
    if len(set(parts)) == 1:
        i, s, formula = parts[0]
        text = f"{head}, stride {s} on {i}: out = {formula}"
    else:
        axes = ["L"] if g.rank == 1 else ["H", "W", "D"][: g.rank]
        strides = _x(g.strides) if len(set(g.strides)) > 1 else str(g.strides[0])
        text = f"{head}, stride {strides}: " + "; ".join(
            f"{axis}: out = {formula}" for axis, (_, _, formula) in zip(axes, parts, strict=True)
        )
    if not g.is_padded:
        return text + ", no padding"
    sides = ", ".join(f"{nb} {pb}, {na} {pa}" for (nb, na), (pb, pa) in zip(_side_names(g.rank), g.pads, strict=True))
    return f"{text}, pad {sides}"


def _real_taps(g: WindowGeometry) -> int:
    """Input cells (padding excluded) summed over every window position."""
    return math.prod(sum(counts) for counts in g.real_counts())


def _weights_formula(layer: Any) -> str:
    """Parameter count as a formula in the layer's numbers (conv/dense/bn), from the weight shapes."""
    terms = []
    for name in (*layer.weight_names, *getattr(layer, "state_names", ())):
        array = layer.params.get(name, layer.state.get(name))
        if array is not None:
            terms.append("*".join(str(d) for d in array.shape))
    total = layer.count_params()
    if not terms:
        return "0"
    if len(terms) == 1 and "*" not in terms[0]:
        return f"{total:,}"
    if isinstance(layer, lyr.BatchNormalization) and len(set(terms)) == 1:
        names = ", ".join(n.replace("_", " ") for n in (*layer.params, *layer.state))
        return f"{len(terms)}*{terms[0]} = {total:,} ({names})"
    return f"{' + '.join(terms)} = {total:,}"


@dataclass(frozen=True)
class _Counts:
    """What a layer kind contributes to its :class:`LayerStats` beyond shapes and parameters."""

    why: str
    macs: int = 0
    ops: int = 0
    ops_kind: str = ""
    pads: tuple[tuple[int, int], ...] | None = None
    dense_params: int | None = None
    dense_macs: int | None = None


def _conv(layer: Any, in_shape: Shape, out_shape: Shape, field: _Field) -> _Counts:
    g = layer.geometry(in_shape)
    channels = _channels(layer, in_shape)
    filters = _channels(layer, out_shape)
    field.through(g)
    dense_macs = _prod(in_shape[1:]) * _prod(out_shape[1:])
    return _Counts(
        why=explain_geometry(g),
        macs=_prod(g.output_size) * filters * _prod(g.kernel_size) * (channels // layer.groups),
        pads=g.pads,
        dense_macs=dense_macs,
        dense_params=dense_macs + (_prod(out_shape[1:]) if layer.use_bias else 0),
    )


def _pooling(layer: Any, in_shape: Shape, out_shape: Shape, field: _Field) -> _Counts:
    spatial = [int(v or 0) for v in _spatial(layer, in_shape)]
    g = WindowGeometry.resolve(spatial, layer.pool_size, layer.strides, layer.padding, owner=repr(layer))
    taps = _real_taps(g) * _channels(layer, in_shape)
    field.through(g)
    if layer.kind == "max":  # comparisons: every real cell of a window but the first
        return _Counts(explain_geometry(g), ops=taps - _prod(out_shape[1:]), ops_kind="comparisons", pads=g.pads)
    return _Counts(explain_geometry(g), ops=taps, ops_kind="adds + divides", pads=g.pads)


def _global_pooling(layer: Any, in_shape: Shape, out_shape: Shape, field: _Field) -> _Counts:
    spatial = _spatial(layer, in_shape)
    channels = _channels(layer, in_shape)
    field.globalise(spatial)
    kind = "maximum" if layer.kind == "max" else "average"
    why = f"global {kind} over {_x(spatial)}: one value per channel -> {channels}"
    if layer.kind == "max":
        return _Counts(why, ops=(_prod(spatial) - 1) * channels, ops_kind="comparisons")
    return _Counts(why, ops=_prod(spatial) * channels, ops_kind="adds + divides")


def _zero_padding(layer: Any, in_shape: Shape, out_shape: Shape, field: _Field) -> _Counts:
    field.shift(layer.padding)
    sizes = "; ".join(
        f"{i} + {b} + {a} = {o}" for i, (b, a), o in zip(in_shape[1:-1], layer.padding, out_shape[1:-1], strict=True)
    )
    return _Counts(f"zero padding: {sizes}", pads=layer.padding)


def _flatten(layer: Any, in_shape: Shape, out_shape: Shape, field: _Field) -> _Counts:
    field.globalise(in_shape[1:-1])
    return _Counts(f"{'*'.join(str(d) for d in in_shape[1:])} = {_prod(out_shape[1:]):,}")


def _dense(layer: Any, in_shape: Shape, out_shape: Shape, field: _Field) -> _Counts:
    depth = int(in_shape[-1] or 0)
    why = f"last axis {depth} -> {layer.units} units"
    if len(in_shape) > 2:
        why += f" at each of {_x(in_shape[1:-1])} positions"
    return _Counts(why, macs=_prod(in_shape[1:-1]) * depth * layer.units)


def _batch_norm(layer: Any, in_shape: Shape, out_shape: Shape, field: _Field) -> _Counts:
    return _Counts("elementwise: same shape as the input", ops=2 * _prod(out_shape[1:]), ops_kind="scale + shift")


def _other(layer: Any, in_shape: Shape, out_shape: Shape, field: _Field) -> _Counts:
    """Any other layer: elementwise when the shape is kept, else only its shapes are known."""
    if out_shape == tuple(in_shape):
        return _Counts("elementwise: same shape as the input")
    field.globalise(in_shape[1:-1])
    return _Counts(f"{type(layer).__name__}.compute_output_shape: {in_shape} -> {out_shape}")


LayerKind = Callable[[Any, Shape, Shape, _Field], _Counts]

#: The arithmetic of each layer kind; a layer uses the entry of its class or its nearest base class.
LAYER_KINDS: dict[type, LayerKind] = {
    lyr.Conv1D: _conv,
    lyr.Conv2D: _conv,
    lyr.DepthwiseConv2D: _conv,
    lyr.MaxPooling1D: _pooling,
    lyr.MaxPooling2D: _pooling,
    lyr.AveragePooling1D: _pooling,
    lyr.AveragePooling2D: _pooling,
    lyr.GlobalMaxPooling1D: _global_pooling,
    lyr.GlobalMaxPooling2D: _global_pooling,
    lyr.GlobalAveragePooling1D: _global_pooling,
    lyr.GlobalAveragePooling2D: _global_pooling,
    lyr.ZeroPadding1D: _zero_padding,
    lyr.ZeroPadding2D: _zero_padding,
    lyr.Flatten: _flatten,
    lyr.Dense: _dense,
    lyr.BatchNormalization: _batch_norm,
}


def _kind(layer: Any) -> LayerKind:
    return next((LAYER_KINDS[cls] for cls in type(layer).__mro__ if cls in LAYER_KINDS), _other)


def _layer_stats(layer: Any, in_shape: Shape, field: _Field) -> LayerStats:
    out_shape: Shape = tuple(layer.compute_output_shape(in_shape))
    counts = _kind(layer)(layer, in_shape, out_shape, field)
    if field.spatial and len(out_shape) != len(in_shape):
        field.globalise(in_shape[1:-1])
    return LayerStats(
        name=layer.name,
        class_name=type(layer).__name__,
        input_shape=tuple(in_shape),
        output_shape=out_shape,
        params=layer.count_params(),
        trainable_params=int(sum(w.size for w in layer.params.values())) if layer.trainable else 0,
        params_formula=_weights_formula(layer),
        macs=counts.macs,
        flops=2 * counts.macs,
        ops=counts.ops,
        ops_kind=counts.ops_kind,
        receptive_field=field.r,
        jump=field.j,
        start=field.start,
        activation_bytes=_prod(out_shape[1:]) * BYTES_PER_ELEMENT,
        why=counts.why,
        pads=counts.pads,
        dense_params=counts.dense_params,
        dense_macs=counts.dense_macs,
    )


def model_stats(model: Any) -> list[LayerStats]:
    """Per-layer arithmetic of a built ``Sequential`` model.

    Raises:
        StateError: when the model has no input shape yet.

    Shapes:
        Each entry's ``input_shape``/``output_shape`` carry a None batch axis, e.g. (None, 28, 28, 32).
    """
    if not getattr(model, "built", False) or model.input_shape is None:
        raise StateError(
            f"summary: {model!r} is not built; give the first layer input_shape=... or call build(input_shape)."
        )
    shape: Shape = tuple(model.input_shape)
    first = model.layers[0] if model.layers else None
    spatial = _spatial(first, shape) if first is not None and len(shape) > 2 else ()
    field = _Field(
        size=tuple(int(s or 0) for s in spatial),
        r=(1,) * len(spatial),
        j=(1,) * len(spatial),
        start=(0.0,) * len(spatial),
        spatial=bool(spatial),
    )
    stats = []
    for layer in model.layers:
        item = _layer_stats(layer, shape, field)
        stats.append(item)
        shape = item.output_shape
    return stats


def model_totals(stats: Sequence[LayerStats]) -> dict[str, int]:
    """Sums over the layers: params, trainable_params, macs, flops, ops, activation_bytes (per sample).

    >>> model_totals([])["flops"]
    0
    """
    keys = ("params", "trainable_params", "macs", "flops", "ops", "activation_bytes")
    return {key: sum(int(getattr(s, key)) for s in stats) for key in keys}
