"""Data-parallel training steps (convlens.data_parallel): two threads, each with half of the batch, give the
unsplit step's loss, outputs, gradients and batch-norm statistics (to float rounding where the order of a sum
changes, bit for bit where it does not)."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convlens as cl
from convlens import data_parallel, step_twins
from convlens.data_parallel import split_step_threads
from convlens.ops import parallel
from convlens.ops.batch_norm_plans import BatchNormPlan
from convlens.utils import set_random_seed
from tests.support.threads import expected_split_threads

L = cl.layers


@pytest.fixture(autouse=True)
def _two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    monkeypatch.delenv("CONVLENS_SPLIT_TRAIN", raising=False)


def _bn_model(seed: int = 0) -> cl.Sequential:
    """Every kind of stage the split handles: conv + max-pool (fused), conv + batch norm + ReLU (folded at
    inference), depthwise + batch norm alone, average pooling, dropout, global pooling, dense + softmax."""
    set_random_seed(seed)
    model = cl.Sequential(
        [
            L.Input((12, 12, 3)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(12, 3, padding="same"),
            L.BatchNormalization(),
            L.ReLU(),
            L.DepthwiseConv2D(3, padding="same"),
            L.BatchNormalization(center=False),
            L.AveragePooling2D(2),
            L.Dropout(0.3),
            L.Conv2D(16, 1, activation="tanh"),
            L.GlobalAveragePooling2D(),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _plain_model(seed: int = 0) -> cl.Sequential:
    """No batch norm (splits with compiled kernels off too)."""
    set_random_seed(seed)
    model = cl.Sequential(
        [
            L.Input((12, 12, 1)),
            L.Conv2D(6, 5, padding="same", activation="tanh"),
            L.AveragePooling2D(2),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dropout(0.5),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _data(n: int, shape: tuple[int, ...], seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, 10, n)


def _step(model: cl.Sequential, x: np.ndarray, y: np.ndarray, split: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """One forward + backward (no update) with the split on or off: loss, outputs, grads, moving statistics;
    every Dropout's generator and the moving statistics start from the same state each time."""
    monkeypatch.setenv("CONVLENS_SPLIT_TRAIN", split)
    saved = {(layer.name, k): v.copy() for layer in model.layers for k, v in layer.state.items()}
    for layer in model.layers:
        if isinstance(layer, L.Dropout):
            layer.rng = np.random.default_rng(7)
    loss, y_pred = model._loss_and_grad(y, x)
    grads = {f"{layer.name}.{k}": g.copy() for layer in model.layers for k, g in layer.grads.items()}
    state = {f"{layer.name}.{k}": v.copy() for layer in model.layers for k, v in layer.state.items()}
    for layer in model.layers:
        for k in layer.state:
            layer.state[k][...] = saved[(layer.name, k)]
    return loss, y_pred.copy(), grads, state


def _assert_grads_close(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        scale = max(float(np.max(np.abs(a[key]))), 0.05)  # (a conv bias before a batch norm: ~0, rounding noise)
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-5 * scale, err_msg=key)


def _split_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    run = data_parallel._run_parts

    def spy(work: Any, exchange: Any) -> None:
        calls.append(1)
        run(work, exchange)

    monkeypatch.setattr(data_parallel, "_run_parts", spy)
    return calls


