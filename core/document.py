"""The document: a headless model of a Wiregrad graph file, with change events.

A `Document` holds the top-level graph, the block definitions, the training section and the
editor's `ui` state. Every change goes through a method here, which emits an `Event` to the
subscribers (the editor mirrors the document this way; it never holds the truth itself) and
bumps `revision` (so compiled programs and the title bar's `*` know when the document changed).

Graphs are addressed by a `GraphRef`, a tuple of names from the top: `()` is the top graph,
`("rnn", "body")` the body of loop `rnn`, `("gate", "then")` a branch side, and `("@Residual",)`
the definition of block `Residual` (`@` cannot start a node id, so there is no clash).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import nodes
from .errors import GraphError

GraphRef = tuple
BODY_KEYS = ("body", "then", "else")


@dataclass(frozen=True)
class Edge:
    """A wire from an output port to an input port of another node of the same graph."""

    src: str
    src_port: str
    dst: str
    dst_port: str

    @classmethod
    def parse(cls, src: str, dst: str) -> Edge:
        a, _, b = src.partition(".")
        c, _, d = dst.partition(".")
        return cls(a, b, c, d)

    def to_dict(self) -> dict:
        return {"from": f"{self.src}.{self.src_port}", "to": f"{self.dst}.{self.dst_port}"}

    def __str__(self) -> str:
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}"


@dataclass
class Node:
    """One node as the file has it: params hold only what the file gives (defaults are implied)."""

    id: str
    type: str
    params: dict = field(default_factory=dict)
    label: str | None = None
    pos: list | None = None
    bodies: dict = field(default_factory=dict)  # "body" / "then" / "else" -> Graph
    shares: str | None = None  # the id of the node of the same graph whose tensors it uses

    def to_dict(self) -> dict:
        # Keys in one order whatever the edit history (format.md's order; params as the type
        # declares them): undoing every edit then saving gives back the very same bytes.
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.params:
            out["params"] = _copy_json(canonical_params(self.type, self.params))
        if self.label is not None:
            out["label"] = self.label
        if self.shares is not None:
            out["shares"] = self.shares
        if self.pos is not None:
            out["pos"] = list(self.pos)
        for key in BODY_KEYS:
            if key in self.bodies:
                out[key] = self.bodies[key].to_dict()
        return out


@dataclass
class Graph:
    """Nodes in file order, and edges."""

    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)

    def node(self, node_id: str) -> Node | None:
        for n in self.nodes:
            if n.id == node_id:
                return n
        return None

    def index_of(self, node_id: str) -> int:
        for i, n in enumerate(self.nodes):
            if n.id == node_id:
                return i
        return -1

    def edge_into(self, node_id: str, port: str) -> Edge | None:
        for e in self.edges:
            if e.dst == node_id and e.dst_port == port:
                return e
        return None

    def edges_of(self, node_id: str) -> list:
        return [e for e in self.edges if e.src == node_id or e.dst == node_id]

    def to_dict(self) -> dict:
        return {"nodes": [n.to_dict() for n in self.nodes], "edges": [e.to_dict() for e in self.edges]}

    def copy(self) -> Graph:
        """A deep copy, made by hand: copy.deepcopy is several times slower, and the editor
        copies the whole document after every edit to validate it off the GUI thread."""
        out = Graph()
        out.nodes = [
            Node(n.id, n.type, _copy_json(n.params), n.label,
                 None if n.pos is None else list(n.pos),
                 {key: body.copy() for key, body in n.bodies.items()}, n.shares)
            for n in self.nodes
        ]
        out.edges = list(self.edges)  # edges are immutable
        return out


@dataclass(frozen=True)
class Event:
    """A change to the document. `kind` is one of: node_added, node_removed, node_moved,
    param_changed, label_changed, node_renamed, edge_added, edge_removed, block_changed,
    training_changed, name_changed, ui_changed, shares_changed, reset."""

    kind: str
    graph: GraphRef = ()
    node: str | None = None
    data: Any = None



class Subscription:
    """One listener kept subscribed to one document at a time, for a view that outlives the
    documents it shows: `follow(doc)` moves it there from the last one."""

    def __init__(self, listener: Callable[[Event], None]):
        self.listener = listener
        self.doc = None

    def follow(self, doc) -> None:
        if self.doc is not None:
            self.doc.unsubscribe(self.listener)
        self.doc = doc
        doc.subscribe(self.listener)


class Document:
    FORMAT = "wiregrad.graph"
    VERSION = 2

    def __init__(self, graph: Graph | None = None, name: str = "", blocks: dict | None = None,
                 training: dict | None = None, ui: dict | None = None):
        self.name = name
        self.graph = graph if graph is not None else Graph()
        self.blocks: dict[str, Graph] = blocks if blocks is not None else {}
        self.training = training
        self.ui: dict = ui if ui is not None else {}
        self.revision = 0
        self.path: str | None = None  # the file it was loaded from or last saved to
        # Where relative paths in it (dataset files) start: the folder of the file it came
        # from, kept when it becomes an unsaved copy (an example opened as a new document).
        self.folder: str | None = None
        self._listeners: list[Callable[[Event], None]] = []

    # -- events -------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Event], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: Event) -> None:
        self.revision += 1
        for listener in list(self._listeners):
            listener(event)

    # -- lookups ------------------------------------------------------------------------------

    def graph_at(self, ref: GraphRef) -> Graph:
        """The graph a GraphRef points at; GraphError if there is none."""
        ref = tuple(ref)
        if ref and ref[0].startswith("@"):
            graph = self.blocks.get(ref[0][1:])
            if graph is None:
                raise GraphError(f"no block named {ref[0][1:]!r}")
            rest = ref[1:]
        else:
            graph, rest = self.graph, ref
        if len(rest) % 2:
            raise GraphError(f"graph reference {ref!r} must alternate node ids and body names")
        for node_id, key in zip(rest[::2], rest[1::2]):
            node = graph.node(node_id)
            if node is None or key not in node.bodies:
                raise GraphError(f"no body {key!r} in node {node_id!r} (graph {ref!r})")
            graph = node.bodies[key]
        return graph

    def node_at(self, ref: GraphRef, node_id: str) -> Node:
        node = self.graph_at(ref).node(node_id)
        if node is None:
            raise GraphError(f"no node {node_id!r} in {ref_name(ref) or 'the main graph'}",
                             node_path(ref, node_id))
        return node

    def ports(self, node: Node) -> tuple:
        """(input ports, output ports) of a node; control nodes read theirs off their bodies."""
        return node_ports(node, self.blocks)

    # -- edits (each emits one event) ---------------------------------------------------------

    def add_node(self, ref: GraphRef, node: Node, index: int | None = None) -> None:
        graph = self.graph_at(ref)
        # A node the loader would refuse must not get in: the file could not be opened again.
        check_id(node.id)
        if nodes.get(node.type) is None:
            raise GraphError(f"unknown node type {node.type!r}", node_path(ref, node.id))
        if graph.node(node.id) is not None:
            raise GraphError(f"a node {node.id!r} exists already", node_path(ref, node.id))
        graph.nodes.insert(len(graph.nodes) if index is None else index, node)
        self._emit(Event("node_added", tuple(ref), node.id))

    def remove_node(self, ref: GraphRef, node_id: str) -> tuple:
        """Remove a node and its edges. Returns (node, index, edges with their indices) for undo."""
        graph = self.graph_at(ref)
        node = self.node_at(ref, node_id)
        removed = [(i, e) for i, e in enumerate(graph.edges) if node_id in (e.src, e.dst)]
        for _, e in reversed(removed):
            self.remove_edge(ref, e)
        index = graph.index_of(node_id)
        del graph.nodes[index]
        self._emit(Event("node_removed", tuple(ref), node_id))
        return node, index, removed

    def move_node(self, ref: GraphRef, node_id: str, pos) -> None:
        node = self.node_at(ref, node_id)
        new = None if pos is None else [_round(pos[0]), _round(pos[1])]
        if node.pos == new:
            return
        node.pos = new
        self._emit(Event("node_moved", tuple(ref), node_id, new))

    def set_param(self, ref: GraphRef, node_id: str, name: str, value: Any) -> None:
        """Set a parameter; `value` None removes it (the default applies) unless null is
        a meaningful value the type declares (nullable, with a non-null default)."""
        node = self.node_at(ref, node_id)
        node_type = nodes.get(node.type)
        decl = node_type.param(name) if node_type else None
        if node_type is not None and decl is None:
            # The loader refuses unknown parameters, so a file saved with one would not open.
            known = ", ".join(p.name for p in node_type.params) or "none"
            raise GraphError(f"{node_path(ref, node_id)}: a {node.type} node has no parameter "
                             f"{name!r} (its parameters: {known})", node_path(ref, node_id))
        if decl is not None and value is not None:
            try:
                value = decl.check(value)
            except nodes.ParamError as exc:
                raise GraphError(f"{node_path(ref, node_id)}: {exc}", node_path(ref, node_id)) from None
        keep_null = value is None and decl is not None and decl.nullable and decl.default is not None
        if value is None and not keep_null:
            if name not in node.params:
                return
            del node.params[name]
        else:
            if name in node.params and node.params[name] == value:
                return
            node.params[name] = _copy_json(value)
        self._emit(Event("param_changed", tuple(ref), node_id, name))

    def unset_param(self, ref: GraphRef, node_id: str, name: str) -> None:
        """Remove a parameter from the node, so that its default applies (undo of a set)."""
        node = self.node_at(ref, node_id)
        if name not in node.params:
            return
        del node.params[name]
        self._emit(Event("param_changed", tuple(ref), node_id, name))

    def set_label(self, ref: GraphRef, node_id: str, label: str | None) -> None:
        node = self.node_at(ref, node_id)
        if node.label == label:
            return
        node.label = label
        self._emit(Event("label_changed", tuple(ref), node_id, label))

    def set_shares(self, ref: GraphRef, node_id: str, owner: str | None) -> None:
        """Make a node use the tensors of node `owner` of the same graph (None: its own)."""
        node = self.node_at(ref, node_id)
        if node.shares == owner:
            return
        node.shares = owner
        self._emit(Event("shares_changed", tuple(ref), node_id, owner))

    def rename_node(self, ref: GraphRef, old: str, new: str, *, other_side: bool = True) -> None:
        """Give a node a new id; its edges follow. Renaming a body's Input or Output renames
        the port of the enclosing node(s) too, so their edges follow as well (edge events), and
        a carry Input's carry Outputs follow it (param events). The two sides of a Branch
        share their ports: an Input or Output of the same id on the other side is renamed with
        it (node events there), so the Branch's port is renamed rather than split in two."""
        graph = self.graph_at(ref)
        node = self.node_at(ref, old)
        if old == new:
            return
        check_id(new, node_path(ref, old))
        if graph.node(new) is not None:
            raise GraphError(f"a node {new!r} exists already", node_path(ref, new))
        # The id of a body's Input or Output is also a port of the node that encloses the body
        # (of every instance, for a block definition), and a carry Output names its Input by id.
        enclosing = self._enclosing_nodes(ref) if node.type in ("Input", "Output") else []
        before = [node_ports(n, self.blocks) for _, n in enclosing]
        node.id = new
        graph.edges = [_rename_in_edge(e, old, new) for e in graph.edges]
        self._emit(Event("node_renamed", tuple(ref), new, old))
        for other in graph.nodes:  # nodes that use its tensors still do
            if other.shares == old:
                self.set_shares(ref, other.id, new)
        if node.type == "Input":
            for other in graph.nodes:
                if other.type == "Output" and other.params.get("carry") == old:
                    self.set_param(ref, other.id, "carry", new)
        twin = self._branch_twin(ref, node.type, old, new) if other_side else None
        if twin is not None:
            self.rename_node(twin, old, new, other_side=False)
        for (outer_ref, outer), (ins, outs) in zip(enclosing, before):
            ins_now, outs_now = node_ports(outer, self.blocks)
            is_input = node.type == "Input"
            was, now = (ins, ins_now) if is_input else (outs, outs_now)
            if old in was and old not in now and new in now:
                self._rename_port_edges(outer_ref, outer.id, is_input, old, new)

    def _branch_twin(self, ref: GraphRef, node_type: str, old: str, new: str):
        """The GraphRef of a Branch's other side, when it has an `old` of this (Input or
        Output) type and no `new` yet; else None."""
        ref = tuple(ref)
        if node_type not in ("Input", "Output") or len(ref) < 2 or ref[-1] not in ("then", "else"):
            return None
        outer = self.graph_at(ref[:-2]).node(ref[-2])
        other = "else" if ref[-1] == "then" else "then"
        if outer is None or outer.type != "Branch" or other not in outer.bodies:
            return None
        side = outer.bodies[other]
        twin = side.node(old)
        if twin is None or twin.type != node_type or side.node(new) is not None:
            return None
        return ref[:-1] + (other,)

    def _enclosing_nodes(self, ref: GraphRef) -> list:
        """(GraphRef, node) of each node whose ports are read off the graph at `ref`."""
        ref = tuple(ref)
        if len(ref) >= 2:  # a body: its node is in the graph one level up
            return [(ref[:-2], self.graph_at(ref[:-2]).node(ref[-2]))]
        if len(ref) == 1:  # a block definition: every instance, wherever it is
            name, found = ref[0][1:], []
            stack = [((), self.graph)] + [(("@" + b,), g) for b, g in self.blocks.items()]
            while stack:
                where, graph = stack.pop()
                for n in graph.nodes:
                    if n.type == "Block" and n.params.get("block") == name:
                        found.append((where, n))
                    stack.extend((where + (n.id, key), body) for key, body in n.bodies.items())
            return found
        return []

    def _rename_port_edges(self, ref: GraphRef, node_id: str, is_input: bool, old: str,
                           new: str) -> None:
        graph = self.graph_at(ref)
        for index, e in enumerate(list(graph.edges)):
            if is_input and e.dst == node_id and e.dst_port == old:
                moved = Edge(e.src, e.src_port, e.dst, new)
            elif not is_input and e.src == node_id and e.src_port == old:
                moved = Edge(e.src, new, e.dst, e.dst_port)
            else:
                continue
            self.remove_edge(ref, e)
            self.add_edge(ref, moved, index)

    def add_edge(self, ref: GraphRef, edge: Edge, index: int | None = None) -> None:
        graph = self.graph_at(ref)
        if graph.edge_into(edge.dst, edge.dst_port) is not None:
            raise GraphError(f"{edge.dst}.{edge.dst_port} already has an edge",
                             node_path(ref, edge.dst))
        graph.edges.insert(len(graph.edges) if index is None else index, edge)
        self._emit(Event("edge_added", tuple(ref), edge.dst, edge))

    def remove_edge(self, ref: GraphRef, edge: Edge) -> int:
        graph = self.graph_at(ref)
        if edge not in graph.edges:
            raise GraphError(f"there is no edge {edge} to remove", node_path(ref, edge.dst))
        index = graph.edges.index(edge)
        del graph.edges[index]
        self._emit(Event("edge_removed", tuple(ref), edge.dst, edge))
        return index

    def set_block(self, name: str, graph: Graph | None, index: int | None = None) -> Graph | None:
        """Add, replace (graph) or remove (None) a block definition; returns the old one.
        A new definition goes at `index` among the others (undo of a removal), else last."""
        old = self.blocks.get(name)
        if graph is None and old is None:
            return None  # nothing changes, so nobody is told
        if graph is not None and graph == old:
            self.blocks[name] = graph  # the caller's object, but the same content: no event
            return old
        if graph is None:
            del self.blocks[name]
        else:
            _put(self.blocks, name, graph, index)
        self._emit(Event("block_changed", ("@" + name,), None, name))
        return old

    def set_training(self, training: dict | None) -> None:
        if training == self.training:
            return
        self.training = _copy_json(training)
        self._emit(Event("training_changed"))

    def set_name(self, name: str) -> None:
        if name != self.name:
            self.name = name
            self._emit(Event("name_changed", data=name))

    def set_ui(self, key: str, value: Any, index: int | None = None) -> None:
        """View state (comments, frames, view rectangle): kept in the file, ignored by the engine.
        A new key goes at `index` among the others (undo of a removal), else last."""
        if value is None and key not in self.ui:
            return
        if value is not None and key in self.ui and self.ui[key] == value:
            return
        if value is None:
            del self.ui[key]
        else:
            _put(self.ui, key, _copy_json(value), index)
        self._emit(Event("ui_changed", data=key))

    def replace_with(self, other: Document) -> None:
        """Take over another document's content (File > Open, recovery) and tell the listeners."""
        self.name, self.graph, self.blocks = other.name, other.graph, other.blocks
        self.training, self.ui = other.training, other.ui
        self._emit(Event("reset"))

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"format": self.FORMAT, "version": self.VERSION}
        if self.name:
            out["name"] = self.name
        out["graph"] = self.graph.to_dict()
        if self.blocks:
            out["blocks"] = {name: g.to_dict() for name, g in self.blocks.items()}
        if self.training is not None:
            out["training"] = _copy_json(self.training)
        if self.ui:
            out["ui"] = _copy_json(self.ui)
        return out

    def copy(self) -> Document:
        """A deep copy with no listeners."""
        out = Document(self.graph.copy(), self.name,
                       {name: g.copy() for name, g in self.blocks.items()},
                       _copy_json(self.training), _copy_json(self.ui))
        out.path, out.folder = self.path, self.folder
        return out


