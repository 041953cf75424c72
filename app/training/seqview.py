"""The data view for sequences: one example with the model's prediction step by step, and
for regression every validation sequence's prediction against its target.

The picture (sequences.py) runs the model once per prefix of the example and on a few hundred
sequences: tens of milliseconds for an LSTM over 50 steps, so it is computed in a background
thread (Background: the newest snapshot wins) on a program of its own, and drawn here when it
arrives. The data view (dataview.py) hands over the run's data and each parameter snapshot.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QBoxLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ... import core
from ..plot_style import quiet_plot
from . import sequences as sq
from .background import Background

BG = "#1f2126"
INPUT_COLORS = ["#8b93a1", "#5f8f6f", "#a98f5f", "#7f6fa8"]
PRED_COLOR = "#ff5c8a"
TARGET_COLOR = "#ffd43b"
CLASS_COLORS = ["#5aa9ff", "#f2994a", "#6fcf97", "#eb5757", "#bb6bd9", "#f2c94c", "#56ccf2",
                "#c8c8c8"]
MAX_CHANNELS = len(INPUT_COLORS)   # input features drawn, one line each


def _plot(parent) -> pg.PlotWidget:
    widget = pg.PlotWidget(parent, background=BG)
    quiet_plot(widget.getPlotItem())
    return widget


class SequenceView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.spec = None
        self.doc = None
        self.dtype = "float32"
        self.feeds = None
        self.params = None
        self.shown: sq.Picture | None = None
        self._token = 0
        self._compiled = (None, None)   # (doc, program): the worker thread's
        self.background = Background(self)
        self.background.done.connect(self._arrived)
        self.key = QLabel(self)          # what the colours are
        self.key.setWordWrap(True)
        self.key.setTextFormat(Qt.RichText)
        self.key.setStyleSheet("color: #9aa1ab;")
        self.caption = QLabel(self)      # what the model made of it: the figures
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.RichText)
        self.caption.setStyleSheet("color: #9aa1ab;")
        self.row_box = QSpinBox(self)
        self.row_box.setKeyboardTracking(False)
        self.row_box.setToolTip("Which validation sequence the left plot shows")
        self.row_box.valueChanged.connect(lambda _row: self._request())
        self.example_widget = _plot(self)
        self.example = self.example_widget.getPlotItem()
        self.example.setLabel("bottom", "step")
        self.second_widget = _plot(self)
        self.second = self.second_widget.getPlotItem()
        self.input_curves = [self.example.plot(pen=pg.mkPen(c, width=1.2)) for c in INPUT_COLORS]
        self.pred_curve = self.example.plot(pen=pg.mkPen(PRED_COLOR, width=2.2), symbol="o",
                                            symbolSize=4, symbolBrush=PRED_COLOR, symbolPen=None)
        self.class_curves: list = []
        self.target_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(TARGET_COLOR, width=1.5,
                                                                  style=Qt.DashLine))
        self.example.addItem(self.target_line)
        self.points = pg.ScatterPlotItem(size=5, pen=pg.mkPen(None),
                                         brush=pg.mkBrush(90, 169, 255, 150))
        self.diagonal = pg.PlotDataItem(pen=pg.mkPen("#c9ced6", width=1, style=Qt.DashLine))
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6)
        for item in (self.points, self.diagonal, self.bars):
            self.second.addItem(item)
        row = QHBoxLayout()
        row.addWidget(QLabel("sequence", self))
        row.addWidget(self.row_box)
        row.addWidget(self.key, 1)
        self.plots = QBoxLayout(QBoxLayout.LeftToRight)
        self.plots.addWidget(self.example_widget, 3)
        self.plots.addWidget(self.second_widget, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addLayout(self.plots, 1)
        layout.addWidget(self.caption)

    def resizeEvent(self, event) -> None:
        """Side by side when wide, one above the other when tall."""
        wide = event.size().width() >= event.size().height()
        self.plots.setDirection(QBoxLayout.LeftToRight if wide else QBoxLayout.TopToBottom)
        super().resizeEvent(event)

    # -- what the data view hands over --------------------------------------------------------

    def configure(self, doc, info, spec: dict) -> None:
        """A run's document copy and data; the validation sequences are shown if it has any."""
        self.spec, self.doc = spec, doc
        self.feeds = info.val_feeds or info.train_feeds
        self.which = "validation" if info.val_feeds else "training"
        self.params, self.shown = None, None
        self._token += 1
        rows = len(self.feeds[spec["input"]])
        self.row_box.blockSignals(True)
        self.row_box.setRange(0, max(rows - 1, 0))
        self.row_box.setValue(min(self.row_box.value(), rows - 1))
        self.row_box.blockSignals(False)
        self.dtype = info.plan.dtype
        classify = spec["mode"] == "seq_classify"
        for item in (self.points, self.diagonal, self.bars):
            item.setVisible(False)
        self.second.setLabel("bottom", "class" if classify else "target")
        self.second.setLabel("left", "probability" if classify else "prediction")
        self.example.setLabel("left", "probability" if classify else "value")
        self.example.setTitle("after each step" if spec["prefixes"] else "the whole sequence",
                              color="#c9ced6", size="8pt")
        self.second.setTitle("at the end" if classify else "prediction vs target",
                             color="#c9ced6", size="8pt")
        self.key.setText(key_text(spec.get("classes") if classify else None))
        self.caption.setText("Waiting for the model's first predictions…")

    def stop(self) -> None:
        """Nothing to show: an answer still on its way is dropped."""
        self.spec, self.params, self.shown = None, None, None
        self._token += 1
        self.background.discard()

    def show_params(self, params: dict) -> None:
        """Draw what the model with these weights predicts (once computed, off this thread)."""
        self.params = params
        self._request()

    def _request(self) -> None:
        if self.spec is None or self.params is None:
            return
        self._token += 1
        job = (self.doc, self.dtype, self.spec, self.feeds, self.params, self.row_box.value())
        self.background.submit(lambda: self._compute(*job), self._token)

    def _compute(self, doc, dtype, spec, feeds, params, row) -> sq.Picture:
        """In the worker thread: a program of its own (kept while the document is the same)."""
        made_for, program = self._compiled
        if made_for is not doc:
            program = core.compile(doc, dtype)
            self._compiled = (doc, program)
        return sq.picture(program, params, spec, feeds, row)

    def _arrived(self, token, result) -> None:
        if token != self._token or self.spec is None:
            return
        if isinstance(result, Exception):
            self.caption.setText(f"Could not run the model on the sequences: {result}")
            return
        self.shown = result
        self._draw_example(result)
        if result.mode == "seq_classify":
            self._draw_classes(result)
        else:
            self._draw_scatter(result)

    # -- drawing ------------------------------------------------------------------------------

    def _draw_example(self, pic: sq.Picture) -> None:
        steps = np.arange(1, len(pic.sequence) + 1, dtype=np.float64)
        channels = pic.sequence.reshape(len(steps), -1)
        for i, curve in enumerate(self.input_curves):
            if i < channels.shape[1]:
                curve.setData(steps, channels[:, i])
            curve.setVisible(i < channels.shape[1])
        classify = pic.mode == "seq_classify"
        after = pic.after if pic.after is not None else pic.final[None]
        xs = steps if pic.after is not None else steps[-1:]
        if classify:
            self.pred_curve.setVisible(False)
            self._class_lines(after.shape[1])
            for c, curve in enumerate(self.class_curves):
                curve.setData(xs, after[:, c])
            self.target_line.setVisible(False)
        else:
            self.pred_curve.setData(xs, after[:, 0])
            self.pred_curve.setVisible(True)
            self.target_line.setValue(float(np.ravel(pic.target)[0]))
            self.target_line.setVisible(True)
        self.example.enableAutoRange()

    def _class_lines(self, classes: int) -> None:
        while len(self.class_curves) < classes:
            color = CLASS_COLORS[len(self.class_curves) % len(CLASS_COLORS)]
            self.class_curves.append(self.example.plot(
                pen=pg.mkPen(color, width=2.2), symbol="o", symbolSize=4, symbolBrush=color,
                symbolPen=None))
        for c, curve in enumerate(self.class_curves):
            curve.setVisible(c < classes)

    def _draw_scatter(self, pic: sq.Picture) -> None:
        pred, target = pic.scatter
        finite = np.where(np.isfinite(pred), pred, np.nan)
        self.points.setData(target, np.nan_to_num(finite, nan=0.0))
        self.points.setVisible(True)
        lo, hi = float(np.min(target)), float(np.max(target))
        self.diagonal.setData([lo, hi], [lo, hi])
        self.diagonal.setVisible(True)
        span = (hi - lo) or 1.0
        self.second.setXRange(lo - 0.05 * span, hi + 0.05 * span, padding=0)
        self.second.setYRange(lo - 0.25 * span, hi + 0.25 * span, padding=0)
        fit = sq.fit_figures(pred, target)
        self.caption.setText(
            f"{self.which.capitalize()} sequence {pic.row}: predicted "
            f"<b>{float(np.ravel(pic.final)[0]):.3g}</b>, target "
            f"{float(np.ravel(pic.target)[0]):.3g}. Over {fit['n']} sequences: mean error "
            f"<b>{fit['mae']:.3g}</b>, r² <b>{fit['r2']:.3f}</b> (1: every dot on the "
            f"diagonal).")

    def _draw_classes(self, pic: sq.Picture) -> None:
        probs = pic.final
        truth = int(np.ravel(pic.target)[0])
        brushes = [pg.mkBrush(CLASS_COLORS[c % len(CLASS_COLORS)]) for c in range(len(probs))]
        pens = [pg.mkPen("#ffffff", width=2) if c == truth else pg.mkPen(None)
                for c in range(len(probs))]
        self.bars.setOpts(x=np.arange(len(probs)), height=probs, width=0.6, brushes=brushes,
                          pens=pens)
        self.bars.setVisible(True)
        self.second.setXRange(-0.6, len(probs) - 0.4, padding=0)
        self.second.setYRange(0, 1.05, padding=0)
        guess = int(np.argmax(probs))
        verdict = "right" if guess == truth else "wrong"
        self.caption.setText(
            f"{self.which.capitalize()} sequence {pic.row}: class <b>{guess}</b> "
            f"(p = {probs[guess]:.2f}), true class {truth} (outlined): {verdict}. Accuracy "
            f"over {min(pic.rows, sq.MAX_SAMPLES)} sequences: <b>{100 * pic.accuracy:.1f}%</b>.")


def key_text(classes: int | None) -> str:
    """One line saying what each colour is (`classes`: how many, for classification)."""
    def span(color, text):
        return f"<span style='color:{color}'>{text}</span>"
    if classes:
        shown = min(classes, 4)
        classes = " ".join(span(CLASS_COLORS[i], f"━ p(class {i})") for i in range(shown)) \
            + (" …" if classes > shown else "")
        return f"{span(INPUT_COLORS[0], '━ the input')} &nbsp;{classes}" \
               " &nbsp;after each step (the model run on the first t steps)"
    return (f"{span(INPUT_COLORS[0], '━ the input')} &nbsp;{span(PRED_COLOR, '━ prediction')} "
            f"after each step (the model run on the first t steps) &nbsp;"
            f"{span(TARGET_COLOR, '┅ target')}")
