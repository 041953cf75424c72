"""The palette dock: node types by category, a filter box, drag a type onto the canvas."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .. import nodes
from .search_popup import matches, type_icon
from .view import NODE_MIME

CATEGORY_ORDER = ["Sources", "Layers", "Activations", "Math", "Tensor", "Losses", "Control"]


def mime_for(type_name: str) -> QMimeData:
    mime = QMimeData()
    mime.setData(NODE_MIME, type_name.encode("utf-8"))
    mime.setText(type_name)
    return mime


class PaletteTree(QTreeWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QTreeWidget.DragOnly)
        self.setIndentation(12)

    def startDrag(self, actions) -> None:
        item = self.currentItem()
        if item is None or item.parent() is None:
            return
        drag = QDrag(self)
        drag.setMimeData(mime_for(item.text(0)))
        drag.exec(Qt.CopyAction)


class Palette(QWidget):
    def __init__(self, on_activate=None, parent=None):
        super().__init__(parent)
        self.on_activate = on_activate
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter blocks…")
        self.filter.setClearButtonEnabled(True)
        self.tree = PaletteTree(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)
        self.filter.textChanged.connect(self.refilter)
        self.tree.itemActivated.connect(self._activated)
        self.populate()

    def populate(self) -> None:
        self.tree.clear()
        by_category: dict = {}
        for name, node_type in nodes.all_types().items():
            by_category.setdefault(node_type.category, []).append((name, node_type))
        order = CATEGORY_ORDER + sorted(set(by_category) - set(CATEGORY_ORDER))
        for category in order:
            if category not in by_category:
                continue
            top = QTreeWidgetItem([category])
            top.setIcon(0, type_icon(category))
            top.setFlags(Qt.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            for name, node_type in sorted(by_category[category]):
                child = QTreeWidgetItem([name])
                child.setToolTip(0, node_type.help)
                child.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                top.addChild(child)
        self.tree.expandAll()

    def refilter(self, text: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            visible = 0
            for j in range(top.childCount()):
                child = top.child(j)
                show = matches(text, child.text(0), top.text(0))
                child.setHidden(not show)
                visible += show
            top.setHidden(visible == 0)

    def visible_types(self) -> list:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            out += [top.child(j).text(0) for j in range(top.childCount()) if not top.child(j).isHidden()]
        return out

    def item_for(self, type_name: str):
        found = self.tree.findItems(type_name, Qt.MatchExactly | Qt.MatchRecursive)
        return found[0] if found else None

    def _activated(self, item, _column) -> None:
        if item.parent() is not None and self.on_activate is not None:
            self.on_activate(item.text(0))
