"""Training in a background thread, its events delivered to the UI thread in batches.

`TrainingWorker` runs `core.trainer.run_session` in a Python thread on a copy of the document
(the live document is never read from that thread). The trainer's callback only appends each
event to a list; about every 50 ms (and at once for start, pause, error and end) the list is
handed to the UI thread through a queued signal, with a copy of the parameters at most every
100 ms. So a fast run costs the UI ~20 deliveries a second, however many steps it takes, and
the UI never touches the trainer's arrays while they change.

Controls, all from the UI thread: `pause()`/`resume()` (a threading.Event the trainer waits
on), `step()` (one batch, then pause again), `stop()` (ends after the current step). Scene
items are never touched from the thread.

Events the UI receives, besides the trainer's own (start, step, epoch, error, end):
  {"kind": "ready", "session": <info>}        the data is loaded and the program compiled
  {"kind": "params", "params": {...}, "step"}  a snapshot of the parameters
  {"kind": "paused"}                          the run is waiting (after Pause or a Step)
  {"kind": "finished", "result": TrainResult | None, "stopped": bool, "failed": bool}
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal

from core.errors import GraphError
from core.trainer import Session, TrainingError, run_session

FLUSH_S = 0.05      # deliver events at most ~20 times a second
SNAPSHOT_S = 0.1    # copy the parameters at most ~10 times a second


@dataclass
class SessionInfo:
    """What the UI needs to know about a run's data and program, sent once when it starts."""

    train_feeds: dict      # Input id -> array (the training rows); read-only for the UI
    val_feeds: dict | None
    classes: dict
    param_names: list
    steps_per_epoch: int
    epochs: int
    plan: object           # core.trainer.Plan


class _PauseFlag(threading.Event):
    """Set while the run should wait. The trainer polls it before every step; the worker
    thread's first poll of a pause reports it (flushing the events still queued), so the UI
    shows exactly where the run stopped."""

    def __init__(self, on_wait):
        super().__init__()
        self._on_wait = on_wait
        self._reported = False
        self.owner: threading.Thread | None = None

    def set(self) -> None:
        self._reported = False
        super().set()

    def is_set(self) -> bool:
        paused = super().is_set()
        if paused and not self._reported and threading.current_thread() is self.owner:
            self._reported = True
            self._on_wait()
        return paused


class _Relay(QObject):
    """Lives in the UI thread; the worker thread emits on it, Qt queues the call."""

    ready = Signal()


