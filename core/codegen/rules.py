"""How a node type's rules are read, and what a rule sees while it writes code.

Each node type declares its rules in its own class (see nodes/*.py), as template strings or as
small methods taking `(p, e)`. The numpy rules are the type's one computation: the engine runs
the code they write, and the numpy export writes the same code into its file.

- `np_forward`: a numpy expression for the output `y` (a string with `{port}`, `{weight}`,
  `{param}` fields), or a method returning one; statements it needs first go through
  `e.emit(...)`, temporaries are named by `e.tmp(...)`.
- `np_backward`: a dict from input port / weight name to the gradient expression (fields as
  above plus `{y}` and `{gy}`, the output and its gradient), or a method returning that dict.
  Only ports that need a gradient (`e.need(port)`) are used.
- `torch_forward`: a torch expression for `y` (`{self}` is the node's submodule, if any).
- `torch_module(p, e)`: the constructor of the node's submodule (`"nn.Linear(3, 4)"`), with
  `torch_weights` mapping engine weight names to (submodule attribute, transposed).
- `e.helper(fn)`: a plain function the rule calls by name; numpy's live in nodes/kernels/
  (the engine calls them as they are, an exported module carries a copy of their source and
  of the helpers they call); torch's are listed in `torch_helpers`.

`e` is a `RuleContext`. Fields in templates are always plain variable names or subscripts,
so templates need no parentheses around them.
"""

from __future__ import annotations

import inspect
import textwrap

from ... import nodes
from ...nodes import INT, kernels
from .writer import literal


def rule(node_type, attr: str):
    """A type's export rule `attr`, declared in its class (None if it has none)."""
    return getattr(node_type, attr, None)


def helpers_of(node_type) -> tuple:
    """The functions a type's torch rule may copy into an exported module."""
    value = rule(node_type, "torch_helpers")
    if callable(value) and not isinstance(value, tuple):
        value = value(None, None)
    return tuple(value or ())


def _kernel(fn) -> bool:
    return fn.__module__.startswith(kernels.__name__ + ".")


def helper_dependencies(fn) -> list:
    """The functions that fn calls by name from its own module or, for a kernel, from the
    other kernel modules."""
    out = []
    for name in fn.__code__.co_names:
        other = fn.__globals__.get(name)
        if inspect.isfunction(other) and other is not fn and (
                other.__module__ == fn.__module__ or _kernel(fn) and _kernel(other)):
            out.append(other)
    return out


def all_helper_names() -> set:
    """Every helper a rule may copy in: module-level names an export must keep free."""
    out = {name for name, fn in vars(kernels).items() if inspect.isfunction(fn) and _kernel(fn)}
    for node_type in nodes.all_types().values():
        out.update(fn.__name__ for fn in helpers_of(node_type))
    return out


def helper_source(fn) -> str:
    return textwrap.dedent(inspect.getsource(fn)).rstrip() + "\n"


class RuleContext:
    """What one node's rule sees: variable names, types, params, and ways to add code."""

    def __init__(self, fn, node_type, p: dict, ins: dict, in_types: dict, weights: dict,
                 out: str | None, out_type, target: str):
        self.fn = fn  # the function being written (names, lines, helpers)
        self.type = node_type
        self.p = p
        self.ins = ins  # port -> variable name
        self.in_types = in_types  # port -> TensorType
        self.weights = weights  # weight name -> expression
        self.y = out
        self.out_type = out_type
        self.gy = None
        # Every output port's variable (a type with several outputs writes them itself), and
        # in the backward each one's gradient (None where none arrived).
        self.outs = {} if out is None else {"y": out}
        self.gys: dict = {}
        self.target = target
        self.needs: set = set()
        self.module = None  # torch: the node's submodule expression
        self.key = None  # (site path, node id): names the node's own locals

    # -- reading ----------------------------------------------------------------------------

    def t(self, port: str):
        return self.in_types[port]

    def ndim(self, port: str) -> int:
        return self.in_types[port].ndim

    def is_int(self, port: str) -> bool:
        return self.in_types[port].dtype == INT

    def need(self, name: str) -> bool:
        return name in self.needs

    def lit(self, value) -> str:
        return literal(value)

    def fields(self) -> dict:
        out = {}
        for key, value in self.p.items():
            if value is None or isinstance(value, (bool, int, float, list, tuple)):
                out[key] = literal(value)
        out.update(self.ins)
        out.update(self.weights)
        if self.y is not None:
            out["y"] = self.y
        if self.gy is not None:
            out["gy"] = self.gy
        if self.module is not None:
            out["self"] = self.module
        out["dtype"] = "DTYPE"
        return out

    def fmt(self, template: str) -> str:
        return template.format(**self.fields())

    # -- writing ----------------------------------------------------------------------------

    def tmp(self, stem: str) -> str:
        """A fresh local variable named after the node's output and `stem`."""
        return self.fn.names.new(f"{self.y or 'v'}_{stem}")

    def emit(self, line: str) -> None:
        self.fn.w.line(line)

    def helper(self, fn) -> str:
        """Copy a helper function into the module (once), with the type's other helpers it
        calls; returns its name."""
        return self.fn.module.use_helper(fn)

    def local(self, stem: str) -> str:
        """A variable of this node's own that its forward and backward rules share."""
        return self.fn.names.of(("local", self.key, stem), f"{self.y or 'v'}_{stem}")

    def ub(self, expr: str, port: str, shape: tuple | None = None) -> str:
        """`expr` (shaped like the output, or `shape`) summed back to the shape of `port`,
        as numpy broadcasting made it: a static version of the engine's `unbroadcast`."""
        target = tuple(self.in_types[port].shape)
        g = tuple(self.out_type.shape if shape is None else shape)
        extra = len(g) - len(target)
        if extra > 0:
            expr = f"np.sum({expr}, axis={literal(tuple(range(extra)))})"
            g = g[extra:]
        axes = tuple(i for i, d in enumerate(target) if d == 1 and g[i] != 1)
        if axes:
            expr = f"np.sum({expr}, axis={literal(axes)}, keepdims=True)"
        return expr
