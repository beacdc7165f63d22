"""Models from a compact layer string, a Python file or a saved model (what ``convlens summary SPEC`` takes).

The compact grammar: tokens separated by commas (spaces ignored, case-insensitive; the bracketed options
after a layer's head may come in any order, each at most once)::

    input<H>x<W>x<C> | input<L>x<C>       input shape, first token only (default input28x28x1)
    conv<F>k<K>[x<K2>][s<S>][d<D>][g<G>][same|valid|causal|p<P>][-<act>]
                                          Conv2D (Conv1D on a 1-D input): F filters, K x K2 kernel (K2
                                          defaults to K), stride S, dilation D, groups G, padding (default
                                          'valid' as Keras; p<P> pads P on every side), activation
    dwconvk<K>[x<K2>][s<S>][d<D>][m<M>][same|valid|p<P>][-<act>]
                                          DepthwiseConv2D with depth multiplier M
    maxpool<P>[x<P2>][s<S>][same|valid]   MaxPooling2D/1D (strides default to the pool size)
    avgpool<P>[x<P2>][s<S>][same|valid]   AveragePooling2D/1D
    gap | gmp                             global average / max pooling
    zeropad<P>                            ZeroPadding2D/1D, P on every side
    flatten                               Flatten
    dense<U>[-<act>]                      Dense with U units
    dropout<R>                            Dropout, rate R (e.g. dropout0.5)
    bn                                    BatchNormalization
    relu | softmax | sigmoid | tanh | ... an Activation layer (any Keras activation name)

>>> model = parse_spec("conv32k3s1same-relu, maxpool2, flatten, dense10-softmax")
>>> model.count_params()
63050
>>> parse_spec("input32x32x3, conv8k3, maxpool2").output_shape
(None, 15, 15, 8)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from convlens.errors import ConfigError, ConvlensError

__all__ = ["DEFAULT_INPUT", "GRAMMAR", "load_model_spec", "parse_spec"]

DEFAULT_INPUT = (28, 28, 1)

# kind -> (head pattern, options allowed after the head in any order, activation suffix allowed, usage)
_PATTERNS: dict[str, tuple[str, str, bool, str]] = {
    "input": (r"input(?P<dims>\d+(?:x\d+)*)", "", False, "input<H>x<W>x<C>, e.g. input28x28x1"),
    "conv": (
        r"conv(?P<f>\d+)k(?P<k>\d+)(?:x(?P<k2>\d+))?",
        "sdgp+",
        True,
        "conv<filters>k<size>[s<stride>][d<dilation>][g<groups>][same|valid|causal|p<pad>][-<activation>], "
        "e.g. conv32k3s1same-relu",
    ),
    "dwconv": (
        r"dwconvk(?P<k>\d+)(?:x(?P<k2>\d+))?",
        "sdmp+",
        True,
        "dwconvk<size>[s<stride>][d<dilation>][m<multiplier>][same|valid|p<pad>][-<activation>], e.g. dwconvk3same",
    ),
    "maxpool": (
        r"maxpool(?P<p>\d+)(?:x(?P<p2>\d+))?",
        "s+",
        False,
        "maxpool<size>[s<stride>][same|valid], e.g. maxpool2",
    ),
    "avgpool": (
        r"avgpool(?P<p>\d+)(?:x(?P<p2>\d+))?",
        "s+",
        False,
        "avgpool<size>[s<stride>][same|valid], e.g. avgpool2",
    ),
    "gap": (r"gap", "", False, "gap"),
    "gmp": (r"gmp", "", False, "gmp"),
    "zeropad": (r"zeropad(?P<zp>\d+)", "", False, "zeropad<pad>, e.g. zeropad1"),
    "flatten": (r"flatten", "", False, "flatten"),
    "dense": (r"dense(?P<u>\d+)", "", True, "dense<units>[-<activation>], e.g. dense10-softmax"),
    "dropout": (r"dropout(?P<r>\d*\.?\d+)", "", False, "dropout<rate>, e.g. dropout0.5"),
    "bn": (r"bn", "", False, "bn"),
}
_OPTION = re.compile(r"same|valid|causal|[sdgmp]\d+")


def _parse_token(kind: str, token: str) -> dict[str, str | None] | None:
    """The token's fields (head groups, options by letter, 'pad', 'act'), or None when it does not parse."""
    head, allowed, takes_act, _ = _PATTERNS[kind]
    body, act = token, None
    if takes_act and "-" in token:
        body, act = token.split("-", 1)
    match = re.match(head, body)
    if match is None:
        return None
    fields: dict[str, str | None] = dict(match.groupdict())
    rest = body[match.end() :]
    options = _OPTION.findall(rest)
    if "".join(options) != rest:
        return None
    for option in options:
        key = option[0] if option[0] in "sdgm" and option[1:].isdigit() else "pad"  # p<P>, same, valid, causal
        if (key != "pad" and key not in allowed) or (key == "pad" and "+" not in allowed) or key in fields:
            return None
        fields[key] = option if key == "pad" else option[1:]
    fields["act"] = act
    return fields


