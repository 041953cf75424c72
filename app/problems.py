"""The problems dock: every error of the last analysis; clicking one jumps to its node."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem


class ProblemsList(QListWidget):
    jump = Signal(str)   # a node path

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)
        self.error_count = 0

    def show_errors(self, errors: list) -> None:
        self.clear()
        if not errors:
            placeholder = QListWidgetItem("✓  No problems: every node checks out.")
            placeholder.setFlags(Qt.NoItemFlags)
            self.addItem(placeholder)
            self.error_count = 0
            return
        self.error_count = len(errors)
        for err in errors:
            text = getattr(err, "message", None) or str(err)
            item = QListWidgetItem(f"⚠  {text}")
            item.setData(Qt.UserRole, getattr(err, "node", None) or "")
            item.setToolTip(text)
            self.addItem(item)

    def _clicked(self, item) -> None:
        path = item.data(Qt.UserRole)
        if path:
            self.jump.emit(path)
