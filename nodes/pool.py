"""Pooling over NCHW tensors, as PyTorch computes it: MaxPool2D, AvgPool2D, AdaptiveAvgPool2D.

The kernels (tiled pooling, averaging matrices) are in kernels/pool.py, with the measurements
that chose them. Sizes are Params of kind "pair": an int, or a pair [h, w].
"""

from __future__ import annotations

import numpy as np

from .base import FLOAT, NodeType, Param, Sample, ShapeError, TensorType, float_input
from .conv import expect_rank, pair, size_text, torch_size, window_output
from .kernels import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_weights,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from .registry import register

_PAIR = "an int, or [h, w]"


class Pool2D(NodeType):
    category = "Layers"
    params = (
        Param("kernel_size", "pair", help=f"Height and width of the window: {_PAIR}.",
              minimum=1),
        Param("stride", "pair", None, f"Step between windows: {_PAIR}; null: kernel_size.",
              minimum=1, nullable=True),
        Param("padding", "pair", 0, f"Added on both sides of H and of W, at most half the "
              f"window: {_PAIR}.", minimum=0),
    )
    samples = (
        Sample({"kernel_size": 2}, {"x": (2, 2, 4, 4)}),
        Sample({"kernel_size": 2}, {"x": (2, 1, 5, 3)}, note="odd sizes drop the remainder"),
        Sample({"kernel_size": 3, "stride": 1}, {"x": (1, 2, 5, 5)}, note="overlapping"),
        Sample({"kernel_size": 2, "stride": 3}, {"x": (2, 1, 7, 7)}, note="gaps"),
        Sample({"kernel_size": 3, "stride": 2, "padding": 1}, {"x": (2, 2, 5, 6)},
               note="padding, overlapping"),
        Sample({"kernel_size": [2, 3], "padding": [1, 1]}, {"x": (2, 1, 5, 4)},
               note="pairs, padded tiles"),
        Sample({"kernel_size": [3, 1], "stride": [1, 2], "padding": [1, 0]},
               {"x": (1, 2, 4, 5)}, note="pairs, overlapping"),
    )

    def summary(self, p):
        return f"{self.name} {size_text(p['kernel_size'])}"

    @staticmethod
    def sizes(p) -> tuple:
        """(kernel, stride, padding) as the kernels take them: stride null is the kernel."""
        stride = p["kernel_size"] if p["stride"] is None else p["stride"]
        return p["kernel_size"], stride, p["padding"]

    def infer(self, p, ins):
        x = float_input(ins, "x")
        kernel, stride, padding = self.sizes(p)
        for k, pad in zip(pair(kernel), pair(padding)):
            if 2 * pad > k:  # PyTorch refuses it: a window could then hold only padding
                raise ShapeError(None, f"padding ({padding}) must be at most half the window "
                                       f"(kernel_size {kernel})")
        expect_rank(x, "NCHW")
        ho, wo = window_output(x, kernel, stride, padding)
        return {"y": TensorType(x.shape[:2] + (ho, wo), FLOAT)}

    def fields(self, p, e) -> str:
        kernel, stride, padding = (e.lit(v) for v in self.sizes(p))
        return f"{kernel}, stride={stride}, padding={padding}"

    def torch_sizes(self, p) -> str:
        kernel, stride, padding = self.sizes(p)
        text = f"{torch_size(kernel)}, {torch_size(stride)}"
        return text + (f", {torch_size(padding)}" if padding != 0 else "")

    def onnx_sizes(self, p) -> dict:
        """The window as ONNX pooling operators take it (attributes)."""
        kernel, stride, padding = (list(pair(v)) for v in self.sizes(p))
        return {"kernel_shape": kernel, "strides": stride, "pads": padding + padding}


@register
class MaxPool2D(Pool2D):
    help = "Maximum over windows of NCHW input; the gradient goes to the arg-max."

    def np_forward(self, p, e):
        e.emit(e.fmt(f"{{y}}, {e.local('argmax')} = {e.helper(max_pool2d)}({{x}}, "
                     f"{self.fields(p, e)})"))

    def np_backward(self, p, e):
        name = e.helper(max_pool2d_backward)
        return {"x": e.fmt(f"{name}({{x}}.shape, {e.local('argmax')}, {{gy}}, "
                           f"{self.fields(p, e)})")}

    def torch_forward(self, p, e):
        return e.fmt(f"F.max_pool2d({{x}}, {self.torch_sizes(p)})")

    def onnx_forward(self, p, g):
        # Padding never wins a maximum in ONNX's MaxPool, as in PyTorch's (-inf).
        return g.op("MaxPool", g.x(), **self.onnx_sizes(p))


@register
class AvgPool2D(Pool2D):
    help = "Mean over windows of NCHW input (padding counts as zeros, as PyTorch's default)."

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(avg_pool2d)}({{x}}, {self.fields(p, e)})")

    def np_backward(self, p, e):
        name = e.helper(avg_pool2d_backward)
        return {"x": e.fmt(f"{name}({{x}}.shape, {{gy}}, {self.fields(p, e)})")}

    def torch_forward(self, p, e):
        return e.fmt(f"F.avg_pool2d({{x}}, {self.torch_sizes(p)})")

    def onnx_forward(self, p, g):
        return g.op("AveragePool", g.x(), count_include_pad=1, **self.onnx_sizes(p))


@register
class AdaptiveAvgPool2D(NodeType):
    category = "Layers"
    help = "Mean over windows of NCHW input sized to give output_size, as PyTorch's " \
           "AdaptiveAvgPool2d (output_size 1: global average pooling)."
    params = (
        Param("output_size", "pair", help=f"Height and width of the output: {_PAIR}. Where "
              "it does not divide the input, windows differ in size (and may overlap).",
              minimum=1),
    )
    samples = (
        Sample({"output_size": 2}, {"x": (2, 3, 4, 4)}),
        Sample({"output_size": [3, 2]}, {"x": (2, 2, 5, 7)}, note="sizes that do not divide"),
        Sample({"output_size": [4, 1]}, {"x": (1, 2, 3, 5)},
               note="larger than the input on H, global on W"),
    )
    def summary(self, p):
        return f"{self.name} {size_text(p['output_size'])}"

    def infer(self, p, ins):
        x = float_input(ins, "x")
        expect_rank(x, "NCHW")
        return {"y": TensorType(x.shape[:2] + pair(p["output_size"]), FLOAT)}

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(adaptive_avg_pool2d)}({{x}}, {{output_size}})")

    def np_backward(self, p, e):
        name = e.helper(adaptive_avg_pool2d_backward)
        return {"x": e.fmt(f"{name}({{x}}.shape, {{gy}}, {{output_size}})")}

    def torch_forward(self, p, e):
        return e.fmt(f"F.adaptive_avg_pool2d({{x}}, {torch_size(p['output_size'])})")

    def onnx_forward(self, p, g):
        # The kernel's averaging matrices, as constants: A_h @ x @ A_w^T.
        h, w = g.t().shape[2:]
        if h is None or w is None:
            g.fail("the ONNX export needs the input's H and W known to size the windows")
        oh, ow = pair(p["output_size"])
        rows = g.const(adaptive_weights(h, oh, np.float64))
        cols = g.const(adaptive_weights(w, ow, np.float64).T)
        return g.op("MatMul", g.op("MatMul", rows, g.x()), cols)
