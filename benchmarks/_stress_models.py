"""Seeded bad and edge-case calls to models, optimizers and callbacks (families for _stress_families).

Same scheme as _stress_calls.py. Training calls return a ``ModelResult`` so the oracle can look at the
model after the call: a ``fit`` that returns must leave finite weights (NaN weights from an accepted NaN
learning rate, NaN data or a diverging run are silent garbage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from _stress_families import Family
from tests.support.bad_values import FLOAT_VALUES


@dataclass
class ModelResult:
    value: Any
    model: Any


def _model_check(result: Any, finite: bool = True) -> str | None:
    if not isinstance(result, ModelResult):
        return f"unexpected result {type(result).__name__}"
    for w in result.model.get_weights():
        if w.dtype.kind != "f":
            return f"a weight has dtype {w.dtype}"
        if finite and not np.all(np.isfinite(w)):
            return "returned with non-finite weights"
    value = result.value
    if isinstance(value, np.ndarray) and value.dtype.kind != "f":
        return f"result dtype {value.dtype}"
    if isinstance(value, list) and not all(isinstance(v, float) for v in value):
        return f"metrics are not floats: {value!r}"
    return None


def _data(rng: np.random.Generator, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((n, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, n)


def _model(compiled: bool = True) -> Any:
    import convlens as cl

    model = cl.Sequential(
        [
            cl.layers.Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)),
            cl.layers.MaxPooling2D(),
            cl.layers.Flatten(),
            cl.layers.Dense(3, activation="softmax"),
        ]
    )
    if compiled:
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return model


def _fit(**kwargs: Any) -> ModelResult:
    model = _model()
    return ModelResult(model.fit(**kwargs), model)


def _evaluate(**kwargs: Any) -> ModelResult:
    model = _model()
    return ModelResult(model.evaluate(**kwargs), model)


def _predict(**kwargs: Any) -> ModelResult:
    model = _model(compiled=False)
    return ModelResult(model.predict(**kwargs), model)


def _train_on_batch(**kwargs: Any) -> ModelResult:
    model = _model()
    return ModelResult(model.train_on_batch(**kwargs), model)


def _compile_then_step(x: Any, y: Any, **kwargs: Any) -> ModelResult:
    model = _model(compiled=False)
    model.compile(**kwargs)
    return ModelResult(model.train_on_batch(x, y), model)


def _set_weights(weights: Any) -> ModelResult:
    model = _model()
    model.set_weights(weights)
    return ModelResult(None, model)


def _build(input_shape: Any) -> ModelResult:
    import convlens as cl

    model = cl.Sequential([cl.layers.Conv2D(2, 3), cl.layers.Flatten(), cl.layers.Dense(3)])
    model.build(input_shape)
    return ModelResult(None, model)


def _optimizer(name: str) -> Any:
    def call(**kwargs: Any) -> ModelResult:
        from convlens import optimizers

        opt = getattr(optimizers, name)(**kwargs)
        w = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
        for _ in range(3):
            opt.apply([w], [np.full_like(w, 0.5)])

        class _Holder:
            def get_weights(self) -> list[np.ndarray]:
                return [w]

        return ModelResult(None, _Holder())

    return call


def _apply(params: Any, grads: Any) -> Any:
    from convlens import optimizers

    opt = optimizers.Adam()
    opt.apply(params, grads)
    return ModelResult(None, type("H", (), {"get_weights": lambda self: list(params)})())


def _verbose_values() -> list[tuple[str, str, Any, str]]:
    return [
        ("verbose", "verbose:3", 3, "invalid"),
        ("verbose", "verbose:-1", -1, "invalid"),
        ("verbose", "verbose:none", None, "invalid"),
        ("verbose", "verbose:yes", "yes", "invalid"),
        ("verbose", "verbose:1.5", 1.5, "invalid"),
        ("verbose", "verbose:nan", math.nan, "invalid"),
        ("verbose", "verbose:true", True, "edge"),
        ("verbose", "verbose:np2", np.int64(2), "edge"),
        ("verbose", "verbose:auto", "auto", "edge"),
    ]


def _callbacks_values() -> list[tuple[str, str, Any, str]]:
    from convlens import callbacks

    return [
        ("callbacks", "callbacks:single", callbacks.History(), "invalid"),
        ("callbacks", "callbacks:str", "early", "invalid"),
        ("callbacks", "callbacks:[1]", [1], "invalid"),
        ("callbacks", "callbacks:[None]", [None], "invalid"),
        ("callbacks", "callbacks:tuple", (callbacks.History(),), "edge"),
        ("callbacks", "callbacks:empty", [], "edge"),
        ("callbacks", "callbacks:dict", {"a": 1}, "invalid"),
        ("callbacks", "callbacks:class", [callbacks.History], "invalid"),
    ]


def _validation_data_values() -> list[tuple[str, str, Any, str]]:
    rng = np.random.default_rng(3)
    x, y = _data(rng, 4)
    return [
        ("validation_data", "vd:one", (x,), "invalid"),
        ("validation_data", "vd:three", (x, y, y), "any"),
        ("validation_data", "vd:array", x, "invalid"),
        ("validation_data", "vd:str", "val", "invalid"),
        ("validation_data", "vd:mismatch", (x, y[:2]), "invalid"),
        ("validation_data", "vd:wrong_shape", (x[..., 0], y), "invalid"),
        ("validation_data", "vd:none_pair", (None, None), "invalid"),
        ("validation_data", "vd:empty", (x[:0], y[:0]), "any"),
        ("validation_data", "vd:list", [x, y], "edge"),
        ("validation_data", "vd:nan", (np.full_like(x, np.nan), y), "any"),
    ]


def _label_values() -> list[tuple[str, str, Any, str]]:
    return [
        ("y", "labels:out_of_range", np.full(8, 7), "invalid"),
        ("y", "labels:negative", np.full(8, -1), "invalid"),
        ("y", "labels:float_frac", np.full(8, 0.5), "invalid"),
        ("y", "labels:nan", np.full(8, np.nan), "invalid"),
        ("y", "labels:float_int", np.ones(8), "edge"),
        ("y", "labels:2d", np.ones((8, 1), np.int64), "edge"),
        ("y", "labels:str", np.full(8, "1"), "invalid"),
        ("y", "labels:short", np.ones(5, np.int64), "invalid"),
        ("y", "labels:none", None, "invalid"),
    ]


def _epochs_values() -> list[tuple[str, str, Any, str]]:
    return [
        ("epochs", "epochs:0", 0, "edge"),
        ("epochs", "epochs:-1", -1, "invalid"),
        ("epochs", "epochs:true", True, "invalid"),
        ("epochs", "epochs:2.0", 2.0, "invalid"),
        ("epochs", "epochs:nan", math.nan, "invalid"),
        ("epochs", "epochs:none", None, "invalid"),
        ("epochs", "epochs:str", "2", "invalid"),
        ("epochs", "epochs:np", np.int64(2), "edge"),
    ]


def model_families() -> list[Family]:
    def fit_base(r: np.random.Generator) -> dict[str, Any]:
        x, y = _data(r)
        return {
            "x": x,
            "y": y,
            "batch_size": 4,
            "epochs": 1,
            "verbose": 0,
            "callbacks": None,
            "validation_split": 0.0,
            "validation_data": None,
            "shuffle": True,
            "initial_epoch": 0,
        }

    def eval_base(r: np.random.Generator) -> dict[str, Any]:
        x, y = _data(r)
        return {"x": x, "y": y, "batch_size": 4, "verbose": 0}

    def opt_values() -> list[tuple[str, str, Any, str]]:
        from convlens import optimizers

        return [
            ("optimizer", "opt:ADAM", "ADAM", "edge"),
            ("optimizer", "opt:adamw", "adamw", "edge"),  # Keras's AdamW (invalid before the Keras API work)
            ("optimizer", "opt:none", None, "any"),
            ("optimizer", "opt:int", 1, "invalid"),
            ("optimizer", "opt:dict", {"class_name": "Adam", "config": {"learning_rate": math.nan}}, "invalid"),
            ("optimizer", "opt:dict_bad", {"class_name": "Adam", "config": {"lr": 1}}, "invalid"),
            ("optimizer", "opt:instance", optimizers.SGD(0.1), "edge"),
            ("optimizer", "opt:class", optimizers.SGD, "any"),
            ("loss", "loss:none", None, "invalid"),
            ("loss", "loss:unknown", "hinge2", "invalid"),
            ("loss", "loss:int", 3, "invalid"),
            ("loss", "loss:MSE", "MSE", "any"),
            ("metrics", "metrics:str", "accuracy", "invalid"),
            ("metrics", "metrics:[none]", [None], "invalid"),
            ("metrics", "metrics:[unknown]", ["f1_score_x"], "invalid"),
            ("metrics", "metrics:dict", {"a": "accuracy"}, "any"),
            ("metrics", "metrics:[acc]", ["acc"], "edge"),
        ]

    def compile_base(r: np.random.Generator) -> dict[str, Any]:
        x, y = _data(r)
        return {"x": x, "y": y, "optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}

    def weights_values() -> list[tuple[str, str, Any, str]]:
        good = _model().get_weights()
        return [
            ("weights", "w:none", None, "invalid"),
            ("weights", "w:[none]", [None] * len(good), "invalid"),
            ("weights", "w:short", good[:-1], "invalid"),
            ("weights", "w:str", [np.full(w.shape, "a") for w in good], "invalid"),
            ("weights", "w:object", [w.astype(object) for w in good], "invalid"),
            ("weights", "w:complex", [w.astype(np.complex64) for w in good], "invalid"),
            ("weights", "w:nan", [np.full_like(w, np.nan) for w in good], "invalid"),
            ("weights", "w:transposed", [w.T for w in good], "any"),
            ("weights", "w:float64", [w.astype(np.float64) for w in good], "edge"),
            ("weights", "w:int", [w.astype(np.int64) for w in good], "any"),
            ("weights", "w:lists", [w.tolist() for w in good], "edge"),
            ("weights", "w:broadcast", [np.broadcast_to(np.float32(0.1), w.shape) for w in good], "edge"),
        ]

    def shape_values() -> list[tuple[str, str, Any, str]]:
        return [
            ("input_shape", "shape:none", None, "invalid"),
            ("input_shape", "shape:neg", (None, -1, 6, 1), "invalid"),
            ("input_shape", "shape:zero", (None, 0, 6, 1), "invalid"),
            ("input_shape", "shape:float", (None, 6.0, 6, 1), "invalid"),
            ("input_shape", "shape:str", "6x6x1", "invalid"),
            ("input_shape", "shape:huge", (None, 10**6, 10**6, 3), "any"),
            ("input_shape", "shape:huge2", (None, 2**40, 3, 1), "any"),
            ("input_shape", "shape:short", (6, 6, 1), "any"),
            ("input_shape", "shape:np", (None, np.int64(6), 6, 1), "edge"),
            ("input_shape", "shape:bool", (None, True, 6, 1), "invalid"),
        ]

    return [
        Family(
            "Sequential.fit",
            _fit,
            fit_base,
            arrays=("x",),
            ints=("batch_size",),
            int_any=("initial_epoch",),
            floats=("validation_split",),
            bools=("shuffle",),
            weight=5,
            batch_out=False,
            extra=[
                *_verbose_values(),
                *_callbacks_values(),
                *_validation_data_values(),
                *_label_values(),
                *_epochs_values(),
            ],
        ),
        Family(
            "Sequential.evaluate",
            _evaluate,
            eval_base,
            arrays=("x",),
            ints=("batch_size",),
            weight=2,
            batch_out=False,
            extra=[*_verbose_values(), *_label_values()],
        ),
        Family(
            "Sequential.predict",
            _predict,
            lambda r: {"x": _data(r)[0], "batch_size": 4, "verbose": 0},
            arrays=("x",),
            ints=("batch_size",),
            weight=2,
            extra=_verbose_values(),
        ),
        Family(
            "Sequential.train_on_batch",
            _train_on_batch,
            lambda r: {"x": _data(r)[0], "y": _data(r)[1]},
            arrays=("x",),
            extra=_label_values(),
            batch_out=False,
        ),
        Family("Sequential.compile", _compile_then_step, compile_base, extra=opt_values(), weight=1.5, batch_out=False),
        Family(
            "Sequential.set_weights",
            _set_weights,
            lambda r: {"weights": _model().get_weights()},
            extra=weights_values(),
            batch_out=False,
        ),
        Family(
            "Sequential.build",
            _build,
            lambda r: {"input_shape": (None, 6, 6, 1)},
            extra=shape_values(),
            batch_out=False,
            weight=0.7,
        ),
    ]


def optimizer_families() -> list[Family]:
    common = {"floats": ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"), "batch_out": False}
    return [
        Family(
            "optimizers.SGD",
            _optimizer("SGD"),
            lambda r: {"learning_rate": 0.01},
            extra=[
                ("learning_rate", f"float:{k}", v, "invalid" if k == "inf" else kind) for k, v, kind in FLOAT_VALUES
            ],
            bools=("nesterov",),
            **{**common, "floats": (*common["floats"], "momentum")},
        ),
        Family(
            "optimizers.Adam",
            _optimizer("Adam"),
            lambda r: {"learning_rate": 0.001},
            extra=[
                ("learning_rate", f"float:{k}", v, "invalid" if k == "inf" else kind) for k, v, kind in FLOAT_VALUES
            ],
            bools=("amsgrad",),
            **{**common, "floats": (*common["floats"], "beta_1", "beta_2", "epsilon")},
        ),
        Family(
            "optimizers.RMSprop",
            _optimizer("RMSprop"),
            lambda r: {"learning_rate": 0.001},
            extra=[
                ("learning_rate", f"float:{k}", v, "invalid" if k == "inf" else kind) for k, v, kind in FLOAT_VALUES
            ],
            bools=("centered",),
            **{**common, "floats": (*common["floats"], "rho", "momentum", "epsilon")},
        ),
        Family(
            "Optimizer.apply",
            _apply,
            lambda r: {"params": [np.ones((3, 2), np.float32)], "grads": [np.ones((3, 2), np.float32)]},
            batch_out=False,
            weight=0.6,
            extra=[
                ("params", "p:none", None, "invalid"),
                ("params", "p:[none]", [None], "invalid"),
                ("params", "p:array", np.ones((3, 2), np.float32), "invalid"),
                ("grads", "g:[none]", [None], "invalid"),
                ("grads", "g:shape", [np.ones((2, 3))], "invalid"),
                ("grads", "g:str", [np.full((3, 2), "a")], "invalid"),
                ("grads", "g:nan", [np.full((3, 2), np.nan, np.float32)], "nan-in"),
                ("params", "p:int", [np.ones((3, 2), np.int64)], "invalid"),
                ("params", "p:readonly", [np.broadcast_to(np.float32(1), (3, 2))], "invalid"),
            ],
        ),
    ]


def _with_model_oracle(families: list[Family]) -> list[Family]:
    for family in families:
        family.result_check = _model_check
        # NaN gradients in, NaN weights out: the documented result of a raw optimizer step (fit guards its own).
        family.extra = [(a, w, v, "any" if k == "nan-in" else k) for a, w, v, k in family.extra]
        if family.name == "Optimizer.apply":
            family.result_check = lambda result: _model_check(result, finite=False)
        family.compare = lambda result, canonical: True  # fresh random weights each call: nothing to compare
    return families
