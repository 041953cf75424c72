"""The training run of one document: the model the window, the dock and the overlay observe.

One RunModel per document opened: the window makes a new one for every document and hands it
to the views (`TrainingDock.set_model`, which passes it on to the canvas overlay), so nothing of
one document's runs (above all its weights) can outlive it. It holds:

- the state machine of the run: idle (never trained here), running, paused, stopping (asked
  to stop, ending its step), then finished or failed, from which a new run starts (TRANSITIONS);
- the trained weights (`params`, None for the initial ones), the weights last saved beside the
  file (`saved_params`), the latest parameters seen during a run (`snapshot`) and the dirty
  flag (trained or reset weights not saved: the window's `*`);
- the runs: this session's and, read from the document's runs folder (runs_store.py), the past
  ones, each with its checkpoints, so a run can be forked from any epoch it kept (`fork_from`).

It does not train: the dock's worker does, and hands the worker's events to `take_events`.
Every change is a signal; the views redraw from the model, never from each other.
"""

from __future__ import annotations

import copy
import time

from PySide6.QtCore import QObject, Signal

from ...core.compiler import compile_for_training
from ...core.errors import GraphError
from ...core.training_section import setting
from .checkpoints import EVERY_S
from .history import History
from .run_diff import describe_change
from .runs_store import RunsStore, new_run_id
from .weights import load_for, save_weights, weights_path

TRANSITIONS = {
    "idle": {"running"},
    "running": {"paused", "stopping", "finished", "failed"},
    "paused": {"running", "stopping", "finished", "failed"},
    "stopping": {"finished", "failed"},
    "finished": {"running"},
    "failed": {"running"},
}
AT_REST = ("idle", "finished", "failed")
CHECKPOINT_EVERY_S = EVERY_S  # at most one checkpoint this often (checkpoints.py)
TRAINER_EVENTS = ("start", "step", "epoch", "end")


