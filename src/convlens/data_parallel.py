"""Data-parallel training steps: with two threads, each runs forward and backward on its half of the batch
(with more, a power of two up to :data:`MAX_PARTS`: each its part; "halves" below).

Splitting each layer's work over the threads hands work out and joins it several times per layer, and the thin
layers of small models (a 5x5 convolution to 6 channels, a dense layer of 120 units) barely gain from a second
core that way. Here each thread instead takes its half of every batch through all the stages, alone (serial
compiled kernels, one BLAS thread, a workspace slot of its own, as ``predict``'s split in
:mod:`convlens.inference`), and the model joins them once per pass.

What makes the two halves one step:

- each thread runs **twins** of the model's stages: shallow copies that share the layers' weights and
  settings but keep their own forward caches, plans (and so scratch buffers) and gradients, re-synchronised
  with the layers at every step (:func:`_sync`);
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
activity regularizer, one dtype, more than one thread with kernels that may launch from two threads at once, a
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

import copy
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from convlens import blas_threads, switches
from convlens.inference import _alone, _ours, _sample_bytes, split_threads
from convlens.layers.base import Layer
from convlens.ops.batch_norm_jit import (
    CHUNKS,
    bn_grad_input,
    bn_grad_sums,
    bn_moments,
    bn_normalize_jit,
    bn_statistics_sums,
)
from convlens.ops.jit import compiled_for
from convlens.ops.normalization import inverse_std, update_moving
from convlens.ops.parallel import MIN_SPLIT_BYTES
from convlens.ops.plan_cache import ShapePlans
from convlens.penalties import weight_penalty

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


_METHODS = ("forward", "backward", "backward_linear", "forward_fused")
"""Methods a twin must run as its own: an object whose instance replaces one of them never splits."""


def _layers_of(stage: Any) -> list[Layer]:
    from convlens.fusion import ConvBatchNorm, FusedBatchNormReLU, FusedConvMaxPool

    if isinstance(stage, FusedConvMaxPool):
        return [stage.conv, stage.pool]
    if isinstance(stage, FusedBatchNormReLU):
        return [stage.bn, stage.relu]
    if isinstance(stage, ConvBatchNorm):
        return [stage.conv, *_layers_of(stage.norm)]
    return [stage]


def _splittable_layer(layer: Layer) -> bool:
    from convlens.layers.core import Dropout
    from convlens.layers.normalization import BatchNormalization

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
    if any(name in vars(obj) for obj in (*layers, *units) for name in _METHODS):
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
        from convlens.layers.core import Dropout

        self.key = key
        self.sample_bytes = _sample_bytes(model) or 0
        #: (layer, its input's shape without the batch axis, its input's dtype: None for the model's input's)
        self.dropouts: list[tuple[Any, tuple[int, ...], np.dtype[Any] | None]] = []
        #: whether every layer's output reaches the loss (else the unsplit step zeroes that layer's grads)
        self.all_reach_the_loss = True
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


class _Exchange:
    """What the two threads of one step share: the barrier, each half's rows, and the Dropout masks."""

    def __init__(self, bounds: list[tuple[int, int]]) -> None:
        self.barrier = threading.Barrier(len(bounds))
        self.bounds = bounds
        self.masks: dict[int, np.ndarray | None] = {}

    def wait(self) -> None:
        self.barrier.wait()


class _SplitDropout:
    """A thread's ``Dropout``: its rows of the mask drawn for the whole batch before the split."""

    def __init__(self, layer: Any, slot: int, shared: _Twins) -> None:
        self.layer = layer
        self.slot = slot
        self.shared = shared
        self.name = layer.name
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        whole = self.shared.exchange.masks.get(id(self.layer))
        if whole is None:
            self._mask = None
            return x
        lo, hi = self.shared.exchange.bounds[self.slot]
        self._mask = whole[lo:hi]
        if x.dtype != whole.dtype or x.shape != self._mask.shape:
            raise RuntimeError(
                f"{self.layer!r}: the split step expected input {self._mask.shape} {whole.dtype}, got {x.shape} "
                f"{x.dtype}."
            )
        return x * self._mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        mask, self._mask = self._mask, None
        return grad_out if mask is None else grad_out * mask


