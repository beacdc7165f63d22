"""precompile: every compiled kernel gets compiled by the tiny runs, for the argument types real runs use."""

from __future__ import annotations

import numpy as np
import pytest

from convlens.ops import (
    adam_jit,
    batch_norm_jit,
    depthwise_jit,
    depthwise_pixels_jit,
    depthwise_taps_jit,
    direct_filters_jit,
    direct_jit,
    fused_jit,
    fused_pool_jit,
    pooling_jit,
    tanh_float32,
    windows_jit,
    winograd4,
    winograd_jit,
)
from convlens.ops.precompile import STEPS, precompile
from tests.conftest import require


def test_every_kernel_compiles_for_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    require("numba")
    monkeypatch.setenv("CONVLENS_JIT", "1")
    steps = precompile(["float32"])
    assert [s.split(":")[0] for s in steps] == [
        "float32 direct convolution, register blocks",
        "float32 depthwise convolution",
        "float32 winograd transforms",
        "float32 winograd F(4x4) transforms",
        "float32 direct convolution",
        "float32 im2col + col2im",
        "float32 fused stage, direct kernels",
        "float32 average pooling",
        "float32 max pooling",
        "float32 batch norm",
        "float32 fused stage, GEMM path",
        "float32 im2col into a plain buffer",
        "float32 tanh",
        "float32 adam update",
        "float32 thread hand-off spin-waits",
    ]
    kernels = [*windows_jit.kernels(), *winograd_jit.kernels(), *pooling_jit._kernels(), *fused_jit._kernels()]
    kernels += [*batch_norm_jit._kernels(), *depthwise_jit._kernels()]
    kernels += [*fused_pool_jit.kernels(), *direct_jit._kernels(), *tanh_float32._kernels(), *winograd4.kernels()]
    kernels += [*direct_filters_jit.kernels(), *depthwise_taps_jit._kernels(), *depthwise_pixels_jit._kernels()]
    kernels += [*adam_jit._kernels()]
    from convlens.ops import _spin_kernels  # (imports Numba)

    assert _spin_kernels.spin_until_changed.signatures
    assert _spin_kernels.finish_and_spin.signatures
    for kernel in kernels:
        signatures = [str(s) for s in kernel.signatures]
        assert any("float32" in s for s in signatures), kernel
    # im2col into the bias-in-GEMM matrix (a strided view) and into a plain buffer
    layouts = {s[1].layout for s in windows_jit.kernels()[0].signatures if "float32" in str(s[0])}
    assert {"A", "C"} <= layouts


def test_nothing_to_compile_without_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_JIT", "0")
    assert precompile(["float32", "float64"]) == []
    monkeypatch.setenv("CONVLENS_JIT", "1")
    assert precompile([np.float16]) == []


@pytest.mark.slow
def test_compiling_in_two_processes_runs_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    require("numba")
    monkeypatch.setenv("CONVLENS_JIT", "1")
    steps = precompile(["float32"], processes=2)
    assert sorted(s.split(":")[0] for s in steps) == sorted(f"float32 {name}" for name, _ in STEPS)
