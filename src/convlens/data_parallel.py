"""Data-parallel training steps: with two threads, each runs forward and backward on its half of the batch
(with more, a power of two up to :data:`MAX_PARTS`: each its part; "halves" below).

Splitting each layer's work over the threads hands work out and joins it several times per layer, and the thin
layers of small models (a 5x5 convolution to 6 channels, a dense layer of 120 units) barely gain from a second
core that way. Here each thread instead takes its half of every batch through all the stages, alone (serial
compiled kernels, one BLAS thread, a workspace slot of its own, as ``predict``'s split in
:mod:`convlens.inference`), and the model joins them once per pass.

What makes the two halves one step:

- each thread runs the model's own forward and backward passes (``Sequential._forward``/``_backward_train``,
  the Functional ones) through **twins** of its stages (:mod:`convlens.step_twins`): shallow copies that share
  the layers' weights and settings but keep their own forward caches, plans (and so scratch buffers) and
  gradients, re-synchronised with the layers at every step (:meth:`~convlens.step_twins.Twins.sync`);
- the loss and its gradient are computed once, on the whole batch's outputs (so the mean over the batch, the
  sample weights and the reported loss are exactly those of the unsplit step);
- the weight gradients are the sum of the two halves' (in a fixed order: the same bits on every run; not the
  unsplit step's bits, which add the products in another order);
- ``Dropout`` masks are drawn for the whole batch before the split, from the same generator in the same order
  as the unsplit step (the same masks);
- ``BatchNormalization`` statistics cover the whole batch: the threads exchange float64 partial channel
  sums (:func:`convlens.ops.batch_norm_jit.bn_statistics_sums`; forward, and :func:`bn_grad_sums` backward)
  at a barrier and each combines them in the same order. When the parts are of equal size the pieces are those
  of the unsplit kernels, so for the same inputs the statistics, the normalised outputs and gamma/beta's
  gradients are the unsplit step's bits; the moving statistics are updated once, by the first thread.

It runs only where it is safe and worth it (:func:`split_step_threads`): a ``Sequential`` model, or a
Functional one with one input and one output, made of convlens's own per-sample layers (convolutions, pooling,
dense, activations, reshapes, merges such as ``Add``, ``Dropout``, batch norm with compiled kernels), no
activity regularizer, one dtype, more than one thread, a
batch of at least ``2 * MIN_PART_ROWS`` rows with enough work; else the step runs as before. A Functional
model's twins run its graph as ``Functional._run`` and ``_backward_train`` do (a residual model with a skip
connection and batch norm, 28x28x1, batch 128, 2 threads: 3,408 -> 4,040 images/s in ``fit``).
``CONVLENS_SPLIT_TRAIN=0`` turns it off.

Measured with 2 threads (Intel Xeon, 2 cores; ``python benchmarks/threads_ab.py --what fit``: one epoch of 40
batches of 128, Adam, in one process, median of 3, ``CONVLENS_SPLIT_TRAIN=0`` against ``1``, images/s): course
17.0k -> 21.1k, Keras's simple convnet 5.9k -> 6.8k, LeNet-5 8.7k -> 11.9k, small VGG 829 -> 835 (its Winograd
layers already split their blocks over the threads), depthwise-separable 5.0k -> 6.2k.

Shapes:
    x: (N, ...) the model's input; y: (N, ...) targets; with P parts, part i is rows [N * i // P, N * (i + 1) // P).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from convlens import blas_threads, switches
from convlens.inference import _alone, _ours, _sample_bytes, split_threads
from convlens.layers.base import Layer
from convlens.layers.core import Dropout
from convlens.layers.normalization import BatchNormalization
from convlens.ops.handoff import run_pieces
from convlens.ops.jit import compiled_for
from convlens.ops.parallel import MIN_SPLIT_BYTES
from convlens.penalties import ActivityTape, weight_penalty
from convlens.step_twins import Exchange, Twins

__all__ = ["MAX_PARTS", "MIN_PART_ROWS", "split_step", "split_step_threads"]

#: Each part has at least this many rows: with fewer, each thread's per-call overheads outweigh its half of the
#: work. Batch 32 (Keras's default) split in two, against unsplit, ``fit`` images/s (2 threads, Intel Xeon):
#: course 0.82x, LeNet-5 0.90x, simple convnet 0.94x, depthwise-separable 1.13x; batch 64: 1.09-1.24x for all four.
MIN_PART_ROWS = 32
#: At most this many parts (threads) a step; a power of two that divides batch norm's ``CHUNKS``.
MAX_PARTS = 8

_PER_SAMPLE = frozenset(
    {
        "Conv1D",
        "Conv2D",
        "DepthwiseConv2D",
        "Dense",
        "Flatten",
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "Activation",
        "ReLU",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "Cropping2D",
        "UpSampling2D",
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Concatenate",
    }
)
"""Layer classes whose training forward and backward treat every sample on its own and keep nothing but
per-call caches on the layer (so a twin per thread is safe)."""


_METHODS = frozenset({"forward", "backward", "backward_linear", "forward_fused"})
"""Methods a twin must run as its own: an object whose instance replaces one of them never splits."""


def _splittable_layer(layer: Layer) -> bool:
    if type(layer) is Dropout:
        return True
    if type(layer) is BatchNormalization:
        if not layer.trainable:  # (frozen: normalised with the moving statistics, on the layer itself)
            return False
        channel_axis = layer._channel_axis
        ndim = len(layer.input_shape or ())
        return compiled_for(np.dtype(layer.dtype)) and channel_axis in (ndim - 1, -1)
    return type(layer).__name__ in _PER_SAMPLE and type(layer).__module__.startswith("convlens.layers.")


def _units(model: Any) -> tuple[Any, list[Any]] | None:
    """``(key, units)``: what a step runs in order (a Sequential's stages, a Functional model's layers in graph
    order; ``key`` changes when they do), or None for a model the split does not know how to run."""
    if hasattr(model, "stages"):
        stages = model.stages()
        return stages, stages
    nodes = getattr(model, "_nodes", None)
    if nodes is not None and len(model._inputs) == 1 and len(model._outputs) == 1:
        return nodes, [node.layer for node in nodes]
    return None


def split_step_threads(model: Any, batch: int) -> int:
    """Threads that each train on a part of a ``batch``-row step of ``model`` (1: the step runs unsplit)."""
    if not switches.SPLIT_TRAIN.is_on() or batch < 2 * MIN_PART_ROWS:
        return 1
    threads = split_threads()
    found = _units(model) if threads > 1 and _ours(model) else None
    if found is None:
        return 1
    units = found[1]
    layers = [layer for layer in model.layers if not getattr(layer, "is_input", False)]
    if not layers or any(layer.activity_regularizer is not None for layer in layers):
        return 1
    if len({np.dtype(layer.dtype) for layer in layers}) != 1:
        return 1
    if not all(_splittable_layer(layer) for layer in layers):
        return 1
    if any(not _METHODS.isdisjoint(vars(obj)) for obj in (*layers, *units)):
        return 1  # (a method replaced on the object, e.g. wrapped by a profiler: its twins would call the original)
    facts = _facts(model)
    if not facts.all_reach_the_loss or facts.sample_bytes * batch < MIN_SPLIT_BYTES:
        return 1
    parts = 1  # (a power of two up to MAX_PARTS: each part sums whole pieces of batch norm's CHUNKS)
    while parts * 2 <= min(threads, MAX_PARTS, batch // MIN_PART_ROWS):
        parts *= 2
    return parts


class _Facts:
    """What a step needs to know of the model's shapes, worked out once per staging (a Sequential's stage list is
    rebuilt whenever a layer is added, removed or rebuilt; a Functional model's graph never changes)."""

    def __init__(self, model: Any, key: Any) -> None:
        self.key = key
        self.sample_bytes = _sample_bytes(model) or 0
        #: (layer, its input's shape without the batch axis, its input's dtype: None for the model's input's)
        self.dropouts: list[tuple[Any, tuple[int, ...], np.dtype[Any] | None]] = []
        #: whether every layer's output reaches the loss (else the unsplit step zeroes that layer's grads)
        self.all_reach_the_loss = True
        #: which unit (stage or graph layer) gives the output: its twins give each part's logits
        self.output_unit = -1
        if hasattr(model, "stages"):
            shape: tuple[Any, ...] = tuple(model.input_shape)
            dtype: np.dtype[Any] | None = None
            for layer in model.layers:
                if type(layer) is Dropout:
                    self.dropouts.append((layer, tuple(int(s) for s in shape[1:]), dtype))
                else:
                    dtype = np.dtype(layer.dtype)
                shape = tuple(layer.compute_output_shape(shape))
            return
        self.output_unit = model._nodes.index(model._outputs[0].node)
        inputs = {id(tensor) for tensor in model._inputs}
        needed = {id(model._outputs[0])}
        for node in reversed(model._nodes):
            if id(node.output) not in needed:
                self.all_reach_the_loss = False
            needed.update(id(tensor) for tensor in node.inputs)
            if type(node.layer) is Dropout:
                source = node.inputs[0]
                dtype = None if id(source) in inputs else np.dtype(source.node.layer.dtype)
                self.dropouts.append((node.layer, tuple(int(s) for s in source.shape[1:]), dtype))
        self.dropouts.reverse()  # (in graph order: the order the unsplit step draws the masks in)


