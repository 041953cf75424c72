"""Autosave to a recovery file beside the settings, and the offer to restore after a crash.

Every 30 s, if the document changed since the last autosave and has unsaved work, its text is
written (atomically) to `recovery.wg.json`, with `recovery.json` naming the file it came from.
A clean exit, a save or a discarded change removes both; finding them at start means a crash.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer

from core.fileio import atomic_write, dumps

INTERVAL_MS = 30_000


def recovery_dir() -> Path:
    return Path(QSettings().fileName()).parent


class Recovery(QObject):
    def __init__(self, window, interval_ms: int = INTERVAL_MS):
        super().__init__(window)
        self.window = window
        self.folder = recovery_dir()
        self.text_path = self.folder / "recovery.wg.json"
        self.meta_path = self.folder / "recovery.json"
        self.saved_revision = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()

    def autosave(self) -> bool:
        doc = self.window.controller.doc
        if not self.window.is_dirty() or doc.revision == self.saved_revision:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.text_path, dumps(doc).encode("utf-8"))
        atomic_write(self.meta_path, json.dumps({"path": doc.path}).encode("utf-8"))
        self.saved_revision = doc.revision
        return True

    def clear(self) -> None:
        for path in (self.text_path, self.meta_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        self.saved_revision = None

    def pending(self):
        """(document text, original path or None) left by a crash, or None."""
        try:
            text = self.text_path.read_text(encoding="utf-8")
        except OSError:
            return None
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        return text, meta.get("path")
