"""The inspector's field for sizes that are an int or a pair [h, w] (Conv2D's kernel_size, a
pool's stride): two spin boxes and a link toggle, as a user edits them."""

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from wiregrad.app.pair_field import PairField


def type_into(box, text: str) -> None:
    box.selectAll()
    QTest.keyClicks(box, text)
    QTest.keyClick(box, Qt.Key_Return)


def select_new(window, type_name: str):
    node_id = window.controller.add_node(type_name, (100, 100))
    window.scene.select_nodes([node_id])
    return node_id, window.controller.doc.graph.node(node_id)


def test_a_square_kernel_is_one_number_and_unlinking_makes_it_a_pair(window, qtbot):
    conv_id, conv = select_new(window, "Conv2D")
    field = window.inspector.editors["kernel_size"]
    assert isinstance(field, PairField)
    assert field.linked() and (field.h.value(), field.w.value()) == (3, 3)
    assert not field.w.isEnabled() and field.link.text() == "="  # the width follows

    type_into(field.h, "5")
    assert conv.params["kernel_size"] == 5
    assert field.w.value() == 5

    qtbot.mouseClick(field.link, Qt.LeftButton)  # unlink: the document now holds a pair
    assert conv.params["kernel_size"] == [5, 5]
    assert field.w.isEnabled() and field.link.text() == "≠"
    type_into(field.w, "3")
    assert conv.params["kernel_size"] == [5, 3]
    assert window.scene.node_items[conv_id].summary == "Conv2D 8 5x3"

    qtbot.mouseClick(field.link, Qt.LeftButton)  # link again: one number, the height
    assert conv.params["kernel_size"] == 5
    assert window.scene.node_items[conv_id].summary == "Conv2D 8 5x5"

    window.controller.stack.undo()
    assert conv.params["kernel_size"] == [5, 3]
    assert not field.linked() and (field.h.value(), field.w.value()) == (5, 3)


def test_the_field_shows_what_the_document_holds(window):
    conv_id, _ = select_new(window, "Conv2D")
    field = window.inspector.editors["stride"]
    assert field.linked() and field.value() == 1
    window.controller.set_param([conv_id], "stride", [2, 1])
    assert not field.linked() and field.value() == [2, 1]
    window.controller.set_param([conv_id], "stride", 4)
    assert field.linked() and (field.h.value(), field.w.value()) == (4, 4)


def test_arrow_steps_apply_and_the_range_keeps_sizes_valid(window):
    _, conv = select_new(window, "Conv2D")
    field = window.inspector.editors["padding"]
    field.h.stepUp()
    assert conv.params["padding"] == 1
    field.h.stepDown()
    field.h.stepDown()  # padding's minimum is 0: no step below it
    assert conv.params["padding"] == 0
    assert window.inspector.editors["dilation"].h.minimum() == 1


def test_a_pools_stride_may_be_null_meaning_the_kernel_size(window):
    _, pool = select_new(window, "MaxPool2D")
    field = window.inspector.editors["stride"]
    assert field.value() is None and field.h.text() == "null"
    field.h.stepUp()
    assert pool.params["stride"] == 1
    field.link.click()
    type_into(field.w, "2")
    assert pool.params["stride"] == [1, 2]
    field.h.stepDown()  # back to null: a pair holds no null, so the boxes link again
    assert "stride" not in pool.params  # null is the default: the param is left out
    assert field.linked() and field.w.text() == "null"
