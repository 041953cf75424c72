"""Activations: elementwise (ReLU, Tanh, ...) and along an axis (Softmax, LogSoftmax).

Formulas follow PyTorch's, including which side of a kink the gradient takes (ReLU's gradient
at 0 is 0) and Softplus's switch to the identity above 20. Each class declares its one numpy
rule (np_forward, np_backward) and its torch rule (torch_forward); see core/codegen/rules.py.
GELU's exact form takes Phi from an erfc kernel (numpy has none), accurate in both tails where
PyTorch's 0.5 * (1 + erf) loses the far negative one to cancellation.
"""

from __future__ import annotations

import math
from typing import ClassVar

from .base import Param, Sample, Weight, constant, norm_axis
from .kernels import log_softmax, normal_cdf, relu_backward, sigmoid, tanh_backward
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
    onnx_forward = "Relu"

    def np_backward(self, p, e):
        # From y (> 0 exactly where x is): x is then free once y is made.
        return {"x": e.fmt(f"{e.helper(relu_backward)}({{y}}, {{gy}})")}


@register
class LeakyReLU(Activation):
    help = "x where x > 0, else negative_slope * x."
    np_forward = "np.where({x} > 0, {x}, {x} * {negative_slope})"
    np_backward = {"x": "np.where({x} > 0, {gy}, {gy} * {negative_slope})"}
    torch_forward = "F.leaky_relu({x}, {negative_slope})"

    def onnx_forward(self, p, g):
        return g.op("LeakyRelu", g.x(), alpha=p["negative_slope"])
    params = (Param("negative_slope", "float", 0.01, "Slope for x < 0."),)
    summary_format = "{negative_slope:g}"
    samples = _SAMPLES + (Sample({"negative_slope": 0.2}, {"x": (3, 4)}),)


@register
class Sigmoid(Activation):
    help = "1 / (1 + e^-x), computed without overflow."
    np_backward = {"x": "{gy} * {y} * (1 - {y})"}
    torch_forward = "torch.sigmoid({x})"
    onnx_forward = "Sigmoid"

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(sigmoid)}({{x}})")


@register
class Tanh(Activation):
    help = "Hyperbolic tangent."
    np_forward = "np.tanh({x})"
    torch_forward = "torch.tanh({x})"
    onnx_forward = "Tanh"

    def np_backward(self, p, e):
        return {"x": e.fmt(f"{e.helper(tanh_backward)}({{y}}, {{gy}})")}


@register
class ELU(Activation):
    help = "x where x > 0, else alpha * (e^x - 1)."
    # expm1 of min(x, 0): the branch not taken must not overflow for large x.
    np_forward = "np.where({x} > 0, {x}, {alpha} * np.expm1(np.minimum({x}, 0)))"
    np_backward = {"x": "np.where({x} > 0, {gy}, {gy} * ({y} + {alpha}))"}
    torch_forward = "F.elu({x}, {alpha})"

    def onnx_forward(self, p, g):
        return g.op("Elu", g.x(), alpha=p["alpha"])
    params = (Param("alpha", "float", 1.0, "Scale of the negative part."),)
    samples = _SAMPLES + (Sample({"alpha": 0.5}, {"x": (3, 4)}),)


@register
class Softplus(Activation):
    help = "log(1 + e^x), stable; the identity above 20, as PyTorch."
    np_forward = "np.where({x} > 20.0, {x}, np.log1p(np.exp(np.minimum({x}, 20.0))))"
    torch_forward = "F.softplus({x})"

    def onnx_forward(self, p, g):
        # Softplus of min(x, 20): the side not taken must not overflow to inf.
        x, limit = g.x(), g.const(20.0)
        soft = g.op("Softplus", g.op("Min", x, limit))
        return g.where(g.op("Greater", x, limit), x, soft)

    def np_backward(self, p, e):
        return {"x": e.fmt(f"np.where({{x}} > 20.0, {{gy}}, {{gy}} * {e.helper(sigmoid)}({{x}}))")}


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@register
class GELU(Activation):
    help = "Gaussian error linear unit: x * Phi(x), exact or (the default) its tanh approximation."
    params = (Param("approximate", "choice", "tanh",
                    "tanh: PyTorch's approximate='tanh' (version 1's GELU); none: exact, with erf.",
                    choices=("tanh", "none")),)
    samples = _SAMPLES + (
        Sample({"approximate": "none"}, {"x": (4, 5)}),
        Sample({"approximate": "none"}, {"x": (2, 3, 4)}),
    )

    def summary(self, p):
        return "GELU" if p["approximate"] == "tanh" else "GELU exact"

    def np_forward(self, p, e):
        if p["approximate"] == "none":
            cdf = e.local("cdf")
            e.emit(e.fmt(f"{cdf} = {e.helper(normal_cdf)}({{x}})"))
            return e.fmt(f"{{x}} * {cdf}")
        t = e.local("tanh")
        e.emit(e.fmt(f"{t} = np.tanh({_GELU_C!r} * ({{x}} + {_GELU_A!r} * {{x}} * {{x}} * {{x}}))"))
        return e.fmt(f"0.5 * {{x}} * (1 + {t})")

    def np_backward(self, p, e):
        if p["approximate"] == "none":
            pdf = e.fmt(f"{_INV_SQRT_2PI!r} * np.exp(-0.5 * {{x}} * {{x}})")
            return {"x": e.fmt(f"{{gy}} * ({e.local('cdf')} + {{x}} * {pdf})")}
        t = e.local("tanh")
        inner = e.fmt(f"{_GELU_C!r} * (1 + 3 * {_GELU_A!r} * {{x}} * {{x}})")
        return {"x": e.fmt(f"{{gy}} * (0.5 * (1 + {t}) + 0.5 * {{x}} * (1 - {t} * {t}) * ({inner}))")}

    def torch_forward(self, p, e):
        return e.fmt(f"F.gelu({{x}}, approximate=\"{p['approximate']}\")")

    def onnx_forward(self, p, g):
        x = g.x()
        if p["approximate"] == "none":
            erf = g.op("Erf", g.op("Mul", x, g.const(math.sqrt(0.5))))
            return g.op("Mul", g.op("Mul", x, g.const(0.5)), g.op("Add", erf, g.const(1.0)))
        cube = g.op("Mul", g.op("Mul", x, x), x)
        inner = g.op("Add", x, g.op("Mul", cube, g.const(_GELU_A)))
        t = g.op("Tanh", g.op("Mul", inner, g.const(_GELU_C)))
        return g.op("Mul", g.op("Mul", x, g.const(0.5)), g.op("Add", t, g.const(1.0)))