class _SplitBatchNorm:
    """A thread's ``BatchNormalization`` (+ ReLU): whole-batch statistics and channel sums, exchanged at a barrier.

    The first thread updates the moving statistics and writes gamma/beta's gradients into the layer (the sums
    cover the whole batch: they are not added again).
    """

    def __init__(self, bn: Any, relu: bool, slot: int, shared: _Twins, sums: dict[str, np.ndarray]) -> None:
        self.bn = bn
        self.relu = relu
        self.slot = slot
        self.shared = shared
        self.sums = sums  # (shared by the two threads of this layer: 'shift', 's1', 's2', 'sg', 'sgx', 'rows')
        self.name = bn.name
        self._kept: tuple[Any, ...] | None = None

    def _pieces(self, name: str) -> np.ndarray:
        per = CHUNKS // len(self.sums["rows"])  # (each thread sums its own pieces)
        return self.sums[name][self.slot * per : (self.slot + 1) * per]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        bn = self.bn
        dtype = np.dtype(bn.dtype)
        x2 = np.ascontiguousarray(x, dtype).reshape(-1, x.shape[-1])
        channels = x2.shape[1]
        sums, wait = self.sums, self.shared.exchange.wait
        sums["rows"][self.slot] = x2.shape[0]
        if self.slot == 0:
            sums["shift"][...] = x2[0]
        wait()  # (the shift and every part's row count are known)
        bn_statistics_sums(x2, sums["shift"], self._pieces("s1"), self._pieces("s2"))
        wait()  # (every piece's sums are in)
        rows = int(sums["rows"].sum())
        mean64, var64 = bn_moments(sums["s1"], sums["s2"], sums["shift"], rows)
        mean, var = mean64.astype(dtype), var64.astype(dtype)
        if self.slot == 0:
            update_moving(bn.state["moving_mean"], bn.state["moving_variance"], mean, var, bn.momentum)
        inv_std = inverse_std(var, bn.epsilon, dtype)
        gamma, beta = bn.params.get("gamma"), bn.params.get("beta")
        g = np.ones(channels, dtype) if gamma is None else np.ascontiguousarray(gamma, dtype)
        b = np.zeros(channels, dtype) if beta is None else np.ascontiguousarray(beta, dtype)
        y = bn_normalize_jit(x2, mean, inv_std, g, b, self.relu)
        self._kept = (x2, y, mean, inv_std, g, rows, x.shape)
        return y.reshape(x.shape)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        bn = self.bn
        if self._kept is None:
            raise RuntimeError(f"{bn!r}: split backward called without a split forward first.")
        (x2, y, mean, inv_std, g, rows, shape), self._kept = self._kept, None
        grad2 = np.ascontiguousarray(grad_out, x2.dtype).reshape(x2.shape)
        bn_grad_sums(grad2, x2, y, mean, inv_std, self.relu, self._pieces("sg"), self._pieces("sgx"))
        self.shared.exchange.wait()  # (every piece's sums are in)
        grad_x, grad_gamma, grad_beta = bn_grad_input(
            grad2, x2, y, mean, inv_std, g, self.relu, self.sums["sg"], self.sums["sgx"], rows
        )
        if self.slot == 0:
            if bn.scale:
                bn.grads["gamma"][...] = grad_gamma
            if bn.center:
                bn.grads["beta"][...] = grad_beta
        return grad_x.reshape(shape)


_OWN = frozenset({"grads", "_plans"})
"""A twin layer's own attributes (the rest are the layer's, copied at every step; per-call caches are replaced
by each forward, never changed in place)."""


