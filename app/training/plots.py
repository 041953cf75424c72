"""Live plots of the runs: loss per step and per epoch, metrics, the learning rate.

One `PlotDataItem` per curve, made once per run and updated with `setData` when the dock's
timer says the history changed, never per event. Older runs stay on the plot, dimmer, each
named by what changed ("run 2: lr 0.003"); hovering shows the values under the cursor. Runs of
earlier sessions (read back from the document's runs folder) are drawn greyed; a forked run
starts where its parent was at the epoch it was forked from, with a tag saying what changed,
and a right-click on a curve forks from it (plot_forks.py).

Nothing here may overlap or be cut off at the window's default size: each plot is at least as
tall as its axis title, the legend names only the latest runs (LEGEND_RUNS, labels shortened,
the hover tip has them in full) and lays the metrics out in one row. Tick labels and hover
values go through number_text, so nothing reads `-0`.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..number_text import clean_axes, number
from ..plot_style import quiet_plot
from .plot_forks import ForkMenu

RUN_COLORS = ["#5aa9ff", "#f2994a", "#6fcf97", "#eb5757", "#bb6bd9", "#f2c94c", "#56ccf2",
              "#e0e0e0"]
METRIC_COLORS = ["#6fcf97", "#f2c94c", "#bb6bd9", "#56ccf2"]
BG = "#1f2126"
MAX_SYMBOLS = 80  # epochs beyond which validation points are drawn without markers
LEGEND_RUNS = 3   # runs named in the loss plot's legend: the latest ones
LEGEND_CHARS = 34  # a run's label in the legend, at most (the hover tip has it all)
AXIS_TITLE_PT = 9
BOTTOM_AXIS = 48  # the bottom plot's step axis: tick labels and its title
SHARES = (5, 3, 2)  # of the height: loss, metrics, learning rate


def run_color(number: int, strength: float = 1.0) -> QColor:
    """A run's colour; `strength` < 1 mixes it into the background, opaquely (an opaque
    line draws several times faster than a translucent one)."""
    color = QColor(RUN_COLORS[(number - 1) % len(RUN_COLORS)])
    bg = QColor(BG)
    return QColor(round(bg.red() + (color.red() - bg.red()) * strength),
                  round(bg.green() + (color.green() - bg.green()) * strength),
                  round(bg.blue() + (color.blue() - bg.blue()) * strength))


def curve_color(run, strength: float = 1.0) -> QColor:
    """The colour of a run's curves: its own, greyed for a run of an earlier session."""
    color = run_color(run.number, strength)
    if run.past:
        hue, saturation, lightness, _ = color.getHsl()
        color = QColor.fromHsl(max(hue, 0), saturation // 5, lightness)
    return color


class TimedGraphicsLayout(pg.GraphicsLayoutWidget):
    """Remembers how long its last paint took, so the dock can pace its redraws: painting
    holds the GIL, and every millisecond of it is a millisecond the trainer does not run."""

    last_paint = 0.0
    resized = None  # called after every resize

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.resized is not None:
            self.resized()

    def paintEvent(self, event):
        started = time.perf_counter()
        super().paintEvent(event)
        self.last_paint = time.perf_counter() - started


def _pen(color: QColor, width: float = 1.0, style=Qt.SolidLine):
    pen = pg.mkPen(color, width=width)
    pen.setStyle(style)
    pen.setCosmetic(True)
    return pen


class _RunCurves:
    """The curves of one run on the three plots."""

    def __init__(self, plots, run):
        loss_plot, metric_plot, lr_plot = plots
        self.run = run
        color = curve_color(run)
        # no antialiasing: a software-rendered antialiased curve of thousands of points costs
        # milliseconds of UI-thread (and so training) time per frame
        self.raw = loss_plot.plot([], [], pen=_pen(curve_color(run, 0.35), 1.0),
                                  antialias=False)
        # named in the legend by TrainingPlots._update_legend, not here
        self.smooth = loss_plot.plot([], [], pen=_pen(color, 2.0), antialias=False)
        # validation: a thin light line with dots (dashes cost milliseconds on long runs)
        self.val = loss_plot.plot([], [], pen=_pen(color.lighter(150), 1.0), antialias=False,
                                  symbol="o", symbolSize=5, symbolBrush=color.lighter(150),
                                  symbolPen=None)
        self.metrics: dict = {}
        self.metric_plot = metric_plot
        self.lr = lr_plot.plot([], [], pen=_pen(color, 1.5), antialias=False)
        for item in (self.raw, self.smooth, self.val):
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
        self.version = -1
        self.z = run.number
        for item in (self.raw, self.smooth, self.val):
            item.setZValue(run.number)

    def metric_curves(self, name: str, index: int):
        pair = self.metrics.get(name)
        if pair is None:
            base = QColor(METRIC_COLORS[index % len(METRIC_COLORS)])
            label = f"{name}" if self.run.number == 1 else None
            train = self.metric_plot.plot([], [], pen=_pen(base, 2.0), name=label,
                                          antialias=False)
            light = base.lighter(150)
            val = self.metric_plot.plot([], [], pen=_pen(light, 1.0), symbol="o",
                                        symbolSize=4, symbolBrush=light, symbolPen=None,
                                        antialias=False)
            pair = self.metrics[name] = (train, val)
        return pair

    def dim(self, current: bool) -> None:
        alpha = 1.0 if current else 0.45
        for item in (self.raw, self.smooth, self.val, self.lr):
            item.setOpacity(alpha)
        for train, val in self.metrics.values():
            train.setOpacity(alpha)
            val.setOpacity(alpha)

    def update(self) -> None:
        run = self.run
        if run.version == self.version:
            return
        self.version = run.version
        steps = run.steps.view()
        if run.x_offset:  # a forked run starts at its fork point
            steps = steps + run.x_offset
        # about 800 bins across the plot (2 points each, the batch losses' min and max):
        # what a few hundred pixels can show, at a fraction of the drawing cost
        ds = max(1, len(steps) // 800)
        self.raw.setDownsampling(ds=ds, auto=False, method="peak")
        self.smooth.setDownsampling(ds=ds, auto=False, method="mean")
        self.raw.setData(steps, run.losses.view(), connect="finite")
        self.smooth.setData(steps, run.smoothed.view(), connect="finite")
        epoch_steps = run.epoch_steps.view()
        if run.x_offset:
            epoch_steps = epoch_steps + run.x_offset
        val = run.figure("val_loss")
        symbols = len(epoch_steps) <= MAX_SYMBOLS
        per_epoch = max(1, len(epoch_steps) // 400)
        for curve in (self.val, *(c for pair in self.metrics.values() for c in pair)):
            curve.setDownsampling(ds=per_epoch, auto=False, method="mean")
        if len(val) == len(epoch_steps):
            self.val.setData(epoch_steps, val, symbol="o" if symbols else None)
        for index, name in enumerate(run.metric_names()):
            train, val_curve = self.metric_curves(name, index)
            values = run.figure(name)
            train.setData(epoch_steps[:len(values)], values)
            val_values = run.figure("val_" + name)
            val_curve.setData(epoch_steps[:len(val_values)], val_values,
                              symbol="o" if symbols else None)
        self.lr.setData(epoch_steps, run.lrs.view())


class TrainingPlots(ForkMenu, QWidget):
    """Loss (top), metrics (middle) and, when the learning rate changes, the lr (bottom)."""

    fork_requested = Signal(object, int)  # (Run, epoch): "Fork from here" chosen

    def __init__(self, parent=None):
        super().__init__(parent)
        self.history = None
        self.curves: dict = {}
        self.show_lr = False
        self.x_max = 0
        self._title_lengths: dict = {}
        self._legend_runs: tuple = ()
        legend_font = QFont()
        legend_font.setPointSizeF(8)
        self._legend_row = QFontMetricsF(legend_font).height() + 8
        self.view = TimedGraphicsLayout(self)
        self.view.resized = self._fit_heights
        self.view.ci.layout.setContentsMargins(2, 4, 8, 2)
        self.view.setBackground(BG)
        self.loss_plot = self.view.addPlot(row=0, col=0, axisItems=clean_axes())
        self.metric_plot = self.view.addPlot(row=1, col=0, axisItems=clean_axes())
        self.lr_plot = self.view.addPlot(row=2, col=0, axisItems=clean_axes())
        for plot, title in ((self.loss_plot, "loss"), (self.metric_plot, "metrics"),
                            (self.lr_plot, "lr")):
            plot.showGrid(x=False, y=False)  # grid lines cost ~2 ms a frame in software raster
            self._set_title(plot, title)
            quiet_plot(plot, mouse=True, buttons=True)
            plot.getAxis("left").setWidth(48)
        self.lr_plot.setLabel("bottom", "step (batches)")
        self.lr_plot.getAxis("left").setToolTip("the learning rate at the end of each epoch")
        self.metric_plot.setXLink(self.loss_plot)
        self.lr_plot.setXLink(self.loss_plot)
        self.loss_legend = self.loss_plot.addLegend(offset=(-8, 8), labelTextSize="8pt",
                                                    brush=pg.mkBrush(31, 33, 38, 200))
        self.metric_legend = self.metric_plot.addLegend(offset=(-8, 4), labelTextSize="8pt",
                                                        brush=pg.mkBrush(31, 33, 38, 200))
        self._hover_items()
        self._fork_hooks()
        self.set_lr_visible(False)

        self.key = QLabel(self)
        self.key.setTextFormat(Qt.RichText)
        self.key.setText('<span style="color:#9aa1ab">thick line: training loss (smoothed), '
                         'faint: each batch &nbsp;·&nbsp; thin light line with dots: validation, '
                         'once per epoch &nbsp;·&nbsp; hover for values</span>')
        self.key.setWordWrap(True)
        self.log_box = QCheckBox("log scale", self)
        self.log_box.setToolTip("Show the loss on a logarithmic axis: small losses stay visible")
        self.log_box.toggled.connect(self.set_log)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.key, 1)
        top.addWidget(self.log_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)

    # -- content ------------------------------------------------------------------------------

    def set_history(self, history) -> None:
        self.history = history
        self.clear()

    def clear(self) -> None:
        for curves in self.curves.values():
            for item in (curves.raw, curves.smooth, curves.val):
                self.loss_plot.removeItem(item)
            for train, val in curves.metrics.values():
                self.metric_plot.removeItem(train)
                self.metric_plot.removeItem(val)
            self.lr_plot.removeItem(curves.lr)
        self.curves = {}
        self._clear_fork_tags()
        self.x_max = 0
        self.loss_legend.clear()
        self._legend_runs = ()
        self.metric_legend.clear()
        # nothing of the runs cleared stays: their axis ranges, the lr plot, the hover tip
        self.tip.setVisible(False)
        self.cursor.setVisible(False)
        for plot in (self.loss_plot, self.metric_plot, self.lr_plot):
            plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            plot.enableAutoRange()
        if self.show_lr:
            self.set_lr_visible(False)

    def refresh(self) -> None:
        """Bring every curve up to date with the history (cheap when little changed)."""
        if self.history is None:
            return
        runs = self.history.runs
        if len(self.curves) > len(runs):
            self.clear()
        for run in runs:
            curves = self.curves.get(run.number)
            if curves is None:
                curves = self.curves[run.number] = _RunCurves(
                    (self.loss_plot, self.metric_plot, self.lr_plot), run)
                for other in self.curves.values():
                    other.dim(other is curves)
            curves.update()
        self._update_legend()
        self._update_fork_tags()
        # The x axis spans the planned steps from the start: the curve grows towards its end
        # (progress at a glance), and a fixed axis is not re-laid-out on every frame.
        x_max = max([r.last_step() + r.x_offset for r in runs]
                    + [runs[-1].total_steps + runs[-1].x_offset if runs else 0])
        if x_max != self.x_max and x_max > 0:
            self.x_max = x_max
            self.loss_plot.setXRange(0, x_max, padding=0.01)
        current = runs[-1] if runs else None
        wants_lr = any(np.ptp(r.lrs.view()) > 0 if len(r.lrs) > 1 else False for r in runs) or (
            current is not None and isinstance(current.training, dict)
            and isinstance((current.training.get("optimizer") or {}).get("schedule"), dict))
        if wants_lr != self.show_lr:
            self.set_lr_visible(wants_lr)
        # Settle the auto ranges now: pyqtgraph does it while painting, and the new range
        # then asks for a second paint of the whole view (two paints per refresh, each
        # holding the GIL for milliseconds).
        for plot in (self.loss_plot, self.metric_plot, self.lr_plot):
            plot.vb.prepareForPaint()

    def _update_legend(self) -> None:
        """The legend names the latest runs, as many as fit in the loss plot (LEGEND_RUNS at
        most); the others keep their (dim) curves, and the hover tip names them all."""
        runs = self.history.runs if self.history is not None else []
        fits = int((self.loss_plot.vb.height() - 18) // self._legend_row)  # offset, margins
        self.loss_legend.setVisible(fits > 0)  # too short a plot: the hover tip names them
        wanted = tuple(run.number for run in runs[-max(1, min(LEGEND_RUNS, fits)):]
                       if run.number in self.curves)
        if wanted != self._legend_runs:
            self._legend_runs = wanted
            self.loss_legend.clear()
            for run in runs:
                if run.number in wanted:
                    self.loss_legend.addItem(self.curves[run.number].smooth,
                                             legend_label(run.label))
        columns = max(1, len(self.metric_legend.items))
        if self.metric_legend.columnCount != columns:
            self.metric_legend.setColumnCount(columns)  # one row: it fits a short plot

    def _set_title(self, plot, title: str) -> None:
        """The left axis title (rotated); `_fit_heights` makes room for it."""
        plot.setLabel("left", title, **{"font-size": f"{AXIS_TITLE_PT}pt"})
        font = QFont()
        font.setPointSizeF(AXIS_TITLE_PT)
        self._title_lengths[id(plot)] = QFontMetricsF(font).horizontalAdvance(title)

    def _fit_heights(self) -> None:
        """Share the view's height out by SHARES, each plot at least as tall as its axis title
        (else the title runs into the next plot's), the bottom one with its step axis too.
        Set as fixed heights: the graphics layout's own stretch ignores the titles."""
        plots = [self.loss_plot, self.metric_plot] + ([self.lr_plot] if self.show_lr else [])
        spacing = self.view.ci.layout.verticalSpacing()
        _, top, _, bottom = self.view.ci.layout.getContentsMargins()
        room = max(0.0, self.view.height() - top - bottom - BOTTOM_AXIS
                   - spacing * (len(plots) - 1) - 2)
        least = [self._title_lengths.get(id(plot), 0) + 8 for plot in plots]
        shares = SHARES[:len(plots)]
        heights = [max(low, room * share / sum(shares)) for low, share in zip(least, shares)]
        excess = sum(heights) - room
        if excess > 0:  # too little room: take it from the plots above their least, largest first
            for i in sorted(range(len(plots)), key=lambda i: -heights[i]):
                give = min(excess, heights[i] - least[i])
                heights[i] -= give
                excess -= give
        heights[-1] += BOTTOM_AXIS
        for plot, height in zip(plots, heights):
            plot.setMinimumHeight(height)
            plot.setMaximumHeight(height)
        self.view.ci.layout.activate()
        self._update_legend()

    def _bottom_plot(self):
        return self.lr_plot if self.show_lr else self.metric_plot

    def set_lr_visible(self, visible: bool) -> None:
        self.show_lr = visible
        self.lr_plot.setVisible(visible)
        self.lr_plot.setMaximumHeight(10_000 if visible else 0)
        if not visible:
            self.lr_plot.setMinimumHeight(0)
        bottom = self._bottom_plot()
        for plot in (self.loss_plot, self.metric_plot, self.lr_plot):
            plot.setLabel("bottom", "step (batches)" if plot is bottom else None)
            plot.getAxis("bottom").setStyle(showValues=plot is bottom)
        self._fit_heights()

    def set_log(self, on: bool) -> None:
        self.loss_plot.setLogMode(y=on)
        self._set_title(self.loss_plot, "loss (log)" if on else "loss")
        self._fit_heights()
        self._update_fork_tags()

    # -- hover --------------------------------------------------------------------------------

    def _hover_items(self) -> None:
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=_pen(QColor(200, 200, 200, 90)))
        self.cursor.setVisible(False)
        self.loss_plot.addItem(self.cursor, ignoreBounds=True)
        self.tip = pg.TextItem(anchor=(0, 1), color="#e6e8eb", fill=pg.mkBrush(31, 33, 38, 230),
                               border=pg.mkPen("#3b3f47"))
        self.tip.setZValue(1000)
        self.tip.setVisible(False)
        self.loss_plot.addItem(self.tip, ignoreBounds=True)
        self._proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30,
                                     slot=self._mouse_moved)

    def _mouse_moved(self, args) -> None:
        pos = args[0]
        plot = next((p for p in (self.loss_plot, self.metric_plot, self.lr_plot)
                     if p.isVisible() and p.sceneBoundingRect().contains(pos)), None)
        if plot is None or self.history is None or not self.history.runs:
            self.tip.setVisible(False)
            self.cursor.setVisible(False)
            return
        x = plot.vb.mapSceneToView(pos).x()
        text = self.describe_at(x)
        if not text:
            self.tip.setVisible(False)
            self.cursor.setVisible(False)
            return
        self.cursor.setPos(x)
        self.cursor.setVisible(True)
        self.tip.setText(text)
        (x0, x1), (_, y1) = self.loss_plot.vb.viewRange()
        right = x > x0 + 0.6 * (x1 - x0)
        self.tip.setAnchor((1, 0) if right else (0, 0))
        self.tip.setPos(x, y1)
        self.tip.setVisible(True)

    def describe_at(self, x_at: float) -> str:
        """The values of every run at step `x_at` of the plot: what the hover tip says."""
        lines = []
        for run in reversed(self.history.runs[-4:]):
            steps = run.steps.view()
            if not len(steps):
                continue
            x = x_at - run.x_offset  # the run's own step
            i = int(np.clip(np.searchsorted(steps, x), 0, len(steps) - 1))
            step = int(steps[i])
            epoch = (step - 1) // run.steps_per_epoch + 1
            parts = [run.label, (f"  step {step} (epoch {epoch}): batch loss "
                                 f"{_fmt(run.losses.view()[i])}, smoothed "
                                 f"{_fmt(run.smoothed.view()[i])}")]
            epoch_steps = run.epoch_steps.view()
            if len(epoch_steps):
                j = int(np.clip(np.searchsorted(epoch_steps, x), 0, len(epoch_steps) - 1))
                figures = [f"{k} {_fmt(run.figure(k)[j])}" for k in run.epoch_figures
                           if j < len(run.figure(k))]
                parts.append(f"  end of epoch {j + 1}: " + ", ".join(figures))
                if len(run.lrs) > j:
                    parts[-1] += f", lr {_fmt(run.lrs.view()[j])}"
            lines.extend(parts)
        return "\n".join(lines)


def _fmt(value: float) -> str:
    return number(value)


def legend_label(label: str) -> str:
    """A run's label short enough for the legend: `run 3: lr 0.003, batch 64, …`."""
    if len(label) <= LEGEND_CHARS:
        return label
    # whole settings only: "lr 0.0…" misleads ("; " parts a fork's changes)
    cut = max(label.rfind(", ", 0, LEGEND_CHARS - 2), label.rfind("; ", 0, LEGEND_CHARS - 2))
    colon = label.find(":")
    if cut > colon:
        return label[:cut].rstrip(" ,;") + ", …"
    if 0 < colon <= LEGEND_CHARS - 3:  # a fork: "run 4 from run 2 @ epoch 12: …"
        return label[:colon] + ": …"
    return label[:LEGEND_CHARS - 2].rstrip(" ,") + ", …"
