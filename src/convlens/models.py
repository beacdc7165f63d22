"""The model classes, as ``keras.models`` has them: ``Model`` (:mod:`convlens.model`; ``Model(inputs,
outputs)`` builds a Functional model), ``Sequential`` (:mod:`convlens.sequential`) and ``Functional``
(:mod:`convlens.functional`). Importing this module loads all three, so ``Model(inputs, outputs)`` works.

>>> import numpy as np
>>> import convlens as cl
>>> model = cl.Sequential([
...     cl.layers.Conv2D(32, (3, 3), padding="same", activation="relu", input_shape=(28, 28, 1)),
...     cl.layers.MaxPooling2D((2, 2)),
...     cl.layers.Flatten(),
...     cl.layers.Dense(10, activation="softmax"),
... ])
>>> model.count_params()  # (3*3*1*32 + 32) + (14*14*32*10 + 10)
63050
>>> model.output_shape
(None, 10)
"""

from __future__ import annotations

from convlens.functional import Functional
from convlens.model import Model
from convlens.sequential import Sequential

__all__ = ["Functional", "Model", "Sequential"]
