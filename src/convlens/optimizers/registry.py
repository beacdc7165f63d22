"""``optimizers.get``: an optimizer from a Keras name, a config dict or an instance."""

from __future__ import annotations

from typing import Any

from convlens.errors import ConfigError, short_repr
from convlens.optimizers.base import Optimizer
from convlens.optimizers.rules import SGD, Adam, AdamW, RMSprop

__all__ = ["get"]

_OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}


def get(identifier: str | Optimizer | dict[str, Any]) -> Optimizer:
    """Resolve ``'sgd'``/``'adam'``/``'adamw'``/``'rmsprop'`` (any case), an instance, or a config dict.

    A config dict is ``{"class_name": "Adam", "config": {...}}`` as :meth:`Optimizer.get_config`
    produces. Instances are returned as they are.

    Raises:
        ConfigError: on an unknown name, listing the valid ones.

    Shapes:
        no arrays.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    valid = ", ".join(repr(n) for n in _OPTIMIZERS)
    if isinstance(identifier, dict):
        class_name = identifier.get("class_name")
        config = identifier.get("config", {})
        if not isinstance(class_name, str) or class_name.lower() not in _OPTIMIZERS or not isinstance(config, dict):
            raise ConfigError(
                f"optimizers.get: config dict must have a `class_name` in {valid} and a `config` dict, "
                f"got {short_repr(identifier)}."
            )
        return _OPTIMIZERS[class_name.lower()].from_config(config)
    if isinstance(identifier, str) and identifier.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[identifier.lower()]()  # type: ignore[call-arg]  # every optimizer has a default rate
    raise ConfigError(f"optimizers.get: unknown optimizer {short_repr(identifier)}; valid names are {valid}.")
