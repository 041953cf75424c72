"""Auto-layout: where each node of one graph goes, as the examples are drawn.

A layered (Sugiyama) layout, the one graphviz calls `dot`: data flows left to right, so inputs
stand on the left and outputs and losses on the right, each node one column (layer) after the
latest node it reads from. The layering, the ordering within a column (fewer crossings) and the
placement (straight wires where they can be) come from `grandalf`, a maintained pure-Python
implementation; this module only feeds it the graph and turns its answer into `pos` values.

Node sizes default to what the editor draws for a node with a one-line title (app/theme.py),
kept here as plain numbers so that the core does not import Qt; the editor, which can measure
titles, passes the sizes it really draws (app/arrange.py). tests/app/test_arrange.py keeps the
two in step.
"""

from __future__ import annotations

import math
import sys

from .document import Document, Graph
from .errors import GraphError

NODE_W = 128                      # the editor's NODE_WIDTH (a one-line title)
NODE_TOP_H = 24 + 20 + 6          # title, summary line and bottom margin (TITLE_H, SUMMARY_H)
PORT_ROW = 20                     # one row per port, the taller side decides
GRID = 20                         # the editor's snap grid: arranged nodes sit on it
COLUMN = 180                      # a column every 180 px, as the examples are drawn...
GAP_X = 40                        # ...or wider, when wide nodes need more room between
GAP_Y = 50                        # between nodes of a column: tops at least 120 px apart
WIRE_LANE = 20                    # the room a long wire takes where it crosses a column
PIECE_GAP = 80                    # between disconnected pieces, stacked top to bottom
ORDER_ROUNDS = 1.5                # grandalf's crossing-reduction sweeps (its default)


def default_size(doc: Document, node) -> tuple:
    """(width, height) of a node as the editor draws it: its height grows with its ports."""
    ins, outs = doc.ports(node)
    rows = max(len(ins), len(outs), 1)
    return NODE_W, NODE_TOP_H + rows * PORT_ROW


def arrange_positions(doc: Document, ref=(), sizes: dict | None = None) -> dict:
    """{node id: (x, y)} for every node of the graph at `ref`: the top-left corner of each, on
    the editor's grid, no two nodes overlapping, every wire running left to right.

    `sizes` maps node ids to (width, height); missing ones take `default_size`. Connected
    pieces are laid out one below the other, lone nodes in rows under them. The drawing starts
    at the top-left corner of the nodes' current positions (the origin when none has one), so
    the view does not jump and arranging twice changes nothing. The same document always gives
    the same positions. A cycle (which a valid graph does not have) is drawn with its closing
    wire running backwards rather than refused."""
    graph = doc.graph_at(tuple(ref))
    if not graph.nodes:
        return {}
    layout = _grandalf()
    size = {n.id: tuple(sizes[n.id]) if sizes and n.id in sizes else default_size(doc, n)
            for n in graph.nodes}
    pieces, lone = _pieces(graph)
    column = max(COLUMN, _snap_up(max(w for w, _ in size.values()) + GAP_X))
    placed: dict = {}
    top = 0
    columns = 1
    for piece in pieces:
        spots = _layered(layout, piece, _acyclic(piece, graph), size, column)
        _shift(spots, 0, top)
        placed.update(spots)
        top = _snap_up(_bottom(spots, size) + PIECE_GAP)
        columns = max(columns, 1 + round(max(x for x, _ in spots.values()) / column))
    placed.update(_rows(lone, size, column, top, max(columns, 4)))
    left, upper = _anchor(graph)
    _shift(placed, left, upper)
    return {n.id: placed[n.id] for n in graph.nodes}


def _grandalf():
    """grandalf's pieces, or a GraphError a user can act on."""
    try:
        from grandalf.graphs import Edge, Vertex, graph_core
        from grandalf.layouts import SugiyamaLayout, VertexViewer
    except ImportError:
        raise GraphError("Arrange needs the grandalf package: pip install grandalf") from None

    class Sugiyama(SugiyamaLayout):
        def _detect_alignment_conflicts(self):
            # grandalf keeps the conflicts in a list and looks every candidate alignment up
            # in it: half a second on a 1,000-node graph, that a set (same answers) saves.
            super()._detect_alignment_conflicts()
            self.conflicts = set(self.conflicts)

    return Vertex, Edge, graph_core, Sugiyama, VertexViewer


