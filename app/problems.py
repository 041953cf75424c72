"""The problems dock: every error of the last analysis; clicking one jumps to its node.

A problem names its node as the canvas does, by its label, with the node's path after it in
grey: the label is what the user sees, the path is what tells two nodes of one label apart.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAbstractTextDocumentLayout, QPalette, QTextDocument
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QStyle, QStyledItemDelegate

HTML_ROLE = Qt.UserRole + 1
ID_COLOUR = "#7d8590"
MARK = "⚠  "


def describe(message: str, path: str | None, label: str | None) -> tuple:
    """(plain text, rich text) for one problem. The node's label leads when it has one, its
    path after it in grey; a message that starts by naming the node (`fc: ...`, `fc.x ...`)
    does not name it again."""
    if not path:
        return message, escape(message)
    name = label or path
    rest = _without_node(message, path)
    plain = f"{name} ({path}): {rest}" if label else f"{path}: {rest}"
    grey = f' <span style="color:{ID_COLOUR}">{escape(path)}</span>' if label else ""
    return plain, f"<b>{escape(name)}</b>{grey}: {escape(rest)}"


def _without_node(message: str, path: str) -> str:
    node_id = path.rsplit("/", 1)[-1]
    for name in dict.fromkeys((path, node_id)):
        if message.startswith(f"{name}: "):
            return message[len(name) + 2:]
        if message.startswith(f"{name}."):  # a port: `fc.x is not connected` -> `x is ...`
            return message[len(name) + 1:]
    return message


class ProblemsList(QListWidget):
    jump = Signal(str)   # a node path

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.setItemDelegate(RichTextDelegate(self))
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)
        self.error_count = 0

    def show_errors(self, errors: list, label_of=None, ignored=frozenset()) -> None:
        """List `errors`; `label_of(path)` gives the label of the node a path names, or None;
        `ignored` holds the node paths whose problems training leaves aside (off the loss
        path): they are listed as warnings."""
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
            path = getattr(err, "node", None) or ""
            if path in ignored:
                text += " (training ignores it: the loss does not depend on it)"
            label = label_of(path) if (label_of and path) else None
            plain, rich = describe(text, path, label)
            item = QListWidgetItem(MARK + plain)
            item.setData(HTML_ROLE, MARK + rich)
            item.setData(Qt.UserRole, path)
            item.setToolTip(plain)
            self.addItem(item)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.scheduleDelayedItemsLayout()  # wrapped rows change height with the width

    def _clicked(self, item) -> None:
        path = item.data(Qt.UserRole)
        if path:
            self.jump.emit(path)


class RichTextDelegate(QStyledItemDelegate):
    """Draws an item's HTML_ROLE text (when it has one) as wrapped rich text."""

    PAD = 4

    def _document(self, option, html: str, width: float) -> QTextDocument:
        doc = QTextDocument()
        doc.setDefaultFont(option.font)
        doc.setDocumentMargin(self.PAD)
        doc.setHtml(html)
        doc.setTextWidth(max(width, 40.0))
        return doc

    def paint(self, painter, option, index) -> None:
        html = index.data(HTML_ROLE)
        if not html:
            super().paint(painter, option, index)
            return
        self.initStyleOption(option, index)
        option.text = ""
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.CE_ItemViewItem, option, painter, widget)
        doc = self._document(option, html, option.rect.width())
        context = QAbstractTextDocumentLayout.PaintContext()
        role = QPalette.HighlightedText if option.state & QStyle.State_Selected else QPalette.Text
        context.palette.setColor(QPalette.Text, option.palette.color(role))
        painter.save()
        painter.translate(option.rect.topLeft())
        painter.setClipRect(QRectF(0, 0, option.rect.width(), option.rect.height()))
        doc.documentLayout().draw(painter, context)
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        html = index.data(HTML_ROLE)
        if not html:
            return super().sizeHint(option, index)
        width = option.rect.width()
        view = option.widget
        if view is not None and hasattr(view, "viewport"):
            width = view.viewport().width()
        doc = self._document(option, html, width)
        return QSize(int(doc.idealWidth()), int(doc.size().height()))