@register
class SiLU(Activation):
    help = "x * sigmoid(x) (also called swish), as PyTorch's F.silu."
    torch_forward = "F.silu({x})"

    def onnx_forward(self, p, g):
        return g.op("Mul", g.x(), g.op("Sigmoid", g.x()))

    def np_forward(self, p, e):
        s = e.local("sigmoid")
        e.emit(e.fmt(f"{s} = {e.helper(sigmoid)}({{x}})"))
        return e.fmt(f"{{x}} * {s}")

    def np_backward(self, p, e):
        s = e.local("sigmoid")
        return {"x": e.fmt(f"{{gy}} * {s} * (1 + {{x}} * (1 - {s}))")}


@register
class Mish(Activation):
    help = "x * tanh(softplus(x)), as PyTorch's F.mish."
    torch_forward = "F.mish({x})"

    def onnx_forward(self, p, g):
        return g.op("Mul", g.x(), g.op("Tanh", g.op("Softplus", g.x())))

    def np_forward(self, p, e):
        t = e.local("tanh")
        # logaddexp(0, x) is log(1 + e^x) without overflow.
        e.emit(e.fmt(f"{t} = np.tanh(np.logaddexp(0, {{x}}))"))
        return e.fmt(f"{{x}} * {t}")

    def np_backward(self, p, e):
        t = e.local("tanh")
        s = e.fmt(f"{e.helper(sigmoid)}({{x}})")  # d softplus / dx
        return {"x": e.fmt(f"{{gy}} * ({t} + {{x}} * (1 - {t} * {t}) * {s})")}


@register
class PReLU(Activation):
    help = "x where x > 0, else weight * x, one learned slope (PyTorch's PReLU, 1 parameter)."
    stacked_weight_grads = True  # the slope's gradient sums over every element
    torch_forward = "{self}({x})"
    torch_weights: ClassVar[dict] = {"weight": ("weight", False)}
    samples = _SAMPLES + (Sample({}, {"x": (2, 3, 2, 2)}, note="4-D, as after a Conv2D"),)

    def weights(self, p, ins):
        return {"weight": Weight((1,), constant(0.25))}

    def np_forward(self, p, e):
        # weight[0]: a (1,) weight would give a single-number x a length-1 axis.
        return e.fmt("np.where({x} > 0, {x}, {weight}[0] * {x})")

    def np_backward(self, p, e):
        out = {}
        if e.need("x"):
            out["x"] = e.fmt("np.where({x} > 0, {gy}, {weight}[0] * {gy})")
        if e.need("weight"):
            out["weight"] = e.fmt("np.reshape(np.sum({gy} * np.minimum({x}, 0)), (1,))")
        return out

    def torch_module(self, p, e):
        return "nn.PReLU(1, init=0.25)"

    def onnx_forward(self, p, g):
        slope = g.reshape(g.weight("weight"), [])  # one slope, whatever x's shape
        return g.op("PRelu", g.x(), slope)


@register
class Identity(Activation):
    help = "y = x; a named pass-through."
    np_forward = "{x}"
    np_backward = {"x": "{gy}"}
    torch_forward = "{x}"
    onnx_forward = "Identity"
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

    def onnx_forward(self, p, g):
        return g.op("Softmax", g.x(), axis=p["axis"] % g.ndim())

    def np_forward(self, p, e):
        ex = e.tmp("exp")
        e.emit(e.fmt(f"{ex} = np.exp({{x}} - {{x}}.max(axis={{axis}}, keepdims=True))"))
        return e.fmt(f"{ex} / {ex}.sum(axis={{axis}}, keepdims=True)")


@register
class LogSoftmax(AxisActivation):
    help = "log(softmax(x)) along an axis, computed stably."
    np_backward = {"x": "{gy} - np.exp({y}) * {gy}.sum(axis={axis}, keepdims=True)"}
    torch_forward = "torch.log_softmax({x}, dim={axis})"

    def onnx_forward(self, p, g):
        return g.op("LogSoftmax", g.x(), axis=p["axis"] % g.ndim())

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(log_softmax)}({{x}}, {{axis}})")
