"""Resource bounds: what a document would cost, known before anything is expanded or allocated.

A small file can describe a huge computation: blocks that each use the next one twice (40 of
them make 2^40 instances), a Linear with 10^9 outputs, a Loop of 10^12 steps, bodies nested
hundreds deep. The compiler asks this module first, so that `wiregrad check`, the editor's live
shapes, compile, training and export refuse such a document in milliseconds, with an error
naming the node, instead of filling the memory or overflowing the stack.

- `expansion_errors(doc)`: nesting depth and the number of node instances, counted over the
  block-use graph with one count per block (never by expanding them). Runs before shape
  inference.
- `memory_errors(compiler)`: after shape inference, a rough estimate of one training step's
  memory at the training batch size; an error past the limit, a warning past half of it.

The bounds are documented in docs/engine.md ("Limits"); the Loop's step bounds are declared
with its parameters (nodes/control.py).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from ..nodes import INT
from ..nodes.control import MAX_STEPS
from .errors import GraphError
from .training_section import DEFAULTS

NESTING_LIMIT = 16  # bodies inside bodies: Loop bodies, Branch sides, Block instances
INSTANCE_LIMIT = 100_000  # node instances, every block use expanded
MEMORY_ENV = "WIREGRAD_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = 8 * 2**30  # bytes for one training step
DEFAULT_BATCH = DEFAULTS["batch_size"]  # the training section's (core/training_section.py)
LOOP_STEP_LIMIT = MAX_STEPS

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


# -- nesting and instances ----------------------------------------------------------------------


@dataclass
class _Size:
    """What a graph becomes once expanded: its node instances and how deep its bodies nest."""

    nodes: int = 0
    depth: int = 0


def _children(doc, node) -> list:
    """(path step, graph) for each graph a node runs: its bodies, or its block's definition."""
    if node.type == "Block":
        name = node.params.get("block")
        graph = doc.blocks.get(name) if isinstance(name, str) else None
        return [("", graph)] if graph is not None else []
    if node.type == "Branch":
        return [(f"{key}/", body) for key, body in node.bodies.items()]
    return [("", body) for body in node.bodies.values()]


def _sizes(doc) -> dict:
    """id(graph) -> _Size for the top graph, every block definition and every body, each
    counted once (post-order over an explicit stack: no recursion, however deep)."""
    sizes: dict = {}
    started: set = set()
    stack = [doc.graph, *doc.blocks.values()]
    while stack:
        graph = stack[-1]
        key = id(graph)
        if key in sizes:
            stack.pop()
            continue
        inner = [g for node in graph.nodes for _, g in _children(doc, node)]
        if key not in started:
            started.add(key)
            # A graph still being sized below us is a block that uses itself: the structural
            # checks report it; here it counts as empty rather than looping.
            stack.extend(g for g in inner if id(g) not in started)
            continue
        stack.pop()
        size = _Size(nodes=len(graph.nodes))
        for g in inner:
            below = sizes.get(id(g), _Size())
            size.nodes += below.nodes
            size.depth = max(size.depth, below.depth + 1)
        sizes[key] = size
    return sizes


def expansion_errors(doc) -> list:
    """Errors for a document nested deeper than NESTING_LIMIT or whose blocks expand to more
    than INSTANCE_LIMIT node instances; [] otherwise. Costs one pass over the file's nodes."""
    sizes = _sizes(doc)
    top = sizes[id(doc.graph)]
    errors = []
    if top.depth > NESTING_LIMIT:
        path = _deepest_path(doc, sizes, NESTING_LIMIT + 1)
        errors.append(GraphError(
            f"{path}: its body would be nested {NESTING_LIMIT + 1} deep (the document nests "
            f"{top.depth} deep), more than the limit of {NESTING_LIMIT}: each Loop body, Branch "
            "side and Block instance inside another is one level. Flatten the nesting", path))
    if top.nodes > INSTANCE_LIMIT:
        errors.append(_instance_error(doc, sizes, top.nodes))
    return errors


def _deepest_path(doc, sizes: dict, levels: int) -> str:
    """The path of the node whose body is `levels` deep, following the deepest nesting."""
    graph, path = doc.graph, ""
    while True:
        deepest, depth = None, -1
        for node in graph.nodes:
            for step, g in _children(doc, node):
                if sizes[id(g)].depth > depth:
                    deepest, depth = (node, step, g), sizes[id(g)].depth
        levels -= 1
        if deepest is None or levels == 0:
            return path + (deepest[0].id if deepest else "")
        node, step, graph = deepest
        path = f"{path}{node.id}/{step}"


def _instance_error(doc, sizes: dict, total: int) -> GraphError:
    """Name the top-level node through which most instances come, and the smallest block that
    alone crosses the bound (where the blow-up is)."""
    heaviest, weight = None, -1
    for node in doc.graph.nodes:
        count = 1 + sum(sizes[id(g)].nodes for _, g in _children(doc, node))
        if count > weight:
            heaviest, weight = node, count
    over = [(sizes[id(g)].nodes, name) for name, g in doc.blocks.items()
            if sizes[id(g)].nodes > INSTANCE_LIMIT]
    where = ""
    if over:
        count, name = min(over)
        used = _uses(doc.blocks[name])
        detail = "; ".join(f"{n} x {u!r}" for u, n in used.items())
        where = f"; block {name!r} alone expands to {count:,}" + (f" (it uses {detail})"
                                                                   if detail else "")
    advice = (" Every use of a block copies all its nodes and the blocks it uses; repeat a block "
              "with a Loop instead" if _uses(doc.graph) else "")
    return GraphError(
        f"{heaviest.id}: the document would have {total:,} node instances (each body counted "
        f"once, each block use expanded), more than the limit of {INSTANCE_LIMIT:,}{where}."
        f"{advice}", heaviest.id)


