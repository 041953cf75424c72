"""Control flow and blocks: Loop, Branch, Block.

Their ports come from their bodies (a body's Input ids become inputs, its Output ids outputs),
and the compiler runs them, since running one means running a graph. What is declared here is
what the editor and the document need: params, and how to read the ports off the bodies.
A body is anything with `.nodes`, an iterable of objects with `.id`, `.type` and `.params`.
"""

from __future__ import annotations

from .base import NodeType, Param
from .registry import register


def body_inputs(body) -> list:
    return [n.id for n in body.nodes if n.type == "Input"]


def body_outputs(body, skip_continue: bool = True) -> list:
    return [
        n.id for n in body.nodes
        if n.type == "Output" and not (skip_continue and n.params.get("role") == "continue")
    ]


class ControlType(NodeType):
    category = "Control"
    control = True
    bodies: tuple = ()  # names of the graphs a node of this type carries

    def ports(self, p: dict, bodies: dict) -> tuple:
        """(input ports, output ports), given the node's bodies by name."""
        raise NotImplementedError


@register
class Loop(ControlType):
    help = "Runs its body repeatedly: a fixed count, once per sequence step, or while a test holds."
    params = (
        Param("mode", "choice", "repeat", "repeat: count times; scan: over a sequence axis; "
              "while: until the continue output is <= 0.", choices=("repeat", "scan", "while")),
        Param("count", "int", 1, "Steps in repeat mode.", minimum=0),
        Param("axis", "axis", 1, "Scan mode: the sequence axis of sequence inputs and stacked "
              "outputs."),
        Param("max_iter", "int", 100, "While mode: the most steps it may take.", minimum=1),
    )
    bodies = ("body",)

    def summary(self, p):
        detail = {"repeat": f"x{p['count']}", "scan": f"scan axis {p['axis']}",
                  "while": f"while (max {p['max_iter']})"}[p["mode"]]
        return f"Loop {detail}"

    def ports(self, p, bodies):
        body = bodies["body"]
        return tuple(body_inputs(body)), tuple(body_outputs(body))


@register
class Branch(ControlType):
    help = "Chooses between two bodies: one side by a scalar test, or both blended per element."
    params = (
        Param("mode", "choice", "scalar", "scalar: run then if cond > 0, else else; select: run "
              "both and pick per element.", choices=("scalar", "select")),
    )
    bodies = ("then", "else")
    summary_format = "{mode}"

    def ports(self, p, bodies):
        names = ["cond"]
        for side in ("then", "else"):
            for name in body_inputs(bodies[side]):
                if name not in names:
                    names.append(name)
        return tuple(names), tuple(body_outputs(bodies["then"]))


@register
class Block(ControlType):
    help = "A call of a user-defined block; each instance owns its weights."
    params = (Param("block", "str", help="Name of the block definition in the document."),)
    summary_format = "{block}"

    def summary(self, p):
        return str(p["block"])

    def ports(self, p, bodies):
        body = bodies["definition"]
        return tuple(body_inputs(body)), tuple(body_outputs(body))
