"""Seeing inside the network: every node's value and gradient on a few rows, bodies included.

The engine's `program.trace` records the output of every node the graph runs, and the gradient
of the loss at each, with paths like `hidden1`, `rnn/cell` (a loop body: one array per step),
`gate/then/act` (a branch side) or `res1/fc` (a block instance). The probe runs it in the UI
thread on a parameter snapshot and a small batch (about a millisecond for the examples); the
canvas shows one graph at a time, so `prefixes` says under which paths its nodes ran.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ... import core
from ...core.document import ref_name
from ...core.errors import GraphError


class Probe:
    """Traces one snapshot of a document (the live document may change under us)."""

    def __init__(self, doc, loss: str | None = None, dtype: str = "float32"):
        self.doc = doc.copy()
        self.loss = loss
        self.dtype = dtype
        self._program = None
        self.error: str | None = None

    def program(self):
        if self._program is None and self.error is None:
            try:
                self._program = core.compile(self.doc, self.dtype)
            except GraphError as exc:
                self.error = str(exc)
        return self._program

    def trace(self, params: dict, feeds: dict, grads: bool = True) -> Trace:
        """Values (and, with a loss and `grads`, gradients) of every node on these feeds."""
        program = self.program()
        if program is None:
            return Trace(error=self.error)
        feeds = {k: v for k, v in feeds.items() if k in program.input_shapes}
        rows = len(next(iter(feeds.values()))) if feeds else 0
        params = {n: params[n] for n in program.param_names if n in params}
        loss = self.loss if grads and self.loss in program.output_shapes else None
        try:
            record = program.trace(params, feeds, loss=loss, train=False)
        except GraphError as exc:
            return Trace(error=str(exc), rows=rows)
        record_grads = {key: [g for g in steps if g is not None]
                        for key, steps in record["grads"].items()}
        return Trace(record["values"], {k: v for k, v in record_grads.items() if v}, rows)


@dataclass
class Trace:
    """{(node path, port): [array per run]} for values and gradients, on `rows` examples."""

    values: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)
    rows: int = 0
    error: str | None = None

    def ports(self, paths: list, port: str | None = None) -> list:
        """[(port, [value arrays], [gradient arrays])] of the nodes at these paths (one path,
        or every instance of a block's node), runs of all of them together, by port."""
        found: dict = {}
        for key, steps in self.values.items():
            if key[0] in paths and port in (None, key[1]):
                entry = found.setdefault(key[1], ([], []))
                entry[0].extend(steps)
                entry[1].extend(self.grads.get(key, []))
        return [(port, v, g) for port, (v, g) in found.items()]

    def grad_size(self, paths: list, port: str) -> float | None:
        """The gradient flowing back into a port per example (rms x rows), over every run."""
        steps = [g for path in paths for g in self.grads.get((path, port), [])]
        if not steps:
            return None
        return rms(np.concatenate([np.ravel(g) for g in steps])) * max(self.rows, 1)

    def runs(self, paths: list) -> int:
        """How many times the nodes at these paths ran (steps of a loop, over instances)."""
        return max((len(steps) for key, steps in self.values.items() if key[0] in paths),
                   default=0)


def prefixes(doc, ref) -> list:
    """The trace path prefixes under which the nodes of the graph at `ref` run: `''` for the
    main graph, `rnn` for a loop's body, `gate/then` for a branch side, and for a block
    definition (`@Residual`) every instance of it (`res1`, `res2`, `rnn/res3`)."""
    ref = tuple(ref)
    if not ref or not ref[0].startswith("@"):
        return [ref_name(ref)]
    rest = ref_name(ref[1:])
    return [f"{inst}/{rest}" if rest else inst for inst in block_instances(doc, ref[0][1:])]


def block_instances(doc, name: str) -> list:
    """The paths of every instance of a block, however deep (a worklist, not recursion)."""
    found = []
    work = deque([(doc.graph, "", 0)])
    while work:
        graph, prefix, depth = work.popleft()
        if depth > 32:  # a block that contains itself; the compiler refuses it anyway
            continue
        for node in graph.nodes:
            path = f"{prefix}/{node.id}" if prefix else node.id
            if node.type == "Block":
                block = node.params.get("block")
                if block == name:
                    found.append(path)
                if block in doc.blocks:
                    work.append((doc.blocks[block], path, depth + 1))
            for key, body in node.bodies.items():
                work.append((body, path if key == "body" else f"{path}/{key}", depth + 1))
    return found


def join(prefix: str, node_id: str) -> str:
    return f"{prefix}/{node_id}" if prefix else node_id


def traced_as(doc, ref, node_id: str) -> tuple:
    """([trace paths], port or None for all) under which a node of the graph at `ref` ran.
    Outputs are not traced: an Output's value is that of the wire into it."""
    graph = doc.graph_at(ref)
    node = graph.node(node_id)
    port = None
    if node is not None and node.type == "Output":
        edge = next((e for e in graph.edges if e.dst == node_id), None)
        if edge is not None:
            node_id, port = edge.src, edge.src_port
    return [join(p, node_id) for p in prefixes(doc, ref)], port


def stack_runs(steps: list):
    """One array of a node's runs: the value itself if it ran once, else stacked by step."""
    if len(steps) == 1:
        return np.asarray(steps[0])
    try:
        return np.stack([np.asarray(s) for s in steps])
    except ValueError:  # shapes that change between steps
        return np.concatenate([np.ravel(s) for s in steps])


def stats(array) -> dict:
    """Summary figures of an array, NaN/Inf counted rather than propagated."""
    a = np.asarray(array, dtype=np.float64).ravel()
    finite = a[np.isfinite(a)]
    out = {"size": int(a.size), "nonfinite": int(a.size - finite.size)}
    if finite.size:
        out.update(mean=float(finite.mean()), std=float(finite.std()), min=float(finite.min()),
                   max=float(finite.max()), zeros=float(np.mean(finite == 0)),
                   norm=float(np.sqrt(np.sum(finite * finite))))
    return out


def histogram(array, bins: int = 30):
    """(counts, edges) of the finite values, or None when there are none."""
    a = np.asarray(array, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    if not a.size:
        return None
    low, high = float(a.min()), float(a.max())
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return np.histogram(a, bins=bins, range=(low, high))


def rms(array) -> float:
    """Root mean square of the finite values: a wire's typical gradient size, per element."""
    a = np.asarray(array, dtype=np.float64)
    if not a.size:
        return 0.0
    a = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(a * a))) if a.size else math.inf


def preview(array, limit: int = 6) -> str:
    """`[0.12, 0, 1.3, …]` for one row of values."""
    flat = np.asarray(array).ravel()
    shown = ", ".join(f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)
                      for v in flat[:limit].tolist())
    return f"[{shown}{', …' if flat.size > limit else ''}]"
