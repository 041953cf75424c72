"""Undo commands. Each one calls Document methods, and nothing else, both ways.

Compound edits (delete a selection, paste, group into block) are macros of these primitives on
the undo stack (see `app.controller`), so each shows as one step in Edit > History.
"""

from __future__ import annotations

import copy
from typing import ClassVar

from PySide6.QtGui import QUndoCommand

from ..core.document import Edge, Node
from ..core.errors import GraphError
from ..core.training_section import moved

_MISSING = object()


class DocCommand(QUndoCommand):
    """A command whose `do()` the document may refuse (a GraphError): the command then marks
    itself obsolete, so QUndoStack.push drops it instead of recording a step that never happened,
    and the error waits in `DocCommand.failures` for the controller to report."""

    failures: ClassVar[list] = []

    def __init__(self, doc, text: str, parent=None):
        super().__init__(text, parent)
        self.doc = doc

    def redo(self):
        try:
            self.do()
        except GraphError as exc:
            self.setObsolete(True)
            DocCommand.failures.append(exc)

    def do(self):
        raise NotImplementedError


class AddNode(DocCommand):
    def __init__(self, doc, ref, node: Node, index=None, parent=None):
        super().__init__(doc, f"Add {node.type} {node.id}", parent)
        self.ref, self.node, self.index = tuple(ref), node, index

    def do(self):
        self.doc.add_node(self.ref, copy.deepcopy(self.node), self.index)

    def undo(self):
        self.doc.remove_node(self.ref, self.node.id)


class RemoveNode(DocCommand):
    """Remove a node; undo puts it back at its index and its edges back at theirs."""

    def __init__(self, doc, ref, node_id: str, parent=None):
        super().__init__(doc, f"Delete {node_id}", parent)
        self.ref, self.node_id = tuple(ref), node_id
        self.saved = None

    def do(self):
        self.saved = self.doc.remove_node(self.ref, self.node_id)

    def undo(self):
        node, index, edges = self.saved
        self.doc.add_node(self.ref, node, index)
        for i, edge in edges:  # ascending original indices: each insert lands where it was
            self.doc.add_edge(self.ref, edge, i)


class Connect(DocCommand):
    """Add an edge; an edge already into that input is replaced in the same step."""

    def __init__(self, doc, ref, edge: Edge, parent=None):
        super().__init__(doc, f"Connect {edge}", parent)
        self.ref, self.edge = tuple(ref), edge
        self.replaced = None  # (index, edge)

    def do(self):
        graph = self.doc.graph_at(self.ref)
        old = graph.edge_into(self.edge.dst, self.edge.dst_port)
        self.replaced = None
        if old is not None:
            self.replaced = (self.doc.remove_edge(self.ref, old), old)
        self.doc.add_edge(self.ref, self.edge)

    def undo(self):
        self.doc.remove_edge(self.ref, self.edge)
        if self.replaced is not None:
            index, old = self.replaced
            self.doc.add_edge(self.ref, old, index)


class Disconnect(DocCommand):
    def __init__(self, doc, ref, edge: Edge, parent=None):
        super().__init__(doc, f"Disconnect {edge}", parent)
        self.ref, self.edge = tuple(ref), edge
        self.index = None

    def do(self):
        self.index = self.doc.remove_edge(self.ref, self.edge)

    def undo(self):
        self.doc.add_edge(self.ref, self.edge, self.index)


class MoveNodes(DocCommand):
    """One drag: every moved node's old and new position."""

    def __init__(self, doc, ref, moves: dict, parent=None):
        names = ", ".join(list(moves)[:3]) + ("..." if len(moves) > 3 else "")
        super().__init__(doc, f"Move {names}", parent)
        self.ref = tuple(ref)
        self.moves = {k: (copy.copy(a), copy.copy(b)) for k, (a, b) in moves.items()}

    def do(self):
        for node_id, (_, new) in self.moves.items():
            self.doc.move_node(self.ref, node_id, new)

    def undo(self):
        for node_id, (old, _) in self.moves.items():
            self.doc.move_node(self.ref, node_id, old)


