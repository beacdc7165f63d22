"""Functional models: ``Model(inputs, outputs)`` over a graph of layers (Keras's Functional API).

Call layers on symbolic tensors from :func:`convlens.Input` to describe a graph, then build the model from
its input(s) and output(s)::

    inputs = cl.Input((28, 28, 1))
    x = cl.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    y = cl.layers.Conv2D(16, 3, padding="same")(x)
    x = cl.layers.Activation("relu")(cl.layers.Add()([x, y]))        # a residual connection
    outputs = cl.layers.Dense(10, activation="softmax")(cl.layers.GlobalAveragePooling2D()(x))
    model = cl.Model(inputs, outputs)

The model runs its nodes in topological order; the backward pass runs them in reverse and adds up the
gradients of a tensor that feeds several layers. Training (``compile``/``fit``/``evaluate``) needs one input
and one output; ``predict`` and calls also take several (lists). A layer may appear once per model (shared
layers, called twice, are refused). ``model.save('m.npz')`` / ``cl.load_model`` round-trip the graph.

>>> import convlens as cl
>>> inputs = cl.Input((8, 8, 3))
>>> x = cl.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
>>> y = cl.layers.Conv2D(4, 3, padding="same")(x)
>>> outputs = cl.layers.Dense(2)(cl.layers.GlobalAveragePooling2D()(cl.layers.Add()([x, y])))
>>> model = cl.Model(inputs, outputs)
>>> model.count_params(), model.output_shape  # (3*3*3*4 + 4) + (3*3*4*4 + 4) + (4*2 + 2)
(270, (None, 2))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from convlens import training
from convlens.errors import ConfigError, ShapeError, check_bool, check_int
from convlens.layers.base import Layer, Shape
from convlens.layers.symbolic import KerasTensor, Node, to_tensors
from convlens.model import Model
from convlens.penalties import ActivityTape

__all__ = ["Functional"]


class Functional(Model, graph=True):
    """A model over a graph of layers, built by ``cl.Model(inputs, outputs)``.

    Args:
        inputs: a symbolic tensor from ``cl.Input(...)`` (or a list of them).
        outputs: a tensor returned by a layer call on them (or a list).
        name: shown in ``summary()`` (default ``functional``, ``functional_1``...).
        trainable: False freezes every layer.

    Shapes:
        as the graph: ``model.input_shape`` and ``model.output_shape`` have a None batch axis.
    """

    def __init__(
        self, inputs: Any = None, outputs: Any = None, name: str | None = None, trainable: bool = True
    ) -> None:
        if inputs is None or outputs is None:
            raise ConfigError(
                "Model: give `inputs` and `outputs` (cl.Model(inputs, outputs)); subclassing Model with a call() "
                "method is not supported by convlens."
            )
        owner = f"Model '{name or 'functional'}'"
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        self._inputs = to_tensors(inputs, owner, "inputs")
        self._outputs = to_tensors(outputs, owner, "outputs")
        self._nodes = _topological_nodes(self._inputs, self._outputs, owner)
        self._init_model(name, "functional", trainable)
        self._layer_list = [t.node.layer for t in self._inputs] + [n.layer for n in self._nodes]
        if len({id(layer) for layer in self._layer_list}) != len(self._layer_list):
            raise ConfigError(f"{self!r}: a layer is called twice in this graph; shared layers are not supported.")
        names = [layer.name for layer in self._layer_list]
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"{self!r}: layer names must be unique, got {', '.join(map(repr, repeated))} twice.")
        self.built = True
        self._get_rng()  # the generator that drew its layers' weights shuffles its batches (as a Sequential's does)
        input_ids = {id(t) for t in self._inputs}
        for node in self._nodes:
            # Layers fed only by model inputs need no input gradient.
            node.layer.compute_grad_x = not all(id(t) in input_ids for t in node.inputs) or node.layer.takes_list
        if not trainable:
            self.trainable = False

    # ----- structure ------------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """Every layer in topological order, ``Input`` layers first (as Keras)."""
        return list(self._layer_list)

    @property
    def inputs(self) -> list[KerasTensor]:
        """The symbolic inputs."""
        return list(self._inputs)

    @property
    def outputs(self) -> list[KerasTensor]:
        """The symbolic outputs."""
        return list(self._outputs)

    @property
    def input(self) -> Any:
        """The input tensor (a list when the model has several)."""
        return self._inputs[0] if self._single_input else list(self._inputs)

    @property
    def output(self) -> Any:
        """The output tensor (a list when the model has several)."""
        return self._outputs[0] if self._single_output else list(self._outputs)

    @property
    def input_shape(self) -> Any:
        """Input shape with the batch axis (a list for several inputs)."""
        shapes = [t.shape for t in self._inputs]
        return shapes[0] if self._single_input else shapes

    @property
    def output_shape(self) -> Any:
        """Output shape with the batch axis (a list for several outputs)."""
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if self._single_output else shapes

    @property
    def nodes(self) -> list[Node]:
        """The layer calls in the order they run."""
        return list(self._nodes)

    def build(self, input_shape: Any = None) -> None:
        """A Functional model is built when created; kept for Keras compatibility."""
        self.built = True

    def _single(self, what: str) -> None:
        if len(self._inputs) != 1 or len(self._outputs) != 1:
            raise ConfigError(
                f"{self!r}: {what} needs a model with one input and one output, this one has {len(self._inputs)} "
                f"and {len(self._outputs)}; predict() and calls take several."
            )

    def compile(self, *args: Any, **kwargs: Any) -> None:
        self._single("compile")
        super().compile(*args, **kwargs)

    # ----- running the graph ----------------------------------------------------------------------
    @property
    def _owner(self) -> str:
        return f"Model '{self.name}'"

    def _expected_input(self) -> Shape | None:
        return self._inputs[0].shape

    def _activation_shapes(self) -> Iterator[tuple[Layer, Shape]]:
        for node in self._nodes:
            yield node.layer, node.output.shape  # type: ignore[union-attr]

    def _inputs_of(self, x: Any) -> list[np.ndarray]:
        """The input arrays (one per model input, the same number of samples), each checked against its input."""
        several = len(self._inputs) > 1
        items = list(x) if isinstance(x, (list, tuple)) and several else [x]
        if len(items) != len(self._inputs):
            raise ConfigError(f"{self!r}: expects {len(self._inputs)} input arrays, got {len(items)}.")
        arrays = [self._as_input(a, f"x[{i}]" if several else "x") for i, a in enumerate(items)]
        for i, (array, tensor) in enumerate(zip(arrays, self._inputs, strict=True)):
            if array.ndim == 0:
                raise ShapeError(f"{self._owner}: the model needs a batch of samples, got a scalar.")
            self._check_x(array, f"x[{i}]" if several else "x", tensor.shape)
        if any(a.shape[0] != arrays[0].shape[0] for a in arrays):
            raise ShapeError(
                f"{self!r}: every input needs the same number of samples, got {[a.shape[0] for a in arrays]}."
            )
        return arrays

    def _empty_outputs(self) -> Any:
        outputs = [np.zeros((0, *(s or 0 for s in t.shape[1:])), np.float32) for t in self._outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    def _run(
        self, arrays: list[np.ndarray], training: bool, tape: ActivityTape | None, units: list[Any] | None = None
    ) -> dict[int, np.ndarray]:
        """Every tensor's value (``units``: stand-ins for the nodes' layers, in node order: a thread's twins in a
        split step)."""
        values = {id(t): a for t, a in zip(self._inputs, arrays, strict=True)}
        for i, node in enumerate(self._nodes):
            layer: Any = node.layer if units is None else units[i]
            args = [values[id(t)] for t in node.inputs]
            out = layer.forward(args if node.layer.takes_list else args[0], training=training)
            values[id(node.output)] = tape.record(node.layer, out) if tape is not None else out
        return values

    def _forward(self, x: Any, training: bool, tape: ActivityTape | None = None, units: list[Any] | None = None) -> Any:
        arrays = x if isinstance(x, list) else [x]
        values = self._run(arrays, training, tape, units)
        outputs = [values[id(t)] for t in self._outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    def _output_layer(self) -> Layer | None:
        return self._outputs[0].node.layer if len(self._outputs) == 1 else None

    def _forward_train(self, x: np.ndarray, fused: bool, tape: ActivityTape) -> tuple[np.ndarray, np.ndarray]:
        y_pred = self._forward(x, training=True, tape=tape)
        logits = self._output_layer().pre_activation if fused else y_pred  # type: ignore[union-attr]
        return y_pred, logits

    def _backward_train(
        self, grad: np.ndarray, fused: bool, tape: ActivityTape, units: list[Any] | None = None
    ) -> None:
        grads: dict[int, np.ndarray] = {id(self._outputs[0]): grad}
        output_node = self._outputs[0].node
        for i in reversed(range(len(self._nodes))):
            node = self._nodes[i]
            layer = node.layer
            unit: Any = layer if units is None else units[i]
            g = grads.pop(id(node.output), None)
            if g is None:  # the output feeds nothing that reaches the loss
                for value in unit.grads.values():
                    value[...] = 0
                continue
            if fused and node is output_node:
                grad_in = unit.backward_linear(g)
            else:
                grad_in = unit.backward(tape.gradient(layer, g))
            parts = grad_in if layer.takes_list else [grad_in]
            if not layer.compute_grad_x:
                continue
            for tensor, part in zip(node.inputs, parts, strict=True):
                key = id(tensor)
                grads[key] = part if key not in grads else grads[key] + part

    def __call__(self, x: Any, training: bool = False) -> Any:
        """Run the model on a batch (a list of arrays for several inputs; an empty batch gives empty outputs)."""
        training = check_bool(training, "training", owner=self._owner)
        arrays = self._inputs_of(x)
        self._check_batch_memory(arrays[0].shape[0], "call", training=training)
        if arrays[0].shape[0] == 0:
            return self._empty_outputs()
        return self._forward(arrays, training)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Outputs for every sample (a list of arrays for several outputs); several inputs take a list of arrays
        (computed in batches, without ``steps``, ``callbacks`` or a progress bar)."""
        if len(self._inputs) > 1:
            training.refuse_unknown(self, "predict", kwargs)
            if steps is not None or callbacks:
                raise ConfigError(f"{self!r}: predict with several inputs takes no `steps` or `callbacks`.")
            batch_size = check_int(32 if batch_size is None else batch_size, "batch_size", owner="predict", minimum=1)
            training.verbosity(verbose, owner="predict")
            arrays = self._inputs_of(x)
            self._check_batch_memory(min(batch_size, arrays[0].shape[0]), "predict", training=False)
            return _predict_many(self, arrays, batch_size)
        return super().predict(x, batch_size, verbose, steps, callbacks, **kwargs)

    # ----- config ---------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """JSON-safe graph: layers in run order, each with the names of the layers feeding it."""
        layers = []
        for tensor in self._inputs:
            layer = tensor.node.layer
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config(), "inbound": []})
        for node in self._nodes:
            layers.append(
                {
                    "class_name": type(node.layer).__name__,
                    "config": node.layer.get_config(),
                    "inbound": [t.node.layer.name for t in node.inputs],
                }
            )
        return {
            "name": self.name,
            "class_name": "Functional",
            "layers": layers,
            "input_layers": [t.node.layer.name for t in self._inputs],
            "output_layers": [t.node.layer.name for t in self._outputs],
            "single_input": self._single_input,
            "single_output": self._single_output,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], registry: dict[str, type[Layer]]) -> Functional:
        """Rebuild the graph from :meth:`get_config` (fresh layers; weights are set separately).

        Raises:
            ConfigError: for an unknown layer class or a name that no earlier layer has.
        """
        layers = []
        for entry in config["layers"]:
            layer_cls = registry.get(entry.get("class_name"))
            if layer_cls is None:
                raise ConfigError(f"Model: unknown layer class {entry.get('class_name')!r} in the config.")
            layers.append(layer_cls.from_config(entry["config"]))
        return cls.from_layers(config, layers)

    @classmethod
    def from_layers(cls, config: dict[str, Any], layers: Sequence[Layer]) -> Functional:
        """Connect fresh ``layers`` (one per entry of ``config['layers']``, in order) as :meth:`get_config`
        describes them.

        Raises:
            ConfigError: for a name that no earlier layer has, or a graph a Functional model cannot be.
        """
        tensors: dict[str, Any] = {}
        for entry, layer in zip(config["layers"], layers, strict=True):
            inbound = entry.get("inbound", [])
            missing = [n for n in inbound if n not in tensors]
            if missing:
                raise ConfigError(f"Model: layer {layer.name!r} reads {missing}, which no earlier layer produces.")
            if getattr(layer, "is_input", False):
                tensors[layer.name] = layer.output
            else:
                args = [tensors[n] for n in inbound]
                tensors[layer.name] = layer(args if layer.takes_list else args[0])
        unknown = [n for n in (*config["input_layers"], *config["output_layers"]) if n not in tensors]
        if unknown:
            raise ConfigError(f"Model: the inputs or outputs name {unknown}, which no layer of the config has.")
        inputs = [tensors[n] for n in config["input_layers"]]
        outputs = [tensors[n] for n in config["output_layers"]]
        return cls(
            inputs[0] if config.get("single_input", True) else inputs,
            outputs[0] if config.get("single_output", True) else outputs,
            name=config.get("name"),
        )

    def __repr__(self) -> str:
        return f"Model '{self.name}' ({len(self._layer_list)} layers)"