class TrainingWorker(QObject):
    """One run at a time. `events` carries lists of event dicts in the UI thread."""

    events = Signal(object)  # a list of event dicts; `object` passes it without conversion

    def __init__(self, parent=None):
        super().__init__(parent)
        # Batches wait in a deque (appends and pops are atomic); the queued signal says one is
        # there. `drain()` also takes them, so a timer in the UI thread can deliver them even
        # where a queued call is late (after a first QApplication.exec() has returned, as in
        # tests, Qt may hold posted events until the next sendPostedEvents).
        self._outbox: deque = deque()
        self._relay = _Relay(self)
        self._relay.ready.connect(self.drain, Qt.QueuedConnection)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pause = _PauseFlag(self._on_pause)
        self._step_budget: int | None = None   # steps left before pausing (Step), or None
        self._pending: list = []
        self._last_flush = 0.0
        self._last_snapshot = 0.0
        self._session: Session | None = None
        self.alive = True

    # -- control (UI thread) ------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def is_paused(self) -> bool:
        return self.is_running() and self._pause.is_set()

    def start(self, doc, params=None, base_dir=None, paused: bool = False,
              steps: int | None = None, epochs: int | None = None) -> None:
        """Train `doc` (a private copy: the worker keeps it) from `params` (None: fresh).
        `steps`: pause after that many steps; `paused`: wait before the first."""
        if self.is_running():
            raise RuntimeError("a run is going already")
        self._stop.clear()
        self._pause.clear()
        if paused:
            self._pause.set()
        self._step_budget = steps
        self._pending = []
        self._outbox.clear()
        self._last_flush = self._last_snapshot = 0.0
        self._session = None
        self._thread = threading.Thread(target=self._run, args=(doc, params, base_dir, epochs),
                                        name="wiregrad-training", daemon=True)
        self._pause.owner = self._thread
        self._thread.start()

    def pause(self) -> None:
        self._step_budget = None
        self._pause.set()

    def resume(self) -> None:
        self._step_budget = None
        self._pause.clear()

    def step(self, count: int = 1) -> None:
        """Let a paused run take `count` more steps, then pause again."""
        self._step_budget = count
        self._pause.clear()

    def stop(self) -> None:
        """Ask the run to end after the current step (a paused run ends at once)."""
        self._stop.set()
        self._pause.clear()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (True) or `timeout` passes (False)."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop and wait; afterwards nothing more is delivered. For window close."""
        self.alive = False
        self.stop()
        return self.wait(timeout)

    def current_step(self) -> int:
        session = self._session
        return session.step_count if session is not None else 0

    # -- the thread ---------------------------------------------------------------------------

    def _run(self, doc, params, base_dir, epochs) -> None:
        result, failed = None, False
        try:
            session = Session(doc, epochs=epochs, params=params, base_dir=base_dir)
            self._session = session
            info = SessionInfo(session.train_feeds, session.val_feeds, session.classes,
                               list(session.names), session.steps_per_epoch, session.plan.epochs,
                               session.plan)
            self._queue({"kind": "ready", "session": info}, flush=True)
            result = run_session(session, self._on_event, self._stop, self._pause)
        except TrainingError as exc:  # NaN or Inf: run_session has sent the error event
            result, failed = exc.result, True
        except GraphError as exc:     # the section, the data or the graph: before any step
            failed = True
            self._queue({"kind": "error", "message": str(exc), "node": exc.node, "setup": True})
        except Exception as exc:  # noqa: BLE001 (a bug must reach the user, not kill the thread)
            failed = True
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self._queue({"kind": "error", "message": f"training failed: {detail}", "node": None,
                         "setup": self._session is None})
        session = self._session
        if session is not None:
            self._queue({"kind": "params", "params": session.param_dict(copy=True),
                         "step": session.step_count})
        self._queue({"kind": "finished", "result": result, "failed": failed,
                     "stopped": bool(result is not None and result.stopped)}, flush=True)

    def _on_event(self, event: dict) -> None:
        """The trainer's callback, in the worker thread: keep it cheap."""
        kind = event["kind"]
        if kind == "step":
            self._pending.append(event)
            budget = self._step_budget
            if budget is not None:
                budget -= 1
                self._step_budget = budget
                if budget <= 0:
                    self._step_budget = None
                    self._pause.set()  # the trainer's next poll reports the pause
                    return
            now = time.perf_counter()
            if now - self._last_flush >= FLUSH_S:
                if now - self._last_snapshot >= SNAPSHOT_S:
                    self._snapshot()
                self._flush(now)
            return
        if kind in ("error", "end"):
            self._snapshot()
        self._queue(event, flush=kind != "epoch")

    def _on_pause(self) -> None:
        self._snapshot()
        self._queue({"kind": "paused", "step": self.current_step()}, flush=True)

    def _snapshot(self) -> None:
        session = self._session
        if session is not None:
            self._pending.append({"kind": "params", "params": session.param_dict(copy=True),
                                  "step": session.step_count})
            self._last_snapshot = time.perf_counter()

    def _queue(self, event: dict, flush: bool = False) -> None:
        self._pending.append(event)
        now = time.perf_counter()
        if flush or now - self._last_flush >= FLUSH_S:
            self._flush(now)

    def _flush(self, now: float) -> None:
        batch, self._pending = self._pending, []
        self._last_flush = now
        if batch:
            self._outbox.append(batch)
            try:
                self._relay.ready.emit()
            except RuntimeError:  # the window is gone; the run is being shut down
                pass

    # -- UI thread ----------------------------------------------------------------------------

    def drain(self) -> None:
        """Deliver every waiting batch, in order, as one `events` emission."""
        events = []
        while self._outbox:
            events.extend(self._outbox.popleft())
        if events and self.alive:
            self.events.emit(events)
