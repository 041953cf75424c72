"""Rewrites that let a scan Loop do less per step, made on a copy of the document before its
numpy code is written. The user's document, the weights' names and the results stay as they are.

1. Split: a Linear over a Concat whose parts are partly computed from the sequence alone and
   partly not (the `[x_t, h]` of an RNN cell) becomes two Linears, one per group of parts, over
   row ranges of the one weight, added: x_t @ W[:n] + h @ W[n:] + b.
2. Hoist: body nodes computed from the sequence inputs alone, by types whose rule works on
   each step's slice on its own (`NodeType.rowwise_axes`), move out of the loop. They run once
   on the whole sequence before it (one matmul for every step's input projection, as a
   hand-written BPTT does) and reach the body as one more sequence input; their backward runs
   once after the loop's, on the gradients of every step.

The weights of the rewritten Linears are views of the real one (`Rewrites.weight_view`), and
their ids carry "~", which a document id never does, so they can be told from real nodes
(`Rewrites.real_id`). Bodies of block definitions are left alone: their instances may see
different shapes.
"""

from __future__ import annotations

from ... import nodes
from ...nodes import TensorType
from ..document import Edge, Graph, Node

MARK = "~"


class Rewrites:
    """What the lowering made: weight views and the real node behind each new one."""

    def __init__(self):
        self.views: dict = {}  # (id(graph), node id) -> (real node id, {weight: row slice})
        self.real: dict = {}  # (id(graph), node id) -> real node id (relative to the graph)
        self.count = 0

    def weight_view(self, graph: Graph, node_id: str, weight: str):
        """(real node id, slice text) the weight of a rewritten node views, or None."""
        view = self.views.get((id(graph), node_id))
        if view is None:
            return None
        real_id, slices = view
        return real_id, slices.get(weight, "")

    def real_id(self, graph: Graph, node_id: str) -> str | None:
        """The document node a rewritten node computes part of (None for a real node)."""
        return self.real.get((id(graph), node_id))


def lower(doc, compiler) -> tuple:
    """(a rewritten copy of doc, Rewrites); the copy is doc itself when nothing applies."""
    out = doc.copy()
    rewrites = Rewrites()
    types = compiler.port_types
    _lower_graph(out.graph, "", types, rewrites)
    return (out, rewrites) if rewrites.count else (doc, rewrites)


def _lower_graph(graph: Graph, prefix: str, types: dict, rewrites: Rewrites) -> None:
    for node in list(graph.nodes):
        for key, body in node.bodies.items():
            side = f"{key}/" if node.type == "Branch" else ""
            _lower_graph(body, f"{prefix}{node.id}/{side}", types, rewrites)
        if node.type == "Loop" and node.params.get("mode") == "scan":
            _Scan(graph, node, prefix, types, rewrites).run()


