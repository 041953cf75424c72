"""The menus: every key does what the menu says, Help lists them, Graph > Arrange lays out."""

import sys
import types

import pytest
import wiregrad.app.window as window_module
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from wiregrad.app import help


class X11KeySequence(QKeySequence):
    """Key sequences as an X11 desktop gives them, where the standard Redo is Ctrl+Shift+Z
    (offscreen Qt says Ctrl+Y, which hid the clash)."""

    def __init__(self, *args):
        if args and args[0] == QKeySequence.StandardKey.Redo:
            args = ("Ctrl+Shift+Z",)
        super().__init__(*args)


def _edit_then_undo(window) -> int:
    """Add a node and undo it; the number of nodes, which a redo makes one more."""
    count = len(window.controller.doc.graph.nodes)
    window.controller.add_node("ReLU", (0, 0))
    window.controller.stack.undo()
    assert len(window.controller.doc.graph.nodes) == count
    window.view.setFocus()
    return count


def _menu(window, title):
    return next(a.menu() for a in window.menuBar().actions()
                if a.menu() is not None and a.menu().title().replace("&", "") == title)


@pytest.fixture
def x11_keys(monkeypatch):
    monkeypatch.setattr(window_module, "QKeySequence", X11KeySequence)


def test_ctrl_shift_z_and_ctrl_y_redo(x11_keys, window):
    for key, modifiers in ((Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier),
                           (Qt.Key_Y, Qt.ControlModifier)):
        count = _edit_then_undo(window)
        QTest.keyClick(window, key, modifiers)
        assert len(window.controller.doc.graph.nodes) == count + 1, key


def test_the_edit_menu_shows_a_redo_key_that_works(window):
    redo = next(a for a in _menu(window, "Edit").actions() if a is window.act_redo)
    assert redo.shortcut().toString() == "Ctrl+Shift+Z"
    count = _edit_then_undo(window)
    QTest.keyClick(window, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert len(window.controller.doc.graph.nodes) == count + 1


def test_no_key_is_bound_twice(window):
    bound = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            bound.setdefault(key.toString(), []).append(action.text())
    assert {k: v for k, v in bound.items() if len(v) > 1} == {}


def test_keyboard_shortcuts_lists_the_menus_keys_and_the_canvas_gestures(window):
    window.act_shortcuts.trigger()
    dialog = window.findChild(help.ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()
    rows = dict(dialog.rows())
    assert rows["Redo"] == "Ctrl+Shift+Z, Ctrl+Y"
    assert rows["Undo"] == "Ctrl+Z"
    assert rows["Arrange"] == "Ctrl+Shift+L"
    assert rows["Search blocks to add at the cursor"].startswith("Tab")
    assert "Ctrl+drag" in rows["Add to the selection"]
    assert "Delete" in rows and "Canvas" in rows


def test_the_shortcut_list_follows_the_actions(window):
    """Built from the menus each time, it cannot go stale: a new key shows up."""
    extra = QAction("Frobnicate", window)
    extra.setShortcut(QKeySequence("Ctrl+Alt+K"))
    _menu(window, "Graph").addAction(extra)
    dialog = help.show_shortcuts(window)
    assert ("Frobnicate", "Ctrl+Alt+K") in dialog.rows()
    assert help.show_shortcuts(window) is dialog  # one list, brought forward


def test_about_names_the_versions_and_the_licence(window, dialogs):
    window.act_about.trigger()
    shown = dialogs.shown[-1]
    assert shown.kind == "about" and shown.title == "About Wiregrad"
    import numpy
    import PySide6
    assert help.version() in shown.text and help.version()[0].isdigit()
    for part in (f"PySide6 {PySide6.__version__}", f"numpy {numpy.__version__}", "MIT", "README"):
        assert part in shown.text


def test_help_menu(window):
    titles = [a.text() for a in _menu(window, "Help").actions()]
    assert titles == ["&Keyboard Shortcuts", "&About Wiregrad"]


def _fake_arrange(monkeypatch, lacks=False):
    calls = []

    def arrange(controller, ref=None):
        calls.append(tuple(ref or ()))
        graph = controller.doc.graph_at(tuple(ref or ()))
        controller.move_nodes({node.id: (node.pos, [i * 200, 0]) for i, node in enumerate(graph.nodes)})

    fake = types.ModuleType("wiregrad.app.arrange")
    fake.arrange = arrange
    fake.lacks_positions = lambda doc: lacks
    monkeypatch.setitem(sys.modules, "wiregrad.app.arrange", fake)
    return calls


def test_graph_arrange_lays_out_the_graph_shown(window, monkeypatch):
    calls = _fake_arrange(monkeypatch)
    assert window.act_arrange in _menu(window, "Graph").actions()
    window.controller.add_node("ReLU", (0, 0))
    window.view.setFocus()
    QTest.keyClick(window, Qt.Key_L, Qt.ControlModifier | Qt.ShiftModifier)
    assert calls == [()]
    window.act_arrange.trigger()
    assert calls == [(), ()]


def test_a_document_without_positions_opens_arranged_and_unmodified(window, monkeypatch, tmp_path):
    calls = _fake_arrange(monkeypatch, lacks=True)
    path = tmp_path / "hand.wg.json"
    path.write_text('{"format": "wiregrad.graph", "version": 2, "graph": {"nodes": ['
                    '{"id": "x", "type": "Input", "params": {"shape": [2]}},'
                    '{"id": "y", "type": "Output"}], "edges": [{"from": "x.y", "to": "y.x"}]}}')
    assert window.open_path(str(path))
    assert calls == [()]
    assert not window.isWindowModified() and window.controller.stack.count() == 0
    QApplication.processEvents()


def test_a_placed_document_is_not_rearranged(window, monkeypatch):
    calls = _fake_arrange(monkeypatch, lacks=False)
    assert window.open_path(window_module.EXAMPLES / "spiral-mlp.wg.json", example=True)
    assert calls == []


def test_without_the_layout_module_arrange_says_so(window, monkeypatch):
    monkeypatch.setitem(sys.modules, "wiregrad.app.arrange", None)  # import fails as if it were missing
    window.act_arrange.trigger()
    assert "not available" in window.statusBar().currentMessage()


HAND_WRITTEN = ('{"format": "wiregrad.graph", "version": 2, "graph": {"nodes": ['
                '{"id": "x", "type": "Input", "params": {"shape": [2]}},'
                '{"id": "fc", "type": "Linear", "params": {"out_features": 3}},'
                '{"id": "y", "type": "Output"}],'
                '"edges": [{"from": "x.y", "to": "fc.x"}, {"from": "fc.y", "to": "y.x"}]}}')


def test_a_hand_written_document_opens_laid_out_left_to_right(window, tmp_path):
    pytest.importorskip("wiregrad.app.arrange")
    path = tmp_path / "hand.wg.json"
    path.write_text(HAND_WRITTEN)
    assert window.open_path(str(path))
    xs = [node.pos[0] for node in window.controller.doc.graph.nodes]
    assert xs == sorted(xs) and len(set(xs)) == 3   # one column per layer, in wiring order
    assert not window.isWindowModified() and window.controller.stack.count() == 0
