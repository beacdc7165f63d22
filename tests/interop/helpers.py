"""Helpers for the interop tests: optional dependencies (required under CI), small models, random weights."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from tests.conftest import require


def need(module: str) -> ModuleType:
    """Import a test dependency of the ``interop`` extra; skip locally, fail under CI=true (tests.conftest.require)."""
    return require(module)


def randomize(model: Any, seed: int = 0) -> Any:
    """Give every weight (BatchNorm statistics included) random values, so no conversion passes by accident."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for store in (layer.params, layer.state):
            for name, value in store.items():
                if name == "moving_variance":
                    value[...] = rng.uniform(0.5, 2.0, value.shape)
                else:
                    value[...] = rng.normal(0.0, 0.5, value.shape)
    return model


def randomize_torch(module: Any, seed: int = 0) -> Any:
    """Random BatchNorm statistics and affine parameters in a torch module (eval mode)."""
    torch = need("torch")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator))
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.randn(m.num_features, generator=generator))
                    m.bias.copy_(torch.randn(m.num_features, generator=generator))
    return module.eval()


def max_diff(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
