"""Elementwise and linear-algebra math: binary ops with broadcasting, unary functions, MatMul,
Greater and Where.

Gradients returned here may be views of the upstream gradient (Add passes it straight through);
callers must not modify gradients in place.
"""

from __future__ import annotations

import re

import numpy as np

from .base import (
    FLOAT,
    NodeType,
    Param,
    Sample,
    ShapeError,
    TensorType,
    broadcast_shapes,
    float_input,
    unbroadcast,
)
from .registry import register

_BIN_SAMPLES = (
    Sample({}, {"a": (3, 4), "b": (3, 4)}),
    Sample({}, {"a": (3, 4), "b": (4,)}, note="b broadcast over the batch"),
    Sample({}, {"a": (2, 1, 4), "b": (2, 3, 1)}, note="both broadcast"),
)


# ---------------------------------------------------------------------------------------------
# Elementwise types made from their export templates


def template_function(template: str, values: tuple):
    """(function, parameter names) evaluating an export template such as "{gy} * np.cos({x})".

    The function takes `values` then the parameters: the placeholders that are not among
    `values`, read from a node's params. The template is this library's own text, never a
    document's.
    """
    names = list(dict.fromkeys(re.findall(r"\{(\w+)\}", template)))
    params = [n for n in names if n not in values]
    expression = template.format(**{n: n for n in names})
    code = f"lambda {', '.join(values + tuple(params))}: {expression}"
    return eval(code, {"np": np}), params  # a template of this library, see above


def _with_params(function, params: list):
    """A method (self, p, *values) calling `function` with the node's params appended."""
    if not params:
        return lambda self, p, *args: function(*args)
    return lambda self, p, *args: function(*args, *(p[n] for n in params))


# ---------------------------------------------------------------------------------------------
# Binary elementwise


class Binary(NodeType):
    """a (op) b with numpy broadcasting. Subclasses give `fn` and `grads`, or only the export
    templates, from which fn and grads are made (see Unary).

    Export: `np_forward`/`torch_forward` templates, and `np_grads`, each port's gradient
    before it is summed back to the port's shape (`np_backward` does that for the family).
    """

    category = "Math"
    inputs = ("a", "b")
    samples = _BIN_SAMPLES
    np_grads: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "fn" not in cls.__dict__ and isinstance(cls.__dict__.get("np_forward"), str):
            f, _ = template_function(cls.np_forward, ("a", "b"))
            cls.fn = lambda self, a, b: f(a, b)
        grads = cls.__dict__.get("np_grads")
        if "grads" not in cls.__dict__ and grads:
            ga, _ = template_function(grads["a"], ("a", "b", "y", "gy"))
            gb, _ = template_function(grads["b"], ("a", "b", "y", "gy"))
            cls.grads = lambda self, a, b, y, gy, need: (
                ga(a, b, y, gy) if need[0] else None, gb(a, b, y, gy) if need[1] else None)

    def np_backward(self, p, e):
        return {port: e.ub(e.fmt(t), port) for port, t in self.np_grads.items() if e.need(port)}

    def infer(self, p, ins):
        a, b = float_input(ins, "a"), float_input(ins, "b")
        return {"y": TensorType(broadcast_shapes(a.shape, b.shape), FLOAT)}

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
    np_forward = "{a} + {b}"
    np_grads = {"a": "{gy}", "b": "{gy}"}
    torch_forward = "{a} + {b}"

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
    np_forward = "{a} - {b}"
    np_grads = {"a": "{gy}", "b": "-{gy}"}
    torch_forward = "{a} - {b}"

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
    np_forward = "{a} * {b}"
    np_grads = {"a": "{gy} * {b}", "b": "{gy} * {a}"}
    torch_forward = "{a} * {b}"


@register
class Div(Binary):
    help = "a / b elementwise, broadcasting."
    np_forward = "{a} / {b}"
    np_grads = {"a": "{gy} / {b}", "b": "-{gy} * {y} / {b}"}
    torch_forward = "{a} / {b}"


