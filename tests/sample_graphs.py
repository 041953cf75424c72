"""Small documents for every registered node type, in every setting the engine has.

`sample_documents()` yields, for each type and each of its samples, documents that put the node
at the top level, inside a scan, inside a while loop, on either side of a scalar branch and in
a select branch; and where the sample's inputs share a first axis, which then is the batch,
inside a per-sample while loop, a route branch and a tree loop (format.md, version 2). Float inputs come from Parameters, so gradients with respect to the node's
inputs are checked too; magnitudes lie in [0.5, 1.5], away from kinks and poles (ReLU, Abs, Div,
Log) where a finite difference says nothing about the gradient. The loss is sum(sin(result)).
A new node type is covered by being registered. Used by the engine's gradient checks and the
export comparisons alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.program_check import document, graph
from wiregrad import core, nodes

SKIP = {"Input", "Output", "Constant", "LoopIndex"}
STEPS = 3


def port_specs(sample):
    for port, spec in sample.inputs.items():
        if isinstance(spec, tuple) and len(spec) == 3 and isinstance(spec[0], tuple):
            yield port, spec[0], "int64", spec[2]
        else:
            yield port, tuple(spec), "float", None


def sources(sample, shape_of):
    out = []
    for port, shape, dtype, _ in port_specs(sample):
        full = list(shape_of(shape))
        if dtype == "int64":
            out.append((f"in_{port}", "Input", {"shape": full[1:], "dtype": "int64"}))
        else:
            out.append((f"in_{port}", "Parameter", {"shape": full, "init": "zeros"}))
    return out


def data(sample, shape_of, rng):
    params, feeds = {}, {}
    for port, shape, dtype, high in port_specs(sample):
        full = shape_of(shape)
        if dtype == "int64":
            feeds[f"in_{port}"] = rng.integers(0, high, size=full)
        else:
            if port in sample.probability:
                value = rng.uniform(0.1, 0.9, size=full)
            else:
                value = rng.uniform(0.5, 1.5, size=full)
            if port not in sample.positive + sample.probability:
                value *= rng.choice([-1.0, 1.0], size=full)
            params[f"in_{port}.value"] = value
    return params, feeds


def tail(source: str, as_int: bool = False):
    if as_int:  # an int64 result (ArgMax): made float by a Where on it
        return ([("one", "Constant", {"value": 1.0}), ("half", "Constant", {"value": -0.5}),
                 ("fl", "Where", {}), ("sin", "Sin", {}), ("total", "Sum", {}),
                 ("loss", "Output", {}), ("raw", "Output", {})],
                [(source, "fl.cond"), ("one.y", "fl.a"), ("half.y", "fl.b"), ("fl.y", "sin.x"),
                 ("sin.y", "total.x"), ("total.y", "loss.x"), (source, "raw.x")])
    return ([("sin", "Sin", {}), ("total", "Sum", {}), ("loss", "Output", {}),
             ("raw", "Output", {})],
            [(source, "sin.x"), ("sin.y", "total.x"), ("total.y", "loss.x"), (source, "raw.x")])


def _first(type_name, sample):
    """The node's first output, as an edge end ("op.y", "op.y0")."""
    node = nodes.get(type_name)
    return "op." + node.output_ports(node.resolve_params(sample.params))[0]


def _int_result(type_name, sample) -> bool:
    node = nodes.get(type_name)
    p = node.resolve_params(sample.params)
    types = {port: nodes.TensorType(tuple(shape), "int64" if dtype == "int64" else "float")
             for port, shape, dtype, _ in port_specs(sample)}
    return node.infer(p, types)[node.output_ports(p)[0]].dtype == "int64"


def with_steps(shape):
    return shape[:1] + (STEPS,) + shape[1:]


def _body(ports, type_name, sample, extra_nodes=(), extra_edges=(), out=None, role=None):
    out = out or _first(type_name, sample)
    inputs = [(f"i_{port}", "Input", {} if role is None else {"role": role})
              for port, *_ in ports]
    return graph(inputs + [("op", type_name, sample.params), ("out", "Output", {})]
                 + list(extra_nodes),
                 [(f"i_{port}.y", f"op.{port}") for port, *_ in ports] + [(out, "out.x")]
                 + list(extra_edges))


