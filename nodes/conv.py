"""2-D convolution and pooling over NCHW tensors, as PyTorch computes them.

The kernels (im2col convolution, tiled pooling) are in kernels/conv.py, with the measurements
that chose them.
"""

from __future__ import annotations

import math

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
from .kernels import avg_pool2d, avg_pool2d_backward, conv2d, conv2d_backward, max_pool2d, max_pool2d_backward
from .registry import register


def out_length(n: int | None, k: int, stride: int, padding: int = 0) -> int | None:
    """Output length along one spatial axis (PyTorch's floor rule); None when n is unknown."""
    if n is None:
        return None
    return (n + 2 * padding - k) // stride + 1


def _spatial_output(p: dict, x: TensorType, padding: int = 0) -> tuple:
    """(Ho, Wo) for a k x k window moved by the node's stride, or a ShapeError."""
    if x.ndim != 4:
        raise ShapeError("x", f"expected 4 axes (N, C, H, W), got {x.ndim}: {x}")
    k, stride = p["kernel_size"], p["stride"] or p["kernel_size"]
    out = []
    for name, n in (("H", x.shape[2]), ("W", x.shape[3])):
        length = out_length(n, k, stride, padding)
        if length is not None and length < 1:
            pad = f" plus padding {2 * padding}" if padding else ""
            raise ShapeError("x", f"{name} = {n}{pad} is smaller than the kernel ({k})")
        out.append(length)
    return tuple(out)


@register
class Conv2D(NodeType):
    category = "Layers"
    help = "2-D cross-correlation over NCHW input, as PyTorch's Conv2d."
    torch_forward = "{self}({x})"
    torch_weights = {"weight": ("weight", False), "bias": ("bias", False)}


    def np_forward(self, p, e):
        bias = "{bias}" if p["bias"] else "None"
        cols, shape = e.local("cols"), e.local("padded_shape")
        e.emit(e.fmt(f"{{y}}, {cols}, {shape} = {e.helper(conv2d)}({{x}}, {{weight}}, {bias}, "
                     f"{{stride}}, {{padding}})"))

    def np_backward(self, p, e):
        gx, gw, gb = e.tmp("gx"), e.tmp("gw"), e.tmp("gb")
        need_x = e.lit(e.need("x"))
        e.emit(e.fmt(f"{gx}, {gw}, {gb} = {e.helper(conv2d_backward)}({e.local('cols')}, "
                     f"{e.local('padded_shape')}, {{weight}}, {{gy}}, {{stride}}, {{padding}}, "
                     f"{need_x})"))
        return {"x": gx, "weight": gw, "bias": gb}

    def torch_module(self, p, e):
        return (f"nn.Conv2d({e.t('x').shape[1]}, {p['out_channels']}, {p['kernel_size']}, "
                f"stride={p['stride']}, padding={p['padding']}, bias={p['bias']})")
    params = (
        Param("out_channels", "int", help="Number of output channels.", minimum=1),
        Param("kernel_size", "int", help="Height and width of the square kernel.", minimum=1),
        Param("stride", "int", 1, "Step between windows.", minimum=1),
        Param("padding", "int", 0, "Zeros added on every side of H and W.", minimum=0),
        Param("bias", "bool", True, "Add a learned bias per output channel."),
    )
    summary_format = "{out_channels} {kernel_size}x{kernel_size}"
    samples = (
        Sample({"out_channels": 2, "kernel_size": 3}, {"x": (2, 1, 5, 5)}),
        Sample({"out_channels": 3, "kernel_size": 2, "stride": 2, "padding": 1},
               {"x": (2, 2, 5, 4)}, note="stride and padding"),
        Sample({"out_channels": 2, "kernel_size": 3, "stride": 2, "bias": False},
               {"x": (1, 2, 7, 6)}, note="stride leaves a remainder, no bias"),
    )

    def infer(self, p, ins):
        x = float_input(ins, "x")
        ho, wo = _spatial_output(p, x, p["padding"])
        if x.shape[1] is None:
            raise ShapeError("x", f"needs a known number of channels (axis 1), got {x}")
        return {"y": TensorType((x.shape[0], p["out_channels"], ho, wo), FLOAT)}

    def weights(self, p, ins):
        c_in, k = ins["x"].shape[1], p["kernel_size"]
        bound = 1.0 / math.sqrt(c_in * k * k) if c_in else 0.0
        out = {"weight": Weight((p["out_channels"], c_in, k, k), uniform(bound))}
        if p["bias"]:
            out["bias"] = Weight((p["out_channels"],), uniform(bound))
        return out


class Pool2D(NodeType):
    category = "Layers"
    params = (
        Param("kernel_size", "int", help="Height and width of the square window.", minimum=1),
        Param("stride", "int", None, "Step between windows; null: kernel_size.", minimum=1,
              nullable=True),
    )
    summary_format = "{kernel_size}x{kernel_size}"
    samples = (
        Sample({"kernel_size": 2}, {"x": (2, 2, 4, 4)}),
        Sample({"kernel_size": 2}, {"x": (2, 1, 5, 3)}, note="odd sizes drop the remainder"),
        Sample({"kernel_size": 3, "stride": 1}, {"x": (1, 2, 5, 5)}, note="overlapping"),
        Sample({"kernel_size": 2, "stride": 3}, {"x": (2, 1, 7, 7)}, note="gaps"),
    )

    def infer(self, p, ins):
        x = float_input(ins, "x")
        ho, wo = _spatial_output(p, x)
        return {"y": TensorType(x.shape[:2] + (ho, wo), FLOAT)}


@register
class MaxPool2D(Pool2D):
    help = "Maximum over k x k windows of NCHW input; the gradient goes to the arg-max."


    def np_forward(self, p, e):
        k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
        e.emit(e.fmt(f"{{y}}, {e.local('argmax')} = {e.helper(max_pool2d)}({{x}}, {k}, {s})"))

    def np_backward(self, p, e):
        k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
        name = e.helper(max_pool2d_backward)
        return {"x": e.fmt(f"{name}({{x}}.shape, {e.local('argmax')}, {{gy}}, {k}, {s})")}

    def torch_forward(self, p, e):
        return e.fmt(f"F.max_pool2d({{x}}, {p['kernel_size']}, {p['stride'] or p['kernel_size']})")


@register
class AvgPool2D(Pool2D):
    help = "Mean over k x k windows of NCHW input."


    def np_forward(self, p, e):
        k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
        return e.fmt(f"{e.helper(avg_pool2d)}({{x}}, {k}, {s})")

    def np_backward(self, p, e):
        k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
        return {"x": e.fmt(f"{e.helper(avg_pool2d_backward)}({{x}}.shape, {{gy}}, {k}, {s})")}

    def torch_forward(self, p, e):
        return e.fmt(f"F.avg_pool2d({{x}}, {p['kernel_size']}, {p['stride'] or p['kernel_size']})")
