"""What training shows on the canvas: gradient flow on wires, a NaN badge, example values.

The overlay adds its own small items as children of the scene's node and wire items (so they
move and disappear with them) and never changes those items. It is fed in the UI thread by
the dock, from snapshots; nothing here runs in the training thread. After the scene rebuilds
(another graph shown, a document opened), the dock's last data is applied again.

The data comes from the probe's trace, keyed by node path (`rnn/cell`), so a loop body, a
branch side or a block definition opened on the canvas shows its own wires and values.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from core.errors import GraphError

from ..theme import NODE_WIDTH
from . import probe as pr

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
        self.trace: pr.Trace | None = None  # gradients of the last probe
        self.nan: tuple | None = None  # (node path, message)
        self.example: dict = {}      # (node path, port) -> (array, runs) of one example
        self._glows: dict = {}       # Edge -> QGraphicsPathItem
        self._badge = None
        self._tags: dict = {}
        scene.rebuilt.connect(self.reapply)

    def _prefixes(self) -> list:
        """Under which trace paths the graph shown ran (several for a block definition)."""
        return pr.prefixes(self.scene.doc, self.scene.ref)

    def reapply(self) -> None:
        """After the scene rebuilt its items (ours went with them)."""
        self._glows, self._badge, self._tags = {}, None, {}
        self.show_flow(self.flow_on)
        self.set_nan(*(self.nan or (None, "")))
        self.set_example(self.example)

    # -- gradient flow ------------------------------------------------------------------------

    def set_gradients(self, trace) -> None:
        self.trace = trace
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

    def grad_sizes(self) -> dict:
        """{Edge: gradient per example} for the wires shown: what flows back into each wire's
        source port (over every step of a loop body, every instance of a block)."""
        if self.trace is None or not self.trace.grads:
            return {}
        prefixes = self._prefixes()
        sizes = {}
        for edge in self.scene.wire_items:
            size = self.trace.grad_size([pr.join(p, edge.src) for p in prefixes], edge.src_port)
            if size is not None:
                sizes[edge] = size
        return sizes

    def _draw_flow(self) -> None:
        wires = self.scene.wire_items
        sizes = self.grad_sizes()
        for edge in [e for e in self._glows if e not in wires or e not in sizes]:
            self._remove(self._glows.pop(edge))
        for edge, size in sizes.items():
            wire = wires[edge]
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
        """Badge the node of the graph shown that a failing path is in (None: take it away)."""
        if self._badge is not None:
            self._remove(self._badge)
            self._badge = None
        if not path:
            self.nan = None
            return
        self.nan = (path, message)
        item = None
        for prefix in self._prefixes():
            if not prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) + 1:] if prefix else path
                item = self.scene.node_items.get(rest.split("/")[0])
                break
        if item is None:
            return
        badge = Tag(["NaN"], NAN_COLOR, QColor("#ffffff"), bold=True, parent=item)
        badge.setPos(-10, -badge.rect.height() - 2)
        badge.setToolTip(message)
        self._badge = badge

    # -- one example --------------------------------------------------------------------------

    def set_example(self, example: dict) -> None:
        """`example`: {(node path, port): (array, runs)} of one example through the graph."""
        for tag in self._tags.values():
            self._remove(tag)
        self._tags = {}
        self.example = dict(example)
        if not example:
            return
        for node_id, item in self.scene.node_items.items():
            lines = self._example_lines(node_id)
            if not lines:
                continue
            tag = Tag(lines, QColor(15, 40, 60, 235), QColor("#cfe8ff"), parent=item)
            tag.setPos(0, item.rect.height() + 4)
            tag.setToolTip("\n".join(lines))
            self._tags[node_id] = tag
            if tag.rect.width() > NODE_WIDTH * 1.6:
                tag.setScale(NODE_WIDTH * 1.6 / tag.rect.width())

    def _example_lines(self, node_id: str) -> list:
        try:
            paths, port = pr.traced_as(self.scene.doc, self.scene.ref, node_id)
        except GraphError:
            return []
        for path in paths:  # a block definition: the first instance that ran
            lines = []
            for (p, name), (value, runs) in self.example.items():
                if p != path or port not in (None, name):
                    continue
                one = value[-1] if runs > 1 else value
                shape = example_shape(one)
                steps = f" × {runs} steps" if runs > 1 else ""
                head = shape if name == "y" or port is not None else f"{name}: {shape}"
                lines += [head + steps, ("last " if runs > 1 else "") + pr.preview(one, 3)]
            if lines:
                if len(paths) > 1:
                    lines.insert(0, f"in {path.rsplit('/', 1)[0]}")
                return lines
        return []

    def _remove(self, item) -> None:
        scene = item.scene()
        if scene is not None:
            scene.removeItem(item)


def example_shape(value) -> str:
    """`(32,)` for one example's value."""
    dims = np.shape(value)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"
