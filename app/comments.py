"""Comments on the canvas: text notes and frames (backdrops), kept in the document's `ui`.

`ui["comments"]` is a list of `{"id", "kind": "note" | "frame", "graph": [GraphRef...],
"text", "rect": [x, y, w, h]}`. The engine ignores it; the editor keeps it through round trips.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsItem

from . import theme

KEY = "comments"
NOTE_BRUSH = QBrush(QColor(240, 200, 90, 235))
NOTE_TEXT = QPen(QColor("#2a2410"))
FRAME_BRUSH = QBrush(QColor(120, 140, 170, 40))
FRAME_PEN = QPen(QColor(150, 170, 200, 120), 1.2)
FRAME_TITLE = QPen(QColor("#c9d3e0"))
GRIP = 16                      # the bottom-right corner of a frame that resizes it
MIN_FRAME = (120.0, 60.0)


def comments_of(doc, ref) -> list:
    return [c for c in doc.ui.get(KEY, []) if isinstance(c, dict) and list(c.get("graph", [])) == list(ref)]


def with_comment(doc, entry: dict) -> list:
    """The comments list with one entry added or replaced (matched by id)."""
    out = [copy.deepcopy(entry) if c.get("id") == entry["id"] else copy.deepcopy(c)
           for c in doc.ui.get(KEY, [])]
    if not any(c.get("id") == entry["id"] for c in out):
        out.append(copy.deepcopy(entry))
    return out


def without_comments(doc, ids) -> list:
    return [copy.deepcopy(c) for c in doc.ui.get(KEY, []) if c.get("id") not in set(ids)]


def new_comment_id(doc) -> str:
    taken = {c.get("id") for c in doc.ui.get(KEY, [])}
    i = 1
    while f"c{i}" in taken:
        i += 1
    return f"c{i}"


class CommentItem(QGraphicsItem):
    def __init__(self, entry: dict):
        super().__init__()
        self.entry = copy.deepcopy(entry)
        self.comment_id = entry["id"]
        self.setFlags(QGraphicsItem.ItemIsSelectable | QGraphicsItem.ItemIsMovable)
        self.syncing = False
        self.apply(entry)
        self.setAcceptHoverEvents(self.is_frame)

    @property
    def is_frame(self) -> bool:
        return self.entry.get("kind") == "frame"

    def apply(self, entry: dict) -> None:
        self.prepareGeometryChange()
        self.entry = copy.deepcopy(entry)
        x, y, w, h = (list(entry.get("rect", [0, 0, 200, 80])) + [0, 0, 200, 80])[:4]
        self.syncing = True
        self.setPos(x, y)
        self.syncing = False
        self.rect = QRectF(0, 0, max(w, 40), max(h, 24))
        self.setZValue(-3 if self.is_frame else 2)
        self.update()

    def moved_entry(self) -> dict:
        entry = copy.deepcopy(self.entry)
        entry["rect"] = [round(self.pos().x()), round(self.pos().y()),
                         round(self.rect.width()), round(self.rect.height())]
        return entry

    def in_grip(self, scene_pos) -> bool:
        """Whether a point is on a frame's resize corner."""
        if not self.is_frame:
            return False
        p = self.mapFromScene(scene_pos)
        r = self.rect
        return r.right() - GRIP <= p.x() <= r.right() + 2 and r.bottom() - GRIP <= p.y() <= r.bottom() + 2

    def resize_to(self, width: float, height: float) -> None:
        """Show a new size (the drag's; the document hears of it on release)."""
        self.prepareGeometryChange()
        self.rect = QRectF(0, 0, max(width, MIN_FRAME[0]), max(height, MIN_FRAME[1]))
        self.update()

    def hoverMoveEvent(self, event) -> None:
        if self.in_grip(event.scenePos()):
            self.setCursor(Qt.SizeFDiagCursor)
        else:
            self.unsetCursor()
        super().hoverMoveEvent(event)

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-2, -2, 2, 2)

    def paint(self, painter, option, widget=None) -> None:
        st = theme.style()
        if self.is_frame:
            painter.setPen(st.selected_pen if self.isSelected() else FRAME_PEN)
            painter.setBrush(FRAME_BRUSH)
            painter.drawRoundedRect(self.rect, 10, 10)
            painter.setPen(FRAME_TITLE)
            painter.setFont(st.title_font)
            painter.drawText(self.rect.adjusted(12, 6, -12, -6), Qt.AlignLeft | Qt.AlignTop,
                             self.entry.get("text", ""))
            painter.setPen(FRAME_PEN)  # the resize grip: two short diagonals in the corner
            r = self.rect
            for d in (5, 10):
                painter.drawLine(QPointF(r.right() - 3, r.bottom() - d - 3),
                                 QPointF(r.right() - d - 3, r.bottom() - 3))
        else:
            painter.setPen(st.selected_pen if self.isSelected() else st.no_pen)
            painter.setBrush(NOTE_BRUSH)
            painter.drawRoundedRect(self.rect, 6, 6)
            painter.setPen(NOTE_TEXT)
            painter.setFont(st.note_font)
            painter.drawText(self.rect.adjusted(10, 8, -10, -8), Qt.TextWordWrap | Qt.AlignLeft | Qt.AlignTop,
                             self.entry.get("text", ""))
