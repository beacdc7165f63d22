"""Dispatch by suffix (cl.load_model, model.save/export/save_weights), the CLI, and imported models in every view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import convlens as cl
from convlens.cli import main
from convlens.errors import ConfigError
from tests.interop.helpers import max_diff, need, randomize, randomize_torch

torch = need("torch")
need("onnx")
need("h5py")
need("safetensors")
L = cl.layers
nn = torch.nn


def small() -> cl.Sequential:
    return randomize(
        cl.Sequential(
            [
                L.Conv2D(3, 3, padding="same", activation="relu", input_shape=(6, 5, 1)),
                L.MaxPooling2D(),
                L.Flatten(),
                L.Dense(4, activation="softmax"),
            ]
        )
    )


def test_unknown_suffixes_are_config_errors(tmp_path: Path) -> None:
    model = small()
    with pytest.raises(ConfigError, match=r"save: unknown file type 'm.h5'; use one of .npz, .keras"):
        model.save(tmp_path / "m.h5")
    with pytest.raises(ConfigError, match=r"ONNX is an export format; use model.export\('m.onnx'\)"):
        model.save(tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match=r"load_model: unknown file type 'm.bin'"):
        cl.load_model(tmp_path / "m.bin")
    with pytest.raises(ConfigError, match=r"'w.safetensors' holds weights only; pass the model they belong to"):
        cl.load_model(tmp_path / "w.safetensors")
    with pytest.raises(ConfigError, match=r"export: `format` must be 'onnx' \(or a .onnx path\), got 'm.keras'"):
        model.export(tmp_path / "m.keras")
    with pytest.raises(ConfigError, match=r"save_weights: unknown file type 'w.h5'"):
        model.save_weights(tmp_path / "w.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written under a wrong name


def test_every_format_round_trips(tmp_path: Path) -> None:
    model = small()
    x = np.random.default_rng(0).normal(size=(3, 6, 5, 1)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    for name in ("m.npz", "m.keras"):
        model.save(tmp_path / name)
        assert max_diff(cl.load_model(tmp_path / name).predict(x, verbose=0), expected) == 0.0
    model.export(tmp_path / "m.onnx", format="onnx")
    assert max_diff(cl.load_model(tmp_path / "m.onnx").predict(x, verbose=0), expected) < 1e-6
    for name in ("w.npz", "w.weights.h5", "w.safetensors", "w.pt"):
        model.save_weights(tmp_path / name)
        fresh = randomize(cl.load_model(tmp_path / "m.npz"), seed=7)
        assert max_diff(cl.load_model(tmp_path / name, architecture=fresh).predict(x, verbose=0), expected) == 0.0


def test_cli_convert_between_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = cl.course.build_course_model(filters=4)
    randomize(model)
    model.save(tmp_path / "c.npz")
    for out in ("c.keras", "c.onnx", "c.weights.h5", "c.safetensors"):
        assert main(["convert", str(tmp_path / "c.npz"), str(tmp_path / out)]) == 0
        assert "max |difference| on 8 random inputs: 0\n" in capsys.readouterr().out
    spec = "input28x28x1, conv4k3same-relu, maxpool2, flatten, dense10-softmax"
    assert main(["convert", str(tmp_path / "c.safetensors"), str(tmp_path / "d.onnx"), "--architecture", spec]) == 0
    assert "Converted" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "c.safetensors"), str(tmp_path / "e.npz")]) == 2
    assert "--architecture: " in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "c.npz"), str(tmp_path / "e.h5")]) == 2
    assert "unknown file type 'e.h5'" in capsys.readouterr().err


def test_cli_summary_and_visualize_read_any_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = cl.course.build_course_model(filters=4)
    model.export(tmp_path / "d.onnx")
    model.save(tmp_path / "c.keras")
    assert main(["summary", str(tmp_path / "d.onnx"), "--columns", "layer,params_formula", "--format", "markdown"]) == 0
    assert "3*3*1*4 + 4 = 40" in capsys.readouterr().out
    assert (
        main(["visualize", "feature-maps", str(tmp_path / "c.keras"), "--index", "0", "-o", str(tmp_path / "maps.png")])
        == 0
    )
    assert (tmp_path / "maps.png").stat().st_size > 0


def test_imported_torch_model_in_every_view() -> None:
    """Summary formulas, explain, feature maps and Grad-CAM on a model converted from torch."""
    from convlens.lab import explain, viz
    from convlens.lab.arithmetic import model_stats

    torch.manual_seed(0)
    module = randomize_torch(
        nn.Sequential(
            nn.Conv2d(1, 2, 3, stride=2, padding=1),
            nn.BatchNorm2d(2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(98, 10),
        )
    )
    model = cl.interop.torch.from_module(module, (28, 28, 1))
    stats = model_stats(model)
    assert sum(s.params for s in stats) == model.count_params() == sum(p.numel() for p in module.parameters()) + 4
    assert stats[0].params_formula == "3*3*1*2 + 2 = 20"
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    conv = model.layers[0]
    trace = explain.convolution(
        x[0, :, :, 0],
        conv.params["kernel"][:, :, 0, 1],
        strides=conv.strides,
        padding=conv.padding,
        bias=float(conv.params["bias"][1]),
    )
    with torch.no_grad():
        reference = module[0](torch.from_numpy(x.transpose(0, 3, 1, 2)))[0, 1].numpy()
    assert max_diff(trace.output, reference) < 1e-5
    maps = viz.feature_maps(model, x)
    with torch.no_grad():
        conv_maps = module[0](torch.from_numpy(x.transpose(0, 3, 1, 2)))[0].numpy().transpose(1, 2, 0)
    assert max_diff(maps.maps[conv.name], conv_maps) < 1e-5
    cam = viz.gradcam(model, x)
    assert cam.cam.shape == (28, 28)
    assert cam.cam_small.shape == (7, 7)
    assert cam.weights.shape == (2,)


def test_readme_interop_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    readme = Path(__file__).resolve().parents[2] / "README.md"
    blocks = [
        b
        for b in re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.DOTALL)
        if "from_module(" in b
    ]
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_interop"}
    exec(compile(blocks[0], str(readme), "exec"), namespace)  # the README's code, unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.keras", "mine.onnx", "mine.safetensors"]
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    with torch.no_grad():
        expected = namespace["net"](torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()  # type: ignore[operator]
    for name in ("mine.keras", "mine.onnx"):
        assert max_diff(cl.load_model(tmp_path / name).predict(x, verbose=0), expected) < 1e-5
