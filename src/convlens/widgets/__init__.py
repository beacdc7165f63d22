"""Interactive notebook widgets (anywidget): the lab's views in JupyterLab, VS Code and marimo.

* :class:`ExplainWidget`: sliders and inputs for the input size, the kernel (named or generated, its size),
  strides, padding ('valid', 'same' or explicit per side), dilation, or a pooling; each change re-traces the
  operation in Python (:func:`convlens.lab.explain.convolution` / :func:`~convlens.lab.explain.pooling`) and
  the view redraws the sliding window step by step with the output-size formula in your numbers.
* :class:`FeatureMapExplorer`: a model's feature maps layer by layer and image by image; click a unit for
  its receptive field on the input and the dot product behind its value (:mod:`convlens.lab.inspect`).

The views are the browser lab's drawing modules (``web/static/js/draw``) bundled into each widget's
ES module by :mod:`convlens.lab.jsbundle`: one front end, two hosts. Needs the ``widgets`` extra
(``pip install 'convlens[widgets]'``); ``import convlens.widgets`` itself needs nothing.
"""

from __future__ import annotations

from typing import Any

from convlens.errors import ConfigError

__all__ = ["ExplainWidget", "FeatureMapExplorer"]

_WHERE = {"ExplainWidget": "convlens.widgets.explain", "FeatureMapExplorer": "convlens.widgets.feature_maps"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'convlens.widgets' has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(_WHERE[name])
    except ModuleNotFoundError as exc:
        if exc.name not in ("anywidget", "ipywidgets", "traitlets"):
            raise
        raise ConfigError(
            f"convlens.widgets.{name} needs anywidget, which is not installed: pip install 'convlens[widgets]'."
        ) from None
    return getattr(module, name)