def _topological_nodes(inputs: list[KerasTensor], outputs: list[KerasTensor], owner: str) -> list[Node]:
    """The nodes between ``inputs`` and ``outputs``, each after the nodes it reads (depth-first post-order)."""
    input_ids = {id(t) for t in inputs}
    order: list[Node] = []
    state: dict[int, str] = {}

    def visit(tensor: KerasTensor) -> None:
        if id(tensor) in input_ids:
            return
        node = tensor.node
        if not node.inputs:  # an Input that is not among the model's inputs
            raise ConfigError(
                f"{owner}: the graph is disconnected: {tensor.name!r} comes from an Input that is not in `inputs`."
            )
        if state.get(id(node)) == "done":
            return
        if state.get(id(node)) == "visiting":  # pragma: no cover - symbolic calls cannot make cycles
            raise ConfigError(f"{owner}: the graph has a cycle at {node.layer!r}.")
        state[id(node)] = "visiting"
        for parent in node.inputs:
            visit(parent)
        state[id(node)] = "done"
        order.append(node)

    for tensor in outputs:
        visit(tensor)
    return order


def _predict_many(model: Functional, arrays: list[np.ndarray], batch_size: int) -> Any:
    n = arrays[0].shape[0]
    parts = [
        model._forward([a[lo : lo + batch_size] for a in arrays], training=False) for lo in range(0, n, batch_size)
    ]
    if not parts:
        return model._empty_outputs()
    if isinstance(parts[0], list):
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    return np.concatenate(parts)