class RunModel(QObject):
    state_changed = Signal(str)           # one of TRANSITIONS' keys
    weights_changed = Signal(bool)        # the dirty flag: True when not saved beside the file
    params_changed = Signal()             # the trained weights were replaced
    snapshot_changed = Signal()           # newer parameters seen (during a run, or a pause)
    history_changed = Signal()            # a run added, or the current one moved on
    ready = Signal(object)                # SessionInfo: the run's data and program
    run_failed = Signal(str, object, bool)  # message, node (or None), before the first step
    fork_changed = Signal(object)         # (Run, epoch) the next run starts from, or None
    notice = Signal(str)                  # something the user should read (status bar)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.state = "idle"
        self.history = History()
        self.params: dict | None = None        # trained weights (None: the initial ones)
        self.saved_params: dict | None = None  # what is beside the file
        self.snapshot: dict | None = None      # the latest parameters seen
        self.weights_version = 0               # counts changes of `params` (autosave)
        self._dirty = False
        self.info = None                       # SessionInfo of the last run
        self.run_doc = None                    # the document copy the last run trained
        self.fork: tuple | None = None         # (Run, epoch) the next run starts from
        self.store = RunsStore(doc.path)
        self.opening_notice = self._open()

    def _open(self) -> str:
        """The weights saved beside the file and the past runs: "" or why the weights could
        not be used."""
        params, notice = load_for(self.doc)
        self.params = self.snapshot = self.saved_params = params
        for record in self.store.past_runs():
            self.history.add_past(record)
        return notice

    def retire(self) -> None:
        """The document goes away: runs of an unsaved one go with it (runs_store.py)."""
        self.store.run_ended()
        self.store.discard()

    # -- the state machine --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A run is going (running, paused or stopping)."""
        return self.state not in AT_REST

    def set_state(self, state: str) -> None:
        if state == self.state:
            return
        if state not in TRANSITIONS[self.state]:
            raise ValueError(f"a run cannot go from {self.state} to {state}")
        self.state = state
        self.state_changed.emit(state)

    def stopping(self) -> None:
        """Asked to stop: the run ends after its current step."""
        if self.state in ("running", "paused"):
            self.set_state("stopping")

    # -- weights ------------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self._dirty

    @dirty.setter
    def dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.weights_changed.emit(dirty)

    def keep(self, params: dict | None, dirty: bool) -> None:
        """Make `params` the document's weights (None: its initial ones)."""
        self.params = params
        self.snapshot = params
        self.weights_version += 1
        self.dirty = dirty
        self.params_changed.emit()
        self.snapshot_changed.emit()

    def seed(self) -> int:
        return setting(self.doc.training, "seed")

    def initial_params(self) -> dict | None:
        try:  # the weights training would start from: of what the loss and metrics need
            return compile_for_training(self.doc, setting(self.doc.training, "dtype")) \
                .init_params(self.seed())
        except GraphError:
            return None

    def reset(self) -> bool:
        """Forget the trained weights (and a fork point): the next run starts afresh."""
        if self.busy:
            return False
        self._set_fork(None)
        was_trained = self.params is not None  # nothing trained, nothing to forget
        self.keep(None, dirty=self.dirty or was_trained)
        self.snapshot = self.initial_params()
        return True

    def save_weights(self, doc_path: str) -> str | None:
        """The document was saved as `doc_path`: its weights go beside it (with none, a file
        left there is taken away, so that reopening does not bring them back), and so do its
        runs."""
        self.store.follow(doc_path, busy=self.busy)
        if self.params is None:
            stale = weights_path(doc_path)
            if self.dirty and stale.exists():
                stale.unlink()
            self.saved_params = None
            self.dirty = False
            return None
        path = save_weights(doc_path, self.params)
        self.saved_params = self.params
        self.dirty = False
        return str(path)

    def unsaved_weights(self) -> tuple:
        """What autosave keeps of the weights: ("trained", weights), ("reset", None), or
        (None, None) when the file's stand."""
        if not self.dirty:
            return None, None
        return ("trained", self.params) if self.params is not None else ("reset", None)

    def restore_weights(self, kind: str | None, path) -> str:
        """Take the weights of recovered work; "" or why the file's stand."""
        if kind == "reset":
            self.keep(None, dirty=True)
            self.snapshot = self.initial_params()
            return ""
        if kind != "trained":
            return ""
        params, notice = load_for(self.doc, path, "The recovered weights")
        if notice or params is None:
            return notice or "The recovered weights were not found; the file's stand."
        self.keep(params, dirty=True)
        return ""

    # -- runs ---------------------------------------------------------------------------------

    def begin_run(self, run_doc, continued: bool, graph_changed: bool) -> dict:
        """A run of `run_doc` (the copy the worker trains) starts now. Returns what the
        training process needs to keep its record (checkpoints.py)."""
        fork = self.fork
        document = self.doc.to_dict()
        change = describe_change(fork[0].document, document) if fork is not None else ""
        run = self.history.new_run(copy.deepcopy(run_doc.training), continued, graph_changed,
                                   fork, change)
        run.id, run.document = new_run_id(), document
        self.run_doc = run_doc
        self._set_fork(None)
        self.set_state("running")
        self.history_changed.emit()
        parent = {"run": fork[0].id, "epoch": fork[1]} if fork is not None else None
        record = {"id": run.id, "number": run.number, "label": run.label,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "parent": parent,
                  "change": change, "x_offset": run.x_offset, "document": document,
                  "training": run.training}
        return {"folder": str(self.store.run_dir(run.id)), "record": record,
                "every_s": CHECKPOINT_EVERY_S}

    def take_events(self, batch: list) -> None:
        """A batch of the worker's events, in order (worker.py lists them)."""
        run = self.history.current
        trainer_events = []
        for event in batch:
            kind = event["kind"]
            if kind in TRAINER_EVENTS:
                trainer_events.append(event)
                continue
            if run is not None and trainer_events:  # in order: "finished" sees every step
                run.add_events(trainer_events)
                trainer_events = []
                self.history_changed.emit()
            if kind == "params":
                self.snapshot = event["params"]
                self.snapshot_changed.emit()
            elif kind == "ready":
                self.info = event["session"]
                self.ready.emit(self.info)
            elif kind == "paused":
                if self.state == "running":
                    self.set_state("paused")
                self.snapshot_changed.emit()
            elif kind == "error":
                if run is not None:
                    run.state, run.error = "failed", event["message"]
                self.run_failed.emit(event["message"], event.get("node"),
                                     bool(event.get("setup", False)))
            elif kind == "notice":
                self.notice.emit(event["message"])
            elif kind == "finished":
                self._finish(event)
        if run is not None and trainer_events:
            run.add_events(trainer_events)
            self.history_changed.emit()

    def _finish(self, event: dict) -> None:
        result = event.get("result")
        run = self.history.current
        if result is not None and result.steps > 0:
            self.keep(result.params, dirty=True)
        if run is not None and run.state != "failed":
            run.state = "stopped" if event.get("stopped") else "finished"
        self.store.run_ended()
        if self.busy:
            self.set_state("failed" if run is not None and run.state == "failed" else "finished")
        self.history_changed.emit()

    # -- forks --------------------------------------------------------------------------------

    def checkpoints_of(self, run) -> list:
        """The epochs of `run` whose parameters are on disk (asked on a right-click: the
        folder is the truth, whatever the training process managed to write)."""
        return self.store.epochs_on_disk(run.id) if run.id else []

    def fork_from(self, run, epoch: int) -> None:
        """Start the next run from `run`'s checkpoint at `epoch`: its parameters become the
        weights (those that still fit the graph when it trains: weights.matching), and the
        next run is labelled by what changed since. GraphError when it cannot be read."""
        if self.busy:
            raise GraphError("stop the run first")
        params = self.store.checkpoint(run.id, epoch)
        self.keep(params, dirty=True)
        self._set_fork((run, epoch))

    def _set_fork(self, fork: tuple | None) -> None:
        if fork != self.fork:
            self.fork = fork
            self.fork_changed.emit(fork)
