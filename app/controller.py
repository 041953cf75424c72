"""The editor's controller: the document, its undo stack, and the graph being shown.

Everything a user does arrives here as an intention (add this node there, connect these ports)
and leaves as undo commands pushed on the stack. Nothing here touches scene items.
"""

from __future__ import annotations

import contextlib
import json

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from .. import nodes
from ..core.document import Document, Edge, GraphError, ref_name
from ..core.training_section import rename_node
from ..core.well_formed import walk_graphs
from . import commands as cmd
from . import doc_ops

_UNSET = object()


class EditorController(QObject):
    ref_changed = Signal(tuple)       # the canvas now shows another graph
    document_replaced = Signal()      # File > Open / New / recovery: a fresh document
    message = Signal(str)             # a short note for the status bar

    def __init__(self, doc: Document | None = None, parent=None):
        super().__init__(parent)
        self.doc = doc if doc is not None else Document()
        self.stack = QUndoStack(self)
        self.ref: tuple = ()
        self.doc.subscribe(self._on_event)

    # -- document and navigation ----------------------------------------------------------

    def set_document(self, doc: Document) -> None:
        """Show another document. Not an undoable edit: the undo stack starts afresh."""
        self.doc.unsubscribe(self._on_event)
        self.doc = doc
        self.doc.subscribe(self._on_event)
        self.stack.clear()
        self.ref = ()
        self.document_replaced.emit()
        self.ref_changed.emit(self.ref)

    def open_graph(self, ref) -> None:
        ref = tuple(ref)
        self.doc.graph_at(ref)  # raises GraphError when it does not exist
        if ref != self.ref:
            self.ref = ref
            self.ref_changed.emit(ref)

    def open_node(self, node_id: str) -> bool:
        """Enter a Loop's body, a Branch's then side or a Block's definition. True if it did."""
        node = self.doc.graph_at(self.ref).node(node_id)
        if node is None:
            return False
        if node.type == "Block":
            name = node.params.get("block")
            if name in self.doc.blocks:
                self.open_graph(("@" + name,))
                return True
            return False
        for key in ("body", "then", "else"):
            if key in node.bodies:
                self.open_graph(self.ref + (node_id, key))
                return True
        return False

    def breadcrumb(self) -> list:
        """[(text, ref)] from `main` to the graph shown."""
        crumbs = [("main", ())]
        ref = self.ref
        start = 0
        if ref and ref[0].startswith("@"):
            crumbs.append((ref[0], ref[:1]))
            start = 1
        for i in range(start, len(ref), 2):
            node_id, key = ref[i], ref[i + 1]
            crumbs.append((node_id, ref[:i]))  # the node, in the graph holding it
            crumbs.append((key, ref[: i + 2]))
        return crumbs

    def _on_event(self, event) -> None:
        # An undo elsewhere may remove the graph we are looking at: step out to what is left.
        if event.kind in ("node_removed", "node_renamed", "block_changed", "reset"):
            ref = self.ref
            while ref:
                try:
                    self.doc.graph_at(ref)
                    break
                except GraphError:
                    ref = () if len(ref) == 1 else ref[:-2]
            if ref != self.ref:
                self.ref = ref
                self.ref_changed.emit(ref)

    # -- edits ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def macro(self, text: str):
        self.stack.beginMacro(text)
        try:
            yield
        finally:
            self.stack.endMacro()

    def push(self, command) -> bool:
        """Push a command; a GraphError from the document is reported and undone, not raised."""
        cmd.DocCommand.failures.clear()
        self.stack.push(command)
        if cmd.DocCommand.failures:
            self.message.emit(str(cmd.DocCommand.failures[-1]))
            cmd.DocCommand.failures.clear()
            return False
        return True

    def add_node(self, type_name: str, pos, ref=None) -> str | None:
        ref = self.ref if ref is None else tuple(ref)
        try:
            node = doc_ops.new_node(self.doc, ref, type_name, pos)
        except GraphError as exc:
            self.message.emit(str(exc))
            return None
        if node.type == "Block" and node.params["block"] not in self.doc.blocks:
            with self.macro(f"Add block {node.id}"):
                self.push(cmd.SetBlock(self.doc, node.params["block"], doc_ops.default_body()))
                self.push(cmd.AddNode(self.doc, ref, node))
            return node.id
        return node.id if self.push(cmd.AddNode(self.doc, ref, node)) else None

    def remove_nodes(self, ids) -> None:
        ids = list(ids)
        if not ids:
            return
        with self.macro(f"Delete {len(ids)} node{'s' if len(ids) > 1 else ''}"):
            for node_id in ids:
                self.push(cmd.RemoveNode(self.doc, self.ref, node_id))

    def connect(self, src: str, src_port: str, dst: str, dst_port: str) -> bool:
        if src == dst:
            return False
        graph = self.doc.graph_at(self.ref)
        edge = Edge(src, src_port, dst, dst_port)
        if graph.edge_into(dst, dst_port) == edge:
            return False
        if _reaches(graph, dst, src):
            self.message.emit(f"{src} -> {dst} would make a cycle; use a Loop to repeat")
            return False
        return self.push(cmd.Connect(self.doc, self.ref, edge))

    def disconnect(self, edge: Edge) -> None:
        self.push(cmd.Disconnect(self.doc, self.ref, edge))

    def move_nodes(self, moves: dict) -> None:
        moves = {k: v for k, v in moves.items() if v[0] != v[1]}
        if moves:
            self.push(cmd.MoveNodes(self.doc, self.ref, moves))

    def set_param(self, ids, name: str, value) -> bool:
        """Set one parameter on several nodes, as one step; False (nothing changed) if refused."""
        ids = list(ids)
        for node_id in ids:  # check first: a value one node refuses changes none of them
            node = self.doc.node_at(self.ref, node_id)
            node_type = nodes.get(node.type)
            decl = node_type.param(name) if node_type else None
            if decl is None:
                self.message.emit(f"{node.type} has no parameter {name!r}")
                return False
            if value is not None:
                try:
                    decl.check(value)
                except nodes.ParamError as exc:
                    self.message.emit(str(exc))
                    return False
        changed = [i for i in ids if self.doc.node_at(self.ref, i).params.get(name, _UNSET) != value]
        if not changed:
            return True
        with self.macro(f"Set {name} = {json.dumps(value)}"):
            for node_id in changed:
                self.push(cmd.SetParam(self.doc, self.ref, node_id, name, value))
        return True

    def set_label(self, node_id: str, label: str | None) -> None:
        if self.doc.node_at(self.ref, node_id).label != label:
            self.push(cmd.SetLabel(self.doc, self.ref, node_id, label or None))

    def set_shares(self, node_id: str, owner: str | None) -> None:
        """Make a node use another node's tensors (None: its own)."""
        if self.doc.node_at(self.ref, node_id).shares != owner:
            self.push(cmd.SetShares(self.doc, self.ref, node_id, owner))

    def rename(self, old: str, new: str) -> bool:
        if old == new:
            return True
        graph = self.doc.graph_at(self.ref)
        with self.macro(f"Rename {old} to {new}"):
            if not self.push(cmd.Rename(self.doc, self.ref, old, new)):
                return False
            # a carry Output names its Input by id: keep it pointing at the renamed node
            for node in graph.nodes:
                if node.type == "Output" and node.params.get("carry") == old:
                    self.push(cmd.SetParam(self.doc, self.ref, node.id, "carry", new))
            self._follow_port_rename(old, new)
            if self.ref == () and self.doc.training:
                training = rename_node(self.doc.training, old, new)
                if training != self.doc.training:
                    self.push(cmd.SetTraining(self.doc, training))
        return True

    def _follow_port_rename(self, old: str, new: str) -> None:
        """A body's Input/Output id is a port of the enclosing node (of every instance, for a
        block definition): move the wires on that port to its new name."""
        node = self.doc.graph_at(self.ref).node(new)
        if node is None or node.type not in ("Input", "Output") or not self.ref:
            return
        if self.ref[0].startswith("@"):
            name = self.ref[0][1:]
            holders = [(ref, n.id) for ref, graph, _ in walk_graphs(self.doc) for n in graph.nodes
                       if n.type == "Block" and n.params.get("block") == name]
        else:
            holders = [(self.ref[:-2], self.ref[-2])]
        for ref, holder_id in holders:
            graph = self.doc.graph_at(ref)
            ins, outs = self.doc.ports(graph.node(holder_id))
            for edge in list(graph.edges):
                if edge.dst == holder_id and edge.dst_port == old and old not in ins:
                    moved = Edge(edge.src, edge.src_port, holder_id, new)
                elif edge.src == holder_id and edge.src_port == old and old not in outs:
                    moved = Edge(holder_id, new, edge.dst, edge.dst_port)
                else:
                    continue
                self.push(cmd.Disconnect(self.doc, ref, edge))
                self.push(cmd.Connect(self.doc, ref, moved))

    # -- clipboard ------------------------------------------------------------------------

    def copy_text(self, ids) -> str:
        return json.dumps(doc_ops.selection_to_dict(self.doc, self.ref, ids), indent=1)

    def paste_text(self, text: str, offset=(30, 30)) -> list:
        """Paste clipboard JSON into the shown graph; returns the new node ids."""
        try:
            plan = doc_ops.plan_paste(self.doc, self.ref, json.loads(text), offset)
        except (ValueError, GraphError) as exc:
            self.message.emit(f"Cannot paste: {exc}")
            return []
        with self.macro(f"Paste {len(plan.nodes)} node{'s' if len(plan.nodes) != 1 else ''}"):
            for name, graph in plan.blocks.items():
                self.push(cmd.SetBlock(self.doc, name, graph))
            for node in plan.nodes:
                self.push(cmd.AddNode(self.doc, self.ref, node))
            for edge in plan.edges:
                self.push(cmd.Connect(self.doc, self.ref, edge))
        return [n.id for n in plan.nodes]

    # -- blocks ---------------------------------------------------------------------------

    def group(self, ids, name: str | None = None) -> str | None:
        try:
            plan = doc_ops.plan_group(self.doc, self.ref, ids, name)
        except GraphError as exc:
            self.message.emit(str(exc))
            return None
        with self.macro(f"Group into block {plan.block_name}"):
            self.push(cmd.SetBlock(self.doc, plan.block_name, plan.definition))
            for node_id in plan.remove:
                self.push(cmd.RemoveNode(self.doc, self.ref, node_id))
            self.push(cmd.AddNode(self.doc, self.ref, plan.instance))
            for edge in plan.edges:
                self.push(cmd.Connect(self.doc, self.ref, edge))
        return plan.instance.id

    def ungroup(self, instance_id: str) -> list:
        try:
            plan = doc_ops.plan_ungroup(self.doc, self.ref, instance_id)
        except GraphError as exc:
            self.message.emit(str(exc))
            return []
        with self.macro(f"Ungroup {instance_id}"):
            self.push(cmd.RemoveNode(self.doc, self.ref, instance_id))
            for node in plan.nodes:
                self.push(cmd.AddNode(self.doc, self.ref, node))
            for edge in plan.edges:
                self.push(cmd.Connect(self.doc, self.ref, edge))
        return [n.id for n in plan.nodes]

    def set_ui(self, key: str, value, text: str = "Edit comments") -> None:
        if self.doc.ui.get(key) != value:
            self.push(cmd.SetUi(self.doc, key, value, text))

    def graph_title(self) -> str:
        return ref_name(self.ref) or "main"


def _reaches(graph, start: str, goal: str) -> bool:
    """Whether `goal` is downstream of `start` (iterative: deep graphs must not recurse)."""
    succ: dict = {}
    for e in graph.edges:
        succ.setdefault(e.src, []).append(e.dst)
    seen, stack = set(), [start]
    while stack:
        n = stack.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(succ.get(n, ()))
    return False
