"""Indexing, structure and reductions of format version 2: OneHot, ArgMax, Stack, Split, Pad,
and Min, Var, LogSumExp beside tensor.py's Sum, Mean and Max.

PyTorch's function of the same name is the reference for values, defaults and gradients, with
one choice of our own that Max already makes: Min's gradient goes to the first arg-min (PyTorch's
amin shares it among ties).
"""

from __future__ import annotations

import math
from typing import ClassVar

from .base import (
    FLOAT,
    INT,
    NodeType,
    Param,
    ParamError,
    Sample,
    ShapeError,
    TensorType,
    norm_axis,
)
from .kernels import (
    logsumexp,
    logsumexp_backward,
    max_backward,
    one_hot,
    pad_backward,
    pad_constant,
    split_backward,
    split_parts,
    var_backward,
)
from .registry import register
from .tensor import Reduction, reduce_axes


def _batched(t: TensorType) -> bool:
    return t.ndim >= 1 and t.shape[0] is None


def torch_float(e) -> str:
    """The torch export's float type, as code: that of the module's `step_ref` buffer, which
    follows the model's `.to(dtype)` (core/export/torch_target.py registers it when asked)."""
    e.fn.uses_step = True
    return "self.step_ref.dtype"


# ---------------------------------------------------------------------------------------------
# Indexing


@register
class OneHot(NodeType):
    category = "Tensor"
    help = "Class ids (int64) to vectors: 1.0 at the id, 0.0 elsewhere, along a new last axis."
    int_inputs = ("x",)
    nondiff_inputs = ("x",)
    params = (Param("num_classes", "int", help="Length of the new axis; ids run from 0.",
                    minimum=1),)
    summary_format = "{num_classes}"
    samples = (
        Sample({"num_classes": 4}, {"x": ((5,), "int64", 4)}),
        Sample({"num_classes": 3}, {"x": ((2, 4), "int64", 3)}, note="a sequence of ids"),
    )
    np_backward: ClassVar[dict] = {}

    def infer(self, p, ins):
        x = ins["x"]
        if x.dtype != INT:
            raise ShapeError("x", f"expected int64 class ids, got {x}")
        return {"y": TensorType(x.shape + (p["num_classes"],), FLOAT)}

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(one_hot)}({{x}}, {{num_classes}}, {{dtype}})")

    def torch_forward(self, p, e):
        return e.fmt(f"F.one_hot({{x}}, {{num_classes}}).to({torch_float(e)})")

    def onnx_forward(self, p, g):
        # Each id against every class, rather than ONNX's OneHot, which onnxruntime runs in
        # float32 only.
        classes = g.const(list(range(p["num_classes"])), "int64")
        return g.cast(g.op("Equal", g.unsqueeze(g.x(), [-1]), classes), "float")


@register
class ArgMax(NodeType):
    category = "Tensor"
    help = "The int64 position of the largest value along an axis (the first, on ties); no gradient."
    nondiff_inputs = ("x",)
    params = (
        Param("axis", "axis", -1, "The axis to search along."),
        Param("keepdims", "bool", False, "Keep that axis with length 1."),
    )
    summary_format = "axis {axis}"
    samples = (
        Sample({}, {"x": (3, 5)}),
        Sample({"axis": 1, "keepdims": True}, {"x": (2, 3, 4)}),
        Sample({"axis": 0}, {"x": (4, 3)}, note="over the batch axis"),
    )
    np_backward: ClassVar[dict] = {}

    def mixes_batch(self, p, ins):
        x = ins["x"]
        return _batched(x) and p["axis"] % x.ndim == 0

    def infer(self, p, ins):
        x = ins["x"]
        axis = norm_axis(p["axis"], x.ndim)
        if p["keepdims"]:
            shape = x.shape[:axis] + (1,) + x.shape[axis + 1:]
        else:
            shape = x.shape[:axis] + x.shape[axis + 1:]
        return {"y": TensorType(shape, INT)}

    def np_forward(self, p, e):
        axis = p["axis"] % e.ndim("x")
        # asarray: numpy gives a bare scalar for a 1-axis x; int64 even where intp is not.
        return e.fmt(f"np.asarray(np.argmax({{x}}, axis={axis}, keepdims={{keepdims}}), "
                     f"dtype=np.int64)")

    def torch_forward(self, p, e):
        axis = p["axis"] % e.ndim("x")
        return e.fmt(f"torch.argmax({{x}}, dim={axis}, keepdim={{keepdims}})")

    def onnx_forward(self, p, g):
        return g.op("ArgMax", g.x(), axis=p["axis"] % g.ndim(), keepdims=int(p["keepdims"]))


