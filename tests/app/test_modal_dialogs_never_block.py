"""No app test can hang on a modal dialog.

- Every modal the app can open (message boxes, file and input dialogs, any QDialog) answers
  at once in a test, with the safe answer unless the test queued another, and is recorded so a
  test can say what the user was told (the `dialogs` fixture, tests/app/conftest.py).
- A test stuck in a real modal anyway is ended by pytest-timeout, as configured in
  pyproject.toml, with the stack of where it was stuck.
- A menu is shown as `QMenu.exec(menu, pos)`: PySide sends a bound `menu.exec(pos)` (QMenu's
  exec is also a static overload) straight to Qt, past the test's fake, so the app never writes
  it.
"""

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMessageBox

ROOT = Path(__file__).resolve().parents[2]


def test_a_message_box_answers_at_once_with_what_keeps_the_work(dialogs):
    box = QMessageBox(QMessageBox.Warning, "Unsaved changes", "Save them?",
                      QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel)
    assert box.exec() == QMessageBox.Cancel
    assert QMessageBox.question(None, "Restore?", "Restore it?") == QMessageBox.No
    assert QMessageBox.warning(None, "Save failed", "disk full") == QMessageBox.Ok
    assert dialogs.kinds() == ["QMessageBox", "question", "warning"]
    assert dialogs.texts() == ["Unsaved changes: Save them?", "Restore?: Restore it?",
                               "Save failed: disk full"]


def test_a_test_can_queue_the_answers(dialogs, tmp_path):
    dialogs.answer(QMessageBox.Yes, str(tmp_path / "a.wg.json"), "some text", QDialog.Accepted)
    assert QMessageBox.question(None, "Restore?", "Restore it?") == QMessageBox.Yes
    assert QFileDialog.getSaveFileName(None, "Save")[0] == str(tmp_path / "a.wg.json")
    assert QInputDialog.getMultiLineText(None, "Comment", "Text:", "") == ("some text", True)
    assert QDialog().exec() == QDialog.Accepted
    # nothing queued: cancelled, as a user closing the dialog would
    assert QFileDialog.getOpenFileName(None, "Open") == ("", "")
    assert QInputDialog.getText(None, "Name", "Name:") == ("", False)
    assert QFileDialog(None, "Open graph").exec() == QDialog.Rejected


def test_an_answer_can_work_the_dialog_itself(dialogs, tmp_path):
    path = str(tmp_path / "picked.wg.json")

    def pick(dialog):
        dialog.selectFile(path)
        return QDialog.Accepted

    dialogs.answer(pick)
    dialog = QFileDialog(None, "Open graph")
    dialog.setOption(QFileDialog.DontUseNativeDialog, True)
    assert dialog.exec() == QDialog.Accepted
    assert dialog.selectedFiles() == [path]


def test_the_guard_outlives_a_tests_own_monkeypatch_undo(monkeypatch):
    # A test that undoes its patches early must not leave its windows' closing to real dialogs.
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: None)
    monkeypatch.undo()
    for cls, name in ((QMessageBox, "exec"), (QDialog, "exec"), (QMessageBox, "warning"),
                      (QFileDialog, "getOpenFileName")):
        assert is_fake(cls, name), f"{cls.__name__}.{name} is Qt's own again"


def is_fake(cls, name: str) -> bool:
    """Whether cls.name is a Python function (the guard's), not Qt's C++ one."""
    attr = inspect.getattr_static(cls, name)
    return inspect.isfunction(attr.__func__ if isinstance(attr, staticmethod) else attr)


def test_opening_a_folder_as_a_document_says_why_and_does_not_block(window, dialogs, tmp_path):
    # what the quick start's run folder beside the examples did to the canvas test
    (tmp_path / "spiral-mlp-run").mkdir()
    assert not window.open_path(str(tmp_path / "spiral-mlp-run"))
    assert dialogs.kinds() == ["QMessageBox"]
    assert "spiral-mlp-run" in dialogs.texts()[0]


def test_a_test_stuck_in_a_real_modal_is_ended_by_the_timeout(tmp_path):
    (tmp_path / "test_stuck.py").write_text(textwrap.dedent("""
        from PySide6.QtWidgets import QMessageBox

        def test_stuck(qapp):
            QMessageBox(QMessageBox.Critical, "Nobody answers", "x", QMessageBox.Ok).exec()
    """))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    # the project's own pytest settings (the timeout method), with a short timeout
    command = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
               "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-p", "no:randomly",
               "--timeout", "3", str(tmp_path / "test_stuck.py")]
    done = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=90)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Timeout" in output and "test_stuck" in output, output


def _bound_menu_execs(source: str) -> list:
    """Lines calling exec on a variable or attribute named like a menu (`menu.exec(...)`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("exec", "exec_"):
            receiver = node.func.value
            name = receiver.id if isinstance(receiver, ast.Name) else \
                receiver.attr if isinstance(receiver, ast.Attribute) else ""
            if "menu" in name.lower() and name != "QMenu":  # QMenu.exec(menu, pos) is faked
                found.append(node.lineno)
    return found


def test_no_menu_is_shown_by_a_bound_exec_that_no_test_could_answer():
    assert _bound_menu_execs("menu.exec(pos)\nself.menu.exec_(p)\nQMenu.exec(menu, pos)") \
        == [1, 2]
    offenders = [f"{path.relative_to(ROOT)}:{line}"
                 for path in sorted((ROOT / "app").rglob("*.py"))
                 for line in _bound_menu_execs(path.read_text(encoding="utf-8"))]
    assert offenders == [], "show menus as QMenu.exec(menu, pos): " + ", ".join(offenders)

