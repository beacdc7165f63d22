"""See what the network learned: feature maps, filters, training curves, activation maximisation,
saliency, Grad-CAM and translation equivariance (``convlens.viz``; ``convlens visualize ...``).

Each function returns a result object: ``.figure`` (a matplotlib Figure, shown inline in Jupyter),
``.save(path)`` (PNG or SVG by extension) and the arrays that were drawn, so the numbers can be checked.
matplotlib and Pillow load on first use (inside the functions), so importing this package is cheap.
"""

from __future__ import annotations

# Imported eagerly: several functions share their module's name (filters, maximize...), and a lazy
# submodule import would shadow the function with the module.
from convlens.lab.viz.activations import layer_outputs
from convlens.lab.viz.curves import confusion, curves, wrong
from convlens.lab.viz.equivariance import equivariance
from convlens.lab.viz.feature_maps import feature_maps
from convlens.lab.viz.filters import filters
from convlens.lab.viz.gradcam import gradcam
from convlens.lab.viz.images import load_image
from convlens.lab.viz.maximize import maximize
from convlens.lab.viz.saliency import saliency

__all__ = [
    "confusion",
    "curves",
    "equivariance",
    "feature_maps",
    "filters",
    "gradcam",
    "layer_outputs",
    "load_image",
    "maximize",
    "saliency",
    "wrong",
]
