"""One trial: build, train and evaluate one configuration; record everything; never raise.

:func:`run_trial` is the function both executors ship to their workers. It returns a plain dict
(picklable, JSON-safe apart from the PNG bytes) with a ``status``:

- ``"OK"``: trained and evaluated;
- ``"INVALID"``: the model cannot exist (a convlens ``ShapeError``/``ConfigError`` while building it,
  e.g. a 'valid' 7x7 kernel on the 4x4 map left after two 2x2 poolings); ``reason`` says why;
- ``"FAILED"``: anything else went wrong (bad optimizer name, a bug, out of memory); ``reason`` holds
  the error text and ``error`` the traceback. The sweep goes on.
"""

from __future__ import annotations

import io
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from convlens.errors import ConfigError, ShapeError
from convlens.lab.sweep.grid import TrialConfig

__all__ = ["FAILED", "INVALID", "OK", "build_model", "feature_map_png", "load_dataset", "load_mnist", "run_trial"]

OK = "OK"
INVALID = "INVALID"
FAILED = "FAILED"

# name -> ((x_train, y_train), (x_test, y_test)) as float32 NHWC in [0, 1], loaded once per process
_DATA: dict[str, Any] = {}


def load_dataset(name: str = "mnist") -> Any:
    """A named data set (see :data:`convlens.course.DATASETS`) as float32 NHWC arrays scaled to [0, 1], cached
    for the life of the process.

    Shapes:
        mnist, fashion_mnist: x_train (60000, 28, 28, 1), x_test (10000, 28, 28, 1); cifar10: x_train
        (50000, 32, 32, 3), x_test (10000, 32, 32, 3); labels (N,).
    """
    if name not in _DATA:
        from convlens.course import load_course_data

        data = load_course_data(name)
        _DATA[name] = (data.train, data.test)
    return _DATA[name]


def load_mnist() -> Any:
    """The packaged MNIST, as :func:`load_dataset` gives it.

    Shapes:
        x_train (60000, 28, 28, 1), y_train (60000,), x_test (10000, 28, 28, 1), y_test (10000,).
    """
    return load_dataset("mnist")


def build_model(config: TrialConfig, input_shape: tuple[int, int, int] = (28, 28, 1), classes: int = 10) -> Any:
    """The course's CNN with ``conv_blocks`` Conv2D(+pooling) blocks, then Flatten -> Dense(classes, softmax).

    One block is exactly :func:`convlens.course.build_course_model`; each further block repeats the
    first one's settings (same filters, kernel, strides, padding, pooling).

    Raises:
        ShapeError: when a kernel or pooling window does not fit the map it receives.

    Shapes:
        input (N, 28, 28, 1) -> [conv (N, OH, OW, F) -> pool (N, OH // P, OW // P, F)] x blocks -> (N, classes)
    """
    from convlens.course import build_course_model

    if config.conv_blocks == 1:
        return build_course_model(
            config.filters,
            config.kernel_size,
            config.strides,
            config.padding,
            config.pooling,
            config.pool_size,
            config.activation,
            input_shape=input_shape,
            classes=classes,
        )
    from convlens import layers
    from convlens.models import Sequential

    stack: list[Any] = []
    for block in range(config.conv_blocks):
        extra: dict[str, Any] = {"input_shape": input_shape} if block == 0 else {}
        stack.append(
            layers.Conv2D(
                config.filters,
                (config.kernel_size, config.kernel_size),
                strides=(config.strides, config.strides),
                padding=config.padding,
                activation=config.activation,
                **extra,
            )
        )
        if config.pooling == "max":
            stack.append(layers.MaxPooling2D(pool_size=(config.pool_size, config.pool_size)))
        elif config.pooling == "avg":
            stack.append(layers.AveragePooling2D(pool_size=(config.pool_size, config.pool_size)))
    stack += [layers.Flatten(), layers.Dense(classes, activation="softmax")]
    return Sequential(stack)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _layer_records(model: Any) -> list[dict[str, Any]]:
    """Per-layer name, class, output shape, params, MACs and receptive field (from the lab's arithmetic)."""
    from convlens.lab.arithmetic import model_stats

    return [
        {
            "name": s.name,
            "class_name": s.class_name,
            "output_shape": _jsonable(s.output_shape),
            "params": int(s.params),
            "macs": None if s.macs is None else int(s.macs),
            "receptive_field": _jsonable(s.receptive_field),
        }
        for s in model_stats(model)
    ]


def _summary_receptive_field(records: list[dict[str, Any]]) -> Any:
    """The receptive field of the last layer with a spatial (N, H, W, C) output."""
    for record in reversed(records):
        shape = record["output_shape"]
        if isinstance(shape, list) and len(shape) == 4 and record["receptive_field"] is not None:
            return record["receptive_field"]
    return None


