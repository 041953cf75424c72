"""The canvas view: pan, zoom to cursor, rubber band, keyboard search, level of detail."""

from editor_helpers import center, drag
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtTest import QTest


def test_wheel_zoom_keeps_the_point_under_the_cursor(window):
    view = window.view
    window.controller.add_node("ReLU", (0, 0))
    view.centerOn(0, 0)
    cursor = QPoint(300, 200)
    before = view.mapToScene(cursor)
    zoom = view.zoom()
    view.zoom_by(1.5, cursor)
    after = view.mapToScene(cursor)
    assert view.zoom() > zoom
    assert abs(before.x() - after.x()) < 2 and abs(before.y() - after.y()) < 2


def test_middle_button_and_space_drag_pan(window, qtbot):
    view = window.view
    vp = view.viewport()
    start = view.mapToScene(vp.rect().center())
    QTest.mousePress(vp, Qt.MiddleButton, Qt.NoModifier, QPoint(300, 300))
    QTest.mouseMove(vp, QPoint(200, 250))
    QTest.mouseRelease(vp, Qt.MiddleButton, Qt.NoModifier, QPoint(200, 250))
    moved = view.mapToScene(vp.rect().center())
    assert moved.x() > start.x() + 50
    view.setFocus()
    QTest.keyPress(view, Qt.Key_Space)
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, QPoint(300, 300))
    QTest.mouseMove(vp, QPoint(300, 200))
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, QPoint(300, 200))
    QTest.keyRelease(view, Qt.Key_Space)
    assert view.mapToScene(vp.rect().center()).y() > moved.y() + 50
    assert window.controller.stack.count() == 0  # panning is not an edit


def test_rubber_band_selects_and_f_frames_the_selection(window):
    c = window.controller
    for i in range(3):
        c.add_node("Tanh", (i * 200, 0))
    view = window.view
    view.resetTransform()
    view.centerOn(200, 40)
    window.scene.clearSelection()
    drag(view, QPointF(-60, -60), QPointF(260, 120))
    assert window.scene.selected_node_ids() == ["tanh", "tanh_2"]
    assert window.inspector.ids == ["tanh", "tanh_2"]
    view.frame_selection()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(center(window.scene, "tanh")) and visible.contains(center(window.scene, "tanh_2"))


def test_tab_opens_search_and_enter_adds_at_the_cursor(window):
    view = window.view
    view.setFocus()
    QTest.keyClick(view, Qt.Key_Tab)
    popup = view.popup
    assert popup is not None and popup.isVisible()
    QTest.keyClicks(popup.edit, "linear")
    assert popup.list.currentItem().text() == "Linear"
    QTest.keyClick(popup.edit, Qt.Key_Return)
    node = window.controller.doc.graph.nodes[-1]
    assert node.type == "Linear" and node.params == {"out_features": 16}


def test_palette_filter(window):
    window.palette.filter.setText("conv")
    assert window.palette.visible_types() == ["Conv1D", "Conv2D", "ConvTranspose2D"]
    window.palette.filter.setText("")
    assert len(window.palette.visible_types()) > 20


def test_zoomed_out_draws_plain_boxes_fast(window):
    c = window.controller
    for i in range(50):
        c.add_node("ReLU", ((i % 10) * 200, (i // 10) * 150))
    view = window.view
    view.resetTransform()
    view.scale(0.2, 0.2)
    image = QImage(view.viewport().size(), QImage.Format_ARGB32_Premultiplied)
    painter = QPainter(image)
    view.render(painter)
    painter.end()
    assert not image.isNull()


def test_comment_text_edit_is_undoable(window):
    note = window.add_comment("note")
    window.set_comment_text(note, "explain the network")
    assert window.scene.comment_items[note].entry["text"] == "explain the network"
    window.controller.stack.undo()
    assert window.scene.comment_items[note].entry["text"] == "Note"


def test_dragging_a_frame_carries_its_nodes_in_one_step(window):
    c = window.controller
    c.add_node("ReLU", (0, 0))
    c.add_node("Tanh", (600, 0))
    window.scene.select_nodes(["relu"])
    frame_id = window.add_comment("frame")
    frame = window.scene.comment_items[frame_id]
    view = window.view
    view.resetTransform()
    view.centerOn(frame.sceneBoundingRect().center())
    window.scene.clearSelection()
    count = c.stack.count()
    grip = frame.sceneBoundingRect().topLeft() + QPointF(15, 10)
    drag(view, grip, grip + QPointF(100, 60), steps=6)
    assert c.stack.count() == count + 1
    assert c.doc.graph.node("relu").pos == [100, 60]
    assert c.doc.graph.node("tanh").pos == [600, 0]
    entry = c.doc.ui["comments"][0]
    c.stack.undo()
    assert c.doc.graph.node("relu").pos == [0, 0]
    assert c.doc.ui["comments"][0]["rect"] != entry["rect"]
