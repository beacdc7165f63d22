"""Which convolution algorithm runs: the selection table, with the measurement behind every threshold.

Per role (forward, then kernel_grad, then input_grad) the first row whose condition holds and whose
algorithm applies (:mod:`convlens.ops.conv_algorithms`) wins; the last row of each role always
holds. Thresholds were tuned on 2-core machines (the development machine's AMD EPYC; the Intel Xeon
re-measurements say so); re-measure before changing them (``benchmarks/conv_ops.py``,
``benchmarks/conv_thresholds.py``).

>>> [rule.algorithm for rule in CONV_RULES if rule.role == "forward"][:5]
['depthwise_compiled', 'depthwise', 'winograd4_blocked', 'winograd_blocked', 'winograd']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from convlens import switches
from convlens.ops.conv_algorithms import CONV_STRATEGIES, ConvProblem
from convlens.ops.conv_blocked import BLOCKED_STRATEGIES
from convlens.ops.conv_compiled import COMPILED_STRATEGIES
from convlens.ops.conv_input_grads import INPUT_GRAD_STRATEGIES
from convlens.ops.direct_filters_jit import BLOCKS, block_filters
from convlens.ops.jit import compiled_for
from convlens.ops.strategy import Registry, Rule

__all__ = [
    "CHANNELS_FIRST_IM2COL_MAX",
    "COL2IM_BLOCKED_MEASURED",
    "CONV_REGISTRY",
    "CONV_ROLES",
    "CONV_RULES",
    "DIRECT_FILTERS_GRAD_MAX_WASTE",
    "DIRECT_FILTERS_MAX_CHANNELS",
    "DIRECT_FILTERS_MEASURED",
    "DIRECT_MAX_FILTERS",
    "FEW_CHANNELS",
    "TRANSPOSED_MIN_CHANNELS",
    "WINOGRAD4_MAX_MULTIPLIES",
    "WINOGRAD4_MIN_CHANNELS",
    "WINOGRAD_MIN_CHANNELS",
    "conv_algorithms",
]

CONV_ROLES = ("forward", "kernel_grad", "input_grad")

#: Winograd pays its transforms (memory-bound passes over 4x the input) only when the channel reduction
#: is wide: both C and F at least this.
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MEASURED = (
    "fwd+bwd, Intel Xeon, 2 threads, benchmarks/conv_thresholds.py (N=64), Winograd vs im2col, ms: (14x14, 8->16) "
    "2.7 vs 2.1; (14x14, 16->32) 5.0 vs 5.1; (14x14, 32->64) 10.6 vs 13.3; (32x32, 32->32) 33.8 vs 46.0; "
    "(16x16, 64->64) 19.3 vs 30.2 (AMD EPYC, README tables: (128, 14x14, 32->64) 31.9 -> 28.9 ms, "
    "(32, 56x56, 64->64) 193.1 -> 138.4 ms)"
)
WINOGRAD_BLOCKED_MEASURED = (
    "fwd+bwd, Intel Xeon, benchmarks/conv_thresholds.py (N=128), blocked vs whole-batch Winograd, ms, one thread "
    "(CONVLENS_NUM_THREADS=1) / two threads (each takes half the blocks): (14x14, 16->32) 8.0 vs 11.0 / 7.5 vs 9.7; "
    "(14x14, 32->64) 20.6 vs 27.3 / 16.7 vs 20.4; (32x32, 32->32) 83.9 vs 100.5 / 55.6 vs 72.5; (16x16, 64->64) "
    "63.2 vs 62.6 / 39.7 vs 39.6"
)
#: Winograd F(4x4, 3x3) (forward only) pays where the GEMMs dominate: C and F at least this ...
WINOGRAD4_MIN_CHANNELS = 32
#: ... and its 4x4 tiles cover the output with at most this share of F(2x2)'s multiplies (36 per 4x4 tile against
#: 16 per 2x2 tile: 0.56 when 4 divides the output size, 0.73 for 14x14, whose 4x4 tiles cover 16x16).
WINOGRAD4_MAX_MULTIPLIES = 0.6
WINOGRAD4_MEASURED = (
    "forward, F(4x4) / F(2x2) (winograd_blocked), AMD EPYC, interleaved medians, 1 thread / 2 threads: (128, "
    "32x32, 32->32) 0.73 / 0.91; (128, 16x16, 32->64) 0.64 / 0.78; (128, 16x16, 64->64) 0.70 / 0.72; (128, "
    "13x13, 32->64 valid) 0.78 / 0.83; (32, 56x56, 64->64) 0.69 / 0.70; (128, 28x28, 32->32) 0.92 / 1.00; "
    "(128, 7x7, 64->64) 0.80; (64, 8x8, 128->128) 0.74; but (128, 14x14, 32->64) 0.97 / 0.92 (0.73 of the "
    "multiplies), (128, 14x14, 16->16) 1.13, (128, 14x14, 16->32) 1.21"
)
#: The transposed input gradient (im2col over grad_out, K = KH*KW*F) beats NumPy's col2im (adds growing with C)
#: when C is at least this and the im2col is not much wider than the col2im: 2C >= F. The compiled col2im
#: beats it at every width measured, so the row holds only without compiled kernels.
TRANSPOSED_MIN_CHANNELS = 16
TRANSPOSED_MEASURED = (
    "input gradient, 5x5, (64, 14x14), Intel Xeon, benchmarks/conv_thresholds.py, 2 threads / 1 thread, ms: "
    "transposed vs compiled col2im 16->16 3.9 vs 1.9 / 6.3 vs 4.3; 24->24 5.4 vs 3.2 / 9.3 vs 6.0; 32->32 8.2 vs "
    "8.5 / 16.6 vs 14.8; 32->64 16.0 vs 11.3 / 32.6 vs 19.3 (the AMD EPYC commit 92e0ee2 recorded no numbers)"
)
#: NumPy's col2im adds runs of C floats; below this many channels per group the channel-first layout
#: (whole output rows per add) is faster, unless the compiled col2im runs.
FEW_CHANNELS = 12
FEW_CHANNELS_MEASURED = (
    "NumPy only, input gradient (64, 28x28, C->32) 3x3, Intel Xeon, 2 threads / 1 thread, ms, channels-first vs "
    "plain: C=3 2.5 vs 4.1 / 3.6 vs 4.7; C=8 5.2 vs 6.5 / 7.3 vs 11.8; C=12 7.9 vs 7.4 / 10.0 vs 14.0; C=16 10.0 "
    "vs 8.3 / 13.6 vs 16.5 (the AMD EPYC commits b49be42/21e83c4 had 8); with the compiled col2im the plain "
    "layout wins: (64, 32x32, 3->64) 13.8 -> 11.7 ms (commit ad4b7d5)"
)
#: With at most this many filters (and few channels) the direct kernel beats the transposed im2col's thin GEMM.
DIRECT_MAX_FILTERS = 8
DIRECT_MEASURED = (
    "forward, Intel Xeon, N=128, 2 threads / 1 thread, ms, direct_compiled vs im2col_channels_first: (28x28, "
    "1->6) 5x5 'same' 0.86 vs 1.98 / 1.47 vs 2.11 (LeNet-5's first layer); but (28x28, 1->32) 3x3 1.62 vs 1.09 "
    "/ 2.79 vs 1.49 and (32x32, 3->32) 3x3 5.72 vs 2.93 / 7.74 vs 4.64 (one pass over the output per filter "
    "and tap group: wide outputs favour the GEMM); copying planes channel-outer took (28x28, 1->6) 5x5 from "
    "1.06 to 0.81 ms (1 thread) and (32x32, 3->8) 3x3 from 2.02 to 1.75"
)
DIRECT_KERNEL_GRAD_MEASURED = (
    "kernel gradient after the direct forward, Intel Xeon, N=128, 1 thread / 2 threads, ms, direct_compiled vs "
    "im2col_channels_first (which builds its matrix here: the direct forward keeps none): (28x28, 1->6) 5x5 'same' "
    "0.68 vs 1.17 / 0.46 vs 1.57 (LeNet-5's first layer); (32x32, 3->8) 3x3 1.43 vs 2.29 / 0.86 vs 1.90; "
    "(28x28, 1->8) 3x3 0.60 vs 0.61 / 0.43 vs 0.59; (28x28, 4->8) 5x5 2.56 vs 5.95 / 1.40 vs 4.09"
)
#: The register-blocked direct forward (32 filters at a time) up to this many input channels.
DIRECT_FILTERS_MAX_CHANNELS = 8
DIRECT_FILTERS_MEASURED = (
    "forward, N=128, 1 thread / 2 threads, ms, direct_filters vs im2col_channels_first vs im2col_blocked (AMD EPYC, "
    "benchmarks/conv_thresholds.py --only '3x3 s'): (32x32, 3->32) 3x3 stride 2 valid 1.12 vs 3.20 vs 1.59 / 1.03 vs "
    "3.16 vs 1.14; (32x32, 3->32) 'same' 4.32 vs 9.36 vs 8.35 / 2.46 vs 8.81 vs 9.40; (28x28, 1->32) 'valid' 1.52 vs "
    "2.55 vs 4.82 / 1.39 vs 2.33 vs 3.42; (32x32, 3->64) 'same' 11.94 vs 20.14 vs 15.45 / 8.43 vs 14.69 vs 20.86; "
    "(16x16, 8->32) 'same' 2.71 vs 7.31 vs 3.53 / 1.36 vs 3.80 vs 2.51; N=32, 1 thread: (32x32, 3->32) stride 2 "
    "0.45 vs 0.66 vs 0.62"
)
#: The register-blocked kernel gradient after the ``direct_filters`` forward, unless rounding the window row (KW * C
#: floats) up to whole runs of the block's taps adds more than this share of its work.
DIRECT_FILTERS_GRAD_MAX_WASTE = 0.25
DIRECT_FILTERS_GRAD_MEASURED = (
    "forward + kernel gradient after the direct_filters forward, its own kernel gradient vs the best of "
    "im2col_blocked and im2col_channels_first (C <= 4), N=128, AMD EPYC, interleaved medians, 2 threads / 1 thread, "
    "ms: (14x14, 6->16) 5x5 'valid' (LeNet-5's second layer) 0.76 vs 1.03 / 1.41 vs 1.79; (16x16, 8->16) 3x3 0.96 vs "
    "1.33 / 1.83 vs 2.35; (28x28, 1->32) 3x3 1.03 vs 1.23 / 1.98 vs 2.05; (32x32, 3->32) 3x3 stride 2 0.78 vs 1.07 "
    "/ 1.49 vs 1.67; (16x16, 8->32) 3x3 1.79 vs 2.12 / 3.39 vs 3.79; N=64 (32x32, 3->64) 3x3 2.95 vs 3.61 / 5.93 "
    "vs 6.14; but (28x28, 1->16) 3x3, whose 3-float window rows run as 6 taps, 0.88 vs 0.94 / 1.63 vs 1.42"
)
POINTWISE_COMPILED_MEASURED = (
    "forward, pointwise (OpenBLAS GEMM + bias pass) vs pointwise_compiled, AMD EPYC, interleaved medians, 2 threads / "
    "1 thread, ms: (128, 13x13, 32->64) 0.70 vs 0.44 / 1.30 vs 0.84; (128, 6x6, 64->128) 0.47 vs 0.36 / 0.88 vs "
    "0.68; (128, 16x16, 16->32) 0.39 vs 0.18 / 0.72 vs 0.31; (1000, 13x13, 32->64) 6.5 vs 3.6 / 12.3 vs 6.6; "
    "(128, 15x15, 32->16) 0.33 vs 0.15 / 0.57 vs 0.26"
)
TRANSPOSED_DIRECT_MEASURED = (
    "input gradient after the direct forward, transposed_direct vs col2im_blocked, N=128, AMD EPYC, interleaved "
    "medians, 2 threads / 1 thread, ms: (28x28, 1->6) 5x5 'same' (LeNet-5's first layer) 0.75 vs 3.26 / 1.35 vs "
    "5.22; 'valid' 0.63 vs 2.34 / 1.19 vs 4.00; (32x32, 3->8) 3x3 'same' 1.12 vs 2.89 / 2.33 vs 5.18; (28x28, "
    "1->8) 3x3 0.55 vs 1.28 / 1.07 vs 2.11; (28x28, 4->8) 5x5 2.38 vs 5.26 / 4.84 vs 9.93; (14x14, 4->8) 3x3 "
    "'valid' 0.35 vs 0.66 / 0.58 vs 0.79; (28x28, 2->3) 7x7 1.00 vs 6.78 / 2.09 vs 13.28"
)
COL2IM_BLOCKED_MEASURED = (
    "input gradient, col2im -> col2im_blocked, AMD EPYC, interleaved medians (other allocations between calls, as in "
    "a training step), 1 thread / 2 threads, ms: (128, 14x14, 6->16) 5x5 'valid' (LeNet-5's second layer) 6.12 -> "
    "3.04 / 3.04 -> 2.48; (32, 28x28, 64->128) 3x3 stride 2 16.18 -> 14.22 / 10.80 -> 9.09; (64, 14x14, 8->32) 5x5 "
    "7.53 -> 4.94 / 7.02 -> 5.16; (128, 28x28, 8->16) 3x3 18.01 -> 9.06 / 14.03 -> 8.55; (128, 16x16, 32->64) 3x3 "
    "stride 2 8.04 -> 5.73 / 5.99 -> 4.86"
)
#: Where blocks of im2col rows beat the whole-batch matrix.
IM2COL_BLOCKED_MEASURED = (
    "fwd+bwd, whole-batch im2col -> blocks (interleaved medians, AMD EPYC, 2 threads): LeNet-5 6->16 5x5 N=128 "
    "8.9 -> 7.8 ms, inference N=1000 24.6 -> 15.8 ms (1 thread: 26.6 -> 15.4); (32, 28x28, 64->128, 3x3 s2) "
    "24.3 -> 23.8; (64, 14x14, 32->64, 5x5) 41.3 -> 40.3; slower with 3 channels (5.5 -> 6.3 ms: the "
    "channels-first im2col takes those)"
)
#: The transposed im2col matrix (tap-major, channel-first) beats im2col's short rows up to this many channels.
CHANNELS_FIRST_IM2COL_MAX = 4
CHANNELS_FIRST_IM2COL_MEASURED = (
    "forward + kernel gradient, Intel Xeon, benchmarks/conv_thresholds.py (N=64), 2 threads / 1 thread, ms, "
    "channels-first vs im2col: (28x28, 1->6) 5x5 1.1 vs 4.0 / 1.0 vs 4.0; (28x28, 1->32) 3x3 1.2 vs 1.5 / 1.2 vs "
    "1.5; (32x32, 3->32) 3x3 2.8 vs 3.1 / 2.9 vs 4.2; (N=128, 16x16, 4->32) 3x3, 1 thread: 2.8 vs 3.6; but "
    "(14x14, 6->16) 5x5 1.7 vs 1.3 / 1.5 vs 1.5 and (16x16, 8->32) 1.9 vs 1.8 / 1.7 vs 1.9"
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


def winograd4_multiplies(problem: ConvProblem) -> float:
    """F(4x4)'s multiplies over F(2x2)'s for the problem's output: 36 per 4x4 tile against 16 per 2x2 tile.

    >>> import numpy as np
    >>> from convlens.geometry import WindowGeometry
    >>> def share(size): return winograd4_multiplies(ConvProblem(
    ...     (1, size, size, 32), (3, 3, 32, 32), WindowGeometry.resolve((size, size), 3, 1, "same"), 1, np.dtype("f4")))
    >>> round(share(32), 4), round(share(14), 4)
    (0.5625, 0.7347)
    """
    oh, ow = problem.geometry.output_size
    return 36 * -(-oh // 4) * -(-ow // 4) / (16 * -(-oh // 2) * -(-ow // 2))


def _wide_for_winograd4(problem: ConvProblem, chosen: Mapping[str, str]) -> bool:
    return (
        problem.channels >= WINOGRAD4_MIN_CHANNELS
        and problem.filters >= WINOGRAD4_MIN_CHANNELS
        and winograd4_multiplies(problem) <= WINOGRAD4_MAX_MULTIPLIES
        and switches.WINOGRAD.is_on()
    )


def _wide_for_transposed(problem: ConvProblem, chosen: Mapping[str, str]) -> bool:
    c = problem.channels_per_group
    return c >= TRANSPOSED_MIN_CHANNELS and 2 * c >= problem.filters and not compiled_for(problem.dtype)


def direct_filters_waste(problem: ConvProblem) -> float:
    """The share of ``direct_filters``' kernel-gradient work spent on the taps past a window row (its KW * C floats
    rounded up to whole runs of the block's taps; 1.0 when no block fits the filters).

    >>> import numpy as np
    >>> from convlens.geometry import WindowGeometry
    >>> def waste(kernel): return direct_filters_waste(ConvProblem(
    ...     (1, 9, 9, kernel[2]), kernel, WindowGeometry.resolve((9, 9), kernel[:2], 1, "valid"), 1, np.dtype("f4")))
    >>> waste((5, 5, 6, 16)), waste((3, 3, 1, 32)), waste((3, 3, 1, 16)), waste((3, 3, 1, 8))
    (0.0, 0.0, 0.5, 1.0)
    """
    block = block_filters(problem.filters)
    if block is None:
        return 1.0
    span, taps = problem.kernel_shape[1] * problem.channels, BLOCKS[block]
    return 1 - span / (-(-span // taps) * taps)


def _few_channels_numpy(problem: ConvProblem, chosen: Mapping[str, str]) -> bool:
    return problem.channels_per_group < FEW_CHANNELS and not compiled_for(problem.dtype)


FOLLOWS = "the kernel gradient reuses what the forward kept (the im2col matrix, Winograd's V)"

CONV_RULES: tuple[Rule, ...] = (
    # ----- forward
    Rule(
        "forward",
        "depthwise_compiled",
        "groups > 1 and one input channel per group, compiled",
        lambda p, c: p.groups > 1 and p.channels_per_group == 1,
        "the compiled kernels make one pass per role: (128, 15x15, 32) 3x3 fwd+bwd 19 -> 1.1 ms (Intel Xeon)",
    ),
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
        "winograd4_blocked",
        f"C >= {WINOGRAD4_MIN_CHANNELS}, F >= {WINOGRAD4_MIN_CHANNELS}, 4x4 tiles <= {WINOGRAD4_MAX_MULTIPLIES} of "
        "F(2x2)'s multiplies",
        _wide_for_winograd4,
        WINOGRAD4_MEASURED,
    ),
    Rule(
        "forward",
        "winograd_blocked",
        f"C >= {WINOGRAD_MIN_CHANNELS} and F >= {WINOGRAD_MIN_CHANNELS}",
        _wide_for_winograd,
        WINOGRAD_BLOCKED_MEASURED,
    ),
    Rule(
        "forward",
        "winograd",
        f"C >= {WINOGRAD_MIN_CHANNELS} and F >= {WINOGRAD_MIN_CHANNELS}",
        _wide_for_winograd,
        WINOGRAD_MEASURED,
    ),
    Rule("forward", "grouped_gemm", "groups > 1", lambda p, c: p.groups > 1, "the only grouped path"),
    Rule(
        "forward",
        "pointwise_compiled",
        "1x1, stride 1, unpadded, float32",
        lambda p, c: p.dtype == np.float32,
        POINTWISE_COMPILED_MEASURED,
    ),
    Rule("forward", "pointwise", "1x1, stride 1, unpadded", _always, "no im2col copy (see the algorithm)"),
    Rule(
        "forward",
        "direct_compiled",
        f"C <= {CHANNELS_FIRST_IM2COL_MAX} and F <= {DIRECT_MAX_FILTERS}, stride 1",
        lambda p, c: p.channels_per_group <= CHANNELS_FIRST_IM2COL_MAX and p.filters <= DIRECT_MAX_FILTERS,
        DIRECT_MEASURED,
    ),
    Rule(
        "forward",
        "direct_filters",
        f"C <= {DIRECT_FILTERS_MAX_CHANNELS}, float32",
        lambda p, c: p.channels_per_group <= DIRECT_FILTERS_MAX_CHANNELS and p.dtype == np.float32,
        DIRECT_FILTERS_MEASURED,
    ),
    Rule(
        "forward",
        "im2col_channels_first",
        f"C <= {CHANNELS_FIRST_IM2COL_MAX}",
        lambda p, c: p.channels_per_group <= CHANNELS_FIRST_IM2COL_MAX,
        CHANNELS_FIRST_IM2COL_MEASURED,
    ),
    Rule(
        "forward",
        "im2col_blocked",
        "compiled, dilation 1 along the width",
        lambda p, c: compiled_for(p.dtype) and p.geometry.dilation_rate[1] == 1,
        IM2COL_BLOCKED_MEASURED,
    ),
    Rule("forward", "im2col", "otherwise", _always, "the default: one GEMM at OpenBLAS's rate"),
    Rule("forward", "grouped_gemm", "otherwise (any groups)", _always, "computes every convolution"),
    # ----- kernel gradient: from what the forward kept
    Rule("kernel_grad", "winograd", "forward is winograd", _forward_is("winograd"), FOLLOWS),
    Rule("kernel_grad", "winograd_blocked", "forward is winograd_blocked", _forward_is("winograd_blocked"), FOLLOWS),
    Rule(
        "kernel_grad",
        "winograd_blocked",
        "forward is winograd4_blocked",
        _forward_is("winograd4_blocked"),
        "F(4x4) is a forward only; F(2x2) recomputes its transformed input per block, so needs nothing kept",
    ),
    Rule("kernel_grad", "depthwise", "forward is depthwise", _forward_is("depthwise"), FOLLOWS),
    Rule(
        "kernel_grad", "depthwise_compiled", "forward is depthwise_compiled", _forward_is("depthwise_compiled"), FOLLOWS
    ),
    Rule("kernel_grad", "grouped_gemm", "forward is grouped_gemm", _forward_is("grouped_gemm"), FOLLOWS),
    Rule("kernel_grad", "pointwise", "forward is pointwise", _forward_is("pointwise"), "the same GEMM layout"),
    Rule(
        "kernel_grad",
        "pointwise_compiled",
        "forward is pointwise_compiled",
        _forward_is("pointwise_compiled"),
        "pointwise's gradients",
    ),
    Rule(
        "kernel_grad",
        "im2col_channels_first",
        "forward is im2col_channels_first",
        _forward_is("im2col_channels_first"),
        FOLLOWS,
    ),
    Rule(
        "kernel_grad",
        "direct_compiled",
        "forward is direct_compiled",
        _forward_is("direct_compiled"),
        DIRECT_KERNEL_GRAD_MEASURED,
    ),
    Rule(
        "kernel_grad",
        "direct_filters",
        f"forward is direct_filters, whole runs of taps add <= {DIRECT_FILTERS_GRAD_MAX_WASTE} to KW * C",
        lambda p, c: c.get("forward") == "direct_filters" and direct_filters_waste(p) <= DIRECT_FILTERS_GRAD_MAX_WASTE,
        DIRECT_FILTERS_GRAD_MEASURED,
    ),
    Rule(
        "kernel_grad",
        "im2col_channels_first",
        f"forward is direct_filters, C <= {CHANNELS_FIRST_IM2COL_MAX}",
        lambda p, c: c.get("forward") == "direct_filters" and p.channels_per_group <= CHANNELS_FIRST_IM2COL_MAX,
        "direct_filters is a forward only: the matrix the forward would have built is built here instead "
        f"(the transposed layout up to {CHANNELS_FIRST_IM2COL_MAX} channels)",
    ),
    Rule(
        "kernel_grad",
        "im2col_blocked",
        "forward is direct_filters",
        _forward_is("direct_filters"),
        "direct_filters is a forward only; the blocked im2col rebuilds its blocks in the backward pass anyway",
    ),
    Rule("kernel_grad", "im2col_blocked", "forward is im2col_blocked", _forward_is("im2col_blocked"), FOLLOWS),
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
    Rule(
        "input_grad",
        "winograd_blocked",
        "forward is winograd_blocked or winograd4_blocked",
        lambda p, c: c.get("forward") in ("winograd_blocked", "winograd4_blocked"),
        "from the kernel gradient's pass over the blocks",
    ),
    Rule("input_grad", "depthwise", "forward is depthwise", _forward_is("depthwise"), "the same broadcast form"),
    Rule(
        "input_grad",
        "depthwise_compiled",
        "forward is depthwise_compiled",
        _forward_is("depthwise_compiled"),
        "the same kernels",
    ),
    Rule("input_grad", "grouped_gemm", "groups > 1", lambda p, c: p.groups > 1, "the only grouped path"),
    Rule("input_grad", "pointwise", "forward is pointwise", _forward_is("pointwise"), "one GEMM, no col2im"),
    Rule(
        "input_grad",
        "pointwise_compiled",
        "forward is pointwise_compiled",
        _forward_is("pointwise_compiled"),
        "pointwise's gradients (from the kernel gradient's pass)",
    ),
    Rule(
        "input_grad",
        "transposed_direct",
        "forward is direct_compiled",
        _forward_is("direct_compiled"),
        TRANSPOSED_DIRECT_MEASURED,
    ),
    Rule(
        "input_grad",
        "transposed",
        f"C >= {TRANSPOSED_MIN_CHANNELS} and 2C >= F and no compiled col2im",
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
    Rule(
        "input_grad",
        "col2im_blocked",
        "compiled col2im",
        lambda p, c: compiled_for(p.dtype),
        COL2IM_BLOCKED_MEASURED,
    ),
    Rule("input_grad", "col2im", "otherwise", _always, "the default without compiled kernels"),
    Rule("input_grad", "grouped_gemm", "otherwise (any groups)", _always, "computes every convolution"),
)

CONV_REGISTRY = Registry(
    "conv2d",
    CONV_ROLES,
    (*CONV_STRATEGIES, *BLOCKED_STRATEGIES, *INPUT_GRAD_STRATEGIES, *COMPILED_STRATEGIES),
    CONV_RULES,
)


def conv_algorithms() -> tuple[str, ...]:
    """The names of every convolution algorithm (``Conv2DPlan(..., algorithm=NAME)``).

    >>> conv_algorithms()[:4]
    ('im2col', 'im2col_channels_first', 'pointwise', 'grouped_gemm')
    >>> conv_algorithms()[-3:]
    ('winograd4_blocked', 'direct_filters', 'transposed_direct')
    """
    return CONV_REGISTRY.names()
