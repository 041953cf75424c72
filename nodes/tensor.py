"""Reductions and structure: Sum, Mean, Max, Concat, Slice, Transpose, Flatten, Reshape.

Axis numbers count the batch axis as axis 0, as numpy does. Outputs may be views of inputs
(Transpose, Reshape, Slice); nothing downstream modifies a value in place.
"""

from __future__ import annotations

import math

import numpy as np

from .base import (
    FLOAT,
    INT,
    NodeType,
    Param,
    ParamError,
    Sample,
    ShapeError,
    TensorType,
    float_input,
    norm_axis,
)
from .kernels import gather, gather_backward, max_backward
from .registry import register


def _fmt(shape) -> str:
    return str(TensorType(tuple(shape)))


def _batched(t: TensorType) -> bool:
    return t.ndim >= 1 and t.shape[0] is None


def _known_product(dims) -> int | None:
    """The product of lengths, or None if any is unknown."""
    if any(d is None for d in dims):
        return None
    return math.prod(dims)


# ---------------------------------------------------------------------------------------------
# Reductions


def reduce_axes(axis, ndim: int, port: str = "x") -> tuple:
    """The sorted, non-negative axes that `axis` (null, an int or a list) names."""
    if axis is None:
        return tuple(range(ndim))
    listed = [axis] if isinstance(axis, int) else list(axis)
    axes = sorted(norm_axis(a, ndim, port) for a in listed)
    if len(set(axes)) != len(axes):
        raise ShapeError(port, f"axis {axis} names an axis twice")
    return tuple(axes)


