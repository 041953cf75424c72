"""Colours, pens, brushes and fonts of the canvas, built once (never inside paint())."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen

GRID = 20          # snap and minor grid step, scene units
MAJOR_GRID = 100
NODE_WIDTH = 128      # the narrowest node; a longer title widens it, up to MAX_NODE_WIDTH
MAX_NODE_WIDTH = 140  # wider would crowd neighbours in layouts spaced 160 apart
TITLE_H = 24
TITLE_LINE_H = 14     # a title's second line adds this much height
PORT_ROW = 20
SUMMARY_H = 20
RADIUS = 7.0
PORT_R = 5.0

CANVAS_BG = QColor("#1b1d21")
GRID_MINOR = QColor("#23262b")
GRID_MAJOR = QColor("#2b2f35")

NODE_BODY = QColor("#2a2d33")
NODE_BORDER = QColor("#3b3f47")
NODE_SELECTED = QColor("#f0b429")
TEXT = QColor("#e6e8eb")
TEXT_DIM = QColor("#9aa1ab")
ERROR = QColor("#e5484d")
WARNING = QColor("#f5a524")  # a problem training leaves aside (off the loss path)
WIRE = QColor("#7d8590")
WIRE_HOT = QColor("#f0b429")
LABEL_BG = QColor(27, 29, 33, 220)

CATEGORY_COLORS = {
    "Sources": QColor("#4b8f8c"),
    "Layers": QColor("#3f74c9"),
    "Activations": QColor("#d07a2d"),
    "Math": QColor("#3d9a62"),
    "Tensor": QColor("#b3952a"),
    "Losses": QColor("#c8474f"),
    "Control": QColor("#8a5cc9"),
    "Misc": QColor("#6b7280"),
}

PORT_COLORS = {
    "float": QColor("#5aa9ff"),
    "int": QColor("#f2c14e"),
    "scalar": QColor("#8fd16a"),
}


def category_color(category: str) -> QColor:
    return CATEGORY_COLORS.get(category, CATEGORY_COLORS["Misc"])


class _Style:
    """Pens, brushes and fonts; created after the QApplication exists (fonts need it)."""

    def __init__(self) -> None:
        self.title_font = QFont()
        self.title_font.setPointSizeF(9.5)
        self.title_font.setBold(True)
        self.body_font = QFont()
        self.body_font.setPointSizeF(8.5)
        self.port_font = QFont()
        self.port_font.setPointSizeF(7.5)
        self.label_font = QFont()
        self.label_font.setPointSizeF(7.5)
        self.note_font = QFont()
        self.note_font.setPointSizeF(10)
        self.hint_font = QFont()
        self.hint_font.setPointSizeF(13)

        self.title_metrics = QFontMetricsF(self.title_font)
        self.body_metrics = QFontMetricsF(self.body_font)
        self.port_metrics = QFontMetricsF(self.port_font)
        self.label_metrics = QFontMetricsF(self.label_font)

        self.no_pen = QPen(Qt.NoPen)
        self.border_pen = QPen(NODE_BORDER, 1.0)
        self.selected_pen = QPen(NODE_SELECTED, 2.0)
        self.error_pen = QPen(ERROR, 2.0)
        self.warning_pen = QPen(WARNING, 2.0)
        self.text_pen = QPen(TEXT)
        self.dim_pen = QPen(TEXT_DIM)
        self.hint_pen = QPen(TEXT_DIM)
        self.port_pen = QPen(QColor("#15171a"), 1.5)
        self.wire_pen = QPen(WIRE, 2.0)
        self.wire_pen.setCapStyle(Qt.RoundCap)
        self.share_pen = QPen(TEXT_DIM, 1.5, Qt.DashLine)  # a node that uses another's tensors
        self.wire_hot_pen = QPen(WIRE_HOT, 2.6)
        self.wire_hot_pen.setCapStyle(Qt.RoundCap)
        self.wire_drag_pen = QPen(WIRE_HOT, 2.0, Qt.DashLine)
        self.grid_minor_pen = QPen(GRID_MINOR, 0)
        self.grid_major_pen = QPen(GRID_MAJOR, 0)

        self.body_brush = QBrush(NODE_BODY)
        self.label_brush = QBrush(LABEL_BG)
        self.error_brush = QBrush(ERROR)
        self.warning_brush = QBrush(WARNING)
        self.port_brushes = {kind: QBrush(color) for kind, color in PORT_COLORS.items()}
        self.accept_brush = QBrush(QColor("#ffffff"))
        self.title_brushes: dict = {}

    def title_brush(self, category: str) -> QBrush:
        brush = self.title_brushes.get(category)
        if brush is None:
            brush = self.title_brushes[category] = QBrush(category_color(category))
        return brush


_style: _Style | None = None


def style() -> _Style:
    global _style
    if _style is None:
        _style = _Style()
    return _style
