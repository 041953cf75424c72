"""Copy, cut, paste and duplicate of the selected nodes, through the system clipboard.

A mixin of MainWindow (window.py). The graph travels as document text under its own MIME type,
and as plain text for other programs.
"""

from __future__ import annotations

import atexit

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication

CLIP_MIME = "application/x-wiregrad-graph"


class Clipboard:
    """The clipboard's part of MainWindow."""

    def copy(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        text = self.controller.copy_text(ids)
        mime = QMimeData()
        mime.setText(text)
        mime.setData(CLIP_MIME, text.encode("utf-8"))
        QGuiApplication.clipboard().setMimeData(mime)
        _release_clipboard_at_exit()

    def cut(self) -> None:
        self.copy()
        self.delete_selection()

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return
        text = bytes(mime.data(CLIP_MIME)).decode("utf-8") if mime.hasFormat(CLIP_MIME) else mime.text()
        if text:
            self.scene.select_nodes(self.controller.paste_text(text))

    def duplicate(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.scene.select_nodes(self.controller.paste_text(self.controller.copy_text(ids)))


_clipboard_guarded = False


def _release_clipboard_at_exit() -> None:
    """Clear our data from the clipboard before the interpreter exits.

    Left there, PySide6 destroys the clipboard's QMimeData after the application during
    shutdown, and the process ends in a segmentation fault (seen with PySide6 6.11 offscreen).
    atexit handlers run while the QApplication still exists.
    """
    global _clipboard_guarded
    if _clipboard_guarded:
        return
    _clipboard_guarded = True

    def release() -> None:
        app = QGuiApplication.instance()
        if app is not None:
            mime = QGuiApplication.clipboard().mimeData()
            if mime is not None and mime.hasFormat(CLIP_MIME):
                QGuiApplication.clipboard().clear()

    atexit.register(release)
