"""The export dialog's parity checks: is the exported code the engine's, for the target chosen?

Two checks, each ending in a badge: green when the exported code matches the engine within
the target's tolerance, red past it, with the largest difference either way.
- Verify: one batch, outputs and gradients (export_parity.check_export).
- Train N steps both ways: the exported script's training and the engine's, from the same
  initial parameters and batches, their loss curves overlaid in a small plot
  (export_parity.train_both_ways).
Both run in a process of their own (parity_job.py) with a progress bar and Cancel, so the
dialog never waits; `verify()` also runs the one-batch check at once, for scripts and tests.
A badge speaks of one target: choosing another takes the badges and the curves away.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import GraphError
from . import export_parity as parity
from .number_text import clean_axes, number
from .parity_job import ParityJob
from .plot_style import quiet_plot

DEFAULT_STEPS = 50
MAX_STEPS = 5000
BADGE_COLORS = {"good": "#2f9e44", "bad": "#e03131", "neutral": "#495057"}
ENGINE_PEN = pg.mkPen("#5aa9ff", width=2.5)
SCRIPT_PEN = pg.mkPen("#f2994a", width=1.5, style=Qt.DashLine)


class Badge(QLabel):
    """A coloured pill with one sentence: `state` is "good", "bad", "neutral" or "" (hidden)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.state = ""
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.setWordWrap(True)
        self.show_text("", "")

    def show_text(self, text: str, state: str, tip: str = "") -> None:
        self.state = state
        self.setText(text)
        self.setToolTip(tip)
        self.setVisible(bool(text))
        color = BADGE_COLORS.get(state, BADGE_COLORS["neutral"])
        self.setStyleSheet(f"QLabel {{ background: {color}; color: white; border-radius: 9px; "
                           "padding: 3px 10px; font-weight: 600; }")