# ---------------------------------------------------------------------------------------------


def node_ports(node: Node, blocks: dict) -> tuple:
    """(input ports, output ports) of a node, or ((), ()) for an unknown type."""
    node_type = nodes.get(node.type)
    if node_type is None:
        return (), ()
    try:
        params = node_type.resolve_params(node.params)
    except nodes.ParamError:
        params = {p.name: p.default for p in node_type.params}
    if node_type.control:
        if node_type.name == "Block":
            definition = blocks.get(params.get("block"))
            if definition is None:
                return (), ()
            return node_type.ports(params, {"definition": definition})
        if not all(key in node.bodies for key in node_type.bodies):
            return (), ()
        return node_type.ports(params, node.bodies)
    return tuple(node_type.input_ports(params)), tuple(node_type.output_ports(params))


def canonical_params(type_name: str, params: dict) -> dict:
    """The params in the order the node type declares them, then any others as they come.

    A dict keeps insertion order, so a parameter set and then unset (an undo) would otherwise
    come back at the end and the saved text would differ though the document does not."""
    node_type = nodes.get(type_name)
    declared = [decl.name for decl in node_type.params] if node_type is not None else []
    out = {name: params[name] for name in declared if name in params}
    out.update((name, value) for name, value in params.items() if name not in out)
    return out