def feature_map_png(model: Any, image: np.ndarray, max_maps: int = 16, columns: int = 8) -> bytes | None:
    """The first layer's feature maps for one image, tiled into a small greyscale PNG (None without pillow).

    Each map is scaled to 0..255 on its own and enlarged (nearest) to about 28 pixels.

    Shapes:
        image (H, W, C); first layer output (1, OH, OW, F); PNG rows x columns tiles of OH*s x OW*s pixels.
    """
    try:
        from PIL import Image
    except ModuleNotFoundError:  # pragma: no cover - pillow is in the lab extra
        return None
    maps = np.asarray(model.layers[0].forward(image[None], training=False))[0]
    maps = maps[..., :max_maps]
    height, width, count = maps.shape
    scale = max(1, 28 // max(height, width))
    columns = min(columns, count)
    rows = -(-count // columns)
    gap = 2
    tile_h, tile_w = height * scale, width * scale
    canvas = np.full((rows * (tile_h + gap) + gap, columns * (tile_w + gap) + gap), 255, dtype=np.uint8)
    for index in range(count):
        fmap = maps[..., index].astype(np.float64)
        low, high = float(fmap.min()), float(fmap.max())
        norm = (fmap - low) / (high - low) if high > low else np.zeros_like(fmap)
        tile = np.kron((norm * 255).round().astype(np.uint8), np.ones((scale, scale), dtype=np.uint8))
        r, c = divmod(index, columns)
        top, left = gap + r * (tile_h + gap), gap + c * (tile_w + gap)
        canvas[top : top + tile_h, left : left + tile_w] = tile
    buffer = io.BytesIO()
    Image.fromarray(canvas, mode="L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def run_trial(
    config: TrialConfig | Mapping[str, Any],
    data: Any = None,
    builder: Callable[[TrialConfig], Any] | None = None,
) -> dict[str, Any]:
    """Build, train and evaluate one configuration; return its record (never raises for trial errors).

    Args:
        config: the configuration (or its dict form, as executors ship it).
        data: ``((x_train, y_train), (x_test, y_test))`` float32 NHWC in [0, 1]; default the configuration's
            ``dataset`` (:func:`load_dataset`).
        builder: the model builder (default :func:`build_model` for the data's input shape; tests inject
            failures here).

    Returns:
        A dict with ``config``, ``config_hash``, ``status``, ``reason``, ``error``, ``layers``, ``params``,
        ``macs``, ``receptive_field``, ``history`` (per-epoch loss/accuracy), ``train_time``,
        ``test_loss``, ``test_accuracy``, ``seed``, ``feature_png``, ``started``, ``finished``, ``worker``.

    Shapes:
        x_train (N, H, W, C) float32, the first ``train_limit`` images; x_test (M, H, W, C), first ``test_limit``.
    """
    cfg = config if isinstance(config, TrialConfig) else TrialConfig.from_dict(config)
    record: dict[str, Any] = {
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash(),
        "status": OK,
        "reason": None,
        "error": None,
        "layers": None,
        "params": None,
        "macs": None,
        "receptive_field": None,
        "history": None,
        "train_time": None,
        "test_loss": None,
        "test_accuracy": None,
        "seed": cfg.seed,
        "feature_png": None,
        "started": time.time(),
        "finished": None,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    try:
        _train_and_evaluate(cfg, record, data, builder)
    except Exception as exc:  # a crashing trial is recorded, never fatal to the sweep
        record["status"] = FAILED
        record["reason"] = f"{type(exc).__name__}: {exc}"
        record["error"] = traceback.format_exc()
    record["finished"] = time.time()
    return record


def _train_and_evaluate(
    cfg: TrialConfig, record: dict[str, Any], data: Any, builder: Callable[[TrialConfig], Any] | None
) -> None:
    from convlens import optimizers
    from convlens.layers.base import reset_name_counters
    from convlens.utils import set_random_seed

    (x_train, y_train), (x_test, y_test) = data if data is not None else load_dataset(cfg.dataset)
    if cfg.train_limit is not None:
        x_train, y_train = x_train[: cfg.train_limit], y_train[: cfg.train_limit]
    if cfg.test_limit is not None:
        x_test, y_test = x_test[: cfg.test_limit], y_test[: cfg.test_limit]
    set_random_seed(cfg.seed)
    reset_name_counters()  # the same layer names in every worker
    try:
        model = builder(cfg) if builder is not None else build_model(cfg, input_shape=x_train.shape[1:])
    except (ShapeError, ConfigError) as exc:
        record["status"] = INVALID
        record["reason"] = str(exc)
        return
    layers = _layer_records(model)
    record["layers"] = layers
    record["params"] = int(model.count_params())
    macs = [layer["macs"] for layer in layers]
    record["macs"] = None if any(m is None for m in macs) else int(sum(macs))
    record["receptive_field"] = _summary_receptive_field(layers)
    optimizer = optimizers.get(cfg.optimizer)
    if cfg.learning_rate is not None:
        optimizer.learning_rate = float(cfg.learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=cfg.epochs, batch_size=cfg.batch_size, verbose=0)
    record["train_time"] = time.perf_counter() - start
    record["history"] = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    record["test_loss"], record["test_accuracy"] = float(loss), float(accuracy)
    record["feature_png"] = feature_map_png(model, x_test[0])
