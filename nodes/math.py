"""Elementwise and linear-algebra math: binary ops with broadcasting, unary functions, MatMul,
Greater and Where.

Gradients written here may be the upstream gradient itself (Add passes it straight through);
generated code never modifies a gradient in place.
"""

from __future__ import annotations

from .base import (
    FLOAT,
    NodeType,
    Param,
    Sample,
    ShapeError,
    TensorType,
    broadcast_shapes,
    float_input,
)
from .kernels import matmul_backward
from .registry import register

_BIN_SAMPLES = (
    Sample({}, {"a": (3, 4), "b": (3, 4)}),
    Sample({}, {"a": (3, 4), "b": (4,)}, note="b broadcast over the batch"),
    Sample({}, {"a": (2, 1, 4), "b": (2, 3, 1)}, note="both broadcast"),
)


# ---------------------------------------------------------------------------------------------
# Binary elementwise


class Binary(NodeType):
    """a (op) b with numpy broadcasting. Subclasses give the templates `np_forward` and
    `np_grads`, each port's gradient before it is summed back to the port's shape (which
    `np_backward` does for the family)."""

    category = "Math"
    inputs = ("a", "b")
    samples = _BIN_SAMPLES
    np_grads: dict = {}

    def np_backward(self, p, e):
        return {port: e.ub(e.fmt(t), port) for port, t in self.np_grads.items() if e.need(port)}

    def infer(self, p, ins):
        a, b = float_input(ins, "a"), float_input(ins, "b")
        return {"y": TensorType(broadcast_shapes(a.shape, b.shape), FLOAT)}


@register
class Add(Binary):
    help = "a + b, broadcasting."
    np_forward = "{a} + {b}"
    np_grads = {"a": "{gy}", "b": "{gy}"}
    torch_forward = "{a} + {b}"
    onnx_forward = "Add"


@register
class Sub(Binary):
    help = "a - b, broadcasting."
    np_forward = "{a} - {b}"
    np_grads = {"a": "{gy}", "b": "-{gy}"}
    torch_forward = "{a} - {b}"
    onnx_forward = "Sub"


@register
class Mul(Binary):
    help = "a * b elementwise, broadcasting."
    np_forward = "{a} * {b}"
    np_grads = {"a": "{gy} * {b}", "b": "{gy} * {a}"}
    torch_forward = "{a} * {b}"
    onnx_forward = "Mul"


@register
class Div(Binary):
    help = "a / b elementwise, broadcasting."
    np_forward = "{a} / {b}"
    np_grads = {"a": "{gy} / {b}", "b": "-{gy} * {y} / {b}"}
    torch_forward = "{a} / {b}"
    onnx_forward = "Div"


@register
class Maximum(Binary):
    help = "The larger of a and b elementwise; a tie splits the gradient equally."
    np_forward = "np.maximum({a}, {b})"
    np_grads = {"a": "{gy} * np.where({a} == {b}, 0.5, {a} > {b}).astype({gy}.dtype)",
                "b": "{gy} * np.where({a} == {b}, 0.5, {a} < {b}).astype({gy}.dtype)"}
    torch_forward = "torch.maximum({a}, {b})"
    onnx_forward = "Max"


@register
class Minimum(Binary):
    help = "The smaller of a and b elementwise; a tie splits the gradient equally."
    np_forward = "np.minimum({a}, {b})"
    np_grads = {"a": "{gy} * np.where({a} == {b}, 0.5, {a} < {b}).astype({gy}.dtype)",
                "b": "{gy} * np.where({a} == {b}, 0.5, {a} > {b}).astype({gy}.dtype)"}
    torch_forward = "torch.minimum({a}, {b})"
    onnx_forward = "Min"


# ---------------------------------------------------------------------------------------------
# MatMul


