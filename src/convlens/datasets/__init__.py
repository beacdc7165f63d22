"""Datasets: MNIST (packaged), Fashion-MNIST (found locally or downloaded), the IDX file format.

>>> from convlens.datasets import mnist
>>> (x_train, y_train), (x_test, y_test) = mnist.load_data()  # doctest: +SKIP
"""

from __future__ import annotations

from convlens.datasets import fashion_mnist, idx, mnist, sources

__all__ = ["fashion_mnist", "idx", "mnist", "sources"]
