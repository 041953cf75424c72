"""Training a document by its `training` section (format.md), headless.

`train(doc, ...)` reads the section, loads and splits the dataset, compiles the graph, and runs
mini-batch gradient descent, telling a callback about every step and every epoch. It is what
`wiregrad train` and the editor's Train button both run.

Determinism: the same document and seed give the same numbers on the same machine. The seed
draws the initial parameters, the shuffling (its own stream) and dropout (another stream).

A stop request (`stop`, an Event) is asked before every step and between two steps of every
loop inside one, so a single long step ends too; the step it interrupts is discarded.

A non-finite loss or gradient stops training at that step with a `TrainingError` naming the
first node whose output (or parameter whose gradient) went NaN or Inf; the parameters from
before that step are kept in `error.result`, as are the best ones seen.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import training_section
from .codegen.stops import StopRequested
from .datasets import Dataset, batches, load_dataset, split
from .errors import GraphError
from .metrics import METRICS
from .optim import clip_grad_norm, make_optimizer
from .training_section import Plan

EVAL_CHUNK = 1024  # rows per forward pass when evaluating, where the grouping cannot matter


class TrainingError(GraphError):
    """Training stopped on a problem; `result` holds what was learned until then."""

    def __init__(self, message, node=None, result=None):
        super().__init__(message, node)
        self.result = result


@dataclass
class TrainResult:
    """What training produced. Unpacks as `history, params = core.train(doc)`."""

    history: list = field(default_factory=list)  # one dict per epoch
    params: dict = field(default_factory=dict)  # the last parameters
    # The parameters at the end of the epoch with the lowest validation loss; without a
    # validation set (or before any epoch ended), the last parameters.
    best_params: dict = field(default_factory=dict)
    best_epoch: int = 0  # the epoch best_params are from (0: none ended)
    steps: int = 0
    seconds: float = 0.0
    stopped: bool = False  # by the stop event, before the planned epochs
    step_losses: list = field(default_factory=list)
    classes: dict = field(default_factory=dict)  # class names of text columns, per array

    def __iter__(self):
        return iter((self.history, self.params))

    def final(self) -> dict:
        """The last epoch's figures: loss, val_loss and every metric with its val_ form."""
        return dict(self.history[-1]) if self.history else {}


def read_plan(doc, epochs=None, seed=None) -> Plan:
    """Check a document's training section and fill in its defaults (core/training_section.py,
    the section's one schema); a GraphError names every key that is wrong or missing."""
    return training_section.read(doc, epochs, seed)


