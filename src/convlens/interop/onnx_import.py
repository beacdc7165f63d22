"""ONNX graph -> convlens ``Sequential`` (chains of CNN operators, as ``torch.onnx.export`` writes them).

The graph is read node by node (never executed); each supported operator becomes one convlens layer
(activations fold into the Conv/Dense before them, a bias ``Add`` into its MatMul) through
:class:`convlens.interop.chain.ChainBuilder`, which keeps the layout bookkeeping. A channel-first input
(torch's (N, C, H, W)) becomes the model's channels-last input (N, H, W, C); a file written by
:func:`convlens.interop.onnx.export` (channels-last input, then a Transpose) round-trips as is.

Shapes:
    graph input (N, C, *S) or (N, *S, C) -> convlens input (N, *S, C); flat features (N, D) stay (N, D).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from convlens.errors import ConfigError, DataError
from convlens.geometry import WindowGeometry
from convlens.interop.chain import ChainBuilder
from convlens.interop.layout import channels_first_perm, inverse_perm, split_pads
from convlens.models import Sequential

__all__ = ["IMPORTED_OPS", "from_onnx"]


class _Node:
    """One ONNX node with decoded attributes and access to constant inputs."""

    def __init__(self, node: Any, constants: dict[str, np.ndarray], opset: int) -> None:
        from onnx import helper

        self.node = node
        self.op = node.op_type
        self.where = f"node '{node.name}' ({node.op_type})"
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        for key, value in self.attrs.items():
            if isinstance(value, bytes):
                self.attrs[key] = value.decode("utf-8", "replace")
        self.constants = constants
        self.opset = opset

    def const(self, position: int, required: bool = True) -> np.ndarray | None:
        names = self.node.input
        if position >= len(names) or not names[position]:
            if required:
                raise DataError(f"{self.where}: input {position} is missing.")
            return None
        name = names[position]
        if name not in self.constants:
            raise ConfigError(f"{self.where}: input '{name}' must be a constant (an initializer) for convlens.")
        return self.constants[name]

    def ints(self, key: str, default: Any) -> tuple[int, ...]:
        return tuple(int(v) for v in self.attrs.get(key, default))


def _window_pads(n: _Node, spatial: tuple[int, ...], kernel: tuple[int, ...], strides: Any, dilations: Any) -> Any:
    """Explicit per-side pads from ``pads`` or ``auto_pad``."""
    auto = n.attrs.get("auto_pad", "NOTSET")
    rank = len(kernel)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = WindowGeometry.resolve(spatial, kernel, strides, "same", dilations).pads
        return pads if auto == "SAME_UPPER" else tuple((a, b) for b, a in pads)
    if auto == "VALID":
        return ((0, 0),) * rank
    return split_pads(n.ints("pads", (0,) * (2 * rank)))


def _conv(b: ChainBuilder, n: _Node) -> None:
    weight = np.asarray(n.const(1))
    bias = n.const(2, required=False)
    rank = weight.ndim - 2
    kernel = tuple(weight.shape[2:])
    strides = n.ints("strides", (1,) * rank)
    dilations = n.ints("dilations", (1,) * rank)
    pads = _window_pads(n, b.shape[:-1], kernel, strides, dilations)
    groups = int(n.attrs.get("group", 1))
    b.conv(weight, bias, strides=strides, pads=pads, dilation=dilations, groups=groups, where=n.where)


def _pool(b: ChainBuilder, n: _Node) -> None:
    kernel = n.ints("kernel_shape", ())
    rank = len(kernel)
    strides = n.ints("strides", (1,) * rank)
    if any(d != 1 for d in n.ints("dilations", (1,) * rank)):
        raise ConfigError(
            f"{b.source}: {n.where}: dilated pooling is not supported (dilations {n.attrs['dilations']})."
        )
    spatial = b.shape[:-1]
    pads = list(_window_pads(n, spatial, kernel, strides, (1,) * rank))
    include = bool(n.attrs.get("count_include_pad", 0))
    kind = "max" if n.op == "MaxPool" else "avg"
    ceil_mode = bool(n.attrs.get("ceil_mode", 0))
    b.pool(kind, kernel, strides, tuple(pads), count_include_pad=include, ceil_mode=ceil_mode, where=n.where)


def _batch_norm(b: ChainBuilder, n: _Node) -> None:
    if n.attrs.get("training_mode", 0):
        raise ConfigError(f"{b.source}: {n.where}: training_mode=1 is not supported; export the model in eval mode.")
    gamma, beta, mean, var = (n.const(i) for i in range(1, 5))
    epsilon = float(n.attrs.get("epsilon", 1e-5))
    b.batch_norm(gamma, beta, mean, var, epsilon=epsilon, momentum=float(n.attrs.get("momentum", 0.9)), where=n.where)


def _clip(b: ChainBuilder, n: _Node) -> None:
    if n.opset >= 11:
        low, high = n.const(1, required=False), n.const(2, required=False)
    else:
        low, high = n.attrs.get("min"), n.attrs.get("max")
    low_value = None if low is None else float(np.asarray(low))
    high_value = None if high is None else float(np.asarray(high))
    if low_value != 0.0:
        raise ConfigError(f"{b.source}: {n.where}: only Clip(min=0, max) (a capped ReLU) is supported, min={low}.")
    if high_value == 6.0:
        b.activation("relu6", n.where)
    elif high_value is None:
        b.activation("relu", n.where)
    else:
        b.activation("relu", n.where, max_value=high_value)


def _elementwise(name: str) -> Callable[[ChainBuilder, _Node], None]:
    def convert(b: ChainBuilder, n: _Node) -> None:
        if name == "elu" and float(n.attrs.get("alpha", 1.0)) != 1.0:
            raise ConfigError(f"{b.source}: {n.where}: Elu with alpha={n.attrs['alpha']} (convlens: 1.0).")
        if name == "selu" and ("alpha" in n.attrs or "gamma" in n.attrs):
            raise ConfigError(f"{b.source}: {n.where}: Selu with custom alpha/gamma is not supported.")
        b.activation(name, n.where)

    return convert


def _leaky_relu(b: ChainBuilder, n: _Node) -> None:
    b.activation("relu", n.where, negative_slope=float(n.attrs.get("alpha", 0.01)))


def _softmax(b: ChainBuilder, n: _Node) -> None:
    rank = len(b.shape) + 1
    axis = int(n.attrs.get("axis", -1 if n.opset >= 13 else 1)) % rank
    if n.opset < 13 and axis != rank - 1:
        raise ConfigError(f"{b.source}: {n.where}: opset {n.opset} Softmax over axis {axis} of a {rank}-D tensor.")
    b.softmax(axis, n.where)


def _flatten(b: ChainBuilder, n: _Node) -> None:
    if int(n.attrs.get("axis", 1)) != 1:
        raise ConfigError(f"{b.source}: {n.where}: only Flatten(axis=1) is supported, got axis={n.attrs['axis']}.")
    b.flatten(n.where)


def _reshape(b: ChainBuilder, n: _Node) -> None:
    target = [int(v) for v in np.asarray(n.const(1)).reshape(-1)]
    features = int(np.prod(b.shape))
    if len(target) != 2 or target[1] not in (-1, features):
        raise ConfigError(
            f"{b.source}: {n.where}: only a reshape to (batch, features) (a flatten) is supported, got shape {target}."
        )
    b.flatten(n.where)


def _gemm(b: ChainBuilder, n: _Node) -> None:
    if n.attrs.get("transA", 0) or float(n.attrs.get("alpha", 1.0)) != 1.0 or float(n.attrs.get("beta", 1.0)) != 1.0:
        raise ConfigError(f"{b.source}: {n.where}: only Gemm with transA=0, alpha=1, beta=1 is supported.")
    weight = np.asarray(n.const(1))
    kernel = weight.T if n.attrs.get("transB", 0) else weight
    bias = n.const(2, required=False)
    if bias is not None and bias.size != kernel.shape[1]:
        raise ConfigError(f"{b.source}: {n.where}: bias of shape {bias.shape} for {kernel.shape[1]} units.")
    b.dense(kernel, bias, n.where)


def _matmul(b: ChainBuilder, n: _Node) -> None:
    b.dense(np.asarray(n.const(1)), None, n.where)


def _add(b: ChainBuilder, n: _Node) -> None:
    names = list(n.node.input)
    other = names[1] if names[1] in n.constants else names[0]
    if other not in n.constants or not b.add_bias(n.constants[other], n.where):
        raise ConfigError(
            f"{b.source}: {n.where}: only a constant bias added right after a MatMul is supported "
            "(residual additions are not: a convlens Sequential is a chain)."
        )


def _pad(b: ChainBuilder, n: _Node) -> None:
    if n.attrs.get("mode", "constant") != "constant":
        raise ConfigError(f"{b.source}: {n.where}: only constant (zero) padding is supported, got {n.attrs['mode']!r}.")
    pads = n.const(1) if n.opset >= 11 else n.attrs.get("pads")
    value = n.const(2, required=False) if n.opset >= 11 else n.attrs.get("value", 0.0)
    pairs = split_pads([int(p) for p in np.asarray(pads).reshape(-1)])
    if (value is not None and float(np.asarray(value)) != 0.0) or pairs[0] != (0, 0) or pairs[1] != (0, 0):
        raise ConfigError(f"{b.source}: {n.where}: only zero padding of the spatial axes is supported, pads {pairs}.")
    b.zero_pad(pairs[2:], n.where)


IMPORTED_OPS: dict[str, Callable[[ChainBuilder, _Node], None]] = {
    "Conv": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": lambda b, n: b.global_pool("avg", keepdims=True, where=n.where),
    "GlobalMaxPool": lambda b, n: b.global_pool("max", keepdims=True, where=n.where),
    "BatchNormalization": _batch_norm,
    "Relu": _elementwise("relu"),
    "Sigmoid": _elementwise("sigmoid"),
    "Tanh": _elementwise("tanh"),
    "Softplus": _elementwise("softplus"),
    "Elu": _elementwise("elu"),
    "Selu": _elementwise("selu"),
    "LeakyRelu": _leaky_relu,
    "Clip": _clip,
    "Softmax": _softmax,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "Pad": _pad,
    "Transpose": lambda b, n: b.transpose(n.ints("perm", ())),
    "Dropout": lambda b, n: None,
    "Identity": lambda b, n: None,
}


def _scalar(constants: dict[str, np.ndarray], name: str) -> float | None:
    value = constants.get(name)
    return None if value is None or value.size != 1 else float(value.reshape(()))


def _pattern(nodes: list[Any], i: int, x: str, constants: dict[str, np.ndarray]) -> tuple[int, str, dict[str, Any]]:
    """Multi-node forms of one activation reading ``x``: (nodes used, activation, ReLU options) or (0, '', {}).

    gelu: x * (1 + erf(x / sqrt 2)) * 0.5 (torch's and convlens's export); silu: x * sigmoid(x); a ReLU with
    threshold t, slope a and cap m: Where(x >= t, x, a * (x - t)), then Min(., m).
    """
    ops = [n.op_type for n in nodes[i : i + 5]]
    out = [n.output[0] for n in nodes[i : i + 5]]
    ins = [list(n.input) for n in nodes[i : i + 5]]

    def constant_in(pair: list[str], value: float) -> bool:
        others = [_scalar(constants, name) for name in pair if name in constants]
        return len(others) == 1 and others[0] is not None and abs(others[0] - value) < 1e-6 * max(1.0, value)

    if ops[:5] == ["Div", "Erf", "Add", "Mul", "Mul"] and ins[0][0] == x and constant_in(ins[0], math.sqrt(2.0)):
        chained = ins[1] == [out[0]] and out[1] in ins[2] and constant_in(ins[2], 1.0)
        # (x * a) * 0.5 or (0.5 * a) * x, both orders of the operands
        half_last = set(ins[3]) == {x, out[2]} and out[3] in ins[4] and constant_in(ins[4], 0.5)
        half_first = out[2] in ins[3] and constant_in(ins[3], 0.5) and set(ins[4]) == {x, out[3]}
        if chained and (half_last or half_first):
            return 5, "gelu", {}
    if ops[:2] == ["Sigmoid", "Mul"] and ins[0] == [x] and set(ins[1]) == {x, out[0]}:
        return 2, "silu", {}
    if ops[:4] == ["GreaterOrEqual", "Sub", "Mul", "Where"] and ins[0][0] == x and ins[1] == [x, ins[0][1]]:
        threshold, slope = _scalar(constants, ins[0][1]), _scalar(constants, ins[2][1])
        if threshold is not None and slope is not None and ins[2][0] == out[1] and ins[3] == [out[0], x, out[2]]:
            options: dict[str, Any] = {"threshold": threshold, "negative_slope": slope}
            if ops[4:5] == ["Min"] and ins[4][0] == out[3] and _scalar(constants, ins[4][1]) is not None:
                options["max_value"] = _scalar(constants, ins[4][1])
                return 5, "relu", options
            return 4, "relu", options
    return 0, "", {}


def _input_shape(value_info: Any, source: str) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) < 2 or any(s is None or s <= 0 for s in shape[1:]):
        raise ConfigError(
            f"{source}: the input '{value_info.name}' must have a known size on every axis but the batch, got "
            f"{[d.dim_param or d.dim_value for d in dims]}."
        )
    return tuple(int(s) for s in shape[1:])  # type: ignore[arg-type]


def from_onnx(proto: Any, source: str = "ONNX model") -> Sequential:
    """Convert an ``onnx.ModelProto`` chain into a convlens model (channels-last input).

    Raises:
        ConfigError: for an unsupported operator (naming the node and listing what is supported), a
            graph that is not a chain, or attributes convlens cannot express.
        DataError: for a graph without one input and one output.
    """
    from onnx import numpy_helper

    graph = proto.graph
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=13)
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise DataError(
            f"{source}: convlens reads graphs with one input and one output, got {len(inputs)} and {len(graph.output)}."
        )
    shape = _input_shape(inputs[0], source)
    rank = len(shape) + 1
    first = next((node for node in graph.node if inputs[0].name in node.input), None)
    to_cf = list(inverse_perm(channels_first_perm(rank)))
    channels_last = (
        rank > 2
        and first is not None
        and first.op_type == "Transpose"
        and _Node(first, {}, opset).ints("perm", ()) == tuple(to_cf)
    )
    if rank > 2 and not channels_last:
        shape = (*shape[1:], shape[0])  # (C, *S) -> (*S, C)
    builder = ChainBuilder(shape, channels_first=not channels_last and rank > 2, source=source)
    current = inputs[0].name
    nodes = []
    for raw in graph.node:
        if raw.op_type == "Constant":
            value = _Node(raw, constants, opset).attrs.get("value")
            if value is None:
                raise ConfigError(f"{source}: node '{raw.name}' (Constant) without a tensor `value` is not supported.")
            constants[raw.output[0]] = numpy_helper.to_array(value)
        else:
            nodes.append(raw)
    i = 0
    while i < len(nodes):
        raw = nodes[i]
        i += 1
        used, activation, options = _pattern(nodes, i - 1, current, constants)
        if used:
            builder.activation(activation, f"node '{raw.name}' ({activation})", **options)
            i += used - 1
            current = nodes[i - 1].output[0]
            continue
        node = _Node(raw, constants, opset)
        data = [name for name in raw.input if name and name not in constants]
        if data != [current]:
            raise ConfigError(
                f"{source}: {node.where} reads {data or 'only constants'}, not the chain's tensor '{current}'; "
                "convlens converts chains (one input, one output per node)."
            )
        convert = IMPORTED_OPS.get(raw.op_type)
        if convert is None:
            raise ConfigError(
                f"{source}: {node.where} is not supported; convlens converts these ONNX operators: "
                f"{', '.join(sorted(IMPORTED_OPS))} (and gelu, silu, thresholded ReLU as exported by convlens)."
            )
        convert(builder, node)
        current = raw.output[0]
    if current != graph.output[0].name:
        raise ConfigError(f"{source}: the graph output '{graph.output[0].name}' is not the end of the chain.")
    return builder.finish(f"output '{current}'")
