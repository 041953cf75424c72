"""What the code generator needs to know about a compiled document, graph by graph.

A `Site` is one graph as it sits in the program: the top graph, a loop body, a branch side, a
block instance. It knows its nodes in the compiler's order, their resolved params and the
types the compiler inferred for every port. Two static analyses run over sites: `Carries` marks
the values a gradient can flow back through (they depend on a weight), and `Gradients` marks
the values that receive a gradient from a given set of results (only those are computed in a
written-out backward pass).
Recursion here follows the nesting of bodies, never the length of a graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ... import nodes
from ...nodes import INT, TensorType
from ..compiler import Compiler
from ..document import Document, Graph, Node
from ..errors import GraphError
from ..well_formed import topo_order
from .lower import Rewrites, lower

CONTROL = ("Loop", "Branch", "Block")


@dataclass
class Site:
    """A graph placed in the program at `path` (weight and type names start with it)."""

    graph: Graph
    path: str  # "", "rnn/", "gate/then/", "res1/"
    kind: str  # top, loop, then, else, block
    order: list = field(default_factory=list)  # Nodes in the compiler's order
    params: dict = field(default_factory=dict)  # node id -> resolved params
    by_id: dict = field(default_factory=dict)

    def inputs(self) -> list:
        return [n for n in self.graph.nodes if n.type == "Input"]

    def outputs(self, skip_continue: bool = False) -> list:
        return [n for n in self.graph.nodes if n.type == "Output"
                and not (skip_continue and self.params[n.id].get("role") == "continue")]

    def source(self, node_id: str, port: str) -> tuple:
        """(source node id, source port) of the edge into node_id.port."""
        edge = self.graph.edge_into(node_id, port)
        return edge.src, edge.src_port


class Layout:
    """A compiled document as the generator sees it: sites, types, weights.

    A layout for the numpy code (`lowered=True`) is of a rewritten copy of the document whose
    scan loops do less per step (lower.py); its weights stay the document's own.
    """

    def __init__(self, doc: Document, compiler: Compiler, rewrites: Rewrites | None = None):
        self.doc = doc
        self.compiler = compiler
        self.rewrites = rewrites or Rewrites()
        self.dtype = str(compiler.dtype)
        self._sites: dict = {}
        self.types = self.compiler.port_types
        self.weight_names = list(self.compiler.weight_names)
        self.weight_specs = list(self.compiler.weight_specs)
        self.buffer_names = list(self.compiler.buffer_names)
        self.buffer_specs = list(self.compiler.buffer_specs)
        self.top = self.site(doc.graph, "", "top")
        self.input_types = dict(self.compiler.input_types)
        self.output_types = dict(self.compiler.output_types)
        self.carries = Carries(self)
        self.carries.run(self.top, {})
        shared = self.compiler.shared
        # Tensors more than one node writes the gradient of: the owner's and its sharers'.
        self.shared_weights = set(shared) | set(shared.values())

    @classmethod
    def of(cls, doc: Document, dtype: str = "float32", lowered: bool = False) -> Layout:
        """Compile `doc` (raising a GraphError listing every problem) and lay it out."""
        compiler = Compiler(doc, dtype)
        compiler.run()
        if compiler.errors:
            raise GraphError.collect(compiler.errors)
        return cls.lower(doc, compiler) if lowered else cls(doc, compiler)

    @classmethod
    def lower(cls, doc: Document, compiler: Compiler) -> Layout:
        """The layout the numpy code is written from: of the document with its scan loops
        rewritten (lower.py), keeping the compiled document's weights."""
        rewritten, rewrites = lower(doc, compiler)
        if rewritten is doc:
            return cls(doc, compiler)
        again = Compiler(rewritten, compiler.dtype, bounds=False)  # `doc` was checked
        again.run()
        if again.errors:  # a rewrite that does not compile is a bug; say which
            raise GraphError(f"internal error rewriting loops: {again.errors[0]}")
        layout = cls(rewritten, again, rewrites)
        layout.weight_names = list(compiler.weight_names)
        layout.weight_specs = list(compiler.weight_specs)
        layout.buffer_names = list(compiler.buffer_names)
        layout.buffer_specs = list(compiler.buffer_specs)
        return layout

    @property
    def tensors(self) -> list:
        """(name, spec) of every tensor a program keeps: the weights, then the buffers."""
        return list(zip(self.weight_names + self.buffer_names,
                        self.weight_specs + self.buffer_specs))

    def weight_view(self, site: Site, node_id: str, name: str) -> tuple:
        """(the real weight's full name, a row slice or "") a node's weight `name` is."""
        view = self.rewrites.weight_view(site.graph, node_id, name)
        if view is None:
            return f"{site.path}{node_id}.{name}", ""
        real_id, rows = view
        return f"{site.path}{real_id}.{name}", rows

    def real_id(self, site: Site, node_id: str) -> str:
        """The document node a node of a site stands for (itself, unless a rewrite made it)."""
        return self.rewrites.real_id(site.graph, node_id) or node_id

    # -- sites --------------------------------------------------------------------------------

    def site(self, graph: Graph, path: str, kind: str) -> Site:
        cached = self._sites.get(path)
        if cached is not None:
            return cached
        by_id = {n.id: n for n in graph.nodes}
        order = [by_id[i] for i in topo_order(graph)]
        params = {n.id: nodes.get(n.type).resolve_params(n.params) for n in graph.nodes}
        site = Site(graph, path, kind, order, params, by_id)
        self._sites[path] = site
        return site

    def bodies(self, site: Site, node: Node) -> dict:
        """The sites of a control node's bodies, by body name (body, then, else, definition)."""
        base = site.path + node.id + "/"
        if node.type == "Loop":
            return {"body": self.site(node.bodies["body"], base, "loop")}
        if node.type == "Branch":
            return {side: self.site(node.bodies[side], f"{base}{side}/", side)
                    for side in ("then", "else")}
        name = site.params[node.id]["block"]
        return {"definition": self.site(self.doc.blocks[name], base, "block")}

    def type_of(self, site: Site, node_id: str, port: str = "y") -> TensorType:
        return self.types[(site.path + node_id, port)]

    def in_types(self, site: Site, node: Node) -> dict:
        ins, _ = self.doc.ports(node)
        out = {}
        for port in ins:
            edge = site.graph.edge_into(node.id, port)
            if edge is not None:  # else an optional port left open
                out[port] = self.type_of(site, edge.src, edge.src_port)
        return out

    def weights(self, site: Site, node: Node) -> dict:
        """name -> Weight of an ordinary node (empty for control nodes and sources)."""
        if node.type in CONTROL or node.type in ("Input", "Output"):
            return {}
        node_type = nodes.get(node.type)
        return node_type.weights(site.params[node.id], self.in_types(site, node))

    def buffers(self, site: Site, node: Node) -> dict:
        """name -> Weight of an ordinary node's buffers (read and updated, never trained)."""
        if node.type in CONTROL or node.type in ("Input", "Output"):
            return {}
        return nodes.get(node.type).buffers(site.params[node.id], self.in_types(site, node))

    def ports(self, node: Node) -> tuple:
        return self.doc.ports(node)

    def ancestors(self, site: Site, output_ids) -> set:
        """Ids of the nodes the named Outputs depend on (the Outputs included)."""
        wanted = set(output_ids)
        for node in reversed(site.order):
            if node.id in wanted:
                for edge in site.graph.edges:
                    if edge.dst == node.id:
                        wanted.add(edge.src)
        return wanted


