"""``{"class_name": ..., "config": ...}`` records for the Keras-style objects a saved config names: losses,
regularizers, constraints and learning-rate schedules (each module keeps its table of classes).

>>> from convlens.regularizers import L2
>>> record = serialize(L2(0.5), {"L2": L2}, "regularizers", "regularizer")
>>> record, deserialize(record, {"L2": L2}, "regularizers").l2
({'class_name': 'L2', 'config': {'l2': 0.5}}, 0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convlens.errors import ConfigError, short_repr

__all__ = ["deserialize", "lookup", "serialize"]


def serialize(obj: Any, classes: Mapping[str, Any], module: str, kind: str) -> dict[str, Any]:
    """``obj``'s class name and ``get_config()``.

    Raises:
        ConfigError: for a class that is not in ``classes`` (a user's subclass), which a config cannot name.
    """
    name = type(obj).__name__
    if classes.get(name) is not type(obj):
        raise ConfigError(f"{module}.serialize: a custom {kind} ({name}) cannot be saved in a config.")
    return {"class_name": name, "config": obj.get_config()}


def deserialize(record: Any, classes: Mapping[str, Any], module: str) -> Any:
    """The object :func:`serialize` described.

    Raises:
        ConfigError: for an unknown class name or a malformed record.
    """
    cls = classes.get(record.get("class_name", "")) if isinstance(record, dict) else None
    config = record.get("config") or {} if isinstance(record, dict) else None
    if cls is None or not isinstance(config, dict):
        raise ConfigError(
            f"{module}.deserialize: expected a class_name in {sorted(classes)} and a config, got {record!r}."
        )
    return cls.from_config(config)


def lookup(
    identifier: Any,
    base: type,
    strings: Mapping[str, Any],
    classes: Mapping[str, Any],
    module: str,
    *,
    owner: str | None,
    name: str,
    example: str,
) -> Any:
    """The object ``identifier`` names for a module's ``get``: None, a ``base`` instance, a Keras string in
    ``strings`` or a config record of one of ``classes``.

    Raises:
        ConfigError: for anything else, naming ``owner``, the argument ``name`` and an ``example``.
    """
    if identifier is None or isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str) and identifier in strings:
        return strings[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in classes:
        return deserialize(identifier, classes, module)
    prefix = f"{owner}: " if owner else ""
    choices = ", ".join(repr(s) for s in strings)
    raise ConfigError(
        f"{prefix}unknown `{name}` {short_repr(identifier)}; use None, one of {choices}, or an object such as "
        f"{example}."
    )
