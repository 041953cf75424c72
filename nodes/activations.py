"""Activations: elementwise (ReLU, Tanh, ...) and along an axis (Softmax, LogSoftmax)."""

from __future__ import annotations

import numpy as np

from .base import Sample
from .math import Unary
from .registry import register

_SAMPLES = (Sample({}, {"x": (4, 5)}),)


class Activation(Unary):
    category = "Activations"
    samples = _SAMPLES


@register
class ReLU(Activation):
    help = "max(x, 0)."

    def fn(self, p, x):
        return np.maximum(x, 0)

    def grad(self, p, x, y, gy):
        return gy * (x > 0)


@register
class Tanh(Activation):
    help = "Hyperbolic tangent."

    def fn(self, p, x):
        return np.tanh(x)

    def grad(self, p, x, y, gy):
        return gy * (1 - y * y)
