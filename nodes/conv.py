"""Convolution over NCL and NCHW tensors, as PyTorch computes it: Conv1D, Conv2D,
ConvTranspose2D. Pooling is in pool.py.

The kernels (im2col convolution with groups and dilation) are in kernels/conv.py, with the
measurements that chose them. Sizes of the 2-D types are Params of kind "pair": an int, or a
pair [h, w], handed to the kernels as the document wrote them.
"""

from __future__ import annotations

import math
from typing import ClassVar

from .base import (
    FLOAT,
    NodeType,
    Param,
    Sample,
    ShapeError,
    TensorType,
    Weight,
    float_input,
    uniform,
)
from .kernels import (
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
)
from .registry import register

# -- sizes and the shape rules the convolution and pooling types share ------------------------


def pair(v) -> tuple:
    """A size param (an int or [h, w]) as (h, w)."""
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def out_length(n: int | None, k: int, stride: int, padding: int = 0,
               dilation: int = 1) -> int | None:
    """Output length along one axis (PyTorch's floor rule); None when n is unknown."""
    if n is None:
        return None
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def expect_rank(x: TensorType, layout: str) -> None:
    """A ShapeError on x unless it has one axis per letter of `layout` ("NCHW")."""
    if x.ndim != len(layout):
        axes = ", ".join(layout)
        raise ShapeError("x", f"expected {len(layout)} axes ({axes}), got {x.ndim}: {x}")


def window_output(x: TensorType, kernel, stride, padding, dilation=1) -> tuple:
    """The output lengths of x's spatial axes (those after N, C) for a window of `kernel` moved
    by `stride` (each an int or one entry per axis), or a ShapeError on x when the window does
    not fit the padded input."""
    names = "HW" if x.ndim == 4 else "L"
    sizes = [(v,) * len(names) if isinstance(v, int) else tuple(v)
             for v in (kernel, stride, padding, dilation)]
    out = []
    for name, n, k, s, pad, d in zip(names, x.shape[2:], *sizes):
        length = out_length(n, k, s, pad, d)
        if length is not None and length < 1:
            padded = f" plus padding {2 * pad}" if pad else ""
            span = f"{k}, dilated by {d} to {d * (k - 1) + 1}" if d > 1 else f"{k}"
            raise ShapeError("x", f"{name} = {n}{padded} is smaller than the kernel ({span})")
        out.append(length)
    return tuple(out)


def known_channels(x: TensorType, groups: int) -> int:
    c = x.shape[1]
    if c is None:
        raise ShapeError("x", f"needs a known number of channels (axis 1), got {x}")
    if c % groups:
        raise ShapeError("x", f"its {c} channels do not split into groups = {groups}")
    return c


def size_text(v) -> str:
    """A size for the canvas: 3 or [3, 5] as "3x3" or "3x5"."""
    h, w = pair(v)
    return f"{h}x{w}"


def compact_text(v) -> str:
    """A size for the canvas where one number says it: 2 as "2", [2, 1] as "2x1"."""
    return size_text(v) if isinstance(v, (list, tuple)) else str(v)


def torch_size(v) -> str:
    """A size as PyTorch's constructors take it: 3 or (3, 5)."""
    return f"({v[0]}, {v[1]})" if isinstance(v, (list, tuple)) else str(v)


# -- convolution ----------------------------------------------------------------------------


