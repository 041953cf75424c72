"""The editor driven as a user drives it: drop, wire, edit, open a body, undo, save, reopen."""

import json
import os
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest
from wiregrad.app.palette import mime_for

from wiregrad import core

# WIREGRAD_EXAMPLES: a copy of the examples folder (the README test runs these tests against
# one where the quick start has written its run folder beside the documents).
EXAMPLES = os.environ.get("WIREGRAD_EXAMPLES") or os.path.join(
    os.path.dirname(__file__), "..", "..", "assets", "examples")
from editor_helpers import center, drag, port


def drop_type(view, type_name: str, scene_pos: QPointF) -> None:
    """What a palette drag ends with: a drop event of the node type's mime data."""
    mime: QMimeData = mime_for(type_name)
    event = QDropEvent(QPointF(view.mapFromScene(scene_pos)), Qt.CopyAction, mime,
                       Qt.LeftButton, Qt.NoModifier)
    view.dropEvent(event)


def test_build_a_network_by_hand_then_undo_all_save_and_reopen(window, qtbot, tmp_path):
    win = window
    view, scene, doc = win.view, win.scene, win.controller.doc
    original = doc.to_dict()

    # drag an Input and a Linear from the palette
    assert win.palette.item_for("Linear") is not None
    drop_type(view, "Input", view.mapToScene(200, 200))
    drop_type(view, "Linear", view.mapToScene(500, 220))
    ids = [n.id for n in doc.graph.nodes]
    assert [n.type for n in doc.graph.nodes] == ["Input", "Linear"]
    inp, lin = ids
    win.controller.set_param([inp], "shape", [4])

    # connect the Input's output to the Linear's input by mouse
    drag(view, port(scene, inp, "y", True), port(scene, lin, "x", False))
    assert [e.to_dict() for e in doc.graph.edges] == [{"from": f"{inp}.y", "to": f"{lin}.x"}]

    # set out_features in the inspector
    scene.select_nodes([lin])
    box = win.inspector.editors["out_features"]
    box.selectAll()
    QTest.keyClicks(box, "8")
    QTest.keyClick(box, Qt.Key_Return)
    assert doc.graph.node(lin).params["out_features"] == 8

    # the wire shows the shape the engine infers
    win.validator.run_now()
    wire = scene.wire_items[doc.graph.edges[0]]
    assert wire.label == "(B, 4)"

    # a refused value is not applied, and says why
    win.inspector.apply("out_features", 0)
    assert doc.graph.node(lin).params["out_features"] == 8
    assert win.inspector.message.text()

    # undo everything: exactly the document we started from
    while win.controller.stack.canUndo():
        win.controller.stack.undo()
    assert doc.to_dict() == original
    assert scene.node_items == {}
    while win.controller.stack.canRedo():
        win.controller.stack.redo()
    final = doc.to_dict()

    # save, reopen, compare
    path = tmp_path / "hand.wg.json"
    assert win.save_as(str(path))
    assert not win.isWindowModified()
    assert win.open_path(str(path))
    assert win.controller.doc.to_dict() == final
    assert "hand.wg.json" in win.windowTitle()


def test_open_a_loop_body_and_add_a_node(window, qtbot):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "sequence-rnn.wg.json"))
    original = win.controller.doc.to_dict()
    view, scene = win.view, win.scene

    QTest.mouseDClick(view.viewport(), Qt.LeftButton, Qt.NoModifier,
                      view.mapFromScene(center(scene, "rnn")))
    assert win.controller.ref == ("rnn", "body")
    assert win.breadcrumb.text() == "main › rnn › body"
    assert "cell" in scene.node_items

    popup = view.open_search(view.mapToScene(view.viewport().rect().center()))
    QTest.keyClicks(popup.edit, "tanh")
    QTest.keyClick(popup.edit, Qt.Key_Return)
    body = win.controller.doc.graph_at(("rnn", "body"))
    assert body.nodes[-1].type == "Tanh"
    assert body.nodes[-1].id in scene.node_items

    # an Output added in the body is a new port of the loop outside
    win.controller.add_node("Output", (700, 300))
    win.controller.open_graph(())
    assert "output" in scene.node_items["rnn"].outs or "o" in scene.node_items["rnn"].outs

    while win.controller.stack.canUndo():
        win.controller.stack.undo()
    assert win.controller.doc.to_dict() == original


