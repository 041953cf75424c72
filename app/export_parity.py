"""Does the exported code compute what the engine computes? Two checks, for either target.

`check_export` runs the exported module and the engine on the same parameters and a batch of
inputs (the first training rows where the document has data, else random ones of the right
shapes), and gives the largest difference of outputs and of gradients (numpy: float64; torch:
float32, its gradients through autograd). Each output is compared on its own scale (its
largest value); the gradients of a loss on the scale of the largest of them, since a
parameter's gradient can be a sum of terms that nearly cancel (a bias's), whose float32
rounding is on the scale of the terms and not of what is left.

`train_both_ways` trains N steps twice: with the exported script's own training function and
with the engine's trainer. "The same" run means: the same initial parameters (the engine's,
drawn by the training seed, handed to both), the same data, split and batch order (the script's
data code is the engine's, copied, and shuffles with the same seeded stream), and the same
optimizer settings (numpy: the engine's optimizer code, copied; torch: torch.optim). Both are
stopped after N steps, so the curves should coincide: a numpy script to the last bit, a torch
one to float32 rounding. Dropout is the one exception: torch draws its own masks.

No Qt here: this file runs in a process of its own (`python export_parity.py JOB`, see
`ParityJob` in parity_job.py), which reads a job (JSON) and writes one JSON object a line:
{"kind": "progress", "side", "done", "total"}, then {"kind": "result", ...} or
{"kind": "error", "message"}. The editor's process never imports torch for it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import threading
import time
import traceback

import numpy as np
from wiregrad.core.errors import GraphError
from wiregrad.core.export import export_source
from wiregrad.core.export.loading import import_text, torch_grads
from wiregrad.core.fileio import from_dict
from wiregrad.core.trainer import Session, run_session

from wiregrad import core

# the largest relative difference each check accepts, by target
CHECK_TOLERANCE = {"numpy": 1e-6, "torch": 1e-5}
CURVE_TOLERANCE = {"numpy": 1e-6, "torch": 1e-4}
CHECK_DTYPE = {"numpy": "float64", "torch": "float32"}
PROGRESS_S = 0.05    # progress lines at most 20 times a second


class _Enough(Exception):
    """Raised inside a trainer to end it after the steps wanted."""


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def rel_diff(a, b) -> float:
    """max |a - b| / max |a|: a difference on the scale of the engine's values."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    if not a.size:
        return 0.0
    scale = max(float(np.abs(a).max()), 1e-12)
    return float(np.abs(a - b).max()) / scale


def example_feeds(program, batch: int = 4, seed: int = 0) -> dict:
    """Random inputs of the right shapes: class ids 0 or 1, lengths set by data 5."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in program.input_shapes.items():
        full = tuple(batch if i == 0 else (5 if d is None else d) for i, d in enumerate(shape))
        if program.input_dtypes[name] == "int64":
            feeds[name] = rng.integers(0, 2, size=full)
        else:
            feeds[name] = rng.normal(size=full)
    return feeds


def training_rows(doc, rows: int) -> dict | None:
    """The first `rows` training rows of the document's data (the trees of a tree dataset are
    only valid as the data has them), or None without a training section or readable data."""
    if not isinstance(doc.training, dict):
        return None
    try:
        session = Session(doc, base_dir=doc.folder or os.getcwd())
    except (GraphError, OSError, ValueError):
        return None
    return {name: array[:rows] for name, array in session.train_feeds.items()}


def grad_diff(ours: dict, theirs: dict) -> float:
    """The largest difference of a loss's gradients, over the largest gradient value."""
    scale = max((float(np.abs(np.asarray(g, dtype=np.float64)).max(initial=0.0))
                 for g in ours.values()), default=0.0)
    worst = 0.0
    for name, g in ours.items():
        a = np.asarray(g, dtype=np.float64)
        b = np.asarray(theirs[name], dtype=np.float64)
        if a.shape != b.shape:
            return math.inf
        worst = max(worst, float(np.abs(a - b).max(initial=0.0)))
    return worst / max(scale, 1e-12)


def scalar_outputs(program) -> list:
    """The outputs a gradient can be taken of: those with one value."""
    return [name for name, shape in program.output_shapes.items()
            if shape is not None and all(d is not None for d in shape)
            and int(np.prod(shape)) == 1]


# -- one batch --------------------------------------------------------------------------------


