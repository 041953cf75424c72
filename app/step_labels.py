"""A Loop's step on its body's canvas: wire labels that fit their wire, and a tag over each node.

Inside the body of the loop the inspector unrolls (training/loop_steps.py), each wire says what
it carried at the step shown and each node carries a small tag with its value and gradient
there. A body's wires are often short (a node's width apart): a label takes the longest of its
forms that fits beside the wire, or none, and the tag above the node and the wire's tooltip
always have the whole of it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QGraphicsItem

from . import theme
from .training import probe as pr
from .training import unroll

TAG_BG = QColor(48, 30, 70, 235)     # the loop colour, dark: a step's value, not a shape
TAG_TEXT = QColor("#e9dcff")
SLACK = 24                           # px of wire kept clear of the ports at either end


def wire_label(value, step: int, length: float) -> str:
    """The longest label for the value that fits a wire of this length ('' if none does)."""
    one = unroll.one_example(value)
    shape = unroll.shape_text(one)
    metrics = theme.style().label_metrics
    for text in (f"t{step}  {shape} {pr.preview(one, 2)}", f"t{step}  {pr.preview(one, 1)}",
                 f"t{step}"):
        if metrics.horizontalAdvance(text) + 10 + 2 * SLACK <= length:
            return text
    return ""


def tag_lines(value, grad, step: int) -> list:
    """A node's tag: the step and its value's shape, the first values, the gradient's size."""
    one = unroll.one_example(value)
    lines = [f"t{step}  {unroll.shape_text(one)}", pr.preview(one, 4)]
    if grad is not None:
        norm = float(np.sqrt(np.sum(np.square(np.asarray(grad, dtype=np.float64)))))
        lines.append(f"∇ rms {pr.rms(grad):.2g}  norm {norm:.2g}")
    return lines


class StepTag(QGraphicsItem):
    """A small rounded label over a node, no wider than the node (the next node's tag is a
    wire's length away): each line elided to fit, laid out once, nothing computed in paint."""

    def __init__(self, lines: list, parent=None):
        super().__init__(parent)
        self.font = QFont()
        self.font.setPointSizeF(7.5)
        metrics = QFontMetricsF(self.font)
        room = (parent.rect.width() if parent is not None else 160) - 10
        self.lines = [metrics.elidedText(line, Qt.ElideRight, room) for line in lines]
        self.line_h = metrics.height()
        width = max(metrics.horizontalAdvance(line) for line in self.lines) + 10
        self.rect = QRectF(0, 0, width, self.line_h * len(lines) + 4)
        self.brush = QBrush(TAG_BG)
        self.pen = QPen(TAG_TEXT)
        self.setZValue(6)
        self.setPos(0, -self.rect.height() - 3)

    def boundingRect(self) -> QRectF:
        return self.rect

    def paint(self, painter, option, widget=None) -> None:
        painter.setPen(Qt.NoPen)
        painter.setBrush(self.brush)
        painter.drawRoundedRect(self.rect, 4, 4)
        painter.setPen(self.pen)
        painter.setFont(self.font)
        for i, line in enumerate(self.lines):
            painter.drawText(QRectF(5, 2 + i * self.line_h, self.rect.width() - 10, self.line_h),
                             Qt.AlignLeft | Qt.AlignVCenter, line)
