"""Activations: elementwise (ReLU, Tanh, ...) and along an axis (Softmax, LogSoftmax).

Formulas follow PyTorch's, including which side of a kink the gradient takes (ReLU's gradient
at 0 is 0) and Softplus's switch to the identity above 20. Each class declares its one numpy
rule (np_forward, np_backward) and its torch rule (torch_forward); see core/codegen/rules.py.
"""

from __future__ import annotations

import math

from .base import Param, Sample, norm_axis
from .kernels import log_softmax, relu_backward, sigmoid, tanh_backward
from .math import Unary
from .registry import register

_SAMPLES = (Sample({}, {"x": (4, 5)}), Sample({}, {"x": (2, 3, 4)}))


class Activation(Unary):
    category = "Activations"
    samples = _SAMPLES


@register
class ReLU(Activation):
    help = "max(x, 0)."
    np_forward = "np.maximum({x}, 0)"
    torch_forward = "torch.relu({x})"

    def np_backward(self, p, e):
        # From y (> 0 exactly where x is): x is then free once y is made.
        return {"x": e.fmt(f"{e.helper(relu_backward)}({{y}}, {{gy}})")}


@register
class LeakyReLU(Activation):
    help = "x where x > 0, else negative_slope * x."
    np_forward = "np.where({x} > 0, {x}, {x} * {negative_slope})"
    np_backward = {"x": "np.where({x} > 0, {gy}, {gy} * {negative_slope})"}
    torch_forward = "F.leaky_relu({x}, {negative_slope})"
    params = (Param("negative_slope", "float", 0.01, "Slope for x < 0."),)
    summary_format = "{negative_slope:g}"
    samples = _SAMPLES + (Sample({"negative_slope": 0.2}, {"x": (3, 4)}),)


@register
class Sigmoid(Activation):
    help = "1 / (1 + e^-x), computed without overflow."
    np_backward = {"x": "{gy} * {y} * (1 - {y})"}
    torch_forward = "torch.sigmoid({x})"

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(sigmoid)}({{x}})")


@register
class Tanh(Activation):
    help = "Hyperbolic tangent."
    np_forward = "np.tanh({x})"
    torch_forward = "torch.tanh({x})"

    def np_backward(self, p, e):
        return {"x": e.fmt(f"{e.helper(tanh_backward)}({{y}}, {{gy}})")}


@register
class ELU(Activation):
    help = "x where x > 0, else alpha * (e^x - 1)."
    # expm1 of min(x, 0): the branch not taken must not overflow for large x.
    np_forward = "np.where({x} > 0, {x}, {alpha} * np.expm1(np.minimum({x}, 0)))"
    np_backward = {"x": "np.where({x} > 0, {gy}, {gy} * ({y} + {alpha}))"}
    torch_forward = "F.elu({x}, {alpha})"
    params = (Param("alpha", "float", 1.0, "Scale of the negative part."),)
    samples = _SAMPLES + (Sample({"alpha": 0.5}, {"x": (3, 4)}),)


@register
class Softplus(Activation):
    help = "log(1 + e^x), stable; the identity above 20, as PyTorch."
    np_forward = "np.where({x} > 20.0, {x}, np.log1p(np.exp(np.minimum({x}, 20.0))))"
    torch_forward = "F.softplus({x})"

    def np_backward(self, p, e):
        return {"x": e.fmt(f"np.where({{x}} > 20.0, {{gy}}, {{gy}} * {e.helper(sigmoid)}({{x}}))")}


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


@register
class Identity(Activation):
    help = "y = x; a named pass-through."
    np_forward = "{x}"
    np_backward = {"x": "{gy}"}
    torch_forward = "{x}"
    samples = (Sample({}, {"x": (3, 4)}),)


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

    def rowwise_axes(self, p):
        return 1 if p["axis"] == -1 else None

    def mixes_batch(self, p, ins):
        x = ins["x"]
        return x.ndim >= 1 and x.shape[0] is None and p["axis"] % x.ndim == 0

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


@register
class LogSoftmax(AxisActivation):
    help = "log(softmax(x)) along an axis, computed stably."
    np_backward = {"x": "{gy} - np.exp({y}) * {gy}.sum(axis={axis}, keepdims=True)"}
    torch_forward = "torch.log_softmax({x}, dim={axis})"

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(log_softmax)}({{x}}, {{axis}})")