def is_batched(t: TensorType) -> bool:
    """A value with a batch axis first (its length known only when the program runs)."""
    return t.ndim >= 1 and t.shape[0] is None


def is_int(t: TensorType) -> bool:
    return t.dtype == INT


def diff_ports(program: Layout, site: Site, node: Node) -> list:
    """Input ports of an ordinary node through which a gradient may flow."""
    node_type = nodes.get(node.type)
    ins = node_type.input_ports(site.params[node.id])
    types = program.in_types(site, node)
    return [port for port in ins if port in types and port not in node_type.nondiff_inputs
            and not is_int(types[port])]


def feedback(body: Site) -> list:
    """(Input id, Output id) pairs of a loop body where the Output's value comes back into the
    Input: a carry and its next value, a tree's children Input and the Output it sees."""
    out = []
    for n in body.graph.nodes:
        role = body.params[n.id].get("role")
        if n.type == "Output" and role == "carry":
            out.append((body.params[n.id]["carry"], n.id))
        elif n.type == "Input" and role == "children":
            out.append((n.id, body.params[n.id]["of"]))
    return out


class Carries:
    """Which values depend on a weight (or on a body argument that does)."""

    def __init__(self, program: Layout):
        self.program = program
        self.value: dict = {}  # (path, node id, port) -> bool
        self.outputs: dict = {}  # (path, output id) -> bool

    def of(self, site: Site, node_id: str, port: str = "y") -> bool:
        return self.value.get((site.path, node_id, port), False)

    def source(self, site: Site, node_id: str, port: str) -> bool:
        src, sport = site.source(node_id, port)
        return self.of(site, src, sport)

    def run(self, site: Site, args: dict) -> dict:
        """Mark a site given which arguments carry; returns Output id -> carries."""
        p = self.program
        outs = {}
        for node in site.order:
            key = (site.path, node.id)
            if node.type == "Input":
                self.value[key + ("y",)] = bool(args.get(node.id, False))
            elif node.type == "Output":
                outs[node.id] = self.source(site, node.id, "x")
            elif node.type in CONTROL:
                for port, flag in self._control(site, node).items():
                    self.value[key + (port,)] = flag
            elif node.type in ("Constant", "LoopIndex"):
                self.value[key + ("y",)] = False
            else:
                flag = bool(p.weights(site, node)) or any(
                    self.source(site, node.id, port) for port in diff_ports(p, site, node))
                for port in p.ports(node)[1]:
                    self.value[key + (port,)] = flag
        for out_id, flag in outs.items():
            self.outputs[(site.path, out_id)] = flag
        return outs

    def _control(self, site: Site, node: Node) -> dict:
        p = self.program
        bodies = p.bodies(site, node)
        ins, outs = p.ports(node)
        arg = {port: self.source(site, node.id, port) for port in ins}
        if node.type == "Branch":
            result = {port: False for port in outs}
            for side in ("then", "else"):
                body = bodies[side]
                got = self.run(body, {n.id: arg[n.id] for n in body.inputs()})
                for port in outs:
                    result[port] = result[port] or got[port]
            return result
        body = bodies["body"] if node.type == "Loop" else bodies["definition"]
        args = {n.id: arg.get(n.id, False) for n in body.inputs()}
        while True:
            got = self.run(body, args)
            changed = False
            for inp, out_id in feedback(body):
                if got[out_id] and not args[inp]:
                    args[inp] = True
                    changed = True
            if not changed:
                return {port: got[port] for port in outs}


