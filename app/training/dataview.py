"""The data and what the model makes of it, live, as TensorFlow Playground shows it.

- 2-D classification (an Input of 2 numbers, class ids as targets): the points coloured by
  class, over the model's decision regions on a grid (colour = the predicted class, paler
  where the model is unsure).
- 1-D regression (an Input of 1 number, a target of 1 number): the points and the fitted curve.
- Adaptive computation (a top-level per-sample `while` Loop): for each validation sample, the
  steps the loop ran for it against its error, so one sees the step count follow the data.
- Sequences (an Input of shape (B, steps, features), one prediction per sequence): one example
  with the model's prediction after each step, and prediction against target over many
  sequences (regression) or the example's class probabilities (classification); seqview.py
  draws it, computed in a background thread.

`DataView.configure()` decides which (if any) from the training section and the data the run
loaded; `show_params()` evaluates the model on the grid in the UI thread (a few ms), and the
dock calls it a few times a second, never per step.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ... import core
from ...core.errors import GraphError
from ..plot_style import quiet_plot
from .sequences import find_sequence_view
from .seqview import SequenceView

CLASS_COLORS = np.array([(90, 169, 255), (242, 153, 74), (111, 207, 151), (235, 87, 87),
                         (187, 107, 217), (242, 201, 76), (86, 204, 242), (200, 200, 200)],
                        dtype=np.float64)
GRID = 72           # decision-region cells per side
MAX_POINTS = 1500   # points drawn (a random sample of bigger sets)
BG = np.array([31, 33, 38], dtype=np.float64)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def find_views(plan, program, feeds: dict) -> dict | None:
    """Which picture fits this run: {"mode": "classify" | "regress", "input", "output",
    "target"} or None. Uses the metrics first (they name prediction and target), then any
    Output that needs only the one Input."""
    def needs_only(output, input_id):
        try:
            return list(program.schedule((output,)).arg_names) == [input_id]
        except GraphError:
            return False

    candidates = [(m.get("pred"), m.get("target"), m.get("type")) for m in plan.metrics]
    others = [o for o in program.output_shapes if o != plan.loss]
    int_inputs = [i for i in feeds if program.input_dtypes.get(i) == "int64"]
    float_inputs = [i for i in feeds if program.input_dtypes.get(i) != "int64"]
    for output in others:
        for target in int_inputs + float_inputs:
            candidates.append((output, target, None))
    for input_id in float_inputs:
        shape = program.input_shapes[input_id]
        if len(shape) != 2 or shape[1] not in (1, 2):
            continue
        for output, target, kind in candidates:
            if output not in program.output_shapes or target not in feeds or target == input_id:
                continue
            if not needs_only(output, input_id):
                continue
            out_shape = program.output_shapes[output]
            if shape[1] == 2 and program.input_dtypes.get(target) == "int64" and kind in (
                    None, "accuracy") and len(out_shape) == 2:
                return {"mode": "classify", "input": input_id, "output": output, "target": target}
            if shape[1] == 1 and program.input_dtypes.get(target) != "int64" and kind in (
                    None, "mse", "mae") and tuple(out_shape[1:]) == (1,) \
                    and tuple(program.input_shapes[target][1:]) == (1,):
                return {"mode": "regress", "input": input_id, "output": output, "target": target}
    return None


def find_steps_view(plan, program) -> dict | None:
    """The adaptive-computation picture: {"mode": "steps", "loop", "output", "target"} when the
    graph has a top-level per-sample while Loop (output and target from the first metric that
    names both, else None: then the view shows how many samples took each step count)."""
    loops = [n.id for n in program.doc.graph.nodes if n.type == "Loop"
             and n.params.get("mode") == "while" and n.params.get("per_sample")]
    if not loops:
        return None
    metric = next((m for m in plan.metrics if m.get("pred") in program.output_shapes
                   and m.get("target") in program.input_shapes), None)
    return {"mode": "steps", "loop": loops[0],
            "output": metric and metric["pred"], "target": metric and metric["target"]}


def sample_errors(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each sample's error: the mean squared difference for numbers, 1 - the probability the
    model gives the true class for class ids."""
    pred = np.asarray(pred, dtype=np.float64)
    if target.dtype.kind in "iu":
        probs = _softmax(pred.reshape(len(pred), -1))
        return 1.0 - probs[np.arange(len(pred)), target.reshape(-1)]
    diff = pred.reshape(len(pred), -1) - np.asarray(target, dtype=np.float64).reshape(len(pred), -1)
    return np.mean(diff * diff, axis=1)


