"""A Loop unrolled: what each node of its body gave at each step, for one example.

The engine's traced run (`program.trace`) records every value a node makes, one array per
time it ran, and the gradient of the loss at each; a body node runs once per step, so its
list is the loop's steps in order. `unroll` traces one training example (a batch of one row,
the loss included, so the gradients are that example's) and keeps the lists of the loop's own
body nodes; `sample_counts` says how many steps each sample of a small batch took, for the
loops whose step count is a sample's own: a per-sample `while` (it stops each sample when its
continue value says so) and a `tree` loop (one step per level of the sample's tree).

Pure numpy and core: it runs in a background thread (loop_steps.py), never in the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.codegen.per_sample import STEP_ROWS
from ...core.errors import GraphError
from . import probe as pr

COUNT_ROWS = 32       # samples whose step counts are shown
TREE_COUNT_ROWS = 16  # a tree loop's counts take one traced run per sample


@dataclass
class LoopSteps:
    """One example through a Loop, step by step.

    `values` and `grads`: {(body node id, port): [one array per step]} (a gradient is None at
    a step the loss does not reach); `counts`: the steps each of the first rows took (per-sample
    while and tree loops only), `count_rows` how many rows that is."""

    loop_path: str
    kind: str
    row: int
    steps: int = 0
    values: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)
    counts: np.ndarray | None = None
    error: str | None = None

    def value(self, node_id: str, port: str, step: int):
        return _at(self.values.get((node_id, port)), step)

    def grad(self, node_id: str, port: str, step: int):
        return _at(self.grads.get((node_id, port)), step)


def _at(steps: list | None, step: int):
    if not steps or not 0 <= step < len(steps):
        return None
    return steps[step]


def loop_kind(params: dict) -> str:
    """`scan`, `for`, `while`, `per-sample while` or `tree`: what decides the step count."""
    mode = params.get("mode", "scan")
    if mode == "while" and params.get("per_sample"):
        return "per-sample while"
    return mode


def has_own_counts(kind: str) -> bool:
    """Whether each sample takes its own number of steps in a loop of this kind."""
    return kind in ("per-sample while", "tree")


def loop_path(doc, ref, loop_id: str) -> str | None:
    """The trace path of a Loop shown at `ref` (a block definition: its first instance)."""
    found = pr.prefixes(doc, ref)
    return pr.join(found[0], loop_id) if found else None


def unroll(program, params: dict, feeds: dict, loss: str | None, path: str, kind: str,
           row: int) -> LoopSteps:
    """Trace training row `row` and keep the steps of the Loop at trace path `path`."""
    out = LoopSteps(path, kind, row)
    one = {k: v[row:row + 1] for k, v in feeds.items() if k in program.input_shapes}
    params = {n: params[n] for n in program.param_names if n in params}
    loss = loss if loss in program.output_shapes else None
    try:
        record = program.trace(params, one, loss=loss, train=False)
    except GraphError as exc:
        out.error = str(exc)
        return out
    out.values = _body_entries(record["values"], path)
    out.grads = _body_entries(record["grads"], path)
    out.steps = max((len(steps) for steps in out.values.values()), default=0)
    if has_own_counts(kind):
        out.counts = sample_counts(program, params, feeds, path, kind)
    return out


def _body_entries(record: dict, path: str) -> dict:
    """{(node id, port): steps} of the nodes directly in the body at `path` (a loop nested in
    the body runs many times a step: it is unrolled when selected itself)."""
    start = path + "/"
    out = {}
    for (node_path, port), steps in record.items():
        if node_path.startswith(start) and "/" not in node_path[len(start):] \
                and port != STEP_ROWS:
            out[(node_path[len(start):], port)] = list(steps)
    return out


def sample_counts(program, params: dict, feeds: dict, path: str, kind: str) -> np.ndarray | None:
    """How many steps each of the first rows took, each as it runs in a batch of them."""
    feeds = {k: v for k, v in feeds.items() if k in program.input_shapes}
    rows = len(next(iter(feeds.values()))) if feeds else 0
    if kind == "per-sample while":
        # one traced run: each step records the rows it ran (a stopped sample is not among them)
        rows = min(rows, COUNT_ROWS)
        batch = {k: v[:rows] for k, v in feeds.items()}
        try:
            record = program.trace(params, batch, loss=None, train=False)
        except GraphError:
            return None
        ran = record["values"].get((path, STEP_ROWS), [])
        if not ran:
            return np.zeros(rows, dtype=np.int64)
        return np.bincount(np.concatenate(ran), minlength=rows).astype(np.int64)
    # a tree loop's steps are levels of all the batch's trees at once: one run per sample
    counts = []
    for row in range(min(rows, TREE_COUNT_ROWS)):
        one = {k: v[row:row + 1] for k, v in feeds.items()}
        try:
            record = program.trace(params, one, loss=None, train=False)
        except GraphError:
            return None
        body = _body_entries(record["values"], path)
        counts.append(max((len(steps) for steps in body.values()), default=0))
    return np.asarray(counts, dtype=np.int64)


# -- what a panel shows of a value --------------------------------------------------------------

REDUCTIONS = ("mean", "norm", "element", "gradient norm")


def series(record: LoopSteps, node_id: str, port: str, how: str, element: int = 0) -> np.ndarray:
    """One number per step of a body value: its mean, its norm, one element of it (NaN where
    the value has no such element), or the norm of its gradient (NaN where there is none)."""
    source = record.grads if how == "gradient norm" else record.values
    steps = source.get((node_id, port), [])
    out = np.full(record.steps, np.nan)
    for t, value in enumerate(steps[:record.steps]):
        if value is None:
            continue
        flat = np.asarray(value, dtype=np.float64).ravel()
        if how == "mean":
            out[t] = flat.mean() if flat.size else np.nan
        elif how == "element":
            out[t] = flat[element] if 0 <= element < flat.size else np.nan
        else:
            out[t] = np.sqrt(np.sum(flat * flat))
    return out


def one_example(value):
    """The value as the example has it: the leading batch axis of one row dropped."""
    value = np.asarray(value)
    return value[0] if value.ndim and value.shape[0] == 1 else value


def short(value, limit: int = 3) -> str:
    """`(16,) [0.12, -0.3, 0.5, …]` for a wire label."""
    one = one_example(value)
    return f"{shape_text(one)} {pr.preview(one, limit)}"


def shape_text(value) -> str:
    dims = np.shape(value)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def describe(value, grad) -> str:
    """Several lines for a tooltip: shape, figures, the first values, and the gradient's."""
    one = one_example(value)
    s = pr.stats(one)
    lines = [f"shape {shape_text(one)}", pr.preview(one, 8)]
    if "mean" in s:
        lines.append(f"mean {s['mean']:.4g}  min {s['min']:.4g}  max {s['max']:.4g}  "
                     f"norm {s['norm']:.4g}")
    if s["nonfinite"]:
        lines.append(f"{s['nonfinite']} NaN/Inf")
    if grad is None:
        lines.append("gradient: none (the loss does not reach it through this value)")
    else:
        g = pr.stats(one_example(grad))
        lines.append(f"gradient rms {pr.rms(grad):.3g}  norm {g.get('norm', float('nan')):.3g}")
        lines.append("gradient " + pr.preview(one_example(grad), 8))
    return "\n".join(lines)