class _Conv(NodeType):
    """Conv1D and Conv2D: one rule, over the kernels of `kernels` (forward, backward)."""

    category = "Layers"
    layout = ""
    kernels: ClassVar[tuple] = ()
    torch_class = ""
    torch_forward = "{self}({x})"
    torch_weights: ClassVar[dict] = {"weight": ("weight", False), "bias": ("bias", False)}

    def np_forward(self, p, e):
        bias = "{bias}" if p["bias"] else "None"
        cols, shape = e.local("cols"), e.local("padded_shape")
        e.emit(e.fmt(f"{{y}}, {cols}, {shape} = {e.helper(self.kernels[0])}({{x}}, {{weight}}, "
                     f"{bias}, stride={{stride}}, padding={{padding}}, dilation={{dilation}}, "
                     f"groups={{groups}})"))

    def np_backward(self, p, e):
        gx, gw, gb = e.tmp("gx"), e.tmp("gw"), e.tmp("gb")
        need_x = e.lit(e.need("x"))
        e.emit(e.fmt(f"{gx}, {gw}, {gb} = {e.helper(self.kernels[1])}({e.local('cols')}, "
                     f"{e.local('padded_shape')}, {{weight}}, {{gy}}, stride={{stride}}, "
                     f"padding={{padding}}, dilation={{dilation}}, groups={{groups}}, "
                     f"need_x={need_x})"))
        return {"x": gx, "weight": gw, "bias": gb}

    def torch_module(self, p, e):
        extra = "".join(f", {name}={torch_size(p[name])}" for name in ("dilation", "groups")
                        if p[name] != 1)
        return (f"nn.{self.torch_class}({e.t('x').shape[1]}, {p['out_channels']}, "
                f"{torch_size(p['kernel_size'])}, stride={torch_size(p['stride'])}, "
                f"padding={torch_size(p['padding'])}{extra}, bias={p['bias']})")

    def onnx_forward(self, p, g):
        n = len(self.layout) - 2  # spatial axes
        kernel, stride, padding, dilation = (list(pair(p[k]))[:n] for k in (
            "kernel_size", "stride", "padding", "dilation"))
        bias = g.weight("bias") if p["bias"] else None
        return g.op("Conv", g.x(), g.weight("weight"), bias, kernel_shape=kernel,
                    strides=stride, pads=padding + padding, dilations=dilation,
                    group=p["groups"])

    def summary(self, p):
        text = f"{self.name} {p['out_channels']} {self.kernel_text(p['kernel_size'])}"
        if p["dilation"] != 1:
            text += f" d{compact_text(p['dilation'])}"
        if p["groups"] != 1:
            text += f" g{p['groups']}"
        return text

    def kernel_text(self, v) -> str:
        return size_text(v)

    def infer(self, p, ins):
        x = float_input(ins, "x")
        expect_rank(x, self.layout)
        out = window_output(x, p["kernel_size"], p["stride"], p["padding"], p["dilation"])
        known_channels(x, p["groups"])
        if p["out_channels"] % p["groups"]:
            raise ShapeError(None, f"out_channels = {p['out_channels']} does not split into "
                                   f"groups = {p['groups']}")
        return {"y": TensorType((x.shape[0], p["out_channels"]) + out, FLOAT)}

    def weights(self, p, ins):
        c_in = ins["x"].shape[1] // p["groups"]
        kernel = pair(p["kernel_size"])[:len(self.layout) - 2]
        fan_in = c_in * math.prod(kernel)
        bound = 1.0 / math.sqrt(fan_in)  # PyTorch's kaiming_uniform(a=sqrt(5)) and its bias
        out = {"weight": Weight((p["out_channels"], c_in) + kernel, uniform(bound))}
        if p["bias"]:
            out["bias"] = Weight((p["out_channels"],), uniform(bound))
        return out


_GROUPS = Param("groups", "int", 1, "Split the channels into this many groups, each convolved "
                "with its own filters (out_channels/groups of them).", minimum=1)
_BIAS = Param("bias", "bool", True, "Add a learned bias per output channel.")


