"""The entry point: `wiregrad [FILE]` opens the window with the file, or with an example."""

import os

from PySide6.QtCore import QSettings, QTimer
from wiregrad.app import main as app_main
from wiregrad.app.window import MainWindow

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")


def test_help(capsys):
    assert app_main.main(["--help"]) == 0
    assert "wiregrad [FILE]" in capsys.readouterr().out


def test_no_file_opens_the_spiral_example(qtbot, monkeypatch):
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, original: False)
    window = app_main.open_window([])
    qtbot.addWidget(window)
    assert window.controller.doc.graph.node("hidden1") is not None
    assert window.controller.doc.path is None  # an example opens as an unsaved copy


def test_a_file_argument_opens_it_and_remembers_it(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, original: False)
    path = os.path.abspath(os.path.join(EXAMPLES, "sequence-rnn.wg.json"))
    window = app_main.open_window([path])
    qtbot.addWidget(window)
    assert window.controller.doc.path == path
    assert QSettings().value("recent")[0] == path
    action = window.recent_menu.actions()[0]
    assert action.text() == "sequence-rnn.wg.json" and action.data() == path
    window.close()
    assert QSettings().value("window/geometry") is not None


def test_main_runs_the_event_loop(monkeypatch, qapp):
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, original: False)
    QTimer.singleShot(200, lambda: app_main.QApplication.instance().quit())
    assert app_main.main([]) == 0
    # A quit exec() leaves nested event loops returning at once, so later tests' timers would
    # never fire; one more exec() that quits at once puts the loop state right.
    QTimer.singleShot(0, qapp.quit)
    qapp.exec()


def test_shape_field_marks_invalid_text(window):
    assert window.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"))
    window.scene.select_nodes(["x"])
    edit = window.inspector.editors["shape"]
    edit.textEdited.emit("2, banana")
    assert edit.property("invalid") is True
    edit.setText("2, banana")
    edit.editingFinished.emit()
    assert window.controller.doc.graph.node("x").params["shape"] == [2]
    assert "cannot read" in window.inspector.message.text()
    edit.setText("5")
    edit.editingFinished.emit()
    assert window.controller.doc.graph.node("x").params["shape"] == [5]