class _Twins:
    """The twins of a model's stages for each thread, and the map from each layer to its twins."""

    def __init__(self, key: Any, stages: list[Any], threads: int) -> None:
        from convlens.fusion import ConvBatchNorm, FusedBatchNormReLU, FusedConvMaxPool
        from convlens.layers.core import Dropout
        from convlens.layers.normalization import BatchNormalization

        self.key = key  # (kept: its identity says whether the model restaged since)
        self.exchange = _Exchange([(0, 0)] * threads)
        self.pairs: list[tuple[Layer, list[Any]]] = []
        norms: dict[int, dict[str, np.ndarray]] = {}

        def norm_sums(bn: Any) -> dict[str, np.ndarray]:
            found = norms.get(id(bn))
            if found is None:
                c = int(bn.state["moving_mean"].shape[0])
                found = norms[id(bn)] = {
                    "shift": np.zeros(c),
                    "rows": np.zeros(threads, np.int64),
                    **{k: np.zeros((CHUNKS, c)) for k in ("s1", "s2", "sg", "sgx")},
                }
            return found

        twins_of: dict[int, list[Any]] = {}

        def twin(obj: Any, slot: int) -> Any:
            if type(obj) is Dropout:
                return _SplitDropout(obj, slot, self)
            if type(obj) is BatchNormalization:
                return _SplitBatchNorm(obj, False, slot, self, norm_sums(obj))
            if isinstance(obj, FusedBatchNormReLU):
                return _SplitBatchNorm(obj.bn, True, slot, self, norm_sums(obj.bn))
            made = copy.copy(obj)
            if isinstance(obj, (FusedConvMaxPool, ConvBatchNorm)):
                if hasattr(obj, "_plans"):
                    made._plans = copy.deepcopy(obj._plans)
                for name in ("conv", "pool", "norm"):
                    if hasattr(obj, name):
                        setattr(made, name, twin(getattr(obj, name), slot))
                return made
            made.grads = {}
            if hasattr(obj, "_plans"):
                made._plans = copy.deepcopy(obj._plans) if isinstance(obj._plans, ShapePlans) else {}
            twins_of.setdefault(id(obj), []).append(made)
            return made

        self.per_thread = [[twin(stage, slot) for stage in stages] for slot in range(threads)]
        for stage in stages:
            for layer in _layers_of(stage):
                if id(layer) in twins_of:
                    self.pairs.append((layer, twins_of[id(layer)]))

    def sync(self) -> None:
        """Copy each layer's settings and weights (not its caches, plans or grads) into its twins."""
        for layer, twins in self.pairs:
            settings = {k: v for k, v in vars(layer).items() if k not in _OWN}
            for made in twins:
                vars(made).update(settings)
                grads = made.grads
                for key, value in layer.grads.items():
                    mine = grads.get(key)
                    if mine is None or mine.shape != value.shape or mine.dtype != value.dtype:
                        grads[key] = np.zeros_like(value)

    def add_grads(self) -> None:
        """Each layer's grads = the sum of its twins' (in thread order)."""
        for layer, twins in self.pairs:
            if not layer.trainable:
                continue
            for key, out in layer.grads.items():
                np.add(twins[0].grads[key], twins[1].grads[key], out=out)
                for more in twins[2:]:
                    out += more.grads[key]


def _twins(model: Any, threads: int) -> _Twins:
    key, units = _units(model)  # type: ignore[misc]
    found: _Twins | None = getattr(model, "_split_twins", None)
    if found is None or found.key is not key or len(found.per_thread) != threads:
        found = _Twins(key, units, threads)
        model._split_twins = found
    found.sync()
    return found


def _draw_masks(model: Any, x: np.ndarray, exchange: _Exchange) -> None:
    """The whole batch's Dropout masks, drawn in the order the unsplit step draws them."""
    from convlens.ops.dropout import dropout_mask

    exchange.masks = {}
    for layer, shape, dtype in _facts(model).dropouts:
        if layer.rng is None:
            layer.rng = np.random.default_rng(layer.seed)
        exchange.masks[id(layer)] = dropout_mask(
            (x.shape[0], *shape), x.dtype if dtype is None else dtype, layer.rate, layer.rng
        )


