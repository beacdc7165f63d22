"""Symbolic tensors for the Functional API: ``Input`` gives one, calling a layer on one records a node.

A :class:`KerasTensor` carries a shape (batch axis included, usually None), a dtype and the node that
produced it; a :class:`Node` remembers which layer turned which tensors into which output. Nothing is
computed: :class:`convlens.functional.Functional` walks the nodes between its inputs and outputs to run
the graph forwards and backwards.

>>> import convlens as cl
>>> x = cl.Input((28, 28, 1))
>>> y = cl.layers.Conv2D(8, 3, padding="same", name="conv")(x)
>>> y
<KerasTensor shape=(None, 28, 28, 8), dtype=float32, name=conv>
>>> y.node.layer.name, y.node.inputs[0] is x.output
('conv', True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convlens.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    from convlens.layers.base import Layer

__all__ = ["KerasTensor", "Node", "is_symbolic", "symbolic_call", "to_tensors"]

Shape = tuple[int | None, ...]


class Node:
    """One call of ``layer`` on symbolic ``inputs``; ``output`` is what it returned."""

    def __init__(self, layer: Layer, inputs: list[KerasTensor]) -> None:
        self.layer = layer
        self.inputs = inputs
        self.output: KerasTensor | None = None
        self.model: Any = None  # set when a Sequential model records its own graph

    def __repr__(self) -> str:
        return f"Node({self.layer!r} <- {[t.name for t in self.inputs]})"


class KerasTensor:
    """A placeholder for an array of ``shape`` (``keras.KerasTensor``): what layers return on symbolic inputs.

    Shapes:
        shape: (None, ...) with the batch axis first.
    """

    def __init__(self, shape: Shape, dtype: str, node: Node) -> None:
        self.shape: Shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.name = node.layer.name

    @property
    def ndim(self) -> int:
        """Number of axes, batch included."""
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


def is_symbolic(x: Any) -> bool:
    """Whether ``x`` is (or holds) symbolic tensors or ``Input`` layers rather than arrays."""
    if isinstance(x, (list, tuple)):
        return bool(x) and all(is_symbolic(t) for t in x)
    return isinstance(x, KerasTensor) or getattr(x, "is_input", False)


def to_tensors(x: Any, owner: str, what: str) -> list[KerasTensor]:
    """``x`` (a tensor, an ``Input`` layer, or a list of them) as a list of :class:`KerasTensor`.

    Raises:
        ConfigError: naming ``owner`` and ``what`` for anything else.
    """
    items = list(x) if isinstance(x, (list, tuple)) else [x]
    tensors = []
    for item in items:
        if getattr(item, "is_input", False):
            item = item.output
        if not isinstance(item, KerasTensor):
            raise ConfigError(
                f"{owner}: `{what}` must be symbolic tensors (from cl.Input(...) or a layer called on one), got "
                f"{type(item).__name__}."
            )
        tensors.append(item)
    if not tensors:
        raise ConfigError(f"{owner}: `{what}` must not be empty.")
    return tensors


def symbolic_call(layer: Layer, inputs: Any) -> KerasTensor:
    """Build ``layer`` for the inputs' shapes (if needed), record a node, return its output tensor.

    Raises:
        ConfigError: a list given to a single-input layer (or one tensor to a merge layer).
        ShapeError: a layer already built for another shape.
    """
    from convlens.rng import get_rng

    many = isinstance(inputs, (list, tuple))
    if many != layer.takes_list:
        want = "a list of tensors" if layer.takes_list else "one tensor"
        raise ConfigError(f"{layer!r}: expects {want}, got {'a list' if many else 'one tensor'}.")
    tensors = to_tensors(inputs, repr(layer), "inputs")
    shapes: Any = [t.shape for t in tensors] if many else tensors[0].shape
    if not layer.built:
        layer.build(shapes, get_rng())
    elif not layer.takes_list and layer.input_shape is not None and tuple(layer.input_shape[1:]) != shapes[1:]:
        raise ShapeError(f"{layer!r}: was built for input {layer.input_shape}, cannot take {shapes}.")
    node = Node(layer, tensors)
    node.output = KerasTensor(layer.compute_output_shape(shapes), str(layer.dtype), node)
    layer.inbound_nodes.append(node)
    return node.output
