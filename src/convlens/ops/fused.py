"""Fused convolution -> monotonic activation -> non-overlapping max pooling.

``maxpool(act(conv(x) + bias))`` equals ``act(maxpool(conv(x)) + bias)`` whenever ``act`` never
decreases (relu, linear, sigmoid, tanh, leaky_relu) and the pooling windows do not overlap: the bias is
the same for every cell of a window and a non-decreasing function keeps the arg-max. (float32 tanh is
Eigen's interpolant, monotone only to within 4.8e-7 (:mod:`convlens.ops.tanh_float32`): where two cells of
a window lie that close after tanh, the fused stage may keep the other one, a difference below float32's
own rounding of the convolution sums.) Computing it in that
order never stores the full-resolution feature map: the im2col rows are grouped by the offset inside the
pooling window, each offset's conv outputs (one slab) come from one GEMM into a reused buffer and are
folded into a running ``np.maximum`` while still in cache, and training keeps only which offset won each
window (a small integer per pooled value). The backward pass routes each pooled gradient to its winner's
slab and runs the kernel-gradient GEMM over all slabs at once.

The plan picks one of two algorithms (:mod:`convlens.ops.fused_algorithms`) from the table below:
``conv_pool_gemm`` (im2col + one GEMM per pooling offset) or, for a few input channels
(``DIRECT_CHANNELS``) when Numba is available, ``conv_pool_direct`` (compiled direct convolution,
same winner rule, no im2col matrix). ``plan.explain()`` says which and why.

Gradients are exactly those of the unfused layers, including the tie rule: the gradient of each
window goes to the first maximal cell in row-major order.

Shapes:
    x: (N, H, W, C); kernel: (KH, KW, C, F); bias: (F,)
    conv output (never stored whole): (N, OH, OW, F), OH from the conv geometry
    out: (N, OH // PH, OW // PW, F) (pooling 'valid' with strides == pool_size)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.errors import ShapeError
from convlens.geometry import WindowGeometry
from convlens.ops.activations import Activation, relu_inplace
from convlens.ops.conv_plan import Conv2DGrads
from convlens.ops.fused_algorithms import ConvPoolDirect, ConvPoolGemm, ConvPoolStrategy
from convlens.ops.jit import jit_enabled
from convlens.ops.parallel import num_threads
from convlens.ops.strategy import Explanation, Registry, Rule
from convlens.ops.windows import Workspace, tap_slices

__all__ = ["CONV_POOL_REGISTRY", "DIRECT_CHANNELS", "MONOTONIC_ACTIVATIONS", "ConvMaxPoolPlan", "ConvPoolProblem"]

MONOTONIC_ACTIVATIONS = frozenset({"relu", "linear", "sigmoid", "tanh", "leaky_relu"})

#: Input channel counts for which the direct-convolution kernels beat im2col + GEMM when grad_x is wanted
#: (two threads or more / one thread), and without grad_x (a first layer; two threads or more only).
DIRECT_CHANNELS = range(1, 13)
DIRECT_CHANNELS_ONE_THREAD = range(1, 7)
DIRECT_CHANNELS_NO_GRAD_X = range(2, 4)
DIRECT_MEASURED = (
    "Intel Xeon, float32, 3x3 'same', pool 2x2, F=32, fwd+bwd, ms, direct vs GEMM (benchmarks/conv_thresholds.py "
    "and batch-128 A/B runs), 2 threads: batch 128, 28x28: C=1 with grad_x 8.1 vs 11.7, without 5.5 vs 6.4 (the "
    "course stage), C=8 with 33.1 vs 46.8; batch 64: C=3 without 5.2 vs 6.0, C=8 without 12.1 vs 8.2, C=12 with "
    "26.1 vs 28.9; 13x13 C=32 -> 64 with: 33.8 vs 26.5. 1 thread, batch 128: C=1 with 11.6 vs 14.1, without "
    "8.3 vs 7.3, C=8 with 60.8 vs 54.0; batch 64: C=3 with 12.1 vs 14.2, C=6 with 22.5 vs 21.9. The course "
    "stage (C=1, no grad_x) keeps the GEMM even with two threads, 13% slower there: the direct kernels take "
    "~6 s to compile, which would make the first `convlens train` after installing ~2x its warm time instead "
    "of ~1.4x. (On the AMD EPYC, commit e09f794: direct for 2 <= C <= 6 with grad_x only.)"
)


@dataclass(frozen=True)
class ConvPoolProblem:
    """What the fused stage's algorithms are chosen on."""

    x_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    geometry: WindowGeometry
    pool_size: tuple[int, int]
    dtype: np.dtype[Any]
    compute_grad_x: bool

    @property
    def channels(self) -> int:
        """C, input channels."""
        return self.kernel_shape[2]


