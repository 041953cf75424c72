"""What the live plots show: the document's runs, past and present. No Qt here.

A `Run` collects one run's events as they arrive (losses per step, figures per epoch) in
growable numpy buffers, so a plot can take the arrays as they are without copying lists. Each
run has a label that says what changed since the run before it ("lr 0.003", "batch 64"), so
overlaid curves can be told apart at a glance; a run forked from an epoch of another says what
changed since that one ("run 4 from run 2 @ epoch 5: hidden1.out_features 32 -> 64"), and its
curve starts where the parent's was at that epoch (`x_offset`).

Runs of earlier sessions come back from their records on disk (`History.add_past`, from
runs_store.py's records): they are `past`, drawn greyed, and can be forked from like any other.
"""

from __future__ import annotations

import math

import numpy as np


class Series:
    """A growable float array: `append`/`extend` are amortised O(1); `view()` is no copy."""

    def __init__(self, capacity: int = 1024):
        self._data = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        need = self.size + values.size
        if need > self._data.size:
            grown = np.empty(max(need, 2 * self._data.size), dtype=np.float64)
            grown[:self.size] = self._data[:self.size]
            self._data = grown
        self._data[self.size:need] = values
        self.size = need

    def append(self, value: float) -> None:
        self.extend((value,))

    def view(self) -> np.ndarray:
        return self._data[:self.size]

    def last(self, default=math.nan) -> float:
        return float(self._data[self.size - 1]) if self.size else default

    def __len__(self) -> int:
        return self.size