@register
class Conv1D(_Conv):
    help = "1-D cross-correlation over NCL input, as PyTorch's Conv1d."
    layout = "NCL"
    kernels = (conv1d, conv1d_backward)
    torch_class = "Conv1d"
    params = (
        Param("out_channels", "int", help="Number of output channels.", minimum=1),
        Param("kernel_size", "int", help="Length of the kernel.", minimum=1),
        Param("stride", "int", 1, "Step between windows.", minimum=1),
        Param("padding", "int", 0, "Zeros added at both ends of L.", minimum=0),
        Param("dilation", "int", 1, "Spacing between kernel taps.", minimum=1),
        _GROUPS,
        _BIAS,
    )
    samples = (
        Sample({"out_channels": 3, "kernel_size": 3}, {"x": (2, 2, 7)}),
        Sample({"out_channels": 4, "kernel_size": 2, "stride": 2, "padding": 1, "dilation": 2,
                "groups": 2}, {"x": (2, 4, 9)}, note="every parameter"),
        Sample({"out_channels": 2, "kernel_size": 3, "padding": 2, "dilation": 2,
                "bias": False}, {"x": (1, 3, 5)}, note="dilated, stride 1, no bias"),
    )

    def kernel_text(self, v) -> str:
        return str(v)


_PAIR = "an int, or [h, w]"


@register
class Conv2D(_Conv):
    help = "2-D cross-correlation over NCHW input, as PyTorch's Conv2d."
    layout = "NCHW"
    kernels = (conv2d, conv2d_backward)
    torch_class = "Conv2d"
    params = (
        Param("out_channels", "int", help="Number of output channels.", minimum=1),
        Param("kernel_size", "pair", help=f"Height and width of the kernel: {_PAIR}.",
              minimum=1),
        Param("stride", "pair", 1, f"Step between windows: {_PAIR}.", minimum=1),
        Param("padding", "pair", 0, f"Zeros added on both sides of H and of W: {_PAIR}.",
              minimum=0),
        Param("dilation", "pair", 1, f"Spacing between kernel taps: {_PAIR}.", minimum=1),
        _GROUPS,
        _BIAS,
    )
    samples = (
        Sample({"out_channels": 2, "kernel_size": 3}, {"x": (2, 1, 5, 5)}),
        Sample({"out_channels": 3, "kernel_size": 2, "stride": 2, "padding": 1},
               {"x": (2, 2, 5, 4)}, note="stride and padding"),
        Sample({"out_channels": 2, "kernel_size": 3, "stride": 2, "bias": False},
               {"x": (1, 2, 7, 6)}, note="stride leaves a remainder, no bias"),
        Sample({"out_channels": 4, "kernel_size": 3, "padding": 1, "dilation": 2, "groups": 2},
               {"x": (2, 4, 6, 5)}, note="groups and dilation, stride 1"),
        Sample({"out_channels": 2, "kernel_size": [2, 3], "stride": [2, 1], "padding": [1, 0],
                "dilation": [1, 2]}, {"x": (2, 3, 5, 7)}, note="pairs"),
        Sample({"out_channels": 6, "kernel_size": 3, "stride": 2, "groups": 3, "bias": False},
               {"x": (2, 3, 7, 6)}, note="depthwise, strided"),
    )


