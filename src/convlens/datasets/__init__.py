"""Datasets: MNIST (packaged); Fashion-MNIST and CIFAR-10 (found locally or downloaded); the IDX format.

>>> from convlens.datasets import mnist
>>> (x_train, y_train), (x_test, y_test) = mnist.load_data()  # doctest: +SKIP
"""

from __future__ import annotations

from convlens.datasets import cifar10, fashion_mnist, idx, mnist, sources

__all__ = ["cifar10", "fashion_mnist", "idx", "mnist", "sources"]