def _direct_wins(problem: ConvPoolProblem, chosen: Mapping[str, str]) -> bool:
    if num_threads() == 1:
        return problem.compute_grad_x and problem.channels in DIRECT_CHANNELS_ONE_THREAD
    if problem.compute_grad_x:
        return problem.channels in DIRECT_CHANNELS
    return problem.channels in DIRECT_CHANNELS_NO_GRAD_X


CONV_POOL_RULES = (
    Rule(
        "forward",
        "conv_pool_direct",
        f"C <= {DIRECT_CHANNELS.stop - 1} with the input gradient, C <= {DIRECT_CHANNELS_NO_GRAD_X.stop - 1} "
        f"without; one thread: C <= {DIRECT_CHANNELS_ONE_THREAD.stop - 1} with the input gradient",
        _direct_wins,
        DIRECT_MEASURED,
    ),
    Rule(
        "forward",
        "conv_pool_gemm",
        "otherwise",
        lambda p, c: True,
        "the GEMM's kernel gradient wins for wide inputs and, with one thread, for first layers (see above)",
    ),
)
CONV_POOL_REGISTRY = Registry("conv+maxpool", ("forward",), (ConvPoolGemm, ConvPoolDirect), CONV_POOL_RULES)


class ConvMaxPoolPlan:
    """A fused conv + activation + max-pool stage for one input shape (buffers reused across calls).

    ``algorithm`` forces ``'conv_pool_gemm'`` or ``'conv_pool_direct'`` (ConfigError when it cannot run);
    ``dtype`` and ``compute_grad_x`` are what :attr:`algorithms` and :meth:`explain` describe by default.
    """

    def __init__(
        self,
        x_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        conv_geometry: WindowGeometry,
        pool_size: tuple[int, int],
        activation: Activation,
        owner: str = "conv+maxpool",
        *,
        algorithm: str | Mapping[str, str] = "auto",
        dtype: Any = None,
        compute_grad_x: bool = True,
    ) -> None:
        if activation.name not in MONOTONIC_ACTIVATIONS:
            raise ShapeError(f"{owner}: activation {activation.name!r} is not monotonic; cannot fuse with max pooling.")
        oh, ow = conv_geometry.output_size
        ph, pw = pool_size
        self.owner = owner
        self.pool_geometry = WindowGeometry.resolve((oh, ow), pool_size, pool_size, "valid", owner=owner)
        self.x_shape = tuple(x_shape)
        self.kernel_shape = tuple(kernel_shape)
        self.geometry = conv_geometry
        self.pool_size = (ph, pw)
        self.activation = activation
        self.workspace = Workspace()
        self._cache: tuple[Any, ...] | None = None
        self._winner: np.ndarray | None = None
        self.index_dtype = np.dtype(np.min_scalar_type(ph * pw - 1))
        qh, qw = self.pool_geometry.output_size
        kh, kw = kernel_shape[:2]
        # Input slices read by tap (i, j) for the conv outputs at pool offset (a, b).
        self.taps = [
            (a, b, i, j, *tap_slices(conv_geometry, i, j, first=(a, b), step=(ph, pw), count=(qh, qw)))
            for a in range(ph)
            for b in range(pw)
            for i in range(kh)
            for j in range(kw)
        ]
        self._source = f"algorithm={algorithm!r}"
        self._forced = CONV_POOL_REGISTRY.forced_roles(algorithm, owner, self._source)
        self.dtype = np.dtype(np.float32 if dtype is None else dtype)
        self.compute_grad_x = compute_grad_x
        self._strategies: dict[tuple[Any, ...], tuple[Any, ConvPoolStrategy]] = {}
        self._strategy(self.dtype, compute_grad_x)  # choose now: a forced algorithm that cannot run fails here

    def _strategy(self, dtype: Any, compute_grad_x: bool) -> ConvPoolStrategy:
        key = (np.dtype(dtype), compute_grad_x, jit_enabled())
        found = self._strategies.get(key)
        if found is None:
            problem = ConvPoolProblem(
                self.x_shape, self.kernel_shape, self.geometry, self.pool_size, np.dtype(dtype), compute_grad_x
            )
            choices = CONV_POOL_REGISTRY.select(problem, self._forced, self.owner, self._source)
            strategy: Any = CONV_POOL_REGISTRY.strategies[choices[0].algorithm]
            found = self._strategies[key] = (choices, strategy(self))
        return found[1]

    @property
    def algorithms(self) -> str:
        """The algorithm for the plan's dtype and ``compute_grad_x``."""
        return self._strategy(self.dtype, self.compute_grad_x).name

    def explain(self, dtype: Any = None, compute_grad_x: bool | None = None) -> Explanation:
        """Which algorithms applied, which won and why (the backward always follows the forward)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        grad_x = self.compute_grad_x if compute_grad_x is None else compute_grad_x
        self._strategy(dtype, grad_x)
        choices = self._strategies[(dtype, grad_x, jit_enabled())][0]
        title = (
            f"{self.owner}: x {self.x_shape} * kernel {self.kernel_shape}, {self.activation.name}, max pool "
            f"{self.pool_size} -> {self.output_shape}; {dtype.name}, input gradient "
            f"{'needed' if grad_x else 'not needed'}, compiled kernels {'on' if jit_enabled() else 'off'} "
            "(the backward follows the forward)"
        )
        return Explanation(title, choices)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """(N, OH // PH, OW // PW, F)."""
        qh, qw = self.pool_geometry.output_size
        return (self.x_shape[0], qh, qw, self.kernel_shape[3])

    @property
    def winner(self) -> np.ndarray | None:
        """Which pool offset ``a * PW + b`` won each window in the last training forward, else None.

        Shapes:
            winner: (N, QH, QW, F), unsigned integers
        """
        return None if self._winner is None else self._winner.reshape(self.output_shape)

    def activation_grad(self, g: np.ndarray, out: np.ndarray, pre: np.ndarray | None) -> np.ndarray:
        """dL/d(pooled pre-activation) from dL/d(pooled activation)."""
        if self.activation.name == "relu":
            return np.multiply(g, out > 0, dtype=out.dtype)
        return self.activation.backward(g, out if pre is None else pre, out)

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None,
        training: bool = False,
        *,
        compute_grad_x: bool = True,
    ) -> np.ndarray:
        """Pooled activations (N, QH, QW, F); keeps what backward needs when ``training``.

        ``compute_grad_x=False`` says the backward will not need ``grad_x`` (it only picks the faster
        algorithm; the backward's own flag decides what it returns).
        """
        filters = self.kernel_shape[3]
        rows = self.output_shape[0] * self.output_shape[1] * self.output_shape[2]
        winner = self.workspace.get("winner", (rows, filters), self.index_dtype) if training else None
        window_max = self.workspace.get("window_max", (rows, filters), x.dtype)
        strategy = self._strategy(np.result_type(x.dtype, kernel.dtype), compute_grad_x)
        kept, done = strategy.forward(x, kernel, bias, window_max, winner)
        if done is not None:  # the compiled pass already added the bias (and applied the ReLU)
            pooled = done
        else:
            pooled = window_max + bias if bias is not None else window_max.copy()
            if self.activation.name == "relu":
                relu_inplace(pooled)
        if self.activation.name == "relu":
            out, pre = pooled, None
        else:
            out = self.activation.forward(pooled)
            pre = pooled
        self._winner = winner
        self._cache = (x, kept, winner, out, pre, strategy) if training else None
        return out.reshape(self.output_shape)

    def backward(self, grad_out: np.ndarray, kernel: np.ndarray, *, compute_grad_x: bool = True) -> Conv2DGrads:
        """Gradients w.r.t. input, kernel and bias from ``grad_out`` (N, QH, QW, F)."""
        if self._cache is None:
            raise ShapeError("conv+maxpool: backward called without a forward(training=True) first.")
        x, kept, winner, out, pre, strategy = self._cache
        self._cache = None
        g = grad_out.reshape(winner.shape[0], self.kernel_shape[3])
        return strategy.backward(kept, x, g, out, pre, winner, kernel, compute_grad_x)