def check_export(doc, target: str = "numpy", batch: int = 4, seed: int = 0) -> dict:
    """Run the exported `target` module and the engine on the same parameters and example
    inputs. Returns {"target", "dtype", "outputs": largest relative difference, "gradients":
    the same of every scalar output's gradients (None when there is none), "tolerance",
    "ok"}."""
    dtype = CHECK_DTYPE[target]
    program = core.compile(doc, dtype)
    params = {k: np.asarray(v, dtype=dtype) for k, v in program.init_params(seed).items()}
    feeds = training_rows(doc, batch) or example_feeds(program, batch, seed)
    feeds = {k: v if program.input_dtypes[k] == "int64" else np.asarray(v, dtype=dtype)
             for k, v in feeds.items() if k in program.input_shapes}
    module = import_text(export_source(doc, target, dtype=dtype))
    if target == "numpy":
        outputs, grads = _numpy_differences(program, module, params, feeds)
    else:
        outputs, grads = _torch_differences(program, module, params, feeds, dtype)
    tolerance = CHECK_TOLERANCE[target]
    return {"target": target, "dtype": dtype, "outputs": outputs, "gradients": grads,
            "tolerance": tolerance,
            "ok": outputs <= tolerance and (grads is None or grads <= tolerance)}


def _numpy_differences(program, module, params, feeds) -> tuple:
    ours = program.run(params, feeds)
    theirs = module.forward(params, feeds)
    outputs = max((rel_diff(ours[k], theirs[k]) for k in ours), default=0.0)
    grads = None
    for loss in scalar_outputs(program):
        _, g_ours = program.value_and_grad(params, feeds, loss=loss, train=False)
        _, g_theirs = module.value_and_grad(params, feeds, loss=loss, train=False)
        worst = grad_diff(g_ours, g_theirs)
        grads = worst if grads is None else max(grads, worst)
    return outputs, grads


def _torch_differences(program, module, params, feeds, dtype: str) -> tuple:
    import torch

    model = module.Model().to(getattr(torch, dtype))
    module.load_params(model, params)
    model.eval()
    tensors = {k: torch.as_tensor(v) for k, v in feeds.items()}
    ours = program.run(params, feeds)
    with torch.no_grad():
        theirs = model(**tensors)
    outputs = max((rel_diff(ours[k], theirs[k].numpy()) for k in ours), default=0.0)
    grads = None
    for loss in scalar_outputs(program):
        _, g_ours = program.value_and_grad(params, feeds, loss=loss, train=False)
        model.zero_grad()
        out = model(**tensors)[loss]
        if out.requires_grad:
            out.sum().backward()
        worst = grad_diff(g_ours, torch_grads(module, model, g_ours))
        grads = worst if grads is None else max(grads, worst)
    return outputs, grads


# -- N steps of training ----------------------------------------------------------------------


def train_both_ways(doc, target: str, steps: int, progress=None) -> dict:
    """Train `steps` steps with the exported script's training function and with the engine's
    trainer, from the same initial parameters. `progress(side, done, total)` is told as they
    go. Returns {"target", "steps", "engine": [loss per step], "script": [...], "max_diff"
    (absolute), "max_rel" (over the engine's largest loss), "tolerance", "ok", "note"}."""
    progress = progress or (lambda side, done, total: None)
    training = doc.training if isinstance(doc.training, dict) else None
    if training is None:
        raise ValueError("This graph has no training section: nothing to train both ways.")
    folder = doc.folder or os.getcwd()
    dtype = training.get("dtype", "float32")
    program = core.compile(doc, dtype)
    start = program.init_params(training.get("seed", 0))
    engine = _engine_losses(doc, start, steps, folder, progress)
    text = export_source(doc, target, data_dir=folder)
    module = import_text(text)
    if target == "numpy":
        script = _numpy_script_losses(module, start, steps, progress)
    else:
        script = _torch_script_losses(module, start, steps, progress, dtype, training["loss"])
    n = min(len(engine), len(script))
    a, b = np.asarray(engine[:n], dtype=np.float64), np.asarray(script[:n], dtype=np.float64)
    max_diff = float(np.abs(a - b).max()) if n else 0.0
    max_rel = max_diff / max(float(np.abs(a).max()) if n else 0.0, 1e-12)
    if n and not (np.isfinite(a).all() and np.isfinite(b).all()):
        max_diff = max_rel = math.inf
    tolerance = CURVE_TOLERANCE[target]
    note = ""
    if target == "torch" and _uses_dropout(doc):
        note = "The graph uses dropout: torch draws its own masks, so the curves may differ."
    return {"target": target, "steps": n, "engine": engine, "script": script,
            "max_diff": max_diff, "max_rel": max_rel, "tolerance": tolerance,
            "ok": n == steps and max_rel <= tolerance, "note": note}


