"""Scene items: nodes, wires, comment notes and frames. They draw; they never edit the document.

Geometry, paths and text are computed when something changes (`set_content`, `update_path`),
so `paint()` only draws what was prepared.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainterPath, QPainterPathStroker
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from . import theme
from .theme import (
    GRID,
    MAX_NODE_WIDTH,
    NODE_WIDTH,
    PORT_R,
    PORT_ROW,
    RADIUS,
    SUMMARY_H,
    TITLE_H,
    TITLE_LINE_H,
)
from .title_fit import fit_title

LOD_PLAIN = 0.4    # below this zoom a node is a plain box
LOD_LABELS = 0.6   # below this zoom wires drop their shape labels
# The widths a node may take, narrowest first: on the grid beyond the narrowest, so that
# widened nodes still line up.
NODE_WIDTHS = (NODE_WIDTH, *range((NODE_WIDTH // GRID + 1) * GRID, MAX_NODE_WIDTH + 1, GRID))
TITLE_PAD = 20     # the title's margins, left and right
BODY_ICON_W = 14   # the "open body" icon at the title's right


def _lod(painter) -> float:
    return QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())


class NodeItem(QGraphicsItem):
    """One node: a rounded box with a coloured title, ports left (inputs) and right (outputs)."""

    def __init__(self, node_id: str):
        super().__init__()
        self.node_id = node_id
        self.setFlags(QGraphicsItem.ItemIsSelectable | QGraphicsItem.ItemIsMovable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(False)
        self.wires: list = []
        self.syncing = False          # set while the scene mirrors a document position
        self.snap = True
        self.error = ""
        self.warning = False  # the error is one training ignores: amber, not red
        self.about = ""
        self.accepting: set = set()   # port names lit up during a wire drag
        self.ins, self.outs, self.kinds = (), (), {}
        self.width, self.title_h = float(NODE_WIDTH), float(TITLE_H)
        self.rect = QRectF(0, 0, NODE_WIDTH, TITLE_H)
        self.height = TITLE_H

    def set_content(self, title, summary, category, ins, outs, kinds, has_body) -> None:
        self.prepareGeometryChange()
        st = theme.style()
        self.title, self.summary, self.category = title, summary, category
        self.ins, self.outs, self.kinds = tuple(ins), tuple(outs), dict(kinds)
        self.has_body = has_body
        fitted = fit_title(title, st.title_metrics, NODE_WIDTHS,
                           TITLE_PAD + (BODY_ICON_W if has_body else 0))
        self.width = float(fitted.width)
        self.title_h = TITLE_H + TITLE_LINE_H * (len(fitted.lines) - 1)
        self.title_lines = fitted.lines
        self.about = (f"{title}\n" if title != self.node_id else "") + f"{self.node_id}: {summary}"
        if has_body:
            self.about += "\nDouble-click to open"
        if not self.error:
            self.setToolTip(self.about)
        rows = max(len(self.ins), len(self.outs), 1)
        self.height = self.title_h + SUMMARY_H + rows * PORT_ROW + 6
        self.rect = QRectF(0, 0, self.width, self.height)
        self.body_path = QPainterPath()
        self.body_path.addRoundedRect(self.rect, RADIUS, RADIUS)
        title_rect = QPainterPath()
        title_rect.addRect(QRectF(0, 0, self.width, self.title_h))
        self.title_path = self.body_path.intersected(title_rect)
        self.title_brush = st.title_brush(category)
        self.title_text = "\n".join(fitted.lines)
        self.summary_text = st.body_metrics.elidedText(summary, Qt.ElideRight, self.width - 16)
        self.port_names = self._port_texts()
        self.update()

    def _port_texts(self) -> list:
        metrics = theme.style().port_metrics
        half = self.width / 2
        room = half - PORT_R - 9
        out = []
        for name in self.ins:
            out.append((QRectF(PORT_R + 5, self.port_y(self.ins.index(name)) - 8, half, 16),
                        Qt.AlignLeft | Qt.AlignVCenter, metrics.elidedText(name, Qt.ElideRight, room)))
        for name in self.outs:
            out.append((QRectF(half - PORT_R - 5, self.port_y(self.outs.index(name)) - 8, half, 16),
                        Qt.AlignRight | Qt.AlignVCenter, metrics.elidedText(name, Qt.ElideRight, room)))
        return out

    def port_y(self, index: int) -> float:
        return self.title_h + SUMMARY_H + index * PORT_ROW + PORT_ROW / 2

    def port_pos(self, name: str, output: bool) -> QPointF:
        """A port's centre in scene coordinates (a missing port: the middle of that side)."""
        ports = self.outs if output else self.ins
        y = self.port_y(ports.index(name)) if name in ports else self.height / 2
        return self.mapToScene(QPointF(self.width if output else 0.0, y))

    def port_at(self, scene_pos: QPointF, slack: float = 9.0):
        """(port name, is_output) of the port under a scene point, or None."""
        p = self.mapFromScene(scene_pos)
        for output, ports, x in ((False, self.ins, 0.0), (True, self.outs, self.width)):
            for i, name in enumerate(ports):
                if abs(p.x() - x) <= slack and abs(p.y() - self.port_y(i)) <= slack:
                    return name, output
        return None

    def set_kinds(self, kinds: dict) -> None:
        if kinds != self.kinds:
            self.kinds = kinds
            self.update()

    def set_error(self, message: str, warning: bool = False) -> None:
        if message != self.error or warning != self.warning:
            self.error, self.warning = message, warning
            self.setToolTip(message or self.about)
            self.update()

    # -- QGraphicsItem --------------------------------------------------------------------

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-PORT_R - 2, -10, PORT_R + 2, 2)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.rect.adjusted(-PORT_R - 2, 0, PORT_R + 2, 0))
        return path

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionChange and self.snap and not self.syncing:
            grid = theme.GRID
            return QPointF(round(value.x() / grid) * grid, round(value.y() / grid) * grid)
        if change == QGraphicsItem.ItemPositionHasChanged:
            for wire in self.wires:
                wire.update_path()
        elif change == QGraphicsItem.ItemSelectedHasChanged:
            for wire in self.wires:
                wire.update()
        return super().itemChange(change, value)

    def _problem_pen(self, st):
        return st.warning_pen if self.warning else st.error_pen

    def paint(self, painter, option, widget=None) -> None:
        st = theme.style()
        selected = self.isSelected()
        if _lod(painter) < LOD_PLAIN:
            painter.setPen(st.selected_pen if selected else (self._problem_pen(st) if self.error else st.no_pen))
            painter.setBrush(self.title_brush)
            painter.drawRect(self.rect)
            return
        painter.setPen(st.selected_pen if selected else (self._problem_pen(st) if self.error else st.border_pen))
        painter.setBrush(st.body_brush)
        painter.drawPath(self.body_path)
        painter.setPen(st.no_pen)
        painter.setBrush(self.title_brush)
        painter.drawPath(self.title_path)
        painter.setFont(st.title_font)
        painter.setPen(st.text_pen)
        w, th = self.width, self.title_h
        painter.drawText(QRectF(10, 0, w - TITLE_PAD, th), Qt.AlignLeft | Qt.AlignVCenter,
                         self.title_text)
        if self.has_body:
            painter.drawText(QRectF(0, 0, w - 8, TITLE_H), Qt.AlignRight | Qt.AlignVCenter, "⤢")
        painter.setFont(st.body_font)
        painter.setPen(st.dim_pen)
        painter.drawText(QRectF(10, th, w - 16, SUMMARY_H), Qt.AlignLeft | Qt.AlignVCenter,
                         self.summary_text)
        painter.setFont(st.port_font)
        for rect, align, text in self.port_names:
            painter.drawText(rect, align, text)
        painter.setPen(st.port_pen)
        for output, ports, x in ((False, self.ins, 0.0), (True, self.outs, w)):
            for i, name in enumerate(ports):
                lit = name in self.accepting
                painter.setBrush(st.accept_brush if lit else
                                 st.port_brushes[self.kinds.get((name, output), "float")])
                r = PORT_R + (2 if lit else 0)
                painter.drawEllipse(QPointF(x, self.port_y(i)), r, r)
        if self.error:
            painter.setPen(st.no_pen)
            painter.setBrush(st.warning_brush if self.warning else st.error_brush)
            painter.drawEllipse(QPointF(w - 4, -2), 8, 8)
            painter.setPen(st.text_pen)
            painter.setFont(st.title_font)
            painter.drawText(QRectF(w - 12, -10, 16, 16), Qt.AlignCenter, "!")


