"""pytest-qt setup for the editor: offscreen Qt, settings and recovery files in a temp dir."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, qapp):
    QCoreApplication.setOrganizationName("WiregradTest")
    QCoreApplication.setApplicationName("WiregradTest")
    QSettings.setDefaultFormat(QSettings.IniFormat)
    for scope in (QSettings.UserScope, QSettings.SystemScope):
        QSettings.setPath(QSettings.IniFormat, scope, str(tmp_path / "settings"))
    yield tmp_path / "settings"


@pytest.fixture
def window(qtbot, monkeypatch):
    from app import main as app_main
    from app.window import MainWindow

    app_main.make_app()
    monkeypatch.setattr(MainWindow, "ask_unsaved", lambda self: "discard")
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, original: False)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.resize(1280, 800)
    qtbot.waitExposed(win)
    yield win
    win.controller.stack.setClean()
    win.restored_dirty = False
