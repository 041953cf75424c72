"""The inspector: a form built from the selected node type's parameter declarations.

One widget per Param (spin box with its range, check box, combo box of choices, two linked
spin boxes for an int-or-pair size, a validated line edit for shapes, lists and values), help
text as tooltips. Values live in the document: the form reads them from it and writes through
the controller; a value the declaration refuses is not applied and the message shows under
the form.

Below the form, a selected Loop shows its steps (training/steps_panel.py): a step slider, the
body's values and gradients at that step, and a plot across the steps, for one example of the
last run. The panel stays while the canvas shows that loop's body, so the slider can be moved
while looking at the body's wires.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import nodes
from ..core.document import Subscription, is_valid_id
from . import doc_ops
from .pair_field import PairField
from .training import loop_steps
from .training.steps_panel import LoopStepsPanel

INT_LIMIT = 2_000_000_000


def parse_text(decl, text: str):
    """A line edit's text as a parameter value: JSON, or a bare comma list (`16, 8`)."""
    text = text.strip()
    if text in ("", "null", "none", "None"):
        if decl.nullable or not decl.required and decl.default is None:
            return None
        raise nodes.ParamError(f"{decl.name} needs a value")
    if decl.kind == "str":
        return text
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = json.loads(f"[{text}]")
        except ValueError:
            raise nodes.ParamError(f"{decl.name}: cannot read {text!r}; write a number or a "
                                   "list like 16, 8 or [16, 8]") from None
    if decl.kind in ("shape", "reshape") and isinstance(value, (int, float)):
        value = [value]
    return decl.check(value)


def format_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