@register
class Maximum(Binary):
    help = "The larger of a and b elementwise; a tie splits the gradient equally."
    np_forward = "np.maximum({a}, {b})"
    np_grads = {"a": "{gy} * np.where({a} == {b}, 0.5, {a} > {b}).astype({gy}.dtype)",
                "b": "{gy} * np.where({a} == {b}, 0.5, {a} < {b}).astype({gy}.dtype)"}
    torch_forward = "torch.maximum({a}, {b})"


@register
class Minimum(Binary):
    help = "The smaller of a and b elementwise; a tie splits the gradient equally."
    np_forward = "np.minimum({a}, {b})"
    np_grads = {"a": "{gy} * np.where({a} == {b}, 0.5, {a} < {b}).astype({gy}.dtype)",
                "b": "{gy} * np.where({a} == {b}, 0.5, {a} > {b}).astype({gy}.dtype)"}
    torch_forward = "torch.minimum({a}, {b})"


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
    torch_forward = "torch.matmul({a}, {b})"

    @property
    def np_helpers(self):
        return (matmul_backward,)

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

    def forward(self, p, xs, ws, ctx):
        a, b = xs
        return [np.asarray(np.matmul(a, b))], (a, b)

    def backward(self, p, saved, gys, need):
        a, b = saved
        gy = gys[0]
        # Promote 1-D operands to matrices as matmul does, then drop the added axes again.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        gy2 = gy[..., None] if b.ndim == 1 else gy
        gy2 = gy2[..., None, :] if a.ndim == 1 else gy2
        ga = gb = None
        if need[0]:
            ga = unbroadcast(gy2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if need[1]:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ gy2, b2.shape).reshape(b.shape)
        return [ga, gb]


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

    def infer(self, p, ins):
        a, b = float_input(ins, "a"), float_input(ins, "b")
        return {"y": TensorType(broadcast_shapes(a.shape, b.shape), FLOAT)}

    def forward(self, p, xs, ws, ctx):
        a, b = xs
        return [(a > b).astype(np.result_type(a, b))], None

    def backward(self, p, saved, gys, need):
        return [None, None]


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

    def np_backward(self, p, e):
        grads = {"a": "np.where({cond} > 0, {gy}, 0)", "b": "np.where({cond} > 0, 0, {gy})"}
        return {port: e.ub(e.fmt(t), port) for port, t in grads.items() if e.need(port)}

    def infer(self, p, ins):
        # The condition is only compared with 0, so int64 works as well as float.
        cond = ins["cond"]
        a, b = float_input(ins, "a"), float_input(ins, "b")
        shape = broadcast_shapes(a.shape, b.shape)
        return {"y": TensorType(broadcast_shapes(cond.shape, shape, port="cond"), FLOAT)}

    def forward(self, p, xs, ws, ctx):
        cond, a, b = xs
        mask = cond > 0
        return [np.where(mask, a, b)], (mask, a.shape, b.shape)

    def backward(self, p, saved, gys, need):
        mask, sa, sb = saved
        gy = gys[0]
        zero = gy.dtype.type(0)
        # np.where rather than multiplying by the mask: inf * 0 would leak NaN into the side
        # that was not taken.
        ga = unbroadcast(np.where(mask, gy, zero), sa) if need[1] else None
        gb = unbroadcast(np.where(mask, zero, gy), sb) if need[2] else None
        return [None, ga, gb]


# ---------------------------------------------------------------------------------------------
# Unary elementwise