def test_wire_dropped_on_empty_canvas_offers_a_connected_node(window):
    win = window
    c = win.controller
    c.add_node("Input", (0, 0))
    view, scene = win.view, win.scene
    view.centerOn(0, 0)
    start = port(scene, "i", "y", True)
    drag(view, start, QPointF(start.x() + 220, start.y() + 10))
    popup = view.popup
    assert popup is not None and popup.isVisible()
    QTest.keyClicks(popup.edit, "relu")
    QTest.keyClick(popup.edit, Qt.Key_Return)
    graph = c.doc.graph
    assert graph.nodes[-1].type == "ReLU"
    assert [e.to_dict() for e in graph.edges] == [{"from": "i.y", "to": "relu.x"}]
    c.stack.undo()  # one step removes the node and its wire
    assert [n.id for n in graph.nodes] == ["i"] and graph.edges == []


def test_drag_a_wire_end_away_disconnects_and_reconnect_replaces(window):
    win = window
    c = win.controller
    c.add_node("Input", (0, 0))
    c.add_node("Input", (0, 200))
    c.add_node("ReLU", (300, 0))
    c.connect("i", "y", "relu", "x")
    win.view.centerOn(150, 100)
    scene, view = win.scene, win.view
    # a second wire into the same input replaces the first
    drag(view, port(scene, "i_2", "y", True), port(scene, "relu", "x", False))
    assert [e.to_dict() for e in c.doc.graph.edges] == [{"from": "i_2.y", "to": "relu.x"}]
    # pick the wire up by its input end and drop it on empty canvas
    end = port(scene, "relu", "x", False)
    drag(view, end, QPointF(end.x() + 40, end.y() + 150))
    assert c.doc.graph.edges == []
    c.stack.undo()
    c.stack.undo()
    assert [e.to_dict() for e in c.doc.graph.edges] == [{"from": "i.y", "to": "relu.x"}]


def test_move_is_one_undo_step_and_snaps(window):
    win = window
    c = win.controller
    c.add_node("ReLU", (0, 0))
    win.view.centerOn(0, 0)
    scene = win.scene
    count = c.stack.count()
    start = center(scene, "relu")
    drag(win.view, start, QPointF(start.x() + 97, start.y() + 41), steps=8)
    assert c.stack.count() == count + 1
    x, y = c.doc.graph.node("relu").pos
    assert x % 20 == 0 and y % 20 == 0 and (x, y) != (0, 0)
    c.stack.undo()
    assert c.doc.graph.node("relu").pos == [0, 0]
    assert scene.node_items["relu"].pos() == QPointF(0, 0)


def test_copy_paste_makes_ids_unique_and_keeps_inner_edges(window):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"))
    c = win.controller
    original_ids = [n.id for n in c.doc.graph.nodes]
    win.scene.select_nodes(["hidden1", "act1"])
    win.copy()
    win.paste()
    graph = c.doc.graph
    new = win.scene.selected_node_ids()
    assert len(new) == 2 and not set(new) & set(original_ids)
    assert [graph.node(i).type for i in new] == ["Linear", "ReLU"]
    assert any(e.to_dict() == {"from": f"{new[0]}.y", "to": f"{new[1]}.x"} for e in graph.edges)
    assert len(graph.nodes) == len(original_ids) + 2
    c.stack.undo()
    assert [n.id for n in graph.nodes] == original_ids


def test_group_into_block_and_ungroup(window):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"))
    c = win.controller
    original = c.doc.to_dict()
    instance = c.group(["hidden2", "act2"])
    assert instance is not None
    graph = c.doc.graph
    assert graph.node("hidden2") is None and graph.node(instance).type == "Block"
    definition = c.doc.blocks[graph.node(instance).params["block"]]
    assert {n.type for n in definition.nodes} == {"Input", "Linear", "ReLU", "Output"}
    win.validator.run_now()
    assert win.validator.result.errors == []
    ins, outs = c.doc.ports(graph.node(instance))
    assert len(ins) == 1 and len(outs) == 1
    new = c.ungroup(instance)
    assert sorted(new) == ["act2", "hidden2"]
    win.validator.run_now()
    assert win.validator.result.errors == []
    c.stack.undo()
    c.stack.undo()
    assert c.doc.to_dict() == original


