"""Keras side of gradcam_keras.py: the Grad-CAM code of Keras's official example on the weights it is given."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main() -> None:
    import keras
    import tensorflow as tf

    data = dict(np.load(sys.argv[1]))
    x = data["x"]
    inputs = keras.Input(x.shape[1:])
    kernel = data["conv_kernel"]
    conv = keras.layers.Conv2D(
        int(kernel.shape[-1]), kernel.shape[:2], padding=str(data["padding"]), activation="relu", name="conv"
    )(inputs)
    pool = keras.layers.MaxPooling2D(2, name="pool")(conv)
    flat = keras.layers.Flatten()(pool)
    out = keras.layers.Dense(int(data["dense_kernel"].shape[-1]), activation=None, name="dense")(flat)  # logits,
    model = keras.Model(inputs, out)  # as the example removes the last layer's softmax
    model.get_layer("conv").set_weights([data["conv_kernel"], data["conv_bias"]])
    model.get_layer("dense").set_weights([data["dense_kernel"], data["dense_bias"]])
    # keras.io/examples/vision/grad_cam: make_gradcam_heatmap, without the final relu / max normalisation
    grad_model = keras.models.Model(model.inputs, [model.get_layer("pool").output, model.output])
    with tf.GradientTape() as tape:
        last_conv_layer_output, preds = grad_model(x)
        class_channel = preds[:, int(data["class_index"])]
    grads = tape.gradient(class_channel, last_conv_layer_output)
    pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.squeeze(last_conv_layer_output[0] @ pooled_grads[..., tf.newaxis])
    hires = tf.reduce_sum(grads[0] * last_conv_layer_output[0], axis=-1)
    np.savez(sys.argv[2], heatmap=heatmap.numpy(), weights=pooled_grads.numpy(), hires=hires.numpy(),
             logit=preds.numpy()[0, int(data["class_index"])])  # fmt: skip


if __name__ == "__main__":
    main()
