"""Layers keep one plan per recent input shape: no rebuilds when two shapes alternate, bounded in number."""

from __future__ import annotations

import threading

import numpy as np

import convlens as cl
from convlens.ops import conv_plan
from convlens.ops.plan_cache import ShapePlans

L = cl.layers


def test_the_oldest_plan_goes_when_a_new_shape_comes() -> None:
    plans: ShapePlans[str] = ShapePlans(size=2)
    built: list[str] = []

    def build(name: str) -> str:
        built.append(name)
        return name

    for key in ["a", "b", "a", "c", "a", "b"]:
        assert plans.get(key, lambda key=key: build(key)) == key
    assert built == ["a", "b", "c", "a", "b"]  # 'c' pushed out the oldest, 'a'; 'a' then pushed out 'b'
    assert plans.get("a", lambda: build("never")) == "a"
    assert len(plans) == 2
    plans.clear()
    assert len(plans) == 0


def test_threads_that_build_the_same_key_at_once_get_one_plan() -> None:
    plans: ShapePlans[object] = ShapePlans()
    barrier = threading.Barrier(4)
    got: list[object] = []

    def build() -> object:
        barrier.wait()  # every thread is inside build before any stores its plan
        return object()

    threads = [threading.Thread(target=lambda: got.append(plans.get("k", build))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(plan) for plan in got}) == 1


def test_alternating_piece_sizes_build_each_plan_once(monkeypatch) -> None:
    built: list[tuple[int, ...]] = []
    real = conv_plan.Conv2DPlan.__init__

    def counting(self, x_shape, *args, **kwargs) -> None:
        built.append(tuple(x_shape))
        real(self, x_shape, *args, **kwargs)

    monkeypatch.setattr(conv_plan.Conv2DPlan, "__init__", counting)
    model = cl.Sequential(
        [L.Input((10, 10, 2)), L.Conv2D(4, 3), L.SeparableConv2D(3, 3), L.Conv2DTranspose(2, 3), L.Flatten()]
    )
    x = np.random.default_rng(0).random((12, 10, 10, 2), dtype=np.float32)
    for _ in range(3):
        for rows in (5, 2):
            model._forward(x[:rows], training=False)
    assert len(built) == len(set(built))  # each (layer, shape) once
    assert sorted({shape[0] for shape in built}) == [2, 5]


def test_a_deep_copy_of_a_trained_model_starts_with_its_own_plans() -> None:
    import copy

    model = cl.course.build_course_model(filters=4)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((40, 28, 28, 1), dtype=np.float32)
    model.fit(x, np.arange(40) % 10, epochs=1, batch_size=16, verbose=0)
    expected = model.predict(x, verbose=0)
    twin = copy.deepcopy(model)
    stage, twin_stage = model.stages()[0], twin.stages()[0]  # (the course model's fused conv + pool)
    assert len(stage._plans) > 0
    assert len(twin_stage._plans) == 0
    assert twin_stage._plans is not stage._plans
    np.testing.assert_array_equal(twin.predict(x, verbose=0), expected)
    plans = ShapePlans[str](size=3)
    plans.get("k", lambda: "plan")
    restored = copy.copy(plans)  # (any copy of the cache itself starts empty, with its own lock)
    assert restored.size == 3
    assert restored.get("k", lambda: "new") == "new"