# ---------------------------------------------------------------------------------------------
# Joining and cutting


@register
class Stack(NodeType):
    category = "Tensor"
    help = "Stacks n inputs x0 ... x(n-1) of one shape along a new axis."
    params = (
        Param("n", "int", 2, "Number of inputs.", minimum=1, maximum=64),
        Param("axis", "axis", 1, "Position of the new axis in the output (the batch axis is 0)."),
    )
    summary_format = "axis {axis}"
    samples = (
        Sample({}, {"x0": (3, 4), "x1": (3, 4)}),
        Sample({"n": 3, "axis": -1}, {"x0": (2, 3), "x1": (2, 3), "x2": (2, 3)},
               note="as the last axis"),
        Sample({"axis": 2}, {"x0": (2, 3, 2), "x1": (2, 3, 2)}),
        Sample({"axis": 0}, {"x0": (3, 2), "x1": (3, 2)}, note="before the batch axis"),
    )

    def input_ports(self, p):
        return tuple(f"x{i}" for i in range(p["n"]))

    def _axis(self, p, ndim: int) -> int:
        """The new axis, counted in the output (one more axis than each input)."""
        if not -(ndim + 1) <= p["axis"] <= ndim:
            raise ShapeError("x0", f"axis {p['axis']} is out of range: stacking {ndim}-axis "
                                   f"inputs gives {ndim + 1} axes")
        return p["axis"] % (ndim + 1)

    def mixes_batch(self, p, ins):
        first = ins["x0"]
        return _batched(first) and self._axis(p, first.ndim) == 0

    def infer(self, p, ins):
        ports = self.input_ports(p)
        first = ins[ports[0]]
        shape = list(first.shape)
        for port in ports[1:]:
            t = ins[port]
            if t.dtype != first.dtype:
                raise ShapeError(port, f"expected {first.dtype} like {ports[0]}, got {t.dtype}")
            if t.ndim != first.ndim:
                raise ShapeError(port, f"expected {first.ndim} axes like {ports[0]} {first}, "
                                       f"got {t}")
            for i, (d, other) in enumerate(zip(shape, t.shape)):
                if d is not None and other is not None and d != other:
                    raise ShapeError(port, f"axis {i} has length {other}, but {ports[0]} has "
                                           f"{d}; stacked inputs must have one shape")
                if d is None:
                    shape[i] = other
        axis = self._axis(p, first.ndim)
        shape.insert(axis, p["n"])
        return {"y": TensorType(tuple(shape), first.dtype)}

    def np_forward(self, p, e):
        parts = ", ".join(e.ins[port] for port in self.input_ports(p))
        return f"np.stack([{parts}], axis={self._axis(p, e.ndim('x0'))})"

    def np_backward(self, p, e):
        lead = ":, " * self._axis(p, e.ndim("x0"))
        return {port: e.fmt(f"{{gy}}[{lead}{k}]")
                for k, port in enumerate(self.input_ports(p)) if e.need(port)}

    def torch_forward(self, p, e):
        parts = ", ".join(e.ins[port] for port in self.input_ports(p))
        return f"torch.stack([{parts}], dim={self._axis(p, e.ndim('x0'))})"

    def onnx_forward(self, p, g):
        axis = self._axis(p, g.ndim("x0"))
        parts = [g.unsqueeze(g.x(port), [axis]) for port in self.input_ports(p)]
        return g.op("Concat", *parts, axis=axis)


