"""What training shows on the canvas: gradient flow on wires, a NaN badge, example values.

The overlay adds its own small items as children of the scene's node and wire items (so they
move and disappear with them) and never changes those items. It keeps no reference to them:
what it shows is read back from the scene's current items (`_glows`, `_tags`, `_badge`), so
a wire or node deleted, disconnected, undone or rebuilt takes its marks along and leaves
nothing dead behind. After any change of the graph it draws again from the scene as it now
is, once the change is done (a zero-time timer). It is fed in the UI thread by the dock, from
snapshots, and follows the run model the dock hands it (`follow`): a run that fails at a node
puts the NaN badge there, a new run takes it away, and a new document's model starts it blank.
Nothing here runs in the training thread.

The data comes from the probe's trace, keyed by node path (`rnn/cell`), so a loop body, a
branch side or a block definition opened on the canvas shows its own wires and values. What a
wire's colour means is flow_scale.py's.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from ...core.document import Subscription
from ...core.errors import GraphError
from ..number_text import number
from ..theme import NODE_WIDTH
from . import flow_scale as fs
from . import probe as pr

NAN_COLOR = fs.NAN_COLOR
# what changes the items the overlay draws on, or where: a moved node moves its wires
GRAPH_EVENTS = {"node_added", "node_removed", "node_renamed", "node_moved", "edge_added",
                "edge_removed", "param_changed", "label_changed", "block_changed", "reset"}


class Tag(QGraphicsItem):
    """A small rounded label with text, drawn as prepared (nothing computed in paint)."""

    def __init__(self, lines: list, color: QColor, text_color: QColor, bold: bool = False,
                 parent=None, max_width: float | None = None):
        super().__init__(parent)
        self.font = QFont()
        self.font.setPointSizeF(7.5)
        self.font.setBold(bold)
        metrics = QFontMetricsF(self.font)
        if max_width is not None:  # each line elided to fit, once, here
            lines = [metrics.elidedText(line, Qt.ElideRight, max_width) for line in lines]
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


class FlowGlow(QGraphicsPathItem):
    """The gradient drawn under a wire (a child of its WireItem)."""


class ExampleTag(Tag):
    """One example's values under a node (a child of its NodeItem)."""


class NanBadge(Tag):
    """"NaN" over the node where training failed (a child of its NodeItem)."""