GRAMMAR = __doc__.split("::", 1)[1].split(">>>", 1)[0].rstrip() if __doc__ else ""


def _kind(token: str) -> str | None:
    for kind in sorted(_PATTERNS, key=len, reverse=True):  # 'dwconv' before 'conv'
        if token.startswith(kind):
            return kind
    return None


def _error(text: str, spans: list[tuple[int, int]], index: int, message: str) -> ConfigError:
    start, end = spans[index]
    token = text[start:end]
    caret = " " * start + "^" * max(end - start, 1)
    return ConfigError(f"spec token {index + 1} {token!r}: {message}\n  {text}\n  {caret}")


def _int(fields: dict[str, str | None], key: str, default: int | None = None) -> int | None:
    value = fields.get(key)
    return default if value is None else int(value)


def _padding(value: str | None) -> Any:
    if value is None:
        return "valid"
    return int(value[1:]) if value.startswith("p") else value


def _build(kind: str, m: dict[str, str | None], rank: int) -> Any:
    from convlens import layers

    two = rank == 2
    if kind in ("conv", "dwconv"):
        k = int(m["k"] or 0)
        kernel = (k, _int(m, "k2", k)) if two else k
        common: dict[str, Any] = {
            "kernel_size": kernel,
            "strides": _int(m, "s", 1),
            "dilation_rate": _int(m, "d", 1),
            "padding": _padding(m.get("pad")),
            "activation": m["act"],
        }
        if m["k2"] and not two:
            raise ConfigError("a 1-D input takes one kernel size (no x<K2>)")
        if kind == "dwconv":
            if not two:
                raise ConfigError("depthwise convolution needs a 2-D input")
            return layers.DepthwiseConv2D(depth_multiplier=_int(m, "m") or 1, **common)
        cls = layers.Conv2D if two else layers.Conv1D
        return cls(int(m["f"] or 0), groups=_int(m, "g") or 1, **common)
    if kind in ("maxpool", "avgpool"):
        p = int(m["p"] or 0)
        pool = (p, _int(m, "p2", p)) if two else p
        strides = _int(m, "s")
        names = {
            ("maxpool", True): layers.MaxPooling2D,
            ("maxpool", False): layers.MaxPooling1D,
            ("avgpool", True): layers.AveragePooling2D,
            ("avgpool", False): layers.AveragePooling1D,
        }
        return names[kind, two](pool, strides, m.get("pad") or "valid")
    simple = {
        "gap": layers.GlobalAveragePooling2D if two else layers.GlobalAveragePooling1D,
        "gmp": layers.GlobalMaxPooling2D if two else layers.GlobalMaxPooling1D,
        "flatten": layers.Flatten,
        "bn": layers.BatchNormalization,
    }
    if kind in simple:
        return simple[kind]()
    if kind == "zeropad":
        return (layers.ZeroPadding2D if two else layers.ZeroPadding1D)(int(m["zp"] or 0))
    if kind == "dense":
        return layers.Dense(int(m["u"] or 0), activation=m["act"])
    return layers.Dropout(float(m["r"] or 0))


