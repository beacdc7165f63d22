"""predict runs each batch in cache-sized pieces: the same outputs as whole batches, bounded piece sizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens import inference
from convlens.inference import chunk_rows, forward_in_chunks

L = cl.layers


def _model() -> cl.Sequential:
    cl.utils.set_random_seed(0)
    model = cl.Sequential(
        [
            L.Input((12, 12, 3)),
            L.Conv2D(8, 3, padding="same"),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(2),
            L.DepthwiseConv2D(3, padding="same"),
            L.Flatten(),
            L.Dropout(0.5),
            L.Dense(4, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The piece sizes below are those of one thread (several threads: see the test of ROWS_PER_THREAD)."""
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "1")


def test_pieces_follow_the_largest_activation() -> None:
    model = _model()
    per_sample = 12 * 12 * 8 * 4  # the conv output; its im2col matrix is 12 * 12 * 28 * 4
    im2col = 12 * 12 * (3 * 3 * 3 + 1) * 4
    assert per_sample < im2col
    assert chunk_rows(model) == max(inference.MIN_ROWS, min(inference.MAX_ROWS, inference.CHUNK_BYTES // im2col))


def test_predict_in_pieces_equals_whole_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    rng = np.random.default_rng(0)
    model.fit(rng.random((64, 12, 12, 3), dtype=np.float32), rng.integers(0, 4, 64), epochs=1, verbose=0)
    x = rng.random((100, 12, 12, 3), dtype=np.float32)
    whole = model._forward(x, training=False)
    sizes: list[int] = []
    forward = model._forward

    def spy(batch: np.ndarray, training: bool) -> Any:
        sizes.append(batch.shape[0])
        return forward(batch, training=training)

    monkeypatch.setattr(inference, "MIN_ROWS", 1)
    monkeypatch.setattr(inference, "CHUNK_BYTES", 30 * 12 * 12 * 28 * 4)  # 30 rows per piece
    monkeypatch.setattr(model, "_forward", spy)
    np.testing.assert_array_equal(model.predict(x, batch_size=100, verbose=0), whole)
    assert sizes == [30, 30, 30, 10]
    sizes.clear()
    np.testing.assert_array_equal(forward_in_chunks(model, x[:20]), whole[:20])
    assert sizes == [20]


def test_several_outputs_are_assembled_each() -> None:
    class TwoOutputs:
        _input_shape = (None, 3)

        def __init__(self) -> None:
            self.layers = [L.Dense(2)]
            self.layers[0].build((None, 3), np.random.default_rng(0))

        def _forward(self, x: np.ndarray, training: bool) -> list[np.ndarray]:
            return [x * 2, x[:, :1]]

    x = np.arange(3 * 3000, dtype=np.float32).reshape(3000, 3)
    first, second = forward_in_chunks(TwoOutputs(), x)
    np.testing.assert_array_equal(first, x * 2)
    np.testing.assert_array_equal(second, x[:, :1])


def test_a_large_batch_size_is_checked_and_run_one_piece_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from convlens.errors import ResourceError

    model = cl.Sequential([L.Input((28, 28, 1)), L.Conv2D(64, 3, padding="same"), L.Flatten(), L.Dense(3)])
    x = np.zeros((3000, 28, 28, 1), np.float32)
    monkeypatch.setenv("CONVLENS_MEMORY_LIMIT", "250M")  # the whole batch's conv output alone is 602 MB
    with pytest.raises(ResourceError, match=r"call: this call needs about"):
        model(x)
    assert model.predict(x, batch_size=3000, verbose=0).shape == (3000, 3)


def test_functional_models_run_in_pieces_too(monkeypatch: pytest.MonkeyPatch) -> None:
    cl.utils.set_random_seed(0)
    inputs = cl.Input((8, 8, 3))
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = L.Conv2D(4, 1)(inputs)
    model = cl.Model(inputs, L.Dense(2)(L.Flatten()(L.Add()([a, b]))))
    x = np.random.default_rng(1).random((50, 8, 8, 3), dtype=np.float32)
    whole = model._forward(x, training=False)
    monkeypatch.setattr(inference, "MIN_ROWS", 1)
    monkeypatch.setattr(inference, "CHUNK_BYTES", 7 * 8 * 8 * 28 * 4)  # 7 rows: the 3x3 im2col is the largest
    assert chunk_rows(model) == 7
    # (a GEMM over 7 rows may sum in another order than over 50: equal to float32 rounding, as in any framework
    # whose results depend on batch_size)
    np.testing.assert_allclose(model.predict(x, batch_size=50, verbose=0), whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_several_threads_take_larger_pieces(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    model = _model()
    im2col = 12 * 12 * (3 * 3 * 3 + 1) * 4
    monkeypatch.setattr(inference, "CHUNK_BYTES", 20 * im2col)  # 20 rows by memory alone
    monkeypatch.setenv("CONVLENS_NUM_THREADS", str(threads))
    expected = 20 if threads == 1 else inference.ROWS_PER_THREAD * threads
    assert chunk_rows(model) == expected
    x = np.random.default_rng(2).random((400, 12, 12, 3), dtype=np.float32)
    np.testing.assert_allclose(forward_in_chunks(model, x), model._forward(x, training=False), rtol=1e-5, atol=1e-6)


def test_thread_pieces_stay_bounded_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    model = cl.Sequential([L.Input((28, 28, 1)), L.Conv2D(1000, 3, padding="same"), L.Flatten(), L.Dense(3)])
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    per_sample = 28 * 28 * 1000 * 4  # the conv output: 3.1 MB a sample
    assert 8 * inference.CHUNK_BYTES // per_sample <= inference.MIN_ROWS < inference.ROWS_PER_THREAD * 2
    assert chunk_rows(model) == inference.MIN_ROWS
