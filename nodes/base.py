"""How a node type is declared: ports, parameters, shape rule, and its rules for code.

A node type is one subclass of `NodeType`, registered by name with `@register`. Everything the
rest of Wiregrad knows about a type comes from that one class:

- `inputs` / `outputs`: port names (a type may compute them from its params, as Concat does);
- `params`: `Param` declarations (kind, default, range, choices, one line of help); the editor
  builds its inspector from them and the document checks values against them;
- `infer(p, ins)`: the shape rule, from input `TensorType`s to output `TensorType`s, raising
  `ShapeError(port, message)` on input it cannot take;
- `weights(p, ins)`: the trainable tensors, their shapes and initialisers, in a fixed order;
- `buffers(p, ins)`: tensors kept and saved but not trained (BatchNorm's running statistics),
  declared as weights are; the numpy rule names them as it names weights and updates them in
  place while training;
- `np_forward` / `np_backward`: the type's one numpy rule, the code of its forward and of its
  gradients (templates, or methods writing code, with helpers from nodes/kernels/). The engine runs
  that code and the numpy export writes it out; see core/codegen/rules.py and docs/engine.md;
- `torch_forward` / `torch_module`: its PyTorch rule, for the torch export;
- `onnx_forward`: its ONNX rule, for the ONNX export: an operator name taking the inputs in
  port order ("Relu"), or a method `(p, g)` writing operators through the builder `g` that
  core/export/onnx_builder.py passes in (nodes never import onnx);
- `samples`: small parameter/input combinations the registry-wide gradient test runs.

`p` is always the node's parameter dict with defaults filled in and values checked.
Shapes here include the batch axis; `None` in a shape is a length known only at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

FLOAT = "float"  # the program's float type (float32 or float64)
INT = "int64"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class ShapeError(Exception):
    """An input a node type cannot take. `port` names the input (None: the node as a whole)."""

    def __init__(self, port: str | None, message: str):
        super().__init__(message)
        self.port = port
        self.message = message


class ParamError(ValueError):
    """A parameter value outside its declaration."""


@dataclass(frozen=True)
class TensorType:
    """What shape inference knows of a value: its shape (None = unknown length) and dtype."""

    shape: tuple
    dtype: str = FLOAT

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        if len(self.shape) == 1:
            dims += ","
        return f"({dims})" + ("" if self.dtype == FLOAT else f" {self.dtype}")

    def label(self) -> str:
        """What `check` and the canvas show: `(B, 16)`; see shape_text."""
        return shape_text(self.shape, self.dtype)


def shape_text(shape, dtype: str = FLOAT) -> str:
    """A shape for people: `(B, 16)`, with B for an unknown first axis (the batch) and `?` for
    any other length the data sets; a dtype other than the float type follows it (`int64`)."""
    dims = [("B" if i == 0 else "?") if d is None else str(d) for i, d in enumerate(shape)]
    text = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    return text if dtype in (FLOAT, "float32", "float64") else f"{text} {dtype}"


# ---------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class Param:
    """One parameter of a node type.

    kinds: int, float, bool, choice, shape (list of lengths, null allowed), reshape (list of
    lengths, one may be -1), axis (int; `nullable` allows null), axes (list of ints or, where
    `nullable`, null), value (a number or nested list of numbers), str, pair (an int, or [h, w]
    for the two spatial axes: a kernel size, a stride).
    """

    name: str
    kind: str
    default: Any = REQUIRED
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    nullable: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any) -> Any:
        """Return the value in canonical form, or raise ParamError saying what is wrong."""
        if value is None:
            if self.nullable:
                return None
            raise ParamError(f"{self.name} may not be null")
        check = _CHECKS.get(self.kind)
        if check is None:
            raise ParamError(f"{self.name}: unknown parameter kind {self.kind!r}")
        value = check(self, value)
        if self.kind in ("int", "float", "axis"):
            if self.minimum is not None and value < self.minimum:
                raise ParamError(f"{self.name} must be at least {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise ParamError(f"{self.name} must be at most {self.maximum}, got {value}")
        return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_int(param: Param, v: Any) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not _is_int(v):
        raise ParamError(f"{param.name} must be a whole number, got {v!r}")
    return v


def _check_float(param: Param, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ParamError(f"{param.name} must be a finite number, got {v!r}")
    return float(v)


def _check_bool(param: Param, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ParamError(f"{param.name} must be true or false, got {v!r}")
    return v


def _check_choice(param: Param, v: Any) -> str:
    if v not in param.choices:
        options = ", ".join(map(str, param.choices))
        raise ParamError(f"{param.name} must be one of {options}; got {v!r}")
    return v


def _check_int_list(param: Param, v: Any) -> list:
    if not isinstance(v, (list, tuple)):
        raise ParamError(f"{param.name} must be a list, got {v!r}")
    return [_check_int(param, x) if x is not None else None for x in v]


def _check_shape(param: Param, v: Any) -> list:
    dims = _check_int_list(param, v)
    if any(d is not None and d < 0 for d in dims):
        raise ParamError(f"{param.name}: lengths must be >= 0 or null, got {v!r}")
    return dims


def _check_reshape(param: Param, v: Any) -> list:
    dims = _check_int_list(param, v)
    if any(d is None or (d < 1 and d != -1) for d in dims) or dims.count(-1) > 1:
        raise ParamError(f"{param.name}: lengths must be >= 1, with at most one -1; got {v!r}")
    return dims


def _check_axes(param: Param, v: Any) -> Any:
    if _is_int(v):
        return v
    dims = _check_int_list(param, v)
    if any(d is None for d in dims):
        raise ParamError(f"{param.name}: axes must be whole numbers, got {v!r}")
    return dims


def _check_value(param: Param, v: Any) -> Any:
    try:
        arr = np.array(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParamError(f"{param.name} must be a number or a nested list of numbers") from None
    if arr.dtype == object or not np.all(np.isfinite(arr)):
        raise ParamError(f"{param.name} must hold finite numbers in a regular nested list")
    return v


def _check_pair(param: Param, v: Any) -> Any:
    """Kind "pair": a whole number, or a pair [h, w] of them (a kernel's height and width).
    Kept in the form given, so a document reads back as written; `minimum` and `maximum`
    apply to each entry."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ParamError(f"{param.name} must be a whole number or a pair [h, w], got {v!r}")
        value: Any = [_check_int(param, x) for x in v]
        entries = value
    else:
        value = _check_int(param, v)
        entries = [value]
    for x in entries:
        if param.minimum is not None and x < param.minimum:
            raise ParamError(f"{param.name} must be at least {param.minimum:g}, got {v!r}")
        if param.maximum is not None and x > param.maximum:
            raise ParamError(f"{param.name} must be at most {param.maximum:g}, got {v!r}")
    return value


def _check_str(param: Param, v: Any) -> str:
    if not isinstance(v, str):
        raise ParamError(f"{param.name} must be text, got {v!r}")
    return v


_CHECKS = {
    "int": _check_int,
    "float": _check_float,
    "bool": _check_bool,
    "choice": _check_choice,
    "shape": _check_shape,
    "reshape": _check_reshape,
    "axis": _check_int,
    "axes": _check_axes,
    "value": _check_value,
    "str": _check_str,
    "pair": _check_pair,
}


# ---------------------------------------------------------------------------------------------
# Weights and samples


@dataclass(frozen=True)
class Weight:
    """A trainable tensor: its shape (no batch axis) and how to draw its first value."""

    shape: tuple
    init: Init


@dataclass(frozen=True)
class Init:
    """How a weight's first value is drawn, as data, so exported code can draw it the same way.

    kind: "uniform" (U(-scale, scale)), "normal" (N(0, scale^2)) or "constant" (all `scale`).
    Calling it with (rng, shape) draws a float64 array.
    """

    kind: str
    scale: float

    def __call__(self, rng: np.random.Generator, shape: tuple) -> np.ndarray:
        if self.kind == "uniform":
            return rng.uniform(-self.scale, self.scale, size=shape)
        if self.kind == "normal":
            return rng.normal(0.0, self.scale, size=shape)
        return np.full(shape, self.scale, dtype=np.float64)


def uniform(k: float) -> Init:
    return Init("uniform", float(k))


def normal(std: float = 1.0) -> Init:
    return Init("normal", float(std))


def constant(value: float) -> Init:
    return Init("constant", float(value))


@dataclass(frozen=True)
class Sample:
    """A case for the registry-wide gradient check: params, and input shapes (batch included).

    `inputs` maps port -> shape, or port -> (shape, dtype, high) for int64 inputs drawn from
    [0, high). `positive` lists ports that must be > 0 (Log, Sqrt), `probability` those that
    must lie in (0, 1) (BCELoss's).
    """

    params: dict
    inputs: dict
    positive: tuple = ()
    probability: tuple = ()
    note: str = ""


# ---------------------------------------------------------------------------------------------
# Node types


class NodeType:
    """Base class of every node type. Subclasses set the class attributes and override methods."""

    name: ClassVar[str] = ""
    category: ClassVar[str] = "Misc"
    help: ClassVar[str] = ""
    inputs: ClassVar[tuple] = ("x",)
    outputs: ClassVar[tuple] = ("y",)
    params: ClassVar[tuple] = ()
    former_names: ClassVar[tuple] = ()
    # Ports that take int64 class ids rather than floats; everything else takes floats.
    int_inputs: ClassVar[tuple] = ()
    # Inputs through which no gradient flows (conditions, targets given as ids).
    nondiff_inputs: ClassVar[tuple] = ()
    # Inputs that may be left unconnected (an attention mask): the shape rule and the rules
    # for code then see no such port in `ins`.
    optional_inputs: ClassVar[tuple] = ()
    # Control-flow types (Loop, Branch, Block): the code generator writes how they run.
    control: ClassVar[bool] = False
    samples: ClassVar[tuple] = ()
    # Whether the numpy rule's weight gradients, written for inputs and an output gradient
    # stacked along one more leading axis, are the sum of those of each slice (Linear's
    # x.T @ gy over all rows is). A loop then computes them once after its steps, from the
    # stacked steps, rather than once per step (core/codegen/loops.py).
    stacked_weight_grads: ClassVar[bool] = False

    def mixes_batch(self, p: dict, ins: dict) -> bool:
        """Whether a sample's result depends on the other samples of its batch (a reduction
        over the batch axis does). Such a node makes a graph's results depend on how rows are
        grouped, so evaluation then runs in training-sized batches (core/trainer.py). Losses,
        whose batch means combine exactly across batches, say no."""
        return False

    def rowwise_axes(self, p: dict) -> int | None:
        """How many trailing axes the rule works across, if it works on every index of the
        axes before them on its own (a Linear: 1, an elementwise function: 0); None if not.
        Given a whole sequence instead of one step, such a rule computes every step at once,
        so a scan Loop can run it once before its steps (core/codegen/lower.py)."""
        return None
    # The summary shown on the canvas: a format over params, such as "{out_features}".
    summary_format: ClassVar[str] = ""

    # -- ports and params -------------------------------------------------------------------

    def input_ports(self, p: dict) -> tuple:
        return self.inputs

    def output_ports(self, p: dict) -> tuple:
        return self.outputs

    def param(self, name: str) -> Param | None:
        for decl in self.params:
            if decl.name == name:
                return decl
        return None

    def resolve_params(self, given: dict) -> dict:
        """Check the given params against the declarations and fill in defaults.

        Raises ParamError naming the first bad or unknown parameter.
        """
        known = {decl.name for decl in self.params}
        for key in given:
            if key not in known:
                hint = f" (known: {', '.join(sorted(known))})" if known else ""
                raise ParamError(f"unknown parameter {key!r}{hint}")
        out = {}
        for decl in self.params:
            if decl.name in given:
                out[decl.name] = decl.check(given[decl.name])
            elif decl.required:
                raise ParamError(f"parameter {decl.name!r} is required")
            else:
                out[decl.name] = decl.default
        return out

    def summary(self, p: dict) -> str:
        """A few words for the canvas: `Linear 16`, `Conv2D 8 3x3`."""
        text = self.summary_format.format(**p) if self.summary_format else ""
        return f"{self.name} {text}".strip()

    # -- the rules --------------------------------------------------------------------------

    def infer(self, p: dict, ins: dict) -> dict:
        raise NotImplementedError(f"{self.name} has no shape rule")

    def weights(self, p: dict, ins: dict) -> dict:
        return {}

    def buffers(self, p: dict, ins: dict) -> dict:
        return {}


# ---------------------------------------------------------------------------------------------
# Helpers the node modules share


def float_input(ins: dict, port: str) -> TensorType:
    t = ins[port]
    if t.dtype != FLOAT:
        raise ShapeError(port, f"expected a float tensor, got {t.dtype}")
    return t


def norm_axis(axis: int, ndim: int, port: str = "x") -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(port, f"axis {axis} is out of range for a {ndim}-axis tensor")
    return axis % ndim


def broadcast_shapes(a: tuple, b: tuple, port: str = "b") -> tuple:
    """numpy broadcasting, where None is a length not known yet."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for da, db in zip(a, b):
        if da == 1:
            out.append(db)
        elif db == 1:
            out.append(da)
        elif da is None:
            out.append(db)
        elif db is None or da == db:
            out.append(da)
        else:
            raise ShapeError(port, f"shapes {_fmt(a)} and {_fmt(b)} do not broadcast")
    return tuple(out)


def _fmt(shape: tuple) -> str:
    return str(TensorType(tuple(shape)))
