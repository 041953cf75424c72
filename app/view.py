"""The canvas view: zoom to cursor, pan, rubber band, drops from the palette, search-to-add.

Mouse presses are dispatched to small interaction objects (app.interactions); the view itself
only decides which one starts.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsView

from . import theme
from .comments import CommentItem
from .interactions import FrameResize, MoveDrag, PanDrag, WireDrag
from .items import NodeItem
from .search_popup import SearchPopup

NODE_MIME = "application/x-wiregrad-node-type"
MIN_ZOOM, MAX_ZOOM = 0.08, 3.0
FIT_MAX_ZOOM = 1.0   # framing never enlarges past 100%: a small graph is not shown huge
FIT_MARGIN = 60      # scene units around what is framed
EMPTY_HINT = "Drag a block from the palette, or press Tab"


class CanvasView(QGraphicsView):
    node_double_clicked = Signal(str)
    comment_double_clicked = Signal(str)

    def __init__(self, scene, controller, parent=None):
        super().__init__(scene, parent)
        self.controller = controller
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setOptimizationFlags(QGraphicsView.DontSavePainterState)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.interaction = None
        self.space_held = False
        self.popup = None
        self._pan_drag = None
        # Until the user zooms or pans, the view keeps the whole graph framed as it resizes:
        # a window that gets its final size (or a dock that opens) after a document opens
        # still shows all of it.
        self.auto_fit = False
        self._hint_drawn = False
        scene.setSceneRect(QRectF(-50000, -50000, 100000, 100000))

    # -- drawing --------------------------------------------------------------------------

    def drawBackground(self, painter, rect) -> None:
        painter.fillRect(rect, theme.CANVAS_BG)
        scale = self.transform().m11()
        st = theme.style()
        steps = [(theme.MAJOR_GRID, st.grid_major_pen)]
        if scale > 0.45:
            steps.insert(0, (theme.GRID, st.grid_minor_pen))
        for step, pen in steps:
            if step * scale < 6:
                continue
            left = math.floor(rect.left() / step) * step
            top = math.floor(rect.top() / step) * step
            lines = [QLineF(x, rect.top(), x, rect.bottom())
                     for x in _frange(left, rect.right(), step)]
            lines += [QLineF(rect.left(), y, rect.right(), y) for y in _frange(top, rect.bottom(), step)]
            painter.setPen(pen)
            painter.drawLines(lines)

    def drawForeground(self, painter, rect) -> None:
        empty = not self.scene().node_items
        if empty != self._hint_drawn:
            # The hint spans the view, and this paint may cover only what an edit changed.
            self._hint_drawn = empty
            self.viewport().update()
        if not empty:
            return
        # How to start, on an empty graph: drawn in view coordinates, so it reads the same at
        # any zoom.
        painter.save()
        painter.resetTransform()
        painter.setPen(theme.style().hint_pen)
        painter.setFont(theme.style().hint_font)
        painter.drawText(QRectF(self.viewport().rect()), Qt.AlignCenter | Qt.TextWordWrap, EMPTY_HINT)
        painter.restore()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        if self._hint_drawn:
            self.viewport().update()  # scrolled pixels would carry the hint along with them

    def empty_hint(self) -> str:
        """The hint drawn on the canvas: how to start, while the graph shown has no node."""
        return "" if self.scene().node_items else EMPTY_HINT

    # -- zoom and framing -----------------------------------------------------------------

    def zoom_by(self, factor: float, anchor_view_pos=None) -> None:
        self.auto_fit = False
        current = self.transform().m11()
        factor = max(MIN_ZOOM / current, min(MAX_ZOOM / current, factor))
        if anchor_view_pos is None:
            self.setTransformationAnchor(QGraphicsView.AnchorViewCenter)
            self.scale(factor, factor)
            self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
            return
        before = self.mapToScene(anchor_view_pos)
        self.setTransformationAnchor(QGraphicsView.NoAnchor)
        self.scale(factor, factor)
        after = self.mapToScene(anchor_view_pos)
        self.translate(after.x() - before.x(), after.y() - before.y())
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)

    def zoom(self) -> float:
        return self.transform().m11()

    def frame(self, rect: QRectF) -> None:
        """Show `rect` whole, with a margin, centred; at no more than 100% zoom."""
        if rect.isNull() or rect.isEmpty():
            rect = QRectF(-200, -150, 400, 300)
        rect = rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
        self.fitInView(rect, Qt.KeepAspectRatio)
        zoom = min(FIT_MAX_ZOOM, max(MIN_ZOOM, self.zoom()))
        if zoom != self.zoom():
            self.resetTransform()
            self.scale(zoom, zoom)
        self.centerOn(rect.center())

    def frame_all(self) -> None:
        self.frame(self.scene().itemsBoundingRect())

    def fit_to_window(self) -> None:
        """Frame the whole graph now, and again at each resize until the user zooms or pans."""
        self.auto_fit = True
        self.frame_all()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.auto_fit:
            self.frame_all()

    def frame_selection(self) -> None:
        self.auto_fit = False
        rect = QRectF()
        for item in self.scene().selectedItems():
            rect = rect.united(item.sceneBoundingRect())
        if rect.isNull():
            self.frame_all()
        else:
            self.frame(rect)

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.15 ** steps, event.position().toPoint())
        event.accept()

    # -- mouse ----------------------------------------------------------------------------

    def mousePressEvent(self, event) -> None:
        scene_pos = self.mapToScene(event.position().toPoint())
        pan = event.button() == Qt.MiddleButton or (event.button() == Qt.LeftButton and self.space_held)
        if pan:
            self.auto_fit = False
            self.interaction = PanDrag(self, event.position())
            self.viewport().setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.LeftButton:
            hit = self.scene().port_near(scene_pos)
            if hit is not None:
                item, port, is_output = hit
                self.interaction = WireDrag(self, item, port, is_output, scene_pos)
                event.accept()
                return
            frame = next((i for i in self.scene().items(scene_pos)
                          if isinstance(i, CommentItem) and i.in_grip(scene_pos)), None)
            if frame is not None:
                self.interaction = FrameResize(self, frame, scene_pos)
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.LeftButton and self.scene().selectedItems():
            self.interaction = MoveDrag(self)

    def mouseMoveEvent(self, event) -> None:
        if isinstance(self.interaction, PanDrag):
            self.interaction.move_view(event.position())
            event.accept()
            return
        if isinstance(self.interaction, (WireDrag, FrameResize)):
            self.interaction.move(self.mapToScene(event.position().toPoint()), event)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        interaction, self.interaction = self.interaction, None
        if isinstance(interaction, PanDrag):
            self.viewport().unsetCursor()
            event.accept()
            return
        if isinstance(interaction, (WireDrag, FrameResize)):
            interaction.release(self.mapToScene(event.position().toPoint()), event)
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if isinstance(interaction, MoveDrag):
            interaction.release(self.mapToScene(event.position().toPoint()), event)

    def mouseDoubleClickEvent(self, event) -> None:
        scene_pos = self.mapToScene(event.position().toPoint())
        item = self.scene().node_at(scene_pos)
        if isinstance(item, NodeItem):
            self.node_double_clicked.emit(item.node_id)
            self.controller.open_node(item.node_id)
            event.accept()
            return
        under = self.scene().itemAt(scene_pos, self.transform())
        if isinstance(under, CommentItem):
            self.comment_double_clicked.emit(under.comment_id)
            event.accept()
            return
        if under is None:
            self.open_search(scene_pos)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    # -- keys -----------------------------------------------------------------------------

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self.space_held = True
            self.viewport().setCursor(Qt.OpenHandCursor)
            event.accept()
            return
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            selected = self.scene().selected_node_ids()
            if len(selected) == 1 and self.controller.open_node(selected[0]):
                event.accept()
                return
        if event.key() == Qt.Key_Tab:
            pos = self.mapFromGlobal(self.cursor().pos())
            if not self.viewport().rect().contains(pos):
                pos = self.viewport().rect().center()
            self.open_search(self.mapToScene(pos))
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self.space_held = False
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusNextPrevChild(self, next_child: bool) -> bool:
        return False  # Tab belongs to the search popup, not to focus chains

    # -- adding nodes ---------------------------------------------------------------------

    def open_search(self, scene_pos: QPointF, on_chosen=None, type_filter=None) -> SearchPopup:
        """The search-to-add popup at a scene point; Enter adds the chosen type there."""
        popup = SearchPopup(self, type_filter)
        popup.scene_pos = QPointF(scene_pos)
        if on_chosen is None:
            at = QPointF(scene_pos)

            def on_chosen(name):
                self.add_node_at(name, at)
        popup.chosen.connect(on_chosen)
        self.popup = popup
        popup.popup_at(self.viewport().mapToGlobal(self.mapFromScene(scene_pos)))
        return popup

    def add_node_at(self, type_name: str, scene_pos: QPointF) -> str | None:
        grid = theme.GRID
        x = round(scene_pos.x() / grid) * grid
        y = round(scene_pos.y() / grid) * grid
        node_id = self.controller.add_node(type_name, (x, y))
        if node_id is not None:
            self.scene().select_nodes([node_id])
        return node_id

    def offer_new_connected(self, scene_pos, node_id: str, port: str, from_output: bool) -> SearchPopup:
        """A wire dropped on empty canvas: pick a node type, add it there and connect it."""
        from .. import nodes as registry

        def fits(node_type) -> bool:
            if node_type.control:
                return False
            params = {p.name: p.default for p in node_type.params}
            try:
                ports = node_type.input_ports(params) if from_output else node_type.output_ports(params)
            except (registry.ParamError, KeyError, TypeError, ValueError):
                return False
            return bool(ports)

        def chosen(type_name: str) -> None:
            with self.controller.macro(f"Add connected {type_name}"):
                new_id = self.add_node_at(type_name, scene_pos)
                if new_id is None:
                    return
                node = self.controller.doc.graph_at(self.controller.ref).node(new_id)
                ins, outs = self.controller.doc.ports(node)
                if from_output and ins:
                    self.controller.connect(node_id, port, new_id, ins[0])
                elif not from_output and outs:
                    self.controller.connect(new_id, outs[0], node_id, port)

        return self.open_search(scene_pos, chosen, fits)

    # -- drag and drop from the palette ---------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            type_name = bytes(event.mimeData().data(NODE_MIME)).decode("utf-8")
            self.add_node_at(type_name, self.mapToScene(event.position().toPoint()))
            event.acceptProposedAction()
            self.setFocus()
        else:
            super().dropEvent(event)


def _frange(start: float, stop: float, step: float):
    x = start
    while x <= stop:
        yield x
        x += step
