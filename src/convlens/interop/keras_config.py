"""Layer configs between convlens and Keras 3's serialisation format (``config.json`` of a ``.keras`` archive).

convlens uses Keras's argument names and weight layouts, so a layer maps to the Keras layer of the same
class with the same weights in the same order. Two differences: convlens convolutions accept explicit
padding (written as a ``ZeroPadding`` layer, then 'valid'), and a Keras ``LeakyReLU`` reads back as a
convlens ``ReLU(negative_slope=...)``.

Reading never executes anything: only the classes below are recognised; a ``Lambda`` layer or a
custom (registered) class is refused.

Shapes:
    as the layers: Keras and convlens agree (kernels (KH, KW, C / G, F), Flatten (H, W, C)).
"""

from __future__ import annotations

from typing import Any

from convlens.errors import ConfigError
from convlens.layers.base import Layer

__all__ = ["KERAS_LAYERS", "from_keras_layer", "h5_paths", "to_keras_layers"]

_DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}

# Keras class -> the config keys convlens takes from it (everything else is Keras-only bookkeeping:
# regularizers, constraints, initializer objects, ... which matter for training in Keras only).
KERAS_LAYERS: dict[str, tuple[str, ...]] = {
    "Conv1D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "activation", "use_bias"),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "activation", "use_bias"),
    "DepthwiseConv2D": (
        "kernel_size",
        "strides",
        "padding",
        "depth_multiplier",
        "dilation_rate",
        "activation",
        "use_bias",
    ),
    "MaxPooling1D": ("pool_size", "strides", "padding"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling1D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "GlobalMaxPooling1D": ("keepdims",),
    "GlobalMaxPooling2D": ("keepdims",),
    "GlobalAveragePooling1D": ("keepdims",),
    "GlobalAveragePooling2D": ("keepdims",),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "Dense": ("units", "activation", "use_bias"),
    "Flatten": (),
    "Dropout": ("rate", "seed"),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "LeakyReLU": ("negative_slope",),
    "Softmax": ("axis",),
    "ZeroPadding1D": ("padding",),
    "ZeroPadding2D": ("padding",),
}
_ALIASES = {"MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "AvgPool1D": "AveragePooling1D"}
_ALIASES.update({"AvgPool2D": "AveragePooling2D", "Convolution2D": "Conv2D", "Convolution1D": "Conv1D"})
_SNAKE = {"ReLU": "re_lu", "LeakyReLU": "leaky_re_lu"}


def _snake(class_name: str) -> str:
    import re

    if class_name in _SNAKE:
        return _SNAKE[class_name]
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _entry(class_name: str, config: dict[str, Any], input_shape: Any) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": class_name,
        "config": config,
        "registered_name": None,
        "build_config": {"input_shape": [None, *(int(s) for s in input_shape[1:])]},
    }


def to_keras_layers(layers: list[Layer]) -> list[tuple[dict[str, Any], Layer | None]]:
    """Keras config entries for ``layers`` (built), each with the convlens layer whose weights it holds.

    Raises:
        ConfigError: for a layer Keras has no equivalent of.
    """
    entries: list[tuple[dict[str, Any], Layer | None]] = []
    for layer in layers:
        class_name = type(layer).__name__
        if class_name not in KERAS_LAYERS:
            raise ConfigError(f"{layer!r}: no Keras equivalent; supported layers: {', '.join(sorted(KERAS_LAYERS))}.")
        convlens = layer.get_config()
        config: dict[str, Any] = {"name": layer.name, "trainable": layer.trainable, "dtype": _DTYPE}
        config.update({k: convlens[k] for k in KERAS_LAYERS[class_name] if k in convlens})
        if "data_format" in convlens:
            config["data_format"] = convlens["data_format"]
        shape = layer.input_shape
        padding = convlens.get("padding")
        if class_name in ("Conv1D", "Conv2D", "DepthwiseConv2D") and isinstance(padding, list):
            pad_class = "ZeroPadding1D" if class_name == "Conv1D" else "ZeroPadding2D"
            pad_value = padding[0] if class_name == "Conv1D" else padding
            pad_config = {"name": f"{layer.name}_padding", "trainable": True, "dtype": _DTYPE, "padding": pad_value}
            if class_name != "Conv1D":
                pad_config["data_format"] = convlens["data_format"]
            entries.append((_entry(pad_class, pad_config, shape), None))
            padded = [sum(p) for p in padding]
            shape = (shape[0], *(s + p for s, p in zip(shape[1:-1], padded, strict=True)), shape[-1])  # type: ignore[index, operator, misc]
            config["padding"] = "valid"
        if class_name == "ZeroPadding1D":
            config["padding"] = list(convlens["padding"])
        entries.append((_entry(class_name, config, shape), layer))
    return entries


def h5_paths(class_names: list[str]) -> list[str]:
    """Keras 3's weight-file groups of a Sequential's layers: ``layers/<snake_case class>[_<k>]``.

    >>> h5_paths(["Conv2D", "MaxPooling2D", "Conv2D", "ReLU"])
    ['layers/conv2d', 'layers/max_pooling2d', 'layers/conv2d_1', 'layers/re_lu']
    """
    used: dict[str, int] = {}
    paths = []
    for class_name in class_names:
        base = _snake(class_name)
        if base in used:
            used[base] += 1
            paths.append(f"layers/{base}_{used[base]}")
        else:
            used[base] = 0
            paths.append(f"layers/{base}")
    return paths


def from_keras_layer(entry: Any, source: str) -> Layer:
    """A convlens layer from one Keras config entry (weights are set separately)."""
    from convlens.layers import LAYER_REGISTRY, ReLU

    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ConfigError(f"{source}: a layer entry is not a Keras config object: {str(entry)[:80]!r}.")
    class_name = _ALIASES.get(entry.get("class_name", ""), entry.get("class_name", ""))
    config = entry["config"]
    where = f"layer '{config.get('name')}' ({class_name})"
    if class_name == "Lambda":
        raise ConfigError(
            f"{source}: {where} holds Python code; convlens never executes code from a file. Rebuild the model "
            "without Lambda layers (or with convlens layers) and load the weights with load_weights."
        )
    if entry.get("registered_name") or class_name not in KERAS_LAYERS:
        raise ConfigError(
            f"{source}: {where} is not supported; convlens reads these Keras layers: {', '.join(sorted(KERAS_LAYERS))}."
        )
    kwargs = {k: config[k] for k in KERAS_LAYERS[class_name] if k in config}
    kwargs["name"] = config.get("name")
    if not isinstance(kwargs.get("activation", "linear"), str):
        raise ConfigError(f"{source}: {where}: activation {kwargs['activation']!r} is not a built-in name.")
    if config.get("data_format", "channels_last") != "channels_last":
        raise ConfigError(f"{source}: {where}: data_format={config['data_format']!r}; convlens reads channels_last.")
    if class_name == "BatchNormalization" and config.get("renorm"):
        raise ConfigError(f"{source}: {where}: batch renormalization (renorm=True) is not supported.")
    if class_name == "ZeroPadding2D" and isinstance(kwargs.get("padding"), list):
        kwargs["padding"] = tuple(tuple(p) if isinstance(p, list) else p for p in kwargs["padding"])
    if class_name == "ZeroPadding1D" and isinstance(kwargs.get("padding"), list):
        kwargs["padding"] = tuple(kwargs["padding"])
    try:
        if class_name == "LeakyReLU":
            return ReLU(negative_slope=float(kwargs.get("negative_slope", 0.3)), name=kwargs["name"])
        return LAYER_REGISTRY[class_name](**kwargs)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None
