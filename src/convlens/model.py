"""``Model``: Keras's model API (fit / evaluate / predict / summary / save / weights), shared by
:class:`~convlens.sequential.Sequential` and :class:`~convlens.functional.Functional` models.

The argument checks come from :class:`~convlens.model_checks.InputChecks`, the training step and compile
from :class:`~convlens.trainer.Trainer`, the loops from :mod:`convlens.training`. ``Model(inputs, outputs)``
builds a Functional model, as in Keras; import it from :mod:`convlens.models` (``cl.Model``), which loads
both kinds. The lab's detailed summary and the file formats of other libraries sit on upper floors; the model
reaches them through :mod:`convlens.extensions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from convlens import allocator, extensions, training
from convlens.callbacks import History
from convlens.errors import ConfigError, ConfigTypeError, ShapeError, StateError, check_bool, short_repr
from convlens.layers.base import Layer
from convlens.trainer import Trainer
from convlens.training_data import accepts_datasets

__all__ = ["Model"]

_MODEL_COUNT: dict[str, int] = {}


class Model(Trainer):
    """Keras's ``Model``: ``Model(inputs, outputs)`` builds a Functional model (see
    :class:`convlens.functional.Functional`); ``Sequential`` is the other kind. Subclassing with a
    ``call`` method (Keras's third way) is not supported: convlens needs each layer's backward pass.
    """

    _graph_kind: ClassVar[type[Model] | None] = None  # the class Model(inputs, outputs) makes

    def __init_subclass__(cls, graph: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if graph:  # class Functional(Model, graph=True): what Model(inputs, outputs) returns
            Model._graph_kind = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is Model:
            if Model._graph_kind is None:
                raise StateError("Model: import it from convlens.models (cl.Model), which loads Functional models.")
            return super().__new__(Model._graph_kind)
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigError(
            f"{type(self).__name__}: subclassing Model with a call() method is not supported by convlens; build "
            "the model with cl.Sequential([...]) or cl.Model(inputs, outputs)."
        )

    def _init_model(self, name: str | None, kind: str, trainable: Any) -> None:
        label = "Sequential" if kind == "sequential" else "Model"
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigTypeError(f"{label}: `name` must be a non-empty string, got {short_repr(name)}.")
        check_bool(trainable, "trainable", owner=label)
        count = _MODEL_COUNT.get(kind, 0)
        _MODEL_COUNT[kind] = count + 1
        self.name = name or (kind if count == 0 else f"{kind}_{count}")
        self.built = False
        self.optimizer: Any = None
        self.loss: Any = None
        self.metrics: list[Any] = []
        self.weighted_metrics: list[Any] = []
        self._metric_ids: list[Any] = []
        self._weighted_metric_ids: list[Any] = []
        self.compiled = False
        self.stop_training = False
        self.history: History | None = None
        self._rng: np.random.Generator | None = None
        self._initial_epoch: int | None = None  # set by BackupAndRestore in on_train_begin, as Keras

    def _get_rng(self) -> np.random.Generator:
        if self._rng is None:
            from convlens.utils import get_rng

            self._rng = get_rng()
        return self._rng

    def get_layer(self, name: str | int | None = None, index: int | None = None) -> Layer:
        """A layer by ``name`` or by position ``index`` in :attr:`layers` (an int ``name`` is taken as an index).

        Raises:
            ConfigError: both or neither given, or no such layer (the message lists the names).
        """
        if isinstance(name, int) and not isinstance(name, bool) and index is None:
            name, index = None, name
        layers = self.layers
        if (name is None) == (index is None):
            raise ConfigError(f"{self!r}: get_layer needs a layer `name` or an `index`, not both or neither.")
        if index is not None:
            if not isinstance(index, int) or isinstance(index, bool) or not -len(layers) <= index < len(layers):
                raise ConfigError(
                    f"{self!r}: get_layer index {short_repr(index)} is out of range for {len(layers)} layers."
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        names = ", ".join(repr(layer.name) for layer in layers)
        raise ConfigError(f"{self!r}: no layer named {short_repr(name)}; the layers are {names}.")

    @property
    def trainable(self) -> bool:
        """False when every layer is frozen; setting it sets every layer's ``trainable``."""
        return any(layer.trainable for layer in self.layers) or not self.layers

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = check_bool(value, "trainable", owner=self._owner)
        for layer in self.layers:
            layer.trainable = value

    # ----- weights --------------------------------------------------------------------------------
    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """The arrays ``fit`` updates (the weights of trainable layers, BatchNormalization's statistics excluded)."""
        return self._trainable()[0]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """Frozen layers' weights and every layer's state (e.g. moving statistics)."""
        out: list[np.ndarray] = []
        for layer in self.layers:
            if not layer.trainable:
                out.extend(layer.params.values())
            out.extend(layer.state.values())
        return out

    def get_weights(self) -> list[np.ndarray]:
        """All layers' weights, in layer order and Keras layouts."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set all weights from a list in :meth:`get_weights` order (each layer checks its arrays)."""
        self._require_built("set_weights")
        if not isinstance(weights, (list, tuple)):
            raise ConfigTypeError(f"{self._owner}: set_weights expects a list of arrays, got {short_repr(weights)}.")
        weights = list(weights)
        layers = self.layers
        expected = sum(len(layer.get_weights()) for layer in layers)
        if len(weights) != expected:
            raise ShapeError(f"{self._owner}: set_weights expects {expected} arrays, got {len(weights)}.")
        i = 0
        for layer in layers:
            n = len(layer.get_weights())
            layer.set_weights(weights[i : i + n])
            i += n

    def count_params(self) -> int:
        """Total number of weights."""
        self._require_built("count_params")
        return sum(layer.count_params() for layer in self.layers)

    # ----- fit / evaluate / predict -----------------------------------------------------------------
    @allocator.heap_reuse
    @accepts_datasets
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
        shuffle: Any = True,
        class_weight: dict[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: Any = 1,
        *,
        on_nan: str = "stop",
        **kwargs: Any,
    ) -> History:
        """Train for ``epochs`` epochs of mini-batch gradient descent, with Keras 3's arguments and semantics.

        ``validation_split`` takes the LAST fraction of the samples (and of ``sample_weight``) before shuffling;
        ``validation_data`` is ``(x, y)`` or ``(x, y, sample_weight)``; ``class_weight`` ({class: weight}) turns
        into per-sample weights of the training data; ``shuffle`` is True, False or 'batch';
        ``steps_per_epoch`` batches make an epoch and the pass over the data carries on across epochs (as
        Keras; without ``batch_size`` the batch is ``ceil(n / steps_per_epoch)``); ``validation_freq`` is an
        int (validate every that many epochs) or a list of 1-based epochs. Returns a
        :class:`~convlens.callbacks.History`.

        Every argument is checked before anything trains; ``x``, ``y`` and ``sample_weight`` must be finite.
        ``on_nan`` (not in Keras): when a batch diverges (:func:`convlens.training.diverged`), 'stop' skips its
        update, stops and warns (:class:`~convlens.training.NonFiniteLossWarning`), 'raise' raises
        ``StateError``, 'continue' trains on.
        """
        training.refuse_unknown(self, "fit", kwargs)
        self._require_compiled("fit")
        if x is None or y is None:
            raise ConfigError(f"{self._owner}: fit needs x and y.")
        return training.fit(self, **{k: v for k, v in locals().items() if k not in ("self", "kwargs")})

    @allocator.heap_reuse
    @accepts_datasets
    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
        return_dict: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Loss (data loss + regularization, weighted by ``sample_weight``) and metrics over ``(x, y)``, in
        batches (default 32; ``steps``: only the first that many), without updating weights."""
        training.refuse_unknown(self, "evaluate", kwargs)
        self._require_compiled("evaluate")
        return_dict = check_bool(return_dict, "return_dict", owner="evaluate")
        logs = training.evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks)
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else [logs[name] for name in self.metrics_names]

    @allocator.heap_reuse
    @accepts_datasets
    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Outputs for every sample of ``x`` in batches (default 32); ``verbose`` 'auto'/1: Keras's bar, 0: none."""
        training.refuse_unknown(self, "predict", kwargs)
        return training.predict(self, x, batch_size, verbose, steps, callbacks)

    # ----- summary / notebooks / saving -----------------------------------------------------------------
    def summary(
        self,
        print_fn: Any = None,
        line_length: int | None = None,
        *,
        detail: bool = False,
        columns: Sequence[str] | None = None,
        format: str = "text",
        **kwargs: Any,
    ) -> None:
        """Print Keras's table (layer (type), output shape, parameter count, totals), or with ``detail=True``
        (or ``columns``/``format``: 'text', 'rich', 'markdown', 'json', 'html') the lab's full table of
        :mod:`convlens.lab.summary`: formulas, MACs, FLOPs, receptive field, jump, memory, why, versus dense.
        Keras's ``positions``, ``expand_nested``, ``show_trainable`` and ``layer_range`` are accepted and ignored.
        """
        training.refuse_unknown(
            self, "summary", kwargs, allowed=("positions", "expand_nested", "show_trainable", "layer_range")
        )
        if print_fn is not None and not callable(print_fn):
            raise ConfigTypeError(f"{self._owner}: `print_fn` must be callable, got {short_repr(print_fn)}.")
        if check_bool(detail, "detail", owner="summary") or columns is not None or format != "text":
            if not self._has_detailed_summary():
                raise ConfigError(
                    f"{self!r}: the lab's detailed summary covers Sequential models; summary() prints this model's "
                    "table."
                )
            text = extensions.provider("summary.render")(self, columns=columns, fmt=format)
        else:
            text = self.summary_text()
        (print_fn or print)(text)

    def _has_detailed_summary(self) -> bool:
        """Whether the lab's detailed summary covers this kind of model (a stack of layers)."""
        return False

    def _repr_html_(self) -> str:
        """Jupyter shows the detailed summary as an HTML table (a Functional model: Keras's table)."""
        if not self._has_detailed_summary():
            import html

            return f"<pre>{html.escape(self.summary_text())}</pre>"
        return str(extensions.provider("summary.render")(self, fmt="html"))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter: Keras's one-line ``text/plain`` and, once built, the detailed summary as ``text/html``."""
        bundle = {"text/plain": f"<{type(self).__name__} name={self.name}, built={self.built}>"}
        if self.built and self.input_shape is not None:
            bundle["text/html"] = self._repr_html_()
        return bundle

    def summary_text(self) -> str:
        """The :meth:`summary` table as a string."""
        from convlens.summary_table import model_summary

        self._require_built("summary")
        return model_summary(self)

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