@register
class ConvTranspose2D(NodeType):
    category = "Layers"
    help = "The transpose (gradient) of a 2-D convolution over NCHW input, as PyTorch's " \
           "ConvTranspose2d: upsamples by its stride."
    torch_forward = "{self}({x})"
    torch_weights: ClassVar[dict] = {"weight": ("weight", False), "bias": ("bias", False)}
    params = (
        Param("out_channels", "int", help="Number of output channels.", minimum=1),
        Param("kernel_size", "pair", help=f"Height and width of the kernel: {_PAIR}.",
              minimum=1),
        Param("stride", "pair", 1, f"Step between the input's positions in the output "
              f"(the upsampling factor): {_PAIR}.", minimum=1),
        Param("padding", "pair", 0, f"Rows and columns cut from both sides of the output: "
              f"{_PAIR}.", minimum=0),
        Param("output_padding", "pair", 0, f"Rows and columns added at the bottom and right of "
              f"the output, to reach a size stride makes ambiguous; less than stride: {_PAIR}.",
              minimum=0),
        _BIAS,
    )
    samples = (
        Sample({"out_channels": 2, "kernel_size": 3}, {"x": (2, 3, 4, 4)}),
        Sample({"out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1,
                "output_padding": 1}, {"x": (2, 2, 3, 4)}, note="upsampling by 2"),
        Sample({"out_channels": 2, "kernel_size": [2, 3], "stride": [2, 1], "padding": [0, 1],
                "bias": False}, {"x": (1, 2, 3, 3)}, note="pairs, no bias"),
    )

    def summary(self, p):
        text = f"{self.name} {p['out_channels']} {size_text(p['kernel_size'])}"
        return text + (f" s{compact_text(p['stride'])}" if p["stride"] != 1 else "")

    def infer(self, p, ins):
        x = float_input(ins, "x")
        expect_rank(x, "NCHW")
        for s, extra in zip(pair(p["stride"]), pair(p["output_padding"])):
            if extra >= s:
                raise ShapeError(None, f"output_padding ({p['output_padding']}) must be "
                                       f"smaller than stride ({p['stride']})")
        known_channels(x, 1)
        out = []
        for name, n, k, s, pad, extra in zip("HW", x.shape[2:], *map(pair, (
                p["kernel_size"], p["stride"], p["padding"], p["output_padding"]))):
            length = None if n is None else (n - 1) * s - 2 * pad + k + extra
            if length is not None and length < 1:
                raise ShapeError("x", f"{name} = {n} gives an output {name} of {length}: "
                                      f"padding {pad} cuts more than the kernel adds")
            out.append(length)
        return {"y": TensorType((x.shape[0], p["out_channels"]) + tuple(out), FLOAT)}

    def weights(self, p, ins):
        c_in, kernel = ins["x"].shape[1], pair(p["kernel_size"])
        # PyTorch's fan-in of a transposed convolution's weight (in, out, kh, kw) is out*kh*kw.
        bound = 1.0 / math.sqrt(p["out_channels"] * math.prod(kernel))
        out = {"weight": Weight((c_in, p["out_channels"]) + kernel, uniform(bound))}
        if p["bias"]:
            out["bias"] = Weight((p["out_channels"],), uniform(bound))
        return out

    def np_forward(self, p, e):
        bias = "{bias}" if p["bias"] else "None"
        return e.fmt(f"{e.helper(conv_transpose2d)}({{x}}, {{weight}}, {bias}, "
                     f"stride={{stride}}, padding={{padding}}, "
                     f"output_padding={{output_padding}})")

    def np_backward(self, p, e):
        gx, gw, gb = e.tmp("gx"), e.tmp("gw"), e.tmp("gb")
        need = ", ".join(f"{arg}={e.lit(e.need(name))}" for arg, name in (
            ("need_x", "x"), ("need_w", "weight"), ("has_bias", "bias")))
        e.emit(e.fmt(f"{gx}, {gw}, {gb} = {e.helper(conv_transpose2d_backward)}({{x}}, "
                     f"{{weight}}, {{gy}}, stride={{stride}}, padding={{padding}}, {need})"))
        return {"x": gx, "weight": gw, "bias": gb}

    def torch_module(self, p, e):
        extra = p["output_padding"]
        return (f"nn.ConvTranspose2d({e.t('x').shape[1]}, {p['out_channels']}, "
                f"{torch_size(p['kernel_size'])}, stride={torch_size(p['stride'])}, "
                f"padding={torch_size(p['padding'])}"
                + (f", output_padding={torch_size(extra)}" if extra != 0 else "")
                + f", bias={p['bias']})")

    def onnx_forward(self, p, g):
        kernel, stride, padding, extra = (list(pair(p[k])) for k in (
            "kernel_size", "stride", "padding", "output_padding"))
        bias = g.weight("bias") if p["bias"] else None
        return g.op("ConvTranspose", g.x(), g.weight("weight"), bias, kernel_shape=kernel,
                    strides=stride, pads=padding + padding, output_padding=extra)
