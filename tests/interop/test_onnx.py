"""ONNX export (run in onnxruntime) and import (files written by torch.onnx.export), checked by outputs."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConfigError, DataError
from tests.interop.helpers import max_diff, need, randomize, randomize_torch

onnx = need("onnx")
ort = need("onnxruntime")
torch = need("torch")
co = cl.interop.onnx
L = cl.layers
nn = torch.nn


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def every_layer_model(size: tuple[int, int], strides: int) -> cl.Sequential:
    """Every convlens layer (2-D) with 'same' padding at ``strides``; >= 2 channels before Flatten."""
    return cl.Sequential(
        [
            L.Input(shape=(*size, 3)),
            L.Conv2D(4, 3, strides=strides, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.DepthwiseConv2D(3, strides=strides, padding="same", depth_multiplier=2, activation="tanh"),
            L.Conv2D(4, (2, 3), padding=((0, 1), (1, 1)), dilation_rate=(1, 2), groups=2, activation="sigmoid"),
            L.MaxPooling2D(3, strides=strides, padding="same"),
            L.AveragePooling2D(2, strides=strides, padding="same"),
            L.ZeroPadding2D(((0, 1), (2, 0))),
            L.ReLU(max_value=0.6, negative_slope=0.1, threshold=0.05),
            L.Activation("gelu"),
            L.Flatten(),
            L.Dense(6, activation="silu"),
            L.Dropout(0.5),
            L.BatchNormalization(epsilon=1e-5),
            L.Dense(5, activation="elu"),
            L.Dense(4),
            L.Softmax(),
        ]
    )


@pytest.mark.parametrize("size", [(13, 15), (16, 14)], ids=["odd", "even"])
@pytest.mark.parametrize("strides", [1, 2])
def test_export_every_layer_matches_onnxruntime(tmp_path: Path, size: tuple[int, int], strides: int) -> None:
    model = randomize(every_layer_model(size, strides), seed=strides)
    path = tmp_path / "m.onnx"
    model.export(path)
    x = np.random.default_rng(1).normal(size=(5, *size, 3)).astype(np.float32)
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import) >= 13
    assert not any(a.name == "auto_pad" for n in proto.graph.node for a in n.attribute)
    assert [n.op_type for n in proto.graph.node].count("Transpose") == 2  # input boundary + before Flatten
    assert max_diff(run_onnx(path, x), model.predict(x, verbose=0)) < 1e-5
    # and back: the file reads into a model with the same outputs and parameter count
    back = co.load(path)
    assert back.count_params() == model.count_params()
    assert max_diff(back.predict(x, verbose=0), model.predict(x, verbose=0)) < 1e-5


def test_export_1d_and_global_pooling(tmp_path: Path) -> None:
    model = randomize(
        cl.Sequential(
            [
                L.Conv1D(4, 3, padding="causal", activation="relu", input_shape=(11, 2)),
                L.MaxPooling1D(2, padding="same"),
                L.AveragePooling1D(3, strides=2, padding="same"),
                L.ZeroPadding1D((1, 2)),
                L.BatchNormalization(),
                L.GlobalAveragePooling1D(),
                L.Dense(3, activation="softmax"),
            ]
        )
    )
    path = tmp_path / "m1.onnx"
    co.export(model, path)
    x = np.random.default_rng(2).normal(size=(4, 11, 2)).astype(np.float32)
    assert max_diff(run_onnx(path, x), model.predict(x, verbose=0)) < 1e-5
    maps = randomize(
        cl.Sequential([L.Conv2D(3, 3, input_shape=(6, 5, 2)), L.GlobalMaxPooling2D(keepdims=True), L.Softmax(axis=-1)])
    )
    co.export(maps, tmp_path / "m2.onnx")
    x2 = np.random.default_rng(3).normal(size=(2, 6, 5, 2)).astype(np.float32)
    assert max_diff(run_onnx(tmp_path / "m2.onnx", x2), maps.predict(x2, verbose=0)) < 1e-5


def torch_export(module: Any, x: Any, path: Path, dynamo: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            module, (x,), str(path), dynamo=dynamo, opset_version=18 if dynamo else 17, external_data=False
        )
    return path


def torch_cnn() -> Any:
    """Conv (strided, grouped, 'same'), BatchNorm, activations, pooling, and a Flatten of 4 channels, 5x2."""
    torch.manual_seed(0)
    return randomize_torch(
        nn.Sequential(
            nn.Conv2d(3, 6, 3, stride=2, padding=1),
            nn.BatchNorm2d(6),
            nn.LeakyReLU(0.1),
            nn.Conv2d(6, 6, 3, groups=3, padding="same"),
            nn.ReLU6(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=True),
            nn.Conv2d(6, 4, (1, 3)),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(40, 8),
            nn.BatchNorm1d(8),
            nn.GELU(),
            nn.Dropout(0.3),
            nn.Linear(8, 5),
            nn.Softmax(dim=1),
        )
    )


def test_import_torch_onnx_export_matches_torch(tmp_path: Path) -> None:
    module = torch_cnn()
    x = torch.randn(3, 3, 13, 11)
    model = co.load(torch_export(module, x, tmp_path / "t.onnx"))
    assert model.input_shape == (None, 13, 11, 3)  # channels-last at the boundary
    with torch.no_grad():
        expected = module(x).numpy()
    got = model.predict(x.numpy().transpose(0, 2, 3, 1), verbose=0)
    assert max_diff(got, expected) < 1e-5


@pytest.mark.slow
def test_import_torch_dynamo_export_matches_torch(tmp_path: Path) -> None:
    """torch 2.13's default (dynamo) exporter: Reshape instead of Flatten, gelu operands in another order."""
    need("onnxscript")
    module = torch_cnn()
    x = torch.randn(2, 3, 13, 11)
    model = co.load(torch_export(module, x, tmp_path / "d.onnx", dynamo=True))
    with torch.no_grad():
        expected = module(x).numpy()
    assert max_diff(model.predict(x.numpy().transpose(0, 2, 3, 1), verbose=0), expected) < 1e-5


