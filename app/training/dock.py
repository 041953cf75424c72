"""The training dock: press Train and watch it learn.

Buttons (Train, Pause/Resume, Step, Stop, Reset weights), a progress bar, the current figures
in large type, and three tabs: Live (plots and the data view), Inside (the clicked node's
statistics and histograms, gradient flow on the wires, one example through the graph) and
Settings (the training section's form).

Threads: `TrainingWorker` trains a copy of the document in a thread and delivers batches of
events here, in the UI thread, about 20 times a second. They only update the run history and
mark things stale; two timers redraw: the plots at most 20 times a second, the data view and
the probes (which run the graph in this thread) a few times a second, slower if they turn out
to be expensive. A graph edit during a run stops it, with a message that says why.

Documents: what the panel shows of a document's runs is its run model's (run_model.py: the
state machine, the weights, the runs); the window makes one for every document opened and hands
it over (`set_model`), and the panel then shows everything afresh (`_fresh_state`,
`_show_fresh`). The weights belong to the document they were trained for (doc_weights.py): a
weights file that cannot be read gives a notice and fresh weights. A right-click on a run's
curve forks from one of its checkpoints (plot_forks.py, `fork_from`).
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...core.compiler import compile_for_training
from ...core.document import Subscription
from ...core.errors import GraphError
from ...core.training_section import setting
from . import probe as pr
from .dataview import DataView
from .doc_weights import DocumentWeights
from .flow_scale import FLOW_KEY
from .form import TrainingForm
from .inside import InsideTab, base_dir_for
from .node_view import NodeInspector
from .overlay import CanvasOverlay
from .plots import TrainingPlots
from .run_model import AT_REST, RunModel
from .status import StatusRow, stopped_text
from .weights import matching
from .worker import TrainingWorker

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"
PLOT_MS = 50          # plots redraw at most 20 times a second...
PLOT_BUDGET = 0.03    # ...and less often when updating and painting them costs more than 3%
STATUS_S = 0.2        # figures, progress bar and speed: 5 times a second during a run
VIEW_MS = 250         # data view and probes: 4 times a second, slower when they are costly
VIEW_BUDGET = 0.03    # fraction of UI-thread time the data view and probes may take
# Every millisecond the UI thread spends in Python or in Qt painting holds the GIL and so
# stops the trainer: the budgets keep the dock's share of the time small during a run.
PROBE_ROWS = 64
GRAPH_EVENTS = {"node_added", "node_removed", "param_changed", "node_renamed", "edge_added",
                "edge_removed", "block_changed", "reset"}


class TrainingDock(InsideTab, StatusRow, DocumentWeights, QWidget):
    message = Signal(str)             # for the status bar
    state_changed = Signal(str)       # idle / running / paused / stopping (`state`)

    def __init__(self, controller, scene=None, parent=None, model: RunModel | None = None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.controller = controller
        self.scene = scene
        self.worker = TrainingWorker(self)
        self.worker.events.connect(self._on_events)
        self.model: RunModel | None = None
        self._run_model = None        # the model whose run the worker trains
        self._shown = "idle"          # the state the buttons show (`state`)
        self._listening = Subscription(self._on_doc_event)
        self._fresh_state()
        self._build()
        self.overlay = CanvasOverlay(scene) if scene is not None else None
        if scene is not None:
            scene.selectionChanged.connect(self._selection_changed)
        self.plot_timer = QTimer(self)
        self.plot_timer.setInterval(PLOT_MS)
        self.plot_timer.timeout.connect(self._redraw_plots)
        self.plot_timer.start()
        self.view_timer = QTimer(self)
        self.view_timer.setInterval(VIEW_MS)
        self.view_timer.timeout.connect(self._redraw_views)
        self.view_timer.start()
        # a window hands over a model per document; a panel on its own makes its first one
        self.set_model(model if model is not None else RunModel(controller.doc, self))

    # -- building -----------------------------------------------------------------------------

    def _build(self) -> None:
        self.train_button = QPushButton("▶  Train", self)
        self.train_button.setToolTip("Train by the Settings tab, from the current weights "
                                     "(Reset weights to start afresh)")
        self.pause_button = QPushButton("❚❚  Pause", self)
        self.pause_button.setToolTip("Pause the run; Resume goes on where it stopped")
        self.step_button = QPushButton("Step", self)
        self.step_button.setToolTip("Train on one batch, then wait")
        self.stop_button = QPushButton("■  Stop", self)
        self.stop_button.setToolTip("End the run after the current batch; the weights stay")
        self.reset_button = QPushButton("Reset weights", self)
        self.reset_button.setToolTip("Forget the trained weights: the next run starts from the "
                                     "initial weights drawn by the seed")
        self.train_button.clicked.connect(self.train)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.step_button.clicked.connect(self.step)
        self.stop_button.clicked.connect(self.stop)
        self.reset_button.clicked.connect(self.reset_weights)
        self.train_button.setStyleSheet("QPushButton { background: #2f6f3e; font-weight: 600; "
                                        "padding: 4px 14px; } QPushButton:disabled "
                                        "{ background: #2a2d33; }")
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setFormat("not started")
        self.progress.setMinimumWidth(160)
        self.speed = QLabel("", self)
        self.speed.setStyleSheet("color: #9aa1ab;")
        bar = QHBoxLayout()
        for button in (self.train_button, self.pause_button, self.step_button, self.stop_button,
                       self.reset_button):
            bar.addWidget(button)
        bar.addSpacing(8)
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.speed)

        self.figures_host = QWidget(self)
        self.figures = QGridLayout(self.figures_host)
        self.figures.setContentsMargins(4, 0, 4, 0)
        self.figures.setHorizontalSpacing(22)
        self.figures.setVerticalSpacing(0)
        self.figure_labels: dict = {}
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.RichText)

        self.plots = TrainingPlots(self)
        self.plots.setMinimumHeight(230)
        self.plots.fork_requested.connect(self.fork_from)
        self.dataview = DataView(self)
        live = QSplitter(Qt.Horizontal, self)
        live.addWidget(self.plots)
        live.addWidget(self.dataview)
        live.setStretchFactor(0, 3)
        live.setStretchFactor(1, 2)

        inside = QWidget(self)
        self.inspector = NodeInspector(inside)
        self.flow_box = QCheckBox("Show gradient flow on the wires", inside)
        self.flow_box.setToolTip("Colour and thicken each wire by the size of the gradient "
                                 "flowing back through it")
        self.flow_box.toggled.connect(self.show_gradient_flow)
        self.flow_key = QLabel(FLOW_KEY, inside)  # what the colours mean: flow_scale.py's
        self.flow_key.setTextFormat(Qt.RichText)
        self.flow_key.setWordWrap(True)  # else the Inside tab is wider than the window
        self.example_row = QSpinBox(inside)
        self.example_row.setRange(0, 0)
        self.example_row.setPrefix("row ")
        self.example_row.setToolTip("Which training example to run")
        self.example_button = QPushButton("Run one example", inside)
        self.example_button.setToolTip("Run one example through the graph and show each node's "
                                       "output shape and values on the canvas")
        self.example_button.clicked.connect(self.run_example)
        self.example_clear = QPushButton("Hide values", inside)
        self.example_clear.clicked.connect(self.clear_example)
        self.example_text = QLabel("", inside)
        self.example_text.setTextFormat(Qt.RichText)
        self.example_text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.example_text.setWordWrap(True)
        tools = QHBoxLayout()
        tools.addWidget(self.flow_box)
        tools.addWidget(self.flow_key, 1)
        tools.addWidget(self.example_row)
        tools.addWidget(self.example_button)
        tools.addWidget(self.example_clear)
        inside_layout = QVBoxLayout(inside)
        inside_layout.addLayout(tools)
        inside_layout.addWidget(self.inspector, 1)
        inside_layout.addWidget(self.example_text)

        self.form = TrainingForm(self.controller, self)
        form_scroll = QScrollArea(self)
        form_scroll.setWidgetResizable(True)
        form_scroll.setWidget(self.form)

        self.tabs = QTabWidget(self)
        self.tabs.addTab(live, "Live")
        self.tabs.addTab(inside, "Inside the network")
        self.tabs.addTab(form_scroll, "Settings")
        self.tabs.currentChanged.connect(lambda _i: self._tab_changed())

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        layout.addLayout(bar)
        top = QHBoxLayout()
        top.addWidget(self.figures_host)
        top.addWidget(self.note, 1)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)

    # -- the document and its run model ------------------------------------------------------

    @property
    def doc(self):
        return self.controller.doc

    @property
    def state(self) -> str:
        """What the buttons show: idle (no run going: never trained, finished or failed),
        running, paused or stopping."""
        return self._shown

    def set_model(self, model: RunModel) -> None:
        """Follow `model`, a document's runs (the window hands over a new one with every
        document): a run of the last one stops, and the panel shows this one's afresh."""
        if self.worker.is_running():
            self.worker.shutdown(5.0)
            self.worker.alive = True
        if self.model is not None:
            for signal, slot in self._model_slots(self.model):
                signal.disconnect(slot)
        self.model = model
        for signal, slot in self._model_slots(model):
            signal.connect(slot)
        self._listening.follow(model.doc)
        if self.overlay is not None:
            self.overlay.follow(model)
        self._fresh_state()
        self._show_fresh()
        self._say_opened()

    def _model_slots(self, model) -> list:
        return [(model.state_changed, self._on_model_state),
                (model.history_changed, self._history_moved),
                (model.snapshot_changed, self._snapshot_moved),
                (model.ready, self._on_ready),
                (model.run_failed, self._on_run_failed),
                (model.notice, self._on_notice)]

    def _fresh_state(self) -> None:
        """What the panel itself keeps of the document shown (the run's state is the model's),
        as for one never trained. Assigned here only, when the panel is built and for every
        model handed over, so that nothing of one document's runs outlives it."""
        self.probe: pr.Probe | None = None
        self.probe_feeds: dict | None = None
        self.selected: tuple | None = None   # (graph ref, node id) shown in the Inside tab
        self.error_text = ""
        self._stop_reason = ""
        self._plots_stale = self._views_stale = False
        self._view_cost = 0.0
        self._next_plot = self._next_status = 0.0

    def _show_fresh(self) -> None:
        """The widgets as for a document never trained this session: its past runs, greyed,
        on the plots (view choices, like the tab shown or the gradient flow, stay)."""
        self.plots.set_history(self.model.history)
        self.plots.forks = self.model
        self._plots_stale = bool(self.model.history.runs)
        self.dataview.clear("Train to see the data and what the model makes of it.")
        self._show_no_run()
        self.example_row.setRange(0, 0)
        self.example_text.setText("")
        self.inspector.show_node(None)
        self._on_model_state(self.model.state)

    def _on_doc_event(self, event) -> None:
        if event.kind in GRAPH_EVENTS or event.kind == "training_changed":
            if self.overlay is not None and self.overlay.nan is not None:
                self.overlay.set_nan(None)
            if self.model.busy:
                what = "the training settings" if event.kind == "training_changed" else "the graph"
                self.worker.stop()
                self.model.stopping()
                self._stop_reason = (f"<b>Training stopped:</b> {what} changed while it ran. "
                                     "Press Train to go on with the edited version.")
                self._say(self._stop_reason, error=True)
                self.message.emit(f"Training stopped: {what} changed")

    # -- controls -----------------------------------------------------------------------------

    def train(self) -> bool:
        return self._start()

    def step(self) -> bool:
        if self.state == "paused":
            self.worker.step(1)
            return True
        if self.state == "idle":
            return self._start(steps=1)
        return False

    def toggle_pause(self) -> None:
        if self.state == "running":
            self.pause()
        elif self.state == "paused":
            self.resume()

    def pause(self) -> None:
        if self.model.state == "running":
            self.worker.pause()
            self.model.set_state("paused")

    def resume(self) -> None:
        if self.model.state == "paused":
            self.worker.resume()
            self.model.set_state("running")

    def stop(self) -> None:
        if self.model.state in ("running", "paused"):
            self.worker.stop()
            self.model.stopping()
            self._say("Stopping after this batch…")

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop a run and wait for its thread (window close)."""
        self.plot_timer.stop()
        self.view_timer.stop()
        return self.worker.shutdown(timeout)

    def _seed(self) -> int:
        return self.model.seed()

    def _initial_params(self):
        return self.model.initial_params()

    def _start(self, steps: int | None = None) -> bool:
        if self.model.busy or self.worker.is_running():
            return False
        doc = self.doc.copy()
        doc.path = self.doc.path
        if not isinstance(doc.training, dict):
            self._say("This graph has no training section: add one in the Settings tab.",
                      error=True)
            self.tabs.setCurrentIndex(2)
            return False
        try:  # only what the loss and metrics need must compile (core/training_scope.py)
            program = compile_for_training(doc, setting(doc.training, "dtype"))
        except GraphError as exc:
            self._show_error(str(exc), exc.node, before_start=True)
            return False
        doc = program.doc  # without the nodes training ignores; the run and its views use it
        ignored = "; ".join(escape(w.message) for w in program.warnings
                            if w.node in program.ignored_by_training)
        params, kept = matching(self.model.params, program)
        if params is not None and kept < len(program.param_names):
            fresh = program.init_params(self._seed())
            params = {n: params.get(n, fresh[n]) for n in program.param_names}
        last_doc = self.model.run_doc
        graph_changed = self.model.history.current is not None and last_doc is not None and \
            last_doc.graph.to_dict() != doc.graph.to_dict()
        self.error_text = ""
        self._stop_reason = ""
        record = self.model.begin_run(doc, continued=params is not None,
                                      graph_changed=graph_changed)
        note = ""
        if params is not None and kept < len(program.param_names):
            note = f" ({len(program.param_names) - kept} new weight tensors start fresh)"
        if ignored:
            note += f" ({ignored})"
        self._say(f"Training {escape(self.model.history.current.label)}{note}…")
        self._run_model = self.model
        self.worker.start(doc, params=params, base_dir=base_dir_for(self.doc), steps=steps,
                          checkpoints=record)
        return True

    def fork_from(self, run, epoch: int) -> bool:
        """Take `run`'s checkpoint at `epoch` as the weights the next run starts from."""
        try:
            self.model.fork_from(run, epoch)
        except GraphError as exc:
            self._say(f"<b>Cannot fork:</b> {escape(str(exc))}", error=True)
            self.message.emit(f"Cannot fork: {exc}")
            return False
        name = escape(run.label.split(":")[0])
        self._say(f"Forked from {name} at epoch {epoch}: its weights are loaded. Edit the graph "
                  "or the settings, then press <b>Train</b>: the new run starts from there and "
                  "is labelled with what changed.")
        self.message.emit(f"Forked from {run.label.split(':')[0]} at epoch {epoch}")
        return True

    # -- the run, as the model tells it -------------------------------------------------------

    def _on_events(self, batch: list) -> None:
        if self._run_model is not self.model:  # a run of a document no longer shown
            return
        self.model.take_events(batch)

    def _history_moved(self) -> None:
        self._plots_stale = True

    def _snapshot_moved(self) -> None:
        self._views_stale = True

    def _on_ready(self, info) -> None:
        rows = len(next(iter(info.train_feeds.values()))) if info.train_feeds else 0
        self.example_row.setRange(0, max(0, rows - 1))
        self.probe = pr.Probe(self.model.run_doc, info.plan.loss, info.plan.dtype)
        self.probe_feeds = {k: v[:PROBE_ROWS] for k, v in info.train_feeds.items()}
        self.dataview.configure(self.model.run_doc, info)
        self._views_stale = True

    def _on_notice(self, text: str) -> None:
        self.message.emit(text)

    def _on_run_failed(self, message: str, node, setup: bool) -> None:
        self._show_error(message, node, setup)

    def _on_model_state(self, state: str) -> None:
        """The buttons follow the model's state; a run's end is said, and drawn at once."""
        shown = "idle" if state in AT_REST else state
        idle, paused = shown == "idle", shown == "paused"
        going = shown in ("running", "paused")
        self.train_button.setEnabled(idle)
        self.pause_button.setEnabled(going)
        self.pause_button.setText("▶  Resume" if paused else "❚❚  Pause")
        self.step_button.setEnabled(idle or paused)
        self.stop_button.setEnabled(going)
        self.reset_button.setEnabled(idle)
        self.form.setEnabled(idle)
        self.form.setToolTip("" if idle else "Stop the run to change the settings")
        if shown != self._shown:
            self._shown = shown
            self.state_changed.emit(shown)
        if state in ("finished", "failed"):
            self._run_ended()

    def _run_ended(self) -> None:
        run = self.model.history.current
        if run is not None and run.state == "stopped":
            self._say(self._stop_reason or stopped_text(run),  # the epoch the bar shows
                      error=bool(self._stop_reason))
        elif run is not None and run.state == "finished":
            self._say(f"Done: {run.epochs_done} epochs, {run.last_step()} steps in "
                      f"{run.elapsed:.1f} s. Train again to go on, or Reset weights to start "
                      "over; right-click the curve to fork from an earlier epoch.")
        self._plots_stale = self._views_stale = True
        self._redraw_plots(force=True)
        self._redraw_views(force=True)

    def _show_error(self, message: str, node: str | None, before_start: bool = False) -> None:
        self.error_text = message
        if before_start:
            self._say(f"<b>Cannot train:</b> {message}", error=True)
        else:
            where = f" at <b>{node}</b>" if node else ""
            self._say(f"<b>Training stopped{where}:</b> {message}", error=True)
        self.message.emit(message)

    def _say(self, html: str, error: bool = False) -> None:
        color = "#ff6b6b" if error else "#9aa1ab"
        self.note.setText(f"<span style='color:{color}'>{html}</span>")

    # -- drawing (timers) ---------------------------------------------------------------------

    def _redraw_plots(self, force: bool = False) -> None:
        self.worker.drain()  # batches whose queued call is late
        if not self._plots_stale:
            return
        now = time.perf_counter()
        if not force and self.state == "running" and now < self._next_plot:
            return
        self._plots_stale = False
        if self.plots.isVisible():  # the Inside or Settings tab: the plots wait until shown
            self.plots.refresh()
        if force or self.state != "running" or now >= self._next_status:
            # labels and the progress bar relayout in the UI thread: 5 times a second is plenty
            self._update_status()
            self._next_status = now + STATUS_S
        # pace the next frame by what this one cost (the paint happens later: take the last)
        cost = time.perf_counter() - now + self.plots.view.last_paint
        self._next_plot = now + cost / PLOT_BUDGET

    def _tab_changed(self) -> None:
        self._views_stale = self._plots_stale = True

    def _redraw_views(self, force: bool = False) -> None:
        if not self._views_stale or self.snapshot is None:
            return
        now = time.perf_counter()
        # keep the UI thread's share small: wait longer after an expensive redraw
        if not force and self._view_cost > 0 and \
                now - getattr(self, "_last_view", 0.0) < self._view_cost / VIEW_BUDGET:
            return
        self._views_stale = False
        started = now
        params = self.snapshot
        if self.dataview.active and self.tabs.currentIndex() == 0:
            self.dataview.show_params(params)
        if self._wants_probe():
            self._update_probe(params)
        self._last_view = time.perf_counter()
        self._view_cost = self._last_view - started + self.dataview.plot_widget.last_paint
