"""Training in a process of its own, its events delivered to the UI thread in batches.

`TrainingWorker` runs `core.trainer.run_session` in a child process (`child.py`, started with
the "spawn" method, importing only core and numpy), so the trainer has its own interpreter and
GIL: every wakeup of the UI thread (timers, event deliveries, drawing) would otherwise take the
GIL from a trainer thread, which cost 10-20% of its speed. One child is started at the first run
(or by `warm_up()`) and serves the runs after it, so only the first Train pays the child's
imports (~0.5 s); `shutdown()` ends it (window close), and a finalizer ends it if the worker
is dropped without one.

The child gets a copy of the document as a dict, the starting parameters and the overrides; it
batches the trainer's events and sends them through a pipe about every 50 ms (at once for
start, pause, error and end), with a copy of the parameters at most every 100 ms. A socket
notifier reads the pipe in the UI thread and `events` delivers each batch. So a fast run costs
the UI ~20 deliveries a second, however many steps it takes.

Controls, all from the UI thread, through a small shared-memory array the trainer reads before
every step: `pause()`/`resume()`, `step()` (one batch, then pause again), `stop()` (ends after
the current step, or inside a long one at its next loop step).

Events the UI receives, besides the trainer's own (start, step, epoch, error, end):
  {"kind": "ready", "session": <SessionInfo>}  the data is loaded and the program compiled
  {"kind": "params", "params": {...}, "step"}  a snapshot of the parameters
  {"kind": "paused"}                          the run is waiting (after Pause or a Step)
  {"kind": "notice", "message"}               the run's checkpoints could not be written
  {"kind": "finished", "result": TrainResult | None, "stopped": bool, "failed": bool}
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import sys
import threading
import time
import types
import weakref
from collections import deque
from dataclasses import dataclass
from multiprocessing.sharedctypes import RawArray

from PySide6.QtCore import QObject, QSocketNotifier, Signal

from . import child as proc

CLOSE_S = 2.0   # how long a child may take to quit before it is terminated


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


class _Child:
    """One training process (or, in tests, a thread running the same loop), its pipe and its
    control array. Holds no Qt object, so a finalizer may close it at any time."""

    def __init__(self, in_process: bool):
        ctx = multiprocessing.get_context("spawn")
        self.control = RawArray("q", proc.SLOTS)
        self.conn, child_conn = ctx.Pipe(duplex=True)
        if in_process:
            self.runner = threading.Thread(target=proc.serve, args=(child_conn, self.control),
                                           name="wiregrad-training", daemon=True)
            self.runner.start()
            self._child_conn = child_conn   # the thread's end: closed with ours
            return
        self.runner = ctx.Process(
            target=runpy.run_path, args=(proc.__file__,), daemon=True, name="wiregrad-training",
            kwargs={"run_name": proc.RUN_NAME,
                    "init_globals": {"CONN": child_conn, "CONTROL": self.control}})
        with _bare_main(), _leave_a_core_for_the_editor():
            self.runner.start()
        child_conn.close()  # the child has its own copy; ours would hide its end from us
        self._child_conn = None

    def is_alive(self) -> bool:
        return self.runner.is_alive()

    def close(self, timeout: float = CLOSE_S) -> None:
        """Ask the child to quit, then end it if it does not; never leaves a zombie."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.runner.join(timeout)
        if isinstance(self.runner, multiprocessing.process.BaseProcess):
            if self.runner.is_alive():
                self.runner.terminate()
                self.runner.join(1.0)
            if self.runner.is_alive():
                self.runner.kill()
                self.runner.join()
            self.runner.close()
        self.conn.close()
        if self._child_conn is not None:
            self._child_conn.close()


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class _leave_a_core_for_the_editor:
    """While the child starts, its BLAS may use one thread fewer than the machine's cores.
    A multithreaded matrix product waits for its slowest thread, and the editor's own work
    (plots, decision regions) keeps one core busy while training: on 2 cores, the default of
    two BLAS threads cost the child 10-20% of its speed (`python -m bench.live`). A value the
    user set is kept; the environment is the child's only way in, since the BLAS reads it when
    numpy loads."""

    def __enter__(self):
        self.saved = {name: os.environ.get(name) for name in BLAS_THREADS}
        if any(value is not None for value in self.saved.values()):
            return
        threads = str(max(1, _usable_cores() - 1))
        for name in BLAS_THREADS:
            os.environ[name] = threads

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _bare_main:
    """While a spawned process starts, a blank `__main__`: else the child would import the
    program's main module again (`python -m bench.live` would bring Qt into it)."""

    def __enter__(self):
        self.main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")

    def __exit__(self, *exc):
        sys.modules["__main__"] = self.main


