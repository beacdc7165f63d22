"""Datasets: the IDX file format and MNIST, packaged with convlens.

>>> from convlens.datasets import mnist
>>> (x_train, y_train), (x_test, y_test) = mnist.load_data()  # doctest: +SKIP
"""

from __future__ import annotations

from convlens.datasets import idx, mnist

__all__ = ["idx", "mnist"]