class CanvasOverlay:
    """Owns the overlay items on one scene; the dock tells it what to show."""

    def __init__(self, scene):
        self.scene = scene
        self.flow_on = False
        self.trace: pr.Trace | None = None  # gradients of the last probe
        self.loss: str | None = None  # the Output training minimises
        self.nan: tuple | None = None  # (node path, message)
        self.example: dict = {}      # (node path, port) -> (array, runs) of one example
        self._redraw_due = False
        self._listening = Subscription(self._on_doc_event)
        self._model = None
        scene.rebuilt.connect(self.reapply)
        scene.controller.document_replaced.connect(self._bind)
        self._bind()

    def _bind(self) -> None:
        """Follow the document shown: its graph changes are what make us draw again."""
        self._listening.follow(self.scene.doc)

    def follow(self, model) -> None:
        """Show what `model` (run_model.py) says of its runs; nothing of the last one's stays."""
        if self._model is not None:
            self._model.state_changed.disconnect(self._on_run_state)
            self._model.run_failed.disconnect(self._on_run_failed)
        self._model = model
        model.state_changed.connect(self._on_run_state)
        model.run_failed.connect(self._on_run_failed)
        self.set_nan(None)
        self.set_example({})
        self.set_gradients(None)

    def _on_run_state(self, state: str) -> None:
        if state == "running" and self.nan is not None:
            self.set_nan(None)

    def _on_run_failed(self, message: str, node, setup: bool) -> None:
        if node and not setup:
            self.set_nan(node, message)

    def _on_doc_event(self, event) -> None:
        if event.kind in GRAPH_EVENTS and not self._redraw_due:
            # the scene mirrors the change in its own listener: draw once it is done
            self._redraw_due = True
            QTimer.singleShot(0, self._redraw)

    def _redraw(self) -> None:
        self._redraw_due = False
        try:
            self.reapply()
        except RuntimeError:  # the window closed in between: its scene's items are gone
            pass

    def _prefixes(self) -> list:
        """Under which trace paths the graph shown ran (several for a block definition)."""
        return pr.prefixes(self.scene.doc, self.scene.ref)

    def reapply(self) -> None:
        """Draw everything again on the scene's current items."""
        self.show_flow(self.flow_on)
        self.set_nan(*(self.nan or (None, "")))
        self.set_example(self.example)

    # -- what is on the canvas now ------------------------------------------------------------

    def _children(self, items: dict, kind) -> dict:
        """{key: our item of `kind`} among the children of the scene's current items."""
        found = {}
        for key, item in items.items():
            for child in item.childItems():
                if isinstance(child, kind):
                    found[key] = child
        return found

    @property
    def _glows(self) -> dict:
        """{Edge: FlowGlow} on the wires shown."""
        return self._children(self.scene.wire_items, FlowGlow)

    @property
    def _tags(self) -> dict:
        """{node id: ExampleTag} on the nodes shown."""
        return self._children(self.scene.node_items, ExampleTag)

    @property
    def _badge(self):
        badges = self._children(self.scene.node_items, NanBadge)
        return next(iter(badges.values()), None)

    # -- gradient flow ------------------------------------------------------------------------

    def set_gradients(self, trace, loss: str | None = None) -> None:
        self.trace = trace
        self.loss = loss
        if self.flow_on:
            self._draw_flow()

    def show_flow(self, on: bool) -> None:
        self.flow_on = on
        if on:
            self._draw_flow()
        else:
            for glow in self._glows.values():
                self._remove(glow)

    def grad_sizes(self) -> dict:
        """{Edge: gradient per example} for the wires shown: what flows back into each wire's
        source port (over every step of a loop body, every instance of a block). A wire into
        an Output of the main graph carries no gradient of its own (only the loss's does),
        so it has none here."""
        if self.trace is None or not self.trace.grads:
            return {}
        prefixes = self._prefixes()
        sizes = {}
        for edge in self.scene.wire_items:
            if self._into_output(edge) and edge.dst != self.loss:
                continue
            paths = [pr.join(p, edge.src) for p in prefixes]
            size = fs.per_example_size(self.trace, paths, edge.src_port)
            if size is not None:
                sizes[edge] = size
        return sizes

    def flow_levels(self) -> dict:
        """{Edge: position 0 (vanishing) .. 1 (exploding)} of the wires drawn; the loss's own
        wire is left out (its gradient is 1 by definition)."""
        median = fs.reference(self.trace) if self.trace is not None else None
        return {edge: fs.position(size, median) for edge, size in self.grad_sizes().items()
                if not self._is_loss_wire(edge)}

    def _into_output(self, edge) -> bool:
        if self.scene.ref:  # a body's or a block's Outputs pass their gradient on
            return False
        try:
            node = self.scene.doc.graph_at(self.scene.ref).node(edge.dst)
        except GraphError:
            return False
        return node is not None and node.type == "Output"

    def _is_loss_wire(self, edge) -> bool:
        return self.loss is not None and edge.dst == self.loss and self._into_output(edge)

    def _draw_flow(self) -> None:
        wires = self.scene.wire_items
        sizes = self.grad_sizes()
        glows = self._glows
        for edge, glow in glows.items():
            if edge not in sizes:
                self._remove(glow)
        median = fs.reference(self.trace) if self.trace is not None else None
        for edge, size in sizes.items():
            wire = wires[edge]
            glow = glows.get(edge)
            if glow is None:
                glow = FlowGlow(wire)
                glow.setAcceptedMouseButtons(Qt.NoButton)
            if glow.path() != wire.path:
                glow.setPath(wire.path)
            if self._is_loss_wire(edge):
                color, width = fs.LOSS_COLOR, 2.0
                tip = f"{edge}\nthe loss: its gradient is 1 by definition"
            else:
                color, width, _ = fs.style(size, median)
                tip = f"{edge}\ngradient per example: {number(size, 3)}"
                ratio = fs.ratio_text(size, median)
                if ratio:
                    tip += f"\n{ratio}"
            pen = QPen(color, width)
            pen.setCapStyle(Qt.RoundCap)
            glow.setPen(pen)
            glow.setToolTip(tip)

    # -- NaN badge ----------------------------------------------------------------------------

    def set_nan(self, path: str | None, message: str = "") -> None:
        """Badge the node of the graph shown that a failing path is in (None: take it away)."""
        badge = self._badge
        if badge is not None:
            self._remove(badge)
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
        badge = NanBadge(["NaN"], NAN_COLOR, QColor("#ffffff"), bold=True, parent=item)
        badge.setPos(-10, -badge.rect.height() - 2)
        badge.setToolTip(message)

    # -- one example --------------------------------------------------------------------------

    def set_example(self, example: dict) -> None:
        """`example`: {(node path, port): (array, runs)} of one example through the graph."""
        for tag in self._tags.values():
            self._remove(tag)
        self.example = dict(example)
        if not example:
            return
        for node_id, item in self.scene.node_items.items():
            lines = self._example_lines(node_id)
            if not lines:
                continue
            tag = ExampleTag(lines, QColor(15, 40, 60, 235), QColor("#cfe8ff"), parent=item)
            tag.setPos(0, item.rect.height() + 4)
            tag.setToolTip("\n".join(lines))
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
                lines += [head + steps, ("last " if runs > 1 else "") + preview(one, 3)]
            if lines:
                if len(paths) > 1:
                    lines.insert(0, f"in {path.rsplit('/', 1)[0]}")
                return lines
        return []

    def _remove(self, item) -> None:
        scene = item.scene()
        if scene is not None:
            scene.removeItem(item)
        item.setParentItem(None)  # a Python object again: freed with its last reference


def example_shape(value) -> str:
    """`(32,)` for one example's value."""
    dims = np.shape(value)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def preview(array, limit: int = 6) -> str:
    """`[0.12, 0, 1.3, …]` for one row of values (no `-0`)."""
    flat = np.asarray(array).ravel()
    shown = ", ".join(number(v, 3) if isinstance(v, (float, np.floating)) else str(v)
                      for v in flat[:limit].tolist())
    return f"[{shown}{', …' if flat.size > limit else ''}]"