def sample_documents():
    """(case id, doc, params data, feeds) for every type, sample and setting."""
    for name, node_type in sorted(nodes.all_types().items()):
        if node_type.control or name in SKIP:
            continue
        for k, sample in enumerate(node_type.samples):
            yield from _cases(name, sample, k)
            if _batchable(sample):
                yield from _per_sample_cases(name, sample, k)


def _cases(type_name, sample, k):
    ports = list(port_specs(sample))
    wire = [(f"in_{port}.y", f"op.{port}") for port, *_ in ports]
    rng = np.random.default_rng(k)
    tail_nodes, tail_edges = tail(_first(type_name, sample), _int_result(type_name, sample))
    doc = document(sources(sample, tuple) + [("op", type_name, sample.params)] + tail_nodes,
                   wire + tail_edges)
    yield (f"{type_name}-{k}-plain", doc, *data(sample, tuple, rng))

    mode = {"mode": "scan", "axis": 1} if ports else {"mode": "repeat", "count": STEPS}
    body = _body(ports, type_name, sample, role="sequence")
    loop = ("loop", "Loop", mode, {"body": body})
    tail_nodes, tail_edges = tail("loop.out", _int_result(type_name, sample))
    doc = document(sources(sample, with_steps) + [loop] + tail_nodes,
                   [(f"in_{port}.y", f"loop.i_{port}") for port, *_ in ports] + tail_edges)
    yield (f"{type_name}-{k}-scan", doc, *data(sample, with_steps, rng))

    body = _body(ports, type_name, sample, [
        ("t", "LoopIndex", {}), ("two", "Constant", {"value": 2.0}), ("left", "Sub", {}),
        ("again", "Output", {"role": "continue"})],
        [("two.y", "left.a"), ("t.y", "left.b"), ("left.y", "again.x")])
    loop = ("loop", "Loop", {"mode": "while", "max_iter": 10}, {"body": body})
    doc = document(sources(sample, tuple) + [loop] + tail_nodes,
                   [(f"in_{port}.y", f"loop.i_{port}") for port, *_ in ports] + tail_edges)
    yield (f"{type_name}-{k}-while", doc, *data(sample, tuple, rng))

    tail_nodes, tail_edges = tail("br.out", _int_result(type_name, sample))
    for side, cond in (("then", 1.0), ("else", -1.0)):
        taken = _body(ports, type_name, sample)
        other = _body(ports, type_name, sample, [("neg", "Neg", {})], [(_first(type_name, sample), "neg.x")],
                      out="neg.y") if not _int_result(type_name, sample) else _body(ports, type_name, sample)
        bodies = {"then": taken, "else": other} if side == "then" else \
            {"then": other, "else": taken}
        doc = document(sources(sample, tuple)
                       + [("cond", "Constant", {"value": cond}),
                          ("br", "Branch", {"mode": "scalar"}, bodies)] + tail_nodes,
                       [(f"in_{port}.y", f"br.i_{port}") for port, *_ in ports]
                       + [("cond.y", "br.cond")] + tail_edges)
        yield (f"{type_name}-{k}-branch-{side}", doc, *data(sample, tuple, rng))

    params, feeds = data(sample, tuple, rng)
    plain = document(sources(sample, tuple) + [("op", type_name, sample.params),
                                               ("out", "Output", {})],
                     wire + [(_first(type_name, sample), "out.x")])
    program = core.compile(plain, "float64")
    start = program.init_params(0)
    start.update(params)
    out_shape = program.run(start, feeds)["out"].shape
    cond = np.where(rng.random(out_shape) > 0.5, 1.0, -1.0).tolist()
    then = _body(ports, type_name, sample)
    other = _body(ports, type_name, sample, [("sq", "Square", {})], [(_first(type_name, sample), "sq.x")],
                  out="sq.y") if not _int_result(type_name, sample) else _body(ports, type_name, sample)
    doc = document(sources(sample, tuple)
                   + [("cond", "Constant", {"value": cond}),
                      ("br", "Branch", {"mode": "select"}, {"then": then, "else": other})]
                   + tail_nodes,
                   [(f"in_{port}.y", f"br.i_{port}") for port, *_ in ports]
                   + [("cond.y", "br.cond")] + tail_edges)
    yield (f"{type_name}-{k}-select", doc, params, feeds)