def ref_name(ref: GraphRef) -> str:
    """A GraphRef as the prefix of node paths: `rnn`, `gate/then`, `@Residual`."""
    parts = []
    ref = tuple(ref)
    if ref and ref[0].startswith("@"):
        parts.append(ref[0])
        ref = ref[1:]
    for node_id, key in zip(ref[::2], ref[1::2]):
        parts.append(node_id if key == "body" else f"{node_id}/{key}")
    return "/".join(parts)


def node_path(ref: GraphRef, node_id: str) -> str:
    prefix = ref_name(ref)
    return f"{prefix}/{node_id}" if prefix else node_id


_ID_FIRST = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_ID_REST = _ID_FIRST | set("0123456789")


def is_valid_id(text: str) -> bool:
    return (isinstance(text, str) and bool(text) and text[0] in _ID_FIRST
            and all(c in _ID_REST for c in text))


def check_id(text: str, where: str | None = None) -> None:
    if not is_valid_id(text):
        raise GraphError(f"{text!r} is not a valid node id: use letters, digits and _, "
                         "not starting with a digit", where)


def unique_id(graph: Graph, base: str) -> str:
    """`base` if it is free in the graph, else `base_2`, `base_3`, ..."""
    base = base if is_valid_id(base) else "node"
    taken = {n.id for n in graph.nodes}
    if base not in taken:
        return base
    # hidden1 -> hidden1_2; hidden1_2 -> hidden1_3: only a suffix we added is counted up.
    stem, sep, number = base.rpartition("_")
    if not (sep and number.isdigit() and stem):
        stem = base
    i = 2
    while f"{stem}_{i}" in taken:
        i += 1
    return f"{stem}_{i}"


