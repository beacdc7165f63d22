"""Reference Grad-CAM and HiResCAM in PyTorch autograd, written from the papers and Keras's Grad-CAM example.

Keras's example (keras.io/examples/vision/grad_cam) takes the gradient of the pre-softmax class score
with respect to the last conv layer's output, averages it over the batch and spatial axes
(``pooled_grads = reduce_mean(grads, axis=(0, 1, 2))``), forms ``last_conv_output @ pooled_grads`` and keeps the
positive part. HiResCAM (Draelos & Carin 2020) multiplies gradient and activation element-wise before summing over
channels. Only the score and the layer differ from model to model, so the model is a torch callable that returns
(target layer output in NHWC, logits).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tests.conftest import require

torch = require("torch")


def course_like_torch(model) -> Callable[[torch.Tensor], tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """A torch twin of a convlens Conv2D(relu) -> [MaxPooling2D] -> Flatten | GlobalAveragePooling2D -> Dense model.

    Returns f(x_nhwc) -> ({layer name: NHWC output}, logits). Layouts change here only: kernels
    (KH, KW, C, F) -> (F, C, KH, KW); Flatten reads (H, W, C) order as Keras.
    """
    from torch.nn import functional

    def run(x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        outs: dict[str, torch.Tensor] = {}
        h = x.permute(0, 3, 1, 2)
        logits = None
        for layer in model.layers:
            kind = type(layer).__name__
            if kind == "Conv2D":
                kernel = torch.tensor(np.asarray(layer.params["kernel"]), dtype=x.dtype).permute(3, 2, 0, 1)
                bias = torch.tensor(np.asarray(layer.params["bias"]), dtype=x.dtype)
                padding = "same" if layer.padding == "same" else 0
                h = functional.relu(functional.conv2d(h, kernel, bias, padding=padding))
            elif kind == "MaxPooling2D":
                h = functional.max_pool2d(h, layer.pool_size)
            elif kind == "Flatten":
                h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
            elif kind == "GlobalAveragePooling2D":
                h = h.mean(dim=(2, 3))
            elif kind == "Dense":
                kernel = torch.tensor(np.asarray(layer.params["kernel"]), dtype=x.dtype)
                bias = torch.tensor(np.asarray(layer.params["bias"]), dtype=x.dtype)
                logits = h @ kernel + bias  # the pre-softmax score
                h = logits
            else:  # pragma: no cover - the tests build only these layers
                raise TypeError(kind)
            if h.ndim == 4:
                h.retain_grad()
                outs[layer.name] = h
        assert logits is not None
        return outs, logits

    return run


def reference_cams(model, x: np.ndarray, layer: str, class_index: int) -> dict[str, np.ndarray]:
    """Keras-example Grad-CAM and HiResCAM of ``class_index`` on ``layer``, via torch autograd (float64).

    Shapes:
        x: (H, W, C); returns maps of the layer's (h, w).
    """
    run = course_like_torch(model)
    xt = torch.tensor(np.asarray(x, np.float64)[None], requires_grad=True)
    outs, logits = run(xt)
    logits[0, class_index].backward()
    conv_output = outs[layer].permute(0, 2, 3, 1)  # NHWC, as Keras's example sees it
    grads = outs[layer].grad.permute(0, 2, 3, 1)
    pooled_grads = grads.mean(dim=(0, 1, 2))
    heatmap = (conv_output[0] @ pooled_grads[:, None])[..., 0]
    hires = (grads[0] * conv_output[0]).sum(dim=-1)
    return {
        "gradcam": torch.clamp(heatmap, min=0).detach().numpy(),
        "hirescam": torch.clamp(hires, min=0).detach().numpy(),
        "weights": pooled_grads.detach().numpy(),
        "logit": np.asarray(float(logits[0, class_index].detach())),
    }
