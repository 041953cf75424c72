"""Elementwise and linear-algebra math: binary ops with broadcasting, unary functions."""

from __future__ import annotations

import numpy as np

from .base import NodeType, Sample, broadcast_shapes, float_input, unbroadcast
from .registry import register

_BIN_SAMPLES = (
    Sample({}, {"a": (3, 4), "b": (3, 4)}),
    Sample({}, {"a": (3, 4), "b": (4,)}, note="b broadcast over the batch"),
    Sample({}, {"a": (2, 1, 4), "b": (2, 3, 1)}, note="both broadcast"),
)


class Binary(NodeType):
    """a (op) b with numpy broadcasting. Subclasses give `fn` and `grads`."""

    category = "Math"
    inputs = ("a", "b")
    samples = _BIN_SAMPLES

    def infer(self, p, ins):
        a, b = float_input(ins, "a"), float_input(ins, "b")
        return {"y": type(a)(broadcast_shapes(a.shape, b.shape), a.dtype)}

    def forward(self, p, xs, ws, ctx):
        a, b = xs
        y = self.fn(a, b)
        return [y], (a, b, y)

    def backward(self, p, saved, gys, need):
        a, b, y = saved
        ga, gb = self.grads(a, b, y, gys[0], need)
        return [
            unbroadcast(ga, a.shape) if need[0] else None,
            unbroadcast(gb, b.shape) if need[1] else None,
        ]


@register
class Add(Binary):
    help = "a + b, broadcasting."

    def forward(self, p, xs, ws, ctx):
        a, b = xs
        return [a + b], (a.shape, b.shape)

    def backward(self, p, saved, gys, need):
        sa, sb = saved
        gy = gys[0]
        return [unbroadcast(gy, sa) if need[0] else None, unbroadcast(gy, sb) if need[1] else None]


@register
class Sub(Binary):
    help = "a - b, broadcasting."

    def forward(self, p, xs, ws, ctx):
        a, b = xs
        return [a - b], (a.shape, b.shape)

    def backward(self, p, saved, gys, need):
        sa, sb = saved
        gy = gys[0]
        return [unbroadcast(gy, sa) if need[0] else None, unbroadcast(-gy, sb) if need[1] else None]


@register
class Mul(Binary):
    help = "a * b elementwise, broadcasting."

    def fn(self, a, b):
        return a * b

    def grads(self, a, b, y, gy, need):
        return (gy * b if need[0] else None), (gy * a if need[1] else None)


class Unary(NodeType):
    """y = f(x) elementwise. Subclasses give `fn(p, x)` and `grad(p, x, y, gy)`."""

    category = "Math"

    def infer(self, p, ins):
        return {"y": float_input(ins, "x")}

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        y = self.fn(p, x)
        return [y], (x, y)

    def backward(self, p, saved, gys, need):
        x, y = saved
        return [self.grad(p, x, y, gys[0])]


@register
class Exp(Unary):
    help = "e to the x."
    samples = (Sample({}, {"x": (3, 4)}),)

    def fn(self, p, x):
        return np.exp(x)

    def grad(self, p, x, y, gy):
        return gy * y


@register
class Abs(Unary):
    help = "|x|; the gradient at 0 is 0, as in PyTorch."
    samples = (Sample({}, {"x": (3, 4)}),)

    def fn(self, p, x):
        return np.abs(x)

    def grad(self, p, x, y, gy):
        return gy * np.sign(x)