def _facts(model: Any) -> _Facts:
    key = _units(model)[0]  # type: ignore[index]
    found: _Facts | None = getattr(model, "_split_facts", None)
    if found is None or found.key is not key:
        found = model._split_facts = _Facts(model, key)
    return found


def _twins(model: Any, threads: int) -> Twins:
    key, units = _units(model)  # type: ignore[misc]
    found: Twins | None = getattr(model, "_split_twins", None)
    if found is None or found.key is not key or len(found.per_thread) != threads:
        found = Twins(key, units, threads)
        model._split_twins = found
    found.sync()
    return found


def _draw_masks(model: Any, x: np.ndarray, exchange: Exchange) -> None:
    """The whole batch's Dropout masks, drawn in the order the unsplit step draws them."""
    from convlens.ops.dropout import dropout_mask

    exchange.masks = {}
    for layer, shape, dtype in _facts(model).dropouts:
        if layer.rng is None:
            layer.rng = np.random.default_rng(layer.seed)
        exchange.masks[id(layer)] = dropout_mask(
            (x.shape[0], *shape), x.dtype if dtype is None else dtype, layer.rate, layer.rng
        )


def _run_parts(work: Callable[[int], None], exchange: Exchange) -> None:
    """``work(slot)`` for every slot at once, each thread alone in its slot (the calling thread takes the last);
    the first error (not another thread's broken barrier) reaches the caller after every part has stopped."""
    parts = len(exchange.bounds)
    errors: list[BaseException | None] = [None] * parts

    def run(slot: int) -> None:
        try:
            with _alone(slot):
                work(slot)
        except BaseException as error:
            errors[slot] = error
            exchange.barrier.abort()  # (the other threads stop at their next barrier)

    # (all at once: the parts meet at barriers, so none may wait for a busy helper)
    run_pieces([functools.partial(run, slot) for slot in range(parts)], all_at_once=True)
    failed = [e for e in errors if e is not None]
    if failed:  # (the error itself first; the other threads' broken barriers only follow from it)
        failed.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))
        raise failed[0]


