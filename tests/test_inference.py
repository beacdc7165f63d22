"""predict runs each batch in cache-sized pieces: the same outputs as whole batches, bounded piece sizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens import inference
from convlens.inference import chunk_rows, forward_in_chunks
from tests.support.threads import expected_split_threads

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


# ----- the whole-model split: each thread runs its own pieces through every layer -----------------------------
def _split_model() -> cl.Sequential:
    """Every kind of inference state a layer keeps: conv plans (Winograd, im2col), a fused conv + max-pool
    stage, batch norm + ReLU, depthwise, average pooling, dense."""
    cl.utils.set_random_seed(1)
    model = cl.Sequential(
        [
            L.Input((16, 16, 3)),
            L.Conv2D(8, 5, padding="same", activation="tanh"),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(16, 3, padding="same"),
            L.BatchNormalization(),
            L.ReLU(),
            L.DepthwiseConv2D(3, padding="same"),
            L.AveragePooling2D(2),
            L.Flatten(),
            L.Dense(5, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.random((32, 16, 16, 3), dtype=np.float32), rng.integers(0, 5, 32), epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("jit_on", ["1", "0"])
def test_the_whole_model_split_gives_the_outputs_of_one_thread(monkeypatch: pytest.MonkeyPatch, jit_on: str) -> None:
    """Two threads, many pieces each: every piece's output equals the one-thread run's (a workspace buffer
    shared between the threads would mix their pieces)."""
    import threading

    monkeypatch.setenv("CONVLENS_JIT", jit_on)
    model = _split_model()
    x = np.random.default_rng(3).random((300, 16, 16, 3), dtype=np.float32)
    monkeypatch.setattr(inference, "MIN_ROWS", 1)
    monkeypatch.setattr(inference, "SPLIT_CHUNK_BYTES", 7 * inference._sample_bytes(model))  # 7 rows a piece
    pieces = inference._split_pieces(300, 7, 2)
    reference = np.concatenate([model._forward(x[lo:hi], training=False) for lo, hi in pieces])
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    threads_seen: set[int] = set()
    forward = model._forward

    def spy(batch: np.ndarray, training: bool) -> Any:
        threads_seen.add(threading.get_ident())
        return forward(batch, training=training)

    monkeypatch.setattr(model, "_forward", spy)
    for _ in range(3):
        threads_seen.clear()
        np.testing.assert_array_equal(model.predict(x, batch_size=300, verbose=0), reference)
        assert len(threads_seen) == expected_split_threads()  # (the pool's worker may differ between calls)


def test_the_split_runs_each_thread_alone_in_a_slot_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a piece: one thread as far as the layers know (nothing splits again), its own workspace slot,
    BLAS limited to one thread; after predict every setting is back."""
    from convlens.ops import parallel

    if expected_split_threads() == 1:
        pytest.skip("no whole-model split on this machine (see split_threads)")
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    model = _split_model()
    seen: list[tuple[int, int]] = []
    forward = model._forward

    def spy(batch: np.ndarray, training: bool) -> Any:
        seen.append((parallel.num_threads(), parallel.workspace_slot_of_thread()))
        return forward(batch, training=training)

    monkeypatch.setattr(model, "_forward", spy)
    monkeypatch.setattr(inference, "SPLIT_CHUNK_BYTES", 16 * inference._sample_bytes(model))
    model.predict(np.zeros((128, 16, 16, 3), np.float32), batch_size=128, verbose=0)
    assert len(seen) == 8
    assert {threads for threads, _ in seen} == {1}
    assert {slot for _, slot in seen} <= {0, 1}
    assert parallel.num_threads() == 2
    assert parallel.workspace_slot_of_thread() == 0


def test_the_split_is_off_by_switch_for_one_thread_and_for_little_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    assert inference.split_threads() == expected_split_threads()
    monkeypatch.setenv("CONVLENS_SPLIT_PREDICT", "0")
    assert inference.split_threads() == 1
    monkeypatch.setenv("CONVLENS_SPLIT_PREDICT", "1")
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "1")
    assert inference.split_threads() == 1
    # a tiny model's default batch of 32 is too little work to hand out: one thread runs it
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    model = cl.Sequential([L.Input((4,)), L.Dense(2)])
    called: list[int] = []
    monkeypatch.setattr(inference, "_forward_split", lambda *args: called.append(1))
    forward_in_chunks(model, np.ones((32, 4), np.float32))
    assert called == []


