"""Maximum output differences of every conversion in convlens.interop (float32, random weights and inputs).

Usage: python benchmarks/interop_parity.py [--seeds 5] [--dynamo]
(needs the `interop` and `test` extras: onnxruntime, torch 2.13, Keras 3 on its torch backend).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from _common import table  # noqa: E402

import convlens as cl  # noqa: E402

L = cl.layers


def randomize(model: Any, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for store in (layer.params, layer.state):
            for name, value in store.items():
                low = name == "moving_variance"
                value[...] = rng.uniform(0.5, 2.0, value.shape) if low else rng.normal(0, 0.5, value.shape)
    return model


def every_layer(size: tuple[int, int], strides: int) -> Any:
    return cl.Sequential(
        [
            L.Conv2D(4, 3, strides=strides, padding="same", activation="relu", input_shape=(*size, 3)),
            L.BatchNormalization(),
            L.DepthwiseConv2D(3, strides=strides, padding="same", depth_multiplier=2, activation="tanh"),
            L.MaxPooling2D(3, strides=strides, padding="same"),
            L.AveragePooling2D(2, strides=strides, padding="same"),
            L.ReLU(negative_slope=0.1),
            L.Flatten(),
            L.Dense(6, activation="gelu"),
            L.Dense(4, activation="softmax"),
        ]
    )


def torch_cnn(torch: Any, seed: int) -> Any:
    nn = torch.nn
    torch.manual_seed(seed)
    module = nn.Sequential(
        nn.Conv2d(3, 6, 3, stride=2, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, groups=6, padding=1),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2),
        nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 8),
        nn.Tanh(),
        nn.Linear(8, 5),
        nn.Softmax(dim=1),
    )
    with torch.no_grad():
        module[1].running_mean.normal_()
        module[1].running_var.uniform_(0.5, 2.0)
    return module.eval()


def diff(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--dynamo", action="store_true", help="also torch's dynamo ONNX exporter (slow)")
    args = parser.parse_args()
    import keras
    import onnxruntime as ort
    import torch

    worst: dict[str, float] = {}

    def record(name: str, value: float) -> None:
        worst[name] = max(worst.get(name, 0.0), value)

    tmp = Path(tempfile.mkdtemp())
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        for size in ((13, 15), (16, 14)):
            for strides in (1, 2):
                model = randomize(every_layer(size, strides), seed)
                x = rng.normal(size=(8, *size, 3)).astype(np.float32)
                expected = model.predict(x, verbose=0)
                model.export(tmp / "m.onnx")
                session = ort.InferenceSession(str(tmp / "m.onnx"), providers=["CPUExecutionProvider"])
                record("convlens -> ONNX (onnxruntime)", diff(session.run(None, {"input": x})[0], expected))
                record(
                    "ONNX -> convlens (own export)", diff(cl.load_model(tmp / "m.onnx").predict(x, verbose=0), expected)
                )
                model.save(tmp / "m.keras")
                keras_model = keras.saving.load_model(tmp / "m.keras")
                record("convlens -> .keras (Keras 3 predict)", diff(keras_model.predict(x, verbose=0), expected))
                keras_model.save(tmp / "k.keras")
                record(
                    "Keras 3 .keras -> convlens", diff(cl.load_model(tmp / "k.keras").predict(x, verbose=0), expected)
                )
                module = cl.interop.torch.to_module(model)
                with torch.no_grad():
                    got = module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
                record("convlens -> torch (to_module)", diff(got, expected))
                for name in ("w.safetensors", "w.pt"):
                    model.save_weights(tmp / name)
                    fresh = randomize(every_layer(size, strides), seed + 100)
                    got = cl.load_model(tmp / name, architecture=fresh).predict(x, verbose=0)
                    record("state dict (.safetensors/.pt) round trip", diff(got, expected))
        module = torch_cnn(torch, seed)
        xt = torch.randn(8, 3, 13, 11)
        with torch.no_grad():
            expected = module(xt).numpy()
        x = xt.numpy().transpose(0, 2, 3, 1)
        record(
            "torch -> convlens (from_module)",
            diff(cl.interop.torch.from_module(module, (13, 11, 3)).predict(x, verbose=0), expected),
        )
        for dynamo in (False, True) if args.dynamo else (False,):
            torch.onnx.export(
                module,
                (xt,),
                str(tmp / "t.onnx"),
                dynamo=dynamo,
                opset_version=18 if dynamo else 17,
                external_data=False,
            )
            name = f"torch.onnx.export ({'dynamo' if dynamo else 'legacy'}) -> convlens"
            record(name, diff(cl.load_model(tmp / "t.onnx").predict(x, verbose=0), expected))
    rows = [[name, f"{value:.2e}"] for name, value in worst.items()]
    print(f"Maximum absolute difference over {args.seeds} seeds (8 random inputs each, float32):")
    print(table(["conversion", "max abs difference"], rows))


if __name__ == "__main__":
    main()