def parse_spec(text: str, *, name: str | None = None) -> Any:
    """Build a ``Sequential`` from the compact grammar of this module's docstring.

    Raises:
        ConfigError: pointing at the bad token with its position, e.g.
            ``spec token 2 'maxpoolx': expected maxpool<size>[s<stride>][same|valid], e.g. maxpool2`` and a
            caret line under the token; layer errors (a kernel that does not fit) are reported the same way.

    Shapes:
        input (N, H, W, C) from ``input<H>x<W>x<C>`` (default (N, 28, 28, 1)); 1-D (N, L, C) from ``input<L>x<C>``.
    """
    from convlens import layers
    from convlens.models import Sequential
    from convlens.ops.activations import get_activation

    if not isinstance(text, str):
        raise TypeError(f"parse_spec: `text` must be a string, got {type(text).__name__}.")
    spans = [(m.start(), m.end()) for m in re.finditer(r"[^,]+", text)]
    spans = [
        (s + len(text[s:e]) - len(text[s:e].lstrip()), e - len(text[s:e]) + len(text[s:e].rstrip())) for s, e in spans
    ]
    spans = [(s, e) for s, e in spans if e > s]
    if not spans:
        raise ConfigError("spec: empty layer string; e.g. 'conv32k3same-relu, maxpool2, flatten, dense10-softmax'.")
    input_shape: tuple[int, ...] = DEFAULT_INPUT
    model = None
    for index, (start, end) in enumerate(spans):
        token = text[start:end].lower().replace(" ", "")
        kind = _kind(token)
        if kind == "input":
            match = re.fullmatch(_PATTERNS["input"][0], token)
            if index != 0:
                raise _error(text, spans, index, "the input shape must be the first token")
            if match is None or any(int(d) < 1 for d in match.group("dims").split("x")):
                raise _error(text, spans, index, f"expected {_PATTERNS['input'][3]}")
            dims = tuple(int(d) for d in match.group("dims").split("x"))
            if len(dims) not in (2, 3):
                raise _error(text, spans, index, "expected input<H>x<W>x<C> (2-D) or input<L>x<C> (1-D)")
            input_shape = dims
            continue
        try:
            if kind is None:
                get_activation(token)
                layer = layers.Activation(token)
            else:
                fields = _parse_token(kind, token)
                if fields is None:
                    raise ConfigError(f"expected {_PATTERNS[kind][3]}")
                layer = _build(kind, fields, len(input_shape) - 1)
            if model is None:
                model = Sequential([layers.Input(shape=input_shape)], name=name)
            model.add(layer)
        except ConvlensError as exc:
            if kind is None:
                message = (
                    "unknown layer; expected one of input, conv, dwconv, maxpool, avgpool, gap, gmp, zeropad, "
                    "flatten, dense, dropout, bn or an activation name"
                )
            else:
                message = str(exc)
            raise _error(text, spans, index, message) from None
    if model is None:
        raise _error(text, spans, 0, "the spec has an input shape but no layers")
    return model


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for names the OS refuses outright (too long, NUL bytes)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def load_model_spec(arg: str | Path) -> Any:
    """A model from a ``.py`` file defining ``model``, a saved model (.npz, .keras, .onnx) or a layer string.

    The ``.py`` file is executed (it is the user's own code, as ``python file.py`` would).

    Raises:
        ConfigError: for a missing file, a file without a ``model`` ``Sequential``, or a bad layer string.
    """
    from convlens.models import Sequential

    text = str(arg)
    path = Path(text)
    if text.endswith((".py", ".npz", ".keras", ".onnx")) or _is_file(path):
        if not _is_file(path):
            raise ConfigError(f"spec: no such file {text!r}.")
        if path.suffix == ".py":
            import runpy

            namespace = runpy.run_path(str(path), run_name="__convlens_spec__")
            model = namespace.get("model")
            if not isinstance(model, Sequential):
                found = "nothing" if model is None else type(model).__name__
                raise ConfigError(f"spec: {text!r} must define `model` as a convlens Sequential, found {found}.")
            return model
        from convlens.interop.formats import load_model  # by suffix: .npz, .keras, .onnx (convlens.interop.formats)

        return load_model(path)
    return parse_spec(text)