class Session:
    """One training run's data, program and optimizer, ready to step. The editor drives one
    step at a time through this; `train()` runs it to the end."""

    def __init__(self, doc, epochs=None, seed=None, params=None, base_dir=None):
        from .compiler import compile_for_training

        self.plan = plan = read_plan(doc, epochs, seed)
        # Only what the loss and metrics need must compile; problems elsewhere are warnings
        # (program.warnings), and self.doc is the document without those nodes.
        self.program = compile_for_training(doc, plan.dtype)
        self.doc = self.program.doc
        self.inputs = [n.id for n in doc.graph.nodes if n.type == "Input"]
        if plan.loss not in self.program.output_shapes:
            raise GraphError(f"training.loss: {plan.loss!r} is not an Output of the graph "
                             f"(outputs: {', '.join(self.program.output_shapes)})")
        if base_dir is None:
            base_dir = doc.folder or "."
        dataset = load_dataset(plan.dataset, base_dir)
        self.classes = dict(getattr(dataset, "classes", {}) or {})
        self.train_set, self.val_set = split(dataset, plan.validation, plan.split_seed)
        self.train_feeds = self._feeds(self.train_set)
        for name in self.program.loss_schedule(plan.loss).arg_names:
            if name not in self.train_feeds:
                raise GraphError(f"Input {name!r} has no data: the dataset has no array {name!r}; "
                                 f"map it in training.feeds (arrays: "
                                 f"{self.train_set.listed_names()})", name)
        self.val_feeds = self._feeds(self.val_set) if len(self.val_set) else None
        start = self.program.init_params(plan.seed) if params is None else params
        start = self.program.param_list(start) if isinstance(start, dict) else list(start)
        trainable = len(self.program.trainable_names)
        self.optimizer = make_optimizer(plan.optimizer, start[:trainable])
        self.names = self.program.param_names
        # views into the optimizer's flat buffer, then the buffers (our own copies, which the
        # training steps update in place)
        self.params = list(self.optimizer.params) + [np.array(b) for b in start[trainable:]]
        self.grads = list(self.optimizer.grads)
        self.shuffle_rng = np.random.default_rng([plan.seed, 1])
        self.dropout_rng = np.random.default_rng([plan.seed, 2])
        self.step_count = 0
        self.epoch = 0
        self.steps_per_epoch = max(1, math.ceil(len(self.train_set) / plan.batch_size))

    # -- data ---------------------------------------------------------------------------------

    def _feeds(self, data: Dataset) -> dict:
        """The top-level Inputs' arrays from a dataset, checked and cast once, up front."""
        out = {}
        for input_id in self.program.input_shapes:
            array_name = self.plan.feeds.get(input_id, input_id)
            if array_name not in data:
                if input_id in self.plan.feeds:
                    raise GraphError(f"training.feeds: Input {input_id!r} takes dataset array "
                                     f"{array_name!r}, which the dataset does not have (arrays: "
                                     f"{data.listed_names()})", input_id)
                continue  # an Input the loss may not need; schedules say if it is missing
            array = data[array_name]
            if self.program.input_dtypes[input_id] == "int64" and array.dtype.kind == "f" \
                    and np.array_equal(array, np.round(array)):
                array = array.astype(np.int64)  # class ids read from a CSV of numbers
            expected = self.program.input_shapes[input_id][1:]
            rows = array.shape[1:]
            if len(rows) != len(expected) or any(d is not None and d != r
                                                 for d, r in zip(expected, rows)):
                wanted = "(" + ", ".join("?" if d is None else str(d) for d in expected) + \
                    ("," if len(expected) == 1 else "") + ")"
                raise GraphError(f"dataset array {array_name!r} has rows of shape {rows}, but "
                                 f"Input {input_id!r} takes {wanted} per example", input_id)
            try:
                out[input_id] = self.program._check_feed(input_id, array)
            except GraphError as exc:
                raise GraphError(f"dataset array {array_name!r} does not fit Input {input_id!r}: "
                                 f"{exc.message}", input_id) from None
        for fid in self.plan.feeds:
            if fid not in self.inputs:  # an Input training leaves out may keep its feed
                raise GraphError(f"training.feeds: {fid!r} is not an Input of the graph")
        return out

    def epoch_batches(self):
        return batches(self.train_feeds, self.plan.batch_size, self.shuffle_rng)

    # -- one step -----------------------------------------------------------------------------

    def step(self, feeds: dict) -> float:
        """One gradient step on a batch; returns the batch's loss before the update."""
        loss, _ = self.program.loss_and_grads(self.params, feeds, self.plan.loss, True,
                                              self.dropout_rng, self.grads, checked=True)
        flat = self.optimizer.flat_grads
        # One reduction tells whether anything is non-finite (a huge but finite sum may say so
        # wrongly, hence the exact check before stopping).
        suspect = not math.isfinite(loss) or not math.isfinite(float(np.add.reduce(flat)))
        if suspect and not (math.isfinite(loss) and np.isfinite(flat).all()):
            raise self._nonfinite(loss, feeds)
        if self.plan.clip is not None:
            self.optimizer.clip_grad_norm(self.plan.clip)
        self.optimizer.step()
        self.step_count += 1
        return loss

    def _nonfinite(self, loss: float, feeds: dict) -> TrainingError:
        params = self.param_dict()
        if not math.isfinite(loss):
            node = self.program.first_nonfinite(params, feeds, (self.plan.loss,), train=False)
            what = "output"
        else:
            bad = next(n for n, g in zip(self.names, self.grads) if not np.isfinite(g).all())
            node, what = bad.split(".", 1)[0], f"gradient (of {bad})"
        where = f"{node}: " if node else ""
        return TrainingError(f"{where}the {what} became NaN or Inf at step {self.step_count + 1} "
                             f"(epoch {self.epoch + 1}); training stopped with the last good "
                             "parameters. A lower learning rate often helps.", node)

    def param_dict(self, copy: bool = False) -> dict:
        return {n: (p.copy() if copy else p) for n, p in zip(self.names, self.params)}

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, feeds: dict | None) -> dict:
        """Loss and metrics over a whole set, in chunks; empty for an empty set."""
        if not feeds:
            return {}
        wanted = [self.plan.loss] + [m["pred"] for m in self.plan.metrics]
        wanted = tuple(dict.fromkeys(wanted))
        n = len(next(iter(feeds.values())))
        params = self.param_dict()
        total, preds = 0.0, {name: [] for name in wanted[1:]}
        rows = eval_rows(self.plan, self.program)
        for start in range(0, n, rows):
            chunk = {k: v[start:start + rows] for k, v in feeds.items()}
            outs = self.program.run(params, chunk, train=False, outputs=wanted)
            total += float(outs[self.plan.loss]) * len(next(iter(chunk.values())))
            for name, parts in preds.items():
                parts.append(outs[name])
        result = {"loss": total / n}
        for m in self.plan.metrics:
            pred = np.concatenate(preds[m["pred"]]) if m["pred"] in preds else None
            target = feeds.get(m["target"])
            if pred is None or target is None:
                raise GraphError(f"training.metrics: {m['type']} needs Output {m['pred']!r} and "
                                 f"Input {m['target']!r}")
            result[m.get("name", m["type"])] = float(METRICS[m["type"]](pred, target))
        return result