class _Reporter:
    """Counts one side's steps and says so, at most every PROGRESS_S."""

    def __init__(self, side: str, total: int, progress):
        self.side, self.total, self.progress = side, total, progress
        self.losses: list = []
        self._next = 0.0

    def add(self, loss: float) -> None:
        self.losses.append(float(loss))
        now = time.perf_counter()
        if now >= self._next or len(self.losses) == self.total:
            self._next = now + PROGRESS_S
            self.progress(self.side, len(self.losses), self.total)

    def full(self) -> bool:
        return len(self.losses) >= self.total


def _engine_losses(doc, start: dict, steps: int, folder: str, progress) -> list:
    """The engine's trainer, run as the editor's Train runs it, stopped after `steps`."""
    reporter = _Reporter("engine", steps, progress)
    stop = threading.Event()

    def on_event(event: dict) -> None:
        if event.get("kind") == "step":
            reporter.add(event["loss"])
            if reporter.full():
                stop.set()

    session = Session(doc, epochs=_epochs_for(steps), params=start, base_dir=folder)
    run_session(session, on_event, stop)
    return reporter.losses


def _epochs_for(steps: int) -> int:
    """Enough epochs for `steps` steps whatever the batch count (at least one step each)."""
    return max(1, steps)


def _numpy_script_losses(module, start: dict, steps: int, progress) -> list:
    """The script's own `train()`, its `value_and_grad` wrapped to note each step's loss and
    to end the run after `steps`."""
    reporter = _Reporter("script", steps, progress)
    original = module.value_and_grad

    def counted(params, feeds, loss="loss", train=True, seed=0, out=None):
        if reporter.full():
            raise _Enough
        value, grads = original(params, feeds, loss, train, seed, out)
        reporter.add(value)
        return value, grads

    module.value_and_grad = counted
    try:
        module.train(epochs=_epochs_for(steps), params=start, verbose=False)
    except _Enough:
        pass
    return reporter.losses


def _torch_script_losses(module, start: dict, steps: int, progress, dtype: str,
                         loss_name: str) -> list:
    """The script's own `train_torch()` on the CPU, its Model's training forward noting each
    step's loss and ending the run after `steps`."""
    reporter = _Reporter("script", steps, progress)
    base = module.Model

    class Counted(base):
        def forward(self, *args, **kwargs):
            if self.training and reporter.full():
                raise _Enough
            out = super().forward(*args, **kwargs)
            if self.training:
                reporter.add(float(out[loss_name].detach()))
            return out

    module.Model = Counted
    try:
        module.train_torch(epochs=_epochs_for(steps), device="cpu", params=start,
                           verbose=False, dtype_name=dtype)
    except _Enough:
        pass
    return reporter.losses


def _uses_dropout(doc) -> bool:
    graphs = [doc.graph, *doc.blocks.values()]
    while graphs:
        graph = graphs.pop()
        for node in graph.nodes:
            if node.type == "Dropout":
                return True
            graphs.extend(node.bodies.values())
    return False


# -- the process ------------------------------------------------------------------------------


def run_job(job: dict, write) -> None:
    """Do what `job` asks ({"check": "verify" | "train", "doc": document dict, "folder",
    "target", "steps"}), telling `write` (one dict a line) how it goes."""
    try:
        doc = from_dict(job["doc"])
        doc.folder = job.get("folder")
        target = job["target"]

        def progress(side, done, total):
            write({"kind": "progress", "side": side, "done": done, "total": total})

        if job["check"] == "verify":
            result = check_export(doc, target)
        else:
            result = train_both_ways(doc, target, int(job["steps"]), progress)
        write({"kind": "result", **result})
    except Exception as exc:  # noqa: BLE001 - whatever the exported code raises is the answer
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        write({"kind": "error", "message": message, "detail": traceback.format_exc()})


def _write_line(entry: dict) -> None:
    sys.stdout.write(json.dumps(entry, allow_nan=True) + "\n")
    sys.stdout.flush()


def main(argv: list) -> int:
    with open(argv[0], encoding="utf-8") as f:
        job = json.load(f)
    run_job(job, _write_line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
