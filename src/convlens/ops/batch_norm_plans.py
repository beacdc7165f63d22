"""Batch normalisation (optionally followed by ReLU) as a plan: one algorithm per dtype, chosen from a table.

- ``batch_norm_numpy``: the reference, :func:`convlens.ops.normalization.batch_norm_forward` and
  :func:`~convlens.ops.normalization.batch_norm_backward` (then ``np.maximum(y, 0)`` and ``grad * (y > 0)``
  for the ReLU);
- ``batch_norm_compiled``: the Numba kernels of :mod:`convlens.ops.batch_norm_jit`: two passes forward, two
  backward, the ReLU folded in, nothing kept but the forward's input and output. Statistics and channel sums
  accumulate in float64 (so they agree with the reference to rounding); inference gives the reference's bits.

``BatchNormalization`` layers keep one plan; ``Sequential`` runs a ``BatchNormalization -> ReLU`` pair as one
plan with ``relu=True`` (:mod:`convlens.fusion`).

Shapes:
    x, y, grad_out, grad_x: (M, C) (the layer flattens every axis but the channel axis); gamma, beta,
    moving_mean, moving_variance: (C,)

>>> plan = BatchNormPlan(np.float32, relu=True, algorithm="batch_norm_numpy")
>>> x = np.array([[0.0], [2.0]], np.float32)
>>> mm, mv = np.zeros(1, np.float32), np.ones(1, np.float32)
>>> plan.forward(x, None, None, mm, mv, momentum=0.99, epsilon=0.0, training=True)[:, 0]
array([0., 1.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.errors import ConfigError, StateError
from convlens.ops.activations import relu_inplace
from convlens.ops.batch_norm_jit import bn_backward_jit, bn_normalize_with, bn_statistics_jit
from convlens.ops.jit import compiled_for, jit_enabled
from convlens.ops.normalization import (
    BatchNormCache,
    batch_norm_backward,
    batch_norm_forward,
    update_moving,
)
from convlens.ops.strategy import Choice, Explanation, Registry, Rule, Strategy

__all__ = ["BATCH_NORM_REGISTRY", "BatchNormCompiled", "BatchNormNumpy", "BatchNormPlan", "BatchNormProblem"]

Grads = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class BatchNormProblem:
    """What a batch-norm algorithm is chosen on."""

    dtype: np.dtype[Any]
    relu: bool


class _BatchNormStrategy(Strategy):
    roles = ("forward", "input_grad")

    def __init__(self, problem: BatchNormProblem) -> None:
        self.problem = problem

    def forward(
        self,
        x: np.ndarray,
        gamma: np.ndarray | None,
        beta: np.ndarray | None,
        moving_mean: np.ndarray,
        moving_variance: np.ndarray,
        momentum: float,
        epsilon: float,
        training: bool,
        keep: bool,
    ) -> np.ndarray:
        """y (M, C) from x (M, C): batch statistics (updating the moving ones in place) when ``training``;
        ``keep`` what the backward needs."""
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> Grads:
        """(grad_x, grad_gamma, grad_beta) of the last training forward."""
        raise NotImplementedError


class BatchNormNumpy(_BatchNormStrategy):
    """The reference: :mod:`convlens.ops.normalization`'s functions, then NumPy's ReLU."""

    name = "batch_norm_numpy"
    summary = "batch_norm_forward / batch_norm_backward (about ten NumPy passes), then np.maximum for the ReLU"
    measured = "the reference"

    def __init__(self, problem: BatchNormProblem) -> None:
        super().__init__(problem)
        self._cache: tuple[BatchNormCache, np.ndarray] | None = None

    def forward(self, x, gamma, beta, moving_mean, moving_variance, momentum, epsilon, training, keep):  # type: ignore[no-untyped-def]
        y, cache = batch_norm_forward(
            x, gamma, beta, moving_mean, moving_variance, momentum=momentum, epsilon=epsilon, training=training
        )
        if self.problem.relu:
            relu_inplace(y)
        self._cache = (cache, y) if keep else None
        return y

    def backward(self, grad_out: np.ndarray) -> Grads:
        if self._cache is None:
            raise StateError("batch_norm: backward called without a training forward first.")
        (cache, y), self._cache = self._cache, None
        if self.problem.relu:
            grad_out = np.multiply(grad_out, y > 0, dtype=y.dtype)
        return batch_norm_backward(grad_out, cache)


class BatchNormCompiled(_BatchNormStrategy):
    """Numba kernels (:mod:`convlens.ops.batch_norm_jit`): statistics + normalise forward, two passes backward."""

    name = "batch_norm_compiled"
    summary = "compiled: two passes forward, two backward, ReLU folded in, float64 channel sums"
    measured = (
        "fwd+bwd (128, 32x32, 32) BN + ReLU: 37 ms NumPy (BN 29 + ReLU 8) -> 7 ms; inference at batch 1000: "
        "323 -> 40 ms (Intel Xeon, 2 threads, loaded machine)"
    )

    @classmethod
    def applies(cls, problem: BatchNormProblem) -> str | None:
        if not compiled_for(problem.dtype):
            return (
                f"needs compiled kernels for {problem.dtype.name} (numba installed, CONVLENS_JIT not 0, "
                "the dtype in CONVLENS_JIT_DTYPES)"
            )
        return None

    def __init__(self, problem: BatchNormProblem) -> None:
        super().__init__(problem)
        self._kept: tuple[Any, ...] | None = None

    def forward(self, x, gamma, beta, moving_mean, moving_variance, momentum, epsilon, training, keep):  # type: ignore[no-untyped-def]
        dtype = self.problem.dtype
        x = np.ascontiguousarray(x, dtype)
        if training:
            if x.shape[0] == 0:
                batch_norm_forward(x, gamma, beta, moving_mean, moving_variance, training=True)  # its ShapeError
            mean64, var64 = bn_statistics_jit(x)
            mean, var = mean64.astype(dtype), var64.astype(dtype)
            update_moving(moving_mean, moving_variance, mean, var, momentum)
        else:
            mean = moving_mean.astype(dtype, copy=False)
            var = moving_variance.astype(dtype, copy=False)
        y, mean, inv_std, g = bn_normalize_with(x, mean, var, gamma, beta, epsilon, self.problem.relu)
        self._kept = (training, x, y, mean, inv_std, g, gamma) if keep else None
        return y

    def backward(self, grad_out: np.ndarray) -> Grads:
        if self._kept is None:
            raise StateError("batch_norm: backward called without a training forward first.")
        (training, x, y, mean, inv_std, g, gamma), self._kept = self._kept, None
        grad = np.ascontiguousarray(grad_out, x.dtype)
        if training:
            return bn_backward_jit(grad, x, y, mean, inv_std, g, self.problem.relu)
        # A frozen layer in a training step (constant statistics): rare, so the reference's backward.
        if self.problem.relu:
            grad = np.multiply(grad, y > 0, dtype=y.dtype)
        cache = BatchNormCache((x - mean) * inv_std, inv_std, gamma, False, x.shape)
        return batch_norm_backward(grad, cache)


def _always(problem: BatchNormProblem, chosen: Mapping[str, str]) -> bool:
    return True


BATCH_NORM_REGISTRY = Registry(
    "batch_norm",
    ("forward", "input_grad"),
    (BatchNormNumpy, BatchNormCompiled),
    [
        Rule("forward", "batch_norm_compiled", "when compiled", _always, BatchNormCompiled.measured),
        Rule("forward", "batch_norm_numpy", "otherwise", _always, "the reference"),
        Rule(
            "input_grad",
            "batch_norm_compiled",
            "forward is batch_norm_compiled",
            lambda p, c: c.get("forward") == "batch_norm_compiled",
            "the backward reads what its forward kept",
        ),
        Rule("input_grad", "batch_norm_numpy", "otherwise", _always, "the backward reads what its forward kept"),
    ],
)


class BatchNormPlan:
    """Batch norm over (M, C) rows (+ ReLU when ``relu``) for one dtype; the algorithm chosen once.

    Args:
        dtype: the layer's dtype.
        relu: apply ReLU to the output (a fused ``BatchNormalization -> ReLU`` pair).
        owner: name used in error messages.
        algorithm: 'auto' (the table) or an algorithm's name (both roles: they share what the forward keeps).

    Shapes:
        x, y, grad_out, grad_x: (M, C); gamma, beta, moving statistics: (C,)
    """

    def __init__(
        self, dtype: Any, relu: bool = False, *, owner: str = "batch_norm", algorithm: str | Mapping[str, str] = "auto"
    ) -> None:
        self.owner = owner
        self.problem = BatchNormProblem(np.dtype(dtype), bool(relu))
        self._source = f"algorithm={algorithm!r}"
        self._forced = BATCH_NORM_REGISTRY.forced_roles(algorithm, owner, self._source)
        if len(set(self._forced.values())) > 1 or len(self._forced) == 1:
            raise ConfigError(
                f"{owner}: {self._source} must force one algorithm for both roles (the backward reads what its "
                f"forward kept), got {dict(self._forced)!r}."
            )
        self._selections: dict[bool, tuple[tuple[Choice, ...], _BatchNormStrategy]] = {}
        self._last: _BatchNormStrategy | None = None
        self._select()  # a forced algorithm that cannot run fails here

    def _select(self) -> tuple[tuple[Choice, ...], _BatchNormStrategy]:
        """The choice for the current state of the compiled kernels (``CONVLENS_JIT`` may flip between calls)."""
        key = jit_enabled()
        found = self._selections.get(key)
        if found is None:
            choices = BATCH_NORM_REGISTRY.select(self.problem, self._forced, self.owner, self._source)
            strategy: Any = BATCH_NORM_REGISTRY.strategies[choices[0].algorithm]
            found = self._selections[key] = (choices, strategy(self.problem))
        return found

    @property
    def algorithm(self) -> str:
        """The chosen algorithm's name."""
        return self._select()[1].name

    def explain(self) -> Explanation:
        """Which algorithms applied, which won and why."""
        relu = " + ReLU" if self.problem.relu else ""
        return Explanation(f"{self.owner}: batch norm{relu}, {self.problem.dtype.name}", self._select()[0])

    def forward(
        self,
        x: np.ndarray,
        gamma: np.ndarray | None,
        beta: np.ndarray | None,
        moving_mean: np.ndarray,
        moving_variance: np.ndarray,
        *,
        momentum: float,
        epsilon: float,
        training: bool,
        keep: bool | None = None,
    ) -> np.ndarray:
        """Normalise ``x`` (M, C) (batch statistics when ``training``, else the moving ones); returns y (M, C).

        ``keep`` (default: ``training``) keeps what :meth:`backward` needs (a frozen layer in a training step
        normalises with the moving statistics and still passes gradients back).
        """
        strategy = self._select()[1]
        keep = training if keep is None else keep
        y = strategy.forward(x, gamma, beta, moving_mean, moving_variance, momentum, epsilon, training, keep)
        self._last = strategy if keep else None
        return y

    def backward(self, grad_out: np.ndarray) -> Grads:
        """``(grad_x, grad_gamma, grad_beta)`` for ``grad_out`` (M, C) of the last forward that kept its state."""
        if self._last is None:
            raise StateError(f"{self.owner}: backward called without a training forward first.")
        strategy, self._last = self._last, None
        return strategy.backward(grad_out)
