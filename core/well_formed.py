"""Structural checks of a document: what makes it malformed, whatever the shapes.

`structural_errors(doc)` returns every problem as a GraphError naming its node: unknown
ports, dangling edges, two edges into one input, cycles, a block that uses itself, and the body
rules of loops and branches. Shape inference (in the compiler) comes after and assumes these hold.
Graph walks here are iterative: a deep graph must not overflow the stack.
"""

from __future__ import annotations

import heapq

from .. import nodes
from .document import Document, Graph, node_path, node_ports, ref_name
from .errors import GraphError


def structural_errors(doc: Document) -> list:
    errors: list = []
    for ref, graph, context in walk_graphs(doc):
        _check_graph(doc, ref, graph, context, errors)
    _check_block_recursion(doc, errors)
    return errors


def walk_graphs(doc: Document):
    """Every graph of the document with its GraphRef and what encloses it:
    (ref, graph, context) where context is None (top or block definition) or
    (enclosing node, body key). Iterative, top graph and block definitions first."""
    stack = [((), doc.graph, None)]
    stack += [(("@" + name,), g, None) for name, g in reversed(list(doc.blocks.items()))]
    stack.reverse()
    while stack:
        ref, graph, context = stack.pop()
        yield ref, graph, context
        for node in reversed(graph.nodes):
            for key in reversed(list(node.bodies)):
                stack.append((ref + (node.id, key), node.bodies[key], (node, key)))


def _error(errors: list, ref, node_id, message: str) -> None:
    path = node_path(ref, node_id) if node_id else (ref_name(ref) or None)
    errors.append(GraphError(f"{path}: {message}" if path else message, path))


def _check_graph(doc: Document, ref, graph: Graph, context, errors: list) -> None:
    seen: set = set()
    for node in graph.nodes:
        if node.id in seen:
            _error(errors, ref, node.id, "two nodes have this id; ids must be unique in a graph")
        seen.add(node.id)
        if nodes.get(node.type) is None:
            _error(errors, ref, node.id, f"unknown node type {node.type!r}")
        if node.type == "Block":
            name = node.params.get("block")
            if not isinstance(name, str) or name not in doc.blocks:
                known = ", ".join(sorted(doc.blocks)) or "none defined"
                _error(errors, ref, node.id, f"block {name!r} is not defined (blocks: {known})")

    ports = {n.id: node_ports(n, doc.blocks) for n in graph.nodes}
    by_id = {n.id: n for n in graph.nodes}
    filled: dict = {}
    for edge in graph.edges:
        if not _edge_ok(ref, by_id, ports, edge, errors):
            continue
        key = (edge.dst, edge.dst_port)
        if key in filled:
            _error(errors, ref, edge.dst, f"input {edge.dst_port!r} has two edges "
                   f"(from {filled[key]} and {edge.src}.{edge.src_port}); an input takes one")
        filled[key] = f"{edge.src}.{edge.src_port}"

    cycle = find_cycle(graph)
    if cycle:
        _error(errors, ref, cycle[0], "the graph has a cycle (" + " -> ".join(cycle + cycle[:1])
               + "); use a Loop to repeat")
    _check_roles(ref, graph, context, errors)
    _check_shares(ref, graph, by_id, errors)


def _check_shares(ref, graph: Graph, by_id: dict, errors: list) -> None:
    """`shares` names another node of the same graph, of the same type (and block), and the
    chain of them ends at a node that owns its tensors (format.md, version 2). That the
    tensors' shapes agree, the compiler checks."""
    for node in graph.nodes:
        if node.shares is None:
            continue
        owner = by_id.get(node.shares)
        if node.shares == node.id:
            _error(errors, ref, node.id, "shares its own tensors; name another node")
        elif owner is None:
            _error(errors, ref, node.id, f"shares {node.shares!r}, which is not a node of this "
                   "graph (shared tensors come from a node beside it)")
        elif owner.type != node.type:
            _error(errors, ref, node.id, f"shares {owner.id!r}, a {owner.type}; a {node.type} "
                   "can only share the tensors of another " + node.type)
        elif node.type == "Block" and owner.params.get("block") != node.params.get("block"):
            _error(errors, ref, node.id, f"shares {owner.id!r}, an instance of block "
                   f"{owner.params.get('block')!r}, not {node.params.get('block')!r}")
        else:
            seen = [node.id]
            current = owner
            while current is not None and current.shares is not None:
                if current.id in seen:
                    _error(errors, ref, node.id, "shares in a circle (" + " -> ".join(
                        seen + [current.id]) + "); one of them must own its tensors")
                    break
                seen.append(current.id)
                current = by_id.get(current.shares)


def _edge_ok(ref, by_id: dict, ports: dict, edge, errors: list) -> bool:
    ok = True
    for end, port, side in ((edge.src, edge.src_port, 1), (edge.dst, edge.dst_port, 0)):
        if end not in ports:
            # Name the end that exists, so the editor can badge it and check can point at it.
            other = edge.dst if side else edge.src
            _error(errors, ref, other if other in ports else None,
                   f"edge {edge} refers to a missing node {end!r}")
            return False
        if nodes.get(by_id[end].type) is None:
            return False
        names = ports[end][side]
        if port not in names:
            kind = "output" if side else "input"
            listed = ", ".join(names) or "none"
            _error(errors, ref, end, f"has no {kind} port {port!r} (its {kind}s: {listed})")
            ok = False
    if ok and edge.src == edge.dst:
        _error(errors, ref, edge.src, "an edge from a node into itself makes a cycle")
        ok = False
    return ok