class SetParam(DocCommand):
    def __init__(self, doc, ref, node_id: str, name: str, value, parent=None):
        super().__init__(doc, f"Set {node_id}.{name}", parent)
        self.ref, self.node_id, self.name = tuple(ref), node_id, name
        self.value = copy.deepcopy(value)
        self.old = _MISSING

    def do(self):
        node = self.doc.node_at(self.ref, self.node_id)
        self.old = copy.deepcopy(node.params[self.name]) if self.name in node.params else _MISSING
        self.doc.set_param(self.ref, self.node_id, self.name, self.value)

    def undo(self):
        if self.old is _MISSING:
            self.doc.unset_param(self.ref, self.node_id, self.name)
        else:
            self.doc.set_param(self.ref, self.node_id, self.name, self.old)


class SetLabel(DocCommand):
    def __init__(self, doc, ref, node_id: str, label, parent=None):
        super().__init__(doc, f"Label {node_id}", parent)
        self.ref, self.node_id, self.label = tuple(ref), node_id, label
        self.old = None

    def do(self):
        self.old = self.doc.node_at(self.ref, self.node_id).label
        self.doc.set_label(self.ref, self.node_id, self.label)

    def undo(self):
        self.doc.set_label(self.ref, self.node_id, self.old)


class SetShares(DocCommand):
    """Make a node use another node's tensors (None: its own again)."""

    def __init__(self, doc, ref, node_id: str, owner, parent=None):
        text = f"{node_id} shares {owner}" if owner else f"{node_id} owns its tensors"
        super().__init__(doc, text, parent)
        self.ref, self.node_id, self.owner = tuple(ref), node_id, owner
        self.old = None

    def do(self):
        self.old = self.doc.node_at(self.ref, self.node_id).shares
        self.doc.set_shares(self.ref, self.node_id, self.owner)

    def undo(self):
        self.doc.set_shares(self.ref, self.node_id, self.old)


class Rename(DocCommand):
    def __init__(self, doc, ref, old: str, new: str, parent=None):
        super().__init__(doc, f"Rename {old} to {new}", parent)
        self.ref, self.old, self.new = tuple(ref), old, new

    def do(self):
        self.doc.rename_node(self.ref, self.old, self.new)

    def undo(self):
        self.doc.rename_node(self.ref, self.new, self.old)


class SetBlock(DocCommand):
    """Add, replace or remove (graph None) a block definition."""

    def __init__(self, doc, name: str, graph, parent=None):
        super().__init__(doc, f"Block {name}", parent)
        self.name, self.graph = name, graph
        self.old = None
        self.index = None  # where the old definition was: undo puts it back there

    def do(self):
        graph = None if self.graph is None else self.graph.copy()
        self.index = _index_of(self.doc.blocks, self.name)
        self.old = self.doc.set_block(self.name, graph)

    def undo(self):
        self.doc.set_block(self.name, self.old, self.index)


class SetTraining(DocCommand):
    """Its sections keep the folder they were written for: a save into another folder in
    between rewrites the data path (core.save), and undo and redo must name the same file."""

    def __init__(self, doc, training, parent=None):
        super().__init__(doc, "Edit training", parent)
        self.training = copy.deepcopy(training)
        self.old = None
        self.folder = doc.folder

    def do(self):
        self.training = moved(self.training, self.folder, self.doc.folder)
        self.folder = self.doc.folder
        self.old = copy.deepcopy(self.doc.training)
        self.doc.set_training(self.training)

    def undo(self):
        self.doc.set_training(moved(self.old, self.folder, self.doc.folder))


class SetUi(DocCommand):
    """Comments, frames and other view state kept in the document's `ui`."""

    def __init__(self, doc, key: str, value, text: str = "Edit comments", parent=None):
        super().__init__(doc, text, parent)
        self.key, self.value = key, copy.deepcopy(value)
        self.old = None
        self.index = None  # where the old value was: undo puts it back there

    def do(self):
        self.old = copy.deepcopy(self.doc.ui.get(self.key))
        self.index = _index_of(self.doc.ui, self.key)
        self.doc.set_ui(self.key, self.value)

    def undo(self):
        self.doc.set_ui(self.key, self.old, self.index)


def _index_of(mapping: dict, key) -> int | None:
    """The place of a key in a dict's order, or None. Undo restores it there, so that the
    saved text after undoing everything is the text before."""
    return list(mapping).index(key) if key in mapping else None