@register
class MatMul(NodeType):
    category = "Math"
    help = "numpy matmul: matrix product over the last two axes, batched by broadcasting."
    inputs = ("a", "b")
    samples = (
        Sample({}, {"a": (3, 4), "b": (4, 2)}, note="batch of rows times a matrix"),
        Sample({}, {"a": (2, 3, 4), "b": (2, 4, 5)}, note="batched"),
        Sample({}, {"a": (2, 1, 3, 4), "b": (3, 4, 2)}, note="batch axes broadcast"),
        Sample({}, {"a": (2, 3, 4), "b": (4,)}, note="1-D b"),
        Sample({}, {"a": (4,), "b": (2, 4, 3)}, note="1-D a"),
        Sample({}, {"a": (4,), "b": (4,)}, note="dot product"),
    )
    np_forward = "np.asarray(np.matmul({a}, {b}))"

    def mixes_batch(self, p, ins):
        # b's batch axis is contracted when b is a batched matrix and a is not batched.
        a, b = ins["a"], ins["b"]
        return b.ndim == 2 and b.shape[0] is None and not (a.ndim >= 1 and a.shape[0] is None)

    torch_forward = "torch.matmul({a}, {b})"
    onnx_forward = "MatMul"

    def np_backward(self, p, e):
        if e.ndim("a") == 2 and e.ndim("b") == 2:
            return {"a": e.fmt("{gy} @ {b}.T"), "b": e.fmt("{a}.T @ {gy}")}
        name = e.helper(matmul_backward)
        ga, gb = e.tmp("ga"), e.tmp("gb")
        e.emit(e.fmt(f"{ga}, {gb} = {name}({{a}}, {{b}}, {{gy}})"))
        return {"a": ga, "b": gb}

    def infer(self, p, ins):
        a, b = float_input(ins, "a"), float_input(ins, "b")
        if a.ndim == 0:
            raise ShapeError("a", "MatMul needs at least 1 axis, got a single number")
        if b.ndim == 0:
            raise ShapeError("b", "MatMul needs at least 1 axis, got a single number")
        sa = a.shape if a.ndim > 1 else (1,) + a.shape
        sb = b.shape if b.ndim > 1 else b.shape + (1,)
        ka, kb = sa[-1], sb[-2]
        if ka is not None and kb is not None and ka != kb:
            raise ShapeError("b", f"inner lengths differ: a {a} has {ka} columns, "
                                  f"b {b} has {kb} rows")
        batch = broadcast_shapes(sa[:-2], sb[:-2])
        out = batch + (() if a.ndim == 1 else (sa[-2],)) + (() if b.ndim == 1 else (sb[-1],))
        return {"y": TensorType(out, FLOAT)}


# ---------------------------------------------------------------------------------------------
# Comparison and selection


@register
class Greater(NodeType):
    category = "Math"
    help = "1.0 where a > b, else 0.0 (no gradient)."
    inputs = ("a", "b")
    nondiff_inputs = ("a", "b")
    samples = _BIN_SAMPLES
    np_forward = "({a} > {b}).astype(np.result_type({a}, {b}))"
    np_backward: dict = {}
    torch_forward = "({a} > {b}).to(torch.result_type({a}, {b}))"

    def onnx_forward(self, p, g):
        return g.cast(g.op("Greater", g.x("a"), g.x("b")), "float")

    def infer(self, p, ins):
        a, b = float_input(ins, "a"), float_input(ins, "b")
        return {"y": TensorType(broadcast_shapes(a.shape, b.shape), FLOAT)}


@register
class Where(NodeType):
    category = "Math"
    help = "a where cond > 0, else b, broadcasting all three."
    inputs = ("cond", "a", "b")
    nondiff_inputs = ("cond",)
    samples = (
        Sample({}, {"cond": (3, 4), "a": (3, 4), "b": (3, 4)}),
        Sample({}, {"cond": (3, 1), "a": (3, 4), "b": (4,)}, note="per-row condition"),
        Sample({}, {"cond": (2, 3, 4), "a": (1,), "b": (2, 1, 4)}, note="a and b broadcast"),
    )
    np_forward = "np.where({cond} > 0, {a}, {b})"
    torch_forward = "torch.where({cond} > 0, {a}, {b})"

    def onnx_forward(self, p, g):
        return g.where(g.positive("cond"), g.x("a"), g.x("b"))

    def np_backward(self, p, e):
        # np.where rather than multiplying by the mask: inf * 0 would leak NaN into the side
        # that was not taken.
        grads = {"a": "np.where({cond} > 0, {gy}, 0)", "b": "np.where({cond} > 0, 0, {gy})"}
        return {port: e.ub(e.fmt(t), port) for port, t in grads.items() if e.need(port)}

    def infer(self, p, ins):
        # The condition is only compared with 0, so int64 works as well as float.
        cond = ins["cond"]
        a, b = float_input(ins, "a"), float_input(ins, "b")
        shape = broadcast_shapes(a.shape, b.shape)
        return {"y": TensorType(broadcast_shapes(cond.shape, shape, port="cond"), FLOAT)}


