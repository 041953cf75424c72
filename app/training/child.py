"""The training process: runs `core.trainer.run_session` with an interpreter (and a GIL) of its own.

`TrainingWorker` starts this file in a process of the "spawn" kind and keeps it for successive
runs. It imports only the standard library, numpy and `core`, never Qt: the worker runs the
file by path (`runpy.run_path`, with `run_name` `RUN_NAME` and the pipe and control array as
`CONN` and `CONTROL`), so `app/__init__.py`, which loads Qt, is never imported here. In tests it
can also run in a thread of the editor's process (`serve` called directly).

The protocol, all plain picklable data:
  editor -> process   {"doc": doc.to_dict(), "folder", "params": {name: array} | None,
                       "base_dir", "epochs", "checkpoints": {"folder", "record"} | None}: one
                      run (with "checkpoints", it keeps its record on disk: checkpoints.py);
                      None: quit.
  process -> editor   lists of events, in order (the trainer's start, step, epoch, error and
                      end, plus the worker's ready, params, paused and finished; see worker.py).
                      "ready" carries a dict of SessionInfo's fields.
The control array (shared memory; the editor writes, the trainer reads before every step):
  STOP   1: end after the current step, or inside it at its next loop step (the trainer hands
         it to the program's loops: Program.stopping);  PAUSE  1: wait before the next step;
  BUDGET steps left before pausing again (Step), or NO_BUDGET;  STEP  the steps taken so far
  (written here, read by the editor's `current_step()`).
Events go out about every 50 ms (at once for start, pause, error and end), with a copy of the
parameters at most every 100 ms, so a fast run costs the editor ~20 deliveries a second.
"""

from __future__ import annotations

import importlib.util
import time
import traceback
from pathlib import Path

from wiregrad.core.allocator import keep_freed_memory
from wiregrad.core.errors import GraphError
from wiregrad.core.fileio import from_dict
from wiregrad.core.trainer import Session, TrainingError, run_session

RUN_NAME = "__wiregrad_training__"
STOP, PAUSE, BUDGET, STEP = range(4)   # slots of the control array
SLOTS = 4
NO_BUDGET = -1
FLUSH_S = 0.05      # send events at most ~20 times a second
SNAPSHOT_S = 0.1    # copy the parameters at most ~10 times a second


