"""Seeing inside the network: every top-level wire's value and gradient on a few rows.

The engine's programs give only their Outputs and the parameters' gradients, so the probe
compiles *copies* of the document that expose more (the document itself is never changed):

- for values, a copy with an extra `Output` on every output port of every top-level node;
- for gradients, a copy where every float wire `a -> b` goes through `Add(a, p)`, `p` a
  zero `Parameter` shaped like the wire's value on the probe batch. The gradient of the loss
  with respect to `p` is then exactly the gradient flowing back through that wire.

Both run in the UI thread on a parameter snapshot and a small batch (a few ms for the nets in
the examples); the compiled copies are cached per document revision and batch shape.
"""

from __future__ import annotations

import math

import numpy as np

import core
from core.document import Edge, Node
from core.errors import GraphError

PREFIX = "_wgprobe"


def _fresh_id(graph, base: str) -> str:
    n = 0
    while graph.node(f"{base}{n}") is not None:
        n += 1
    return f"{base}{n}"


class Probe:
    """Values and gradients of a document's top-level wires; one per document revision."""

    def __init__(self, doc, loss: str | None = None, dtype: str = "float32"):
        self.doc = doc.copy()  # a snapshot: the live document may change under us
        self.loss = loss
        self.dtype = dtype
        self.ports: dict = {}        # probe Output id -> (node id, port)
        self._values_program = None
        self._values_error: str | None = None
        self._grad_cache: dict = {}  # batch shapes -> (program, {param name: edge}) or error

    # -- values -------------------------------------------------------------------------------

    def _build_values(self):
        if self._values_program is not None or self._values_error is not None:
            return self._values_program
        doc = self.doc.copy()
        graph = doc.graph
        for node in list(graph.nodes):
            if node.type == "Output" or node.id.startswith(PREFIX):
                continue
            _, outs = doc.ports(node)
            for port in outs:
                out_id = _fresh_id(graph, f"{PREFIX}o")
                graph.nodes.append(Node(out_id, "Output"))
                graph.edges.append(Edge(node.id, port, out_id, "x"))
                self.ports[out_id] = (node.id, port)
        try:
            self._values_program = core.compile(doc, self.dtype)
        except GraphError as exc:
            self._values_error = str(exc)
        return self._values_program

    def values(self, params: dict, feeds: dict) -> dict:
        """{(node id, port): array} for every top-level output port these feeds can reach.
        Outputs keep their own ids: {(output id, None): array}."""
        program = self._build_values()
        if program is None:
            return {}
        wanted = []
        for name in program.output_shapes:
            needs = program.schedule((name,)).arg_names
            if all(n in feeds for n in needs):
                wanted.append(name)
        if not wanted:
            return {}
        feeds = {k: v for k, v in feeds.items() if k in program.input_shapes}
        results = program.run(_only(params, program), feeds, train=False, outputs=wanted)
        out = {}
        for name, value in results.items():
            key = self.ports.get(name, (name, None))
            out[key] = np.asarray(value)
        return out

    # -- gradients ----------------------------------------------------------------------------

    def _build_grads(self, values: dict):
        key = tuple(sorted((k, v.shape, v.dtype.kind) for k, v in
                           ((f"{a}.{b}", arr) for (a, b), arr in values.items())))
        cached = self._grad_cache.get(key)
        if cached is not None:
            return cached
        # A Loop, Branch or Block takes a batched value whose batch length is open; a probe
        # Parameter has a fixed one, which their bodies refuse. Try every wire, then without
        # the wires into those nodes.
        cached = None
        for skip_control in (False, True):
            cached = self._compile_grads(values, skip_control)
            if cached[0] is not None:
                break
        if len(self._grad_cache) > 8:
            self._grad_cache.clear()
        self._grad_cache[key] = cached
        return cached

    def _compile_grads(self, values: dict, skip_control: bool):
        doc = self.doc.copy()
        graph = doc.graph
        edges = {}
        for edge in list(graph.edges):
            value = values.get((edge.src, edge.src_port))
            if value is None or value.dtype.kind != "f":
                continue
            dst = graph.node(edge.dst)
            if skip_control and dst is not None and (dst.bodies or dst.type == "Block"):
                continue
            add_id = _fresh_id(graph, f"{PREFIX}a")
            graph.nodes.append(Node(add_id, "Add"))
            param_id = _fresh_id(graph, f"{PREFIX}p")
            graph.nodes.append(Node(param_id, "Parameter",
                                    {"shape": list(value.shape), "init": "zeros"}))
            graph.edges.remove(edge)
            graph.edges += [Edge(edge.src, edge.src_port, add_id, "a"),
                            Edge(param_id, "y", add_id, "b"),
                            Edge(add_id, "y", edge.dst, edge.dst_port)]
            edges[f"{param_id}.value"] = edge
        try:
            return core.compile(doc, self.dtype), edges
        except GraphError as exc:
            return None, str(exc)

    def gradients(self, params: dict, feeds: dict, values: dict | None = None) -> dict:
        """{Edge: gradient array} of the loss w.r.t. every float top-level wire."""
        if not self.loss:
            return {}
        if values is None:
            values = self.values(params, feeds)
        program, edges = self._build_grads(values)
        if program is None:
            return {}
        full = dict(_only(params, program))
        for name in edges:
            full[name] = np.zeros(program.param_shapes[name], program.dtype)
        feeds = {k: v for k, v in feeds.items() if k in program.input_shapes}
        try:
            _, grads = program.value_and_grad(full, feeds, self.loss, train=False)
        except GraphError:
            return {}
        return {edge: grads[name] for name, edge in edges.items()}


def _only(params: dict, program) -> dict:
    return {n: params[n] for n in program.param_names if n in params}


def port_gradients(grads: dict) -> dict:
    """{(node, port): summed gradient}: what flows back into a node's output port."""
    out: dict = {}
    for edge, g in grads.items():
        key = (edge.src, edge.src_port)
        out[key] = g if key not in out else out[key] + g
    return out


def stats(array) -> dict:
    """Summary figures of an array, NaN/Inf counted rather than propagated."""
    a = np.asarray(array, dtype=np.float64).ravel()
    finite = a[np.isfinite(a)]
    out = {"size": int(a.size), "nonfinite": int(a.size - finite.size)}
    if finite.size:
        out.update(mean=float(finite.mean()), std=float(finite.std()), min=float(finite.min()),
                   max=float(finite.max()), zeros=float(np.mean(finite == 0)),
                   norm=float(np.sqrt(np.sum(finite * finite))))
    return out


def histogram(array, bins: int = 30):
    """(counts, edges) of the finite values, or None when there are none."""
    a = np.asarray(array, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    if not a.size:
        return None
    low, high = float(a.min()), float(a.max())
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return np.histogram(a, bins=bins, range=(low, high))


def rms(array) -> float:
    """Root mean square of the finite values: a wire's typical gradient size, per element."""
    a = np.asarray(array, dtype=np.float64)
    if not a.size:
        return 0.0
    a = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(a * a))) if a.size else math.inf


def preview(array, limit: int = 6) -> str:
    """`[0.12, 0, 1.3, …]` for one row of values."""
    flat = np.asarray(array).ravel()
    shown = ", ".join(f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)
                      for v in flat[:limit].tolist())
    return f"[{shown}{', …' if flat.size > limit else ''}]"
