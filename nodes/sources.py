"""Where values come from and where they go: Input, Output, Constant, Parameter, LoopIndex.

Input and Output are the arguments and results of a graph; the compiler wires them, so their
forward is never called. Constant is evaluated once at compile time (`constant = True`).
"""

from __future__ import annotations

import numpy as np

from .base import (
    FLOAT,
    INT,
    NodeType,
    Param,
    Sample,
    ShapeError,
    TensorType,
    Weight,
    constant,
    normal,
    uniform,
)
from .registry import register


@register
class Input(NodeType):
    category = "Sources"
    help = "A value fed from data, or an argument of a loop, branch or block body."
    inputs = ()
    params = (
        Param("shape", "shape", None, "Shape without the batch axis; null for any length.",
              nullable=True),
        Param("dtype", "choice", "float32", "Element type.", choices=("float32", "int64")),
        Param("role", "choice", "const",
              "In a loop body: const (same every step), carry (state), sequence (one slice a "
              "step or tree node), children (a tree node's children's values of an Output).",
              choices=("const", "carry", "sequence", "children")),
        Param("of", "str", None, "For role children: the id of the body's stack Output whose "
              "values at the children it sees.", nullable=True),
    )
    summary_format = "{shape}"

    def infer(self, p, ins):
        raise ShapeError(None, "Input is wired by the compiler")


@register
class Output(NodeType):
    category = "Sources"
    help = "Marks a result of the graph, named by its id."
    outputs = ()
    params = (
        Param("role", "choice", "stack",
              "In a loop body: stack (collect every step), carry (next state), continue (while).",
              choices=("stack", "carry", "continue")),
        Param("carry", "str", None, "For role carry: the id of the carry Input it updates.",
              nullable=True),
    )

    def infer(self, p, ins):
        return {}


@register
class Constant(NodeType):
    category = "Sources"
    help = "A fixed number or array; no batch axis, broadcasts against batched values."
    inputs = ()
    params = (Param("value", "value", 0.0, "A number or a nested list of numbers."),)
    constant = True

    def summary(self, p):
        value = p["value"]
        return f"Constant {value}" if not isinstance(value, list) else f"Constant {np.shape(value)}"

    def infer(self, p, ins):
        return {"y": TensorType(np.shape(p["value"]), FLOAT)}

_INITS = {
    "zeros": lambda scale: constant(0.0),
    "ones": lambda scale: constant(1.0),
    "normal": normal,
    "uniform": uniform,
}


@register
class Parameter(NodeType):
    category = "Sources"
    help = "One trainable tensor (ID.value), no batch axis."
    inputs = ()
    params = (
        Param("shape", "shape", [], "Shape of the tensor (no batch axis)."),
        Param("init", "choice", "normal", "Initial values.",
              choices=("zeros", "ones", "normal", "uniform")),
        Param("scale", "float", 1.0, "Standard deviation (normal) or bound (uniform).",
              minimum=0.0),
    )
    summary_format = "{shape}"
    samples = (Sample({"shape": [3, 2]}, {}),)
    # Export: the weight itself; in torch an nn.Parameter attribute named after the node.
    np_forward = "{value}"
    np_backward = {"value": "{gy}"}

    def infer(self, p, ins):
        if any(d is None for d in p["shape"]):
            raise ShapeError(None, "a Parameter's shape must have every length given")
        return {"y": TensorType(tuple(p["shape"]), FLOAT)}

    def weights(self, p, ins):
        return {"value": Weight(tuple(p["shape"]), _INITS[p["init"]](p["scale"]))}

@register
class LoopIndex(NodeType):
    category = "Control"
    help = "The current step of the enclosing loop, from 0, as a float scalar."
    inputs = ()

    def infer(self, p, ins):
        return {"y": TensorType((), FLOAT)}

__all__ = ["INT", "Constant", "Input", "LoopIndex", "Output", "Parameter"]
