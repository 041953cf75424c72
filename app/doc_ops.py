"""Document helpers the editor needs that core does not offer (yet): building nodes from plain
dicts, copy/paste with unique ids, planning group-into-block and ungroup, resolving node paths.

Everything here reads the document or returns new plain objects; changes still go through the
undo commands, which call Document methods.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .. import nodes
from ..core.document import (
    Document,
    Edge,
    Graph,
    Node,
    unique_id,
)
from ..core.errors import GraphError
from ..core.fileio import from_dict

CLIP_FORMAT = "wiregrad.graph"

# Values for required parameters of a node fresh from the palette (a Linear with 16 outputs).
STARTING_VALUES = {"out_features": 16, "out_channels": 8, "kernel_size": 3,
                   "num_embeddings": 100, "embedding_dim": 16, "exponent": 2.0,
                   "output_size": 1, "hidden_size": 32, "embed_dim": 32, "num_heads": 4,
                   "num_classes": 10, "pad": [[1, 1]]}


# -- parameters ---------------------------------------------------------------------------------


def resolved_params(node: Node) -> dict:
    """A node's parameters with defaults filled in; unchecked values where they are bad."""
    node_type = nodes.get(node.type)
    if node_type is None:
        return dict(node.params)
    out = {}
    for decl in node_type.params:
        if decl.name in node.params:
            out[decl.name] = node.params[decl.name]
        elif not decl.required:
            out[decl.name] = decl.default
    return out


def summary(node: Node) -> str:
    node_type = nodes.get(node.type)
    if node_type is None:
        return f"{node.type} (unknown)"
    try:
        return node_type.summary(node_type.resolve_params(node.params))
    except (nodes.ParamError, KeyError, ValueError, TypeError, IndexError):  # still draw it
        return node.type


# -- new nodes ----------------------------------------------------------------------------------


def default_body() -> Graph:
    """A fresh body: an Input x wired straight to an Output y."""
    return Graph(nodes=[Node("x", "Input", {}, None, [0, 0]), Node("y", "Output", {}, None, [320, 0])],
                 edges=[Edge("x", "y", "y", "x")])


def new_node(doc: Document, ref, type_name: str, pos) -> Node:
    """A node of a type as it comes from the palette: a free id, required params filled in."""
    node_type = nodes.get(type_name)
    if node_type is None:
        raise GraphError(f"unknown node type {type_name!r}")
    graph = doc.graph_at(ref)
    base = type_name.lower() if type_name not in ("Input", "Output") else type_name[0].lower()
    node_id = unique_id(graph, base)
    params = {}
    for decl in node_type.params:
        if not decl.required:
            continue
        if decl.name == "block":
            params["block"] = next(iter(doc.blocks), "Block1")
        elif decl.name in STARTING_VALUES:
            params[decl.name] = decl.check(STARTING_VALUES[decl.name])
        elif decl.kind in ("int", "axis", "pair"):
            params[decl.name] = int(decl.minimum) if decl.minimum is not None else 1
        elif decl.kind == "float":
            params[decl.name] = float(decl.minimum) if decl.minimum is not None else 1.0
        elif decl.kind == "choice":
            params[decl.name] = decl.choices[0]
        elif decl.kind in ("shape", "reshape"):
            params[decl.name] = [-1] if decl.kind == "reshape" else [1]
        elif decl.kind == "axes":
            params[decl.name] = 0
        elif decl.kind == "value":
            params[decl.name] = 0.0
        else:
            params[decl.name] = ""
    node = Node(node_id, type_name, params, None, [round(pos[0]), round(pos[1])])
    for key in getattr(node_type, "bodies", ()):
        node.bodies[key] = default_body()
    return node


# -- clipboard ----------------------------------------------------------------------------------


def selection_to_dict(doc: Document, ref, ids) -> dict:
    """A selection as a document dict: its nodes, the edges among them, the blocks they use."""
    graph = doc.graph_at(ref)
    chosen = set(ids)
    sel_nodes = [n for n in graph.nodes if n.id in chosen]
    edges = [e for e in graph.edges if e.src in chosen and e.dst in chosen]
    used = _blocks_used(doc, sel_nodes)
    out = {"format": CLIP_FORMAT, "version": Document.VERSION,
           "graph": {"nodes": [n.to_dict() for n in sel_nodes], "edges": [e.to_dict() for e in edges]}}
    if used:
        out["blocks"] = {name: doc.blocks[name].to_dict() for name in used}
    return out