def _checkpoints_module():
    """checkpoints.py, beside this file. Imported relatively when this module is part of the
    app package (tests that train in a thread); loaded by path in the training process, where
    importing the package would load Qt."""
    if __package__:
        from . import checkpoints
        return checkpoints
    spec = importlib.util.spec_from_file_location(
        "wiregrad_checkpoints", Path(__file__).with_name("checkpoints.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cp = _checkpoints_module()


def serve(conn, control) -> None:
    """Run what the editor asks for, one run at a time, until it says quit or goes away."""
    keep_freed_memory()  # process-wide: this process only trains (core/allocator.py)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        try:
            _Run(conn, control).run(**request)
        except (EOFError, OSError):  # the editor closed the pipe: nobody to train for
            return


class _Flag:
    """A slot of the control array that run_session polls as an Event (`is_set()`)."""

    def __init__(self, control, slot: int):
        self.control = control
        self.slot = slot

    def is_set(self) -> bool:
        return self.control[self.slot] != 0


class _PauseFlag(_Flag):
    """The first poll that finds the run paused reports it (flushing the events queued), so
    the editor shows exactly where the run stopped."""

    def __init__(self, control, on_wait):
        super().__init__(control, PAUSE)
        self._on_wait = on_wait
        self._reported = False

    def is_set(self) -> bool:
        paused = self.control[PAUSE] != 0
        if paused and not self._reported:
            self._on_wait()
        self._reported = paused
        return paused


class _Run:
    def __init__(self, conn, control):
        self.conn = conn
        self.control = control
        self.session: Session | None = None
        self.pending: list = []
        self.last_flush = 0.0
        self.last_snapshot = 0.0
        self.recorder = None

    def run(self, doc: dict, folder, params, base_dir, epochs, checkpoints=None) -> None:
        result, failed = None, False
        if checkpoints is not None:
            self.recorder = cp.RunRecorder(checkpoints)
        try:
            document = from_dict(doc)
            document.folder = folder
            session = Session(document, epochs=epochs, params=params, base_dir=base_dir)
            self.session = session
            self.control[STEP] = session.step_count
            info = {"train_feeds": session.train_feeds, "val_feeds": session.val_feeds,
                    "classes": session.classes, "param_names": list(session.names),
                    "steps_per_epoch": session.steps_per_epoch, "epochs": session.plan.epochs,
                    "plan": session.plan}
            self.queue({"kind": "ready", "session": info}, flush=True)
            result = run_session(session, self.on_event, _Flag(self.control, STOP),
                                 _PauseFlag(self.control, self.on_pause))
        except TrainingError as exc:  # NaN or Inf: run_session has sent the error event
            result, failed = exc.result, True
        except GraphError as exc:     # the section, the data or the graph: before any step
            failed = True
            self.queue({"kind": "error", "message": str(exc), "node": exc.node, "setup": True})
        except (EOFError, OSError):
            raise                     # the editor is gone
        except Exception as exc:  # noqa: BLE001 (a bug must reach the user, not end the process)
            failed = True
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.queue({"kind": "error", "message": f"training failed: {detail}", "node": None,
                        "setup": self.session is None})
        if self.session is not None:
            self.snapshot()
        if self.recorder is not None:
            stopped = result is not None and result.stopped
            self.recorder.finish("failed" if failed else "stopped" if stopped else "finished")
            self.notice(self.recorder.take_notice())
        self.queue({"kind": "finished", "result": result, "failed": failed,
                    "stopped": bool(result is not None and result.stopped)}, flush=True)

    def on_event(self, event: dict) -> None:
        """The trainer's callback: keep it cheap."""
        kind = event["kind"]
        recorder = self.recorder
        if kind == "step":
            if recorder is not None:
                recorder.step(event["step"], event["loss"])
            self.pending.append(event)
            control = self.control
            control[STEP] = event["step"]
            budget = control[BUDGET]
            if budget > 0:
                budget -= 1
                control[BUDGET] = budget if budget > 0 else NO_BUDGET
                if budget == 0:
                    control[PAUSE] = 1  # the trainer's next poll reports the pause
                    return
            now = time.perf_counter()
            if now - self.last_flush >= FLUSH_S:
                if now - self.last_snapshot >= SNAPSHOT_S:
                    self.snapshot()
                self.flush(now)
            return
        if kind in ("error", "end"):
            self.snapshot()
        if recorder is not None and kind == "start":
            recorder.start(event)
        elif recorder is not None and kind == "epoch":
            recorder.epoch(event, self.session.param_dict())
            self.notice(recorder.take_notice())
        self.queue(event, flush=kind != "epoch")

    def notice(self, message: str) -> None:
        """Pass on what the recorder could not write (nothing for "")."""
        if message:
            self.queue({"kind": "notice", "message": message}, flush=True)

    def on_pause(self) -> None:
        self.snapshot()
        self.queue({"kind": "paused", "step": self.control[STEP]}, flush=True)

    def snapshot(self) -> None:
        session = self.session
        if session is not None:
            self.pending.append({"kind": "params", "params": session.param_dict(copy=True),
                                 "step": session.step_count})
            self.last_snapshot = time.perf_counter()

    def queue(self, event: dict, flush: bool = False) -> None:
        self.pending.append(event)
        now = time.perf_counter()
        if flush or now - self.last_flush >= FLUSH_S:
            self.flush(now)

    def flush(self, now: float) -> None:
        batch, self.pending = self.pending, []
        self.last_flush = now
        if batch:
            self.conn.send(batch)


if __name__ == RUN_NAME:  # started by TrainingWorker through runpy.run_path
    serve(CONN, CONTROL)  # noqa: F821 (given as init_globals)
