"""Live training: ``fit`` with a callback that reports curves and first-layer feature maps, pauses and stops.

:class:`LiveTraining` builds a model the way a sweep trial does (:func:`convlens.lab.sweep.trial.build_model`
from a :class:`~convlens.lab.sweep.grid.TrialConfig`, or :func:`convlens.lab.spec.parse_spec` for a layer
string), trains it with the engine's own ``fit`` and hands plain-dict events to a ``listener``:

* ``start``: the configuration, the layer table, images and steps per epoch;
* ``progress`` (at most every ``report_every`` seconds): images seen, the mean loss and accuracy of the
  batches since the previous report (exact, from ``fit``'s running means), images per second;
* ``maps`` (at most every ``maps_every`` seconds): the first layer's output for one fixed test image;
* ``epoch``: the epoch's logs (training and validation loss/accuracy, as ``fit`` reports them);
* ``state``: running / paused / stopping; ``done``: the final state, test loss and accuracy, images per second.

The callback costs one clock read per batch between reports, so training runs at ``fit``'s own speed
(measured by ``benchmarks/web_latency.py``). :meth:`pause` blocks the training thread between batches;
:meth:`stop` ends ``fit`` after the current batch (the weights so far are kept and evaluated).

>>> from convlens.lab.sweep.grid import TrialConfig
>>> events = []
>>> job = LiveTraining(TrialConfig(filters=4, epochs=1, batch_size=50, train_limit=200, test_limit=100),
...                    listener=events.append, validation_split=0.0)
>>> job.run()
>>> [e["type"] for e in events][:2], events[-1]["type"], events[-1]["state"]
(['state', 'start'], 'done', 'finished')
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from convlens.callbacks import Callback
from convlens.errors import ConfigError, ConvlensError

__all__ = ["LiveTraining"]

Listener = Callable[[dict[str, Any]], None]


class _StopRequestedError(Exception):
    """Raised inside ``fit`` (between batches) to end training early."""


def _layers(model: Any) -> list[dict[str, Any]]:
    from convlens.lab.arithmetic import model_stats

    return [
        {"name": s.name, "class_name": s.class_name, "output_shape": list(s.output_shape), "params": s.params,
         "macs": s.macs, "receptive_field": list(s.receptive_field)}
        for s in model_stats(model)
    ]  # fmt: skip


class _Reporter(Callback):
    """The callback: throttled progress and feature-map events, pause and stop between batches."""

    def __init__(self, job: LiveTraining, train_size: int, batch_size: int) -> None:
        super().__init__()
        self.job = job
        self.train_size = train_size
        self.batch_size = batch_size
        self.epoch = 0
        self.seen_total = 0
        self.last_report = self.last_maps = 0.0
        self.mark = (0, 0.0, 0.0)  # (seen in this epoch, loss sum, correct sum) at the last report
        self.started = time.perf_counter()
        self.paused_for = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch
        self.mark = (0, 0.0, 0.0)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        job = self.job
        now = time.perf_counter()
        if now - self.last_report >= job.report_every or batch == job.steps - 1:
            self.report(batch, logs or {}, now)
        if now - self.last_maps >= job.maps_every:
            self.last_maps = now
            job.emit_maps(self.epoch, self.seen_total)
        if job._pause.is_set() and not job._stop.is_set():
            job._set_state("paused")
            waited = time.perf_counter()
            while job._pause.is_set() and not job._stop.is_set():
                job._resume.wait(0.1)
            self.paused_for += time.perf_counter() - waited
            self.last_report = time.perf_counter()
            if not job._stop.is_set():
                job._set_state("running")
        if job._stop.is_set():
            raise _StopRequestedError

    def report(self, batch: int, logs: dict[str, Any], now: float) -> None:
        seen = min((batch + 1) * self.batch_size, self.train_size)
        loss, accuracy = float(logs.get("loss", np.nan)), logs.get("accuracy")
        loss_sum = loss * seen
        correct = float(accuracy) * seen if accuracy is not None else 0.0
        seen0, loss0, correct0 = self.mark
        count = seen - seen0
        if count <= 0:
            return
        self.seen_total = self.epoch * self.train_size + seen
        elapsed = now - self.started - self.paused_for
        self.job.trained_images = self.seen_total
        self.job.images_per_second = self.seen_total / elapsed if elapsed > 0 else 0.0
        self.job.emit(
            {
                "type": "progress",
                "epoch": self.epoch,
                "step": batch + 1,
                "seen": self.seen_total,
                "loss": (loss_sum - loss0) / count,
                "accuracy": None if accuracy is None else (correct - correct0) / count,
                "epoch_loss": loss,
                "epoch_accuracy": None if accuracy is None else float(accuracy),
                "images_per_second": self.job.images_per_second,
                "elapsed": elapsed,
            }
        )
        self.mark = (seen, loss_sum, correct)
        self.last_report = now

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.job.emit({"type": "epoch", "epoch": epoch, "logs": {k: float(v) for k, v in (logs or {}).items()}})


class LiveTraining:
    """One training run that reports as it goes (see the module docstring).

    Args:
        config: architecture, optimizer, batch size, epochs, seed, dataset and data limits (a sweep trial's
            settings; ``config.dataset`` is a name from :func:`convlens.lab.samples.dataset_names`).
        spec: a layer string (:mod:`convlens.lab.spec` grammar) used instead of the config's architecture.
        listener: called with every event, from the training thread.
        validation_split: the last fraction held out for validation, as ``convlens train`` (default 0.1).
        report_every, maps_every: seconds between progress / feature-map events.
        probe_index: the test image whose first-layer maps are reported.

    Raises:
        ConfigError / ShapeError: when the architecture cannot be built for the dataset (raised here, before
            any training, so a caller can answer at once).
    """

    def __init__(
        self,
        config: Any,
        *,
        spec: str | None = None,
        listener: Listener | None = None,
        validation_split: float = 0.1,
        report_every: float = 0.25,
        maps_every: float = 1.0,
        probe_index: int = 0,
    ) -> None:
        from convlens import optimizers
        from convlens.lab import samples
        from convlens.lab.sweep.trial import build_model
        from convlens.layers.base import reset_name_counters
        from convlens.utils import set_random_seed

        if not 0.0 <= validation_split < 1.0:
            raise ConfigError(f"live training: `validation_split` must be in [0, 1), got {validation_split}.")
        self.config = config
        self.dataset = config.dataset
        self.spec = spec
        self.listener = listener
        self.validation_split = float(validation_split)
        self.report_every = float(report_every)
        self.maps_every = float(maps_every)
        self.probe_index = int(probe_index)
        self.state = "created"
        self.images_per_second = 0.0
        self.trained_images = 0
        self.steps = 0
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self._pause = threading.Event()
        self._resume = threading.Event()
        self._stop = threading.Event()
        self._evaluate = True
        info = samples.describe(self.dataset)
        self.class_names = info["class_names"]
        shape = samples.input_shape(self.dataset)
        set_random_seed(config.seed)
        reset_name_counters()
        if spec:
            from convlens.lab.spec import DEFAULT_INPUT, parse_spec

            text = spec.strip()
            if not text.lower().startswith("input") and shape != DEFAULT_INPUT:
                text = f"input{'x'.join(str(s) for s in shape)}, {text}"
            self.model = parse_spec(text)
        else:
            self.model = build_model(config, input_shape=shape, classes=len(self.class_names))
        if tuple(self.model.input_shape[1:]) != shape:
            raise ConfigError(
                f"live training: the model takes {tuple(self.model.input_shape[1:])} but {info['label']} images "
                f"are {shape}; start the spec with input{'x'.join(str(s) for s in shape)}."
            )
        optimizer = optimizers.get(config.optimizer)
        if config.learning_rate is not None:
            optimizer.learning_rate = float(config.learning_rate)
        self.model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # ----- control (any thread) --------------------------------------------------------------------
    def pause(self) -> None:
        """Hold training after the current batch."""
        self._resume.clear()
        self._pause.set()

    def resume(self) -> None:
        """Continue a paused run."""
        self._pause.clear()
        self._resume.set()

    def stop(self, *, evaluate: bool = True) -> None:
        """End training after the current batch; the run then evaluates what it has (unless ``evaluate=False``)."""
        self._evaluate = evaluate
        self._stop.set()
        self._resume.set()
        if self.state in ("running", "paused", "loading"):
            self._set_state("stopping")

    @property
    def active(self) -> bool:
        """Whether the run has not ended yet."""
        return self.state not in ("finished", "stopped", "failed")

    # ----- events ---------------------------------------------------------------------------------
    def emit(self, event: dict[str, Any]) -> None:
        if self.listener is not None:
            self.listener(event)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.emit({"type": "state", "state": state})

    def emit_maps(self, epoch: int, seen: int) -> None:
        """The first layer's output for the probe image (inference mode, between two batches)."""
        first = self.model.layers[0]
        out = np.asarray(first.forward(self._probe[None], training=False))[0]
        if out.ndim != 3:
            return
        self.emit(
            {
                "type": "maps",
                "layer": first.name,
                "epoch": epoch,
                "seen": seen,
                "maps": np.moveaxis(out, -1, 0).astype(np.float64).tolist(),
                "min": float(out.min()),
                "max": float(out.max()),
            }
        )

    # ----- the run (blocking: call from a worker thread) ------------------------------------------
    def run(self) -> None:
        """Load the data, train, evaluate; every outcome ends with a ``done`` event (never raises)."""
        from convlens.lab import samples

        try:
            self._set_state("loading")
            (x_train, y_train), (x_test, y_test) = samples.arrays(self.dataset)
            cfg = self.config
            if cfg.train_limit is not None:
                x_train, y_train = x_train[: cfg.train_limit], y_train[: cfg.train_limit]
            if cfg.test_limit is not None:
                x_test, y_test = x_test[: cfg.test_limit], y_test[: cfg.test_limit]
            self._probe = x_test[min(self.probe_index, len(x_test) - 1)]
            # fit holds out the last fraction (floor, as Keras) before shuffling
            train_size = (
                math.floor(len(x_train) * (1.0 - self.validation_split)) if self.validation_split else len(x_train)
            )
            self.steps = -(-train_size // cfg.batch_size)
            self.emit(
                {
                    "type": "start",
                    "config": cfg.to_dict(),
                    "spec": self.spec,
                    "dataset": self.dataset,
                    "class_names": self.class_names,
                    "layers": _layers(self.model),
                    "params": int(self.model.count_params()),
                    "train_images": train_size,
                    "validation_images": len(x_train) - train_size,
                    "test_images": len(x_test),
                    "steps": self.steps,
                    "epochs": cfg.epochs,
                    "batch_size": cfg.batch_size,
                }
            )
            reporter = _Reporter(self, train_size, cfg.batch_size)
            if self._stop.is_set():
                raise _StopRequestedError
            self._set_state("running")
            self.emit_maps(0, 0)
            stopped = False
            try:
                self.model.fit(
                    x_train,
                    y_train,
                    epochs=cfg.epochs,
                    batch_size=cfg.batch_size,
                    validation_split=self.validation_split,
                    callbacks=[reporter],
                    verbose=0,
                )
            except _StopRequestedError:
                stopped = True
                if not self._evaluate:
                    raise
            self.emit_maps(reporter.epoch, reporter.seen_total)
            loss, accuracy = self.model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
            self.result = {
                "test_loss": float(loss),
                "test_accuracy": float(accuracy),
                "images_per_second": self.images_per_second,
                "trained_images": self.trained_images,
            }
            self.state = "stopped" if stopped else "finished"
            self.emit({"type": "done", "state": self.state, **self.result})
        except _StopRequestedError:  # stopped before training began, or without evaluation
            self.state = "stopped"
            self.emit({"type": "done", "state": "stopped", "trained_images": self.trained_images})
        except Exception as exc:  # a background run reports its failure instead of dying silently
            self.error = str(exc) if isinstance(exc, ConvlensError) else f"{type(exc).__name__}: {exc}"
            self.state = "failed"
            self.emit({"type": "done", "state": "failed", "error": self.error})
