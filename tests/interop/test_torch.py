"""PyTorch modules and state dicts in and out, checked against torch 2.13's own outputs."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConfigError, DataError, ShapeError
from tests.interop.helpers import max_diff, need, randomize, randomize_torch

torch = need("torch")
need("safetensors")
ct = cl.interop.torch
L = cl.layers
nn = torch.nn


def torch_out(module: Any, x_channels_last: np.ndarray) -> np.ndarray:
    axes = (0, x_channels_last.ndim - 1, *range(1, x_channels_last.ndim - 1))
    with torch.no_grad():
        y = module(torch.from_numpy(np.ascontiguousarray(x_channels_last.transpose(axes)))).numpy()
    return np.asarray(y.transpose(0, *range(2, y.ndim), 1)) if y.ndim > 2 else y


def every_module() -> Any:
    """Every supported module kind; Flatten of 4 channels on a 5x2 map."""
    torch.manual_seed(0)
    return randomize_torch(
        nn.Sequential(
            nn.Conv2d(3, 6, 3, stride=2, padding=1),
            nn.BatchNorm2d(6),
            nn.LeakyReLU(0.1),
            nn.Sequential(nn.Conv2d(6, 6, 3, groups=6, padding="same"), nn.ReLU()),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.ZeroPad2d((1, 0, 0, 1)),
            nn.AvgPool2d(2, stride=1),
            nn.Conv2d(6, 4, (1, 3), groups=2),
            nn.Sigmoid(),
            nn.Flatten(),
            nn.Linear(16, 8),
            nn.BatchNorm1d(8),
            nn.Tanh(),
            nn.Dropout(0.3),
            nn.Linear(8, 5),
            nn.Softmax(dim=1),
        )
    )


def test_from_module_every_kind_matches_torch() -> None:
    module = every_module()
    model = ct.from_module(module, (13, 11, 3))
    x = np.random.default_rng(0).normal(size=(4, 13, 11, 3)).astype(np.float32)
    assert max_diff(model.predict(x, verbose=0), torch_out(module, x)) < 1e-5
    torch_params = sum(p.numel() for p in module.parameters()) + sum(
        b.numel() for n, b in module.named_buffers() if not n.endswith("num_batches_tracked")
    )
    assert model.count_params() == torch_params
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Dropout") == 1
    assert "DepthwiseConv2D" in kinds


def test_conv1d_and_adaptive_pooling() -> None:
    torch.manual_seed(1)
    module = randomize_torch(
        nn.Sequential(
            nn.Conv1d(2, 4, 3, padding=1),
            nn.ELU(),
            nn.MaxPool1d(2),
            nn.AvgPool1d(2),
            nn.AdaptiveMaxPool1d(1),
            nn.Flatten(),
            nn.Linear(4, 2),
        )
    )
    model = ct.from_module(module, (12, 2))
    x = np.random.default_rng(1).normal(size=(3, 12, 2)).astype(np.float32)
    assert max_diff(model.predict(x, verbose=0), torch_out(module, x)) < 1e-5


@pytest.mark.parametrize("size", [(7, 9), (8, 6)], ids=["odd", "even"])
def test_to_module_same_padding_and_flatten_order(size: tuple[int, int]) -> None:
    """'same' at stride 2 (asymmetric pads), pooling 'same', Flatten of 3 channels on a non-square map."""
    model = randomize(
        cl.Sequential(
            [
                L.Conv2D(4, 3, strides=2, padding="same", activation="relu", input_shape=(*size, 2)),
                L.BatchNormalization(),
                L.DepthwiseConv2D(3, padding="same", depth_multiplier=2),
                L.MaxPooling2D(2, strides=1, padding="same"),
                L.AveragePooling2D(2, strides=1, padding="same"),  # pads (0, 1): convlens's AvgPoolSame module
                L.AveragePooling2D(3, strides=2, padding="same"),
                L.Conv2D(3, 1, activation="tanh"),
                L.Flatten(),
                L.Dense(6, activation="gelu"),
                L.BatchNormalization(),
                L.Dense(3, activation="softmax"),
            ]
        )
    )
    module = ct.to_module(model)
    x = np.random.default_rng(2).normal(size=(4, *size, 2)).astype(np.float32)
    assert max_diff(torch_out(module, x), model.predict(x, verbose=0)) < 1e-5
    # back again: the same numbers
    again = ct.from_module(module, (*size, 2))
    assert max_diff(again.predict(x, verbose=0), model.predict(x, verbose=0)) < 1e-5


def test_flatten_order_is_not_silently_wrong() -> None:
    """A plain weight copy (no permutation) would differ: the check above can fail."""
    model = randomize(cl.Sequential([L.Conv2D(2, 1, input_shape=(3, 2, 1)), L.Flatten(), L.Dense(1)]))
    module = ct.to_module(model)
    naive = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(12, 1)).eval()
    with torch.no_grad():
        naive[0].weight.copy_(module[0].weight)
        naive[0].bias.copy_(module[0].bias)
        naive[2].weight.copy_(torch.from_numpy(model.layers[2].params["kernel"].T.copy()))
        naive[2].bias.copy_(module[2].bias)
    x = np.random.default_rng(3).normal(size=(2, 3, 2, 1)).astype(np.float32)
    assert max_diff(torch_out(module, x), model.predict(x, verbose=0)) < 1e-6
    assert max_diff(torch_out(naive, x), model.predict(x, verbose=0)) > 1e-3


def test_state_dicts_pt_safetensors_and_your_own_names(tmp_path: Path) -> None:
    module = every_module()
    model = ct.from_module(module, (13, 11, 3))
    x = np.random.default_rng(4).normal(size=(2, 13, 11, 3)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    rebuilt = ct.to_module(model)
    rebuilt.load_state_dict(ct.to_state_dict(model))  # strict: every name and shape as torch expects
    for name in ("w.safetensors", "w.pt"):
        model.save_weights(tmp_path / name)
        fresh = randomize(ct.from_module(module, (13, 11, 3)), seed=9)
        assert max_diff(fresh.predict(x, verbose=0), expected) > 1e-3
        cl.load_model(tmp_path / name, architecture=fresh)
        assert max_diff(fresh.predict(x, verbose=0), expected) == 0.0
    fresh = randomize(ct.from_module(module, (13, 11, 3)), seed=9)
    ct.load_state_dict(fresh, module.state_dict())  # torch's own names ('3.0.weight', ...)
    assert max_diff(fresh.predict(x, verbose=0), torch_out(module, x)) < 1e-5


def test_pickled_full_model_is_refused(tmp_path: Path) -> None:
    torch.save(nn.Sequential(nn.Linear(3, 2)), tmp_path / "full.pt")
    model = cl.Sequential([L.Dense(2, input_shape=(3,))])
    with pytest.raises(DataError, match=r"holds pickled Python objects .* could run arbitrary code.*state_dict\(\)"):
        cl.load_model(tmp_path / "full.pt", architecture=model)
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"weight": print}))
    with pytest.raises(DataError, match=r"(pickled Python objects|not a readable torch file)"):
        ct.load_state_dict(model, tmp_path / "evil.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(DataError, match=r"'.*bad.safetensors' is not a valid safetensors file"):
        ct.load_state_dict(model, tmp_path / "bad.safetensors")


def test_state_dict_mismatch_names_the_module() -> None:
    model = cl.Sequential([L.Dense(2, input_shape=(3,)), L.Dense(4)])
    with pytest.raises(ShapeError, match=r"module '0' has \{'weight': \(5, 3\)"):
        ct.load_state_dict(
            model,
            {"0.weight": np.zeros((5, 3)), "0.bias": np.zeros(2), "1.weight": np.zeros((4, 2)), "1.bias": np.zeros(4)},
        )
    with pytest.raises(ShapeError, match=r"the state dict has 1 modules with weights \(0\), Sequential .* needs 2"):
        ct.load_state_dict(model, {"0.weight": np.zeros((2, 3)), "0.bias": np.zeros(2)})


def test_unsupported_module_and_wrong_input_shape() -> None:
    with pytest.raises(
        ConfigError,
        match=r"module '1' \(Hardswish\) is not supported; convlens converts nn.Sequential chains of AdaptiveAvgPool1d",
    ):
        ct.from_module(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Hardswish()), (8, 8, 1))
    with pytest.raises(ShapeError, match=r"takes 1 channels but input_shape \(1, 28, 28\) has 28.*e.g. \(28, 28, 1\)"):
        ct.from_module(nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 28, 28))
    with pytest.raises(ConfigError, match=r"padding_mode='reflect'; convlens pads with zeros only"):
        ct.from_module(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), (8, 8, 1))
    with pytest.raises(ConfigError, match=r"the output is a flattened multi-channel map"):
        ct.from_module(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), (5, 4, 1))
    with pytest.raises(ConfigError, match=r"to_module|no torch module for GlobalMaxPooling2D|flattened"):
        ct.to_module(cl.Sequential([L.Conv2D(2, 1, input_shape=(3, 2, 1)), L.Flatten()]))


def test_average_pooling_that_counts_its_padding() -> None:
    """count_include_pad=True (torch's default) with pads that happen to equal 'same': a ZeroPadding layer."""
    module = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), nn.AvgPool2d(2, stride=2, padding=1)).eval()
    model = ct.from_module(module, (6, 5, 2))
    assert [type(layer).__name__ for layer in model.layers].count("ZeroPadding2D") == 2
    x = np.random.default_rng(5).normal(size=(2, 6, 5, 2)).astype(np.float32)
    assert max_diff(model.predict(x, verbose=0), torch_out(module, x)) < 1e-6