class WireItem(QGraphicsItem):
    """An edge drawn as a cubic curve from an output port to an input port, with its shape."""

    def __init__(self, edge, src: NodeItem, dst: NodeItem):
        super().__init__()
        self.edge, self.src, self.dst = edge, src, dst
        self.setZValue(-1)
        self.setAcceptedMouseButtons(Qt.NoButton)
        self.label = ""
        self.path = QPainterPath()
        self._shape = None
        self._bounds = QRectF()
        self.label_rect = QRectF()
        src.wires.append(self)
        dst.wires.append(self)
        self.update_path()

    def detach(self) -> None:
        for item in (self.src, self.dst):
            if self in item.wires:
                item.wires.remove(self)

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.label = text
            self._place_label()
            self.update()

    def update_path(self) -> None:
        self.prepareGeometryChange()
        a = self.src.port_pos(self.edge.src_port, True)
        b = self.dst.port_pos(self.edge.dst_port, False)
        self.path = curve(a, b)
        self._shape = None
        self._place_label()

    def _place_label(self) -> None:
        if self.label:
            mid = self.path.pointAtPercent(0.5)
            width = theme.style().label_metrics.horizontalAdvance(self.label) + 10
            self.label_rect = QRectF(mid.x() - width / 2, mid.y() - 17, width, 14)
        else:
            self.label_rect = QRectF()
        self._bounds = self.path.boundingRect().adjusted(-3, -3, 3, 3).united(self.label_rect)

    def hot(self) -> bool:
        return self.src.isSelected() or self.dst.isSelected()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(8)
            self._shape = stroker.createStroke(self.path)
        return self._shape

    def paint(self, painter, option, widget=None) -> None:
        st = theme.style()
        painter.setPen(st.wire_hot_pen if self.hot() else st.wire_pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self.path)
        if self.label and _lod(painter) >= LOD_LABELS:
            painter.setPen(st.no_pen)
            painter.setBrush(st.label_brush)
            painter.drawRoundedRect(self.label_rect, 4, 4)
            painter.setPen(st.dim_pen)
            painter.setFont(st.label_font)
            painter.drawText(self.label_rect, Qt.AlignCenter, self.label)


