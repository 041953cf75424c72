"""The ONNX target's walk over a compiled document: each graph's nodes in the compiler's order,
an ordinary node written by its type's ONNX rule (onnx_builder.py), a Block inlined (its
instance's weights are its own initializers, or its owner's where it shares), a Loop or a
Branch by the control-flow mixin (onnx_flow.py). As the torch target does, it walks the
document as written, not the numpy code's lowered copy.
"""

from __future__ import annotations

from contextlib import contextmanager

from ... import nodes
from ..codegen.layout import Layout, Site
from ..codegen.walk import SiteWalk
from .onnx_builder import ModelBuilder, OnnxGraph, RuleBuilder, apply_rule
from .onnx_flow import OnnxFlow


class OnnxWriter(OnnxFlow, SiteWalk):
    """Writes the sites of one layout into ONNX graphs; `graph` is the one being written."""

    def __init__(self, layout: Layout, model: ModelBuilder):
        self.layout = layout
        self.model = model
        self.graph: OnnxGraph | None = None
        self.var: dict = {}  # (site path, node id, port) -> value name
        self.steps: list = []  # LoopIndex's value in each enclosing loop, innermost last
        self.shared = layout.compiler.shared

    @contextmanager
    def in_graph(self, graph: OnnxGraph):
        """Write into `graph` (a Loop body, an If branch) for the duration."""
        saved = self.graph
        self.graph = graph
        try:
            yield graph
        finally:
            self.graph = saved

    def tmp(self, stem: str, op_type: str, *inputs, **attrs) -> str:
        """One operator of the walk's own (control flow), output named after `stem`."""
        return self.graph.op(op_type, inputs, stem, **attrs)[0]

    # -- graphs -------------------------------------------------------------------------------

    def walk(self, site: Site, args: dict, keep: set | None = None) -> dict:
        """Write a site's nodes: Inputs take the value names in `args` (by id); returns Output
        id -> value name."""
        return SiteWalk.walk(self, site, args, keep, lambda node: self.write(site, node))

    def write(self, site: Site, node) -> None:
        key = (site.path, node.id, "y")
        if node.type == "Constant":
            self.var[key] = self.model.const(site.params[node.id]["value"], "float",
                                             stem=site.path + node.id)
        elif node.type == "LoopIndex":
            self.var[key] = self.steps[-1] if self.steps else self.model.const(0.0)
        elif node.type == "Loop":
            self.loop(site, node)
        elif node.type == "Branch":
            self.branch(site, node)
        elif node.type == "Block":
            self.block(site, node)
        else:
            self.op(site, node)

    def weight_names(self, site: Site, node) -> dict:
        """A node's weights and buffers -> the engine's parameter names they are (the owner's,
        for a node that shares)."""
        out = {}
        for name in (*self.layout.weights(site, node), *self.layout.buffers(site, node)):
            full = f"{site.path}{node.id}.{name}"
            out[name] = self.shared.get(full, full)
        return out

    def op(self, site: Site, node) -> None:
        node_type = nodes.get(node.type)
        p = site.params[node.id]
        in_types = self.layout.in_types(site, node)  # the connected ports
        ins = {port: self.source_var(site, node.id, port) for port in in_types}
        out_ports = self.layout.ports(node)[1]
        out_types = {port: self.layout.type_of(site, node.id, port) for port in out_ports}
        path = site.path + node.id
        g = RuleBuilder(self.graph, path, node.type, ins, in_types, out_types,
                        self.weight_names(site, node), node.label or "")
        if node.type == "Parameter":
            got = {"y": g.weight("value")}
        else:
            got = apply_rule(node_type, p, g)
        for port in out_ports:
            self.var[(site.path, node.id, port)] = got[port]

    def block(self, site: Site, node) -> None:
        body = self.layout.bodies(site, node)["definition"]
        ins, out_ports = self.layout.ports(node)
        got = self.walk(body, {port: self.source_var(site, node.id, port) for port in ins})
        for port in out_ports:
            self.var[(site.path, node.id, port)] = got[port]