def _pieces(graph: Graph) -> tuple:
    """([ids of each connected piece of 2+ nodes], [ids of lone nodes]), in document order:
    a piece comes where its first node is in the file, its ids in file order."""
    index = {n.id: i for i, n in enumerate(graph.nodes)}
    parent = list(range(len(graph.nodes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for e in graph.edges:
        if e.src in index and e.dst in index:
            a, b = root(index[e.src]), root(index[e.dst])
            parent[max(a, b)] = min(a, b)
    groups: dict = {}
    for n in graph.nodes:
        groups.setdefault(root(index[n.id]), []).append(n.id)
    pieces = [ids for ids in groups.values() if len(ids) > 1]
    lone = [ids[0] for ids in groups.values() if len(ids) == 1]
    return pieces, lone


def _acyclic(piece: list, graph: Graph) -> list:
    """The wires of a piece as (src, dst) pairs that make no cycle: one pair per pair of
    nodes, no self-loops, and any wire that closes a cycle turned around (the back edges of a
    depth-first walk, iterative so that deep graphs do not overflow the stack)."""
    members = set(piece)
    succ: dict = {n: [] for n in piece}
    for e in graph.edges:
        if e.src in members and e.dst in members and e.src != e.dst and e.dst not in succ[e.src]:
            succ[e.src].append(e.dst)
    state = dict.fromkeys(piece, 0)  # 0 not seen, 1 on the walk's path, 2 done
    back = set()
    for start in piece:
        if state[start]:
            continue
        state[start] = 1
        stack = [(start, iter(succ[start]))]
        while stack:
            node, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state[nxt] == 1:
                back.add((node, nxt))
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    pairs, seen = [], set()
    for src in piece:
        for dst in succ[src]:
            pair = (dst, src) if (src, dst) in back else (src, dst)
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    return pairs


def _layered(layout, piece: list, pairs: list, size: dict, column: int) -> dict:
    """{id: (x, y)} of one connected piece, from its top-left corner. grandalf draws layers
    top to bottom; we want them left to right, so a node's height is its width in a layer."""
    Vertex, Edge, graph_core, SugiyamaLayout, VertexViewer = layout
    vertex = {}
    for node_id in piece:
        v = Vertex(node_id)
        w, h = size[node_id]
        v.view = VertexViewer(w=h, h=w)
        vertex[node_id] = v
    component = graph_core([vertex[i] for i in piece],
                           [Edge(vertex[a], vertex[b]) for a, b in pairs])
    sugiyama = SugiyamaLayout(component)
    sugiyama.xspace = GAP_Y
    sugiyama.dw, sugiyama.dh = WIRE_LANE, column
    # grandalf places blocks recursively, as deep as the longest path: give it the room.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(piece) + 1000))
    try:
        sugiyama.init_all(roots=[], inverted_edges=[], optimize=True)
        sugiyama.draw(ORDER_ROUNDS)
    finally:
        sys.setrecursionlimit(limit)
    layers: dict = {}
    for node_id in piece:
        v = vertex[node_id]
        centre = v.view.xy[0]
        layers.setdefault(sugiyama.grx[v].rank, []).append((centre, sugiyama.grx[v].pos, node_id))
    spots = {}
    for rank, members in layers.items():
        spots.update(_column(rank * column, sorted(members), size))
    _shift(spots, -min(x for x, _ in spots.values()), -min(y for _, y in spots.values()))
    return spots


def _column(x: int, members: list, size: dict) -> dict:
    """Tops of one layer's nodes on the grid, in grandalf's order, pushed down where rounding
    (or grandalf) would let one touch the next."""
    spots = {}
    floor = None  # the highest the next node's top may be
    for centre, _, node_id in members:
        h = size[node_id][1]
        y = _snap(centre - h / 2)
        if floor is not None:
            y = max(y, _snap_up(floor))
        spots[node_id] = (x, y)
        floor = y + h + GAP_Y
    return spots


def _rows(lone: list, size: dict, column: int, top: int, per_row: int) -> dict:
    """Nodes wired to nothing, in rows of `per_row` under everything else."""
    spots = {}
    for start in range(0, len(lone), per_row):
        row = lone[start:start + per_row]
        for i, node_id in enumerate(row):
            spots[node_id] = (i * column, top)
        top = _snap_up(top + max(size[n][1] for n in row) + GAP_Y)
    return spots


def _anchor(graph: Graph) -> tuple:
    """The grid point the drawing starts at: the top-left of the current positions."""
    known = [n.pos for n in graph.nodes if n.pos is not None]
    if not known:
        return 0, 0
    return _snap(min(p[0] for p in known)), _snap(min(p[1] for p in known))


def _bottom(spots: dict, size: dict) -> int:
    return max(y + size[i][1] for i, (_, y) in spots.items())


def _shift(spots: dict, dx: float, dy: float) -> None:
    for node_id, (x, y) in spots.items():
        spots[node_id] = (_snap(x + dx), _snap(y + dy))


def _snap(value: float) -> int:
    return round(value / GRID) * GRID


def _snap_up(value: float) -> int:
    return math.ceil(value / GRID) * GRID
