"""Mouse interactions on the canvas, each its own small object with press/move/release.

The view creates one when a drag starts and forwards events to it until it finishes. An
interaction turns what the user did into one controller call (one undo step).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF

from ..core.document import Edge
from .comments import CommentItem
from .items import DragWireItem, NodeItem


class Interaction:
    def __init__(self, view):
        self.view = view
        self.scene = view.scene()
        self.controller = view.controller

    def move(self, scene_pos: QPointF, event) -> None:
        pass

    def release(self, scene_pos: QPointF, event) -> None:
        pass


class PanDrag(Interaction):
    """Middle button, or space held with the left button: scroll the canvas."""

    def __init__(self, view, view_pos):
        super().__init__(view)
        self.last = view_pos

    def move_view(self, view_pos) -> None:
        delta = view_pos - self.last
        self.last = view_pos
        h, v = self.view.horizontalScrollBar(), self.view.verticalScrollBar()
        h.setValue(h.value() - delta.x())
        v.setValue(v.value() - delta.y())


class MoveDrag(Interaction):
    """Dragging selected nodes and comments: the view moves the items; on release the whole
    drag becomes one move command (and one ui edit for comments)."""

    def __init__(self, view):
        super().__init__(view)
        self.start = {}
        for frame in [i for i in self.scene.selectedItems() if isinstance(i, CommentItem) and i.is_frame]:
            area = frame.sceneBoundingRect()   # a frame carries the nodes inside it
            for node in self.scene.node_items.values():
                if area.contains(node.sceneBoundingRect()):
                    node.setSelected(True)
        for item in self.scene.selectedItems():
            if isinstance(item, (NodeItem, CommentItem)):
                self.start[item] = QPointF(item.pos())

    def release(self, scene_pos, event) -> None:
        moves = {}
        moved_comments = []
        for item, start in self.start.items():
            if item.pos() == start or item.scene() is None:
                continue
            if isinstance(item, NodeItem):
                node = self.controller.doc.graph_at(self.controller.ref).node(item.node_id)
                old = list(node.pos) if node is not None and node.pos is not None else None
                moves[item.node_id] = (old, [round(item.pos().x()), round(item.pos().y())])
            else:
                moved_comments.append(item.moved_entry())
        if moves and moved_comments:
            with self.controller.macro("Move"):
                self._commit(moves, moved_comments)
        else:
            self._commit(moves, moved_comments)

    def _commit(self, moves, moved_comments) -> None:
        if moves:
            self.controller.move_nodes(moves)
        if moved_comments:
            doc = self.controller.doc
            entries = {e["id"]: e for e in moved_comments}
            value = [entries.get(c.get("id"), c) for c in doc.ui.get("comments", [])]
            self.controller.set_ui("comments", value, "Move comments")


class FrameResize(Interaction):
    """Dragging a frame's bottom-right corner: the item follows the mouse; on release the new
    size becomes one ui edit (one undo step)."""

    def __init__(self, view, frame: CommentItem, scene_pos):
        super().__init__(view)
        self.frame = frame
        self.start_size = (frame.rect.width(), frame.rect.height())
        self.offset = frame.mapFromScene(scene_pos) - frame.rect.bottomRight()

    def move(self, scene_pos, event) -> None:
        corner = self.frame.mapFromScene(scene_pos) - self.offset
        self.frame.resize_to(corner.x(), corner.y())

    def release(self, scene_pos, event) -> None:
        self.move(scene_pos, event)
        frame = self.frame
        if (frame.rect.width(), frame.rect.height()) == self.start_size or frame.scene() is None:
            return
        entry = frame.moved_entry()
        value = [entry if c.get("id") == entry["id"] else c
                 for c in self.controller.doc.ui.get("comments", [])]
        self.controller.set_ui("comments", value, "Resize frame")


class WireDrag(Interaction):
    """From a port to a port: connect. From an input that has a wire: pick that wire up by its
    end; dropping it elsewhere reconnects, dropping it on empty canvas disconnects. A new wire
    dropped on empty canvas offers the search popup and connects the node chosen there."""

    def __init__(self, view, item: NodeItem, port: str, from_output: bool, scene_pos):
        super().__init__(view)
        self.detached: Edge | None = None
        graph = self.controller.doc.graph_at(self.controller.ref)
        if not from_output:
            edge = graph.edge_into(item.node_id, port)
            if edge is not None:  # pick up the existing wire by its input end
                self.detached = edge
                wire = self.scene.wire_items.get(edge)
                if wire is not None:
                    wire.hide()
                item = self.scene.node_items[edge.src]
                port, from_output = edge.src_port, True
        self.item, self.port, self.from_output = item, port, from_output
        self.ghost = DragWireItem(item.port_pos(port, from_output), from_output)
        self.scene.addItem(self.ghost)
        self._lit = None
        self.move(scene_pos, None)

    def _target(self, scene_pos):
        hit = self.scene.port_near(scene_pos, 12.0)
        if hit is None:
            return None
        item, _port, is_output = hit
        if item is self.item or is_output == self.from_output:
            return None
        return hit

    def move(self, scene_pos, event) -> None:
        self.ghost.set_end(scene_pos)
        node = self.scene.node_at(scene_pos)
        if node is not self._lit:
            if self._lit is not None:
                self._lit.accepting = set()
                self._lit.update()
            self._lit = node
            if node is not None and node is not self.item:
                node.accepting = set(node.outs if not self.from_output else node.ins)
                node.update()

    def _cleanup(self) -> None:
        if self._lit is not None:
            self._lit.accepting = set()
            self._lit.update()
        if self.ghost.scene() is not None:
            self.scene.removeItem(self.ghost)
        if self.detached is not None:
            wire = self.scene.wire_items.get(self.detached)
            if wire is not None:
                wire.show()

    def release(self, scene_pos, event) -> None:
        self._cleanup()
        target = self._target(scene_pos)
        if target is not None:
            other, port, _ = target
            if self.from_output:
                src, src_port, dst, dst_port = self.item.node_id, self.port, other.node_id, port
            else:
                src, src_port, dst, dst_port = other.node_id, port, self.item.node_id, self.port
            new = Edge(src, src_port, dst, dst_port)
            if new == self.detached:
                return
            if self.detached is not None and (self.detached.dst, self.detached.dst_port) != (dst, dst_port):
                with self.controller.macro("Reconnect"):
                    self.controller.disconnect(self.detached)
                    self.controller.connect(src, src_port, dst, dst_port)
            else:
                self.controller.connect(src, src_port, dst, dst_port)
            return
        if self.detached is not None:
            self.controller.disconnect(self.detached)
            return
        if self.scene.node_at(scene_pos) is None:
            self.view.offer_new_connected(scene_pos, self.item.node_id, self.port, self.from_output)
