"""The sweep grid: axes, their values, the expanded list of trial configurations.

A grid maps axis names (``kernel_size``, ``strides``, ...) to lists of values. It comes from
command-line comma lists or from a TOML file; every axis left out keeps the course model's value.
The product of the axes, in a fixed order, is the list of :class:`TrialConfig`; ``sample`` draws a
seeded random subset of it.

>>> configs = expand({"kernel_size": [3, 5], "padding": ["same", "valid"]})
>>> [(c.kernel_size, c.padding) for c in configs]
[(3, 'same'), (3, 'valid'), (5, 'same'), (5, 'valid')]
>>> len(sample(configs, 2, seed=0))
2
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from convlens.errors import ConfigError

__all__ = [
    "AXES",
    "DEFAULTS",
    "LIMITS",
    "TrialConfig",
    "expand",
    "grid_from_toml",
    "parse_axis",
    "sample",
]


@dataclass(frozen=True)
class TrialConfig:
    """One point of the grid: everything that decides a trial's result.

    ``dataset`` is 'mnist' (packaged), 'fashion_mnist' or 'cifar10' (see :mod:`convlens.datasets`);
    ``learning_rate`` None means the optimizer's default; ``train_limit``/``test_limit`` None mean the
    whole training / test split (60,000 / 10,000 images for MNIST), otherwise the first N images.
    """

    dataset: str = "mnist"
    kernel_size: int = 3
    strides: int = 1
    padding: str = "same"
    filters: int = 32
    conv_blocks: int = 1
    pooling: str = "max"
    pool_size: int = 2
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float | None = None
    batch_size: int = 32
    epochs: int = 1
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-safe dict (axis order)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"sweep: unknown trial setting(s) {unknown}; expected some of {sorted(names)}.")
        return cls(**dict(data))

    def config_hash(self) -> str:
        """A stable 16-hex-digit digest of the configuration (the key ``--resume`` matches on).

        ``dataset='mnist'`` is left out of the digest, so sweeps recorded before the axis existed still resume.
        """
        data = self.to_dict()
        if data["dataset"] == "mnist":
            del data["dataset"]
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def label(self, keys: Sequence[str] | None = None) -> str:
        """Short text such as ``kernel_size=5 strides=2 padding=valid`` (the given keys, or all)."""
        data = self.to_dict()
        return " ".join(f"{k}={data[k]}" for k in (keys if keys is not None else list(data)))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _learning_rate(text: str) -> float | None:
    if text.strip().lower() in ("default", "none"):
        return None
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError("must be a finite number > 0")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {list(choices)}")
        return value

    return parse


def _activation(text: str) -> str:
    """A Keras activation name convlens knows (refused here, before any trial runs)."""
    from convlens.errors import ConfigError
    from convlens.ops.activations import get_activation

    value = text.strip()
    try:
        get_activation(value)
    except ConfigError as exc:
        raise ValueError(str(exc).split("; ", 1)[-1]) from None
    return value


# Axis -> parser of one value. Order = order of the product (the last axis varies fastest).
AXES: dict[str, Callable[[str], Any]] = {
    "dataset": _choice("mnist", "fashion_mnist", "cifar10"),
    "kernel_size": _positive_int,
    "strides": _positive_int,
    "padding": _choice("same", "valid"),
    "filters": _positive_int,
    "conv_blocks": _positive_int,
    "pooling": _choice("max", "avg", "none"),
    "pool_size": _positive_int,
    "activation": _activation,
    "optimizer": _choice("adam", "sgd", "rmsprop"),
    "learning_rate": _learning_rate,
    "batch_size": _positive_int,
    "epochs": _positive_int,
    "seed": _non_negative_int,
}
# Settings shared by every trial (not axes).
LIMITS: dict[str, Callable[[str], Any]] = {"train_limit": _positive_int, "test_limit": _positive_int}
DEFAULTS: dict[str, Any] = {name: getattr(TrialConfig(), name) for name in (*AXES, *LIMITS)}


def parse_axis(name: str, values: str | int | float | Sequence[Any]) -> list[Any]:
    """Parse one axis from a comma list (``"3,5,7"``) or a TOML value (scalar or list).

    Raises:
        ConfigError: naming the axis and the bad value.

    Shapes:
        no arrays.

    >>> parse_axis("kernel_size", "3,5")
    [3, 5]
    """
    key = name.replace("-", "_")
    parser = AXES.get(key) or LIMITS.get(key)
    if parser is None:
        raise ConfigError(f"sweep: unknown axis {name!r}; expected one of {[*AXES, *LIMITS]}.")
    items: list[Any]
    if isinstance(values, str):
        items = [v for v in values.split(",") if v.strip()]
    elif isinstance(values, (list, tuple)):
        items = list(values)
    else:
        items = [values]
    if not items:
        raise ConfigError(f"sweep: axis `{key}` needs at least one value, got {values!r}.")
    out: list[Any] = []
    for item in items:
        if isinstance(item, bool):
            raise ConfigError(f"sweep: axis `{key}` got a boolean {item!r}.")
        try:
            value = parser(str(item).strip())
        except ValueError as exc:
            raise ConfigError(f"sweep: axis `{key}` value {item!r} is not valid ({exc}).") from None
        if value not in out:
            out.append(value)
    return out


def grid_from_toml(path: str | Path) -> dict[str, list[Any]]:
    """Read a grid from TOML: axis keys at top level or in a ``[grid]`` table (scalars or lists).

    Example file::

        [grid]
        kernel_size = [3, 5, 7]
        strides = [1, 2]
        padding = ["same", "valid"]
        train_limit = 2000

    Raises:
        ConfigError: unknown keys, bad values, unreadable TOML, or no TOML reader on Python 3.10.

    Shapes:
        no arrays.
    """
    import importlib

    try:
        toml_reader: Any = importlib.import_module("tomllib")  # Python 3.11+
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            toml_reader = importlib.import_module("tomli")
        except ModuleNotFoundError:
            raise ConfigError(
                "sweep: reading a TOML grid needs Python 3.11+ (tomllib) or the `tomli` package on 3.10: "
                "pip install tomli."
            ) from None
    try:
        with open(path, "rb") as handle:
            data = toml_reader.load(handle)
    except OSError as exc:
        raise ConfigError(f"sweep: cannot read the grid file {str(path)!r}: {exc}.") from None
    except toml_reader.TOMLDecodeError as exc:
        raise ConfigError(f"sweep: {str(path)!r} is not valid TOML: {exc}.") from None
    table = data.get("grid", data)
    if not isinstance(table, dict):
        raise ConfigError(f"sweep: `grid` in {str(path)!r} must be a table, got {type(table).__name__}.")
    return {key.replace("-", "_"): parse_axis(key, value) for key, value in table.items()}


def expand(grid: Mapping[str, Sequence[Any]]) -> list[TrialConfig]:
    """Every combination of the grid's axes (missing axes keep their defaults), in a fixed order.

    Limits (``train_limit``, ``test_limit``) take one value for the whole sweep.

    Shapes:
        no arrays.
    """
    for key in grid:
        if key not in AXES and key not in LIMITS:
            raise ConfigError(f"sweep: unknown axis {key!r}; expected one of {[*AXES, *LIMITS]}.")
    shared: dict[str, Any] = {}
    for key in LIMITS:
        values = list(grid.get(key, [DEFAULTS[key]]))
        if len(values) != 1:
            raise ConfigError(f"sweep: `{key}` takes one value for the whole sweep, got {values}.")
        shared[key] = values[0]
    axes = [list(grid.get(key, [DEFAULTS[key]])) for key in AXES]
    return [TrialConfig(**dict(zip(AXES, combo, strict=True)), **shared) for combo in itertools.product(*axes)]


def sample(configs: Sequence[TrialConfig], n: int | None, seed: int = 0) -> list[TrialConfig]:
    """A seeded random subset of ``n`` configurations, kept in grid order (all of them when n is None or larger).

    Shapes:
        no arrays.
    """
    if n is None or n >= len(configs):
        return list(configs)
    if n < 1:
        raise ConfigError(f"sweep: `sample` must be a positive integer, got {n}.")
    chosen = sorted(random.Random(seed).sample(range(len(configs)), n))
    return [configs[i] for i in chosen]