def test_rename_keeps_edges_and_training_references(window):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"))
    c = win.controller
    win.scene.select_nodes(["x"])
    win.inspector.id_edit.setText("points")
    win.inspector.id_edit.editingFinished.emit()
    doc = c.doc
    assert doc.graph.node("points") is not None
    assert any(e.src == "points" for e in doc.graph.edges)
    assert "points" in doc.training["feeds"]
    win.inspector.id_edit.setText("9bad")
    win.inspector.id_edit.editingFinished.emit()
    assert "not a valid id" in win.inspector.message.text()
    c.stack.undo()
    assert doc.graph.node("x") is not None and "x" in doc.training["feeds"]


def test_multi_edit_same_type(window):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"))
    win.scene.select_nodes(["hidden1", "hidden2"])
    assert win.inspector.ids == ["hidden1", "hidden2"]
    win.inspector.apply("out_features", 24)
    g = win.controller.doc.graph
    assert g.node("hidden1").params["out_features"] == 24 == g.node("hidden2").params["out_features"]
    win.controller.stack.undo()
    assert g.node("hidden1").params["out_features"] == 32 == g.node("hidden2").params["out_features"]


def test_problems_list_jumps_into_a_body(window):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "sequence-rnn.wg.json"))
    c = win.controller
    c.open_graph(("rnn", "body"))
    c.remove_nodes(["join"])   # cell.x now has no input
    c.open_graph(())
    win.validator.run_now()
    errors = win.validator.result.errors
    assert errors, "a node without its input must be reported"
    assert win.problems.count() == win.problems.error_count == len(errors)
    paths = [e.node for e in errors if e.node]
    if any(p.startswith("rnn/") for p in paths):
        assert win.scene.node_items["rnn"].error  # badge on the enclosing loop
        row = next(i for i, e in enumerate(errors) if e.node and e.node.startswith("rnn/"))
        item = win.problems.item(row)
        win.problems.itemClicked.emit(item)
        assert win.controller.ref == ("rnn", "body")


def test_comments_are_saved_in_ui(window, tmp_path):
    win = window
    note = win.add_comment("note")
    frame = win.add_comment("frame")
    assert set(win.scene.comment_items) == {note, frame}
    path = tmp_path / "notes.wg.json"
    assert win.save_as(str(path))
    data = json.loads(path.read_text())
    assert {c["kind"] for c in data["ui"]["comments"]} == {"note", "frame"}
    win.controller.stack.undo()
    assert set(win.scene.comment_items) == {note}


def test_a_frame_resizes_by_dragging_its_corner_in_one_undo_step(window, qtbot):
    win = window
    win.set_document(core.Document())
    frame_id = win.add_comment("frame")
    item = win.scene.comment_items[frame_id]
    x, y, w, h = item.entry["rect"]
    win.view.centerOn(item)
    corner = item.mapToScene(item.rect.bottomRight()) - QPointF(4, 4)
    drag(win.view, corner, corner + QPointF(120, 80), steps=6)
    entry = next(c for c in win.controller.doc.ui["comments"] if c["id"] == frame_id)
    assert entry["rect"][:2] == [x, y]                   # the corner moved, not the frame
    assert abs(entry["rect"][2] - (w + 120)) <= 2 and abs(entry["rect"][3] - (h + 80)) <= 2
    assert win.controller.stack.undoText() == "Resize frame"
    item = win.scene.comment_items[frame_id]             # the canvas follows the document
    assert abs(item.rect.width() - (w + 120)) <= 2
    win.controller.stack.undo()                          # the whole drag is one step
    assert win.scene.comment_items[frame_id].entry["rect"] == [x, y, w, h]
    win.controller.stack.undo()
    assert frame_id not in win.scene.comment_items


def test_load_errors_show_and_open_nothing(window, tmp_path):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"))
    before = win.controller.doc.to_dict()
    bad = tmp_path / "bad.wg.json"
    bad.write_text(json.dumps({"format": "wiregrad.graph", "version": 1, "graph": {
        "nodes": [{"id": "a", "type": "NoSuchType"}], "edges": []}}))
    shown = []
    win.show_load_errors = lambda path, errors: shown.append((path, errors))
    assert not win.open_path(str(bad))
    assert shown and "NoSuchType" in shown[0][1][0].message
    assert win.controller.doc.to_dict() == before


