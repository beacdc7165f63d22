"""The resource guard and empty inputs: huge requests refused in milliseconds, empty batches give empty results."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

import convlens as cl
from convlens import ops, resources
from convlens.errors import ConfigError, ResourceError


def test_memory_limit_parses_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    for text, value in [("4G", 4 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", int(1.5 * 2**30)), ("1000", 1000)]:
        monkeypatch.setenv("CONVLENS_MEMORY_LIMIT", text)
        assert resources.memory_limit() == value
        assert resources.available_bytes() <= value
    monkeypatch.setenv("CONVLENS_MEMORY_LIMIT", "lots")
    with pytest.raises(
        ConfigError, match=r"^CONVLENS_MEMORY_LIMIT must be a size such as 4G or 500000000, got 'lots'\.$"
    ):
        resources.memory_limit()


def test_available_bytes_is_at_most_memavailable() -> None:
    with open("/proc/meminfo") as handle:
        line = next(line for line in handle if line.startswith("MemAvailable:"))
    mem_available = int(line.split()[1]) * 1024
    # Allow for memory freed between the two reads.
    assert 0 < resources.available_bytes() <= mem_available * 1.1


def _refused_quickly(call: object, match: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ResourceError, match=match):
        call()  # type: ignore[operator]
    assert time.perf_counter() - start < 0.5  # refused up front, nothing allocated


def test_conv_with_a_huge_padding_states_the_estimate() -> None:
    # The example: 43.7 TiB requested for a 1x7x5x1 input.
    x, k = np.zeros((1, 7, 5, 1), np.float32), np.ones((2, 1, 1, 2), np.float32)
    _refused_quickly(
        lambda: ops.conv2d(x, k, padding=10**6),
        r"^conv2d: this call needs about [\d.]+ TiB \(the im2col matrix of shape \(4000022000030, 3\) alone is "
        r"43\.7 TiB\), more than the [\d.]+ [KMGT]iB this process can still allocate\. Use a smaller batch, "
        r"padding, dilation_rate or kernel\.$",
    )


def test_guard_follows_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    x, k = np.zeros((4, 64, 64, 8), np.float32), np.ones((3, 3, 8, 8), np.float32)
    assert ops.conv2d(x, k, padding="same").shape == (4, 64, 64, 8)
    monkeypatch.setenv("CONVLENS_MEMORY_LIMIT", "100K")
    _refused_quickly(lambda: ops.conv2d(x, k, padding="same"), r"more than the 100\.0 KiB this process")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: cl.layers.MaxPooling1D(padding="Same", pool_size=10**6),
            "MaxPooling1D 'max_pooling1d.*': `pool_size` 1000000 has 1,000,000 cells; windows are limited to "
            "65,536 cells (256x256). For a window over the whole input use global pooling.",
        ),
        (
            lambda: ops.avg_pool2d(np.zeros((1, 4, 4, 1)), pool_size=(300, 300), padding="same"),
            "avg_pool2d: `pool_size` 300x300 has 90,000 cells; windows are limited to 65,536 cells",
        ),
        (
            lambda: ops.conv2d(np.zeros((1, 600, 600, 1)), np.zeros((300, 300, 1, 1))),
            "conv2d: `kernel` 300x300 has 90,000 cells",
        ),
    ],
)
def test_windows_with_too_many_cells_are_refused(call: object, message: str) -> None:
    _refused_quickly(call, re.escape(message).replace(r"\.\*", ".*"))


def test_broadcast_views_of_absurd_size_are_refused() -> None:
    view = np.broadcast_to(np.float32(1.0), (1, 10**6, 10**6, 3))
    _refused_quickly(
        lambda: ops.global_max_pool2d(view),
        r"^global_max_pool2d: `x` of shape \(1, 1000000, 1000000, 3\) holds 10\.9 TiB of values \(a broadcast or "
        r"memory-mapped view\?\), more than the .* this process can still allocate; pass it in smaller pieces\.$",
    )
    _refused_quickly(lambda: ops.softmax(np.broadcast_to(np.float32(1), (4, 10**12))), r"^softmax: `x` of shape")


def test_weights_too_large_are_refused_at_build() -> None:
    layer = cl.layers.Dense(10**12)
    _refused_quickly(
        lambda: layer.build((None, 5)),
        r"^Dense '\w+': this call needs about [\d.]+ TiB \(weight 'kernel' of shape \(5, 1000000000000\) alone is "
        r".*\), more than the .* this process can still allocate\. Use fewer filters or units, or a smaller input\.$",
    )
    _refused_quickly(
        lambda: cl.Sequential([cl.layers.Flatten(), cl.layers.Dense(3)]).build((None, 10**6, 10**6)),
        r"weight 'kernel' of shape \(1000000000000, 3\)",
    )


def test_zero_padding_layer_output_is_guarded() -> None:
    layer = cl.layers.ZeroPadding2D(((0, 2**30), (0, 2**30)))
    _refused_quickly(lambda: layer(np.zeros((1, 2, 2, 1))), r"the padded output of shape \(1, 1073741826, ")


# ----- empty inputs -------------------------------------------------------------------------------------------
X0 = np.zeros((0, 7, 6, 3), np.float32)


@pytest.mark.parametrize(
    ("call", "shape"),
    [
        (lambda: ops.conv2d(X0, np.ones((3, 3, 3, 4), np.float32)), (0, 5, 4, 4)),
        (lambda: ops.conv2d(X0, np.ones((3, 3, 1, 6), np.float32), groups=3, padding="same"), (0, 7, 6, 6)),
        (lambda: ops.conv1d(np.zeros((0, 7, 3)), np.ones((3, 3, 2)), padding="causal"), (0, 7, 2)),
        (lambda: ops.max_pool2d(X0), (0, 3, 3, 3)),
        (lambda: ops.avg_pool1d(np.zeros((0, 7, 2)), pool_size=3, padding="same"), (0, 3, 2)),
        (lambda: ops.global_avg_pool2d(X0), (0, 3)),
        (lambda: ops.global_max_pool2d(np.zeros((2, 4, 8, 0))), (2, 0)),
        (lambda: ops.dense(np.zeros((0, 5)), np.ones((5, 3))), (0, 3)),
        (lambda: ops.softmax(np.zeros((4, 0))), (4, 0)),
        (lambda: ops.relu(np.zeros((0, 3))), (0, 3)),
        (lambda: cl.layers.Conv2D(4, 3)(X0), (0, 5, 4, 4)),
        (lambda: cl.layers.MaxPooling2D()(X0), (0, 3, 3, 3)),
    ],
)
def test_empty_batches_give_empty_results_of_the_right_shape(call: object, shape: tuple[int, ...]) -> None:
    out = call()  # type: ignore[operator]
    assert out.shape == shape
    assert out.dtype.kind == "f"


def test_empty_batch_gradients_are_zeros() -> None:
    kernel = np.ones((3, 3, 3, 4), np.float32)
    grads = ops.conv2d_backward(np.zeros((0, 5, 4, 4)), X0, kernel)
    assert grads.x.shape == X0.shape
    np.testing.assert_array_equal(grads.kernel, np.zeros_like(kernel))
    np.testing.assert_array_equal(grads.bias, np.zeros(4))
    assert ops.max_pool2d_backward(np.zeros((0, 3, 3, 3)), X0).shape == X0.shape


def test_model_on_an_empty_batch() -> None:
    model = cl.Sequential([cl.layers.Conv2D(2, 3, input_shape=(7, 6, 3)), cl.layers.Flatten(), cl.layers.Dense(4)])
    assert model(X0).shape == (0, 4)
    assert model.predict(X0, verbose=0).shape == (0, 4)


def test_model_batches_are_checked_before_any_layer_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fused conv+pool stages allocate on their own; the model checks every layer's output for the batch first.
    model = cl.Sequential([cl.layers.Conv2D(1000, 3, padding="same", input_shape=(28, 28, 1)),
                           cl.layers.MaxPooling2D(), cl.layers.Flatten(), cl.layers.Dense(10)])  # fmt: skip
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.zeros((1000, 28, 28, 1), np.float32)
    monkeypatch.setenv("CONVLENS_MEMORY_LIMIT", "1G")
    _refused_quickly(
        lambda: model.predict(x, batch_size=1000, verbose=0),
        r"^Sequential '\w+': predict: this call needs about [\d.]+ GiB \(the output of Conv2D '\w+' of shape "
        r"\(1000, 28, 28, 1000\) alone is 2\.9 GiB\), more than the 1\.0 GiB this process can still allocate\. "
        r"Use a smaller batch_size\.$",
    )
    _refused_quickly(lambda: model.fit(x, np.zeros(1000), batch_size=256, verbose=0), r"^Sequential '\w+': fit: ")
    assert model.predict(x[:8], batch_size=8, verbose=0).shape == (8, 10)
