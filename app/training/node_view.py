"""One node, seen from inside: its output statistics and histograms of activations and
gradient, from the probe's trace (a parameter snapshot run on a small batch in the UI thread);
a node in a loop body is seen over all its steps."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..number_text import clean_axes, number
from ..plot_style import quiet_plot
from . import probe as pr

BG = "#1f2126"


def _fmt(value) -> str:
    return number(value)


class _Histogram(pg.PlotWidget):
    def __init__(self, title: str, color: str, parent=None):
        super().__init__(parent, background=BG, axisItems=clean_axes())
        self.plot_item = quiet_plot(self.getPlotItem(), mouse=True)
        self.plot_item.setTitle(title, color="#c9ced6", size="9pt")
        self.plot_item.getAxis("left").setStyle(showValues=False)
        self.curve = pg.PlotDataItem(stepMode="center", fillLevel=0,
                                     brush=pg.mkBrush(color), pen=pg.mkPen(color))
        self.plot_item.addItem(self.curve)
        self.note = pg.TextItem("", color="#9aa1ab", anchor=(0.5, 0.5))
        self.plot_item.addItem(self.note, ignoreBounds=True)

    def show_values(self, array) -> None:
        found = pr.histogram(array) if array is not None else None
        if found is None:
            self.curve.setData([], [])
            self.note.setText("no values" if array is None else "all NaN or Inf")
            self.note.setPos(0.5, 0.5)
            self.plot_item.setXRange(0, 1)
            self.plot_item.setYRange(0, 1)
            return
        counts, edges = found
        self.note.setText("")
        self.curve.setData(edges, counts)
        self.plot_item.enableAutoRange()


class NodeInspector(QWidget):
    """Statistics and histograms of the selected node's output and of its gradient."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.node_id: str | None = None
        self.title = QLabel(self)
        self.title.setTextFormat(Qt.RichText)
        self.title.setWordWrap(True)
        self.figures = QLabel(self)
        self.figures.setTextFormat(Qt.RichText)
        self.figures.setWordWrap(True)
        self.figures.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.values_hist = _Histogram("activations (output values)", "#5aa9ff")
        self.grad_hist = _Histogram("gradient of the loss w.r.t. the output", "#f2994a")
        row = QHBoxLayout()
        row.addWidget(self.values_hist)
        row.addWidget(self.grad_hist)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.figures)
        layout.addLayout(row, 1)
        self.show_node(None)

    def show_node(self, name: str | None, node_type: str = "", ports: list | None = None,
                  rows: int = 0, runs: int = 1, instances: int = 1, empty: str = "",
                  buffers: dict | None = None) -> None:
        """`name`: the node as the user knows it (`hidden1`, `rnn/cell`); `ports`: the trace's
        [(port, [values per run], [gradients per run])]; `runs`: steps of a loop body;
        `buffers`: its saved, untrained state by name (BatchNorm's running statistics)."""
        self.node_id = name
        if name is None:
            self.title.setText("<b>Click a node</b> on the canvas (inside a loop, branch or "
                               "block too) to see what it outputs and the gradient flowing back "
                               "into it, live while training.")
            self.figures.setText("")
            self.values_hist.show_values(None)
            self.grad_hist.show_values(None)
            return
        if not ports:
            why = empty or "train first, or its inputs are not fed by the data"
            self.title.setText(f"<b>{name}</b> {node_type}: no value on the probe rows ({why}).")
            self.figures.setText("")
            self.values_hist.show_values(None)
            self.grad_hist.show_values(None)
            return
        port, values, grads = ports[0]
        first = values[0]
        shape = "×".join(str(d) for d in np.shape(first)) or "a single number"
        where = [f"{rows} training rows"]
        if runs > 1:
            where.append(f"all {runs} steps")
        if instances > 1:
            where.append(f"all {instances} instances")
        suffix = f".{port}" if port and port != "y" else ""
        self.title.setText(f"<b>{name}{suffix}</b> <span style='color:#9aa1ab'>{node_type} · "
                           f"output {shape} · over {', '.join(where)}</span>")
        value = np.concatenate([np.ravel(v) for v in values])
        grad = np.concatenate([np.ravel(g) for g in grads]) if grads else None
        s = pr.stats(value)
        parts = [f"mean <b>{_fmt(s.get('mean'))}</b>", f"std <b>{_fmt(s.get('std'))}</b>",
                 f"min {_fmt(s.get('min'))}", f"max {_fmt(s.get('max'))}"]
        if s.get("zeros", 0) > 0.01:
            parts.append(f"zeros <b>{100 * s['zeros']:.0f}%</b>")
        if s["nonfinite"]:
            parts.append(f"<span style='color:#ff6b6b'>{s['nonfinite']} NaN/Inf</span>")
        if grad is not None:
            g = pr.stats(grad)
            parts.append(f"gradient rms <b>{_fmt(pr.rms(grad))}</b>")
            if g["nonfinite"]:
                parts.append(f"<span style='color:#ff6b6b'>gradient {g['nonfinite']} NaN/Inf</span>")
        text = " &nbsp;·&nbsp; ".join(parts)
        for buffer, array in (buffers or {}).items():
            b = pr.stats(np.ravel(np.asarray(array, dtype=np.float64)))
            text += (f"<br><span style='color:#9aa1ab'>buffer</span> {buffer} ({np.size(array)}): "
                     f"mean <b>{_fmt(b.get('mean'))}</b>, min {_fmt(b.get('min'))}, "
                     f"max {_fmt(b.get('max'))}")
        self.figures.setText(text)
        self.values_hist.show_values(value)
        self.grad_hist.show_values(grad)
