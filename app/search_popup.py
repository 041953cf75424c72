"""Search-to-add: a small popup list of node types filtered as you type; Enter adds."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
)

from .. import nodes
from . import theme


def type_icon(category: str) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(theme.category_color(category)))
    return QIcon(pix)


def matches(query: str, name: str, category: str) -> bool:
    """Every typed word appears in the name or category (case-insensitive)."""
    hay = f"{name} {category}".lower()
    return all(word in hay for word in query.lower().split())


def rank(query: str, name: str) -> int:
    """0 for the exact name, 1 for a prefix, 2 for anything else that matches."""
    q, n = query.strip().lower(), name.lower()
    return 0 if q == n else 1 if q and n.startswith(q) else 2


class SearchPopup(QFrame):
    chosen = Signal(str)

    def __init__(self, parent=None, type_filter=None):
        super().__init__(parent, Qt.Popup)
        self.setFrameShape(QFrame.StyledPanel)
        self.setObjectName("searchPopup")
        self.type_filter = type_filter
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Add a node…")
        self.list = QListWidget(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        self.resize(260, 320)
        self.edit.textChanged.connect(self.refilter)
        self.edit.returnPressed.connect(self.accept_current)
        self.list.itemActivated.connect(lambda _item: self.accept_current())
        self.edit.installEventFilter(self)
        self.refilter("")

    def refilter(self, text: str) -> None:
        self.list.clear()
        found = []
        for name, node_type in nodes.all_types().items():
            if self.type_filter is not None and not self.type_filter(node_type):
                continue
            if matches(text, name, node_type.category):
                found.append((rank(text, name), name, node_type))
        for _, name, node_type in sorted(found, key=lambda f: (f[0], f[1])):
            if True:
                item = QListWidgetItem(type_icon(node_type.category), name)
                item.setToolTip(node_type.help)
                self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.edit and event.type() == event.Type.KeyPress:
            if event.key() in (Qt.Key_Down, Qt.Key_Up):
                row = self.list.currentRow() + (1 if event.key() == Qt.Key_Down else -1)
                self.list.setCurrentRow(max(0, min(row, self.list.count() - 1)))
                return True
            if event.key() == Qt.Key_Escape:
                self.close()
                return True
        return super().eventFilter(obj, event)

    def accept_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            name = item.text()
            self.close()
            self.chosen.emit(name)

    def popup_at(self, global_pos) -> None:
        self.move(global_pos)
        self.show()
        self.edit.setFocus()