class Reduction(NodeType):
    category = "Math"
    params = (
        Param("axis", "axes", None, "Axis or list of axes to reduce; null: all axes.",
              nullable=True),
        Param("keepdims", "bool", False, "Keep reduced axes with length 1."),
    )
    samples = (
        Sample({}, {"x": (3, 4)}, note="all axes"),
        Sample({"axis": 1}, {"x": (3, 4)}),
        Sample({"axis": -1, "keepdims": True}, {"x": (2, 3, 4)}),
        Sample({"axis": [0, 2]}, {"x": (2, 3, 4)}, note="several axes"),
        Sample({"axis": [1, 2], "keepdims": True}, {"x": (2, 3, 4)}),
    )

    def summary(self, p):
        return self.name if p["axis"] is None else f"{self.name} axis {p['axis']}"

    def mixes_batch(self, p, ins):
        x = ins["x"]
        return _batched(x) and 0 in reduce_axes(p["axis"], x.ndim)

    # -- export: the reduced axes are known when the code is written --------------------------

    def axes_text(self, p, e) -> str:
        return e.lit(reduce_axes(p["axis"], e.ndim("x")))

    def expand_text(self, p, e, g: str) -> str:
        """The gradient with the reduced axes put back as length 1."""
        return g if p["keepdims"] else f"np.expand_dims({g}, {self.axes_text(p, e)})"

    def np_forward(self, p, e):
        return e.fmt(f"np.asarray({{x}}.{self.np_method}(axis={self.axes_text(p, e)}, "
                     f"keepdims={{keepdims}}))")

    def torch_forward(self, p, e):
        return e.fmt(f"{{x}}.{self.torch_method}(dim={self.axes_text(p, e)}, keepdim={{keepdims}})")

    def onnx_forward(self, p, g):
        axes = list(reduce_axes(p["axis"], g.ndim()))
        return g.reduce(self.onnx_op, g.x(), axes, p["keepdims"])

    def infer(self, p, ins):
        x = float_input(ins, "x")
        axes = reduce_axes(p["axis"], x.ndim)
        if p["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return {"y": TensorType(shape, FLOAT)}


@register
class Sum(Reduction):
    help = "Sum over the given axes (null: all)."
    np_method = "sum"
    torch_method = "sum"
    onnx_op = "ReduceSum"

    def np_backward(self, p, e):
        return {"x": e.fmt(f"np.broadcast_to({self.expand_text(p, e, '{gy}')}, {{x}}.shape)")}

@register
class Mean(Reduction):
    help = "Mean over the given axes (null: all)."
    np_method = "mean"
    torch_method = "mean"
    onnx_op = "ReduceMean"

    def np_backward(self, p, e):
        axes = reduce_axes(p["axis"], e.ndim("x"))
        dims = [e.t("x").shape[a] for a in axes]
        if all(d is not None for d in dims):
            count = str(math.prod(dims))
        else:
            count = "(" + " * ".join(e.fmt(f"{{x}}.shape[{a}]") for a in axes) + ")"
        g = self.expand_text(p, e, "{gy}")
        return {"x": e.fmt(f"np.broadcast_to({g} / {count}, {{x}}.shape)")}

@register
class Max(Reduction):
    help = "Maximum over the given axes (null: all); the gradient goes to the first arg-max."
    np_method = "max"
    torch_method = "amax"  # on ties PyTorch shares the gradient; the engine gives it to the first
    onnx_op = "ReduceMax"


    def np_backward(self, p, e):
        name = e.helper(max_backward)
        return {"x": e.fmt(f"{name}({{x}}, {{gy}}, {self.axes_text(p, e)}, {{keepdims}})")}

# ---------------------------------------------------------------------------------------------
# Joining, cutting, permuting


# ---------------------------------------------------------------------------------------------
# Indexing


@register
class Gather(NodeType):
    category = "Tensor"
    help = ("Per sample, picks along an axis: x[b, index[b]] for one index per sample, or the M "
            "positions index[b, m]; e.g. a tree's root, or a padded sequence's last real state.")
    inputs = ("x", "index")
    int_inputs = ("index",)
    nondiff_inputs = ("index",)
    params = (Param("axis", "axis", 1, "The axis to pick along (not the batch axis)."),)
    summary_format = "axis {axis}"
    samples = (
        Sample({}, {"x": (3, 4, 2), "index": ((3,), "int64", 4)}, note="one position a sample"),
        Sample({}, {"x": (3, 5), "index": ((3, 4), "int64", 5)}, note="several, with repeats"),
        Sample({"axis": 2}, {"x": (2, 3, 4), "index": ((2, 2), "int64", 4)}, note="axis 2"),
    )

    def _axis(self, p, ndim: int) -> int:
        axis = norm_axis(p["axis"], ndim)
        if axis == 0:
            raise ShapeError(None, "Gather picks per sample: its axis cannot be the batch axis 0")
        return axis

    def infer(self, p, ins):
        x, index = float_input(ins, "x"), ins["index"]
        if index.dtype != INT:
            raise ShapeError("index", f"expected int64 indices, got {index.dtype}")
        if x.ndim < 2:
            raise ShapeError("x", f"needs a batch axis and one to pick along, got {x}")
        axis = self._axis(p, x.ndim)
        if index.ndim not in (1, 2):
            raise ShapeError("index", f"expected one index per sample (B,) or M of them (B, M), "
                                      f"got {index}")
        if x.shape[0] is not None and index.shape[0] is not None and x.shape[0] != index.shape[0]:
            raise ShapeError("index", f"has {index.shape[0]} rows but x {x} has {x.shape[0]}")
        if index.ndim == 1:
            shape = x.shape[:axis] + x.shape[axis + 1:]
        else:
            shape = x.shape[:axis] + (index.shape[1],) + x.shape[axis + 1:]
        return {"y": TensorType(shape, FLOAT)}

    def np_forward(self, p, e):
        axis = self._axis(p, e.ndim("x"))
        e.emit(e.fmt(f"{{y}}, {e.local('index')} = {e.helper(gather)}({{x}}, {{index}}, {axis})"))

    def np_backward(self, p, e):
        axis = self._axis(p, e.ndim("x"))
        one = e.lit(e.ndim("index") == 1)
        return {"x": e.fmt(f"{e.helper(gather_backward)}({{x}}.shape, {e.local('index')}, "
                           f"{{gy}}, {axis}, {one})")}

    @property
    def torch_helpers(self):
        return (torch_gather,)

    def torch_forward(self, p, e):
        axis = self._axis(p, e.ndim("x"))
        return e.fmt(f"{e.helper(torch_gather)}({{x}}, {{index}}, {axis})")

    def onnx_forward(self, p, g):
        # GatherElements with the index laid out as the numpy kernel lays it out: per sample,
        # broadcast over every axis but the one picked along.
        ndim = g.ndim("x")
        axis = self._axis(p, ndim)
        one = g.ndim("index") == 1
        index = g.x("index")
        spread = [a for a in range(1, ndim) if one or a != axis]
        laid = g.unsqueeze(index, spread) if spread else index
        x_shape = g.shape(g.x())
        picked = g.ints([1]) if one else g.dim(index, 1)
        parts = [g.op("Slice", x_shape, g.ints([0]), g.ints([axis])), picked]
        if axis + 1 < ndim:
            parts.append(g.op("Slice", x_shape, g.ints([axis + 1]), g.ints([ndim])))
        full = g.op("Expand", laid, g.op("Concat", *parts, axis=0))
        y = g.op("GatherElements", g.x(), full, axis=axis)
        return g.squeeze(y, [axis]) if one else y


@register
class Concat(NodeType):
    category = "Tensor"
    help = "Joins n inputs x0 ... x(n-1) along an axis; other lengths must agree."
    params = (
        Param("n", "int", 2, "Number of inputs.", minimum=1, maximum=64),
        Param("axis", "axis", -1, "The axis to join along."),
    )
    summary_format = "axis {axis}"
    samples = (
        Sample({}, {"x0": (3, 2), "x1": (3, 4)}),
        Sample({"n": 3, "axis": 1}, {"x0": (2, 1, 3), "x1": (2, 2, 3), "x2": (2, 3, 3)}),
        Sample({"axis": 0}, {"x0": (2, 3), "x1": (1, 3)}, note="along the batch axis"),
    )

    def _axis(self, p, e) -> int:
        return p["axis"] % e.ndim("x0")

    def np_forward(self, p, e):
        parts = ", ".join(e.ins[port] for port in self.input_ports(p))
        return f"np.concatenate([{parts}], axis={self._axis(p, e)})"

    def torch_forward(self, p, e):
        parts = ", ".join(e.ins[port] for port in self.input_ports(p))
        return f"torch.cat([{parts}], dim={self._axis(p, e)})"

    def onnx_forward(self, p, g):
        parts = [g.x(port) for port in self.input_ports(p)]
        return g.op("Concat", *parts, axis=p["axis"] % g.ndim("x0"))

    def np_backward(self, p, e):
        axis = self._axis(p, e)
        out, start = {}, "0"
        for port in self.input_ports(p):
            length = e.t(port).shape[axis]
            length = str(length) if length is not None else f"{e.ins[port]}.shape[{axis}]"
            stop = _plus(start, length)
            out[port] = e.fmt(f"{{gy}}[{':, ' * axis}{'' if start == '0' else start}:{stop}]")
            start = stop
        return {port: g for port, g in out.items() if e.need(port)}

    def input_ports(self, p):
        return tuple(f"x{i}" for i in range(p["n"]))

    def mixes_batch(self, p, ins):
        first = ins["x0"]
        return _batched(first) and p["axis"] % first.ndim == 0

    def infer(self, p, ins):
        ports = self.input_ports(p)
        first = float_input(ins, ports[0])
        axis = norm_axis(p["axis"], first.ndim, ports[0])
        out = list(first.shape)
        for port in ports[1:]:
            t = float_input(ins, port)
            if t.ndim != first.ndim:
                raise ShapeError(port, f"expected {first.ndim} axes like {ports[0]} {first}, "
                                       f"got {t}")
            for i, (d, e) in enumerate(zip(out, t.shape)):
                if i == axis:
                    out[i] = None if d is None or e is None else d + e
                elif d is not None and e is not None and d != e:
                    raise ShapeError(port, f"axis {i} has length {e}, but {ports[0]} has {d}; "
                                           f"only axis {axis} may differ")
                elif d is None:
                    out[i] = e
        return {"y": TensorType(tuple(out), FLOAT)}

@register
class Slice(NodeType):
    category = "Tensor"
    help = "x[start:stop:step] along one axis, with Python slice semantics."
    params = (
        Param("axis", "axis", 1, "The axis to slice."),
        Param("start", "int", None, "First index (negative counts from the end); null: 0.",
              nullable=True),
        Param("stop", "int", None, "Index to stop before; null: the end.", nullable=True),
        Param("step", "int", 1, "Stride; negative walks backwards, 0 is not allowed."),
    )
    samples = (
        Sample({"start": 1, "stop": 3}, {"x": (2, 5)}),
        Sample({"axis": -1, "start": -3, "step": 2}, {"x": (2, 3, 6)}, note="negative start"),
        Sample({"axis": 2, "step": -1}, {"x": (2, 3, 4)}, note="reversed"),
        Sample({"axis": 0, "stop": -1}, {"x": (3, 2)}, note="along the batch axis"),
    )

    def summary(self, p):
        def show(v):
            return "" if v is None else str(v)
        step = "" if p["step"] == 1 else f":{p['step']}"
        return f"Slice [{show(p['start'])}:{show(p['stop'])}{step}] axis {p['axis']}"

    def resolve_params(self, given):
        p = super().resolve_params(given)
        if p["step"] == 0:
            raise ParamError("step must not be 0")
        return p

    def mixes_batch(self, p, ins):
        return _batched(ins["x"]) and p["axis"] % ins["x"].ndim == 0

    def _index(self, p, ndim: int) -> tuple:
        axis = p["axis"] % ndim
        return (slice(None),) * axis + (slice(p["start"], p["stop"], p["step"]),)

    def index_text(self, p, e) -> str:
        """The subscript as code, like `:, 1:3` or `:, :, ::-1`."""
        axis = p["axis"] % e.ndim("x")
        start = "" if p["start"] is None else str(p["start"])
        stop = "" if p["stop"] is None else str(p["stop"])
        step = "" if p["step"] == 1 else f":{p['step']}"
        return ":, " * axis + f"{start}:{stop}{step}"

    def np_forward(self, p, e):
        return e.fmt("{x}[") + self.index_text(p, e) + "]"

    def np_backward(self, p, e):
        gx = e.tmp("gx")
        e.emit(e.fmt(f"{gx} = np.zeros({{x}}.shape, dtype={{gy}}.dtype)"))
        e.emit(e.fmt(f"{gx}[{self.index_text(p, e)}] = {{gy}}"))
        return {"x": gx}

    @property
    def torch_helpers(self):
        return (slice_backwards,)

    def torch_forward(self, p, e):
        if p["step"] > 0:
            return e.fmt("{x}[") + self.index_text(p, e) + "]"
        name = e.helper(slice_backwards)
        axis = p["axis"] % e.ndim("x")
        return e.fmt(f"{name}({{x}}, {axis}, {{start}}, {{stop}}, {{step}})")

    def onnx_forward(self, p, g):
        # ONNX Slice clamps as Python does, an open end being the farthest int64.
        far = 2 ** 63 - 1
        back = p["step"] < 0
        start = p["start"] if p["start"] is not None else (far if back else 0)
        stop = p["stop"] if p["stop"] is not None else (-far if back else far)
        axis = p["axis"] % g.ndim()
        return g.op("Slice", g.x(), g.ints([start]), g.ints([stop]), g.ints([axis]),
                    g.ints([p["step"]]))

    def infer(self, p, ins):
        x = float_input(ins, "x")
        axis = norm_axis(p["axis"], x.ndim)
        n = x.shape[axis]
        length = None if n is None else len(range(*slice(p["start"], p["stop"],
                                                         p["step"]).indices(n)))
        return {"y": TensorType(x.shape[:axis] + (length,) + x.shape[axis + 1:], FLOAT)}

@register
class Transpose(NodeType):
    category = "Tensor"
    help = "Permutes the axes (a permutation of all axes, the batch axis included)."
    params = (Param("axes", "axes", help="The new order of the axes, such as [0, 2, 1]."),)
    summary_format = "{axes}"
    samples = (
        Sample({"axes": [0, 2, 1]}, {"x": (2, 3, 4)}),
        Sample({"axes": [1, 0]}, {"x": (3, 4)}, note="moves the batch axis"),
        Sample({"axes": [0, -1, 1, 2]}, {"x": (2, 3, 4, 2)}, note="negative axis"),
    )

    def mixes_batch(self, p, ins):
        return _batched(ins["x"]) and self._perm(p, ins["x"].ndim)[0] != 0

    def _perm(self, p, ndim: int) -> tuple:
        axes = p["axes"]
        if isinstance(axes, int):
            axes = [axes]
        perm = tuple(a % ndim if -ndim <= a < ndim else a for a in axes)
        if sorted(perm) != list(range(ndim)):
            raise ShapeError("x", f"axes {p['axes']} is not a permutation of the {ndim} axes "
                                  f"of x (batch axis included)")
        return perm

    def np_forward(self, p, e):
        return e.fmt("{x}.transpose") + e.lit(self._perm(p, e.ndim("x")))

    def np_backward(self, p, e):
        back = tuple(int(i) for i in np.argsort(self._perm(p, e.ndim("x"))))
        return {"x": e.fmt("{gy}.transpose") + e.lit(back)}

    def torch_forward(self, p, e):
        return e.fmt("{x}.permute") + e.lit(self._perm(p, e.ndim("x")))

    def onnx_forward(self, p, g):
        return g.op("Transpose", g.x(), perm=list(self._perm(p, g.ndim())))

    def infer(self, p, ins):
        x = float_input(ins, "x")
        perm = self._perm(p, x.ndim)
        return {"y": TensorType(tuple(x.shape[a] for a in perm), FLOAT)}

# ---------------------------------------------------------------------------------------------
# Reshaping (shown among the layers, as in PyTorch's nn)


@register
class Flatten(NodeType):
    category = "Layers"
    help = "Joins all axes after the batch axis into one."
    samples = (Sample({}, {"x": (2, 3, 4)}), Sample({}, {"x": (2, 3, 2, 2)}))
    np_forward = "{x}.reshape({x}.shape[0], -1)"
    np_backward = {"x": "{gy}.reshape({x}.shape)"}
    torch_forward = "{x}.reshape({x}.shape[0], -1)"

    def onnx_forward(self, p, g):
        return g.op("Flatten", g.x(), axis=1)

    def infer(self, p, ins):
        x = float_input(ins, "x")
        if x.ndim < 1:
            raise ShapeError("x", "expected a batch axis, got a single number")
        return {"y": TensorType((x.shape[0], _known_product(x.shape[1:])), FLOAT)}

@register
class Reshape(NodeType):
    category = "Layers"
    help = "Gives the axes after the batch axis a new shape; one length may be -1."
    params = (Param("shape", "reshape", help="New shape without the batch axis, e.g. [4, -1]."),)
    summary_format = "{shape}"
    samples = (
        Sample({"shape": [3, 4]}, {"x": (2, 12)}),
        Sample({"shape": [-1]}, {"x": (2, 3, 4)}),
        Sample({"shape": [2, -1, 2]}, {"x": (2, 12)}),
    )
    np_backward = {"x": "{gy}.reshape({x}.shape)"}

    def np_forward(self, p, e):
        dims = "".join(f", {d}" for d in p["shape"])
        return e.fmt("{x}.reshape({x}.shape[0]") + dims + ")"

    torch_forward = np_forward

    def onnx_forward(self, p, g):
        batch = g.dim(g.x(), 0)
        return g.op("Reshape", g.x(), g.op("Concat", batch, g.ints(p["shape"]), axis=0))

    def infer(self, p, ins):
        x = float_input(ins, "x")
        if x.ndim < 1:
            raise ShapeError("x", "expected a batch axis, got a single number")
        shape = list(p["shape"])
        total = _known_product(x.shape[1:])
        fixed = math.prod(d for d in shape if d != -1)
        if -1 in shape:
            hole = shape.index(-1)
            if total is None:
                shape[hole] = None
            elif total % fixed:
                raise ShapeError("x", f"{total} values per sample (from {x}) do not divide "
                                      f"into {p['shape']}")
            else:
                shape[hole] = total // fixed
        elif total is not None and total != fixed:
            raise ShapeError("x", f"{total} values per sample (from {x}) cannot take shape "
                                  f"{p['shape']} ({fixed} values)")
        return {"y": TensorType((x.shape[0],) + tuple(shape), FLOAT)}

def _plus(a: str, b: str) -> str:
    """a + b as code, folded when both are numbers."""
    if a.isdigit() and b.isdigit():
        return str(int(a) + int(b))
    return b if a == "0" else f"{a} + {b}"


def slice_backwards(x, axis, start, stop, step):
    """x[start:stop:step] along `axis` for a negative step, which torch indexing lacks."""
    import torch

    index = list(range(x.shape[axis]))[start:stop:step]
    return x.index_select(axis, torch.tensor(index, dtype=torch.long, device=x.device))


def torch_gather(x, index, axis):
    """Gather in torch: per sample, x[b, index[b]] along `axis` (or M positions, index (B, M))."""
    import torch

    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= x.shape[axis]):
        raise IndexError(f"Gather indices must be in [0, {x.shape[axis]})")
    shape = [1] * x.ndim
    shape[0] = index.shape[0]
    if index.ndim == 2:
        shape[axis] = index.shape[1]
    full = list(x.shape)
    full[axis] = shape[axis]
    y = torch.gather(x, axis, index.reshape(shape).expand(full))
    return y.squeeze(axis) if index.ndim == 1 else y