class ParityPanel(QWidget):
    """Verify and train-both-ways for the document and the target the dialog shows."""

    def __init__(self, doc, target_of, parent=None):
        """`target_of()` says which target the dialog shows ("numpy" or "torch")."""
        super().__init__(parent)
        self.doc = doc
        self.target_of = target_of
        self.job = ParityJob(self)
        self.job.progress.connect(self._progress)
        self.job.finished.connect(self._finished)
        self.job.failed.connect(self._failed)
        self.check: dict | None = None    # the last one-batch check's result
        self.curves: dict | None = None   # the last train-both-ways result
        self.exportable = True            # the dialog could write the code
        self._done: dict = {}             # steps done by side, while training both ways
        self._build()

    def _build(self) -> None:
        self.verify_button = QPushButton("Verify against the engine", self)
        self.verify_button.setToolTip("Run the exported code and the engine on the same "
                                      "parameters and inputs (the target chosen above) and "
                                      "show the largest difference of outputs and gradients.")
        self.check_badge = Badge(self)
        self.steps = QSpinBox(self)
        self.steps.setRange(1, MAX_STEPS)
        self.steps.setValue(DEFAULT_STEPS)
        self.steps.setPrefix("train ")
        self.steps.setSuffix(" steps both ways")
        self.steps.setToolTip("Train this many steps with the exported script's own training "
                              "and with the engine's, from the same initial weights and the "
                              "same batches, and overlay the two loss curves.")
        self.train_button = QPushButton("Compare training", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setVisible(False)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.progress.setTextVisible(True)
        self.curve_badge = Badge(self)
        self.plot = pg.PlotWidget(self, background="#1f2126", axisItems=clean_axes())
        self.plot.setMinimumHeight(150)
        self.plot.setMaximumHeight(190)
        item = quiet_plot(self.plot.getPlotItem(), mouse=True)
        item.setLabel("left", "loss")
        item.setLabel("bottom", "step")
        item.addLegend(offset=(-8, 6), labelTextSize="8pt", brush=pg.mkBrush(31, 33, 38, 200))
        self.engine_curve = item.plot([], [], pen=ENGINE_PEN, name="engine")
        self.script_curve = item.plot([], [], pen=SCRIPT_PEN, name="exported script")
        self.plot.setVisible(False)

        checks = QHBoxLayout()
        checks.setContentsMargins(0, 0, 0, 0)
        checks.addWidget(self.verify_button)
        checks.addWidget(self.check_badge, 1)
        training = QHBoxLayout()
        training.setContentsMargins(0, 0, 0, 0)
        training.addWidget(self.steps)
        training.addWidget(self.train_button)
        training.addWidget(self.progress, 1)
        training.addWidget(self.cancel_button)
        training.addWidget(self.curve_badge, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(checks)
        layout.addLayout(training)
        layout.addWidget(self.plot)

        self.verify_button.clicked.connect(lambda _checked=False: self.start_verify())
        self.train_button.clicked.connect(lambda _checked=False: self.start_training())
        self.cancel_button.clicked.connect(self.cancel)

    # -- what the buttons do ------------------------------------------------------------------

    def set_exportable(self, exportable: bool) -> None:
        """Whether the export could be written (else there is nothing to check)."""
        self.exportable = exportable
        self._enable()

    def _enable(self) -> None:
        idle = self.exportable and not self.job.is_running()
        self.verify_button.setEnabled(idle)
        self.train_button.setEnabled(idle and self._trainable())
        self.steps.setEnabled(idle and self._trainable())

    def _trainable(self) -> bool:
        return isinstance(self.doc.training, dict)

    def target_changed(self) -> None:
        """The badges and curves were for the other target: take them away."""
        self.cancel()
        self.check = self.curves = None
        self.check_badge.show_text("", "")
        self.curve_badge.show_text("", "")
        self.engine_curve.setData([], [])
        self.script_curve.setData([], [])
        self.plot.setVisible(False)
        self.train_button.setToolTip("" if self._trainable() else
                                     "This graph has no training section to train by.")

    def _torch_missing(self) -> bool:
        if self.target_of() == "torch" and not parity.torch_available():
            self.check_badge.show_text("PyTorch is not installed here: the torch code cannot "
                                       "be run to check it.", "neutral")
            return True
        return False

    def verify(self) -> dict | None:
        """The one-batch check, at once (scripts and tests: the button runs it in the
        background). Returns export_parity.check_export's result, or None."""
        if self._torch_missing():
            return None
        try:
            result = parity.check_export(self.doc, self.target_of())
        except GraphError as exc:
            self.check_badge.show_text(f"✗ Cannot verify: {exc}", "bad")
            return None
        self._show_check(result)
        return result

    def start_verify(self) -> None:
        if self._torch_missing():
            return
        self._start("verify")

    def start_training(self) -> None:
        if self._torch_missing():
            return
        if not self._trainable():
            self.curve_badge.show_text("This graph has no training section to train by.",
                                       "neutral")
            return
        self._start("train", self.steps.value())

    def _start(self, kind: str, steps: int = 0) -> None:
        self.job.start(kind, self.doc, self.target_of(), steps)
        badge = self.check_badge if kind == "verify" else self.curve_badge
        what = "Checking one batch" if kind == "verify" else f"Training {steps} steps"
        badge.show_text(f"{what} of the {self.target_of()} code against the engine…",
                        "neutral")
        self.progress.setRange(0, 2 * steps if kind == "train" else 0)  # 0: busy
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._running(True)

    def cancel(self) -> None:
        if self.job.is_running():
            badge = self.check_badge if self.job.kind == "verify" else self.curve_badge
            self.job.cancel()
            badge.show_text("Cancelled.", "neutral")
        self._running(False)

    def wait(self, msecs: int = 120_000) -> bool:
        """Until the running check ends (tests and scripts)."""
        return self.job.wait(msecs)

    def _running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self._enable()

    # -- answers ------------------------------------------------------------------------------

    def _progress(self, side: str, done: int, total: int) -> None:
        self._done[side] = done
        self.progress.setValue(sum(self._done.values()))
        self.progress.setFormat(f"engine {self._done.get('engine', 0)}/{total} · exported "
                                f"{self._done.get('script', 0)}/{total}")

    def _finished(self, result: dict) -> None:
        kind = self.job.kind
        self._done = {}
        self._running(False)
        if kind == "verify":
            self._show_check(result)
        else:
            self._show_curves(result)

    def _failed(self, message: str) -> None:
        kind = self.job.kind or "verify"
        self._done = {}
        self._running(False)
        badge = self.check_badge if kind == "verify" else self.curve_badge
        badge.show_text(f"✗ {message}", "bad")

    def _show_check(self, result: dict) -> None:
        self.check = result
        outputs, grads = result["outputs"], result["gradients"]
        worst = outputs if grads is None else max(outputs, grads)
        target = result["target"]
        detail = (f"{target} code vs the engine ({result['dtype']}, one batch): outputs differ "
                  f"by at most {number(outputs, 2)}, gradients by "
                  + (f"at most {number(grads, 2)}" if grads is not None else
                     "nothing (no single-valued Output to take them of)")
                  + f"; relative to the largest value, tolerance "
                    f"{number(result['tolerance'], 2)}.")
        if result["ok"]:
            self.check_badge.show_text(f"✓ {target} matches the engine: max diff "
                                       f"{number(worst, 2)}", "good", detail)
        else:
            self.check_badge.show_text(f"✗ {target} differs from the engine: max diff "
                                       f"{number(worst, 2)} (tolerance "
                                       f"{number(result['tolerance'], 2)})", "bad", detail)

    def _show_curves(self, result: dict) -> None:
        self.curves = result
        engine, script = result["engine"], result["script"]
        self.engine_curve.setData(np.arange(1, len(engine) + 1), np.asarray(engine, float))
        self.script_curve.setData(np.arange(1, len(script) + 1), np.asarray(script, float))
        self.plot.setVisible(True)
        steps, worst = result["steps"], result["max_diff"]
        detail = (f"Both trained {steps} steps from the same initial weights, on the same "
                  f"batches in the same order. Largest difference of a step's loss: "
                  f"{number(worst, 2)} ({number(result['max_rel'], 2)} of the largest loss; "
                  f"tolerance {number(result['tolerance'], 2)}).")
        if result.get("note"):
            detail += " " + result["note"]
        if len(engine) != len(script):
            self.curve_badge.show_text(f"✗ the engine trained {len(engine)} steps, the "
                                       f"exported script {len(script)}", "bad", detail)
        elif result["ok"]:
            self.curve_badge.show_text(f"✓ {steps} steps both ways: max loss diff "
                                       f"{number(worst, 2)}", "good", detail)
        else:
            shown = "NaN or Inf" if not math.isfinite(worst) else number(worst, 2)
            self.curve_badge.show_text(f"✗ {steps} steps both ways: the losses differ by up to "
                                       f"{shown}", "bad", detail)
