"""Graph > Arrange: lay out a graph and every body below it, as one step on the undo stack.

The positions come from `core.arrange` (a layered layout, left to right), told the size each
node is drawn at (a long title widens a node or gives it a second line, which only the editor,
with its fonts, can measure); here they become MoveNodes commands, one per graph, inside one macro, so a single Ctrl+Z puts every node of
every graph back where it was (a node that had no `pos` gets none again). The canvas follows
by itself: it mirrors the document's node_moved events.
"""

from __future__ import annotations

from ..core.arrange import arrange_positions
from ..core.document import ref_name
from ..core.errors import GraphError
from ..core.well_formed import walk_graphs
from . import commands as cmd
from .items import NodeItem


def arrange(controller, ref=None) -> None:
    """Arrange the graph at `ref` (None: the top level) and every body below it; from the top
    level, the block definitions too, so that a document without positions is laid out whole.
    Nothing is pushed when every node already stands where the layout puts it; a layout that
    cannot be made (grandalf missing) is said in the status bar and changes nothing."""
    ref = () if ref is None else tuple(ref)
    doc = controller.doc
    try:
        plans = [(where, _moves(doc, where)) for where in _graphs_from(doc, ref)]
    except GraphError as exc:
        controller.message.emit(str(exc))
        return
    plans = [(where, moves) for where, moves in plans if moves]
    if not plans:
        controller.message.emit("Already arranged")
        return
    with controller.macro(f"Arrange {ref_name(ref) or 'main'}"):
        for where, moves in plans:
            controller.push(cmd.MoveNodes(doc, where, moves))


def lacks_positions(doc) -> bool:
    """Whether the top graph has nodes but no layout to show: none of them has a `pos`, or
    (two or more nodes) every `pos` given is the same point, so they would sit in a heap."""
    nodes = doc.graph.nodes
    points = {tuple(n.pos) for n in nodes if n.pos is not None}
    if not nodes:
        return False
    return not points or (len(nodes) > 1 and len(points) == 1)


def _graphs_from(doc, ref: tuple) -> list:
    """The GraphRefs of the graph at `ref` and of every graph nested in it (all of them, the
    block definitions included, from the top level)."""
    doc.graph_at(ref)  # a GraphError when there is no such graph
    return [where for where, _, _ in walk_graphs(doc) if where[:len(ref)] == ref]


def _moves(doc, ref: tuple) -> dict:
    """{node id: (old pos, new pos)} for the nodes of one graph the layout moves."""
    graph = doc.graph_at(ref)
    moves = {}
    sizes = {node.id: drawn_size(doc, node) for node in graph.nodes}
    for node_id, spot in arrange_positions(doc, ref, sizes).items():
        old, new = graph.node(node_id).pos, list(spot)
        if old != new:
            moves[node_id] = (None if old is None else list(old), new)
    return moves


def drawn_size(doc, node) -> tuple:
    """(width, height) of a node as the canvas draws it, measured on a node item of its own
    (its title and ports decide; as CanvasScene fills its items)."""
    item = NodeItem(node.id)
    ins, outs = doc.ports(node)
    has_body = bool(node.bodies) or node.type == "Block"
    item.set_content(node.label or node.id, "", "Misc", ins, outs, {}, has_body)
    return item.rect.width(), item.rect.height()
