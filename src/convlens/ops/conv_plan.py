"""The 2-D convolution plan: geometry resolved once, algorithms chosen once, buffers reused.

:class:`Conv2DPlan` runs every 2-D (and, through a height-1 view, 1-D) convolution in convlens: the
pure functions in :mod:`convlens.ops.conv` build a throwaway plan, layers keep one per input shape.
At construction it picks one algorithm per role (forward, kernel gradient, input gradient) from the
table in :mod:`convlens.ops.conv_selection`; ``plan.algorithms`` records the picks and
``plan.explain()`` says which algorithms applied, which won and why.

Shapes (channels_last):
    x: (N, H, W, C); kernel: (KH, KW, C / G, F); bias: (F,); out: (N, OH, OW, F)

>>> plan = Conv2DPlan((128, 14, 14, 32), (3, 3, 32, 64), padding="same")
>>> plan.algorithms.forward in ("winograd_blocked", "winograd")  # (the blocked one needs compiled kernels)
True
>>> Conv2DPlan((8, 28, 28, 1), (3, 3, 1, 32), padding="same", algorithm="grouped_gemm").algorithms.forward
'grouped_gemm'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from convlens import switches
from convlens.errors import ShapeError, check_int
from convlens.geometry import WindowGeometry
from convlens.ops.conv_algorithms import ConvProblem, ConvStrategy
from convlens.ops.conv_selection import CONV_REGISTRY
from convlens.ops.jit import jit_enabled
from convlens.ops.strategy import Choice, Explanation
from convlens.ops.windows import Workspace

__all__ = ["CONV_ALGORITHMS", "Conv2DGrads", "Conv2DPlan", "ConvAlgorithms"]

#: Values of ``Conv2DPlan(algorithm=...)``: 'auto' or an algorithm's name.
CONV_ALGORITHMS = ("auto", *CONV_REGISTRY.names())


class Conv2DGrads(NamedTuple):
    """Gradients of a convolution: ``x`` is None when it was not asked for."""

    x: np.ndarray | None
    kernel: np.ndarray
    bias: np.ndarray


class ConvAlgorithms(NamedTuple):
    """The algorithm of each role of a plan (names from ``convlens.ops.conv_algorithms()``)."""

    forward: str
    kernel_grad: str
    input_grad: str


class _Selected:
    """The strategies chosen for one dtype: one instance per algorithm, shared by the roles it plays."""

    def __init__(self, choices: tuple[Choice, ...], problem: ConvProblem, workspace: Workspace | None) -> None:
        self.choices = choices
        instances: dict[str, ConvStrategy] = {}
        for choice in choices:
            if choice.algorithm not in instances:
                strategy: Any = CONV_REGISTRY.strategies[choice.algorithm]
                instances[choice.algorithm] = strategy(problem, workspace)
        self.forward, self.kernel_grad, self.input_grad = (instances[c.algorithm] for c in choices)
        self.names = ConvAlgorithms(*(c.algorithm for c in choices))


def _fmt(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


class Conv2DPlan:
    """A 2-D convolution for one input shape: geometry resolved once, algorithms chosen once, buffers reused.

    Args:
        x_shape: (N, H, W, C) channels-last.
        kernel_shape: (KH, KW, C / G, F).
        strides, padding, dilation_rate, groups: as :func:`convlens.ops.conv2d`.
        owner: name used in error messages (a layer repr or op name).
        reuse_buffers: keep scratch buffers between calls (layers); False for throwaway plans.
        display_shape: the input shape as the user gave it (channels-first or 1-D), for messages.
        algorithm: 'auto' (the selection table, or ``CONVLENS_CONV_ALGORITHM`` when set), an algorithm's
            name (forced for every role it plays) or a ``{role: name}`` mapping. Forcing an algorithm
            that cannot compute this convolution raises ConfigError saying why.
        dtype: the dtype the choice is made for (float32 by default); other dtypes get their own choice
            on first use.

    Shapes:
        x: (N, H, W, C) channels-last; kernel: (KH, KW, C / G, F).
    """

    def __init__(
        self,
        x_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        *,
        strides: Any = 1,
        padding: Any = "valid",
        dilation_rate: Any = 1,
        groups: int = 1,
        owner: str = "conv2d",
        reuse_buffers: bool = True,
        display_shape: tuple[int, ...] | None = None,
        algorithm: str | Mapping[str, str] = "auto",
        dtype: Any = None,
    ) -> None:
        groups = check_int(groups, "groups", owner=owner, minimum=1)
        self._check_shapes(x_shape, kernel_shape, groups, owner, display_shape)
        self.owner = owner
        self.groups = groups
        self.x_shape = tuple(int(s) for s in x_shape)
        self.kernel_shape = tuple(int(s) for s in kernel_shape)
        kh, kw = self.kernel_shape[:2]
        self.geometry = WindowGeometry.resolve(
            self.x_shape[1:3], (kh, kw), strides, padding, dilation_rate, owner=owner
        )
        self.workspace: Workspace | None = Workspace() if reuse_buffers else None
        if isinstance(algorithm, str) and algorithm == "auto" and switches.CONV_ALGORITHM.value():
            algorithm, self._source = switches.CONV_ALGORITHM.value(), f"{switches.CONV_ALGORITHM.name}"
        elif isinstance(algorithm, str):
            self._source = f"algorithm={algorithm!r}"
        else:
            self._source = f"algorithm={dict(algorithm)!r}"
        self._forced = CONV_REGISTRY.forced_roles(algorithm, owner, self._source)
        self.dtype = np.dtype(np.float32 if dtype is None else dtype)
        self._selections: dict[tuple[np.dtype[Any], bool], _Selected] = {}
        self._selected(self.dtype)  # choose now: a forced algorithm that does not apply fails here

    @staticmethod
    def _check_shapes(
        x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], groups: int, owner: str, display: Any
    ) -> None:
        if len(x_shape) != 4:
            raise ShapeError(f"{owner}: input must be 4-D (batch, height, width, channels), got shape {_fmt(x_shape)}.")
        if len(kernel_shape) != 4:
            raise ShapeError(
                f"{owner}: `kernel` must be 4-D (kernel_h, kernel_w, in_channels / groups, filters), "
                f"got shape {_fmt(kernel_shape)}."
            )
        channels, (cg, filters) = x_shape[3], kernel_shape[2:]
        if channels == 0 or filters == 0:
            raise ShapeError(
                f"{owner}: input channels and filters must be positive, got {channels} channels and {filters} filters."
            )
        if channels % groups or filters % groups:
            raise ShapeError(
                f"{owner}: input channels ({channels}) and filters ({filters}) must both be divisible by "
                f"groups={groups}."
            )
        if cg * groups != channels:
            shown = _fmt(display if display is not None else x_shape)
            raise ShapeError(
                f"{owner}: kernel expects {cg * groups} input channels ({cg} per group x {groups} groups), "
                f"got an input with {channels} channels (shape {shown})."
            )

    def _selected(self, dtype: np.dtype[Any]) -> _Selected:
        """The strategies for ``dtype``, chosen on first use (the choice may depend on compiled kernels)."""
        key = (dtype, jit_enabled())
        selected = self._selections.get(key)
        if selected is None:
            problem = ConvProblem(self.x_shape, self.kernel_shape, self.geometry, self.groups, dtype)  # type: ignore[arg-type]
            choices = CONV_REGISTRY.select(problem, self._forced, self.owner, self._source)
            selected = self._selections[key] = _Selected(choices, problem, self.workspace)
        return selected

    @property
    def algorithms(self) -> ConvAlgorithms:
        """The algorithm of each role for the plan's dtype (``plan.explain()`` says why)."""
        return self._selected(self.dtype).names

    def explain(self, dtype: Any = None) -> Explanation:
        """Which algorithms applied to each role, which won and why (print it, or ``.to_dict()``)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        g = self.geometry
        title = (
            f"{self.owner}: x {_fmt(self.x_shape)} * kernel {_fmt(self.kernel_shape)} -> {_fmt(self.output_shape)}; "
            f"strides {g.strides}, dilation {g.dilation_rate}, pads {g.pads}, groups {self.groups}, {dtype.name}, "
            f"compiled kernels {'on' if jit_enabled() else 'off'}"
        )
        return Explanation(title, self._selected(dtype).choices)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """(N, OH, OW, F)."""
        oh, ow = self.geometry.output_size
        return (self.x_shape[0], oh, ow, self.kernel_shape[3])

    def __repr__(self) -> str:
        a = self.algorithms
        return (
            f"Conv2DPlan({self.owner}: {_fmt(self.x_shape)} -> {_fmt(self.output_shape)}, forward={a.forward}, "
            f"kernel_grad={a.kernel_grad}, input_grad={a.input_grad})"
        )

    def _check(self, x: np.ndarray, kernel: np.ndarray) -> None:
        if x.shape != self.x_shape:
            raise ShapeError(f"{self.owner}: expected input shape {self.x_shape}, got {x.shape}.")
        if kernel.shape != self.kernel_shape:
            raise ShapeError(f"{self.owner}: expected kernel shape {self.kernel_shape}, got {kernel.shape}.")

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """Convolve ``x`` (N, H, W, C) with ``kernel``; returns (N, OH, OW, F).

        The forward keeps what its kernel gradient reuses (the im2col matrix, Winograd's V) for a backward
        of the same ``x``.
        """
        self._check(x, kernel)
        return self._selected(np.result_type(x.dtype, kernel.dtype)).forward.forward(x, kernel, bias)

    def backward(
        self,
        grad_out: np.ndarray,
        x: np.ndarray,
        kernel: np.ndarray,
        *,
        compute_grad_x: bool = True,
    ) -> Conv2DGrads:
        """Gradients with respect to ``x``, ``kernel`` and bias given ``grad_out`` (N, OH, OW, F)."""
        self._check(x, kernel)
        if grad_out.shape != self.output_shape:
            raise ShapeError(
                f"{self.owner}: `grad_out` must have the output shape {self.output_shape}, got {grad_out.shape}."
            )
        selected = self._selected(np.result_type(x.dtype, kernel.dtype, grad_out.dtype))
        selected.kernel_grad.input_grad_follows = compute_grad_x and selected.input_grad is selected.kernel_grad
        grad_kernel, grad_bias = selected.kernel_grad.kernel_grad(grad_out, x, kernel)
        grad_x = selected.input_grad.input_grad(grad_out, x, kernel) if compute_grad_x else None
        return Conv2DGrads(grad_x, grad_kernel, grad_bias)
