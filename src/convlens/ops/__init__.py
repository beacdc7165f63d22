"""Pure NumPy ops: each forward beside its ``*_backward``."""

from convlens.ops.conv import Conv2DGrads, Conv2DPlan, conv1d, conv1d_backward, conv2d, conv2d_backward

__all__ = ["Conv2DGrads", "Conv2DPlan", "conv1d", "conv1d_backward", "conv2d", "conv2d_backward"]
