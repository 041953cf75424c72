"""Graph > Arrange in the editor (app.arrange): one undoable step over a graph and its bodies.

Arranging a document without positions lays out every graph of it, the canvas follows, one undo
gives back the very same document (nodes without `pos` get none again) and redo the layout
again. A body is arranged on its own when asked, leaving the graphs around it alone. The sizes
the core lays out with are the sizes the canvas draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wiregrad.app.arrange import arrange, drawn_size, lacks_positions
from wiregrad.core.arrange import default_size
from wiregrad.core.document import Document, Graph, Node
from wiregrad.core.well_formed import walk_graphs

from wiregrad import core

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"


def _without_pos(name: str) -> Document:
    doc = core.load(EXAMPLES_DIR / name)
    for _, graph, _ in walk_graphs(doc):
        for node in graph.nodes:
            node.pos = None
    return doc


def _open(window, doc: Document):
    """Show a document as it is (the window's own opening would arrange one without `pos`)."""
    window.controller.set_document(doc)
    return window.controller


def _positions(doc: Document) -> dict:
    return {(ref, n.id): n.pos for ref, graph, _ in walk_graphs(doc) for n in graph.nodes}


def test_arrange_lays_out_every_graph_and_one_undo_gives_the_document_back(window):
    controller = _open(window, _without_pos("parity-rnn.wg.json"))
    before = controller.doc.to_dict()
    steps = controller.stack.count()
    arrange(controller)
    assert controller.stack.count() == steps + 1, "one step in Edit > History"
    assert controller.stack.undoText().startswith("Arrange")
    after = _positions(controller.doc)
    assert all(pos is not None for pos in after.values()), "the loop's body is arranged too"
    assert after[((), "seq")][0] < after[((), "rnn")][0] < after[((), "loss")][0]
    controller.stack.undo()
    assert controller.doc.to_dict() == before
    controller.stack.redo()
    assert _positions(controller.doc) == after


def test_undo_puts_back_positions_that_were_there(window):
    doc = core.load(EXAMPLES_DIR / "blocks-and-gate.wg.json")
    doc.graph.nodes[0].pos = [1000, 1000]  # out of place: arrange moves it
    controller = _open(window, doc)
    before = controller.doc.to_dict()
    arrange(controller)
    assert controller.doc.to_dict() != before
    controller.stack.undo()
    assert controller.doc.to_dict() == before


def test_the_canvas_follows_the_layout(window):
    controller = _open(window, _without_pos("spiral-mlp.wg.json"))
    arrange(controller)
    for node in controller.doc.graph.nodes:
        item = window.scene.node_items[node.id]
        assert [item.pos().x(), item.pos().y()] == node.pos


def test_a_body_is_arranged_on_its_own(window):
    controller = _open(window, _without_pos("parity-rnn.wg.json"))
    arrange(controller, ("rnn", "body"))
    assert all(n.pos is not None for n in controller.doc.graph_at(("rnn", "body")).nodes)
    assert all(n.pos is None for n in controller.doc.graph.nodes), "the main graph stays"


def test_an_arranged_document_gives_no_empty_undo_step(window):
    controller = _open(window, _without_pos("spiral-mlp.wg.json"))
    arrange(controller)
    steps = controller.stack.count()
    messages = []
    controller.message.connect(messages.append)
    arrange(controller)
    assert controller.stack.count() == steps
    assert messages == ["Already arranged"]


def test_without_grandalf_the_status_bar_says_so_and_nothing_moves(window, monkeypatch):
    controller = _open(window, _without_pos("spiral-mlp.wg.json"))
    before = controller.doc.to_dict()
    messages = []
    controller.message.connect(messages.append)
    monkeypatch.setitem(sys.modules, "grandalf.graphs", None)
    arrange(controller)
    assert controller.doc.to_dict() == before
    assert controller.stack.count() == 0
    assert "pip install grandalf" in messages[-1]


def test_nodes_are_measured_as_the_canvas_draws_them(window):
    doc = core.load(EXAMPLES_DIR / "blocks-and-gate.wg.json")
    doc.graph.nodes[1].label = "a label long enough to take two lines"
    controller = _open(window, doc)
    refs = [ref for ref, _, _ in walk_graphs(controller.doc)]
    assert len(refs) > 2, "the example has bodies and blocks to look into"
    for ref in refs:
        controller.open_graph(ref)
        for node in controller.doc.graph_at(ref).nodes:
            rect = window.scene.node_items[node.id].rect
            assert (rect.width(), rect.height()) == drawn_size(controller.doc, node), node.id


def test_the_core_default_is_a_node_with_a_one_line_title(qapp):
    doc = Document()
    for node in (Node("a", "Input"), Node("b", "ReLU"), Node("c", "Add"), Node("d", "Where")):
        assert drawn_size(doc, node) == default_size(doc, node), node.type


def _overlaps(rects: dict) -> list:
    ids = list(rects)
    return [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]
            if rects[a].intersects(rects[b])]


def test_after_arrange_no_two_nodes_overlap_on_the_canvas_even_with_long_titles(window):
    doc = _without_pos("spiral-mlp.wg.json")
    for node in doc.graph.nodes[::2]:
        node.label = f"{node.id}, a label long enough to take two lines of the title"
    controller = _open(window, doc)
    arrange(controller)
    items = window.scene.node_items
    assert any(item.rect.width() > 128 for item in items.values()), "some titles widen"
    assert any(item.rect.height() > 70 + 14 for item in items.values()), "some take 2 lines"
    assert not _overlaps({i: item.sceneBoundingRect() for i, item in items.items()})
    for edge in doc.graph.edges:
        src, dst = items[edge.src], items[edge.dst]
        assert src.port_pos(edge.src_port, True).x() < dst.port_pos(edge.dst_port, False).x()


def test_lacks_positions_when_no_node_has_one_or_all_share_one_point():
    doc = Document(Graph([Node("a", "Input"), Node("b", "ReLU")]))
    assert lacks_positions(doc)
    doc.graph.nodes[0].pos = [40, 40]
    assert lacks_positions(doc), "one placed node and one not: still nothing to show"
    doc.graph.nodes[1].pos = [40, 40]
    assert lacks_positions(doc), "both in one heap"
    doc.graph.nodes[1].pos = [220, 40]
    assert not lacks_positions(doc)
    assert not lacks_positions(Document()), "an empty graph has nothing to lay out"
    assert not lacks_positions(Document(Graph([Node("a", "Input", pos=[0, 0])])))
    assert not lacks_positions(core.load(EXAMPLES_DIR / "spiral-mlp.wg.json"))


def test_a_file_without_positions_opens_arranged_in_the_window(window, tmp_path):
    doc = _without_pos("parity-rnn.wg.json")
    path = tmp_path / "no-pos.wg.json"
    core.save(doc, path)
    assert window.open_path(str(path))
    positions = _positions(window.controller.doc)
    assert all(pos is not None for pos in positions.values()), "bodies too"
    for node in window.controller.doc.graph.nodes:
        item = window.scene.node_items[node.id]
        assert [item.pos().x(), item.pos().y()] == node.pos