class ShareItem(QGraphicsItem):
    """A dashed line from a node that shares another node's tensors to that node."""

    def __init__(self, sharer: NodeItem, owner: NodeItem):
        super().__init__()
        self.sharer, self.owner = sharer, owner
        self.setZValue(-2)
        self.setAcceptedMouseButtons(Qt.NoButton)
        self.line = QPainterPath()
        sharer.wires.append(self)
        owner.wires.append(self)
        self.update_path()

    def detach(self) -> None:
        for item in (self.sharer, self.owner):
            if self in item.wires:
                item.wires.remove(self)

    def update_path(self) -> None:
        self.prepareGeometryChange()
        a = self.sharer.sceneBoundingRect().center()
        b = self.owner.sceneBoundingRect().center()
        self.line = QPainterPath(a)
        self.line.lineTo(b)

    def boundingRect(self) -> QRectF:
        return self.line.boundingRect().adjusted(-3, -3, 3, 3)

    def paint(self, painter, option, widget=None) -> None:
        painter.setPen(theme.style().share_pen)
        painter.drawPath(self.line)


def curve(a: QPointF, b: QPointF) -> QPainterPath:
    """A smooth wire: horizontal tangents at both ports."""
    dx = max(abs(b.x() - a.x()) * 0.5, 40.0)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


class DragWireItem(QGraphicsItem):
    """The loose wire that follows the mouse while connecting."""

    def __init__(self, anchor: QPointF, from_output: bool):
        super().__init__()
        self.anchor, self.from_output = anchor, from_output
        self.setZValue(10)
        self.path = QPainterPath()
        self.set_end(anchor)

    def set_end(self, end: QPointF) -> None:
        self.prepareGeometryChange()
        self.path = curve(self.anchor, end) if self.from_output else curve(end, self.anchor)

    def boundingRect(self) -> QRectF:
        return self.path.boundingRect().adjusted(-3, -3, 3, 3)

    def paint(self, painter, option, widget=None) -> None:
        painter.setPen(theme.style().wire_drag_pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self.path)