class Run:
    """One press of Train (or Step from idle): its settings, step losses and epoch figures."""

    def __init__(self, number: int, label: str, training: dict | None, continued: bool = False):
        self.number = number
        self.label = label
        self.training = training
        self.continued = continued
        self.id = ""                   # the run's folder name on disk (runs_store.py)
        self.document: dict | None = None  # the document it trained, as to_dict() gave it
        self.parent: tuple | None = None   # (Run, epoch) it was forked from
        self.change = ""               # what changed since the parent (run_diff.py)
        self.x_offset = 0              # where its step 0 is on the plots: its fork point
        self.past = False              # read back from disk, from an earlier session
        self.checkpoints: list = []    # epochs with a checkpoint, for a past run (live: policy)
        self.steps = Series()          # global step numbers within this run (1, 2, ...)
        self.losses = Series()         # the batch loss of each step
        self.smoothed = Series()       # a debiased exponential moving average of `losses`
        self.lrs = Series()            # the learning rate at each epoch end
        self.epoch_steps = Series()    # the step at which each epoch ended
        self.epoch_figures: dict = {}  # "loss", "val_loss", "accuracy", ... -> Series per epoch
        self.epochs_done = 0
        self.total_steps = 0
        self.steps_per_epoch = 1
        self.epochs_planned = 0
        self.steps_per_s = 0.0
        self.elapsed = 0.0
        self.state = "running"         # running / paused / finished / stopped / failed
        self.error = ""
        self.error_node = None
        self._ema = 0.0
        self._ema_weight = 0.0
        self.smoothing = 0.9
        self.version = 0               # bumped by every change, so views redraw only runs that moved

    # -- events -------------------------------------------------------------------------------

    def add_events(self, events: list) -> None:
        self.version += 1
        steps, losses = [], []
        for event in events:
            kind = event.get("kind")
            if kind == "step":
                steps.append(event["step"])
                losses.append(event["loss"])
                self.steps_per_s = event.get("steps_per_s", self.steps_per_s)
                self.elapsed = event.get("elapsed", self.elapsed)
            elif kind == "epoch":
                self._flush_steps(steps, losses)
                steps, losses = [], []
                self._add_epoch(event)
            elif kind == "start":
                self.total_steps = event.get("total_steps", 0)
                self.steps_per_epoch = max(1, event.get("steps_per_epoch", 1))
                self.epochs_planned = event.get("epochs", 0)
                # about one epoch of memory, between 0.6 and 0.98
                self.smoothing = min(0.98, max(0.6, 1.0 - 1.0 / self.steps_per_epoch))
        self._flush_steps(steps, losses)

    def _flush_steps(self, steps: list, losses: list) -> None:
        if not steps:
            return
        self.steps.extend(steps)
        self.losses.extend(losses)
        out = np.empty(len(losses))
        ema, weight, beta = self._ema, self._ema_weight, self.smoothing
        for i, loss in enumerate(losses):
            if math.isfinite(loss):
                ema = beta * ema + (1 - beta) * loss
                weight = beta * weight + (1 - beta)
            out[i] = ema / weight if weight else math.nan
        self._ema, self._ema_weight = ema, weight
        self.smoothed.extend(out)

    def _add_epoch(self, event: dict) -> None:
        self.epochs_done = event["epoch"]
        self.epoch_steps.append(event.get("step", self.steps.last(0)))
        self.lrs.append(event.get("lr", math.nan))
        for key, value in event.items():
            if key in ("kind", "epoch", "lr", "elapsed", "steps_per_s", "total_steps", "step"):
                continue
            if isinstance(value, (int, float)):
                series = self.epoch_figures.get(key)
                if series is None:
                    series = self.epoch_figures[key] = Series(64)
                    # a figure that appears late is padded so epochs stay aligned
                    series.extend([math.nan] * (len(self.epoch_steps) - 1))
                series.append(value)
        self.steps_per_s = event.get("steps_per_s", self.steps_per_s)
        self.elapsed = event.get("elapsed", self.elapsed)

    def restore(self, record: dict) -> None:
        """Fill a past run from its record on disk (runs_store.past_runs)."""
        self.total_steps = int(record.get("total_steps") or 0)
        self.steps_per_epoch = max(1, int(record.get("steps_per_epoch") or 1))
        self.epochs_planned = int(record.get("epochs_planned") or 0)
        self.smoothing = min(0.98, max(0.6, 1.0 - 1.0 / self.steps_per_epoch))
        self._flush_steps(list(record["steps"]), list(record["losses"]))
        for epoch in record.get("epochs") or []:
            if isinstance(epoch, dict) and isinstance(epoch.get("epoch"), int):
                self._add_epoch({k: (math.nan if v is None else v) for k, v in epoch.items()})
        self.state = record.get("state") if record.get("state") in (
            "finished", "stopped", "failed") else "stopped"  # "running": the editor went away
        self.checkpoints = [e for e in record.get("checkpoints") or [] if isinstance(e, int)]
        self.version += 1

    # -- questions the dock asks --------------------------------------------------------------

    def step_of_epoch(self, epoch: int) -> int:
        """The step at which `epoch` (from 1) ended, 0 for none."""
        steps = self.epoch_steps.view()
        return int(steps[epoch - 1]) if 0 < epoch <= len(steps) else 0

    def figure(self, key: str) -> np.ndarray:
        series = self.epoch_figures.get(key)
        return series.view() if series is not None else np.empty(0)

    def metric_names(self) -> list:
        """Training metrics (no `val_` prefix, not the loss), in the order they appeared."""
        return [k for k in self.epoch_figures if not k.startswith("val_") and k != "loss"]

    def last_step(self) -> int:
        return int(self.steps.last(0))

    def eta_seconds(self) -> float | None:
        left = self.total_steps - self.last_step()
        if self.steps_per_s <= 0 or left <= 0:
            return None
        return left / self.steps_per_s