_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0  # (the process that made _POOL: a forked child has none of its threads)
_POOL_LOCK = threading.Lock()


def _workers(count: int) -> ThreadPoolExecutor:
    """A pool of at least ``count`` threads of its own: every part must run at once (they meet at barriers),
    so none may wait in a queue behind another, as it might in the pool of :mod:`convlens.ops.parallel`."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < count or os.getpid() != _POOL_PID:
            _POOL = ThreadPoolExecutor(max_workers=count, thread_name_prefix="convlens-step")
            _POOL_PID = os.getpid()
        return _POOL


def _run_parts(work: Callable[[int], None], exchange: _Exchange) -> None:
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

    pool = _workers(parts - 1)
    futures = [pool.submit(run, slot) for slot in range(parts - 1)]
    try:
        run(parts - 1)
    finally:
        for future in futures:
            future.result()
    failed = [e for e in errors if e is not None]
    if failed:  # (the error itself first; the other threads' broken barriers only follow from it)
        failed.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))
        raise failed[0]


def _forward_graph(model: Any, twins: list[Any], x: np.ndarray) -> tuple[np.ndarray, Any]:
    """A Functional model's training forward on ``x`` through one thread's twins (as ``Functional._run``):
    the output and the output layer's twin."""
    values = {id(model._inputs[0]): x}
    output = model._outputs[0]
    last = None
    for node, twin in zip(model._nodes, twins, strict=True):
        args = [values[id(tensor)] for tensor in node.inputs]
        values[id(node.output)] = twin.forward(args if node.layer.takes_list else args[0], training=True)
        if node is output.node:
            last = twin
    return values[id(output)], last


def _backward_graph(model: Any, twins: list[Any], grad: np.ndarray, fused: bool) -> None:
    """A Functional model's backward from the loss gradient through one thread's twins (as
    ``Functional._backward_train``; every layer's output reaches the loss, see :class:`_Facts`)."""
    output = model._outputs[0]
    grads: dict[int, np.ndarray] = {id(output): grad}
    for node, twin in reversed(list(zip(model._nodes, twins, strict=True))):
        layer = node.layer
        g = grads.pop(id(node.output))
        grad_in = twin.backward_linear(g) if fused and node is output.node else twin.backward(g)
        if not layer.compute_grad_x:
            continue
        parts = grad_in if layer.takes_list else [grad_in]
        for tensor, part in zip(node.inputs, parts, strict=True):
            key = id(tensor)
            grads[key] = part if key not in grads else grads[key] + part


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
        exchange = twins.exchange = _Exchange(bounds)
        _draw_masks(model, x, exchange)
        fused = model._fused()
        outs: list[tuple[np.ndarray, np.ndarray]] = [None] * threads  # type: ignore[list-item]
        graph = getattr(model, "_nodes", None) if not hasattr(model, "stages") else None

        def forward(slot: int) -> None:
            lo, hi = bounds[slot]
            units = twins.per_thread[slot]
            if graph is None:
                h = x[lo:hi]
                for stage in units:
                    h = stage.forward(h, training=True)
                last = units[-1]
            else:
                h, last = _forward_graph(model, units, x[lo:hi])
            outs[slot] = (h, last.pre_activation if fused else h)

        _run_parts(forward, exchange)
        y_pred = np.concatenate([out[0] for out in outs])
        logits = np.concatenate([out[1] for out in outs]) if fused else y_pred
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss, grad = model.loss.value_and_grad(y, logits, sample_weight, fused=fused)

        def backward(slot: int) -> None:
            lo, hi = bounds[slot]
            units = twins.per_thread[slot]
            if graph is not None:
                _backward_graph(model, units, grad[lo:hi], fused)
                return
            g = units[-1].backward_linear(grad[lo:hi]) if fused else units[-1].backward(grad[lo:hi])
            for stage in reversed(units[:-1]):
                g = stage.backward(g)

        _run_parts(backward, exchange)
    twins.add_grads()
    loss += weight_penalty(model.layers, add_gradients=True)
    return float(loss), y_pred
