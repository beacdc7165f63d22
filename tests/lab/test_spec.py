"""convlens.lab.spec: the compact layer grammar, .py files and saved models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from convlens import layers
from convlens.errors import ConfigError
from convlens.lab.spec import load_model_spec, parse_spec

COURSE = "conv32k3s1same-relu, maxpool2, flatten, dense10-softmax"


def test_course_spec_builds_the_course_model() -> None:
    model = parse_spec(COURSE)
    assert model.count_params() == (3 * 3 * 1 * 32 + 32) + (14 * 14 * 32 * 10 + 10)
    conv, pool, flat, dense = model.layers
    assert isinstance(conv, layers.Conv2D)
    assert (conv.padding, conv.activation.name) == ("same", "relu")
    assert isinstance(pool, layers.MaxPooling2D)
    assert (pool.pool_size, pool.strides) == ((2, 2), (2, 2))
    assert isinstance(flat, layers.Flatten)
    assert isinstance(dense, layers.Dense)
    assert (dense.units, dense.activation.name) == (10, "softmax")
    assert model.input_shape == (None, 28, 28, 1)


@pytest.mark.parametrize(
    ("token", "cls", "attrs"),
    [
        ("conv8k3", layers.Conv2D, {"filters": 8, "kernel_size": (3, 3), "strides": (1, 1), "padding": "valid"}),
        ("conv8k5x3s2d1same", layers.Conv2D, {"kernel_size": (5, 3), "strides": (2, 2), "padding": "same"}),
        ("conv8samed2s2", layers.Conv2D, None),  # options before k: not a conv head
        ("conv8k3d2g2p1-tanh", layers.Conv2D, {"dilation_rate": (2, 2), "groups": 2, "padding": ((1, 1), (1, 1))}),
        ("conv8k3samed2s2", layers.Conv2D, {"dilation_rate": (2, 2), "strides": (2, 2), "padding": "same"}),
        ("dwconvk3m2s2same", layers.DepthwiseConv2D, {"depth_multiplier": 2, "strides": (2, 2)}),
        ("maxpool3s2same", layers.MaxPooling2D, {"pool_size": (3, 3), "strides": (2, 2), "padding": "same"}),
        ("avgpool2x1", layers.AveragePooling2D, {"pool_size": (2, 1), "strides": (2, 1)}),
        ("gap", layers.GlobalAveragePooling2D, {}),
        ("gmp", layers.GlobalMaxPooling2D, {}),
        ("zeropad2", layers.ZeroPadding2D, {"padding": ((2, 2), (2, 2))}),
        ("flatten", layers.Flatten, {}),
        ("dense7-sigmoid", layers.Dense, {"units": 7}),
        ("dropout0.25", layers.Dropout, {"rate": 0.25}),
        ("bn", layers.BatchNormalization, {}),
        ("relu", layers.Activation, {}),
    ],
)
def test_each_token_builds_its_layer(token: str, cls: type, attrs: dict[str, Any] | None) -> None:
    if attrs is None:
        with pytest.raises(ConfigError, match=r"spec token 2 .*expected conv<filters>k<size>"):
            parse_spec(f"input16x16x4, {token}")
        return
    (layer,) = parse_spec(f"input16x16x4, {token}").layers
    assert type(layer) is cls
    for key, value in attrs.items():
        assert getattr(layer, key) == value


def test_one_d_inputs_pick_the_1d_layers() -> None:
    model = parse_spec("input50x3, conv4k5causal, maxpool2, avgpool2s1same, zeropad1, gap, dense2")
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv1D",
        "MaxPooling1D",
        "AveragePooling1D",
        "ZeroPadding1D",
        "GlobalAveragePooling1D",
        "Dense",
    ]
    assert model.layers[0].padding == "causal"
    assert model.output_shape == (None, 2)


def test_spaces_and_case_do_not_matter() -> None:
    model = parse_spec("  Input10x10x2 ,CONV4K3SAME-ReLU,  Flatten ")
    assert model.output_shape == (None, 10 * 10 * 4)


def _caret_under(message: str, token: str) -> None:
    spec_line, caret_line = message.splitlines()[1:3]
    start = caret_line.index("^")
    assert spec_line[start : start + len(token)] == token
    assert caret_line.strip() == "^" * len(token)


@pytest.mark.parametrize(
    ("spec", "index", "token", "message"),
    [
        ("conv32k3, maxpoolx, flatten", 2, "maxpoolx", r"expected maxpool<size>\[s<stride>\]\[same\|valid\]"),
        ("conv32k3s2s3", 1, "conv32k3s2s3", r"expected conv<filters>k<size>"),
        ("conv8k3, wobble", 2, "wobble", r"unknown layer; expected one of input, conv, dwconv"),
        ("conv8k3-nope", 1, "conv8k3-nope", r"unknown `activation` 'nope'"),
        ("input10x10x1, conv8k30", 2, "conv8k30", r"a 'valid'-padded 30x30 window does not fit the 10x10 input"),
        ("conv8k3, input28x28x1", 2, "input28x28x1", r"the input shape must be the first token"),
        ("input28, dense3", 1, "input28", r"expected input<H>x<W>x<C> \(2-D\) or input<L>x<C> \(1-D\)"),
        ("input10x0x1, dense3", 1, "input10x0x1", r"expected input<H>x<W>x<C>"),
        ("input20x2, dwconvk3", 2, "dwconvk3", r"depthwise convolution needs a 2-D input"),
        ("dense4, dropout1.5", 2, "dropout1.5", r"`rate` must be < 1.0, got 1.5"),
        ("conv6k3g4", 1, "conv6k3g4", r"`filters` \(6\) must be divisible by groups=4"),
        ("maxpool2causal", 1, "maxpool2causal", r"`padding` must be one of"),
        ("input28x28x1", 1, "input28x28x1", r"the spec has an input shape but no layers"),
    ],
)
def test_bad_specs_point_at_the_token(spec: str, index: int, token: str, message: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"^spec token {index} '{re.escape(token)}': (\w+ '\w+': )?{message}"
    ) as info:
        parse_spec(spec)
    _caret_under(str(info.value), token)


def test_empty_and_non_string_specs() -> None:
    with pytest.raises(ConfigError, match=r"spec: empty layer string"):
        parse_spec(" , ")
    with pytest.raises(TypeError, match=r"parse_spec: `text` must be a string, got int"):
        parse_spec(3)  # type: ignore[arg-type]


def test_load_model_spec_reads_python_files(tmp_path: Path) -> None:
    good = tmp_path / "net.py"
    good.write_text(
        "from convlens import Sequential, layers\n"
        "model = Sequential([layers.Conv2D(4, 3, input_shape=(8, 8, 1)), layers.Flatten(), layers.Dense(2)])\n"
    )
    model = load_model_spec(str(good))
    assert model.output_shape == (None, 2)
    assert model.count_params() == (3 * 3 * 1 * 4 + 4) + (6 * 6 * 4 * 2 + 2)
    bad = tmp_path / "nomodel.py"
    bad.write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"must define `model` as a convlens Sequential, found nothing"):
        load_model_spec(bad)
    with pytest.raises(ConfigError, match=r"spec: no such file '.*missing\.py'"):
        load_model_spec(str(tmp_path / "missing.py"))


def test_load_model_spec_reads_saved_models_and_strings(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    parse_spec(COURSE).save(path)
    loaded = load_model_spec(path)
    assert loaded.count_params() == 63_050
    assert load_model_spec(COURSE).count_params() == 63_050