class Unary(NodeType):
    """y = f(x) elementwise. Subclasses give `fn(p, x)` and `grad(p, x, y, gy)`, or only the
    export templates `np_forward` and `np_backward["x"]`: then fn and grad are made from those
    very expressions, so the engine and the exported code compute the same thing."""

    category = "Math"
    samples = (Sample({}, {"x": (3, 4)}), Sample({}, {"x": (2, 3, 4)}))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "fn" not in cls.__dict__ and isinstance(cls.__dict__.get("np_forward"), str):
            cls.fn = _with_params(*template_function(cls.np_forward, ("x",)))
        backward = cls.__dict__.get("np_backward")
        if "grad" not in cls.__dict__ and isinstance(backward, dict) and "x" in backward:
            cls.grad = _with_params(*template_function(backward["x"], ("x", "y", "gy")))

    def infer(self, p, ins):
        return {"y": float_input(ins, "x")}

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        y = self.fn(p, x)
        return [y], (x, y)

    def backward(self, p, saved, gys, need):
        x, y = saved
        return [self.grad(p, x, y, gys[0]) if need[0] else None]


@register
class Neg(Unary):
    help = "-x."
    np_forward = "-{x}"
    np_backward = {"x": "-{gy}"}
    torch_forward = "-{x}"


@register
class Exp(Unary):
    help = "e to the x."
    np_forward = "np.exp({x})"
    np_backward = {"x": "{gy} * {y}"}
    torch_forward = "torch.exp({x})"


@register
class Log(Unary):
    help = "Natural logarithm (x must be > 0)."
    np_forward = "np.log({x})"
    np_backward = {"x": "{gy} / {x}"}
    torch_forward = "torch.log({x})"
    samples = (Sample({}, {"x": (3, 4)}, positive=("x",)),)


@register
class Sqrt(Unary):
    help = "Square root (x must be >= 0)."
    np_forward = "np.sqrt({x})"
    np_backward = {"x": "{gy} * 0.5 / {y}"}
    torch_forward = "torch.sqrt({x})"
    samples = (Sample({}, {"x": (3, 4)}, positive=("x",)),)


@register
class Square(Unary):
    help = "x * x."
    np_forward = "{x} * {x}"
    np_backward = {"x": "{gy} * 2.0 * {x}"}
    torch_forward = "{x} * {x}"


@register
class Abs(Unary):
    help = "|x|; the gradient at 0 is 0, as in PyTorch."
    np_forward = "np.abs({x})"
    np_backward = {"x": "{gy} * np.sign({x})"}
    torch_forward = "torch.abs({x})"


@register
class Sin(Unary):
    help = "Sine."
    np_forward = "np.sin({x})"
    np_backward = {"x": "{gy} * np.cos({x})"}
    torch_forward = "torch.sin({x})"


@register
class Cos(Unary):
    help = "Cosine."
    np_forward = "np.cos({x})"
    np_backward = {"x": "-{gy} * np.sin({x})"}
    torch_forward = "torch.cos({x})"


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

    def np_backward(self, p, e):
        if p["exponent"] == 0.0:
            return {"x": e.fmt("np.zeros_like({gy})")}
        return {"x": e.fmt("{gy} * {exponent} * {x} ** ") + e.lit(p["exponent"] - 1.0)}

    def fn(self, p, x):
        return x ** p["exponent"]

    def grad(self, p, x, y, gy):
        e = p["exponent"]
        if e == 0.0:
            # d/dx x**0 is 0 everywhere, also at x = 0 where the formula would give 0 * inf.
            return np.zeros_like(gy)
        return gy * e * x ** (e - 1.0)


def matmul_backward(a, b, gy):
    """Gradients of np.matmul(a, b) for any ranks: 1-D operands promoted as matmul does,
    broadcast batch axes summed back."""

    def unbroadcast(g, shape):
        extra = g.ndim - len(shape)
        if extra:
            g = g.sum(axis=tuple(range(extra)))
        axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        return g.reshape(shape)

    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    gy2 = gy[..., None] if b.ndim == 1 else gy
    gy2 = gy2[..., None, :] if a.ndim == 1 else gy2
    ga = unbroadcast(gy2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
    gb = unbroadcast(np.swapaxes(a2, -1, -2) @ gy2, b2.shape).reshape(b.shape)
    return ga, gb