# -- the per-sample settings: the sample's first axis is the batch ---------------------------


def _batchable(sample) -> bool:
    firsts = {shape[0] for _, shape, _, _ in port_specs(sample) if shape}
    return len(firsts) == 1 and all(shape for _, shape, _, _ in port_specs(sample))


def _batched_sources(sample, at=None):
    """Each float input as data (an Input) times a Parameter of one sample's shape, so the
    gradient that reaches the Parameter is the node's input gradient; int64 inputs as data.
    With `at`, every input gets a second axis of `at` tree nodes."""
    nodes_, edges = [], []
    for port, shape, dtype, _ in port_specs(sample):
        rest = list(shape[1:])
        feed = ([at] if at else []) + rest
        if dtype == "int64":
            nodes_.append((f"in_{port}", "Input", {"shape": feed, "dtype": "int64"}))
            continue
        nodes_ += [(f"x_{port}", "Input", {"shape": feed}),
                   (f"w_{port}", "Parameter", {"shape": rest, "init": "ones"}),
                   (f"in_{port}", "Mul", {})]
        edges += [(f"x_{port}.y", f"in_{port}.a"), (f"w_{port}.y", f"in_{port}.b")]
    return nodes_, edges


def _batched_data(sample, rng, at=None):
    params, feeds = {}, {}
    for port, shape, dtype, high in port_specs(sample):
        full = (shape[0],) + ((at,) if at else ()) + tuple(shape[1:])
        if dtype == "int64":
            feeds[f"in_{port}"] = rng.integers(0, high, size=full)
            continue
        if port in sample.probability:
            value = rng.uniform(0.1, 0.8, size=full)  # times w in [0.8, 1.2]: below 1
        else:
            value = rng.uniform(0.5, 1.5, size=full)
        if port not in sample.positive + sample.probability:
            value *= rng.choice([-1.0, 1.0], size=full)
        feeds[f"x_{port}"] = value
        params[f"w_{port}.value"] = rng.uniform(0.8, 1.2, size=shape[1:])
    return params, feeds


def _gives_per_sample(type_name, sample) -> bool:
    """Whether the node, fed batched data, gives one value per sample (a loss does not)."""
    nodes_, edges = _batched_sources(sample)
    doc = document(nodes_ + [("op", type_name, sample.params), ("out", "Output", {})],
                   edges + [(f"in_{port}.y", f"op.{port}") for port, *_ in port_specs(sample)]
                   + [(_first(type_name, sample), "out.x")])
    try:
        program = core.compile(doc, "float64")
        params, feeds = _batched_data(sample, np.random.default_rng(0))
        start = program.init_params(0)
        start.update(params)
        out = program.run(start, feeds)["out"]
    except core.GraphError:
        return False
    # One row per sample (not a loss, not a slice or a transpose of the batch axis).
    shape = program.output_shapes["out"]
    return bool(shape) and shape[0] is None and np.ndim(out) and len(out) == len(
        next(iter(feeds.values())))


