"""The canvas scene: mirrors one graph of the document (the controller's `ref`), one way.

It subscribes to document events and keeps maps from node id to NodeItem and from edge to
WireItem; it never changes the document (interactions ask the controller for that).

Wires are labelled with their shape; inside the body of a Loop the inspector unrolls
(training/loop_steps.py), with the value they carried at the step it shows instead.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtWidgets import QGraphicsScene

from .. import nodes
from ..core.compiler import Analysis
from ..core.document import GraphError, Subscription, node_path
from . import comments, doc_ops, port_text, step_labels, theme
from .items import NodeItem, ShareItem, WireItem
from .training import loop_steps, unroll


class CanvasScene(QGraphicsScene):
    rebuilt = Signal()

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.node_items: dict = {}
        self.wire_items: dict = {}
        self.step_tags: dict = {}      # node id -> step tag (overlay.Tag), inside the unrolled loop's body
        self.comment_items: dict = {}
        self.share_items: list = []
        self.result = Analysis()
        self.setBackgroundBrush(theme.CANVAS_BG)
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        self._listening = Subscription(self.on_event)
        self.steps = loop_steps.shared(controller)
        self.steps.changed.connect(self.relabel_wires)
        self.steps.step_changed.connect(self.relabel_wires)
        controller.ref_changed.connect(lambda _ref: self.rebuild())
        controller.document_replaced.connect(self._bind)  # ref_changed follows and rebuilds
        self._bind()
        self.rebuild()

    @property
    def doc(self):
        return self.controller.doc

    @property
    def ref(self) -> tuple:
        return self.controller.ref

    def _bind(self) -> None:
        self._listening.follow(self.doc)
        self.result = Analysis()

    # -- building -------------------------------------------------------------------------

    def rebuild(self) -> None:
        self.node_items, self.wire_items, self.comment_items = {}, {}, {}
        self.share_items = []
        self.step_tags = {}
        self.clear()
        try:
            graph = self.doc.graph_at(self.ref)
        except GraphError:
            return
        for index, node in enumerate(graph.nodes):
            self._add_node_item(node, index)
        for edge in graph.edges:
            self._add_wire(edge)
        self._build_shares()
        self._build_comments()
        self.apply_analysis(self.result)
        self._tag_step()
        self.rebuilt.emit()

    def _add_node_item(self, node, index: int) -> NodeItem:
        item = NodeItem(node.id)
        self.node_items[node.id] = item
        self._fill(item, node)
        pos = node.pos if node.pos is not None else [(index % 8) * 200, (index // 8) * 160]
        item.syncing = True
        item.setPos(QPointF(*pos))
        item.syncing = False
        self.addItem(item)
        return item

    def _fill(self, item: NodeItem, node) -> None:
        ins, outs = self.doc.ports(node)
        node_type = nodes.get(node.type)
        category = node_type.category if node_type else "Misc"
        kinds = {}
        int_inputs = getattr(node_type, "int_inputs", ()) if node_type else ()
        for name in ins:
            kinds[(name, False)] = "int" if name in int_inputs else "float"
        if node.type == "Input" and node.params.get("dtype") == "int64":
            kinds[("y", True)] = "int"
        if node.type == "Loop" and node.params.get("mode") == "tree":
            kinds[("children", False)] = "int"
        title = node.label or node.id
        has_body = bool(node.bodies) or node.type == "Block"
        item.set_content(title, doc_ops.summary(node), category, ins, outs, kinds, has_body)
        item.set_kinds(self._kinds(item))
        for wire in item.wires:
            wire.update_path()

    def _kinds(self, item: NodeItem) -> dict:
        """Output port colours from the last analysis (float, int or a single value)."""
        kinds = dict(item.kinds)
        path = node_path(self.ref, item.node_id)
        for name in item.outs:
            t = self.result.port_types.get((path, name))
            if t is not None:
                kinds[(name, True)] = port_text.port_kind(t)
        return kinds

    def _add_wire(self, edge) -> None:
        src, dst = self.node_items.get(edge.src), self.node_items.get(edge.dst)
        if src is None or dst is None:
            return
        wire = WireItem(edge, src, dst)
        self.wire_items[edge] = wire
        self.addItem(wire)
        self._label_wire(wire)

    def _remove_wire(self, edge) -> None:
        wire = self.wire_items.pop(edge, None)
        if wire is not None:
            wire.detach()
            self.removeItem(wire)

    def _build_shares(self) -> None:
        """A dashed line from each node that shares another's tensors to that node."""
        for item in self.share_items:
            item.detach()
            self.removeItem(item)
        self.share_items = []
        try:
            graph = self.doc.graph_at(self.ref)
        except GraphError:
            return
        for node in graph.nodes:
            sharer, owner = self.node_items.get(node.id), self.node_items.get(node.shares)
            if node.shares is not None and sharer is not None and owner is not None:
                item = ShareItem(sharer, owner)
                self.share_items.append(item)
                self.addItem(item)

    def _build_comments(self) -> None:
        for item in self.comment_items.values():
            self.removeItem(item)
        self.comment_items = {}
        for entry in comments.comments_of(self.doc, self.ref):
            item = comments.CommentItem(entry)
            self.comment_items[item.comment_id] = item
            self.addItem(item)

    # -- mirroring ------------------------------------------------------------------------

    def on_event(self, event) -> None:
        kind, ref = event.kind, tuple(event.graph)
        if kind == "reset":
            self.rebuild()
            return
        if kind == "ui_changed":
            if event.data == comments.KEY:
                self._build_comments()
            return
        if kind == "block_changed":
            self._refresh_instances(event.data)
            return
        if ref != self.ref:
            self._nested_change(ref)
            return
        graph = self.doc.graph_at(self.ref)
        if kind == "node_added":
            node = graph.node(event.node)
            self._add_node_item(node, graph.index_of(node.id))
        elif kind == "node_removed":
            item = self.node_items.pop(event.node, None)
            if item is not None:
                for wire in list(item.wires):
                    if isinstance(wire, WireItem):  # share lines are rebuilt with the shares
                        self._remove_wire(wire.edge)
                self.removeItem(item)
        elif kind == "node_moved":
            item = self.node_items.get(event.node)
            if item is not None and event.data is not None:
                item.syncing = True
                item.setPos(QPointF(*event.data))
                item.syncing = False
                if self._in_unrolled_body():  # a longer wire may now have room for its label
                    for wire in item.wires:
                        if isinstance(wire, WireItem):
                            self._label_wire(wire)
        elif kind in ("param_changed", "label_changed"):
            self._refresh(event.node)
            if kind == "param_changed" and graph.node(event.node).type in ("Input", "Output"):
                self._refresh_enclosing()
        elif kind == "node_renamed":
            old, new = event.data, event.node
            item = self.node_items.pop(old, None)
            if item is not None:
                item.node_id = new
                self.node_items[new] = item
                for wire in list(item.wires):  # edges are values: re-key the renamed ones
                    self._remove_wire(wire.edge)
                for edge in graph.edges_of(new):
                    if edge not in self.wire_items:
                        self._add_wire(edge)
                self._refresh(new)
        elif kind == "edge_added":
            self._add_wire(event.data)
        elif kind == "edge_removed":
            self._remove_wire(event.data)
        if kind in ("node_added", "node_removed", "node_renamed", "shares_changed"):
            self._build_shares()

    def _refresh(self, node_id: str) -> None:
        item = self.node_items.get(node_id)
        node = self.doc.graph_at(self.ref).node(node_id)
        if item is not None and node is not None:
            self._fill(item, node)

    def _nested_change(self, ref: tuple) -> None:
        """A change inside a body of a node shown here changes that node's ports."""
        n = len(self.ref)
        if len(ref) > n and ref[:n] == self.ref and not (n == 0 and ref[0].startswith("@")):
            self._refresh(ref[n])

    def _refresh_enclosing(self) -> None:
        pass  # the enclosing node is not on this canvas; it refreshes when shown again

    def _refresh_instances(self, block_name) -> None:
        graph = self.doc.graph_at(self.ref) if self._ref_exists() else None
        if graph is None:
            return
        for node in graph.nodes:
            if node.type == "Block" and node.params.get("block") == block_name:
                self._refresh(node.id)

    def _ref_exists(self) -> bool:
        try:
            self.doc.graph_at(self.ref)
            return True
        except GraphError:
            return False

    # -- analysis -------------------------------------------------------------------------

    def apply_analysis(self, result: Analysis) -> None:
        """Error badges on nodes (errors inside a body badge the enclosing node), shapes on wires."""
        self.result = result
        prefix_len = len(node_path(self.ref, "x")) - 1
        messages: dict = {}
        blocking: set = set()  # nodes with a problem training does not leave aside
        ignored = getattr(result, "ignored_by_training", set())
        here = node_path(self.ref, "")
        for err in result.errors:
            path = getattr(err, "node", None) or ""
            if not path.startswith(here):
                continue
            first = path[prefix_len:].split("/")[0]
            if first in self.node_items:
                text = err.message if hasattr(err, "message") else str(err)
                messages.setdefault(first, []).append(
                    text + (" (training ignores it)" if path in ignored else ""))
                if path not in ignored:
                    blocking.add(first)
        for node_id, item in self.node_items.items():
            item.set_error("\n".join(messages.get(node_id, [])), warning=node_id not in blocking)
            if result.port_types:
                item.set_kinds(self._kinds(item))
        for wire in self.wire_items.values():
            self._label_wire(wire)

    def relabel_wires(self, *_signal_args) -> None:
        """The unrolled loop or its step changed: wire labels and node tags follow."""
        for wire in self.wire_items.values():
            self._label_wire(wire)
        self._tag_step()

    def _in_unrolled_body(self) -> bool:
        return self.steps.record is not None and tuple(self.ref) == self.steps.body_ref()

    def _tag_step(self) -> None:
        """A tag over each body node with its value and gradient at the step shown."""
        for tag in self.step_tags.values():
            if tag.scene() is self:
                self.removeItem(tag)
        self.step_tags = {}
        if not self._in_unrolled_body():
            return
        for node_id, item in self.node_items.items():
            for port in item.outs:
                found = self.steps.at_step(node_id, port)
                if found is None:
                    continue
                value, grad = found
                tag = step_labels.step_tag(step_labels.tag_lines(value, grad, self.steps.step),
                                          item)
                tag.setToolTip(f"{node_id}.{port} at step {self.steps.step}\n"
                               + unroll.describe(value, grad))
                self.step_tags[node_id] = tag
                break  # one tag a node: its first output that ran

    def _label_wire(self, wire: WireItem) -> None:
        if self._label_step(wire):
            return
        t = self.result.port_types.get((node_path(self.ref, wire.edge.src), wire.edge.src_port))
        wire.set_label(port_text.format_type(t) if t is not None else "")
        wire.setToolTip("")

    def _label_step(self, wire: WireItem) -> bool:
        """Inside the unrolled loop's body: the wire's value at the step shown. False where
        there is none (another graph, or a wire the traced run did not reach)."""
        steps = self.steps
        if not self._in_unrolled_body():
            return False
        edge = wire.edge
        found = steps.at_step(edge.src, edge.src_port)
        if found is None:
            return False
        value, grad = found
        record = steps.record
        span = abs(wire.path.pointAtPercent(1).x() - wire.path.pointAtPercent(0).x())
        wire.set_label(step_labels.wire_label(value, steps.step, span))
        wire.setToolTip(f"{edge.src}.{edge.src_port} at step {steps.step} of {record.steps} "
                        f"(example {record.row})\n" + unroll.describe(value, grad))
        return True

    # -- queries --------------------------------------------------------------------------

    def selected_node_ids(self) -> list:
        """Selected nodes in document order."""
        return [node_id for node_id, item in self.node_items.items() if item.isSelected()]

    def selected_comment_ids(self) -> list:
        return [i.comment_id for i in self.selectedItems() if isinstance(i, comments.CommentItem)]

    def node_at(self, scene_pos: QPointF):
        for item in self.items(scene_pos):
            if isinstance(item, NodeItem):
                return item
        return None

    def port_near(self, scene_pos: QPointF, slack: float = 10.0):
        """(node item, port, is_output) of a port near a scene point, or None."""
        area = QRectF(scene_pos.x() - slack, scene_pos.y() - slack, 2 * slack, 2 * slack)
        for item in self.items(area):
            if isinstance(item, NodeItem):
                hit = item.port_at(scene_pos, slack)
                if hit is not None:
                    return item, hit[0], hit[1]
        return None

    def select_nodes(self, ids) -> None:
        self.clearSelection()
        for node_id in ids:
            item = self.node_items.get(node_id)
            if item is not None:
                item.setSelected(True)

    def nodes_rect(self, ids=None) -> QRectF:
        rect = QRectF()
        items = self.node_items.values() if ids is None else [self.node_items[i] for i in ids
                                                                if i in self.node_items]
        for item in items:
            rect = rect.united(item.sceneBoundingRect())
        return rect
