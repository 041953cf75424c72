"""Control flow and blocks: Loop, Branch, Block.

Their ports come from their bodies (a body's Input ids become inputs, its Output ids outputs),
and the compiler runs them, since running one means running a graph. What is declared here is
what the editor and the document need: params, and how to read the ports off the bodies.
A body is anything with `.nodes`, an iterable of objects with `.id`, `.type` and `.params`.
"""

from __future__ import annotations

from .base import NodeType, Param
from .registry import register

# The most steps one Loop may take (count, max_iter): a bound a document cannot exceed, so that
# a typo of 10**12 is a parameter error on the node instead of a run that never ends.
MAX_STEPS = 1_000_000


def body_inputs(body) -> list:
    """The ids of a body's Inputs that the enclosing node feeds (a tree Loop feeds its
    `children` Inputs itself)."""
    return [n.id for n in body.nodes
            if n.type == "Input" and n.params.get("role") != "children"]


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
    help = ("Runs its body repeatedly: a fixed count, once per sequence step, while a test "
            "holds (for the batch, or per sample), or once per node of a tree, children first.")
    params = (
        Param("mode", "choice", "repeat", "repeat: count times; scan: over a sequence axis; "
              "while: until the continue output is <= 0; tree: over each sample's tree, "
              "children before parents.", choices=("repeat", "scan", "while", "tree")),
        Param("count", "int", 1, "Steps in repeat mode.", minimum=0, maximum=MAX_STEPS),
        Param("axis", "axis", 1, "Scan and tree mode: the sequence axis of sequence inputs and "
              "stacked outputs."),
        Param("max_iter", "int", 100, "While mode: the most steps it may take.", minimum=1,
              maximum=MAX_STEPS),
        Param("per_sample", "bool", False, "While mode: each sample stops on its own continue "
              "value (one per sample), its carries then kept."),
    )
    bodies = ("body",)

    def summary(self, p):
        each = " per sample" if p["per_sample"] else ""
        detail = {"repeat": f"x{p['count']}", "scan": f"scan axis {p['axis']}",
                  "while": f"while{each} (max {p['max_iter']})", "tree": "tree"}[p["mode"]]
        return f"Loop {detail}"

    def ports(self, p, bodies):
        body = bodies["body"]
        ins = tuple(body_inputs(body))
        if p["mode"] == "tree":
            ins += ("children",)  # (B, N, K) child indices, -1 for none
        return ins, tuple(body_outputs(body))


@register
class Branch(ControlType):
    help = "Chooses between two bodies: one side by a scalar test, or both blended per element."
    params = (
        Param("mode", "choice", "scalar", "scalar: run then if cond > 0, else else; select: run "
              "both and pick per element; route: each sample through one side, by its own "
              "cond (hard routing, as to experts).", choices=("scalar", "select", "route")),
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
    help = ("A call of a user-defined block; each instance owns its weights, or uses another "
            "instance's through shares.")
    params = (Param("block", "str", help="Name of the block definition in the document."),)
    summary_format = "{block}"

    def summary(self, p):
        return str(p["block"])

    def ports(self, p, bodies):
        body = bodies["definition"]
        return tuple(body_inputs(body)), tuple(body_outputs(body))