def _blocks_used(doc: Document, start_nodes) -> list:
    """Names of the block definitions the nodes use, directly or through other blocks."""
    found: list = []
    stack = list(start_nodes)
    while stack:
        node = stack.pop()
        if node.type == "Block":
            name = node.params.get("block")
            if name in doc.blocks and name not in found:
                found.append(name)
                stack.extend(doc.blocks[name].nodes)
        for body in node.bodies.values():
            stack.extend(body.nodes)
    return found


@dataclass
class PastePlan:
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    blocks: dict = field(default_factory=dict)   # definitions the target lacks


def plan_paste(doc: Document, ref, data: dict, offset=(30, 30)) -> PastePlan:
    """What pasting a clipboard document into graph `ref` adds, with ids made unique there."""
    if not isinstance(data, dict) or data.get("format") != CLIP_FORMAT:
        raise GraphError("the clipboard does not hold Wiregrad nodes")
    # Read by the file loader itself, so a paste takes exactly what opening a file takes.
    pasted = from_dict({"format": CLIP_FORMAT, "version": data.get("version", Document.VERSION),
                        "graph": data.get("graph", {}), "blocks": data.get("blocks") or {}},
                       "clipboard")
    source = pasted.graph
    target = doc.graph_at(ref)
    taken = Graph(nodes=list(target.nodes))
    renames: dict = {}
    plan = PastePlan()
    for node in source.nodes:
        new_id = unique_id(taken, node.id)
        renames[node.id] = new_id
        node.id = new_id
        if node.pos is not None:
            node.pos = [node.pos[0] + offset[0], node.pos[1] + offset[1]]
        taken.nodes.append(node)
        plan.nodes.append(node)
    for node in plan.nodes:  # a carry Output names its carry Input by id
        if node.type == "Output" and node.params.get("carry") in renames:
            node.params["carry"] = renames[node.params["carry"]]
    for e in source.edges:
        if e.src in renames and e.dst in renames:
            plan.edges.append(Edge(renames[e.src], e.src_port, renames[e.dst], e.dst_port))
    for name, body in pasted.blocks.items():
        if name not in doc.blocks:
            plan.blocks[name] = body
    return plan


# -- group into block / ungroup ----------------------------------------------------------------


@dataclass
class GroupPlan:
    block_name: str
    definition: Graph
    instance: Node
    remove: list            # node ids leaving the graph
    edges: list             # edges to add in the graph (to and from the instance)


def plan_group(doc: Document, ref, ids, block_name: str | None = None) -> GroupPlan:
    graph = doc.graph_at(ref)
    chosen = [n for n in graph.nodes if n.id in set(ids)]
    if not chosen:
        raise GraphError("select the nodes to group first")
    if any(n.type in ("Input", "Output") for n in chosen):
        raise GraphError("Input and Output nodes stay outside a block: deselect them to group")
    sel = {n.id for n in chosen}
    name = block_name or _free_block_name(doc, "Group")
    definition = Graph(nodes=[copy.deepcopy(n) for n in chosen],
                       edges=[e for e in graph.edges if e.src in sel and e.dst in sel])
    xs = [n.pos[0] for n in chosen if n.pos] or [0]
    ys = [n.pos[1] for n in chosen if n.pos] or [0]
    left, right, top = min(xs), max(xs), min(ys)

    outside_edges: list = []
    sources: dict = {}   # (src, port) outside -> Input id inside
    for e in graph.edges:
        if e.src not in sel and e.dst in sel:
            key = (e.src, e.src_port)
            if key not in sources:
                base = e.dst_port if definition.node(e.dst_port) is None else f"{e.src}_{e.src_port}"
                input_id = unique_id(definition, base)
                params = {}
                consumer = nodes.get(graph.node(e.dst).type)
                if consumer is not None and e.dst_port in consumer.int_inputs:
                    params["dtype"] = "int64"
                definition.nodes.insert(len(sources), Node(input_id, "Input", params, None,
                                                           [left - 200, top + 120 * len(sources)]))
                sources[key] = input_id
                outside_edges.append(("in", e.src, e.src_port, input_id))
            definition.edges.append(Edge(sources[key], "y", e.dst, e.dst_port))
    results: dict = {}   # (src, port) inside -> Output id
    leaving = [e for e in graph.edges if e.src in sel and e.dst not in sel]
    distinct = list(dict.fromkeys((e.src, e.src_port) for e in leaving))
    for key in distinct:
        base = "y" if len(distinct) == 1 else f"{key[0]}_{key[1]}"
        if definition.node(base) is not None:
            base = f"out_{base}"
        output_id = unique_id(definition, base)
        definition.nodes.append(Node(output_id, "Output", {}, None,
                                     [right + 200, top + 120 * len(results)]))
        definition.edges.append(Edge(key[0], key[1], output_id, "x"))
        results[key] = output_id

    instance_id = unique_id(Graph(nodes=[n for n in graph.nodes if n.id not in sel]), name.lower())
    instance = Node(instance_id, "Block", {"block": name}, None,
                    [round(sum(xs) / len(xs)), round(sum(ys) / len(ys))])
    new_edges = [Edge(src, port, instance_id, input_id) for _, src, port, input_id in outside_edges]
    new_edges += [Edge(instance_id, results[(e.src, e.src_port)], e.dst, e.dst_port) for e in leaving]
    return GroupPlan(name, definition, instance, [n.id for n in chosen], new_edges)


