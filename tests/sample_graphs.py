"""Small documents for every registered node type, in every setting the engine has.

`sample_documents()` yields, for each type and each of its samples, documents that put the node
at the top level, inside a scan, inside a while loop, on either side of a scalar branch and in
a select branch. Float inputs come from Parameters, so gradients with respect to the node's
inputs are checked too; magnitudes lie in [0.5, 1.5], away from kinks and poles (ReLU, Abs, Div,
Log) where a finite difference says nothing about the gradient. The loss is sum(sin(result)).
A new node type is covered by being registered. Used by the engine's gradient checks and the
export comparisons alike.
"""

from __future__ import annotations

import numpy as np

import core
import nodes
from tests.program_check import document, graph

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
            value = rng.uniform(0.5, 1.5, size=full)
            if port not in sample.positive:
                value *= rng.choice([-1.0, 1.0], size=full)
            params[f"in_{port}.value"] = value
    return params, feeds


def tail(source: str):
    return ([("sin", "Sin", {}), ("total", "Sum", {}), ("loss", "Output", {}),
             ("raw", "Output", {})],
            [(source, "sin.x"), ("sin.y", "total.x"), ("total.y", "loss.x"), (source, "raw.x")])


def with_steps(shape):
    return shape[:1] + (STEPS,) + shape[1:]


def _body(ports, type_name, sample, extra_nodes=(), extra_edges=(), out="op.y", role=None):
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


def _cases(type_name, sample, k):
    ports = list(port_specs(sample))
    wire = [(f"in_{port}.y", f"op.{port}") for port, *_ in ports]
    rng = np.random.default_rng(k)
    tail_nodes, tail_edges = tail("op.y")
    doc = document(sources(sample, tuple) + [("op", type_name, sample.params)] + tail_nodes,
                   wire + tail_edges)
    yield (f"{type_name}-{k}-plain", doc, *data(sample, tuple, rng))

    mode = {"mode": "scan", "axis": 1} if ports else {"mode": "repeat", "count": STEPS}
    body = _body(ports, type_name, sample, role="sequence")
    loop = ("loop", "Loop", mode, {"body": body})
    tail_nodes, tail_edges = tail("loop.out")
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

    tail_nodes, tail_edges = tail("br.out")
    for side, cond in (("then", 1.0), ("else", -1.0)):
        taken = _body(ports, type_name, sample)
        other = _body(ports, type_name, sample, [("neg", "Neg", {})], [("op.y", "neg.x")],
                      out="neg.y")
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
                     wire + [("op.y", "out.x")])
    program = core.compile(plain, "float64")
    start = program.init_params(0)
    start.update(params)
    out_shape = program.run(start, feeds)["out"].shape
    cond = np.where(rng.random(out_shape) > 0.5, 1.0, -1.0).tolist()
    then = _body(ports, type_name, sample)
    other = _body(ports, type_name, sample, [("sq", "Square", {})], [("op.y", "sq.x")],
                  out="sq.y")
    doc = document(sources(sample, tuple)
                   + [("cond", "Constant", {"value": cond}),
                      ("br", "Branch", {"mode": "select"}, {"then": then, "else": other})]
                   + tail_nodes,
                   [(f"in_{port}.y", f"br.i_{port}") for port, *_ in ports]
                   + [("cond.y", "br.cond")] + tail_edges)
    yield (f"{type_name}-{k}-select", doc, params, feeds)


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
