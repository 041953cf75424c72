"""Walking one graph's nodes in the compiler's order: the part every writer shares (the numpy
and torch functions, the ONNX graphs).

Only the nodes the kept Outputs need are written; an Input takes the value its caller binds, an
Output names the value feeding it, and every other node goes to the writer's `write`.
"""

from __future__ import annotations

from .layout import Layout, Site


class SiteWalk:
    """The walk, for a writer that keeps `layout` and `var`, its (site path, node id, port) ->
    value name."""

    layout: Layout
    var: dict

    def source_var(self, site: Site, node_id: str, port: str) -> str:
        """The value feeding a node's input port."""
        src, sport = site.source(node_id, port)
        return self.var[(site.path, src, sport)]

    def walk(self, site: Site, args: dict, keep: set | None, write) -> dict:
        """The forward pass of a site: Inputs take the values in `args` (by id), `write`
        writes every other node the kept Outputs need (None: all of them), in order. Returns
        Output id -> value name."""
        outs = {}
        if keep is None:
            keep = self.layout.ancestors(site, [o.id for o in site.outputs()])
        for node in site.order:
            if node.id not in keep:
                continue
            if node.type == "Output":
                outs[node.id] = self.source_var(site, node.id, "x")
            elif node.type == "Input":
                self.var[(site.path, node.id, "y")] = args[node.id]
                self.input_bound(site, node)
            else:
                write(node)
        return outs

    def input_bound(self, site: Site, node) -> None:
        """Called when an Input takes its argument (traced numpy functions record it)."""