def _rename_in_edge(edge: Edge, old: str, new: str) -> Edge:
    src = new if edge.src == old else edge.src
    dst = new if edge.dst == old else edge.dst
    return Edge(src, edge.src_port, dst, edge.dst_port)


def _put(mapping: dict, key, value, index: int | None) -> None:
    """mapping[key] = value; a new key goes at `index` in the key order (None: last)."""
    if key in mapping or index is None or index >= len(mapping):
        mapping[key] = value
        return
    items = list(mapping.items())
    items.insert(index, (key, value))
    mapping.clear()
    mapping.update(items)


def _round(value: float):
    value = float(value)
    return int(value) if value.is_integer() else round(value, 2)


def _copy_json(value):
    """A deep copy of JSON-like data (dicts, lists, scalars), in the same key order.

    Without recursion: a file may nest lists hundreds deep in `ui` or `training` (the reader
    takes what json takes), deeper than copy.deepcopy can go."""
    if not isinstance(value, (dict, list)):
        return value
    root = {} if isinstance(value, dict) else []
    stack = [(value, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, (dict, list)):
                copied = {} if isinstance(item, dict) else []
                stack.append((item, copied))
            else:
                copied = item
            if isinstance(target, dict):
                target[key] = copied
            else:
                target.append(copied)
    return root
