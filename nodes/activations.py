"""Activations: elementwise (ReLU, Tanh, ...) and along an axis (Softmax, LogSoftmax).

Formulas follow PyTorch's, including which side of a kink the gradient takes (ReLU's gradient
at 0 is 0) and Softplus's switch to the identity above 20. Each class also declares its export
rules (np_forward, np_backward, torch_forward; see core/export/rules.py).
"""

from __future__ import annotations

import math

import numpy as np

from .base import Param, Sample, norm_axis
from .math import Unary
from .registry import register

_SAMPLES = (Sample({}, {"x": (4, 5)}), Sample({}, {"x": (2, 3, 4)}))
_SAME_SIZE_INT = {2: np.int16, 4: np.int32, 8: np.int64}  # a float's bits, as an int


class Activation(Unary):
    category = "Activations"
    samples = _SAMPLES


@register
class ReLU(Activation):
    help = "max(x, 0)."
    np_forward = "np.maximum({x}, 0)"
    np_backward = {"x": "np.where({x} > 0, {gy}, 0)"}
    torch_forward = "torch.relu({x})"

    def fn(self, p, x):
        return np.maximum(x, 0)

    def grad(self, p, x, y, gy):
        # where(x > 0, gy, 0), as a bit mask: gy's bits AND all-ones where x > 0, else zero.
        # np.where is ~12x slower on large arrays (1.27 ms against 0.10 ms on 64x8x26x26
        # float32) and gy * (x > 0) would turn an infinite gy into NaN and keep -0.0; this is
        # as fast as the multiply and bit for bit np.where.
        ints = _SAME_SIZE_INT[gy.dtype.itemsize]
        keep = np.greater(x, 0).astype(ints)
        np.negative(keep, out=keep)  # 1 -> all bits set
        keep &= gy.view(ints)
        return keep.view(gy.dtype)


@register
class LeakyReLU(Activation):
    help = "x where x > 0, else negative_slope * x."
    np_forward = "np.where({x} > 0, {x}, {x} * {negative_slope})"
    np_backward = {"x": "np.where({x} > 0, {gy}, {gy} * {negative_slope})"}
    torch_forward = "F.leaky_relu({x}, {negative_slope})"
    params = (Param("negative_slope", "float", 0.01, "Slope for x < 0."),)
    summary_format = "{negative_slope:g}"
    samples = _SAMPLES + (Sample({"negative_slope": 0.2}, {"x": (3, 4)}),)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow: exp is only ever taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@register
class Sigmoid(Activation):
    help = "1 / (1 + e^-x), computed without overflow."
    np_backward = {"x": "{gy} * {y} * (1 - {y})"}
    torch_forward = "torch.sigmoid({x})"

    @property
    def np_helpers(self):
        return (sigmoid,)

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(sigmoid)}({{x}})")

    def fn(self, p, x):
        return sigmoid(x)


@register
class Tanh(Activation):
    help = "Hyperbolic tangent."
    np_forward = "np.tanh({x})"
    np_backward = {"x": "{gy} * (1 - {y} * {y})"}
    torch_forward = "torch.tanh({x})"

    def fn(self, p, x):
        return np.tanh(x)

    def grad(self, p, x, y, gy):
        g = y * y  # gy * (1 - y * y), in one buffer
        np.subtract(1, g, out=g)
        g *= gy
        return g


@register
class ELU(Activation):
    help = "x where x > 0, else alpha * (e^x - 1)."
    # expm1 of min(x, 0): the branch not taken must not overflow for large x.
    np_forward = "np.where({x} > 0, {x}, {alpha} * np.expm1(np.minimum({x}, 0)))"
    np_backward = {"x": "np.where({x} > 0, {gy}, {gy} * ({y} + {alpha}))"}
    torch_forward = "F.elu({x}, {alpha})"
    params = (Param("alpha", "float", 1.0, "Scale of the negative part."),)
    samples = _SAMPLES + (Sample({"alpha": 0.5}, {"x": (3, 4)}),)


_SOFTPLUS_THRESHOLD = 20.0  # PyTorch's default: above it Softplus is the identity


@register
class Softplus(Activation):
    help = "log(1 + e^x), stable; the identity above 20, as PyTorch."
    np_forward = "np.where({x} > 20.0, {x}, np.log1p(np.exp(np.minimum({x}, 20.0))))"
    torch_forward = "F.softplus({x})"

    @property
    def np_helpers(self):
        return (sigmoid,)

    def np_backward(self, p, e):
        return {"x": e.fmt(f"np.where({{x}} > 20.0, {{gy}}, {{gy}} * {e.helper(sigmoid)}({{x}}))")}

    def fn(self, p, x):
        above = x > _SOFTPLUS_THRESHOLD
        return np.where(above, x, np.log1p(np.exp(np.minimum(x, _SOFTPLUS_THRESHOLD))))

    def grad(self, p, x, y, gy):
        return np.where(x > _SOFTPLUS_THRESHOLD, gy, gy * sigmoid(x))


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