def split_step(model: Any, x: np.ndarray, y: np.ndarray, sample_weight: Any) -> tuple[float, np.ndarray] | None:
    """A training step's forward and backward (every layer's grads filled, regularizers' gradients included),
    each half of the batch on its own thread: ``(loss, y_pred)``, or None when the step must run unsplit
    (:func:`split_step_threads`)."""
    n = x.shape[0]
    threads = split_step_threads(model, n)
    if threads == 1 or not isinstance(x, np.ndarray):
        return None
    with blas_threads.one_blas_thread() as limited:
        if not limited:
            return None
        twins = _twins(model, threads)
        bounds = [(n * i // threads, n * (i + 1) // threads) for i in range(threads)]
        exchange = twins.exchange = Exchange(bounds)
        _draw_masks(model, x, exchange)
        fused = model._fused()
        last = _facts(model).output_unit
        outs: list[tuple[np.ndarray, np.ndarray]] = [None] * threads  # type: ignore[list-item]

        def forward(slot: int) -> None:  # (the model's own pass, through this thread's twins)
            lo, hi = bounds[slot]
            units = twins.per_thread[slot]
            h = model._forward(x[lo:hi], True, None, units)
            outs[slot] = (h, units[last].pre_activation if fused else h)

        _run_parts(forward, exchange)
        y_pred = np.concatenate([out[0] for out in outs])
        logits = np.concatenate([out[1] for out in outs]) if fused else y_pred
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss, grad = model.loss.value_and_grad(y, logits, sample_weight, fused=fused)

        def backward(slot: int) -> None:
            lo, hi = bounds[slot]
            model._backward_train(grad[lo:hi], fused, ActivityTape(), twins.per_thread[slot])

        _run_parts(backward, exchange)
    twins.add_grads()
    loss += weight_penalty(model.layers, add_gradients=True)
    return float(loss), y_pred
