"""What training shows on the canvas: gradient flow on wires, a NaN badge, example values.

The overlay adds its own small items as children of the scene's node and wire items (so they
move and disappear with them) and never changes those items. It is fed in the UI thread by
the dock, from snapshots; nothing here runs in the training thread. After the scene rebuilds
(another graph shown, a document opened), the dock's last data is applied again.
"""

from __future__ import annotations

import math
from itertools import pairwise

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from ..theme import NODE_WIDTH

# gradient size per example (rms x batch) -> colour: blue (vanishing) .. green .. red (exploding)
LOW, HIGH = 1e-5, 10.0
RAMP = [(0.0, QColor("#3b5bdb")), (0.35, QColor("#4dabf7")), (0.6, QColor("#51cf66")),
        (0.8, QColor("#fcc419")), (1.0, QColor("#ff4d4f"))]
NAN_COLOR = QColor("#c2255c")


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(round(a.red() + (b.red() - a.red()) * t),
                  round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t))


def gradient_color(size: float) -> tuple:
    """(colour, width, position 0..1) for a per-example gradient size."""
    if not math.isfinite(size):
        return NAN_COLOR, 6.0, 1.0
    if size <= 0:
        return QColor(110, 110, 120), 1.0, 0.0
    t = (math.log10(size) - math.log10(LOW)) / (math.log10(HIGH) - math.log10(LOW))
    t = min(1.0, max(0.0, t))
    for (t0, c0), (t1, c1) in pairwise(RAMP):
        if t <= t1:
            color = _mix(c0, c1, (t - t0) / (t1 - t0))
            break
    return color, 1.5 + 6.0 * t, t


class Tag(QGraphicsItem):
    """A small rounded label with text, drawn as prepared (nothing computed in paint)."""

    def __init__(self, lines: list, color: QColor, text_color: QColor, bold: bool = False,
                 parent=None):
        super().__init__(parent)
        self.font = QFont()
        self.font.setPointSizeF(7.5)
        self.font.setBold(bold)
        metrics = QFontMetricsF(self.font)
        self.lines = lines
        width = max(metrics.horizontalAdvance(line) for line in lines) + 10
        self.line_h = metrics.height()
        self.rect = QRectF(0, 0, width, self.line_h * len(lines) + 4)
        self.brush = QBrush(color)
        self.pen = QPen(text_color)
        self.setZValue(5)

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


class CanvasOverlay:
    """Owns the overlay items on one scene; the dock tells it what to show."""

    def __init__(self, scene):
        self.scene = scene
        self.flow_on = False
        self.grad_sizes: dict = {}   # Edge -> per-example gradient size
        self.nan: tuple | None = None  # (top-level node id, message)
        self.example: dict = {}      # node id -> list of lines
        self._glows: dict = {}       # Edge -> QGraphicsPathItem
        self._badge = None
        self._tags: dict = {}
        scene.rebuilt.connect(self.reapply)

    def _top_level(self) -> bool:
        return tuple(self.scene.ref) == ()

    def reapply(self) -> None:
        """After the scene rebuilt its items (ours went with them)."""
        self._glows, self._badge, self._tags = {}, None, {}
        self.show_flow(self.flow_on)
        self.set_nan(*(self.nan or (None, "")))
        self.set_example(self.example)

    # -- gradient flow ------------------------------------------------------------------------

    def set_gradients(self, sizes: dict) -> None:
        self.grad_sizes = dict(sizes)
        if self.flow_on:
            self._draw_flow()

    def show_flow(self, on: bool) -> None:
        self.flow_on = on
        if on:
            self._draw_flow()
        else:
            for glow in self._glows.values():
                self._remove(glow)
            self._glows = {}

    def _draw_flow(self) -> None:
        wires = self.scene.wire_items if self._top_level() else {}
        for edge in [e for e in self._glows if e not in wires or e not in self.grad_sizes]:
            self._remove(self._glows.pop(edge))
        for edge, wire in wires.items():
            size = self.grad_sizes.get(edge)
            if size is None:
                continue
            glow = self._glows.get(edge)
            if glow is None or glow.parentItem() is not wire:
                glow = QGraphicsPathItem(wire)
                glow.setAcceptedMouseButtons(Qt.NoButton)
                self._glows[edge] = glow
            if glow.path() != wire.path:
                glow.setPath(wire.path)
            color, width, _ = gradient_color(size)
            pen = QPen(color, width)
            pen.setCapStyle(Qt.RoundCap)
            glow.setPen(pen)
            glow.setToolTip(f"{edge}\ngradient per example: {size:.3g}")

    # -- NaN badge ----------------------------------------------------------------------------

    def set_nan(self, path: str | None, message: str = "") -> None:
        """Badge the top-level node a failing path starts with (None: take it away)."""
        if self._badge is not None:
            self._remove(self._badge)
            self._badge = None
        if not path:
            self.nan = None
            return
        node_id = path.split("/")[0]
        self.nan = (node_id, message)
        item = self.scene.node_items.get(node_id) if self._top_level() else None
        if item is None:
            return
        badge = Tag(["NaN"], NAN_COLOR, QColor("#ffffff"), bold=True, parent=item)
        badge.setPos(-10, -badge.rect.height() - 2)
        badge.setToolTip(message)
        self._badge = badge

    # -- one example --------------------------------------------------------------------------

    def set_example(self, lines_by_node: dict) -> None:
        for tag in self._tags.values():
            self._remove(tag)
        self._tags = {}
        self.example = dict(lines_by_node)
        if not self._top_level():
            return
        for node_id, lines in self.example.items():
            item = self.scene.node_items.get(node_id)
            if item is None or not lines:
                continue
            tag = Tag(lines, QColor(15, 40, 60, 235), QColor("#cfe8ff"), parent=item)
            tag.setPos(0, item.rect.height() + 4)
            tag.setToolTip("\n".join(lines))
            self._tags[node_id] = tag
            if tag.rect.width() > NODE_WIDTH * 1.6:
                tag.setScale(NODE_WIDTH * 1.6 / tag.rect.width())

    def _remove(self, item) -> None:
        scene = item.scene()
        if scene is not None:
            scene.removeItem(item)