def test_title_marks_unsaved_changes(window, tmp_path):
    win = window
    path = tmp_path / "t.wg.json"
    assert win.save_as(str(path))
    assert not win.isWindowModified()
    win.controller.add_node("ReLU", (0, 0))
    assert win.isWindowModified() and "[*]" in win.windowTitle()
    win.controller.stack.undo()
    assert not win.isWindowModified()


def test_autosave_and_restore_after_a_crash(window, qtbot, monkeypatch):
    import subprocess
    import sys

    from wiregrad.app.window import MainWindow

    win = window
    win.controller.add_node("Tanh", (40, 40))
    assert win.recovery.autosave()
    assert not win.recovery.autosave()  # nothing new since
    # the crash: the window's lock now names a process that has ended
    lock = win.recovery.folder / f"{win.recovery.stem}.lock.json"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    lock.write_text(json.dumps({"pid": int(gone.stdout), "start": None, "path": None}))
    win.recovery.stem = None
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, original: True)
    other = MainWindow()
    qtbot.addWidget(other)
    assert other.offer_recovery()
    assert other.controller.doc.graph.node("tanh") is not None
    assert other.isWindowModified()
    other.restored_dirty = False


def test_every_example_loads_into_the_canvas(window):
    # Documents only: training an example writes NAME-run/ folders beside them.
    paths = sorted(Path(EXAMPLES).glob("*.wg.json"))
    assert len(paths) >= 10, f"no examples found in {EXAMPLES}"
    for path in paths:
        name = path.name
        assert window.open_path(str(path)), name
        doc = window.controller.doc
        assert set(window.scene.node_items) == {n.id for n in doc.graph.nodes}
        assert len(window.scene.wire_items) == len(doc.graph.edges)
        window.validator.run_now()
        assert window.validator.result.errors == [], (name, window.validator.result.errors)
        assert core.loads(json.dumps(doc.to_dict())).to_dict() == doc.to_dict()


def test_renaming_a_body_input_moves_the_wire_on_the_enclosing_port(window):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "sequence-rnn.wg.json"))
    c = win.controller
    original = c.doc.to_dict()
    c.open_graph(("rnn", "body"))
    assert c.rename("step", "x_t")
    assert any(e.to_dict() == {"from": "seq.y", "to": "rnn.x_t"} for e in c.doc.graph.edges)
    win.validator.run_now()
    assert win.validator.result.errors == []
    c.stack.undo()
    assert c.doc.to_dict() == original


def test_renaming_a_block_input_rewires_every_instance(window):
    win = window
    assert win.open_path(os.path.join(EXAMPLES, "blocks-and-gate.wg.json"))
    c = win.controller
    definition = c.doc.blocks["Residual"]
    old = next(n.id for n in definition.nodes if n.type == "Input")
    c.open_graph(("@Residual",))
    assert win.breadcrumb.text() == "main › @Residual"
    assert c.rename(old, "features")
    for inst in ("res1", "res2"):
        assert c.doc.graph.edge_into(inst, "features") is not None
    win.validator.run_now()
    assert win.validator.result.errors == []


def test_a_node_is_made_to_share_another_nodes_weights_from_the_inspector(window):
    from wiregrad.app.items import ShareItem

    from tests.test_shared_weights import _siamese

    doc = _siamese(None, None)
    window.set_document(doc)
    scene, inspector = window.scene, window.inspector
    assert not scene.share_items
    scene.select_nodes(["f2"])
    box = inspector.shares_box
    assert [box.itemText(i) for i in range(box.count())] == ["(its own)", "f1"]
    box.activated.emit(1)
    assert doc.graph.node("f2").shares == "f1"
    (link,) = scene.share_items  # a dashed line from the sharer to the owner
    assert isinstance(link, ShareItem) and (link.sharer.node_id, link.owner.node_id) == ("f2", "f1")
    scene.select_nodes(["two"])
    assert [inspector.shares_box.itemText(i) for i in range(inspector.shares_box.count())] == [
        "(its own)", "one"]  # a Block instance shares with an instance of its own block
    window.controller.stack.undo()
    assert doc.graph.node("f2").shares is None and not scene.share_items
    scene.select_nodes(["d"])
    assert inspector.shares_box is None  # a Sub has no tensors to share
