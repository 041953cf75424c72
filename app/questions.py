"""The window's dialogs: each question or report is one method, so tests can answer it.

A mixin of MainWindow (window.py): `ask_open_path`, `ask_save_path`, `ask_unsaved`,
`ask_restore`, `show_load_errors`, `show_save_error`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from ..core.errors import GraphError
from . import recent

FILE_FILTER = "Wiregrad graphs (*.wg.json);;JSON (*.json);;All files (*)"
# What saving can raise for a reason of the user's disk or text (core.fileio.SaveError is a
# GraphError): anything else is our bug, and is not caught.
SAVE_ERRORS = (GraphError, OSError, UnicodeEncodeError)


def save_error_text(path, exc: Exception) -> str:
    """One line saying why `path` could not be written, never quoting the document."""
    if isinstance(exc, GraphError):
        return str(exc)
    if isinstance(exc, UnicodeEncodeError):
        return (f"{path}: the document holds text that cannot be written as UTF-8 "
                "(a broken character, as from a damaged file); edit that text and save again")
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror or type(exc).__name__}"
    return f"{path}: {exc}"


class Questions:
    """The dialogs' part of MainWindow."""

    def ask_open_path(self) -> str:
        dialog = QFileDialog(self, "Open graph", self.start_folder(), FILE_FILTER)
        dialog.setOption(QFileDialog.DontUseNativeDialog, True)
        dialog.setFileMode(QFileDialog.ExistingFile)
        return dialog.selectedFiles()[0] if dialog.exec() else ""

    def ask_save_path(self) -> str:
        dialog = QFileDialog(self, "Save graph", self.start_folder(), FILE_FILTER)
        dialog.setOption(QFileDialog.DontUseNativeDialog, True)
        dialog.setAcceptMode(QFileDialog.AcceptSave)
        dialog.setDefaultSuffix("wg.json")
        dialog.selectFile(self.suggested_file_name())
        return dialog.selectedFiles()[0] if dialog.exec() else ""

    def start_folder(self) -> str:
        """Where the file dialogs open: the document's own folder; for a new document or an
        example, the folder of the file opened or saved last; else the home folder. Never the
        examples' folder, which belongs to the installation."""
        path = self.controller.doc.path
        if path and Path(path).parent.is_dir():
            return str(Path(path).parent)
        return recent.last_folder() or str(Path.home())

    def suggested_file_name(self) -> str:
        """The document's file name; for an example, the example's; else "untitled"."""
        path = self.controller.doc.path or self.example_file
        return Path(path).name if path else "untitled.wg.json"

    def ask_unsaved(self) -> str:
        box = QMessageBox(QMessageBox.Warning, "Unsaved changes",
                          "The graph has unsaved changes. Save them?",
                          QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, self)
        answer = box.exec()
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    def ask_restore(self, original) -> bool:
        where = f" of {original}" if original else ""
        answer = QMessageBox.question(self, "Restore unsaved work?",
                                      f"Wiregrad found unsaved work{where} from a window that did "
                                      "not close cleanly. Restore it? (No discards it.)")
        return answer == QMessageBox.Yes

    def show_load_errors(self, path: str, errors: list) -> None:
        lines = [f"• {getattr(e, 'message', str(e))}" for e in errors]
        box = QMessageBox(QMessageBox.Critical, "Cannot open file",
                          f"{path} could not be opened:", QMessageBox.Ok, self)
        box.setInformativeText("\n".join(lines[:20]) + ("\n…" if len(lines) > 20 else ""))
        box.exec()

    def show_save_error(self, text: str) -> None:
        QMessageBox.warning(self, "Save failed", f"{text}\n\nThe window keeps your changes.")