def _per_sample_cases(type_name, sample, k):
    if not _gives_per_sample(type_name, sample):
        return
    ports = list(port_specs(sample))
    batch = ports[0][1][0]
    rng = np.random.default_rng(100 + k)
    into = [(f"in_{port}.y", f"loop.i_{port}") for port, *_ in ports]

    # A per-sample while: sample i runs its own number of steps (1 to 3).
    body = _body(ports, type_name, sample, [
        ("n", "Input", {}), ("t", "LoopIndex", {}), ("one", "Constant", {"value": 1.0}),
        ("done", "Add", {}), ("left", "Sub", {}), ("again", "Output", {"role": "continue"})],
        [("t.y", "done.a"), ("one.y", "done.b"), ("n.y", "left.a"), ("done.y", "left.b"),
         ("left.y", "again.x")])
    nodes_, edges = _batched_sources(sample)
    tail_nodes, tail_edges = tail("loop.out", _int_result(type_name, sample))
    loop = ("loop", "Loop", {"mode": "while", "per_sample": True, "max_iter": 5}, {"body": body})
    doc = document(nodes_ + [("steps", "Input", {"shape": []}), loop] + tail_nodes,
                   edges + into + [("steps.y", "loop.n")] + tail_edges)
    params, feeds = _batched_data(sample, rng)
    feeds["steps"] = rng.integers(1, 4, size=batch).astype(float)
    yield (f"{type_name}-{k}-per-sample-while", doc, params, feeds)

    # A route branch: each sample through its own side.
    then = _body(ports, type_name, sample)
    other = _body(ports, type_name, sample, [("sq", "Square", {})], [(_first(type_name, sample), "sq.x")],
                  out="sq.y") if not _int_result(type_name, sample) else _body(ports, type_name, sample)
    tail_nodes, tail_edges = tail("br.out", _int_result(type_name, sample))
    doc = document(nodes_ + [("cond", "Input", {"shape": []}),
                             ("br", "Branch", {"mode": "route"}, {"then": then, "else": other})]
                   + tail_nodes,
                   edges + [(f"in_{port}.y", f"br.i_{port}") for port, *_ in ports]
                   + [("cond.y", "br.cond")] + tail_edges)
    params, feeds = _batched_data(sample, rng)
    feeds["cond"] = np.where(np.arange(batch) % 2 == 0, 1.0, -1.0)
    yield (f"{type_name}-{k}-route", doc, params, feeds)

    # A tree loop over three nodes: two leaves and their parent.
    body = _body(ports, type_name, sample, role="sequence")
    nodes_, edges = _batched_sources(sample, at=STEPS)
    tail_nodes, tail_edges = tail("loop.out", _int_result(type_name, sample))
    loop = ("loop", "Loop", {"mode": "tree"}, {"body": body})
    doc = document(nodes_ + [("kids", "Input", {"shape": [STEPS, 2], "dtype": "int64"}), loop]
                   + tail_nodes, edges + into + [("kids.y", "loop.children")] + tail_edges)
    params, feeds = _batched_data(sample, rng, at=STEPS)
    feeds["kids"] = np.tile(np.array([[-1, -1], [-1, -1], [0, 1]]), (batch, 1, 1))
    yield (f"{type_name}-{k}-tree", doc, params, feeds)


def full_params(doc, data_params, seed=3):
    program = core.compile(doc, "float64")
    params = program.init_params(seed)
    params.update(data_params)
    return params


def feeds_for(program, batch=5, seed=0, steps=4):
    """Random feeds for a program's Inputs: class ids 0 or 1, `steps` for lengths set by data."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in program.input_shapes.items():
        full = [batch] + [steps if d is None else d for d in shape[1:]]
        if program.input_dtypes[name] == "int64":
            feeds[name] = rng.integers(0, 2, size=full)
        else:
            feeds[name] = rng.standard_normal(full)
    return feeds


def example_feeds(doc, program, path, batch=5):
    """Feeds for an example: `batch` rows of its own training data (trees, step counts and the
    like must be valid ones), or random ones when it has no training section."""
    if doc.training is None:
        return feeds_for(program, batch=batch)
    from wiregrad.core.datasets import load_dataset

    arrays = load_dataset(doc.training["dataset"], Path(path).parent).arrays
    names = doc.training.get("feeds", {})
    rows = np.linspace(0, len(next(iter(arrays.values()))) - 1, batch).astype(np.int64)
    return {name: arrays[names.get(name, name)][rows] for name in program.input_shapes}