class Inspector(QWidget):
    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.ids: list = []
        self.node_type = None
        self.editors: dict = {}
        self._loading = False
        self.title = QLabel("Nothing selected", self)
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.RichText)
        self.form_host = QWidget(self)
        self.form = QFormLayout(self.form_host)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #ff6b6b;")
        self.steps = loop_steps.shared(controller)
        self.steps_panel = LoopStepsPanel(self.steps, controller, self)
        self.steps_panel.hide()
        content = QWidget(self)
        layout = QVBoxLayout(content)
        layout.addWidget(self.title)
        layout.addWidget(self.form_host)
        layout.addWidget(self.message)
        layout.addWidget(self.steps_panel)
        layout.addStretch(1)
        # a Loop's steps make the inspector taller than its dock: it scrolls, never squeezes
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        self.scroll = scroll
        self._reveal_steps = False  # scroll the steps into view when the new loop's arrive
        self.steps.changed.connect(self._steps_changed)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._listening = Subscription(self._on_event)
        controller.message.connect(self.note_refusal)
        controller.document_replaced.connect(self._bind)
        controller.ref_changed.connect(lambda _ref: self.show_nodes([]))
        self._bind()

    def _bind(self) -> None:
        self._listening.follow(self.controller.doc)
        self.show_nodes([])

    def _on_event(self, event) -> None:
        if not self.ids or tuple(event.graph) != self.controller.ref:
            return
        if event.kind == "node_renamed" and event.data in self.ids:
            self.ids = [event.node if i == event.data else i for i in self.ids]
            self.load_values()
        elif event.kind == "node_removed" and event.node in self.ids:
            self.show_nodes([i for i in self.ids if i != event.node])
        elif event.node in self.ids and event.kind in ("param_changed", "label_changed",
                                                       "shares_changed"):
            self.load_values()

    # -- building -------------------------------------------------------------------------

    def show_nodes(self, ids) -> None:
        graph = self.controller.doc.graph_at(self.controller.ref)
        found = [graph.node(i) for i in ids if graph.node(i) is not None]
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        self.shares_box = None
        self.message.clear()
        types = {n.type for n in found}
        self._show_steps(found)
        self.form_host.setVisible(len(types) == 1)  # no empty band above the steps
        if not found:
            self.ids, self.node_type = [], None
            self.title.setText("<b>Nothing selected</b><br>Select a node to edit it.")
            return
        if len(types) > 1:
            self.ids, self.node_type = [], None
            self.title.setText(f"<b>{len(found)} nodes of {len(types)} types</b><br>"
                               "Select nodes of one type to edit them together.")
            return
        self.ids = [n.id for n in found]
        self.node_type = nodes.get(found[0].type)
        name = found[0].type
        count = f" × {len(found)}" if len(found) > 1 else ""
        help_text = self.node_type.help if self.node_type else "unknown type"
        self.title.setText(f"<b>{name}{count}</b><br><span style='color:#9aa1ab'>{help_text}</span>")

        self.id_edit = QLineEdit(self.form_host)
        self.id_edit.setToolTip("The node's id: names its outputs, weights and exported variable.")
        self.id_edit.setEnabled(len(found) == 1)
        self.id_edit.editingFinished.connect(self._rename)
        self.form.addRow("id", self.id_edit)
        self.label_edit = QLineEdit(self.form_host)
        self.label_edit.setToolTip("Free text shown as the node's title.")
        self.label_edit.editingFinished.connect(self._relabel)
        self.form.addRow("label", self.label_edit)
        self.shares_box = self._shares_editor(found) if len(found) == 1 else None
        for decl in (self.node_type.params if self.node_type else ()):
            editor = self._editor_for(decl)
            tip = decl.help + ("" if decl.required else f"  (default: {format_value(decl.default) or 'null'})")
            editor.setToolTip(tip)
            label = QLabel(decl.name, self.form_host)
            label.setToolTip(tip)
            self.form.addRow(label, editor)
            self.editors[decl.name] = editor
        self.load_values()

    def _show_steps(self, found: list) -> None:
        """The step panel for a selected Loop, and inside the body of the loop it unrolls
        (where a selected body node is the one plotted); hidden elsewhere."""
        ref = tuple(self.controller.ref)
        if len(found) == 1 and found[0].type == "Loop":
            self._reveal_steps = self.steps.loop != (ref, found[0].id)
            self.steps.show_loop(ref, found[0].id)
            self.steps_panel.show()
            return
        inside = self.steps.loop is not None and ref == self.steps.body_ref()
        if inside and len(found) == 1:
            self.steps_panel.plot_node(found[0].id)
        self.steps_panel.setVisible(inside)
        if inside and not found:  # just entered the body: the slider in view, not scrolled off
            QTimer.singleShot(0, self._reveal)

    def _steps_changed(self) -> None:
        """A Loop just selected got its steps: bring the slider and the table into view
        (below a Loop's form they would start out of sight in a short dock)."""
        if self._reveal_steps and self.steps.record is not None and self.steps_panel.isVisible():
            self._reveal_steps = False
            QTimer.singleShot(0, self._reveal)  # once the panel's new rows are laid out

    def _reveal(self) -> None:
        """The least scrolling that shows the table, then the slider and header above it."""
        self.scroll.ensureWidgetVisible(self.steps_panel.table, 0, 10)
        self.scroll.ensureWidgetVisible(self.steps_panel.header, 0, 4)

    def _shares_editor(self, found: list):
        """For a node that owns tensors: whose tensors it uses, its own or another node's of
        the same type (and block) in this graph (format version 2's `shares`)."""
        node = found[0]
        owns = node.type == "Block" or (self.node_type is not None and type(
            self.node_type).weights is not nodes.NodeType.weights)
        if not owns:
            return None
        graph = self.controller.doc.graph_at(self.controller.ref)
        others = [n.id for n in graph.nodes if n.id != node.id and n.type == node.type
                  and (node.type != "Block" or n.params.get("block") == node.params.get("block"))]
        box = QComboBox(self.form_host)
        box.addItems(["(its own)"] + others)
        box.setToolTip("Use the tensors of another node of this graph instead of owning some: "
                       "both uses train the same weights (drawn as a dashed line).")
        box.activated.connect(lambda i, b=box: self.controller.set_shares(
            self.ids[0], None if i == 0 else b.itemText(i)))
        self.form.addRow("shares", box)
        return box

    def _editor_for(self, decl):
        if decl.kind in ("int", "axis") and not decl.nullable:
            box = QSpinBox(self.form_host)
            box.setRange(int(decl.minimum) if decl.minimum is not None else -INT_LIMIT,
                         int(decl.maximum) if decl.maximum is not None else INT_LIMIT)
            box.setKeyboardTracking(False)
            box.editingFinished.connect(lambda d=decl, b=box: self.apply(d.name, b.value()))
            return box
        if decl.kind == "pair":
            field = PairField(decl, self.form_host)
            field.edited.connect(lambda value, d=decl: self.apply(d.name, value))
            return field
        if decl.kind == "float" and not decl.nullable:
            box = QDoubleSpinBox(self.form_host)
            box.setDecimals(6)
            box.setRange(decl.minimum if decl.minimum is not None else -1e12,
                         decl.maximum if decl.maximum is not None else 1e12)
            box.setSingleStep(0.1)
            box.setKeyboardTracking(False)
            box.editingFinished.connect(lambda d=decl, b=box: self.apply(d.name, b.value()))
            return box
        if decl.kind == "bool":
            box = QCheckBox(self.form_host)
            box.toggled.connect(lambda on, d=decl: self.apply(d.name, bool(on)))
            return box
        if decl.kind == "choice":
            box = QComboBox(self.form_host)
            box.addItems([str(c) for c in decl.choices])
            box.activated.connect(lambda i, d=decl: self.apply(d.name, d.choices[i]))
            return box
        if decl.name == "block":
            box = QComboBox(self.form_host)
            box.setEditable(False)
            box.addItems(sorted(self.controller.doc.blocks))
            box.activated.connect(lambda _i, d=decl, b=box: self.apply(d.name, b.currentText()))
            return box
        edit = QLineEdit(self.form_host)
        edit.setPlaceholderText("null" if decl.nullable or decl.default is None else "")
        edit.editingFinished.connect(lambda d=decl, e=edit: self.apply_text(d, e.text()))
        edit.textEdited.connect(lambda text, d=decl, e=edit: self._mark(e, d, text))
        return edit

    @staticmethod
    def _mark(edit, decl, text: str) -> None:
        """Outline a line edit in red while its text is not a value the parameter takes."""
        try:
            parse_text(decl, text)
            ok = True
        except nodes.ParamError:
            ok = False
        edit.setProperty("invalid", not ok)
        edit.setStyleSheet("" if ok else "border: 1px solid #e5484d;")

    def load_values(self) -> None:
        if not self.ids:
            return
        graph = self.controller.doc.graph_at(self.controller.ref)
        node = graph.node(self.ids[0])
        if node is None:
            return
        self._loading = True
        try:
            self.id_edit.setText(node.id)
            self.label_edit.setText(node.label or "")
            if self.shares_box is not None:
                index = self.shares_box.findText(node.shares) if node.shares else 0
                self.shares_box.setCurrentIndex(max(index, 0))
            values = doc_ops.resolved_params(node)
            for name, editor in self.editors.items():
                value = values.get(name)
                editor.blockSignals(True)
                if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        editor.setValue(value)
                elif isinstance(editor, QCheckBox):
                    editor.setChecked(bool(value))
                elif isinstance(editor, PairField):
                    editor.setValue(value)
                elif isinstance(editor, QComboBox):
                    index = editor.findText(str(value))
                    if index >= 0:
                        editor.setCurrentIndex(index)
                else:
                    editor.setText(format_value(value))
                editor.blockSignals(False)
        finally:
            self._loading = False

    # -- applying -------------------------------------------------------------------------

    def apply(self, name: str, value) -> bool:
        """Set a parameter on every node shown; a refused value restores the form."""
        if self._loading or not self.ids:
            return False
        self.message.clear()
        self._last_refusal = ""
        ok = self.controller.set_param(self.ids, name, value)
        if not ok:
            self.message.setText(self._last_refusal or f"{name}: value refused")
            self.load_values()
        return ok

    def apply_text(self, decl, text: str) -> bool:
        if self._loading or not self.ids:
            return False
        try:
            value = parse_text(decl, text)
        except nodes.ParamError as exc:
            self.message.setText(str(exc))
            self.load_values()
            return False
        return self.apply(decl.name, value)

    _last_refusal = ""

    def note_refusal(self, text: str) -> None:
        self._last_refusal = text

    def _rename(self) -> None:
        if self._loading or len(self.ids) != 1:
            return
        old, new = self.ids[0], self.id_edit.text().strip()
        if new == old:
            return
        graph = self.controller.doc.graph_at(self.controller.ref)
        if not is_valid_id(new):
            self.message.setText(f"{new!r} is not a valid id: use letters, digits and _, "
                                 "not starting with a digit")
        elif graph.node(new) is not None:
            self.message.setText(f"a node {new!r} exists already")
        elif self.controller.rename(old, new):
            self.message.clear()
            return
        self.load_values()

    def _relabel(self) -> None:
        if self._loading or not self.ids:
            return
        text = self.label_edit.text().strip() or None
        graph = self.controller.doc.graph_at(self.controller.ref)
        changed = [i for i in self.ids if graph.node(i) is not None and graph.node(i).label != text]
        if len(changed) == 1:
            self.controller.set_label(changed[0], text)
        elif changed:
            with self.controller.macro("Set label"):
                for node_id in changed:
                    self.controller.set_label(node_id, text)