class Gradients:
    """Which values receive a gradient, given which results of a site receive one."""

    def __init__(self, program: Layout, carries: Carries):
        self.program = program
        self.carries = carries
        self.value: dict = {}  # (path, node id, port) -> bool
        self.active: dict = {}  # (path, node id) -> bool (its backward runs)
        self.body_outputs: dict = {}  # (path, output id) -> bool
        self.body_args: dict = {}  # (path, input id) -> bool

    def of(self, site: Site, node_id: str, port: str = "y") -> bool:
        return self.value.get((site.path, node_id, port), False)

    def run(self, site: Site, out_grads: dict, keep: set | None = None) -> dict:
        """out_grads: Output id -> receives a gradient. Returns Input id -> receives one."""
        c, p = self.carries, self.program
        value = self.value
        for key in [k for k in value if k[0] == site.path]:
            del value[key]
        for out in site.outputs():
            self.body_outputs[(site.path, out.id)] = bool(out_grads.get(out.id))
            if out_grads.get(out.id):
                src, sport = site.source(out.id, "x")
                if c.of(site, src, sport):
                    value[(site.path, src, sport)] = True
        for node in reversed(site.order):
            if keep is not None and node.id not in keep:
                continue
            if node.type in ("Input", "Output", "Constant", "LoopIndex"):
                continue
            _, out_ports = p.ports(node)
            got = {port: self.of(site, node.id, port) for port in out_ports}
            active = any(got.values())
            self.active[(site.path, node.id)] = active
            if not active:
                continue
            if node.type in CONTROL:
                wanted = self._control(site, node, got)
            else:
                wanted = diff_ports(p, site, node)
            for port in wanted:
                if c.source(site, node.id, port):
                    src, sport = site.source(node.id, port)
                    value[(site.path, src, sport)] = True
        args = {n.id: self.of(site, n.id) for n in site.inputs()}
        for name, flag in args.items():
            self.body_args[(site.path, name)] = flag
        return args

    def _control(self, site: Site, node: Node, got: dict) -> list:
        """Run the bodies; returns the node's input ports that receive a gradient."""
        p, c = self.program, self.carries
        bodies = p.bodies(site, node)
        wanted = set()
        if node.type == "Branch":
            for side in ("then", "else"):
                args = self.run(bodies[side], got)
                wanted.update(k for k, v in args.items() if v)
            return sorted(wanted)
        if node.type == "Block":
            body = bodies["definition"]
            # A block is one function for every instance: all results that can carry a
            # gradient take one (zeros where the caller has none).
            outs = {o.id: c.outputs.get((body.path, o.id), False) for o in body.outputs()}
            args = self.run(body, outs)
            return [k for k, v in args.items() if v]
        body = bodies["body"]
        outs = {o.id: got.get(o.id, False) for o in body.outputs(skip_continue=True)}
        ports = set(p.ports(node)[0])
        while True:
            args = self.run(body, outs)
            changed = False
            for inp, out_id in feedback(body):
                if args.get(inp) and not outs[out_id] and c.outputs.get((body.path, out_id)):
                    outs[out_id] = True
                    changed = True
            if not changed:
                return [k for k, v in args.items() if v and k in ports]