@register
class GELU(Activation):
    help = "Gaussian error linear unit, tanh approximation (PyTorch approximate='tanh')."
    torch_forward = "F.gelu({x}, approximate=\"tanh\")"

    def np_forward(self, p, e):
        t = e.local("tanh")
        e.emit(e.fmt(f"{t} = np.tanh({_GELU_C!r} * ({{x}} + {_GELU_A!r} * {{x}} * {{x}} * {{x}}))"))
        return e.fmt(f"0.5 * {{x}} * (1 + {t})")

    def np_backward(self, p, e):
        t = e.local("tanh")
        inner = e.fmt(f"{_GELU_C!r} * (1 + 3 * {_GELU_A!r} * {{x}} * {{x}})")
        return {"x": e.fmt(f"{{gy}} * (0.5 * (1 + {t}) + 0.5 * {{x}} * (1 - {t} * {t}) * ({inner}))")}

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        t = np.tanh(_GELU_C * (x + _GELU_A * x * x * x))
        return [0.5 * x * (1 + t)], (x, t)

    def backward(self, p, saved, gys, need):
        x, t = saved
        inner = _GELU_C * (1 + 3 * _GELU_A * x * x)
        return [gys[0] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner)]


@register
class Identity(Activation):
    help = "y = x; a named pass-through."
    np_forward = "{x}"
    np_backward = {"x": "{gy}"}
    torch_forward = "{x}"
    samples = (Sample({}, {"x": (3, 4)}),)

    def forward(self, p, xs, ws, ctx):
        return [xs[0]], None

    def backward(self, p, saved, gys, need):
        return [gys[0]]


class AxisActivation(Activation):
    """An activation that normalises along one axis."""

    params = (Param("axis", "axis", -1, "The axis to normalise over."),)
    samples = (
        Sample({}, {"x": (3, 5)}),
        Sample({"axis": 1}, {"x": (2, 3, 4)}),
        Sample({"axis": 0}, {"x": (3, 2)}, note="over the batch axis"),
    )

    def summary(self, p):
        return self.name if p["axis"] == -1 else f"{self.name} axis {p['axis']}"

    def infer(self, p, ins):
        x = super().infer(p, ins)["y"]
        norm_axis(p["axis"], x.ndim)
        return {"y": x}


@register
class Softmax(AxisActivation):
    help = "e^x normalised to sum to 1 along an axis."
    np_backward = {"x": "{y} * ({gy} - ({gy} * {y}).sum(axis={axis}, keepdims=True))"}
    torch_forward = "torch.softmax({x}, dim={axis})"

    def np_forward(self, p, e):
        ex = e.tmp("exp")
        e.emit(e.fmt(f"{ex} = np.exp({{x}} - {{x}}.max(axis={{axis}}, keepdims=True))"))
        return e.fmt(f"{ex} / {ex}.sum(axis={{axis}}, keepdims=True)")

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        e = np.exp(x - x.max(axis=p["axis"], keepdims=True))
        y = e / e.sum(axis=p["axis"], keepdims=True)
        return [y], y

    def backward(self, p, saved, gys, need):
        y, gy = saved, gys[0]
        return [y * (gy - (gy * y).sum(axis=p["axis"], keepdims=True))]


@register
class LogSoftmax(AxisActivation):
    help = "log(softmax(x)) along an axis, computed stably."
    np_backward = {"x": "{gy} - np.exp({y}) * {gy}.sum(axis={axis}, keepdims=True)"}
    torch_forward = "torch.log_softmax({x}, dim={axis})"

    @property
    def np_helpers(self):
        return (log_softmax,)

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(log_softmax)}({{x}}, {{axis}})")

    def forward(self, p, xs, ws, ctx):
        y = log_softmax(xs[0], p["axis"])
        return [y], y

    def backward(self, p, saved, gys, need):
        y, gy = saved, gys[0]
        return [gy - np.exp(y) * gy.sum(axis=p["axis"], keepdims=True)]


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    n = x.shape[axis]
    if 2 <= n <= 4 and axis in (-1, x.ndim - 1):
        # A few classes: numpy reduces a short last axis row by row (2.3 us for 32x2); the
        # maximum of its columns is the same number in 0.9 us.
        top = np.maximum(x[..., 0], x[..., 1])
        for j in range(2, n):
            np.maximum(top, x[..., j], out=top)
        z = x - top[..., None]
    else:
        z = x - x.max(axis=axis, keepdims=True)
    total = np.exp(z).sum(axis=axis, keepdims=True)
    z -= np.log(total, out=total)
    return z