class TrainingWorker(QObject):
    """One run at a time. `events` carries lists of event dicts in the UI thread."""

    events = Signal(object)  # a list of event dicts; `object` passes it without conversion

    def __init__(self, parent=None):
        super().__init__(parent)
        self.in_process = False   # True: train in a thread of this process (tests that patch it)
        self._child: _Child | None = None
        self._notifier: QSocketNotifier | None = None
        self._finalizer = None
        self._running = False
        self._outbox: deque = deque()   # batches read from the pipe, not yet delivered
        self._reading = False
        self.alive = True

    # -- the child ----------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Start the child now, so that the next Train does not wait for its imports."""
        if self._child is None or not self._child.is_alive():
            self._close_child()
            child = _Child(self.in_process)
            self._child = child
            self._notifier = QSocketNotifier(child.conn.fileno(), QSocketNotifier.Read, self)
            self._notifier.activated.connect(self.drain)
            self._finalizer = weakref.finalize(self, child.close, 0.5)

    def _close_child(self, timeout: float = CLOSE_S) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._child is not None:
            self._child.close(timeout)
            self._child = None
        self._running = False

    # -- control (UI thread) ------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._running

    def is_paused(self) -> bool:
        return self._running and self._child.control[proc.PAUSE] != 0

    def start(self, doc, params=None, base_dir=None, paused: bool = False,
              steps: int | None = None, epochs: int | None = None,
              checkpoints: dict | None = None) -> None:
        """Train `doc` (sent to the child as a copy) from `params` (None: fresh).
        `steps`: pause after that many steps; `paused`: wait before the first; `checkpoints`:
        where and as what the child keeps the run's record (checkpoints.py)."""
        if self.is_running():
            raise RuntimeError("a run is going already")
        if self._child is not None and self.in_process != isinstance(self._child.runner,
                                                                     threading.Thread):
            self._close_child()
        self.warm_up()
        control = self._child.control
        control[proc.STOP] = 0
        control[proc.PAUSE] = 1 if paused else 0
        control[proc.BUDGET] = steps if steps is not None else proc.NO_BUDGET
        control[proc.STEP] = 0
        self._outbox.clear()
        request = {"doc": doc.to_dict(), "folder": doc.folder, "params": params,
                   "base_dir": base_dir, "epochs": epochs, "checkpoints": checkpoints}
        try:
            self._child.conn.send(request)
        except OSError:  # the child died since the last run: start another
            self._close_child()
            self.start(doc, params, base_dir, paused, steps, epochs, checkpoints)
            return
        self._running = True

    def pause(self) -> None:
        if self._child is not None:
            self._child.control[proc.BUDGET] = proc.NO_BUDGET
            self._child.control[proc.PAUSE] = 1

    def resume(self) -> None:
        if self._child is not None:
            self._child.control[proc.BUDGET] = proc.NO_BUDGET
            self._child.control[proc.PAUSE] = 0

    def step(self, count: int = 1) -> None:
        """Let a paused run take `count` more steps, then pause again."""
        if self._child is not None:
            self._child.control[proc.BUDGET] = count
            self._child.control[proc.PAUSE] = 0

    def stop(self) -> None:
        """Ask the run to end after the current step, or sooner at a loop step inside it (a
        paused run ends at once)."""
        if self._child is not None:
            self._child.control[proc.STOP] = 1
            self._child.control[proc.PAUSE] = 0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (True) or `timeout` passes (False). The events read
        meanwhile are delivered by the next `drain()`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._running:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._child.conn.poll(left):
                return False
            self._read()
        return True

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop the run, wait for it and end the child; afterwards nothing more is delivered.
        For window close (and a new document). False: the run did not end in `timeout` and
        the child was terminated."""
        self.alive = False
        self.stop()
        ended = self.wait(timeout)
        self._outbox.clear()
        self._close_child()
        return ended

    def current_step(self) -> int:
        child = self._child
        return int(child.control[proc.STEP]) if child is not None else 0

    # -- UI thread ----------------------------------------------------------------------------

    def _read(self) -> None:
        """Move every batch waiting in the pipe to the outbox; note the end of a run."""
        conn = self._child.conn if self._child is not None else None
        while conn is not None:
            try:
                if not conn.poll():
                    return
                batch = conn.recv()
            except (EOFError, OSError):
                self._lost_child()
                return
            for event in batch:
                if event["kind"] == "ready":  # plain data from the child
                    event["session"] = SessionInfo(**event["session"])
            self._outbox.append(batch)
            if batch and batch[-1]["kind"] == "finished":
                self._running = False

    def _lost_child(self) -> None:
        """The child ended without being asked (killed, out of memory): end its run, if any,
        with an error the user can read."""
        if self._notifier is not None:
            self._notifier.setEnabled(False)
        if self._running:
            self._outbox.append([
                {"kind": "error", "node": None, "setup": False,
                 "message": "the training process ended unexpectedly"},
                {"kind": "finished", "result": None, "failed": True, "stopped": False}])
        self._close_child(0.5)

    def drain(self) -> None:
        """Deliver every waiting batch, in order, as one `events` emission."""
        if self._reading:  # a handler of `events` called us again: the outer call delivers
            return
        self._reading = True
        try:
            self._read()
            events = []
            while self._outbox:
                events.extend(self._outbox.popleft())
        finally:
            self._reading = False
        if events and self.alive:
            self.events.emit(events)
