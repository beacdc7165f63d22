"""``Trainer``: the part of Keras's ``Model`` that trains (compile, the train and test steps, ``*_on_batch``).

:class:`convlens.model.Model` builds on it (as ``keras.Model`` on Keras's ``Trainer``); Sequential and
Functional models supply the structure hooks declared here: ``layers``, ``build``, the input shape and the
forward and backward passes. The argument checks come from :class:`~convlens.model_checks.InputChecks`;
the step refuses to apply an update that diverged (``on_nan``, see :func:`convlens.training.diverged`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convlens import training
from convlens.errors import ConfigError, check_bool, check_choice, short_repr
from convlens.inference import forward_in_chunks
from convlens.layers.base import Layer
from convlens.model_checks import InputChecks
from convlens.penalties import ActivityTape, apply_constraints, weight_penalty
from convlens.training_data import sample_weights

__all__ = ["Trainer"]


class Trainer(InputChecks):
    """Compile settings and the training step shared by every model (see :class:`convlens.model.Model`)."""

    name: str
    built: bool
    optimizer: Any
    loss: Any
    metrics: list[Any]
    weighted_metrics: list[Any]
    compiled: bool

    # ----- structure (subclasses provide layers, build, shapes and the forward/backward passes) -----------------
    @property
    def layers(self) -> list[Layer]:
        """The layers (Sequential: without the ``Input`` marker; Functional: ``Input`` layers included)."""
        raise NotImplementedError

    @property
    def input_shape(self) -> Any:
        """Input shape with a None batch axis (a list for several inputs)."""
        raise NotImplementedError

    def build(self, input_shape: Any = None) -> None:
        """Create the weights (Sequential) or nothing (a Functional model is built when created)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """JSON-safe description of the architecture (what ``save`` stores)."""
        raise NotImplementedError

    def _trainable(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        params: list[np.ndarray] = []
        grads: list[np.ndarray] = []
        for layer in self.layers:
            if layer.trainable:
                for key, value in layer.params.items():
                    params.append(value)
                    grads.append(layer.grads[key])
        return params, grads

    # ----- forward/backward -----------------------------------------------------------------------
    def _forward(self, x: np.ndarray, training: bool, tape: ActivityTape | None = None) -> np.ndarray:
        raise NotImplementedError

    def _forward_train(self, x: np.ndarray, fused: bool, tape: ActivityTape) -> tuple[np.ndarray, np.ndarray]:
        """Training-mode forward; returns the predictions and (when ``fused``) the last layer's logits."""
        raise NotImplementedError

    def _backward_train(self, grad: np.ndarray, fused: bool, tape: ActivityTape) -> None:
        """Backward from the loss gradient (w.r.t. the logits when ``fused``); fills every layer's grads."""
        raise NotImplementedError

    def _output_layer(self) -> Layer | None:
        raise NotImplementedError

    def __call__(self, x: Any, training: bool = False) -> Any:
        raise NotImplementedError

    # ----- compile ---------------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Sequence[Any] | None = None,
        loss_weights: Any = None,
        weighted_metrics: Sequence[Any] | None = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Configure training: ``optimizer`` and ``loss`` by name or object (:mod:`convlens.losses`), ``metrics``
        (names or :mod:`convlens.metrics` objects; not weighted) and ``weighted_metrics`` (weighted by
        ``sample_weight``/``class_weight``), as Keras. ``run_eagerly``, ``jit_compile`` and
        ``auto_scale_loss`` change nothing here (convlens always runs eagerly in NumPy). ``metrics`` comes third,
        as convlens always had it (Keras 3 puts ``loss_weights`` there; pass it by keyword).
        """
        from convlens import losses, optimizers

        owner = self._owner
        if loss is None:
            raise ConfigError(f"{owner}: compile needs a `loss`, e.g. 'sparse_categorical_crossentropy'.")
        if loss_weights is not None:
            raise ConfigError(f"{owner}: `loss_weights` is not supported (convlens models have one output).")
        if not (isinstance(steps_per_execution, int) and steps_per_execution == 1):
            raise ConfigError(f"{owner}: `steps_per_execution` must be 1, got {short_repr(steps_per_execution)}.")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss, owner=owner)
        if self.loss.reduction == "none":
            raise ConfigError(f"{owner}: a loss with reduction='none' gives no scalar to train on; use the default.")
        training.compile_metrics(self, metrics, weighted_metrics)
        self._optimizer_ids: list[int] | None = None
        self.compiled = True

    @property
    def metrics_names(self) -> list[str]:
        """``['loss', *metric names]`` once compiled (the order of ``evaluate``'s list), [] before. Keras 3 answers
        ``['loss', 'compile_metrics']``; this is Keras 2's list, what ``dict(zip(names, evaluate(...)))`` needs."""
        if not self.compiled:
            return []
        return ["loss", *(m.name for m in (*self.metrics, *self.weighted_metrics))]

    def _fused(self) -> bool:
        """Whether the loss can start from the last layer's logits (softmax/sigmoid + cross-entropy)."""
        last = self._output_layer()
        act = getattr(getattr(last, "activation", None), "name", None)
        return (
            act is not None
            and act == self.loss.fused_activation
            and hasattr(last, "backward_linear")
            and hasattr(type(last), "pre_activation")
            and getattr(last, "activity_regularizer", None) is None
        )

    def _loss_and_grad(self, y: np.ndarray, x: np.ndarray, sample_weight: Any = None) -> tuple[float, np.ndarray]:
        """Forward in training mode, the loss as Keras reports it (data loss + regularization), and the backward
        pass (fills every layer's grads, regularizer gradients included). With two threads each may take half of
        the batch (:mod:`convlens.data_parallel`)."""
        from convlens.data_parallel import split_step

        split = split_step(self, x, y, sample_weight)
        if split is not None:
            self._last_pred = split[1]
            return split
        fused = self._fused()
        tape = ActivityTape()
        y_pred, logits = self._forward_train(x, fused, tape)
        loss, grad = self.loss.value_and_grad(y, logits if fused else y_pred, sample_weight, fused=fused)
        self._backward_train(grad, fused, tape)
        loss += tape.penalty + weight_penalty(self.layers, add_gradients=True)
        self._last_pred = y_pred
        return float(loss), y_pred

    def _train_step(
        self, x: np.ndarray, y: np.ndarray, sample_weight: Any, on_nan: str = "stop"
    ) -> tuple[float, np.ndarray, str | None]:
        """Forward, backward and (unless it diverged, see :func:`convlens.training.diverged`; never with
        ``on_nan='continue'``) one optimizer step, constraints applied after it as Keras:
        ``(loss, y_pred, why it diverged or None)``. NumPy's overflow warnings are silenced: the guard says it
        once.

        Shapes:
            x: (N, ...) inputs; y: (N, ...) targets; y_pred: the model's output.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss, y_pred = self._loss_and_grad(y, x, sample_weight)
        params, grads = self._trainable()
        problem = training.diverged(loss, grads) if on_nan != "continue" else None
        if problem is None:
            self._follow_trainable(params)
            self.optimizer.apply(params, grads)
            apply_constraints(self.layers)
        return loss, y_pred, problem

    def _follow_trainable(self, params: list[np.ndarray]) -> None:
        """Keep each weight's optimizer state with that weight when layers are frozen or unfrozen between steps
        (the optimizer stores its slots by position; Keras keys them by variable)."""
        ids = [id(p) for p in params]
        previous = getattr(self, "_optimizer_ids", None)
        self._optimizer_ids = ids
        if previous is None or previous == ids or not self.optimizer.get_state().keys() - {"iterations"}:
            return
        position = {weight: i for i, weight in enumerate(ids)}
        state = self.optimizer.get_state()
        moved = {"iterations": state.pop("iterations")}
        for key, value in state.items():
            name, _, index = key.rpartition("_")
            new = position.get(previous[int(index)])
            if new is not None:
                moved[f"{name}_{new}"] = value
        self.optimizer.set_state(moved)

    def _test_loss(self, x: np.ndarray, y: np.ndarray, sample_weight: Any) -> tuple[float, np.ndarray]:
        """Inference-mode predictions and loss (data loss + regularization), as Keras's test step."""
        tape = ActivityTape()
        if any(getattr(layer, "activity_regularizer", None) is not None for layer in self.layers):
            y_pred = self._forward(x, training=False, tape=tape)  # (penalties are per batch: run it whole)
        else:
            y_pred = forward_in_chunks(self, x)
        loss = self.loss(y, y_pred, sample_weight)
        return loss + tape.penalty + weight_penalty(self.layers), y_pred

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Any = None,
        return_dict: bool = False,
        *,
        on_nan: str = "stop",
    ) -> Any:
        """One gradient step on one batch; returns the loss (and metrics) for that batch.

        ``x`` and ``y`` must be finite; ``on_nan`` as in :meth:`fit` ('stop' skips a diverged step and warns).
        """
        self._require_compiled("train_on_batch")
        return_dict = check_bool(return_dict, "return_dict", owner=self._owner)
        on_nan = check_choice(on_nan, "on_nan", training.NAN_POLICIES, owner=self._owner)
        x, y = self._training_data(x, y, "train_on_batch")
        weights = sample_weights(self, y, sample_weight, class_weight, x.shape[0])
        self._check_batch_memory(x.shape[0], "train_on_batch", training=True)
        loss, y_pred, problem = self._train_step(x, y, weights, on_nan)
        if problem is not None:
            training.non_finite_loss(self, problem, "train_on_batch", on_nan, stopped=False)
        return self._batch_logs(loss, y, y_pred, weights, return_dict)

    def _batch_logs(self, loss: float, y: np.ndarray, y_pred: np.ndarray, weights: Any, return_dict: bool) -> Any:
        values = {"loss": loss}
        for metric, weighted in training.all_metrics(self):
            metric.reset()
            metric.update(y, y_pred, weights if weighted else None)
            values[metric.name] = metric.result()
        if return_dict:
            return values
        return loss if len(values) == 1 else list(values.values())

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False) -> Any:
        """Loss (and metrics) of one batch without updating weights."""
        self._require_compiled("test_on_batch")
        return_dict = check_bool(return_dict, "return_dict", owner=self._owner)
        x = self._inference_input(x, "test_on_batch")
        self._check_not_empty(x, "test_on_batch")
        y = self._prepare_y(y, x.shape[0])
        weights = sample_weights(self, y, sample_weight, None, x.shape[0])
        self._check_batch_memory(x.shape[0], "test_on_batch", training=False)
        loss, y_pred = self._test_loss(x, y, weights)
        return self._batch_logs(loss, y, y_pred, weights, return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Outputs for one batch."""
        return self(x)