# ---------------------------------------------------------------------------------------------
# Unary elementwise


class Unary(NodeType):
    """y = f(x) elementwise, from the templates `np_forward` and `np_backward["x"]`."""

    category = "Math"
    samples = (Sample({}, {"x": (3, 4)}), Sample({}, {"x": (2, 3, 4)}))

    def rowwise_axes(self, p):
        return 0

    def infer(self, p, ins):
        return {"y": float_input(ins, "x")}


@register
class Neg(Unary):
    help = "-x."
    np_forward = "-{x}"
    np_backward = {"x": "-{gy}"}
    torch_forward = "-{x}"
    onnx_forward = "Neg"


@register
class Exp(Unary):
    help = "e to the x."
    np_forward = "np.exp({x})"
    np_backward = {"x": "{gy} * {y}"}
    torch_forward = "torch.exp({x})"
    onnx_forward = "Exp"


@register
class Log(Unary):
    help = "Natural logarithm (x must be > 0)."
    np_forward = "np.log({x})"
    np_backward = {"x": "{gy} / {x}"}
    torch_forward = "torch.log({x})"
    onnx_forward = "Log"
    samples = (Sample({}, {"x": (3, 4)}, positive=("x",)),)


@register
class Sqrt(Unary):
    help = "Square root (x must be >= 0)."
    np_forward = "np.sqrt({x})"
    np_backward = {"x": "{gy} * 0.5 / {y}"}
    torch_forward = "torch.sqrt({x})"
    onnx_forward = "Sqrt"
    samples = (Sample({}, {"x": (3, 4)}, positive=("x",)),)


@register
class Square(Unary):
    help = "x * x."
    np_forward = "{x} * {x}"
    np_backward = {"x": "{gy} * 2.0 * {x}"}
    torch_forward = "{x} * {x}"

    def onnx_forward(self, p, g):
        return g.op("Mul", g.x(), g.x())


@register
class Abs(Unary):
    help = "|x|; the gradient at 0 is 0, as in PyTorch."
    np_forward = "np.abs({x})"
    np_backward = {"x": "{gy} * np.sign({x})"}
    torch_forward = "torch.abs({x})"
    onnx_forward = "Abs"


@register
class Sin(Unary):
    help = "Sine."
    np_forward = "np.sin({x})"
    np_backward = {"x": "{gy} * np.cos({x})"}
    torch_forward = "torch.sin({x})"
    onnx_forward = "Sin"


@register
class Cos(Unary):
    help = "Cosine."
    np_forward = "np.cos({x})"
    np_backward = {"x": "-{gy} * np.sin({x})"}
    torch_forward = "torch.cos({x})"
    onnx_forward = "Cos"


@register
class Pow(Unary):
    help = "x to the power exponent."
    params = (Param("exponent", "float", help="The power."),)
    summary_format = "^{exponent:g}"
    samples = (
        Sample({"exponent": 3.0}, {"x": (3, 4)}),
        Sample({"exponent": 0.5}, {"x": (3, 4)}, positive=("x",), note="fractional power"),
        Sample({"exponent": -1.5}, {"x": (2, 3)}, positive=("x",), note="negative power"),
        Sample({"exponent": 0.0}, {"x": (2, 3)}, note="constant one"),
    )
    np_forward = "{x} ** {exponent}"
    torch_forward = "torch.pow({x}, {exponent})"

    def onnx_forward(self, p, g):
        return g.op("Pow", g.x(), g.const(p["exponent"]))

    def np_backward(self, p, e):
        if p["exponent"] == 0.0:
            # d/dx x**0 is 0 everywhere, also at x = 0 where the formula would give 0 * inf.
            return {"x": e.fmt("np.zeros_like({gy})")}
        return {"x": e.fmt("{gy} * {exponent} * {x} ** ") + e.lit(p["exponent"] - 1.0)}
