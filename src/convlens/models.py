"""``Sequential``: a stack of layers with Keras's build / compile / fit / evaluate / predict / summary.

>>> import numpy as np
>>> import convlens as cl
>>> model = cl.Sequential([
...     cl.layers.Conv2D(32, (3, 3), padding="same", activation="relu", input_shape=(28, 28, 1)),
...     cl.layers.MaxPooling2D((2, 2)),
...     cl.layers.Flatten(),
...     cl.layers.Dense(10, activation="softmax"),
... ])
>>> model.count_params()  # (3*3*1*32 + 32) + (14*14*32*10 + 10)
63050
>>> model.output_shape
(None, 10)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from convlens import allocator, extensions, training
from convlens.callbacks import CallbackList, History
from convlens.errors import (
    ConfigError,
    ConfigTypeError,
    ShapeError,
    StateError,
    check_bool,
    check_choice,
    check_float,
    check_int,
    short_repr,
)
from convlens.layers.base import Layer, Shape
from convlens.model_checks import InputChecks, check_callbacks
from convlens.progbar import Progbar
from convlens.resources import check_arrays

__all__ = ["Sequential"]

_MODEL_COUNT = [0]


class Sequential(InputChecks):
    """A linear stack of layers (``keras.Sequential``).

    Args:
        layers: layers in order; the first may carry ``input_shape`` (or be an ``Input``).
        name: model name shown in ``summary()``.
    """

    def __init__(self, layers: Iterable[Layer] | None = None, name: str | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigTypeError(f"Sequential: `name` must be a non-empty string, got {short_repr(name)}.")
        if layers is not None and (isinstance(layers, (str, bytes, dict)) or not isinstance(layers, Iterable)):
            raise ConfigTypeError(f"Sequential: `layers` must be a list of layers, got {short_repr(layers)}.")
        self.name = name or ("sequential" if _MODEL_COUNT[0] == 0 else f"sequential_{_MODEL_COUNT[0]}")
        _MODEL_COUNT[0] += 1
        self._layers: list[Layer] = []
        self._input_shape: Shape | None = None
        self.built = False
        self.optimizer: Any = None
        self.loss: Any = None
        self.metrics: list[Any] = []
        self.compiled = False
        self.stop_training = False
        self.history: History | None = None
        self._rng: np.random.Generator | None = None
        self.fuse = True
        self._stages: list[Any] | None = None
        self._stages_fuse: bool | None = None
        for layer in layers or []:
            self.add(layer)

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

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise StateError("Sequential.pop: the model has no layers.")
        layer = self._layers.pop()
        self.built = False
        self._stages = None
        if self._layers and self._input_shape is not None:
            self.build(self._input_shape)
        return layer

    def _get_rng(self) -> np.random.Generator:
        if self._rng is None:
            from convlens.utils import get_rng

            self._rng = get_rng()
        return self._rng

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Create every layer's weights for ``input_shape`` (batch axis included, e.g. (None, 28, 28, 1))."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise StateError(
                f"Sequential '{self.name}': cannot build without an input shape; pass input_shape= to the first "
                "layer, add an Input layer, or call the model on data."
            )
        shape = self._check_build_shape(input_shape)
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
        self._input_shape = tuple(input_shape)
        self.built = True
        self._stages = None

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

    # ----- weights --------------------------------------------------------------------------------
    def _trainable(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        params: list[np.ndarray] = []
        grads: list[np.ndarray] = []
        for layer in self._layers:
            if layer.trainable:
                for key, value in layer.params.items():
                    params.append(value)
                    grads.append(layer.grads[key])
        return params, grads

    def get_weights(self) -> list[np.ndarray]:
        """All layers' weights, in layer order and Keras layouts."""
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set all weights from a list in :meth:`get_weights` order."""
        self._require_built("set_weights")
        if not isinstance(weights, (list, tuple)):
            raise ConfigTypeError(
                f"Sequential '{self.name}': set_weights expects a list of arrays, got {short_repr(weights)}."
            )
        weights = list(weights)
        expected = sum(len(layer.get_weights()) for layer in self._layers)
        if len(weights) != expected:
            raise ShapeError(f"Sequential '{self.name}': set_weights expects {expected} arrays, got {len(weights)}.")
        i = 0
        for layer in self._layers:
            n = len(layer.get_weights())
            layer.set_weights(weights[i : i + n])
            i += n

    def count_params(self) -> int:
        """Total number of weights."""
        self._require_built("count_params")
        return sum(layer.count_params() for layer in self._layers)

    # ----- forward/backward -----------------------------------------------------------------------
    def stages(self) -> list[Any]:
        """What runs: the layers, with fusable neighbours joined (see :mod:`convlens.fusion`)."""
        from convlens.fusion import plan_stages

        if self._stages is None or self._stages_fuse != self.fuse:
            self._stages = plan_stages(self._layers, fuse=self.fuse)
            self._stages_fuse = self.fuse
        return self._stages

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for stage in self.stages():
            x = stage.forward(x, training=training)
        return x

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        """Run the model on a batch (builds it from ``x`` on the first call; an empty batch gives an empty output)."""
        training = check_bool(training, "training", owner=f"Sequential '{self.name}'")
        x = self._inference_input(x, "the model")
        self._check_batch_memory(x.shape[0], "call", training=training)
        if x.shape[0] == 0:
            return np.zeros((0, *(s or 0 for s in self.output_shape[1:])), np.float32)
        return self._forward(x, training)

    # ----- compile ---------------------------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Sequence[Any] | None = None) -> None:
        """Configure training: ``optimizer`` and ``loss`` by name or object, ``metrics`` names (e.g. ['accuracy'])."""
        from convlens import metrics as metrics_module
        from convlens import optimizers
        from convlens.ops.losses import get_loss

        if loss is None:
            raise ConfigError(
                f"Sequential '{self.name}': compile needs a `loss`, e.g. 'sparse_categorical_crossentropy'."
            )
        self.optimizer = optimizers.get(optimizer)
        self.loss = get_loss(loss, owner=f"Sequential '{self.name}'")
        if metrics is not None and (isinstance(metrics, str) or not isinstance(metrics, (list, tuple))):
            raise ConfigTypeError(
                f"Sequential '{self.name}': `metrics` must be a list such as ['accuracy'], got {short_repr(metrics)}."
            )
        self._metric_ids = list(metrics or [])
        self.metrics = [metrics_module.get(m, self.loss.name) for m in self._metric_ids]
        self.compiled = True

    def _fused(self) -> bool:
        """Whether the loss can start from the last layer's logits (softmax/sigmoid + cross-entropy)."""
        last = self._layers[-1] if self._layers else None
        act = getattr(getattr(last, "activation", None), "name", None)
        return act is not None and act == self.loss.fused_activation and hasattr(last, "backward_linear")

    def _loss_and_grad(self, y: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward in training mode, loss, and the backward pass (fills every layer's grads)."""
        layers = self.stages()
        if self._fused():
            for layer in layers[:-1]:
                x = layer.forward(x, training=True)
            last = layers[-1]
            y_pred = last.forward(x, training=True)
            logits = last.pre_activation  # type: ignore[attr-defined]
            loss, grad = self.loss.fused(y, logits)[:2]
            grad = last.backward_linear(grad)  # type: ignore[attr-defined]
        else:
            for layer in layers:
                x = layer.forward(x, training=True)
            y_pred = x
            loss = self.loss.forward(y, y_pred)
            grad = layers[-1].backward(self.loss.backward(y, y_pred))
        for layer in reversed(layers[:-1]):
            grad = layer.backward(grad)
        self._last_pred = y_pred
        return float(loss), y_pred

    def train_on_batch(self, x: Any, y: Any, return_dict: bool = False, *, on_nan: str = "stop") -> Any:
        """One gradient step on one batch; returns the loss (and metrics) for that batch.

        ``x`` and ``y`` must be finite; ``on_nan`` as in :meth:`fit` ('stop' skips a diverged step and warns).
        """
        self._require_compiled("train_on_batch")
        return_dict = check_bool(return_dict, "return_dict", owner=f"Sequential '{self.name}'")
        on_nan = check_choice(on_nan, "on_nan", training.NAN_POLICIES, owner=f"Sequential '{self.name}'")
        x, y = self._training_data(x, y, "train_on_batch")
        self._check_batch_memory(x.shape[0], "train_on_batch", training=True)
        loss, y_pred, problem = training.train_step(self, x, y, *self._trainable(), on_nan)
        if problem is not None:
            training.non_finite_loss(self, problem, "train_on_batch", on_nan, stopped=False)
        return self._batch_logs(loss, y, y_pred, return_dict)

    def _batch_logs(self, loss: float, y: np.ndarray, y_pred: np.ndarray, return_dict: bool) -> Any:
        values = {"loss": loss}
        for metric in self.metrics:
            metric.reset()
            metric.update(y, y_pred)
            values[metric.name] = metric.result()
        if return_dict:
            return values
        return loss if not self.metrics else list(values.values())

    def test_on_batch(self, x: Any, y: Any, return_dict: bool = False) -> Any:
        """Loss (and metrics) of one batch without updating weights."""
        self._require_compiled("test_on_batch")
        return_dict = check_bool(return_dict, "return_dict", owner=f"Sequential '{self.name}'")
        x = self._as_input(x, "x")
        self._require_built("test_on_batch")
        self._check_x(x)
        self._check_not_empty(x, "test_on_batch")
        y = self._prepare_y(y, x.shape[0])
        self._check_batch_memory(x.shape[0], "test_on_batch", training=False)
        y_pred = self._forward(x, training=False)
        return self._batch_logs(float(self.loss.forward(y, y_pred)), y, y_pred, return_dict)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        """Outputs for one batch."""
        return self(x)

    # ----- fit / evaluate / predict -----------------------------------------------------------------
    @allocator.heap_reuse
    @training.accepts_datasets
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Sequence[Any] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        initial_epoch: int = 0,
        *,
        on_nan: str = "stop",
    ) -> History:
        """Train for ``epochs`` epochs of mini-batch gradient descent (Keras semantics); return the History.

        ``validation_split`` takes the LAST fraction of the samples before shuffling, as Keras does. Every
        argument is checked before anything trains; ``x`` and ``y`` must be finite. ``on_nan`` (not in Keras):
        when a batch diverges (:func:`convlens.training.diverged`), 'stop' skips its update, stops and warns
        (:class:`~convlens.training.NonFiniteLossWarning`), 'raise' raises ``StateError``, 'continue' trains on.
        """
        self._require_compiled("fit")
        if x is None or y is None:
            raise ConfigError(f"Sequential '{self.name}': fit needs x and y.")
        batch_size = check_int(32 if batch_size is None else batch_size, "batch_size", owner="fit", minimum=1)
        epochs = check_int(epochs, "epochs", owner="fit", minimum=0)
        initial_epoch = check_int(initial_epoch, "initial_epoch", owner="fit", minimum=0)
        validation_split = check_float(
            validation_split, "validation_split", owner="fit", minimum=0.0, maximum=1.0, inclusive_max=False
        )
        shuffle = check_bool(shuffle, "shuffle", owner="fit")
        on_nan = check_choice(on_nan, "on_nan", training.NAN_POLICIES, owner="fit")
        verbose_level = training.verbosity(verbose, owner="fit")
        user_callbacks = check_callbacks(callbacks)
        x, y = self._training_data(x, y, "fit")
        self._check_batch_memory(min(batch_size, x.shape[0]), "fit", training=True)
        x, y, val = training.split_validation(self, x, y, validation_split, validation_data)
        n = x.shape[0]
        steps = -(-n // batch_size)
        self.history = History()
        cb_list = CallbackList(
            [*user_callbacks, self.history],
            model=self,
            params={"epochs": epochs, "steps": steps, "verbose": verbose_level, "do_validation": val is not None},
        )
        rng = self._get_rng()
        self.stop_training = False
        cb_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cb_list.on_epoch_begin(epoch)
            if verbose_level and epochs > 1:
                print(f"Epoch {epoch + 1}/{epochs}", file=sys.stdout, flush=True)
            bar = Progbar(steps, verbose=verbose_level) if verbose_level else None
            order = rng.permutation(n) if shuffle else None
            epoch_logs = training.train_epoch(self, x, y, batch_size, order, cb_list, bar, epoch=epoch, on_nan=on_nan)
            if val is not None:
                val_logs = self.evaluate(val[0], val[1], batch_size=batch_size, verbose=0, return_dict=True)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            if bar is not None:
                bar.update(steps, list(training.ordered(epoch_logs).items()), finalize=True)
            cb_list.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cb_list.on_train_end()
        return self.history

    @allocator.heap_reuse
    @training.accepts_datasets
    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        return_dict: bool = False,
    ) -> Any:
        """Loss and metrics over ``(x, y)``, in batches (no weight updates)."""
        self._require_compiled("evaluate")
        batch_size = check_int(32 if batch_size is None else batch_size, "batch_size", owner="evaluate", minimum=1)
        verbose_level = training.verbosity(verbose, owner="evaluate")
        return_dict = check_bool(return_dict, "return_dict", owner="evaluate")
        x = self._as_input(x, "x")
        self._require_built("evaluate")
        self._check_x(x)
        self._check_not_empty(x, "evaluate")
        y = self._prepare_y(y, x.shape[0])
        self._check_batch_memory(min(batch_size, x.shape[0]), "evaluate", training=False)
        logs = training.evaluate_arrays(self, x, y, batch_size, verbose_level)
        if return_dict:
            return logs
        return logs.get("loss") if not self.metrics else [logs["loss"], *(logs[m.name] for m in self.metrics)]

    @allocator.heap_reuse
    @training.accepts_datasets
    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto") -> np.ndarray:
        """Outputs for every sample of ``x`` in batches (default 32); ``verbose`` 'auto'/1: Keras's bar, 0: none."""
        batch_size = check_int(32 if batch_size is None else batch_size, "batch_size", owner="predict", minimum=1)
        verbose_level = training.verbosity(verbose, owner="predict")
        x = self._inference_input(x, "predict")
        self._check_batch_memory(min(batch_size, x.shape[0]), "predict", training=False)
        check_arrays([("the predictions", (x.shape[0], *(s or 0 for s in self.output_shape[1:])), 4)], owner="predict")
        out = training.predict_arrays(self, x, batch_size, verbose_level)
        if out is None:
            return np.empty((0, *self.output_shape[1:]), np.float32)  # type: ignore[arg-type, misc]
        return out

    # ----- summary / config / saving ------------------------------------------------------------
    def summary(
        self,
        print_fn: Any = None,
        line_length: int | None = None,
        *,
        detail: bool = False,
        columns: Sequence[str] | None = None,
        format: str = "text",
    ) -> None:
        """Print Keras's table (layer (type), output shape, parameter count, totals), or with ``detail=True``
        (or ``columns``/``format``: 'text', 'rich', 'markdown', 'json', 'html') the lab's full table of
        :mod:`convlens.lab.summary`: formulas, MACs, FLOPs, receptive field, jump, memory, why, versus dense.
        """
        if detail or columns is not None or format != "text":
            text = extensions.provider("summary.render")(self, columns=columns, fmt=format)
        else:
            text = self.summary_text()
        (print_fn or print)(text)

    def _repr_html_(self) -> str:
        """Jupyter shows the detailed summary as an HTML table."""
        return str(extensions.provider("summary.render")(self, fmt="html"))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter: Keras's one-line ``text/plain`` and, once built, the detailed summary as ``text/html``."""
        bundle = {"text/plain": f"<Sequential name={self.name}, built={self.built}>"}
        if self.built and self._input_shape is not None:
            bundle["text/html"] = self._repr_html_()
        return bundle

    def summary_text(self) -> str:
        """The :meth:`summary` table as a string."""
        from convlens.summary_table import model_summary

        self._require_built("summary")
        return model_summary(self)

    def get_config(self) -> dict[str, Any]:
        """JSON-safe description of the architecture."""
        return {
            "name": self.name,
            "input_shape": None if self._input_shape is None else list(self._input_shape[1:]),
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self._layers],
        }

    def save(self, path: Any) -> None:
        """Save by suffix: ``.npz`` (weights, compile settings, optimizer state, history) or ``.keras`` (Keras 3)."""
        extensions.provider("model.save")(self, path)

    def save_weights(self, path: Any) -> None:
        """Save only the weights: ``.npz``, ``.weights.h5`` (Keras 3), ``.safetensors`` or ``.pt`` (torch)."""
        extensions.provider("model.save_weights")(self, path)

    def load_weights(self, path: Any) -> None:
        """Load weights saved by :meth:`save_weights` or :meth:`save` (by suffix, as ``save_weights``)."""
        extensions.provider("model.load_weights")(self, path)

    def export(self, path: Any, format: str | None = None) -> None:
        """Write the model for another runtime: ``format='onnx'`` or a ``.onnx`` path (as Keras's ``export``)."""
        extensions.provider("model.export")(self, path, format)

    def __repr__(self) -> str:
        return f"Sequential '{self.name}' ({len(self._layers)} layers)"
