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
    "AMD EPYC, float32, fwd+bwd (README tables): (128, 14x14, 32->64) 31.9 ms im2col (commit 0bbe911), 28.9 ms "
    "Winograd (7b2e46a); (32, 56x56, 64->64) 193.1 -> 138.4 ms. The floor of 16 channels has no recorded "
    "measurement: re-measure with benchmarks/conv_thresholds.py"
)
#: The transposed input gradient (im2col over grad_out, K = KH*KW*F) beats col2im (adds growing with C)
#: when C is at least this and the im2col is not much wider than the col2im: 2C >= F.
TRANSPOSED_MIN_CHANNELS = 16
TRANSPOSED_MEASURED = "commit 92e0ee2 (AMD EPYC) recorded no numbers: re-measure with benchmarks/conv_thresholds.py"
#: NumPy's col2im adds runs of C floats; below this many channels per group the channel-first layout
#: (whole output rows per add) is faster, unless the compiled col2im runs.
FEW_CHANNELS = 8
FEW_CHANNELS_MEASURED = (
    "commits b49be42/21e83c4 (AMD EPYC): NumPy's strided adds of 2-7 float runs crawl (no numbers recorded); "
    "with the compiled col2im the plain layout wins: (64, 32x32, 3->64) 13.8 -> 11.7 ms (commit ad4b7d5)"
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


FOLLOWS = "the kernel gradient reuses what the forward kept (the im2col matrix, Winograd's V)"

CONV_RULES: tuple[Rule, ...] = (
    # ----- forward
    Rule(
        "forward",
        "depthwise",
        "groups > 1 and one input channel per group",
        lambda p, c: p.groups > 1 and p.channels_per_group == 1,
        "per-group GEMMs with one input channel are call overhead: (64, 28x28, 32) 3x3 fwd+bwd 67 ms vs "
        "289 ms grouped_gemm (Intel Xeon, loaded machine, benchmarks/conv_thresholds.py)",
    ),
    Rule(
        "forward",
        "winograd",
        f"C >= {WINOGRAD_MIN_CHANNELS} and F >= {WINOGRAD_MIN_CHANNELS}",
        _wide_for_winograd,
        WINOGRAD_MEASURED,
    ),
    Rule("forward", "grouped_gemm", "groups > 1", lambda p, c: p.groups > 1, "the only grouped path"),
    Rule("forward", "im2col", "otherwise", _always, "the default: one GEMM at OpenBLAS's rate"),
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
        "(32, 56x56, 64->64) ~135 -> ~124 ms against a Winograd convolution of the padded grad_out with the flipped "
        "kernel (AMD EPYC, commit 043ef98)",
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
    Rule("input_grad", "col2im", "otherwise", _always, "the default (compiled col2im with Numba)"),
    Rule("input_grad", "grouped_gemm", "otherwise (any groups)", _always, "computes every convolution"),
)

CONV_REGISTRY = Registry("conv2d", CONV_ROLES, CONV_STRATEGIES, CONV_RULES)


def conv_algorithms() -> tuple[str, ...]:
    """The names of every convolution algorithm (``Conv2DPlan(..., algorithm=NAME)``).

    >>> conv_algorithms()[:4]
    ('im2col', 'grouped_gemm', 'depthwise', 'winograd')
    """
    return CONV_REGISTRY.names()
