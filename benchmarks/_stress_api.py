"""Seeded bad and edge-case calls to models, optimizers, callbacks, saving, utils and the command line.

Same scheme as _stress_calls.py. Training calls return a ``ModelResult`` so the oracle can look at the
model after the call: a ``fit`` that returns must leave finite weights (NaN weights from an accepted NaN
learning rate, NaN data or a diverging run are silent garbage).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
from _stress_calls import Family, make_cases
from _stress_runner import Case
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


def _callback(name: str) -> Any:
    def call(**kwargs: Any) -> ModelResult:
        from convlens import callbacks

        cb = getattr(callbacks, name)(**kwargs)
        model = _model()
        x, y = _data(np.random.default_rng(0))
        history = model.fit(x, y, epochs=2, batch_size=4, verbose=0, validation_split=0.25, callbacks=[cb])
        return ModelResult(history, model)

    return call


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
            ("optimizer", "opt:adamw", "adamw", "invalid"),
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


def callback_families() -> list[Family]:
    modes = [
        ("mode", "mode:bad", "maximum", "invalid"),
        ("mode", "mode:none", None, "invalid"),
        ("mode", "mode:MAX", "MAX", "edge"),
    ]
    verbose = [
        ("verbose", "verbose:true", True, "edge"),
        ("verbose", "verbose:false", False, "edge"),
        ("verbose", "verbose:1", 1, "edge"),
        ("verbose", "verbose:-1", -1, "invalid"),
        ("verbose", "verbose:3", 3, "any"),
        ("verbose", "verbose:yes", "yes", "invalid"),
        ("verbose", "verbose:none", None, "invalid"),
        ("verbose", "verbose:nan", math.nan, "invalid"),
        ("verbose", "verbose:1.5", 1.5, "invalid"),
    ]
    monitors = [
        ("monitor", "monitor:missing", "val_f1", "any"),
        ("monitor", "monitor:none", None, "invalid"),
        ("monitor", "monitor:int", 3, "invalid"),
    ]
    return [
        Family(
            "callbacks.EarlyStopping",
            _callback("EarlyStopping"),
            lambda r: {"monitor": "val_loss"},
            float_inf_ok=("min_delta", "baseline"),
            int_any=("patience", "start_from_epoch"),
            bools=("restore_best_weights",),
            extra=[*modes, *monitors, *verbose],
            batch_out=False,
            weight=1.5,
        ),
        Family(
            "callbacks.ModelCheckpoint",
            _callback("ModelCheckpoint"),
            lambda r: {"filepath": "ckpt.npz"},
            bools=("save_best_only", "save_weights_only"),
            batch_out=False,
            extra=[
                *modes,
                *monitors,
                *verbose,
                ("filepath", "path:none", None, "invalid"),
                ("filepath", "path:int", 3, "invalid"),
                ("filepath", "path:fmt", "c-{epoch:02d}-{nope}.npz", "invalid"),
                ("filepath", "path:fmt_bad", "c-{epoch:s}.npz", "invalid"),
                ("filepath", "path:dir", ".", "invalid"),
                ("filepath", "path:nested", "a/b/c.npz", "edge"),
                ("save_freq", "freq:0", 0, "invalid"),
                ("save_freq", "freq:str", "batch", "invalid"),
                ("save_freq", "freq:1", 1, "edge"),
                ("save_freq", "freq:huge", 10**12, "edge"),
            ],
        ),
        Family(
            "callbacks.CSVLogger",
            _callback("CSVLogger"),
            lambda r: {"filename": "log.csv"},
            bools=("append",),
            batch_out=False,
            extra=[
                ("filename", "file:none", None, "invalid"),
                ("filename", "file:dir", ".", "invalid"),
                ("separator", "sep:empty", "", "invalid"),
                ("separator", "sep:long", ",,", "invalid"),
                ("separator", "sep:int", 1, "invalid"),
            ],
        ),
        Family(
            "callbacks.LearningRateScheduler",
            _callback("LearningRateScheduler"),
            lambda r: {"schedule": lambda epoch, lr: lr},
            batch_out=False,
            extra=[
                *verbose,
                ("schedule", "sched:nan", lambda e, lr: math.nan, "invalid"),
                ("schedule", "sched:neg", lambda e, lr: -1.0, "invalid"),
                ("schedule", "sched:str", lambda e, lr: "0.1", "invalid"),
                ("schedule", "sched:none", None, "invalid"),
                ("schedule", "sched:np", lambda e, lr: np.float32(lr), "edge"),
                ("schedule", "sched:one_arg", lambda e: 0.01, "edge"),
            ],
        ),
    ]


def _device_node(path: Any) -> Any:
    """'@devnode' stands for a character device (a copy of /dev/null's node) in the worker's folder: never the
    real /dev/null, which a save that replaces its target would destroy."""
    if path != "@devnode":
        return path
    import os
    import stat

    node = "devnode"
    if not os.path.exists(node):
        try:
            os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            os.mkfifo(node)
    return node


def misc_families() -> list[Family]:
    def seed(seed: Any) -> Any:
        from convlens.utils import set_random_seed

        set_random_seed(seed)

    def save(path: Any) -> Any:
        _model().save(_device_node(path))

    def load(path: Any) -> Any:
        from convlens import load_model

        return ModelResult(None, load_model(_device_node(path)))

    def read_idx(source: Any) -> Any:
        from convlens.datasets.idx import read_idx

        return read_idx(_device_node(source))

    paths = [
        ("path", "path:none", None, "invalid"),
        ("path", "path:int", 3, "invalid"),
        ("path", "path:dir", ".", "invalid"),
        ("path", "path:missing", "nope/nope.npz", "any"),
        ("path", "path:empty", "", "invalid"),
        ("path", "path:nul", "a\x00b.npz", "invalid"),
        ("path", "path:devnode", "@devnode", "invalid"),
        ("path", "path:list", ["a.npz"], "invalid"),
        ("path", "path:bytes", b"m.npz", "any"),
        ("path", "path:long", "x" * 5000 + ".npz", "invalid"),
    ]
    return [
        Family("utils.set_random_seed", seed, lambda r: {"seed": 1}, int_any=("seed",), batch_out=False, weight=0.3),
        Family("Sequential.save", save, lambda r: {"path": "m.npz"}, extra=paths, batch_out=False, weight=0.5),
        Family("load_model", load, lambda r: {"path": "m.npz"}, extra=paths[:-2], batch_out=False, weight=0.5),
        Family(
            "read_idx",
            read_idx,
            lambda r: {"source": b"\x00\x00\x08\x01\x00\x00\x00\x01\x05"},
            batch_out=False,
            weight=0.4,
            extra=[("source", f"src:{k}", v, "invalid") for _, k, v, _ in paths[:8]],
        ),
    ]


# ----- the command line --------------------------------------------------------------------------------------
_GARBAGE = [
    ("-1", "any"),
    ("0", "any"),
    ("nan", "invalid"),
    ("inf", "invalid"),
    ("abc", "invalid"),
    ("1e309", "invalid"),
    ("", "invalid"),
    ("1000000000000", "any"),
    ("2.5", "any"),
    ("-0", "any"),
    ("1_000", "any"),
    ("0x10", "invalid"),
]


def _cli(argv: list[str]) -> Any:
    from convlens.cli import main

    code = main(argv)
    if code != 0:
        raise SystemExit(code)
    return 0


def cli_cases(rng: random.Random, count: int) -> list[Case]:
    """Command lines with one flag value replaced by garbage (plus missing and damaged files)."""
    train = ["train", "--limit", "40", "--epochs", "1", "--batch-size", "16", "--verbose", "0"]
    sweep = ["sweep", "run", "--train-limit", "20", "--test-limit", "20", "--workers", "0", "--dry-run"]
    templates: list[tuple[list[str], list[str], float, float]] = [
        (
            train,
            [
                "--epochs",
                "--batch-size",
                "--filters",
                "--kernel-size",
                "--strides",
                "--pool-size",
                "--learning-rate",
                "--validation-split",
                "--seed",
                "--limit",
                "--activation",
                "--optimizer",
                "--verbose",
                "--padding",
                "--pooling",
            ],
            30.0,
            1.0,
        ),
        (
            sweep,
            [
                "--kernel-size",
                "--strides",
                "--padding",
                "--filters",
                "--conv-blocks",
                "--pooling",
                "--pool-size",
                "--activation",
                "--optimizer",
                "--learning-rate",
                "--batch-size",
                "--epochs",
                "--seed",
                "--sample",
                "--workers",
            ],
            10.0,
            1.5,
        ),
        (["summary", "conv4k3, maxpool2, flatten, dense10"], ["--filters", "--kernel-size"], 10.0, 0.5),
        (
            ["summary", "--detail"],
            ["--filters", "--kernel-size", "--strides", "--pool-size", "--padding", "--columns", "--format"],
            10.0,
            1.0,
        ),
        (
            ["explain", "--input", "5x5"],
            [
                "--input",
                "--kernel",
                "--stride",
                "--padding",
                "--dilation",
                "--pool-size",
                "--step",
                "--max-steps",
                "--bias",
                "--seed",
            ],
            10.0,
            1.5,
        ),
    ]
    specs = [
        "conv1000000000k3",
        "input100000x100000x3, conv8k3",
        "dense1000000000000",
        "input0x5x1, conv2k3",
        "conv4k3d1000000same",
        "maxpool1000000000000same",
        "conv4k3, ," * 5000,
        "input2x2x1, conv4k99",
        "dropout1.5",
        "dropout0.99999999999",
        "conv4k3g3",
        "input28x28x3, conv4k3g3",
        "zeropad99999999",
        "dwconvk3m0",
        "input" + "9" * 400,
        "conv4k3-nope",
        "[" * 10000,
    ]
    explain_inputs = [
        "100000x100000",
        "ramp:0x5",
        "digit:99999",
        "digit:-1",
        "1,2;3",
        "1e400,1",
        "nan,nan;1,1",
        "checker:99999x99999",
        "random:3x3x3",
        "/dev/null",
        "/",
    ]
    cases: list[Case] = []
    weights = [t[3] for t in templates]
    for _ in range(count):
        roll = rng.random()
        if roll < 0.12:
            spec = rng.choice(specs)
            argv, kind, label = ["summary", spec], "any", f"summary SPEC={spec[:30]!r}"
            timeout = 10.0
        elif roll < 0.2:
            value = rng.choice(explain_inputs)
            argv, kind, label = ["explain", "--input", value], "any", f"explain --input {value}"
            timeout = 10.0
        elif roll < 0.25:
            target = rng.choice(["nope.npz", ".", "/dev/null", "m.npz"])
            kind = "edge" if target == "m.npz" else "invalid"
            argv, label, timeout = ["visualize", "filters", target, "-o", "f.png"], f"visualize filters {target}", 20.0

            def run(argv: list[str] = argv, target: str = target) -> Any:
                if target == "m.npz":
                    _model().save("m.npz")
                return _cli(argv)

            cases.append(Case("cli.visualize", label, run, kind, None, None, timeout))
            continue
        else:
            base, flags, timeout, _ = rng.choices(templates, weights)[0]
            flag = rng.choice(flags)
            value, kind = rng.choice(_GARBAGE)
            argv = [*base, flag, value]
            label = f"{' '.join(base[:2])} {flag} {value!r}"
        cases.append(Case(f"cli.{argv[0]}", label, lambda argv=argv: _cli(argv), kind, None, None, timeout))
    for optimizer in ("adamw", "sgdd", "Adam!"):  # a sweep must refuse a bad value before training anything
        argv = [
            "sweep",
            "run",
            "--optimizer",
            optimizer,
            "--train-limit",
            "20",
            "--test-limit",
            "20",
            "--workers",
            "0",
            "--db",
            f"sweep-{optimizer}.db",
        ]
        cases.append(
            Case(
                "cli.sweep",
                f"sweep run --optimizer {optimizer}",
                lambda argv=argv: _cli(argv),
                "invalid",
                None,
                None,
                30.0,
            )
        )
    return cases


def _with_model_oracle(families: list[Family]) -> list[Family]:
    for family in families:
        family.result_check = _model_check
        # NaN gradients in, NaN weights out: the documented result of a raw optimizer step (fit guards its own).
        family.extra = [(a, w, v, "any" if k == "nan-in" else k) for a, w, v, k in family.extra]
        if family.name == "Optimizer.apply":
            family.result_check = lambda result: _model_check(result, finite=False)
        family.compare = lambda result, canonical: True  # fresh random weights each call: nothing to compare
    return families


def _idx_check(result: Any) -> str | None:
    if isinstance(result, ModelResult):
        return _model_check(result)
    if result is None:
        return None
    if isinstance(result, np.ndarray) and result.dtype.kind in "uif":
        return None
    return f"unexpected result {type(result).__name__}"


def api_cases(rng: random.Random, counts: dict[str, int]) -> list[Case]:
    misc = misc_families()
    for family in misc:
        family.result_check = _idx_check
    return [
        *make_cases(_with_model_oracle(model_families()), counts["models"], rng, "models"),
        *make_cases(_with_model_oracle(optimizer_families()), counts["optimizers"], rng, "optimizers"),
        *make_cases(_with_model_oracle(callback_families()), counts["callbacks"], rng, "callbacks"),
        *make_cases(misc, counts["misc"], rng, "misc"),
        *cli_cases(rng, counts["cli"]),
    ]
