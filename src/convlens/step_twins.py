"""Twins of a model's stages for the data-parallel training step (:mod:`convlens.data_parallel`).

A twin shares its layer's weights and settings and keeps its own forward caches, plans (and so scratch
buffers) and gradients, so several threads can each run the model on their own part of a batch. ``Dropout``
and ``BatchNormalization`` get twins of their own kind: the first applies its rows of a mask drawn for the
whole batch, the second exchanges float64 partial channel sums with the other threads' twins at a barrier.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from convlens.layers.base import Layer
from convlens.ops.batch_norm_jit import (
    CHUNKS,
    bn_grad_input,
    bn_grad_sums,
    bn_moments,
    bn_normalize_with,
    bn_statistics_sums,
)
from convlens.ops.handoff import SpinBarrier
from convlens.ops.normalization import update_moving
from convlens.ops.plan_cache import ShapePlans

__all__ = ["Exchange", "Twins", "layers_of"]


def layers_of(stage: Any) -> list[Layer]:
    from convlens.fusion import ConvBatchNorm, FusedBatchNormReLU, FusedConvMaxPool

    if isinstance(stage, FusedConvMaxPool):
        return [stage.conv, stage.pool]
    if isinstance(stage, FusedBatchNormReLU):
        return [stage.bn, stage.relu]
    if isinstance(stage, ConvBatchNorm):
        return [stage.conv, *layers_of(stage.norm)]
    return [stage]


class Exchange:
    """What the two threads of one step share: the barrier, each half's rows, and the Dropout masks."""

    def __init__(self, bounds: list[tuple[int, int]]) -> None:
        self.barrier = SpinBarrier(len(bounds))
        self.bounds = bounds
        self.masks: dict[int, np.ndarray | None] = {}

    def wait(self, slot: int) -> None:
        """Wait at the barrier as part ``slot``."""
        self.barrier.wait(slot)


class _SplitDropout:
    """A thread's ``Dropout``: its rows of the mask drawn for the whole batch before the split."""

    def __init__(self, layer: Any, slot: int, shared: Twins) -> None:
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

    def __init__(self, bn: Any, relu: bool, slot: int, shared: Twins, sums: dict[str, np.ndarray]) -> None:
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
        sums, wait = self.sums, self.shared.exchange.wait
        sums["rows"][self.slot] = x2.shape[0]
        if self.slot == 0:
            sums["shift"][...] = x2[0]
        wait(self.slot)  # (the shift and every part's row count are known)
        bn_statistics_sums(x2, sums["shift"], self._pieces("s1"), self._pieces("s2"))
        wait(self.slot)  # (every piece's sums are in)
        rows = int(sums["rows"].sum())
        mean64, var64 = bn_moments(sums["s1"], sums["s2"], sums["shift"], rows)
        mean, var = mean64.astype(dtype), var64.astype(dtype)
        if self.slot == 0:
            update_moving(bn.state["moving_mean"], bn.state["moving_variance"], mean, var, bn.momentum)
        gamma, beta = bn.params.get("gamma"), bn.params.get("beta")
        y, mean, inv_std, g = bn_normalize_with(x2, mean, var, gamma, beta, bn.epsilon, self.relu)
        self._kept = (x2, y, mean, inv_std, g, rows, x.shape)
        return y.reshape(x.shape)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        bn = self.bn
        if self._kept is None:
            raise RuntimeError(f"{bn!r}: split backward called without a split forward first.")
        (x2, y, mean, inv_std, g, rows, shape), self._kept = self._kept, None
        grad2 = np.ascontiguousarray(grad_out, x2.dtype).reshape(x2.shape)
        bn_grad_sums(grad2, x2, y, mean, inv_std, self.relu, self._pieces("sg"), self._pieces("sgx"))
        self.shared.exchange.wait(self.slot)  # (every piece's sums are in)
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


class Twins:
    """The twins of a model's stages for each thread, and the map from each layer to its twins."""

    def __init__(self, key: Any, stages: list[Any], threads: int) -> None:
        from convlens.fusion import ConvBatchNorm, FusedBatchNormReLU, FusedConvMaxPool
        from convlens.layers.core import Dropout
        from convlens.layers.normalization import BatchNormalization

        self.key = key  # (kept: its identity says whether the model restaged since)
        self.exchange = Exchange([(0, 0)] * threads)
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
            for layer in layers_of(stage):
                if id(layer) in twins_of:
                    self.pairs.append((layer, twins_of[id(layer)]))

    def sync(self) -> None:
        """Copy each layer's settings and weights (not its caches, plans or grads) into its twins."""
        for layer, twins in self.pairs:
            settings = vars(layer).copy()  # (a C-level copy, then the twin's own keys out: ~4x a comprehension)
            for key in _OWN:
                settings.pop(key, None)
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
