"""Seeded bad calls to callbacks, saving, utils and read_idx, and bad command lines (see reliability_stress.py)."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
from _stress_families import Family, make_cases
from _stress_models import (
    ModelResult,
    _data,
    _model,
    _model_check,
    _with_model_oracle,
    model_families,
    optimizer_families,
)
from _stress_runner import Case


def _callback(name: str) -> Any:
    def call(**kwargs: Any) -> ModelResult:
        from convlens import callbacks

        cb = getattr(callbacks, name)(**kwargs)
        model = _model()
        x, y = _data(np.random.default_rng(0))
        history = model.fit(x, y, epochs=2, batch_size=4, verbose=0, validation_split=0.25, callbacks=[cb])
        return ModelResult(history, model)

    return call


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