# Not registered yet: the code generator writes one output, `y`, per ordinary node. Split's
# rules are written for a generator that gives several: they read `e.outs` (output port ->
# variable) and, in the backward, `e.gys` (output port -> its gradient, None where none
# arrived). Registered once core/codegen does (see the report of this change).
@register
class Split(NodeType):
    category = "Tensor"
    help = "Cuts x into n equal parts y0 ... y(n-1) along an axis."
    params = (
        Param("n", "int", 2, "Number of parts.", minimum=1, maximum=64),
        Param("axis", "axis", -1, "The axis to cut."),
    )
    summary_format = "{n} axis {axis}"
    samples = (
        Sample({}, {"x": (3, 4)}),
        Sample({"n": 3, "axis": 1}, {"x": (2, 6, 2)}),
        Sample({"axis": 0}, {"x": (4, 3)}, note="along the batch axis"),
        Sample({"n": 1}, {"x": (2, 3)}, note="one part"),
    )

    def output_ports(self, p):
        return tuple(f"y{i}" for i in range(p["n"]))

    def mixes_batch(self, p, ins):
        return _batched(ins["x"]) and p["axis"] % ins["x"].ndim == 0

    def infer(self, p, ins):
        x = ins["x"]
        axis = norm_axis(p["axis"], x.ndim)
        n, length = p["n"], x.shape[axis]
        if length is not None and length % n:
            raise ShapeError("x", f"axis {axis} of x {x} has length {length}, which does not "
                                  f"divide into {n} equal parts")
        part = x.shape[:axis] + (None if length is None else length // n,) + x.shape[axis + 1:]
        return {port: TensorType(part, x.dtype) for port in self.output_ports(p)}

    def np_forward(self, p, e):
        axis = p["axis"] % e.ndim("x")
        e.emit(e.fmt(f"{self._targets(p, e)} = {e.helper(split_parts)}({{x}}, {{n}}, {axis})"))

    def np_backward(self, p, e):
        gys = ", ".join(e.gys.get(port) or "None" for port in self.output_ports(p))
        axis = p["axis"] % e.ndim("x")
        return {"x": e.fmt(f"{e.helper(split_backward)}([{gys}], {{x}}.shape, {axis}, "
                           f"{{x}}.dtype)")}

    @property
    def torch_helpers(self):
        return (torch_split,)

    def torch_forward(self, p, e):
        axis = p["axis"] % e.ndim("x")
        e.emit(e.fmt(f"{self._targets(p, e)} = {e.helper(torch_split)}({{x}}, {{n}}, {axis})"))

    def onnx_forward(self, p, g):
        ports = self.output_ports(p)
        if p["n"] == 1:
            return {ports[0]: g.op("Identity", g.x())}
        parts = g.op("Split", g.x(), outputs=p["n"], axis=p["axis"] % g.ndim(),
                     num_outputs=p["n"])
        return dict(zip(ports, parts))

    def _targets(self, p, e) -> str:
        """The output variables as assignment targets (`a, b`, or `a,` for one part)."""
        outs = [e.outs[port] for port in self.output_ports(p)]
        return ", ".join(outs) + ("," if len(outs) == 1 else "")


def torch_split(x, n, axis):
    """Split in torch: n equal parts along axis (torch.split would leave a shorter last part)."""
    import torch

    if x.shape[axis] % n:
        raise ValueError(f"Split cannot cut an axis of length {x.shape[axis]} into {n} "
                         f"equal parts")
    return torch.split(x, x.shape[axis] // n, dim=axis)


@register
class Pad(NodeType):
    category = "Tensor"
    help = "Adds value around x: [before, after] per axis, from the last axis back, as F.pad."
    params = (
        Param("pad", "value", help="[before, after] pairs, the first for the last axis, the "
                                   "next for the one before ([[1, 1], [2, 0]]); the flat list "
                                   "of F.pad ([1, 1, 2, 0]) reads the same. Negative crops."),
        Param("value", "float", 0.0, "The value added."),
    )
    summary_format = "{pad}"
    samples = (
        Sample({"pad": [[1, 2]]}, {"x": (3, 4)}),
        Sample({"pad": [[0, 1], [2, 1]], "value": -1.5}, {"x": (2, 3, 2)},
               note="two axes, a value"),
        Sample({"pad": [[-1, 2], [1, -2]]}, {"x": (2, 3, 4)}, note="negative widths crop"),
        Sample({"pad": [1, 0, 0, 0, 1, 1]}, {"x": (2, 2, 3)}, note="flat, the batch axis too"),
    )

    def resolve_params(self, given):
        p = super().resolve_params(given)
        p["pad"] = _pad_pairs(p["pad"])
        return p

    def _widths(self, p, ndim: int) -> tuple:
        """(before, after) for every axis from the first, as np.pad takes them."""
        pairs = p["pad"]
        if len(pairs) > ndim:
            raise ShapeError("x", f"pad gives {len(pairs)} [before, after] pairs, but x has "
                                  f"only {ndim} axes")
        return ((0, 0),) * (ndim - len(pairs)) + tuple(tuple(w) for w in reversed(pairs))

    def mixes_batch(self, p, ins):
        x = ins["x"]
        return _batched(x) and any(self._widths(p, x.ndim)[0])

    def infer(self, p, ins):
        x = ins["x"]
        if x.dtype == INT and not float(p["value"]).is_integer():
            raise ShapeError("x", f"x holds int64 values, so the pad value must be a whole "
                                  f"number, got {p['value']:g}")
        shape = []
        for axis, (n, (before, after)) in enumerate(zip(x.shape, self._widths(p, x.ndim))):
            crop = -min(before, 0) - min(after, 0)
            if n is not None and crop > n:
                raise ShapeError("x", f"pad crops {crop} entries from axis {axis}, which has "
                                      f"only {n}")
            shape.append(None if n is None else n + before + after)
        return {"y": TensorType(tuple(shape), x.dtype)}

    def np_forward(self, p, e):
        widths = e.lit(self._widths(p, e.ndim("x")))
        return e.fmt(f"{e.helper(pad_constant)}({{x}}, {widths}, {{value}})")

    def np_backward(self, p, e):
        widths = e.lit(self._widths(p, e.ndim("x")))
        return {"x": e.fmt(f"{e.helper(pad_backward)}({{gy}}, {{x}}.shape, {widths})")}

    def torch_forward(self, p, e):
        flat = [w for pair in p["pad"] for w in pair]
        if not flat:
            return e.fmt("{x}")
        return e.fmt(f"F.pad({{x}}, {e.lit(flat)}, value={{value}})")

    def onnx_forward(self, p, g):
        widths = self._widths(p, g.ndim())
        pads = [before for before, _ in widths] + [after for _, after in widths]
        dtype = "int64" if g.is_int("x") else "float"
        value = g.const(int(p["value"]) if dtype == "int64" else p["value"], dtype)
        return g.op("Pad", g.x(), g.ints(pads), value, mode="constant")


def _pad_pairs(pad) -> list:
    """pad as [[before, after], ...], from [[b, a], ...] or F.pad's flat [b, a, ...]."""
    if not isinstance(pad, list):
        raise ParamError(f"pad must be a list of [before, after] pairs, got {pad!r}")
    # The "value" kind has made sure the list is regular: all pairs or all numbers.
    if all(isinstance(w, list) for w in pad):
        pairs = pad
    elif len(pad) % 2:
        raise ParamError(f"pad as a flat list needs an even number of widths, got {len(pad)}")
    else:
        pairs = [pad[i:i + 2] for i in range(0, len(pad), 2)]
    out = []
    for pair in pairs:
        if len(pair) != 2:
            raise ParamError(f"each pad pair is [before, after], got {pair!r}")
        if not all(float(w).is_integer() for w in pair):
            raise ParamError(f"pad widths must be whole numbers, got {pair!r}")
        out.append([int(w) for w in pair])
    return out


# ---------------------------------------------------------------------------------------------
# Reductions, as Sum, Mean and Max (tensor.py)


@register
class Min(Reduction):
    help = "Minimum over the given axes (null: all); the gradient goes to the first arg-min."
    np_method = "min"
    torch_method = "amin"  # on ties PyTorch shares the gradient; the engine gives it to the first
    onnx_op = "ReduceMin"

    def np_backward(self, p, e):
        # The first arg-min of x is the first arg-max of -x.
        name = e.helper(max_backward)
        return {"x": e.fmt(f"{name}(-{{x}}, {{gy}}, {self.axes_text(p, e)}, {{keepdims}})")}


@register
class Var(Reduction):
    help = "Variance over the given axes (null: all); unbiased (n - 1) by default, as PyTorch."
    params = Reduction.params + (
        Param("unbiased", "bool", True, "Divide by n - 1 (Bessel's correction), else by n."),
    )
    samples = Reduction.samples + (
        Sample({"axis": [1, 2], "unbiased": False}, {"x": (2, 3, 4)}, note="biased"),
        Sample({"axis": 0}, {"x": (4, 3)}, note="over the batch axis"),
    )

    def infer(self, p, ins):
        out = super().infer(p, ins)
        x = ins["x"]
        dims = [x.shape[a] for a in reduce_axes(p["axis"], x.ndim)]
        if p["unbiased"] and None not in dims and math.prod(dims) <= 1:
            raise ShapeError("x", f"the unbiased variance of {math.prod(dims)} value is "
                                  f"undefined (n - 1 = 0); set unbiased to false")
        return out

    def np_forward(self, p, e):
        return e.fmt(f"np.asarray({{x}}.var(axis={self.axes_text(p, e)}, "
                     f"ddof={int(p['unbiased'])}, keepdims={{keepdims}}))")

    def np_backward(self, p, e):
        name = e.helper(var_backward)
        return {"x": e.fmt(f"{name}({{x}}, {{gy}}, {self.axes_text(p, e)}, {{keepdims}}, "
                           f"{int(p['unbiased'])})")}

    def torch_forward(self, p, e):
        return e.fmt(f"{{x}}.var(dim={self.axes_text(p, e)}, correction={int(p['unbiased'])}, "
                     f"keepdim={{keepdims}})")

    def onnx_forward(self, p, g):
        axes = list(reduce_axes(p["axis"], g.ndim()))
        if not axes:  # each value alone (the shape rule refuses it unbiased): 0
            return g.op("Mul", g.x(), g.const(0.0))
        x = g.x()
        centred = g.op("Sub", x, g.reduce("ReduceMean", x, axes, True))
        total = g.reduce("ReduceSum", g.op("Mul", centred, centred), axes, p["keepdims"])
        count = g.count(x, g.t().shape, axes)
        if p["unbiased"]:
            count = g.op("Sub", count, g.const(1.0))
        return g.op("Div", total, count)


@register
class LogSumExp(Reduction):
    help = "log(sum(exp(x))) over the given axes (null: all), computed without overflow."
    samples = Reduction.samples + (
        Sample({"axis": 0}, {"x": (4, 3)}, note="over the batch axis"),
    )

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(logsumexp)}({{x}}, {self.axes_text(p, e)}, {{keepdims}})")

    def np_backward(self, p, e):
        name = e.helper(logsumexp_backward)
        return {"x": e.fmt(f"{name}({{x}}, {{y}}, {{gy}}, {self.axes_text(p, e)}, "
                           f"{{keepdims}})")}

    def torch_forward(self, p, e):
        return e.fmt(f"torch.logsumexp({{x}}, dim={self.axes_text(p, e)}, keepdim={{keepdims}})")

    def onnx_forward(self, p, g):
        axes = list(reduce_axes(p["axis"], g.ndim()))
        if not axes:
            return g.op("Identity", g.x())
        # Shifted by the maximum, which is 0 where infinite, as the numpy kernel does.
        x = g.x()
        top = g.reduce("ReduceMax", x, axes, True)
        top = g.where(g.op("IsInf", top), g.const(0.0), top)
        total = g.reduce("ReduceSum", g.op("Exp", g.op("Sub", x, top)), axes, True)
        y = g.op("Add", g.op("Log", total), top)
        return y if p["keepdims"] else g.squeeze(y, axes)