class History:
    """The document's runs, oldest first: past ones read back, then this session's."""

    def __init__(self):
        self.runs: list = []

    def _next_number(self) -> int:
        return max((run.number for run in self.runs), default=0) + 1

    def new_run(self, training: dict | None, continued: bool = False,
                graph_changed: bool = False, fork: tuple | None = None,
                change: str = "") -> Run:
        """A run starting now; `fork`: the (Run, epoch) it starts from, `change` what differs."""
        previous = self.runs[-1] if self.runs else None
        number = self._next_number()
        if fork is not None:
            label = fork_label(number, fork[0].number, fork[1], change)
        else:
            label = run_label(number, previous.training if previous else None, training,
                              continued, graph_changed)
        run = Run(number, label, training, continued and fork is None)
        if fork is not None:
            parent, epoch = fork
            run.parent, run.change = fork, change
            run.x_offset = parent.x_offset + parent.step_of_epoch(epoch)
        self.runs.append(run)
        return run

    def add_past(self, record: dict) -> Run | None:
        """A run of an earlier session, from its record on disk (None if it does not fit)."""
        number = record.get("number")
        if not isinstance(number, int) or any(r.number == number for r in self.runs):
            number = self._next_number()
        run = Run(number, str(record.get("label") or f"run {number}"), record.get("training"))
        run.id, run.document, run.past = record["id"], record.get("document"), True
        run.change = str(record.get("change") or "")
        run.x_offset = int(record.get("x_offset") or 0)
        parent = record.get("parent") or {}
        found = next((r for r in self.runs if r.id == parent.get("run")), None)
        if found is not None:
            run.parent = (found, parent.get("epoch"))
        run.restore(record)
        self.runs.append(run)
        return run

    def find(self, run_id: str) -> Run | None:
        return next((run for run in self.runs if run.id == run_id), None)

    @property
    def current(self) -> Run | None:
        return self.runs[-1] if self.runs else None

    def clear(self) -> None:
        self.runs = []


# -- labels: what changed between two training sections ------------------------------------------

SHORT_NAMES = {
    "optimizer.lr": "lr", "optimizer.type": "optimizer", "optimizer.momentum": "momentum",
    "optimizer.weight_decay": "weight decay", "optimizer.betas": "betas",
    "optimizer.schedule.type": "schedule", "batch_size": "batch", "epochs": "epochs",
    "seed": "seed", "split.validation": "validation", "dataset.kind": "data",
    "dataset.n": "n", "dataset.noise": "noise", "clip_grad_norm": "clip",
}


def flatten(section, prefix: str = "") -> dict:
    """{"optimizer.lr": 0.01, ...}: a nested dict as dotted keys (lists stay values)."""
    out = {}
    if isinstance(section, dict):
        for key, value in section.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                out.update(flatten(value, name + "."))
            else:
                out[name] = value
    return out


def _short(key: str) -> str:
    return SHORT_NAMES.get(key, key.rsplit(".", 1)[-1].replace("_", " "))


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "none"
    return str(value)


def describe(training: dict | None) -> str:
    """The headline settings of a training section: "adam lr 0.01, batch 32"."""
    flat = flatten(training or {})
    parts = []
    if "optimizer.type" in flat or "optimizer.lr" in flat:
        parts.append(f"{flat.get('optimizer.type', 'adam')} lr {_value(flat.get('optimizer.lr', 0.001))}")
    parts.append(f"batch {flat.get('batch_size', 32)}")
    return ", ".join(parts)


def run_label(number: int, before: dict | None, after: dict | None, continued: bool = False,
              graph_changed: bool = False) -> str:
    """`run 2: lr 0.003` — what differs from the run before, or its headline settings."""
    if before is None:
        text = describe(after)
    else:
        old, new = flatten(before), flatten(after or {})
        changes = []
        for key in list(new) + [k for k in old if k not in new]:
            if key == "epochs":
                continue  # running longer is not a different experiment
            if old.get(key) != new.get(key):
                changes.append(f"{_short(key)} {_value(new.get(key))}")
        if graph_changed:
            changes.insert(0, "graph edited")
        text = ", ".join(changes[:3]) + (" …" if len(changes) > 3 else "") if changes \
            else "same settings"
    if continued:
        text += " (continued)"
    return f"run {number}: {text}"


def fork_label(number: int, parent: int, epoch: int, change: str) -> str:
    """`run 4 from run 2 @ epoch 5: hidden1.out_features 32 -> 64`."""
    return f"run {number} from run {parent} @ epoch {epoch}: {change or 'same graph and settings'}"
