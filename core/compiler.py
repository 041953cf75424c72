"""From a document to a Program: check, order, infer shapes, name the weights.

`compile_document(doc, dtype)` returns a `Program` or raises a GraphError listing every problem
found. `analyze(doc)` runs the same passes without raising, for the editor: every error, and
the type of every output port it could infer. `compile_for_training(doc, dtype)` compiles what
training runs: problems off the loss and metrics' path become warnings (training_scope.py).

Every graph is checked node by node in topological order: a loop body or branch side once, a
block definition once per instance, since each instance owns its weights. Node paths, used in
every error and in weight names, follow format.md: `rnn/cell`, `gate/then/fc`, `res1/fc`. What
the compiler learns (types, weights) is what the code generator writes from (core/codegen/).

Bounds come first and last (core/budget.py): before any body is compiled, nesting and node
instances are counted without expanding a block; once the shapes are known, one training step's
memory is estimated. Past a bound is an error naming the node, so nothing huge is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import nodes
from ..nodes import FLOAT, INT, ParamError, ShapeError, TensorType
from . import bodies, budget, training_scope
from .document import Document, Graph
from .errors import GraphError
from .well_formed import structural_errors, topo_order


@dataclass
class Analysis:
    """What the editor shows: every error, and the inferred type of every output port."""

    errors: list = field(default_factory=list)
    port_types: dict = field(default_factory=dict)  # (node path, port) -> TensorType
    warnings: list = field(default_factory=list)  # GraphErrors that do not stop anything
    # The node paths of the errors training ignores: off the loss and metrics' path
    # (training_scope.py). The editor badges them as warnings; they still are errors.
    ignored_by_training: set = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.errors


def analyze(doc: Document, dtype="float32") -> Analysis:
    """Check a document and infer its shapes, collecting errors instead of raising."""
    compiler = Compiler(doc, dtype)
    compiler.run()
    return Analysis(compiler.errors, compiler.port_types, compiler.warnings,
                    training_scope.ignored_paths(doc, compiler.errors))


def compile_document(doc: Document, dtype="float32"):
    from .program import Program

    compiler = Compiler(doc, dtype)
    compiler.run()
    if compiler.errors:
        raise GraphError.collect(compiler.errors)
    return Program(doc, compiler)


def compile_for_training(doc: Document, dtype="float32"):
    """The Program training runs: the document less the nodes with problems that the loss and
    metrics do not depend on, and what is wired from them. `program.doc` is that document;
    `program.warnings` says what was left out (`ignored by training: sigmoid (x is not
    connected)`) and `program.ignored_by_training` maps each left-out node id to why. A problem
    on the path raises, naming its node."""
    from .program import Program

    compiler = Compiler(doc, dtype)
    compiler.run()
    if not compiler.errors:
        program = Program(doc, compiler)
        program.ignored_by_training = {}
        return program
    trained, warnings, why = training_scope.trainable(doc, compiler.errors)
    program = compile_document(trained, dtype)
    program.warnings[:0] = warnings
    program.ignored_by_training = why
    return program


class _Failed(Exception):
    """A node could not be compiled; its error is already recorded."""


class Compiler:
    def __init__(self, doc: Document, dtype="float32", bounds: bool = True):
        self.doc = doc
        # False only for a document the engine rewrote from one already checked (lower.py).
        self.bounds = bounds
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise GraphError(f"dtype must be float32 or float64, got {dtype}")
        self.errors: list = []
        self.port_types: dict = {}
        self.weight_names: list = []
        self.weight_specs: list = []
        # Buffers (nodes/base.py): saved, never trained; named and shared as weights are.
        self.buffer_names: list = []
        self.buffer_specs: list = []
        self.input_types: dict = {}
        self.output_types: dict = {}
        # Shared weights (format.md, version 2): a sharing node's tensor name -> the name it
        # stands for (one step of the chain), with the node and the tensor's spec to check.
        self.aliases: dict = {}
        self._alias_checks: list = []
        self._sharing: list = []  # (own prefix, owner's prefix) of sharing Block instances
        self.loop_modes: list = []  # modes of the Loops whose bodies are being compiled
        # Nodes whose result for a sample depends on its batch (paths): a batch-level while or
        # scalar branch on batched data, a node that mixes the batch (NodeType.mixes_batch).
        self.batch_level: list = []
        self._block_stack: list = []
        self.warnings: list = []
        # Steps of the Loops around the body being compiled, multiplied, and each node path's
        # but the Inputs': how often its outputs are made, for the memory estimate (budget.py).
        self.steps: list = [1]
        self.node_steps: dict = {}

    # -- entry --------------------------------------------------------------------------------

    def run(self) -> None:
        self.errors.extend(structural_errors(self.doc))
        if self.errors:
            return
        # Counted before anything is expanded: a few kB of nested blocks can stand for 2^40
        # node instances, and bodies nested without bound would overflow the stack.
        if self.bounds:
            self.errors.extend(budget.expansion_errors(self.doc))
        if self.errors:
            return
        args = {}
        for node in self.doc.graph.nodes:
            if node.type == "Input":
                t = self._top_input_type(node)
                if t is not None:
                    args[node.id] = t
        outs = self.compile_graph(self.doc.graph, "", args)
        self.input_types = args
        self.output_types = outs or {}
        self._check_aliases()
        if not self.errors and not any(n.type == "Output" for n in self.doc.graph.nodes):
            self.errors.append(GraphError("the graph has no Output node: add one to name a result"))
        if self.bounds and not self.errors:  # shapes known, nothing allocated yet
            errors, warnings = budget.memory_errors(self)
            self.errors.extend(errors)
            self.warnings.extend(warnings)

    def _top_input_type(self, node) -> TensorType | None:
        try:
            p = nodes.get("Input").resolve_params(node.params)
        except ParamError as exc:
            self._error(node.id, f"{node.id}: {exc}")
            return None
        if p["shape"] is None:
            self._error(node.id, f"{node.id}: a top-level Input needs a shape (leave out the "
                        "batch axis; [] for one value per example)")
            return None
        if p["role"] != "const":
            self._error(node.id, f"{node.id}: role {p['role']!r} only means something in a "
                        "Loop body")
        return TensorType((None,) + tuple(p["shape"]), INT if p["dtype"] == "int64" else FLOAT)

    def _error(self, path: str | None, message: str) -> None:
        self.errors.append(GraphError(message, path))

    # -- graphs -------------------------------------------------------------------------------

    def compile_graph(self, graph: Graph, prefix: str, args: dict) -> dict | None:
        """Check one graph whose Input nodes take the types in `args` (by Input id).

        `prefix` is the path of the graph (`""`, `rnn/`, `gate/then/`, `res1/`). Returns the
        types of its Outputs by id, in file order, or None if any node failed.
        """
        types: dict = {}  # (node id, port) -> TensorType
        failed: set = set()
        ok = True
        order = topo_order(graph)
        by_id = {n.id: n for n in graph.nodes}
        into = {}  # (node id, input port) -> its edge; the first one, as Graph.edge_into
        for edge in graph.edges:
            into.setdefault((edge.dst, edge.dst_port), edge)
        out_types: dict = {}
        for node_id in order:
            node = by_id[node_id]
            path = prefix + node.id
            try:
                if node.type == "Input":
                    if node.id not in args:
                        raise _Failed
                    outs = {"y": args[node.id]}
                else:
                    in_types = self._gather_inputs(into, node, path, types, failed)
                    if node.type == "Output":
                        out_types[node.id] = in_types["x"]
                        continue
                    outs = self._compile_node(into, node, path, in_types, by_id)
            except _Failed:
                failed.add(node.id)
                ok = False
                continue
            for port, t in outs.items():
                types[(node.id, port)] = t
                self.port_types[(path, port)] = t
            if node.type != "Input":  # an Input's value is given, not made
                self.node_steps[path] = self.steps[-1]
        if len(order) < len(graph.nodes) or not ok:
            return None  # a cycle is reported by the structural checks
        return {n.id: out_types[n.id] for n in graph.nodes if n.type == "Output"}

    def _gather_inputs(self, into, node, path, types, failed):
        ins, _ = self.doc.ports(node)
        node_type = nodes.get(node.type)
        in_types = {}
        missing = False
        for port in ins:
            edge = into.get((node.id, port))
            if edge is None and port in node_type.optional_inputs:
                continue
            if edge is None:
                self._error(path, f"{path}.{port} is not connected")
                missing = True
                continue
            if edge.src in failed or (edge.src, edge.src_port) not in types:
                missing = True  # the problem upstream is reported there
                continue
            in_types[port] = types[(edge.src, edge.src_port)]
        if missing:
            raise _Failed
        return in_types

    # -- nodes --------------------------------------------------------------------------------

    def _compile_node(self, into, node, path, in_types, by_id) -> dict:
        node_type = nodes.get(node.type)
        try:
            p = node_type.resolve_params(node.params)
        except ParamError as exc:
            self._error(path, f"{path}: {exc}")
            raise _Failed from None
        owner = self._owner_path(node, path, by_id)
        if node_type.control:
            return self._compile_control(node, p, path, in_types, owner)
        if node.type == "LoopIndex" and self.loop_modes and self.loop_modes[-1] == "tree":
            return {"y": TensorType((None, 1), FLOAT)}  # each tree node's own index n
        try:
            outs = node_type.infer(p, in_types)
            weights = node_type.weights(p, in_types)
            buffers = node_type.buffers(p, in_types)
        except ShapeError as exc:
            self._error(path, self._shape_message(into, node, path, exc))
            raise _Failed from None
        if owner is not None and not weights and not buffers:
            self._error(path, f"{path}: shares {node.shares!r}, but a {node.type} has no "
                        "tensors to share")
        for name, spec in weights.items():
            self._add_weight(path, f"{path}.{name}", spec,
                             None if owner is None else f"{owner}.{name}")
        for name, spec in buffers.items():
            self._add_weight(path, f"{path}.{name}", spec,
                             None if owner is None else f"{owner}.{name}", buffer=True)
        if node_type.mixes_batch(p, in_types):
            self.batch_level.append(path)
        return outs

    def _owner_path(self, node, path: str, by_id: dict) -> str | None:
        """The path of the node whose tensors this one uses (the end of its `shares` chain)."""
        if node.shares is None:
            return None
        owner = node
        while owner.shares is not None and owner.shares in by_id:
            owner = by_id[owner.shares]
        return path[:len(path) - len(node.id)] + owner.id

    def _add_weight(self, node_path: str, name: str, spec, shared: str | None,
                    buffer: bool = False) -> None:
        """Register a tensor (a buffer, with `buffer`), or, for a node that shares, the tensor
        it stands for."""
        for own, owner in reversed(self._sharing):  # inside a sharing Block instance
            if shared is None and name.startswith(own):
                shared = owner + name[len(own):]
        if shared is None:
            (self.buffer_names if buffer else self.weight_names).append(name)
            (self.buffer_specs if buffer else self.weight_specs).append(spec)
            return
        self.aliases[name] = shared
        self._alias_checks.append((node_path, name, spec))

    def _check_aliases(self) -> None:
        """Every shared tensor stands for one its owner has, of the same shape."""
        specs = dict(zip(self.weight_names + self.buffer_names,
                         self.weight_specs + self.buffer_specs))
        for node_path, name, spec in self._alias_checks:
            target = name
            for _ in range(len(self.aliases) + 1):
                if target not in self.aliases:
                    break
                target = self.aliases[target]
            owner_spec = specs.get(target)
            if owner_spec is None:
                self._error(node_path, f"{node_path}: shares tensors with a node that has no "
                            f"{target.rsplit('.', 1)[-1]!r} ({target})")
            elif tuple(owner_spec.shape) != tuple(spec.shape):
                shape = tuple(spec.shape)
                self._error(node_path, f"{node_path}: its {name.rsplit('.', 1)[-1]} would be "
                            f"{shape}, but {target} it shares is {tuple(owner_spec.shape)}; "
                            "shared tensors must have the same shapes")

    @property
    def shared(self) -> dict:
        """Each sharing tensor name -> the tensor it is (at the end of the chain)."""
        out = {}
        for name in self.aliases:
            target = name
            while target in self.aliases:
                target = self.aliases[target]
            out[name] = target
        return out

    def _shape_message(self, into, node, path, exc: ShapeError) -> str:
        if exc.port is None:
            return f"{path}: {exc.message}"
        source = ""
        edge = into.get((node.id, exc.port))
        if edge is not None:
            source = f" (from {edge.src}.{edge.src_port})"
        return f"{path}.{exc.port}: {exc.message}{source}"

    # -- control flow -------------------------------------------------------------------------

    def _compile_control(self, node, p, path, in_types, owner=None) -> dict:
        if owner is not None and node.type != "Block":
            self._error(path, f"{path}: a {node.type} has no tensors of its own to share "
                        "(the nodes of its bodies have)")
            raise _Failed
        batched = [t for t in in_types.values() if t.ndim and t.shape[0] is None]
        if batched and ((node.type == "Loop" and p["mode"] == "while" and not p["per_sample"])
                        or (node.type == "Branch" and p["mode"] == "scalar"
                            and in_types["cond"].ndim and in_types["cond"].shape[0] is None)):
            self.batch_level.append(path)
        if node.type == "Loop":
            outs = bodies.loop_outputs(self, node, p, path, in_types)
        elif node.type == "Branch":
            outs = bodies.branch_outputs(self, node, p, path, in_types)
        else:
            name = p["block"]
            if name in self._block_stack:
                self._error(path, f"{path}: block {name!r} uses itself")
                raise _Failed
            self._block_stack.append(name)
            if owner is not None:
                self._sharing.append((path + "/", owner + "/"))
            try:
                outs = bodies.block_outputs(self, node, p, path, in_types)
            finally:
                self._block_stack.pop()
                if owner is not None:
                    self._sharing.pop()
        if outs is None:
            raise _Failed
        return outs

    def compile_body(self, graph: Graph, prefix: str, args: dict) -> dict | None:
        """Check the body of a control node (used by the rules in bodies.py)."""
        return self.compile_graph(graph, prefix, args)