def _uses(graph) -> dict:
    """Block name -> how many times a graph (its bodies included) uses it."""
    counts: dict = {}
    stack = [graph]
    while stack:
        g = stack.pop()
        for node in g.nodes:
            if node.type == "Block" and isinstance(node.params.get("block"), str):
                counts[node.params["block"]] = counts.get(node.params["block"], 0) + 1
            stack.extend(node.bodies.values())
    return counts


# -- memory -------------------------------------------------------------------------------------


@dataclass
class Estimate:
    """Bytes one training step may need: parameters (values, gradients and up to two optimizer
    moments: 4x the tensors) and activations (each node output at the batch size, kept for the
    backward pass and matched by its gradient: 2x, times the steps of the loops around it)."""

    batch: int
    params: int = 0
    activations: int = 0
    by_node: dict = field(default_factory=dict)  # node path -> bytes

    @property
    def total(self) -> int:
        return self.params + self.activations

    def add(self, path: str, nbytes: int, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + nbytes)
        self.by_node[path] = self.by_node.get(path, 0) + nbytes


def training_batch(doc) -> int:
    """The batch size a training step of this document uses (its section's, else the
    default); a bad value is the training section's error to report, not ours."""
    section = doc.training if isinstance(doc.training, dict) else {}
    value = section.get("batch_size", DEFAULT_BATCH)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 \
        else DEFAULT_BATCH


def estimate(compiler, batch: int) -> Estimate:
    """The memory estimate of a compiled document (see Estimate). Lengths set by the data
    (a scan's sequence) count as 1; a while Loop counts max_iter steps, the most it may take."""
    out = Estimate(batch)
    itemsize = compiler.dtype.itemsize
    trainable = set(compiler.weight_names)
    for name, spec in zip(compiler.weight_names + compiler.buffer_names,
                          compiler.weight_specs + compiler.buffer_specs):
        copies = 4 if name in trainable else 1
        out.add(name.split(".", 1)[0], copies * itemsize * math.prod(spec.shape), "params")
    for (path, _port), t in compiler.port_types.items():
        steps = compiler.node_steps.get(path)
        if steps is None:
            continue  # an Input: its value is given (a feed, or a value outside its body)
        elements = math.prod(batch if d is None and i == 0 else (1 if d is None else d)
                             for i, d in enumerate(t.shape))
        size = 8 if t.dtype == INT else itemsize
        out.add(path, 2 * size * elements * steps, "activations")
    return out


def memory_limit() -> int:
    """The bound on one training step's memory: WIREGRAD_MEMORY_LIMIT (bytes, or with a unit:
    512M, 16G, 1T, powers of 1024) or 8 GiB."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if not text:
        return DEFAULT_MEMORY_LIMIT
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", text.lower())
    if match is None:
        raise GraphError(f"{MEMORY_ENV} must be a number of bytes, or one with a unit such as "
                         f"512M or 16G; got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def memory_errors(compiler) -> tuple:
    """(errors, warnings) for a compiled document's memory estimate: an error naming the
    node that needs the most past the limit, a warning past half of it."""
    limit = memory_limit()
    found = estimate(compiler, training_batch(compiler.doc))
    if found.total * 2 <= limit or not found.by_node:
        return [], []
    node, most = max(found.by_node.items(), key=lambda item: item[1])
    figures = (f"about {gib(found.total)} (parameters {gib(found.params)}, activations "
               f"{gib(found.activations)}) at batch size {found.batch}")
    if found.total > limit:
        return [GraphError(
            f"{node}: one training step would need {figures}, more than the limit of "
            f"{gib(limit)}; {node} needs the most ({gib(most)}). Make it smaller, lower "
            f"training.batch_size or the loop steps, or raise the limit with {MEMORY_ENV} "
            "(e.g. 32G)", node)], []
    return [], [GraphError(
        f"{node}: one training step may need {figures}, over half the limit of {gib(limit)} "
        f"({MEMORY_ENV}); {node} needs the most ({gib(most)})", node)]


def gib(nbytes: int) -> str:
    """Bytes for people: `1.5 GiB`, `12 MiB`; beyond a million TiB, in powers of ten."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            whole = nbytes // scale  # an int: counts past 1e308 would overflow a float
            if whole >= 10**6:
                digits = str(whole)
                return f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1} {unit}"
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} bytes"


__all__ = ["DEFAULT_MEMORY_LIMIT", "INSTANCE_LIMIT", "LOOP_STEP_LIMIT", "MEMORY_ENV",
           "NESTING_LIMIT", "Estimate", "estimate", "expansion_errors", "memory_errors",
           "memory_limit", "training_batch"]