class TimedPlotWidget(pg.PlotWidget):
    """Remembers how long its last paint took (see plots.TimedGraphicsLayout)."""

    last_paint = 0.0

    def paintEvent(self, event):
        started = time.perf_counter()
        super().paintEvent(event)
        self.last_paint = time.perf_counter() - started


class DataView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot_widget = TimedPlotWidget(self, background="#1f2126")
        self.plot = quiet_plot(self.plot_widget.getPlotItem())
        self.plot.showGrid(x=False, y=False)
        self.plot.setAspectLocked(False)
        self.caption = QLabel("", self)
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: #9aa1ab;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot_widget, 1)
        self.sequences = SequenceView(self)
        self.sequences.hide()
        layout.addWidget(self.sequences, 1)
        self.image = pg.ImageItem()
        self.fit = pg.PlotDataItem(pen=pg.mkPen("#ff5c8a", width=2.5))
        self.train_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen(20, 20, 24, 200, width=0.8))
        self.val_points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("#ffffff", width=1.0))
        for item in (self.image, self.fit, self.train_points, self.val_points):
            self.plot.addItem(item)
        self.image.setZValue(-10)
        self.class_points: dict = {}   # (class, validation?) -> ScatterPlotItem
        self.spec = None
        self.program = None
        self.grid = None
        self.seconds = 0.0
        self.clear("Train to see the data and what the model makes of it.")

    @property
    def active(self) -> bool:
        return self.spec is not None

    def clear(self, message: str = "") -> None:
        self.spec = None
        self.program = None
        self.sequences.stop()
        self._show_sequences(False)
        for side in ("left", "bottom"):
            self.plot.showLabel(side, False)
        for item in (self.image, self.fit, self.train_points, self.val_points,
                     *self.class_points.values()):
            item.setVisible(False)
        self.caption.setText(message)

    def configure(self, doc, info) -> bool:
        """Choose the picture for a run's document copy and data; False when none fits."""
        try:
            program = core.compile(doc, info.plan.dtype)
        except GraphError:
            self.clear("The data view needs a graph that compiles.")
            return False
        spec = find_steps_view(info.plan, program) or \
            find_views(info.plan, program, info.train_feeds) or \
            find_sequence_view(info.plan, program, info.train_feeds)
        if spec is None:
            self.clear("The data view shows 2-D classification and 1-D regression data, "
                       "steps per sample for a per-sample while loop, and sequences with one "
                       "prediction each; this graph has none.")
            return False
        self.spec, self.program = spec, program
        sequences = spec["mode"].startswith("seq_")
        self._show_sequences(sequences)
        if sequences:
            self.sequences.configure(doc, info, spec)
            return True
        self.sequences.stop()  # an earlier run's sequences, of a graph since edited
        if spec["mode"] == "steps":
            self._setup_steps(info)
            return True
        # float64 for drawing: pyqtgraph compares view ranges with float64 limits
        x = np.asarray(info.train_feeds[spec["input"]], dtype=np.float64)
        y = info.train_feeds[spec["target"]]
        vx = info.val_feeds.get(spec["input"]) if info.val_feeds else None
        vy = info.val_feeds.get(spec["target"]) if info.val_feeds else None
        if vx is not None:
            vx = np.asarray(vx, dtype=np.float64)
        if spec["mode"] == "regress":
            y = np.asarray(y, dtype=np.float64)
            vy = None if vy is None else np.asarray(vy, dtype=np.float64)
        rng = np.random.default_rng(0)
        if len(x) > MAX_POINTS:
            keep = rng.choice(len(x), MAX_POINTS, replace=False)
            x, y = x[keep], y[keep]
        if spec["mode"] == "classify":
            self._setup_classify(x, y, vx, vy)
        else:
            self._setup_regress(x, y, vx, vy)
        return True

    def _show_sequences(self, on: bool) -> None:
        """The sequence view has its own caption and plots in place of ours."""
        self.sequences.setVisible(on)
        self.caption.setVisible(not on)
        self.plot_widget.setVisible(not on)

    def _setup_classify(self, x, y, vx, vy) -> None:
        allx = x if vx is None else np.concatenate([x, vx])
        lo, hi = allx.min(axis=0), allx.max(axis=0)
        pad = (hi - lo) * 0.08 + 1e-6
        lo, hi = lo - pad, hi + pad
        gx = np.linspace(lo[0], hi[0], GRID)
        gy = np.linspace(lo[1], hi[1], GRID)
        mx, my = np.meshgrid(gx, gy, indexing="ij")
        self.grid = np.stack([mx.ravel(), my.ravel()], axis=1).astype(self.program.dtype)
        self.region = QRectF(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
        self.image.setVisible(False)
        self.fit.setVisible(False)
        self.train_points.setVisible(False)
        self.val_points.setVisible(False)
        for item in self.class_points.values():
            item.setVisible(False)
        self._points(x, y, False)
        if vx is not None:
            self._points(vx, vy, True)
        self.plot.setXRange(lo[0], hi[0], padding=0)
        self.plot.setYRange(lo[1], hi[1], padding=0)
        self.caption.setText("Dots: the data by class (white ring: validation). Background: "
                             "the class the model predicts (pale: unsure).")

    def _points(self, x, y, validation: bool) -> None:
        """One scatter item per class: a single brush each draws far faster than a brush
        per point."""
        y = np.asarray(y, dtype=np.int64)
        for c in np.unique(y):
            item = self.class_points.get((int(c), validation))
            if item is None:
                r, g, b = CLASS_COLORS[int(c) % len(CLASS_COLORS)].astype(int)
                pen = pg.mkPen("#ffffff", width=1.0) if validation \
                    else pg.mkPen(20, 20, 24, 200, width=0.8)
                item = pg.ScatterPlotItem(size=6, pen=pen, brush=pg.mkBrush(r, g, b))
                self.plot.addItem(item)
                self.class_points[(int(c), validation)] = item
            mask = y == c
            item.setData(x[mask, 0], x[mask, 1])
            item.setVisible(True)

    def _setup_regress(self, x, y, vx, vy) -> None:
        allx = x if vx is None else np.concatenate([x, vx])
        lo, hi = float(allx.min()), float(allx.max())
        pad = (hi - lo) * 0.05 + 1e-6
        self.grid = np.linspace(lo - pad, hi + pad, 200).reshape(-1, 1).astype(self.program.dtype)
        self.image.setVisible(False)
        self.train_points.setData(x[:, 0], np.asarray(y).reshape(len(y), -1)[:, 0],
                                  brush=pg.mkBrush(90, 169, 255, 150), size=4,
                                  pen=pg.mkPen(None))
        self.train_points.setVisible(True)
        if vx is not None:
            self.val_points.setData(vx[:, 0], np.asarray(vy).reshape(len(vy), -1)[:, 0],
                                    brush=pg.mkBrush(255, 255, 255, 160), size=4,
                                    pen=pg.mkPen(None))
            self.val_points.setVisible(True)
        self.fit.setVisible(False)
        # the range of the data, fixed: a diverging model's curve must not squash the points
        ally = np.asarray(y).ravel() if vy is None else np.concatenate([np.ravel(y), np.ravel(vy)])
        span = float(ally.max() - ally.min()) or 1.0
        self.plot.setXRange(lo - pad, hi + pad, padding=0)
        self.plot.setYRange(float(ally.min()) - 0.25 * span, float(ally.max()) + 0.25 * span,
                            padding=0)
        self.caption.setText("Dots: the data (blue: training, white: validation). "
                             "Pink line: what the model predicts.")

    def _setup_steps(self, info) -> None:
        """Keep up to MAX_POINTS samples (validation first) to run the loop on."""
        feeds = info.val_feeds or info.train_feeds
        rows = len(next(iter(feeds.values())))
        keep = np.sort(np.random.default_rng(0).choice(rows, min(rows, MAX_POINTS), replace=False))
        self.steps_feeds = {k: v[keep] for k, v in feeds.items()}
        self.jitter = np.random.default_rng(1).uniform(-0.25, 0.25, len(keep))
        for item in (self.image, self.fit, self.val_points, *self.class_points.values()):
            item.setVisible(False)
        self.plot.enableAutoRange()
        which = "validation" if info.val_feeds else "training"
        self.caption.setText(f"Steps per sample: the {which} samples, by how many steps loop "
                             f"{self.spec['loop']!r} ran for each.")

    def _draw_steps(self, params: dict) -> None:
        spec = self.spec
        steps = self.program.loop_steps(params, self.steps_feeds)[spec["loop"]]
        if spec["output"] is None:  # no metric: how many samples took each step count
            counts = np.bincount(steps)
            self.train_points.setData(np.arange(len(counts)), counts, size=7,
                                      brush=pg.mkBrush(90, 169, 255), pen=pg.mkPen(None))
            label = "samples"
        else:
            pred = self.program.run(params, self.steps_feeds, outputs=[spec["output"]])
            errors = sample_errors(pred[spec["output"]], self.steps_feeds[spec["target"]])
            self.train_points.setData(steps + self.jitter, np.where(np.isfinite(errors), errors, 0),
                                      size=5, brush=pg.mkBrush(90, 169, 255, 150),
                                      pen=pg.mkPen(None))
            label = "error"
        self.train_points.setVisible(True)
        self.plot.setLabel("bottom", "steps")
        self.plot.setLabel("left", label)
        self.caption.setText(
            f"Steps per sample (loop {spec['loop']!r}): each dot a sample, by the steps the "
            f"loop ran for it ({steps.min()} to {steps.max()}, mean {steps.mean():.1f})"
            + (" and its error." if spec["output"] else "."))

    def show_params(self, params: dict) -> None:
        """Evaluate the model on the grid with these parameters and redraw."""
        if self.spec is None or params is None:
            return
        started = time.perf_counter()
        if self.spec["mode"].startswith("seq_"):
            self.sequences.show_params(params)  # computed in the background, drawn when done
            self.seconds = time.perf_counter() - started
            return
        if self.spec["mode"] == "steps":
            try:
                self._draw_steps(params)
            except GraphError:
                return
            self.seconds = time.perf_counter() - started
            return
        try:
            out = self.program.run(params, {self.spec["input"]: self.grid}, train=False,
                                   outputs=[self.spec["output"]])[self.spec["output"]]
        except GraphError:
            return
        out = np.asarray(out, dtype=np.float64)
        if self.spec["mode"] == "classify":
            self._draw_regions(out)
        else:
            y = out.reshape(len(self.grid), -1)[:, 0]
            self.fit.setData(self.grid[:, 0].astype(np.float64), np.where(np.isfinite(y), y, np.nan),
                             connect="finite")
            self.fit.setVisible(True)
        self.plot.vb.prepareForPaint()  # settle the range now, not in a second paint
        self.seconds = time.perf_counter() - started

    def _draw_regions(self, scores: np.ndarray) -> None:
        if scores.ndim == 1 or scores.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-scores.reshape(-1)))
            probs = np.stack([1 - p1, p1], axis=1)
        else:
            probs = _softmax(np.nan_to_num(scores, nan=0.0, posinf=50.0, neginf=-50.0))
        k = probs.shape[1]
        palette = CLASS_COLORS[np.arange(k) % len(CLASS_COLORS)]
        best = probs.argmax(axis=1)
        confidence = probs.max(axis=1)
        # 1/k (a guess) -> background, 1 (sure) -> a dimmed class colour
        strength = np.clip((confidence - 1.0 / k) / (1.0 - 1.0 / k), 0, 1)[:, None] * 0.55 + 0.12
        rgb = BG + (palette[best] - BG) * strength
        image = rgb.reshape(GRID, GRID, 3).astype(np.uint8)
        self.image.setImage(image, levels=(0, 255), autoLevels=False)
        self.image.setRect(self.region)  # after setImage: the scale depends on the image size
        self.image.setVisible(True)


def legend_color(index: int) -> QColor:
    r, g, b = CLASS_COLORS[index % len(CLASS_COLORS)].astype(int)
    return QColor(r, g, b)

