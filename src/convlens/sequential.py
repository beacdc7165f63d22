"""``Sequential``: a linear stack of layers (``keras.Sequential``), on top of :class:`convlens.model.Model`.

It runs its stages (:func:`convlens.fusion.plan_stages`: fusable neighbours joined) and offers the lab's
detailed summary.

>>> import convlens as cl
>>> model = cl.Sequential([cl.Input((4,)), cl.layers.Dense(3), cl.layers.Dense(2)])
>>> model.output_shape, model.layers[0].output.shape
((None, 2), (None, 3))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from convlens.errors import ConfigError, ConfigTypeError, ShapeError, StateError, check_bool, short_repr
from convlens.layers.base import Layer, Shape
from convlens.layers.symbolic import KerasTensor
from convlens.model import Model
from convlens.penalties import ActivityTape

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers (``keras.Sequential``).

    Args:
        layers: layers in order; the first may carry ``input_shape`` (or be an ``Input``).
        name: model name shown in ``summary()``.
        trainable: False freezes every layer.
    """

    def __init__(self, layers: Iterable[Layer] | None = None, name: str | None = None, trainable: bool = True) -> None:
        self._init_model(name, "sequential", trainable)
        if layers is not None and (isinstance(layers, (str, bytes, dict)) or not isinstance(layers, Iterable)):
            raise ConfigTypeError(f"Sequential: `layers` must be a list of layers, got {short_repr(layers)}.")
        self._layers: list[Layer] = []
        self._input_shape: Shape | None = None
        self._input_layer: Any = None
        self.fuse = True
        self._stages: list[Any] | None = None
        self._stages_fuse: bool | None = None
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    # ----- structure ------------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers, without the ``Input`` marker."""
        return list(self._layers)

    def add(self, layer: Layer) -> None:
        """Append a layer (an ``Input`` layer sets the input shape instead)."""
        if not isinstance(layer, Layer):
            raise ConfigTypeError(
                f"Sequential.add: expected a convlens layer, got {type(layer).__name__} ({short_repr(layer, 60)})."
            )
        if getattr(layer, "is_input", False):
            if self._layers:
                raise ConfigError(f"Sequential.add: an Input layer must come first, got it after {self._layers[-1]!r}.")
            self._input_shape = (None, *layer.input_shape_arg)  # type: ignore[misc]
            self._input_layer = layer
            return
        if any(existing.name == layer.name for existing in self._layers):
            raise ConfigError(f"Sequential.add: the model already has a layer named '{layer.name}'.")
        if not self._layers and self._input_shape is None and layer.input_shape_arg is not None:
            self._input_shape = (None, *layer.input_shape_arg)
        self._layers.append(layer)
        self.built = False
        self._stages = None
        if self._input_shape is not None:
            self.build(self._input_shape)

    def pop(self, rebuild: bool = True) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise StateError("Sequential.pop: the model has no layers.")
        layer = self._layers.pop()
        self._forget_nodes([layer])
        self.built = False
        self._stages = None
        if rebuild and self._layers and self._input_shape is not None:
            self.build(self._input_shape)
        return layer

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Create every layer's weights for ``input_shape`` (batch axis included, e.g. (None, 28, 28, 1))."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise StateError(
                f"Sequential '{self.name}': cannot build without an input shape; pass input_shape= to the first "
                "layer, add an Input layer, or call the model on data."
            )
        checked = shape = self._check_build_shape(input_shape)
        rng = self._get_rng()
        for layer in self._layers:
            if not layer.built or layer.input_shape != shape:
                if layer.built and layer.input_shape is not None and layer.input_shape[1:] != shape[1:]:
                    raise ShapeError(f"{layer!r}: was built for input {layer.input_shape}, cannot take {shape}.")
                if not layer.built:
                    layer.build(shape, rng)
            shape = layer.compute_output_shape(shape)
        for i, layer in enumerate(self._layers):
            layer.compute_grad_x = i > 0
        self._input_shape = checked
        self.built = True
        self._stages = None
        self._connect()

    def _forget_nodes(self, layers: Iterable[Layer]) -> None:
        for layer in layers:
            layer.inbound_nodes = [n for n in layer.inbound_nodes if n.model is not self]

    def _connect(self) -> None:
        """Record the symbolic graph (``model.inputs``, ``layer.output``...) of the built stack."""
        from convlens.layers.core import Input

        self._forget_nodes(self._layers)
        if self._input_layer is None or self._input_layer.shape[1:] != self._input_shape[1:]:  # type: ignore[index]
            self._input_layer = Input(batch_shape=self._input_shape)
        tensor = self._input_layer.output
        for layer in self._layers:
            tensor = layer(tensor)
            layer.inbound_nodes[-1].model = self
        self._output_tensor: KerasTensor = tensor

    @property
    def inputs(self) -> list[KerasTensor]:
        """The symbolic input (a one-element list, as Keras), for ``Model(model.inputs, layer.output)``."""
        self._require_built("inputs")
        return [self._input_layer.output]

    @property
    def outputs(self) -> list[KerasTensor]:
        """The symbolic output (a one-element list)."""
        self._require_built("outputs")
        return [self._output_tensor]

    @property
    def input(self) -> KerasTensor:
        """The symbolic input tensor."""
        return self.inputs[0]

    @property
    def output(self) -> KerasTensor:
        """The symbolic output tensor."""
        return self.outputs[0]

    @property
    def input_shape(self) -> Shape | None:
        """Input shape with a None batch axis."""
        return self._input_shape

    @property
    def output_shape(self) -> Shape:
        """Output shape with a None batch axis (pure arithmetic)."""
        self._require_built("output_shape")
        shape: Shape = self._input_shape  # type: ignore[assignment]
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    # ----- forward/backward -----------------------------------------------------------------------
    @property
    def _owner(self) -> str:
        return f"Sequential '{self.name}'"

    def _expected_input(self) -> Shape | None:
        # any batch size: the batch axis of build((8, ...)) is not a promise about later calls
        return None if self._input_shape is None else (None, *self._input_shape[1:])

    def _activation_shapes(self) -> Iterator[tuple[Layer, Shape]]:
        shape: Shape = self._input_shape  # type: ignore[assignment]
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
            yield layer, shape

    def _has_detailed_summary(self) -> bool:
        return True

    def stages(self) -> list[Any]:
        """What runs: the layers, with fusable neighbours joined (see :mod:`convlens.fusion`); no fusion when
        a layer has an activity regularizer (its output must exist)."""
        from convlens.fusion import plan_stages

        fuse = self.fuse and not any(layer.activity_regularizer is not None for layer in self._layers)
        if self._stages is None or self._stages_fuse != fuse:
            self._stages = plan_stages(self._layers, fuse=fuse)
            self._stages_fuse = fuse
        return self._stages

    def _forward(
        self, x: np.ndarray, training: bool, tape: ActivityTape | None = None, stages: list[Any] | None = None
    ) -> np.ndarray:
        """The stages' forward (``stages``: stand-ins for :meth:`stages`, a thread's twins in a split step)."""
        for stage in self.stages() if stages is None else stages:
            x = stage.forward(x, training=training)
            if tape is not None:
                tape.record(stage, x)
        return x

    def _output_layer(self) -> Layer | None:
        return self._layers[-1] if self._layers else None

    def _forward_train(self, x: np.ndarray, fused: bool, tape: ActivityTape) -> tuple[np.ndarray, np.ndarray]:
        y_pred = self._forward(x, training=True, tape=tape)
        logits = self.stages()[-1].pre_activation if fused else y_pred
        return y_pred, logits

    def _backward_train(
        self, grad: np.ndarray, fused: bool, tape: ActivityTape, stages: list[Any] | None = None
    ) -> None:
        stages = self.stages() if stages is None else stages
        grad = stages[-1].backward_linear(grad) if fused else stages[-1].backward(tape.gradient(stages[-1], grad))
        for stage in reversed(stages[:-1]):
            grad = stage.backward(tape.gradient(stage, grad))

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        """Run the model on a batch (builds it from ``x`` on the first call; an empty batch gives an empty output)."""
        training = check_bool(training, "training", owner=self._owner)
        x = self._inference_input(x, "the model")
        self._check_batch_memory(x.shape[0], "call", training=training)
        if x.shape[0] == 0:
            return np.zeros((0, *(s or 0 for s in self.output_shape[1:])), np.float32)
        return self._forward(x, training)

    def get_config(self) -> dict[str, Any]:
        """JSON-safe description of the architecture."""
        return {
            "name": self.name,
            "input_shape": None if self._input_shape is None else list(self._input_shape[1:]),
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self._layers],
        }

    def __repr__(self) -> str:
        return f"Sequential '{self.name}' ({len(self._layers)} layers)"