def eval_rows(plan: Plan, program) -> int:
    """Rows per forward pass when evaluating: eval_batch_size if the training section gives it;
    else batch_size when a sample's result depends on its batch (program.batch_level names
    the nodes), so that validation sees each sample as training does; else EVAL_CHUNK."""
    if plan.eval_batch_size is not None:
        return plan.eval_batch_size
    return plan.batch_size if program.batch_level else EVAL_CHUNK


def train(doc, epochs=None, seed=None, callback=None, stop=None, params=None,
          base_dir=None) -> TrainResult:
    """Train by the document's training section; see the module docstring."""
    session = Session(doc, epochs, seed, params, base_dir)
    return run_session(session, callback, stop)


def run_session(session: Session, callback=None, stop=None, pause=None) -> TrainResult:
    """Train a session to its last epoch, or until `stop.is_set()`. The stop request is asked
    before every step and, through the program's loops, between two loop steps
    (Program.stopping): a step it interrupts is discarded, its update never applied."""
    plan = session.plan
    result = TrainResult(classes=session.classes)
    emit = callback or (lambda event: None)
    emit({"kind": "start", "epochs": plan.epochs, "steps_per_epoch": session.steps_per_epoch,
          "total_steps": plan.epochs * session.steps_per_epoch, "params": len(session.names)})
    started = time.perf_counter()
    try:
        with session.program.stopping(stop):
            _epochs(session, result, emit, stop, pause, started)
    except StopRequested:
        result.stopped = True
    except TrainingError as exc:
        # The failing step's update was never applied: these are the last good parameters.
        _finish(session, result, started)
        exc.result = result
        emit({"kind": "error", "message": str(exc), "node": exc.node})
        raise
    session.epoch = len(result.history)
    _finish(session, result, started)
    emit({"kind": "end", "stopped": result.stopped, "steps": result.steps,
          "seconds": result.seconds})
    return result


def _finish(session: Session, result: TrainResult, started: float) -> None:
    """The last parameters, and as the best ones the last too where no epoch ended with a
    validation loss (no validation set, or stopped before an epoch ended)."""
    result.params = session.param_dict(copy=True)
    result.steps = session.step_count
    result.seconds = time.perf_counter() - started
    if not result.best_epoch:
        result.best_params, result.best_epoch = result.params, len(result.history)


def _epochs(session: Session, result: TrainResult, emit, stop, pause, started: float) -> None:
    """The epochs of run_session: steps, then each epoch's record and the best parameters."""
    plan = session.plan
    total_steps = plan.epochs * session.steps_per_epoch
    best = math.inf
    for epoch in range(session.epoch, plan.epochs):
        session.epoch = epoch
        epoch_losses = []
        for feeds in session.epoch_batches():
            if pause is not None:
                while pause.is_set() and not (stop is not None and stop.is_set()):
                    time.sleep(0.02)
            if stop is not None and stop.is_set():
                result.stopped = True
                break
            loss = session.step(feeds)
            epoch_losses.append(loss)
            result.step_losses.append(loss)
            elapsed = time.perf_counter() - started
            emit({"kind": "step", "step": session.step_count, "epoch": epoch + 1, "loss": loss,
                  "lr": session.optimizer.lr, "elapsed": elapsed,
                  "steps_per_s": session.step_count / elapsed if elapsed > 0 else 0.0,
                  "total_steps": total_steps})
        if result.stopped or not epoch_losses:
            return
        if session.optimizer.schedule is not None:
            session.optimizer.schedule.step()
        record = _epoch_record(session, epoch + 1, epoch_losses)
        record["elapsed"] = time.perf_counter() - started
        record["steps_per_s"] = session.step_count / record["elapsed"] if record["elapsed"] else 0.0
        result.history.append(record)
        score = record.get("val_loss", math.nan)
        if score < best:  # copied only when the validation loss improves
            best = score
            result.best_params = session.param_dict(copy=True)
            result.best_epoch = epoch + 1
        emit({"kind": "epoch", **record, "total_steps": total_steps, "step": session.step_count})


def _epoch_record(session: Session, epoch: int, losses: list) -> dict:
    record = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": session.optimizer.lr}
    train_eval = session.evaluate(session.train_feeds) if session.plan.metrics else {}
    for key, value in train_eval.items():
        if key != "loss":
            record[key] = value
    for key, value in session.evaluate(session.val_feeds).items():
        record[f"val_{key}"] = value
    return record


__all__ = ["Plan", "Session", "TrainResult", "TrainingError", "clip_grad_norm", "read_plan",
           "run_session", "train"]