class _Scan:
    """One scan Loop node being rewritten in its graph."""

    def __init__(self, graph: Graph, loop: Node, prefix: str, types: dict, rewrites: Rewrites):
        self.graph, self.loop, self.prefix = graph, loop, prefix
        self.body = loop.bodies["body"]
        self.path = f"{prefix}{loop.id}/"
        self.types = dict(types)
        self.rewrites = rewrites
        self.axis = loop.params.get("axis", 1)

    # -- what the body computes ---------------------------------------------------------------

    def t(self, node_id: str, port: str = "y") -> TensorType | None:
        return self.types.get((self.path + node_id, port))

    def sequence_inputs(self) -> set:
        return {n.id for n in self.body.nodes if n.type == "Input"
                and n.params.get("role", "const") == "sequence"}

    def step_only(self) -> set:
        """Body nodes whose every input is a sequence input or another such node, and whose
        rule can run on the whole sequence at once."""
        seq = self.sequence_inputs()
        found = set(seq)
        changed = True
        while changed:
            changed = False
            for node in self.body.nodes:
                if node.id in found or not self._rowwise(node):
                    continue
                ins = [e for e in self.body.edges if e.dst == node.id]
                if ins and all(e.src in found for e in ins):
                    found.add(node.id)
                    changed = True
        return found - seq

    def _rowwise(self, node: Node) -> bool:
        node_type = nodes.get(node.type)
        if node_type is None or node_type.control:
            return False
        try:
            k = node_type.rowwise_axes(node_type.resolve_params(node.params))
        except nodes.ParamError:
            return False
        if k is None:
            return False
        for edge in self.body.edges:
            if edge.dst == node.id:
                t = self.t(edge.src, edge.src_port)
                # The sequence axis goes back in at `axis`: it must come before the k axes
                # the rule works across.
                if t is None or not 0 <= self._axis(t) <= t.ndim - k:
                    return False
        return True

    def _axis(self, t: TensorType) -> int:
        return self.axis % (t.ndim + 1) if self.axis < 0 else self.axis

    def consumers(self, node_id: str) -> list:
        return [e for e in self.body.edges if e.src == node_id]

    # -- rewriting ------------------------------------------------------------------------------

    def run(self) -> None:
        for node in list(self.body.nodes):
            if node.type == "Linear":
                self._split(node)
        self._hoist()

    def _split(self, linear: Node) -> None:
        into = self.body.edge_into(linear.id, "x")
        concat = self.body.node(into.src) if into is not None else None
        if concat is None or concat.type != "Concat" or len(self.consumers(concat.id)) != 1:
            return
        out_t = self.t(concat.id)
        if out_t is None or (concat.params.get("axis", -1) % out_t.ndim) != out_t.ndim - 1:
            return
        step_only = self.step_only()
        parts = [self.body.edge_into(concat.id, f"x{i}") for i in range(concat.params.get("n", 2))]
        flags = [e.src in step_only or e.src in self.sequence_inputs() for e in parts]
        cut = next((i for i in range(1, len(parts)) if flags[i] != flags[0]), None)
        if cut is None or any(flags[i] != flags[cut] for i in range(cut, len(parts))):
            return  # not two runs, one from the sequence alone and one not
        widths = [self.t(e.src, e.src_port) for e in parts]
        if any(w is None or w.shape[-1] is None for w in widths):
            return
        rows = sum(w.shape[-1] for w in widths[:cut])
        total = sum(w.shape[-1] for w in widths)
        groups = [(parts[:cut], f"[:{rows}]"), (parts[cut:], f"[{rows}:{total}]")]
        hoisted = 0 if flags[0] else 1
        bias = linear.params.get("bias", True)
        adds = []
        for g, (group, rows_slice) in enumerate(groups):
            src = self._group(linear.id, g, group, concat.params.get("axis", -1))
            part_id = f"{linear.id}{MARK}{g}"
            with_bias = bias and g == hoisted
            params = {"out_features": linear.params["out_features"], "bias": with_bias}
            self._add(Node(part_id, "Linear", params), linear.id,
                      {"weight": rows_slice, "bias": ""}, [Edge(*src, part_id, "x")])
            t_in = self.t(*src)
            self.types[(self.path + part_id, "y")] = TensorType(
                t_in.shape[:-1] + (linear.params["out_features"],), t_in.dtype)
            adds.append(part_id)
        # The Linear's own id now adds the two parts: what reads it reads the same value.
        linear.type, linear.params = "Add", {}
        self.body.edges = [e for e in self.body.edges
                           if e.dst not in (linear.id, concat.id)]
        self.body.edges += [Edge(adds[0], "y", linear.id, "a"), Edge(adds[1], "y", linear.id, "b")]
        self.body.nodes = [n for n in self.body.nodes if n.id != concat.id]
        self.rewrites.count += 1

    def _group(self, linear_id: str, g: int, group: list, axis) -> tuple:
        """The (node, port) a group of Concat parts comes from: the part, or a new Concat."""
        if len(group) == 1:
            return group[0].src, group[0].src_port
        concat_id = f"{linear_id}{MARK}join{g}"
        self._add(Node(concat_id, "Concat", {"n": len(group), "axis": axis}), linear_id, None,
                  [Edge(e.src, e.src_port, concat_id, f"x{i}") for i, e in enumerate(group)])
        ts = [self.t(e.src, e.src_port) for e in group]
        width = sum(t.shape[-1] for t in ts)
        self.types[(self.path + concat_id, "y")] = TensorType(ts[0].shape[:-1] + (width,),
                                                              ts[0].dtype)
        return concat_id, "y"

    def _add(self, node: Node, real_id: str, slices: dict | None, edges: list) -> None:
        self.body.nodes.insert(self.body.index_of(real_id), node)
        self.body.edges += edges
        self.rewrites.real[(id(self.body), node.id)] = real_id
        if slices is not None:
            self.rewrites.views[(id(self.body), node.id)] = (real_id, slices)

    def _hoist(self) -> None:
        moving = self.step_only()
        if not moving:
            return
        order = [n for n in self.body.nodes if n.id in moving]
        outer_of = {}  # body sequence input id -> (outer node, port) feeding it
        for e in self.graph.edges:
            if e.dst == self.loop.id:
                outer_of[e.dst_port] = (e.src, e.src_port)
        for node in order:
            outer_id = f"{self.loop.id}{MARK}{node.id}"
            for edge in [e for e in self.body.edges if e.dst == node.id]:
                src = outer_of.get(edge.src, (f"{self.loop.id}{MARK}{edge.src}", "y"))
                self.graph.edges.append(Edge(*src, outer_id, edge.dst_port))
            real = self.rewrites.real_id(self.body, node.id)
            moved = Node(outer_id, node.type, dict(node.params))
            self.graph.nodes.insert(self.graph.index_of(self.loop.id), moved)
            self.rewrites.real[(id(self.graph), outer_id)] = f"{self.loop.id}/{real or node.id}"
            real_id, slices = self.rewrites.views.pop((id(self.body), node.id), (node.id, {}))
            self.rewrites.views[(id(self.graph), outer_id)] = (f"{self.loop.id}/{real_id}", slices)
        # A moved node that a step still reads becomes a sequence input of the body, fed by
        # its outer copy; the others (read only by moved nodes) are gone from the body.
        self.body.edges = [e for e in self.body.edges if e.dst not in moving]
        read = {e.src for e in self.body.edges}
        body_nodes = []
        for node in self.body.nodes:
            if node.id not in moving:
                body_nodes.append(node)
            elif node.id in read:
                t = self.t(node.id)
                shape = list(t.shape[1:]) if t.ndim and t.shape[0] is None else list(t.shape)
                body_nodes.append(Node(node.id, "Input", {"shape": shape, "role": "sequence"}))
                self.rewrites.real[(id(self.body), node.id)] = \
                    self.rewrites.real_id(self.body, node.id) or node.id
                self.graph.edges.append(Edge(f"{self.loop.id}{MARK}{node.id}", "y",
                                             self.loop.id, node.id))
        self.body.nodes = body_nodes
        self._drop_unread_sequences()
        self.rewrites.count += 1

    def _drop_unread_sequences(self) -> None:
        """Sequence inputs no step reads any more (their projection moved out) go; one stays,
        to give the loop its length."""
        read = {e.src for e in self.body.edges}
        unread = [n.id for n in self.body.nodes if n.type == "Input"
                  and n.params.get("role") == "sequence" and n.id not in read]
        if len(unread) == len(self.sequence_inputs()):
            unread = unread[1:]
        self.body.nodes = [n for n in self.body.nodes if n.id not in unread]
        self.graph.edges = [e for e in self.graph.edges
                            if not (e.dst == self.loop.id and e.dst_port in unread)]
