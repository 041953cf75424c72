"""A run's record on disk, written by the training process: checkpoints, history, run.json.

Imports only the standard library, numpy and `core`, never Qt: the training process (child.py)
loads this file by path. Each run has a folder of its own (runs_store.py says where):

  run.json        what the run is (id, number, label, start time, the parent run and epoch it
                  was forked from and what changed since, the document it trained), its state,
                  its figures per epoch and which checkpoints it kept
  steps.npz       the loss of every step ("step", "loss"): too many numbers for JSON
  epoch-<k>.npz   the parameters (and buffers) at the end of epoch k (core.npz, atomic)

A checkpoint is written at the end of every epoch, but after the first RECENT at most one every
EVERY_S seconds (the spec's "every_s"): a later epoch that ends sooner after the last checkpoint
gets none, unless it is the run's last. Small models finish hundreds of epochs a second, and
writing each would cost them half their speed; an epoch that takes longer than EVERY_S always
gets its checkpoint.

Checkpoints are kept bounded, at most RECENT + OLDER: once there are more, those `kept_epochs`
does not name go (the last RECENT epochs, and at most OLDER earlier ones spaced by a power of
two that doubles as the run grows: every epoch, then every 2nd, 4th, ...). An epoch dropped
once is never named again, so thinning only ever deletes. The history is
written at most every HISTORY_S seconds at an epoch end, and always when the run ends, so a long
run does not spend its time rewriting it.

The files are written by a thread of the training process, not by the trainer: a safe write
waits for the disk (fsync), which would otherwise hold up the next epoch. The trainer hands it
a copy of the parameters; only when MAX_WAITING copies already wait (a disk seconds behind)
does the trainer wait for it, rather than lose a checkpoint or pile up copies. The run's end
waits for every write, so the record is complete when the editor hears that the run finished.

A failure to write (a full disk) never stops training: the recorder notes it once
(`take_notice`, which the training process sends on as an event of kind "notice") and writes
nothing more.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from array import array
from collections import deque
from pathlib import Path

import numpy as np
from wiregrad.core.errors import GraphError
from wiregrad.core.fileio import atomic_write
from wiregrad.core.npz import save_arrays

RECENT = 10      # the latest epochs, each kept
OLDER = 10       # earlier epochs kept at most, evenly spaced
HISTORY_S = 2.0  # rewrite run.json and steps.npz at most this often during a run
MAX_WAITING = 4  # parameter copies waiting for the disk, at most
EVERY_S = 0.1    # a checkpoint at most this often (the run's last epoch always has one)
RUN_FILE = "run.json"
STEPS_FILE = "steps.npz"
SKIPPED = ("kind", "elapsed", "steps_per_s", "total_steps")


def checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch}.npz"


def kept_epochs(last: int) -> list:
    """The epochs whose checkpoints a run keeps after `last` epochs: at most RECENT + OLDER."""
    if last <= 0:
        return []
    recent_from = max(1, last - RECENT + 1)
    stride = 1
    while (recent_from - 1) // stride > OLDER:
        stride *= 2
    older = range(stride, recent_from, stride)
    return [*older, *range(recent_from, last + 1)]


class RunRecorder:
    """One run's folder, filled as the run goes. `spec` comes from the editor (run_model.py):
    {"folder": path, "record": {id, number, label, started, parent, change, document, ...}}.
    The trainer's side (`start`, `step`, `epoch`, `finish`) only collects and queues; a thread
    of its own writes (`_serve`)."""

    def __init__(self, spec: dict):
        self.folder = Path(spec["folder"])
        self.record = dict(spec["record"])
        self.every_s = float(spec.get("every_s", EVERY_S))
        self.last_checkpoint = -float("inf")
        self.queued = 0                 # checkpoints handed to the writer
        self._notice = ""
        self.steps = array("q")         # compact: a long run takes millions of steps
        self.losses = array("d")
        self.epochs: list = []
        self.kept: list = []            # the writer's: epochs whose checkpoint is on disk
        self.state = "running"
        self.broken = False
        self.last_write = 0.0
        self._waiting: deque = deque()  # ("epoch", k, params) / ("history",) / ("end",)
        self._wake = threading.Condition()
        self._writer = threading.Thread(target=self._serve, name="wiregrad-checkpoints",
                                        daemon=True)
        self._writer.start()
        self._queue(("history",))

    # -- from the trainer's events (the training thread) --------------------------------------

    def start(self, event: dict) -> None:
        self.record.update(total_steps=event.get("total_steps", 0),
                           steps_per_epoch=event.get("steps_per_epoch", 1),
                           epochs_planned=event.get("epochs", 0))

    def step(self, step: int, loss: float) -> None:
        self.steps.append(step)
        self.losses.append(loss)

    def epoch(self, event: dict, params: dict) -> None:
        """An epoch ended: a copy of its parameters goes to the writer (if it is time)."""
        self.epochs.append({k: _plain(v) for k, v in event.items() if k not in SKIPPED})
        now = time.monotonic()
        last = int(event["epoch"]) >= self.record.get("epochs_planned", 0) > 0
        due = self.queued < RECENT or now - self.last_checkpoint >= self.every_s or last
        if self.broken or not due:
            return
        self.last_checkpoint = now
        self.queued += 1
        copied = {name: np.array(value, copy=True) for name, value in params.items()}
        self._queue(("epoch", int(event["epoch"]), copied))

    def finish(self, state: str) -> None:
        """The run ended ("finished", "stopped" or "failed"): write the rest, and wait for it."""
        self.state = state
        self._queue(("end",))
        self._writer.join()

    def take_notice(self) -> str:
        """Why the files could not be written, once ("" when they could)."""
        notice, self._notice = self._notice, ""
        return notice

    def _queue(self, job: tuple) -> None:
        with self._wake:
            while job[0] == "epoch" and len(self._waiting) >= MAX_WAITING \
                    and self._writer.is_alive():
                self._wake.wait(0.5)  # the disk is far behind: wait for it
            self._waiting.append(job)
            self._wake.notify_all()

    # -- the writer thread --------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._waiting:
                    self._wake.wait()
                job = self._waiting.popleft()
                self._wake.notify_all()  # a trainer waiting for room
            try:
                if job[0] == "epoch":
                    self._write_checkpoint(job[1], job[2])
                elif job[0] == "end" and not self.steps:
                    shutil.rmtree(self.folder, ignore_errors=True)  # a run that took no step
                else:
                    self._write_history()
            except Exception as exc:  # noqa: BLE001 (a bug here must not stop the training)
                self.broken = True
                self._notice = f"The run's checkpoints stopped being written ({exc})."
            if job[0] == "end":
                return

    def _write_checkpoint(self, epoch: int, params: dict) -> None:
        self._write(lambda: save_arrays(self.folder / checkpoint_name(epoch), params))
        if self.broken:
            return
        self.kept.append(epoch)
        if len(self.kept) > RECENT + OLDER:
            wanted = kept_epochs(epoch)
            for old in self.kept:
                if old not in wanted:
                    (self.folder / checkpoint_name(old)).unlink(missing_ok=True)
            self.kept = [e for e in self.kept if e in wanted]
        if time.monotonic() - self.last_write >= HISTORY_S:
            self._write_history()

    def _write_history(self) -> None:
        self.last_write = time.monotonic()
        count = min(len(self.steps), len(self.losses))  # the trainer may be adding one
        record = {**self.record, "state": self.state, "epochs": self.epochs[:],
                  "checkpoints": self.kept}
        text = json.dumps(record, indent=1, allow_nan=True)
        steps = {"step": np.asarray(self.steps[:count], dtype=np.int64),
                 "loss": np.asarray(self.losses[:count], dtype=np.float64)}
        self._write(lambda: save_arrays(self.folder / STEPS_FILE, steps))
        self._write(lambda: atomic_write(self.folder / RUN_FILE, text.encode("utf-8")))

    def _write(self, write) -> None:
        if self.broken:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write()
        except (OSError, GraphError) as exc:  # SaveError is an OSError
            self.broken = True  # the writer thread: the trainer's thread sends the notice
            self._notice = (f"The run's checkpoints could not be written ({exc}); "
                            "training goes on without them.")


def _plain(value):
    """A JSON-able figure: numpy numbers as Python ones."""
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
