"""The canvas mirrors the document one way: edits made without any Qt show up on it."""

from wiregrad.app.controller import EditorController
from wiregrad.app.scene import CanvasScene
from wiregrad.core.document import Document, Edge, Node


def test_a_document_edited_headless_shows_on_a_canvas_bound_later(qapp):
    doc = Document()
    doc.add_node((), Node("x", "Input", {"shape": [3]}, None, [0, 0]))
    doc.add_node((), Node("fc", "Linear", {"out_features": 4}, None, [200, 0]))
    doc.add_edge((), Edge("x", "y", "fc", "x"))
    scene = CanvasScene(EditorController(doc))
    assert set(scene.node_items) == {"x", "fc"}
    assert list(scene.wire_items) == [Edge("x", "y", "fc", "x")]
    assert scene.node_items["fc"].summary == "Linear 4"

    # and later document calls keep it in step, without any command
    doc.set_param((), "fc", "out_features", 9)
    doc.rename_node((), "fc", "head")
    doc.move_node((), "x", [40, 60])
    assert scene.node_items["head"].summary == "Linear 9"
    assert list(scene.wire_items) == [Edge("x", "y", "head", "x")]
    assert (scene.node_items["x"].pos().x(), scene.node_items["x"].pos().y()) == (40, 60)
    doc.remove_node((), "x")
    assert set(scene.node_items) == {"head"} and scene.wire_items == {}