def test_import_conv1d_global_pooling(tmp_path: Path) -> None:
    torch.manual_seed(1)
    module = randomize_torch(
        nn.Sequential(
            nn.Conv1d(2, 4, 3, padding=2, dilation=2), nn.SiLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 3)
        )
    )
    x = torch.randn(2, 2, 9)
    model = co.load(torch_export(module, x, tmp_path / "c1.onnx"))
    with torch.no_grad():
        assert max_diff(model.predict(x.numpy().transpose(0, 2, 1), verbose=0), module(x).numpy()) < 1e-5


def test_unsupported_operator_names_the_node(tmp_path: Path) -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x: Any) -> Any:
            return torch.cos(self.conv(x))

    path = torch_export(Residual().eval(), torch.randn(1, 2, 5, 5), tmp_path / "cos.onnx")
    with pytest.raises(
        ConfigError,
        match=r"node '.*Cos.*' \(Cos\) is not supported; convlens converts these ONNX operators: Add, AveragePool",
    ):
        co.load(path)


def test_branching_graph_is_refused(tmp_path: Path) -> None:
    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x: Any) -> Any:
            return self.conv(x) + x

    path = torch_export(Skip().eval(), torch.randn(1, 2, 5, 5), tmp_path / "skip.onnx")
    with pytest.raises(ConfigError, match=r"\(Add\) reads .* convlens converts chains"):
        co.load(path)


def test_malformed_files_are_data_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf \xff\xfe" * 3)
    with pytest.raises(DataError, match=r"ONNX file '.*bad.onnx' (is not a valid ONNX model|has no graph nodes)"):
        cl.load_model(bad)
    model = randomize(cl.Sequential([L.Dense(3, input_shape=(4,))]))
    model.export(tmp_path / "ok.onnx")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes((tmp_path / "ok.onnx").read_bytes()[:40])
    with pytest.raises(DataError, match=r"truncated.onnx"):
        cl.load_model(truncated)
    with pytest.raises(DataError, match=r"no such file"):
        cl.load_model(tmp_path / "missing.onnx")


def test_export_refuses_what_onnx_cannot_say(tmp_path: Path) -> None:
    model = cl.Sequential([L.Conv2D(2, 3, data_format="channels_first", input_shape=(1, 5, 5))])
    with pytest.raises(ConfigError, match=r"Conv2D '.*': ONNX export supports data_format='channels_last' only"):
        model.export(tmp_path / "cf.onnx")
    with pytest.raises(ConfigError, match=r"`opset` must be an integer >= 13, got 11"):
        co.export(cl.Sequential([L.Dense(2, input_shape=(3,))]), tmp_path / "o.onnx", opset=11)
    assert not (tmp_path / "cf.onnx").exists()


def test_pooling_pads_convlens_cannot_express(tmp_path: Path) -> None:
    # torch's MaxPool2d(3, 2, padding=1) on an even size pads (1, 1); TensorFlow's 'same' pads (0, 1).
    path = torch_export(
        nn.Sequential(nn.MaxPool2d(3, 2, padding=1)).eval(), torch.randn(1, 2, 8, 8), tmp_path / "p.onnx"
    )
    with pytest.raises(
        ConfigError,
        match=r"pooling with pads \(\(1, 1\), \(1, 1\)\) on a \(8, 8\) map is not supported.*\(\(0, 1\), \(0, 1\)\)",
    ):
        co.load(path)
