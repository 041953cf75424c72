"""pytest-qt setup for the editor: offscreen Qt, settings and recovery files in a temp dir, and
no modal dialog that can block.

Under offscreen Qt nobody answers a modal dialog, and pytest-timeout cannot interrupt a test
stuck in one by a signal (Qt's event loop never hands control back to Python). So every way the
app opens one (QMessageBox's helpers and exec, QDialog.exec, the QFileDialog and QInputDialog
getters, QMenu.exec, QDrag.exec) is replaced for every test here by a fake that records what
was shown and answers at once: the next answer a test queued (`dialogs.answer(...)`), else the
safe one (Cancel, No, Ok; a file or text dialog cancelled; a dialog rejected).
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from dataclasses import dataclass, field

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings, Qt
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMenu, QMessageBox

# Safest first: what leaves the user's work as it is.
SAFE_BUTTONS = (QMessageBox.Cancel, QMessageBox.Abort, QMessageBox.No, QMessageBox.NoToAll,
                QMessageBox.Close, QMessageBox.Ignore, QMessageBox.Ok)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, qapp):
    QCoreApplication.setOrganizationName("WiregradTest")
    QCoreApplication.setApplicationName("WiregradTest")
    QSettings.setDefaultFormat(QSettings.IniFormat)
    for scope in (QSettings.UserScope, QSettings.SystemScope):
        QSettings.setPath(QSettings.IniFormat, scope, str(tmp_path / "settings"))
    yield tmp_path / "settings"


@dataclass
class Shown:
    """One modal the app tried to show: `kind` is the helper or class that showed it."""

    kind: str
    title: str = ""
    text: str = ""
    informative: str = ""
    answer: object = None


@dataclass
class Dialogs:
    """What the app showed during a test, and the answers a test queued for the next ones.

    An answer is what the real dialog would give (a QMessageBox button, a path, a text, a
    QDialog result), or a callable that gets the dialog (or None, for a static helper) and
    returns that."""

    shown: list = field(default_factory=list)
    queued: list = field(default_factory=list)

    def answer(self, *answers) -> None:
        self.queued.extend(answers)

    def texts(self) -> list:
        return [f"{s.title}: {s.text} {s.informative}".strip() for s in self.shown]

    def kinds(self) -> list:
        return [s.kind for s in self.shown]

    def reply(self, record: Shown, default, dialog=None):
        answer = self.queued.pop(0) if self.queued else default
        if callable(answer) and not isinstance(answer, int):
            answer = answer(dialog)
        record.answer = answer
        self.shown.append(record)
        return answer


def _safe_button(buttons):
    buttons = QMessageBox.StandardButton(int(buttons))
    for button in SAFE_BUTTONS:
        if buttons & button:
            return button
    return QMessageBox.NoButton


def _args(args, kwargs, names, defaults=()):
    """Positional and keyword arguments of a Qt static helper, by name."""
    out = dict(zip(names, [*[None] * (len(names) - len(defaults)), *defaults]))
    out.update(zip(names, args))
    out.update(kwargs)
    return out


@pytest.fixture(autouse=True)
def dialogs():
    # A MonkeyPatch of its own: a test's monkeypatch.undo() must not take the guard away while
    # its windows are still to be closed (a dirty one asks whether to save). Autouse, so set
    # up before and torn down after any test's own patches of the same functions.
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _guard_dialogs(monkeypatch)


def _guard_dialogs(monkeypatch) -> Dialogs:
    record = Dialogs()

    def message_helper(kind, default_buttons):
        def fake(*args, **kwargs):
            a = _args(args, kwargs, ("parent", "title", "text", "buttons", "defaultButton"),
                      (default_buttons, QMessageBox.NoButton))
            answer = record.reply(Shown(kind, a["title"] or "", a["text"] or ""),
                                  _safe_button(a["buttons"]))
            return QMessageBox.StandardButton(int(answer))
        return staticmethod(fake)

    for kind, buttons in (("warning", QMessageBox.Ok), ("critical", QMessageBox.Ok),
                          ("information", QMessageBox.Ok),
                          ("question", QMessageBox.Yes | QMessageBox.No)):
        monkeypatch.setattr(QMessageBox, kind, message_helper(kind, buttons))

    def about(*args, **kwargs):
        a = _args(args, kwargs, ("parent", "title", "text"))
        record.reply(Shown("about", a["title"] or "", a["text"] or ""), None)
    monkeypatch.setattr(QMessageBox, "about", staticmethod(about))
    monkeypatch.setattr(QMessageBox, "aboutQt", staticmethod(
        lambda *args, **kwargs: record.reply(Shown("aboutQt"), None)))

    def box_exec(box):
        shown = Shown("QMessageBox", box.windowTitle(), box.text(), box.informativeText())
        return int(record.reply(shown, _safe_button(box.standardButtons()), box))

    def dialog_exec(dialog):
        shown = Shown(type(dialog).__name__, dialog.windowTitle())
        return int(record.reply(shown, QDialog.Rejected, dialog))

    monkeypatch.setattr(QMessageBox, "exec", box_exec)
    monkeypatch.setattr(QDialog, "exec", dialog_exec)
    for cls in (QMessageBox, QDialog):
        if hasattr(cls, "exec_"):
            monkeypatch.setattr(cls, "exec_", cls.exec)

    def file_getter(name, empty):
        def fake(*args, **kwargs):
            a = _args(args, kwargs, ("parent", "caption", "dir", "filter"))
            answer = record.reply(Shown(f"QFileDialog.{name}", a["caption"] or ""), empty)
            if name == "getExistingDirectory":
                return answer
            return answer if isinstance(answer, tuple) else (answer, "")
        return staticmethod(fake)

    for name, empty in (("getOpenFileName", ""), ("getSaveFileName", ""),
                        ("getOpenFileNames", []), ("getExistingDirectory", "")):
        monkeypatch.setattr(QFileDialog, name, file_getter(name, empty))

    def input_getter(name, empty):
        def fake(*args, **kwargs):
            a = _args(args, kwargs, ("parent", "title", "label"))
            shown = Shown(f"QInputDialog.{name}", a["title"] or "", a["label"] or "")
            answer = record.reply(shown, None)
            return (empty, False) if answer is None else (answer, True)
        return staticmethod(fake)

    for name, empty in (("getText", ""), ("getMultiLineText", ""), ("getInt", 0),
                        ("getDouble", 0.0), ("getItem", "")):
        monkeypatch.setattr(QInputDialog, name, input_getter(name, empty))

    monkeypatch.setattr(QMenu, "exec", lambda menu, *args, **kwargs: record.reply(
        Shown("QMenu", menu.title()), None, menu))
    monkeypatch.setattr(QDrag, "exec", lambda drag, *args, **kwargs: record.reply(
        Shown("QDrag"), Qt.IgnoreAction, drag))
    return record


_FINISHED_WINDOWS: list = []


def _delete_finished_windows() -> None:
    """Delete the windows of tests that have ended. pytest-qt only closes them, and each keeps
    ~90 widgets (its menus among them) alive and visited by every restyle. Not at the window's
    own teardown: the test's monkeypatch, undone after it, may still set attributes on them."""
    while _FINISHED_WINDOWS:
        win = _FINISHED_WINDOWS.pop()
        try:
            win.deleteLater()
        except RuntimeError:  # already deleted
            pass
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)


@pytest.fixture
def window(qtbot, monkeypatch):
    from wiregrad.app import main as app_main
    from wiregrad.app.window import MainWindow

    _delete_finished_windows()
    app_main.make_app()
    # The test's own monkeypatch, so that its patches of the same methods undo in order.
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
    _FINISHED_WINDOWS.append(win)