def test_an_error_in_a_piece_stops_the_split_and_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    if expected_split_threads() == 1:
        pytest.skip("no whole-model split on this machine (see split_threads)")
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    model = _split_model()
    monkeypatch.setattr(inference, "SPLIT_CHUNK_BYTES", 16 * inference._sample_bytes(model))
    calls: list[int] = []
    lock = threading.Lock()
    forward = model._forward

    def failing(batch: np.ndarray, training: bool) -> Any:
        with lock:
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("piece 3 failed")
        return forward(batch, training=training)

    monkeypatch.setattr(model, "_forward", failing)
    with pytest.raises(RuntimeError, match="piece 3 failed"):
        model.predict(np.zeros((640, 16, 16, 3), np.float32), batch_size=640, verbose=0)
    assert len(calls) < 40  # the other thread stopped: not every one of the 40 pieces ran
    from convlens.ops import parallel

    assert parallel.num_threads() == 2  # (nothing left behind on this thread)


def test_memory_checks_count_the_pieces_of_every_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    model = _split_model()
    rows = chunk_rows(model, split=True)
    assert rows is not None
    expected = 2 * rows if expected_split_threads() == 2 else chunk_rows(model)
    assert inference.piece_rows(model, 100_000) == expected


def test_split_pieces_have_two_sizes_at_most() -> None:
    for n in range(1, 200, 7):
        for rows in (1, 5, 16, 64):
            pieces = inference._split_pieces(n, rows, 2)
            assert [lo for lo, _ in pieces] == [hi for _, hi in [(0, 0), *pieces[:-1]]]
            assert pieces[-1][1] == n
            assert len({hi - lo for lo, hi in pieces[:-1]}) <= 1
            assert len(pieces) >= min(2, -(-n // inference.MIN_ROWS))


def test_a_functional_model_splits_over_threads_too(monkeypatch: pytest.MonkeyPatch) -> None:
    cl.utils.set_random_seed(2)
    inputs = cl.Input((12, 12, 3))
    a = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    a = L.BatchNormalization()(a)
    b = L.Conv2D(8, 1)(inputs)
    merged = L.MaxPooling2D(2)(L.Add()([a, b]))
    model = cl.Model(inputs, L.Dense(4)(L.GlobalAveragePooling2D()(merged)))
    x = np.random.default_rng(5).random((200, 12, 12, 3), dtype=np.float32)
    monkeypatch.setattr(inference, "MIN_ROWS", 1)
    monkeypatch.setattr(inference, "SPLIT_CHUNK_BYTES", 9 * inference._sample_bytes(model))  # 9 rows a piece
    reference = np.concatenate(
        [model._forward(x[lo:hi], training=False) for lo, hi in inference._split_pieces(200, 9, 2)]
    )
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    for _ in range(3):
        np.testing.assert_array_equal(model.predict(x, batch_size=200, verbose=0), reference)


def test_a_model_with_a_layer_class_of_the_users_never_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's layer may keep state between the steps of one call: its model runs one piece at a time."""

    class Doubling(L.Layer):
        def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
            self.seen = x  # (state kept in a call: two threads would overwrite each other's)
            return self.seen * 2

    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    model = cl.Sequential([L.Input((16, 16, 3)), L.Conv2D(8, 3), Doubling(), L.Flatten(), L.Dense(2)])
    called: list[int] = []
    monkeypatch.setattr(inference, "_forward_split", lambda *args: called.append(1))
    x = np.random.default_rng(0).random((400, 16, 16, 3), dtype=np.float32)
    expected = model._forward(x, training=False)
    np.testing.assert_allclose(model.predict(x, batch_size=400, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert called == []
    assert inference.piece_rows(model, 400) == min(400, chunk_rows(model) or 400)
    assert inference._ours(_split_model())
