"""The whole course model, forward and three training steps, against PyTorch 2.13.

Layout bridge (here and only here, plus ``interop/``): conv kernel (KH, KW, C, F) <-> weight (F, C, KH, KW);
Dense kernel (D, U) <-> Linear weight (U, D); Keras's Flatten reads (H, W, C), so the torch model permutes
its NCHW activation to NHWC before flattening.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.utils import set_random_seed
from tests.conftest import require

torch = require("torch")

L = cl.layers
BATCH = 16


def convlens_course(dtype: str) -> cl.Sequential:
    set_random_seed(0)
    return cl.Sequential(
        [
            L.Conv2D(
                32, (3, 3), strides=(1, 1), padding="same", activation="relu", input_shape=(28, 28, 1), dtype=dtype
            ),
            L.MaxPooling2D(pool_size=(2, 2), dtype=dtype),
            L.Flatten(dtype=dtype),
            L.Dense(10, activation="softmax", dtype=dtype),
        ]
    )


class TorchCourse(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.dense = torch.nn.Linear(14 * 14 * 32, 10)

    def forward(self, x_nhwc: Any) -> Any:
        h = self.pool(torch.relu(self.conv(x_nhwc.permute(0, 3, 1, 2))))
        return self.dense(h.permute(0, 2, 3, 1).reshape(h.shape[0], -1))  # Keras's (H, W, C) flatten


def torch_copy(model: cl.Sequential, torch_dtype: Any) -> TorchCourse:
    kernel, bias, dense_kernel, dense_bias = model.get_weights()
    net = TorchCourse().to(torch_dtype)
    with torch.no_grad():
        net.conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        net.conv.bias.copy_(torch.from_numpy(bias))
        net.dense.weight.copy_(torch.from_numpy(dense_kernel.T.copy()))
        net.dense.bias.copy_(torch.from_numpy(dense_bias))
    return net


def torch_weights(net: TorchCourse) -> list[np.ndarray]:
    """Back to Keras layouts."""
    return [
        net.conv.weight.detach().numpy().transpose(2, 3, 1, 0),
        net.conv.bias.detach().numpy(),
        net.dense.weight.detach().numpy().T,
        net.dense.bias.detach().numpy(),
    ]


def mnist_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-like inputs in [0, 1] with many exact zeros, as MNIST has (float32 values, exact in float64)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    x[x < 0.6] = 0.0
    return x, rng.integers(0, 10, n)


TOLERANCES = {"float64": {"rtol": 1e-9, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-6}}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predictions_with_copied_weights(dtype: str) -> None:
    model = convlens_course(dtype)
    net = torch_copy(model, getattr(torch, dtype))
    x, _ = mnist_like(BATCH, seed=1)
    expected = torch.softmax(net(torch.from_numpy(x.astype(dtype))), dim=1).detach().numpy()
    got = model.predict(x, verbose=0)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, expected, **TOLERANCES[dtype])


def _train_both(dtype: str, optimizer: str) -> None:
    model = convlens_course(dtype)
    net = torch_copy(model, getattr(torch, dtype))
    if optimizer == "sgd":
        model.compile(cl.optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy", ["accuracy"])
        torch_opt = torch.optim.SGD(net.parameters(), lr=0.1)
    else:
        # Keras's default Adam (epsilon 1e-7). Keras adds epsilon to sqrt(v) and folds the bias
        # corrections into the step size; torch adds eps to sqrt(v_hat) = sqrt(v / (1 - beta_2**t)).
        # The two agree when eps_torch = epsilon / sqrt(1 - beta_2**t), set before each step below.
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        torch_opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(3):
        if optimizer == "adam":
            torch_opt.param_groups[0]["eps"] = 1e-7 / math.sqrt(1.0 - 0.999 ** (step + 1))
        x, y = mnist_like(BATCH, seed=10 + step)
        loss = model.train_on_batch(x, y)[0]
        torch_opt.zero_grad()
        torch_loss = loss_fn(net(torch.from_numpy(x.astype(dtype))), torch.from_numpy(y))
        torch_loss.backward()
        torch_opt.step()
        assert loss == pytest.approx(torch_loss.item(), rel=TOLERANCES[dtype]["rtol"])
    for ours, theirs in zip(model.get_weights(), torch_weights(net), strict=True):
        np.testing.assert_allclose(ours, theirs, **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_three_sgd_steps(dtype: str) -> None:
    _train_both(dtype, "sgd")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_three_adam_steps(dtype: str) -> None:
    _train_both(dtype, "adam")