def find_cycle(graph: Graph) -> list:
    """Node ids along one cycle of the graph, or [] if it is acyclic (Kahn's algorithm)."""
    ids = [n.id for n in graph.nodes]
    succ: dict = {i: [] for i in ids}
    indeg: dict = {i: 0 for i in ids}
    for e in graph.edges:
        if e.src in succ and e.dst in indeg and e.src != e.dst:
            succ[e.src].append(e.dst)
            indeg[e.dst] += 1
    ready = [i for i in ids if indeg[i] == 0]
    while ready:
        for j in succ[ready.pop()]:
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
    left = {i for i in ids if indeg[i] > 0}
    if not left:
        return []
    # Walk predecessors inside the leftover set until a node repeats: that is a cycle.
    pred = {i: [e.src for e in graph.edges if e.dst == i and e.src in left] for i in left}
    node, order = next(iter(sorted(left))), []
    while node not in order:
        order.append(node)
        node = pred[node][0]
    cycle = order[order.index(node):]
    cycle.reverse()
    return cycle


def topo_order(graph: Graph) -> list:
    """Node ids in an order where every edge goes forward; file order breaks ties."""
    ids = [n.id for n in graph.nodes]
    position = {i: k for k, i in enumerate(ids)}
    succ: dict = {i: [] for i in ids}
    indeg: dict = {i: 0 for i in ids}
    for e in graph.edges:
        if e.src in succ and e.dst in indeg:
            succ[e.src].append(e.dst)
            indeg[e.dst] += 1
    ready = [position[i] for i in ids if indeg[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = ids[heapq.heappop(ready)]
        order.append(node)
        for j in succ[node]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(ready, position[j])
    return order


def _check_roles(ref, graph: Graph, context, errors: list) -> None:
    """Loop bodies: carries paired, continue only in while, sequence only in scan and tree,
    children (naming a stack Output) and no carries in tree mode. Elsewhere Input and Output
    roles keep their defaults. Branch sides: same Output ids."""
    loop = context is not None and context[0].type == "Loop"
    mode = context[0].params.get("mode", "repeat") if loop else None
    carries = {n.id for n in graph.nodes if n.type == "Input" and n.params.get("role") == "carry"}
    fed: dict = {}
    for node in graph.nodes:
        role = node.params.get("role")
        if node.type not in ("Input", "Output") or role is None:
            continue
        if not loop and role not in ("const", "stack"):
            _error(errors, ref, node.id, f"role {role!r} only means something in a Loop body")
            continue
        if role == "sequence" and mode not in ("scan", "tree"):
            _error(errors, ref, node.id, "a sequence Input needs a Loop in scan or tree mode")
        if role == "children" and node.type == "Input":
            stacks = {n.id for n in graph.nodes if n.type == "Output"
                      and n.params.get("role", "stack") == "stack"}
            if mode != "tree":
                _error(errors, ref, node.id, "a children Input needs a Loop in tree mode")
            elif node.params.get("of") not in stacks:
                _error(errors, ref, node.id, f"a children Input sees the values of a stack "
                       f"Output of this body at a node's children: 'of' names "
                       f"{node.params.get('of')!r}, which is not one")
        if mode == "tree" and role in ("carry", "continue"):
            _error(errors, ref, node.id, f"a tree Loop has no {role}s: a node's value comes "
                   "from its own data and its children's values (role children)")
        if node.type == "Output" and role == "continue" and mode != "while":
            _error(errors, ref, node.id, "a continue Output needs a Loop in while mode")
        if node.type == "Output" and role == "carry":
            target = node.params.get("carry")
            if not isinstance(target, str) or target not in carries:
                _error(errors, ref, node.id, f"carry Output names {target!r}, which is not a "
                       "carry Input of this body")
            elif target in fed:
                _error(errors, ref, node.id, f"carry Input {target!r} is already updated by "
                       f"{fed[target]}")
            else:
                fed[target] = node.id
    if loop:
        for name in sorted(carries - set(fed)):
            _error(errors, ref, name, "this carry Input has no carry Output giving its next "
                   "value (add an Output with role carry and carry = " + repr(name) + ")")
        if mode == "while" and not any(n.type == "Output" and n.params.get("role") == "continue"
                                       for n in graph.nodes):
            _error(errors, ref, None, "a while Loop body needs an Output with role continue")
    if context is not None and context[0].type == "Branch" and context[1] == "else":
        branch = context[0]
        then_out = sorted(n.id for n in branch.bodies["then"].nodes if n.type == "Output")
        else_out = sorted(n.id for n in graph.nodes if n.type == "Output")
        if then_out != else_out:
            parent = ref[:-2]
            _error(errors, parent, branch.id, f"then and else must have the same Output ids "
                   f"(then: {', '.join(then_out) or 'none'}; else: {', '.join(else_out) or 'none'})")


def _check_block_recursion(doc: Document, errors: list) -> None:
    """A block whose definition uses itself, directly or through other blocks, never ends."""
    uses: dict = {}
    for name, graph in doc.blocks.items():
        found = set()
        stack = [graph]
        while stack:
            g = stack.pop()
            for node in g.nodes:
                if node.type == "Block" and isinstance(node.params.get("block"), str):
                    found.add(node.params["block"])
                stack.extend(node.bodies.values())
        uses[name] = found
    for name in doc.blocks:
        seen, stack = set(), list(uses[name])
        while stack:
            other = stack.pop()
            if other == name:
                _error(errors, ("@" + name,), None, f"block {name!r} uses itself; a block "
                       "cannot call itself, directly or through other blocks")
                break
            if other not in seen and other in uses:
                seen.add(other)
                stack.extend(uses[other])