def _free_block_name(doc: Document, base: str) -> str:
    if base not in doc.blocks:
        return base
    i = 2
    while f"{base}{i}" in doc.blocks:
        i += 1
    return f"{base}{i}"


@dataclass
class UngroupPlan:
    instance: str
    nodes: list
    edges: list


def plan_ungroup(doc: Document, ref, instance_id: str) -> UngroupPlan:
    """Inline one Block instance: its definition's nodes (fresh ids) wired to the outside."""
    graph = doc.graph_at(ref)
    inst = doc.node_at(ref, instance_id)
    if inst.type != "Block" or inst.params.get("block") not in doc.blocks:
        raise GraphError(f"{instance_id} is not a block instance", instance_id)
    definition = doc.blocks[inst.params["block"]]
    io = {n.id: n.type for n in definition.nodes if n.type in ("Input", "Output")}
    inner = [copy.deepcopy(n) for n in definition.nodes if n.id not in io]
    taken = Graph(nodes=[n for n in graph.nodes if n.id != instance_id])
    renames = {}
    xs = [n.pos[0] for n in inner if n.pos] or [0]
    ys = [n.pos[1] for n in inner if n.pos] or [0]
    cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
    ox, oy = (inst.pos or [0, 0])
    for n in inner:
        new_id = unique_id(taken, n.id)
        renames[n.id] = new_id
        n.id = new_id
        if n.pos is not None:
            n.pos = [round(n.pos[0] - cx + ox), round(n.pos[1] - cy + oy)]
        taken.nodes.append(n)
    feeding = {e.dst_port: (e.src, e.src_port) for e in graph.edges if e.dst == instance_id}
    consumers: dict = {}
    for e in graph.edges:
        if e.src == instance_id:
            consumers.setdefault(e.src_port, []).append((e.dst, e.dst_port))
    edges = []
    for e in definition.edges:
        srcs = ([feeding[e.src]] if e.src in feeding else []) if io.get(e.src) == "Input" \
            else [(renames[e.src], e.src_port)]
        dsts = consumers.get(e.dst, []) if io.get(e.dst) == "Output" else [(renames[e.dst], e.dst_port)]
        for s in srcs:
            for d in dsts:
                edges.append(Edge(s[0], s[1], d[0], d[1]))
    return UngroupPlan(instance_id, inner, edges)


# -- node paths ---------------------------------------------------------------------------------


def resolve_path(doc: Document, path: str):
    """(GraphRef, node id) for a node path like `rnn/cell`, `gate/then/fc`, `@Residual/fc`;
    None when the path names no node of the document."""
    parts = [p for p in (path or "").split("/") if p]
    if not parts:
        return None
    ref: tuple = ()
    if parts[0].startswith("@"):
        ref, parts = (parts[0],), parts[1:]
    try:
        graph = doc.graph_at(ref)
    except GraphError:
        return None
    i = 0
    while i < len(parts) - 1:
        node = graph.node(parts[i])
        if node is None or not node.bodies:
            return None
        if i + 1 < len(parts) - 1 and parts[i + 1] in node.bodies and parts[i + 1] != "body":
            key, i = parts[i + 1], i + 2
        elif "body" in node.bodies:
            key, i = "body", i + 1
        else:
            return None
        ref = ref + (node.id, key)
        graph = node.bodies[key]
    if not parts or graph.node(parts[-1]) is None:
        return (ref, None) if ref else None
    return ref, parts[-1]