@pytest.mark.parametrize("threads", [2, 4])
def test_the_split_step_gives_the_unsplit_steps_loss_outputs_grads_and_statistics(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    monkeypatch.setenv("CONVLENS_NUM_THREADS", str(threads))  # (4: more threads than this machine's cores)
    if expected_split_threads() == 1:
        pytest.skip("no split step on this machine (see convlens.inference.split_threads)")
    model = _bn_model()
    n = 32 * threads
    x, y = _data(n, (12, 12, 3))
    if not data_parallel.compiled_for(np.dtype(np.float32)):
        assert split_step_threads(model, n) == 1  # (batch norm splits only with its compiled kernels)
        return
    assert split_step_threads(model, n) == threads
    whole = _step(model, x, y, "0", monkeypatch)
    calls = _split_calls(monkeypatch)
    for _ in range(2):  # (the second time with the twins' plans and buffers from the first)
        split = _step(model, x, y, "1", monkeypatch)
        assert split[0] == pytest.approx(whole[0], rel=1e-6)
        np.testing.assert_allclose(split[1], whole[1], rtol=1e-5, atol=1e-7)
        _assert_grads_close(whole[2], split[2])
        for key in whole[3]:  # moving statistics, updated once from the whole batch's statistics
            np.testing.assert_allclose(split[3][key], whole[3][key], rtol=1e-6, atol=1e-7, err_msg=key)
        assert whole[3][f"{model.layers[3].name}.moving_mean"].any()
    assert len(calls) == 4  # (a forward and a backward each time: the split really ran)


@pytest.mark.parametrize("jit_on", ["1", "0"])
def test_a_model_without_batch_norm_splits_with_or_without_compiled_kernels(
    monkeypatch: pytest.MonkeyPatch, jit_on: str
) -> None:
    monkeypatch.setenv("CONVLENS_JIT", jit_on)
    if expected_split_threads() == 1:
        pytest.skip("no split step on this machine (see convlens.inference.split_threads)")
    model = _plain_model()
    x, y = _data(96, (12, 12, 1))
    assert split_step_threads(model, 96) == 2
    whole = _step(model, x, y, "0", monkeypatch)
    split = _step(model, x, y, "1", monkeypatch)
    assert split[0] == pytest.approx(whole[0], rel=1e-6)
    np.testing.assert_allclose(split[1], whole[1], rtol=1e-5, atol=1e-7)
    _assert_grads_close(whole[2], split[2])  # (a different Dropout mask would change every kernel gradient)


@pytest.mark.parametrize("parts", [2, 4])
def test_batch_norm_parts_exchange_their_sums_and_match_the_whole_batch_bit_for_bit(parts: int) -> None:
    """The two threads' batch norm against the compiled kernels on the whole batch: the same statistics, outputs,
    moving statistics, gamma/beta gradients and input gradients, bit for bit (the pieces of the channel sums are
    the same for an even batch)."""
    if not data_parallel.compiled_for(np.dtype(np.float32)):
        pytest.skip("batch norm splits only with compiled kernels (CONVLENS_JIT=0 here)")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((40, 5, 5, 7)) * 3 + 1).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    for relu in (False, True):
        bn = L.BatchNormalization(momentum=0.9)
        bn.build((None, 5, 5, 7))
        bn.params["gamma"][...] = rng.random(7) + 0.5
        bn.params["beta"][...] = rng.standard_normal(7)
        mm, mv = bn.state["moving_mean"].copy(), bn.state["moving_variance"].copy()
        plan = BatchNormPlan(np.float32, relu)
        assert plan.algorithm == "batch_norm_compiled"
        y_ref = plan.forward(
            x.reshape(-1, 7), bn.params["gamma"], bn.params["beta"], mm, mv, momentum=0.9, epsilon=bn.epsilon,
            training=True,
        )  # fmt: skip
        gx_ref, gg_ref, gb_ref = plan.backward(g.reshape(-1, 7))

        units = [bn if not relu else _bn_relu(bn)]
        twins = step_twins.Twins(units, units, parts)
        twins.exchange = step_twins.Exchange([(40 * i // parts, 40 * (i + 1) // parts) for i in range(parts)])
        outs: list[Any] = [None] * parts

        def run(slot: int, twins: Any = twins, outs: list[Any] = outs) -> None:
            lo, hi = twins.exchange.bounds[slot]
            stage = twins.per_thread[slot][0]
            y = stage.forward(x[lo:hi], training=True)
            outs[slot] = (y, stage.backward(g[lo:hi]))

        data_parallel._run_parts(run, twins.exchange)
        np.testing.assert_array_equal(np.concatenate([o[0] for o in outs]).reshape(-1, 7), y_ref)
        np.testing.assert_array_equal(np.concatenate([o[1] for o in outs]).reshape(-1, 7), gx_ref)
        np.testing.assert_array_equal(bn.grads["gamma"], gg_ref)
        np.testing.assert_array_equal(bn.grads["beta"], gb_ref)
        np.testing.assert_array_equal(bn.state["moving_mean"], mm)  # (updated once, not twice)
        np.testing.assert_array_equal(bn.state["moving_variance"], mv)


def _bn_relu(bn: Any) -> Any:
    from convlens.fusion import FusedBatchNormReLU

    relu = L.ReLU()
    relu.build((None, 5, 5, 7))
    return FusedBatchNormReLU(bn, relu)


def test_each_half_runs_alone_on_a_thread_and_workspace_slot_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    if expected_split_threads() == 1:
        pytest.skip("no split step on this machine (see convlens.inference.split_threads)")
    model = _plain_model()
    x, y = _data(64, (12, 12, 1))
    model._loss_and_grad(y, x)
    seen: list[tuple[int, int, int]] = []
    for slot in (0, 1):
        twin = model._split_twins.per_thread[slot][-1]
        forward = twin.forward

        def spy(h: np.ndarray, training: bool = False, forward: Any = forward) -> np.ndarray:
            seen.append((threading.get_ident(), parallel.num_threads(), parallel.workspace_slot_of_thread()))
            out: np.ndarray = forward(h, training=training)
            return out

        monkeypatch.setattr(twin, "forward", spy)
    model._loss_and_grad(y, x)
    assert len({ident for ident, _, _ in seen}) == 2
    assert {threads for _, threads, _ in seen} == {1}
    assert sorted(slot for _, _, slot in seen) == [0, 1]
    assert parallel.num_threads() == 2
    assert parallel.workspace_slot_of_thread() == 0


def test_split_fits_are_repeatable_and_follow_the_unsplit_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data(256, (12, 12, 3))
    weights = []
    for split in ("1", "1", "0"):
        monkeypatch.setenv("CONVLENS_SPLIT_TRAIN", split)
        model = _bn_model(seed=4)
        history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, shuffle=False)
        assert np.isfinite(history.history["loss"]).all()
        weights.append(model.get_weights())
    for a, b in zip(weights[0], weights[1], strict=True):
        np.testing.assert_array_equal(a, b)  # (the same bits run after run)
    for a, b in zip(weights[0], weights[2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # (SGD: rounding differences stay rounding)


def test_the_split_uses_weights_set_between_steps_and_frozen_layers_stay_out(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _plain_model()
    x, y = _data(64, (12, 12, 1))
    model._loss_and_grad(y, x)  # (twins made)
    model.set_weights([w * 0.5 + 0.01 for w in model.get_weights()])
    model.layers[2].trainable = False
    whole = _step(model, x, y, "0", monkeypatch)
    split = _step(model, x, y, "1", monkeypatch)
    assert split[0] == pytest.approx(whole[0], rel=1e-6)
    _assert_grads_close(
        {k: v for k, v in whole[2].items() if not k.startswith(model.layers[2].name)},
        {k: v for k, v in split[2].items() if not k.startswith(model.layers[2].name)},
    )


def test_a_loss_on_the_outputs_and_sample_weights_split_too(monkeypatch: pytest.MonkeyPatch) -> None:
    set_random_seed(2)
    model = cl.Sequential([L.Input((16, 16, 2)), L.Conv2D(8, 3, activation="relu"), L.Flatten(), L.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(5)
    x = rng.random((64, 16, 16, 2), dtype=np.float32)
    y = rng.random((64, 3), dtype=np.float32)
    weights = rng.random(64)
    if expected_split_threads() == 2:
        assert split_step_threads(model, 64) == 2
    monkeypatch.setenv("CONVLENS_SPLIT_TRAIN", "0")
    whole = model._loss_and_grad(y, x, weights)
    whole_grads = {f"{layer.name}.{k}": g.copy() for layer in model.layers for k, g in layer.grads.items()}
    monkeypatch.setenv("CONVLENS_SPLIT_TRAIN", "1")
    split = model._loss_and_grad(y, x, weights)
    split_grads = {f"{layer.name}.{k}": g.copy() for layer in model.layers for k, g in layer.grads.items()}
    assert split[0] == pytest.approx(whole[0], rel=1e-6)
    _assert_grads_close(whole_grads, split_grads)


def test_the_step_runs_unsplit_where_the_split_is_not_safe_or_not_worth_it(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _plain_model()
    assert split_step_threads(model, 64) == expected_split_threads()
    assert split_step_threads(model, 63) == 1  # (fewer than 32 rows a half)
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "8")
    assert split_step_threads(model, 128) == (4 if expected_split_threads() == 2 else 1)  # (at least 32 rows a part)
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "3")
    assert split_step_threads(model, 1024) == expected_split_threads()  # (a power of two: batch norm's pieces divide)
    monkeypatch.setenv("CONVLENS_SPLIT_TRAIN", "0")
    assert split_step_threads(model, 64) == 1
    monkeypatch.setenv("CONVLENS_SPLIT_TRAIN", "1")
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "1")
    assert split_step_threads(model, 64) == 1
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")

    small = cl.Sequential([L.Input((4,)), L.Dense(2)])
    assert split_step_threads(small, 64) == 1  # (too little work)

    regularized = cl.Sequential([L.Input((12, 12, 1)), L.Conv2D(8, 3, activity_regularizer="l2"), L.Flatten()])
    assert split_step_threads(regularized, 64) == 1  # (a penalty on a whole batch's activations)

    frozen = _bn_model()
    frozen.layers[3].trainable = False  # (a frozen batch norm normalises with the moving statistics)
    assert split_step_threads(frozen, 64) == 1

    class Mine(L.Conv2D):
        pass

    users = cl.Sequential([L.Input((12, 12, 1)), Mine(8, 3), L.Flatten(), L.Dense(2)])
    assert split_step_threads(users, 64) == 1  # (a user's class may keep state in a call)

    first, second = cl.Input((12, 12, 1)), cl.Input((12, 12, 1))
    joined = L.Concatenate()([L.Flatten()(L.Conv2D(8, 3)(first)), L.Flatten()(L.Conv2D(8, 3)(second))])
    two_inputs = cl.Model([first, second], L.Dense(2)(joined))
    assert split_step_threads(two_inputs, 64) == 1  # (one input and one output only)

    mixed = cl.Sequential([L.Input((12, 12, 1)), L.Conv2D(8, 3, dtype="float64"), L.Flatten(), L.Dense(2)])
    assert split_step_threads(mixed, 64) == 1

    wrapped = _plain_model()
    forward = wrapped.layers[-1].forward
    wrapped.layers[-1].forward = lambda h, training=False: forward(h, training=training)  # type: ignore[method-assign]
    assert split_step_threads(wrapped, 64) == 1  # (a twin would call the original layer's method)

    noisy = cl.Sequential([L.Input((12, 12, 1)), L.RandomFlip(), L.Conv2D(8, 3), L.Flatten(), L.Dense(2)])
    assert split_step_threads(noisy, 64) == 1  # (random augmentation draws per call)


@pytest.mark.parametrize("failing_slot", [0, 1])
def test_an_error_in_one_half_reaches_the_caller_and_the_next_step_runs(
    monkeypatch: pytest.MonkeyPatch, failing_slot: int
) -> None:
    """The thread that fails breaks the barrier the other waits at (batch norm's exchange); the caller gets the
    error itself, not the broken barrier, and the model trains on afterwards."""
    if expected_split_threads() == 1:
        pytest.skip("no split step on this machine (see convlens.inference.split_threads)")
    bn = data_parallel.compiled_for(np.dtype(np.float32))  # (else no barrier to break: still the error first)
    model = _bn_model() if bn else _plain_model()
    x, y = _data(64, (12, 12, 3) if bn else (12, 12, 1))
    model._loss_and_grad(y, x)
    twin = model._split_twins.per_thread[failing_slot][0]  # (the fused conv + pool, before the batch norms)

    def boom(h: np.ndarray, training: bool = False) -> np.ndarray:
        raise ValueError("boom in one half")

    monkeypatch.setattr(twin, "forward", boom)
    with pytest.raises(ValueError, match="boom in one half"):
        model._loss_and_grad(y, x)
    monkeypatch.undo()
    monkeypatch.setenv("CONVLENS_NUM_THREADS", "2")
    loss, _ = model._loss_and_grad(y, x)
    assert np.isfinite(loss)


def test_a_float64_model_splits_and_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    set_random_seed(3)
    model = cl.Sequential(
        [
            L.Input((12, 12, 2)),
            L.Conv2D(8, 3, activation="relu", dtype="float64"),
            L.MaxPooling2D(2, dtype="float64"),
            L.Flatten(dtype="float64"),
            L.Dropout(0.25, dtype="float64"),
            L.Dense(10, activation="softmax", dtype="float64"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(4)
    x = rng.random((64, 12, 12, 2))
    y = rng.integers(0, 10, 64)
    assert split_step_threads(model, 64) == expected_split_threads()
    whole = _step(model, x, y, "0", monkeypatch)
    split = _step(model, x, y, "1", monkeypatch)
    assert split[0] == pytest.approx(whole[0], rel=1e-12)
    for key in whole[2]:
        scale = max(float(np.max(np.abs(whole[2][key]))), 0.05)
        np.testing.assert_allclose(split[2][key], whole[2][key], rtol=0, atol=1e-12 * scale, err_msg=key)


def test_fit_with_validation_data_and_class_weights_reports_the_unsplit_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, y = _data(192, (12, 12, 1))
    histories = []
    for split in ("0", "1"):
        monkeypatch.setenv("CONVLENS_SPLIT_TRAIN", split)
        model = _plain_model(seed=9)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(
            x[:128], y[:128], batch_size=64, epochs=2, verbose=0, shuffle=False,
            validation_data=(x[128:], y[128:]), class_weight={k: 1.0 + k / 10 for k in range(10)},
        )  # fmt: skip
        histories.append(history.history)
    assert histories[0].keys() == histories[1].keys()
    for key in histories[0]:
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-5, err_msg=key)


def test_spatial_dropout_and_layer_normalization_keep_the_step_whole() -> None:
    spatial = cl.Sequential([L.Input((12, 12, 4)), L.Conv2D(8, 3), L.SpatialDropout2D(0.2), L.Flatten()])
    assert split_step_threads(spatial, 64) == 1  # (its own mask shape: not the Dropout split)
    norm = cl.Sequential([L.Input((12, 12, 4)), L.Conv2D(8, 3), L.LayerNormalization(), L.Flatten()])
    assert split_step_threads(norm, 64) == 1  # (not on the list of per-sample layers checked here)


def _residual_model(seed: int = 0) -> cl.Model:
    """A Functional model with a skip connection (the conv's output feeds two layers), a batch norm and dropout."""
    set_random_seed(seed)
    inputs = cl.Input((12, 12, 3))
    stem = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    branch = L.Conv2D(8, 3, padding="same")(stem)
    branch = L.ReLU()(L.BatchNormalization()(branch))
    joined = L.Add()([stem, branch])
    pooled = L.Flatten()(L.MaxPooling2D(2)(joined))
    outputs = L.Dense(10, activation="softmax")(L.Dropout(0.4)(pooled))
    model = cl.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_a_functional_model_with_a_skip_connection_splits_and_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _residual_model()
    x, y = _data(64, (12, 12, 3))
    bn = data_parallel.compiled_for(np.dtype(np.float32))
    assert split_step_threads(model, 64) == (expected_split_threads() if bn else 1)
    calls = _split_calls(monkeypatch)
    whole = _step(model, x, y, "0", monkeypatch)
    assert not calls
    split = _step(model, x, y, "1", monkeypatch)
    assert len(calls) == (2 if split_step_threads(model, 64) == 2 else 0)
    assert split[0] == pytest.approx(whole[0], rel=1e-6)
    np.testing.assert_allclose(split[1], whole[1], rtol=1e-5, atol=1e-7)
    _assert_grads_close(whole[2], split[2])
    for key in whole[3]:
        np.testing.assert_allclose(split[3][key], whole[3][key], rtol=1e-6, atol=1e-7, err_msg=key)


@settings(max_examples=20, deadline=None)
@given(
    kernel=st.sampled_from([1, 3, 5]),
    strides=st.sampled_from([1, 2]),
    padding=st.sampled_from(["same", "valid"]),
    channels=st.sampled_from([1, 3]),
    pool=st.sampled_from(["max", "average", "none"]),
    norm=st.booleans(),
    rows=st.sampled_from([64, 77, 128]),
)
def test_split_steps_match_unsplit_steps_over_layer_settings(
    kernel: int, strides: int, padding: str, channels: int, pool: str, norm: bool, rows: int
) -> None:
    """Property: whatever the convolution's settings (and an odd batch: unequal parts), the split step's loss and
    gradients equal the unsplit step's to rounding."""
    set_random_seed(1)
    layers: list[Any] = [L.Input((20, 20, channels)), L.Conv2D(12, kernel, strides=strides, padding=padding)]
    if norm:
        layers += [L.BatchNormalization(), L.ReLU()]
    if pool != "none":
        layers.append(L.MaxPooling2D(2) if pool == "max" else L.AveragePooling2D(2))
    layers += [L.Flatten(), L.Dense(10, activation="softmax")]
    model = cl.Sequential(layers)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _data(rows, (20, 20, channels))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_NUM_THREADS", "2")
        splits = expected_split_threads() if not norm or data_parallel.compiled_for(np.dtype(np.float32)) else 1
        assert split_step_threads(model, rows) == splits
        whole = _step(model, x, y, "0", patch)
        split = _step(model, x, y, "1", patch)
    assert split[0] == pytest.approx(whole[0], rel=1e-6)
    _assert_grads_close(whole[2], split[2])
    for key in whole[3]:
        np.testing.assert_allclose(split[3][key], whole[3][key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_child_gets_helpers_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a fork the parent's helper threads do not exist in the child: a split step there makes its own
    (work handed to the parent's would wait forever). The child trains a step split in two and exits 0."""
    if expected_split_threads() == 1:
        pytest.skip("no split step on this machine (see convlens.inference.split_threads)")
    model = _plain_model()  # (splits with compiled kernels off too)
    x, y = _data(128, (12, 12, 1))
    assert split_step_threads(model, 128) == 2
    calls = _split_calls(monkeypatch)
    model.train_on_batch(x, y)  # (the parent's helpers exist now)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            before = len(calls)
            loss = model.train_on_batch(x, y)
            code = 0 if np.all(np.isfinite(loss)) and len(calls) > before else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if waited[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung (it handed work to helper threads it does not have)")
    assert os.waitstatus_to_exitcode(waited[1]) == 0
