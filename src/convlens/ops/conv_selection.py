"""Which convolution algorithm runs: the selection table, with the measurement behind every threshold.

Per role (forward, then kernel_grad, then input_grad) the first row whose condition holds and whose
algorithm applies (:mod:`convlens.ops.conv_algorithms`) wins; the last row of each role always
holds. Thresholds were tuned on 2-core machines (the development machine's AMD EPYC; the Intel Xeon
re-measurements say so); re-measure before changing them (``benchmarks/conv_ops.py``,
``benchmarks/conv_thresholds.py``).

>>> [rule.algorithm for rule in CONV_RULES if rule.role == "forward"]
['depthwise', 'winograd', 'grouped_gemm', 'im2col', 'grouped_gemm']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from convlens import switches
from convlens.ops.conv_algorithms import CONV_STRATEGIES, ConvProblem
from convlens.ops.jit import compiled_for
from convlens.ops.strategy import Registry, Rule

__all__ = [
    "CONV_REGISTRY",
    "CONV_ROLES",
    "CONV_RULES",
    "FEW_CHANNELS",
    "TRANSPOSED_MIN_CHANNELS",
    "WINOGRAD_MIN_CHANNELS",
    "conv_algorithms",
]

CONV_ROLES = ("forward", "kernel_grad", "input_grad")

#: Winograd pays its transforms (memory-bound passes over 4x the input) only when the channel reduction
#: is wide: both C and F at least this.
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MEASURED = (
    "AMD EPYC, float32, fwd+bwd, Winograd vs im2col: (128, 14x14, 32->64) 18.8 vs 28 ms and (32, 56x56, "
    "64->64) 110 vs 150 ms (README tables); Intel Xeon (benchmarks/conv_thresholds.py): see the README"
)
#: The transposed input gradient (im2col over grad_out, K = KH*KW*F) beats col2im (adds growing with C)
#: when C is at least this and the im2col is not much wider than the col2im: 2C >= F.
TRANSPOSED_MIN_CHANNELS = 16
TRANSPOSED_MEASURED = (
    "commit 92e0ee2 (AMD EPYC, float32): wide stride-1 layers; Intel Xeon (benchmarks/conv_thresholds.py): "
    "see the README"
)
#: NumPy's col2im adds runs of C floats; below this many channels per group the channel-first layout
#: (whole output rows per add) is faster, unless the compiled col2im runs.
FEW_CHANNELS = 8
FEW_CHANNELS_MEASURED = (
    "commit b49be42/21e83c4 (AMD EPYC): runs of 2-7 floats make the strided adds crawl; with the compiled "
    "col2im the plain layout wins (64, 32x32, 3->64: 13.8 -> 11.7 ms, commit ad4b7d5)"
)


def _forward_is(name: str) -> Callable[[Any, Mapping[str, str]], bool]:
    def when(problem: ConvProblem, chosen: Mapping[str, str]) -> bool:
        return chosen.get("forward") == name

    return when


def _always(problem: ConvProblem, chosen: Mapping[str, str]) -> bool:
    return True


def _wide_for_winograd(problem: ConvProblem, chosen: Mapping[str, str]) -> bool:
    return (
        problem.channels >= WINOGRAD_MIN_CHANNELS
        and problem.filters >= WINOGRAD_MIN_CHANNELS
        and switches.WINOGRAD.is_on()
    )


def _wide_for_transposed(problem: ConvProblem, chosen: Mapping[str, str]) -> bool:
    c = problem.channels_per_group
    return c >= TRANSPOSED_MIN_CHANNELS and 2 * c >= problem.filters


def _few_channels_numpy(problem: ConvProblem, chosen: Mapping[str, str]) -> bool:
    return problem.channels_per_group < FEW_CHANNELS and not compiled_for(problem.dtype)


FOLLOWS = "the kernel gradient reuses what the forward kept (im2col matrix, transformed input V)"

CONV_RULES: tuple[Rule, ...] = (
    # ----- forward
    Rule(
        "forward",
        "depthwise",
        "groups > 1 and one input channel per group",
        lambda p, c: p.groups > 1 and p.channels_per_group == 1,
        "per-group GEMMs with one input channel are call overhead; k*k broadcast multiply-adds were several "
        "times faster (commit 752c46b)",
    ),
    Rule(
        "forward",
        "winograd",
        f"C >= {WINOGRAD_MIN_CHANNELS} and F >= {WINOGRAD_MIN_CHANNELS}",
        _wide_for_winograd,
        WINOGRAD_MEASURED,
    ),
    Rule("forward", "grouped_gemm", "groups > 1", lambda p, c: p.groups > 1, "the only grouped path"),
    Rule("forward", "im2col", "otherwise", _always, "the default"),
    Rule("forward", "grouped_gemm", "otherwise (any groups)", _always, "computes every convolution"),
    # ----- kernel gradient: from what the forward kept
    Rule("kernel_grad", "winograd", "forward is winograd", _forward_is("winograd"), FOLLOWS),
    Rule("kernel_grad", "depthwise", "forward is depthwise", _forward_is("depthwise"), FOLLOWS),
    Rule("kernel_grad", "grouped_gemm", "forward is grouped_gemm", _forward_is("grouped_gemm"), FOLLOWS),
    Rule("kernel_grad", "im2col", "otherwise", _always, FOLLOWS),
    Rule("kernel_grad", "grouped_gemm", "otherwise (any groups)", _always, "computes every convolution"),
    # ----- input gradient
    Rule(
        "input_grad",
        "winograd",
        "forward is winograd",
        _forward_is("winograd"),
        "the exact adjoint reuses dM of the kernel gradient: (128, 14x14, 32->64) 23 -> 20 ms, "
        "(32, 56x56, 64->64) ~135 -> ~124 ms against the transposed path (AMD EPYC, commit 043ef98)",
    ),
    Rule("input_grad", "depthwise", "forward is depthwise", _forward_is("depthwise"), "the same broadcast form"),
    Rule("input_grad", "grouped_gemm", "groups > 1", lambda p, c: p.groups > 1, "the only grouped path"),
    Rule(
        "input_grad",
        "transposed",
        f"C >= {TRANSPOSED_MIN_CHANNELS} and 2C >= F",
        _wide_for_transposed,
        TRANSPOSED_MEASURED,
    ),
    Rule(
        "input_grad",
        "col2im_channels_first",
        f"C < {FEW_CHANNELS} and no compiled col2im",
        _few_channels_numpy,
        FEW_CHANNELS_MEASURED,
    ),
    Rule("input_grad", "col2im", "otherwise", _always, "the default"),
    Rule("input_grad", "grouped_gemm", "otherwise (any groups)", _always, "computes every convolution"),
)

CONV_REGISTRY = Registry("conv2d", CONV_ROLES, CONV_STRATEGIES, CONV_RULES)


def conv_algorithms() -> tuple[str, ...]:
    """The names of every convolution algorithm (``Conv2DPlan(..., algorithm=NAME)``).

    >>> conv_algorithms()[:4]
    ('im2col', 'grouped_gemm', 'depthwise', 'winograd')
    """
    return CONV_REGISTRY.names()
