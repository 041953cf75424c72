"""The unrolled Loop, in the inspector: a step slider, the body's wires at that step, and a
small plot of one of them across the steps.

It shows what the shared StepModel (loop_steps.py) holds and tells it the step and example
the user picks; the canvas follows the same model, so moving the slider relabels the body's
wires. Nothing here runs the graph.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import GraphError
from ..plot_style import quiet_plot
from . import probe as pr
from . import unroll

BG = "#1f2126"
VALUE_PEN = "#5aa9ff"
GRAD_PEN = "#f2994a"
SHOWN_COUNTS = 16  # sample counts listed one by one


def body_wires(doc, body_ref, record) -> list:
    """[(node id, port, label)] of the wires of the loop's body, each source once, in the
    body's node order; from the record alone when the document no longer has that body."""
    try:
        graph = doc.graph_at(body_ref)
    except GraphError:
        graph = None
    if graph is None:
        return [(n, p, wire_name(n, p)) for n, p in sorted(record.values)]
    order = {node.id: i for i, node in enumerate(graph.nodes)}
    seen = []
    for edge in sorted(graph.edges, key=lambda e: (order.get(e.src, 0), e.src_port)):
        if (edge.src, edge.src_port) not in seen:
            seen.append((edge.src, edge.src_port))
    out = []
    for node_id, port in seen:
        node = graph.node(node_id)
        name = (node.label or node_id) if node is not None else node_id
        out.append((node_id, port, wire_name(name, port)))
    return out


def wire_name(name: str, port: str) -> str:
    """`act`, or `h_next: lstm cell` for a node with several outputs (the port first: a long
    label is cut at its end)."""
    return name if port == "y" else f"{port}: {name}"


def counts_text(record) -> str:
    """What decides the step count, and for per-sample loops, each sample's own."""
    steps, kind = record.steps, record.kind
    if kind == "scan":
        return f"scan: a step per sequence element ({steps} here)."
    if kind == "for":
        return f"for: {steps} steps, the same for every sample."
    if kind == "while":
        return f"while: the batch steps until its test stops it; this example alone: {steps}."
    what = "levels of its tree" if kind == "tree" else "steps until it stopped"
    text = f"{kind}: each sample its own count ({what}); example {record.row}: <b>{steps}</b>."
    counts = record.counts
    if counts is not None and len(counts):
        listed = " ".join(f"<b>{c}</b>" if i == record.row else str(c)
                          for i, c in enumerate(counts[:SHOWN_COUNTS].tolist()))
        more = " …" if len(counts) > SHOWN_COUNTS else ""
        text += (f"<br>rows 0–{len(counts) - 1}: {listed}{more} "
                 f"({counts.min()} to {counts.max()}, mean {counts.mean():.1f})")
    return text


class LoopStepsPanel(QWidget):
    def __init__(self, model, controller, parent=None):
        super().__init__(parent)
        self.model = model
        self.controller = controller
        self.wires: list = []          # [(node id, port, label)] of the body's wires
        self._table_wires: list = []   # those with values, in the table's order
        self._syncing = False
        self.header = QLabel(self)
        self.header.setTextFormat(Qt.RichText)
        self.header.setWordWrap(True)
        self.row_box = QSpinBox(self)
        self.row_box.setToolTip("The training example run through the loop")
        self.row_box.setKeyboardTracking(False)
        self.row_box.valueChanged.connect(self._row_chosen)
        self.step_label = QLabel(self)
        self.slider = QSlider(Qt.Horizontal, self)
        self.slider.setToolTip("The step shown: the table, the plot's line and, inside the "
                               "loop's body, the wire labels follow it")
        self.slider.valueChanged.connect(self._step_chosen)
        self.counts = QLabel(self)
        self.counts.setTextFormat(Qt.RichText)
        self.counts.setWordWrap(True)
        self.counts.setStyleSheet("color: #9aa1ab;")
        self.table = self._make_table()
        self.wire_box = QComboBox(self)
        self.wire_box.setToolTip("The body value plotted across the steps")
        self.how_box = QComboBox(self)
        self.how_box.addItems(list(unroll.REDUCTIONS))
        self.how_box.setToolTip("What of it: its mean, its norm, one element, or the norm of "
                                "the gradient of the loss with respect to it")
        self.element_box = QSpinBox(self)
        self.element_box.setToolTip("Which element (flat index, for 'element')")
        self.element_box.setRange(0, 0)
        self.element_box.setMinimumWidth(44)
        for box in (self.wire_box, self.how_box):
            # as narrow as the inspector: the longest entry must not widen the dock
            box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(6)
            box.currentIndexChanged.connect(lambda _i: self._replot())
        self.element_box.valueChanged.connect(lambda _v: self._replot())
        self.plot_widget, self.curve, self.marker = self._make_plot()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #9aa1ab;")

        top = QHBoxLayout()
        top.addWidget(QLabel("example", self))
        top.addWidget(self.row_box)
        top.addWidget(self.step_label, 1)
        choice = QHBoxLayout()
        choice.addWidget(self.wire_box, 3)
        choice.addWidget(self.how_box, 3)
        choice.addWidget(self.element_box, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addLayout(top)
        layout.addWidget(self.slider)
        layout.addWidget(self.counts)
        layout.addWidget(self.table)
        layout.addLayout(choice)
        layout.addWidget(self.plot_widget)
        layout.addWidget(self.status)
        model.changed.connect(self.refresh)
        model.step_changed.connect(self._show_step)
        self.refresh()

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(0, 3, self)
        table.setHorizontalHeaderLabels(["wire", "value", "gradient"])
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(20)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Interactive)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeToContents)
        table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectRows)
        table.setSelectionMode(QAbstractItemView.SingleSelection)
        table.setMinimumWidth(60)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        table.setToolTip("Each wire of the body at the step: hover a row for its figures")
        table.currentCellChanged.connect(lambda row, *_: self._table_row_chosen(row))
        return table

    def _make_plot(self):
        widget = pg.PlotWidget(self, background=BG)
        widget.setFixedHeight(115)
        plot = quiet_plot(widget.getPlotItem())
        plot.setLabel("bottom", "step")
        curve = pg.PlotDataItem(pen=pg.mkPen(VALUE_PEN, width=2), symbol="o", symbolSize=4,
                                symbolBrush=VALUE_PEN, symbolPen=None, connect="finite")
        plot.addItem(curve)
        marker = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#e6e6e6", width=1))
        marker.setToolTip("Drag to move the step")
        marker.sigPositionChanged.connect(lambda line: self.model.set_step(round(line.value())))
        plot.addItem(marker)
        return widget, curve, marker

    # -- following the model ------------------------------------------------------------------

    def refresh(self) -> None:
        model, record = self.model, self.model.record
        loop_id = model.loop[1] if model.loop else ""
        self.status.setText(model.status)
        has_steps = record is not None and record.steps > 0
        for widget in (self.slider, self.table, self.wire_box, self.how_box, self.element_box,
                       self.plot_widget, self.counts, self.step_label):
            widget.setVisible(has_steps)
        if not has_steps:
            self.header.setText(f"<b>Steps</b> of {loop_id}" if loop_id else "<b>Steps</b>")
            self._sync_row(record)
            return
        self.header.setText(f"<b>Unrolled: {loop_id}</b> <span style='color:#9aa1ab'>"
                            f"{record.kind} · {record.steps} steps</span>")
        self.counts.setText(counts_text(record))
        self._sync_row(record)
        self._syncing = True
        try:
            self.slider.setRange(0, record.steps - 1)
            self.slider.setValue(model.step)
            self._fill_wire_box()
        finally:
            self._syncing = False
        self._fill_table()
        self._replot()
        self._show_step(model.step)

    def _sync_row(self, record) -> None:
        self._syncing = True
        try:
            self.row_box.setRange(0, max(self.model.rows - 1, 0))
            self.row_box.setValue(record.row if record is not None else self.model.row)
        finally:
            self._syncing = False

    def _fill_wire_box(self) -> None:
        record = self.model.record
        self.wires = body_wires(self.controller.doc, self.model.body_ref(), record)
        chosen = self.wire_box.currentData()
        self.wire_box.clear()
        for node_id, port, label in self.wires:
            if (node_id, port) in record.values:
                self.wire_box.addItem(label, (node_id, port))
        index = self.wire_box.findData(chosen) if chosen is not None else -1
        self.wire_box.setCurrentIndex(index if index >= 0 else self._default_wire())

    def _default_wire(self) -> int:
        """The value fed back as the next step's carry (what the loop is about), else the
        last wire."""
        try:
            graph = self.controller.doc.graph_at(self.model.body_ref())
        except GraphError:
            return max(self.wire_box.count() - 1, 0)
        outputs = {n.id for n in graph.nodes if n.type == "Output"}
        for edge in graph.edges:
            if edge.dst in outputs:
                index = self.wire_box.findData((edge.src, edge.src_port))
                if index >= 0:
                    return index
        return max(self.wire_box.count() - 1, 0)

    def _fill_table(self) -> None:
        rows = [w for w in self.wires if (w[0], w[1]) in self.model.record.values]
        self.table.setRowCount(len(rows))
        for i, (_node_id, _port, label) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(label))
            self.table.setItem(i, 1, QTableWidgetItem(""))
            self.table.setItem(i, 2, QTableWidgetItem(""))
        self._table_wires = rows
        # long labels must leave the values room: the wire column at most a third of it
        self.table.resizeColumnToContents(0)
        self.table.setColumnWidth(0, min(self.table.columnWidth(0),
                                         max(self.table.viewport().width() // 3, 60)))
        # as tall as its rows (up to a point): no empty band under a short body
        height = self.table.horizontalHeader().height() + 20 * len(rows) + 4
        self.table.setFixedHeight(min(height, 190))

    def _show_step(self, step: int) -> None:
        record = self.model.record
        if record is None or not record.steps:
            return
        self._syncing = True
        try:
            self.slider.setValue(step)
            self.marker.setValue(step)
        finally:
            self._syncing = False
        self.step_label.setText(f"step <b>{step}</b> of {record.steps}")
        for i, (node_id, port, _label) in enumerate(self._table_wires):
            value = record.value(node_id, port, step)
            grad = record.grad(node_id, port, step)
            value_item, grad_item = self.table.item(i, 1), self.table.item(i, 2)
            value_item.setText(unroll.short(value, 3) if value is not None else "–")
            grad_item.setText(f"rms {pr.rms(grad):.2g}" if grad is not None else "–")
            tip = unroll.describe(value, grad) if value is not None else "not computed at this step"
            for item in (self.table.item(i, 0), value_item, grad_item):
                item.setToolTip(tip)

    def _replot(self) -> None:
        record = self.model.record
        key = self.wire_box.currentData()
        if record is None or key is None or not record.steps:
            self.curve.setData([], [])
            return
        how = self.how_box.currentText()
        first = record.value(key[0], key[1], 0)
        size = int(np.size(unroll.one_example(first))) if first is not None else 1
        self.element_box.setRange(0, max(size - 1, 0))
        self.element_box.setEnabled(how == "element")
        values = unroll.series(record, key[0], key[1], how, self.element_box.value())
        color = GRAD_PEN if how == "gradient norm" else VALUE_PEN
        self.curve.setPen(pg.mkPen(color, width=2))
        self.curve.setSymbolBrush(color)
        self.curve.setData(np.arange(record.steps, dtype=np.float64),
                           np.where(np.isfinite(values), values, np.nan))
        plot = self.plot_widget.getPlotItem()
        plot.setXRange(-0.5, record.steps - 0.5, padding=0)
        plot.setLabel("left", how)
        plot.enableAutoRange(axis="y")
        self.marker.setBounds((0, record.steps - 1))

    # -- the user's choices -------------------------------------------------------------------

    def _step_chosen(self, step: int) -> None:
        if not self._syncing:
            self.model.set_step(step)

    def _row_chosen(self, row: int) -> None:
        if not self._syncing:
            self.model.set_row(row)

    def _table_row_chosen(self, row: int) -> None:
        wires = self._table_wires
        if not self._syncing and 0 <= row < len(wires):
            self.plot_node(wires[row][0], wires[row][1])

    def plot_node(self, node_id: str, port: str | None = None) -> bool:
        """Plot this body node's value (its first port shown, unless `port`): what selecting
        a node in the body does."""
        for i in range(self.wire_box.count()):
            data = self.wire_box.itemData(i)
            if data[0] == node_id and port in (None, data[1]):
                self.wire_box.setCurrentIndex(i)
                return True
        return False
