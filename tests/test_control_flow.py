"""Every node type's gradients inside a scan, a while loop and both branch modes.

For each registered type and each of its samples, the node is put into a body: its float
inputs become top-level Parameters (so finite differences check the gradient with respect to
the data too), its int inputs Inputs, and the loss is sum(sin(result)). The body runs several
steps (loops) or one side (branches), and every gradient is checked against central
differences in float64. A new node type is covered by being registered.
"""

from __future__ import annotations

import numpy as np
import pytest

import core
import nodes
from tests.program_check import check_gradients, document, graph

STEPS = 3
SKIP = {"Input", "Output", "Constant", "LoopIndex"}


def _cases():
    for name, node_type in sorted(nodes.all_types().items()):
        if node_type.control or name in SKIP:
            continue
        for k, sample in enumerate(node_type.samples):
            yield pytest.param(name, sample, id=f"{name}-{k}")


def _port_specs(sample):
    """(port, shape, dtype, high) for each input of a sample."""
    for port, spec in sample.inputs.items():
        if isinstance(spec, tuple) and len(spec) == 3 and isinstance(spec[0], tuple):
            yield port, spec[0], "int64", spec[2]
        else:
            yield port, tuple(spec), "float", None


def _data(sample, shape_of, rng):
    """Parameters (float inputs) and feeds (int inputs), each with one more axis of STEPS."""
    params, feeds = {}, {}
    for port, shape, dtype, high in _port_specs(sample):
        full = shape_of(shape)
        if dtype == "int64":
            feeds[f"in_{port}"] = rng.integers(0, high, size=full)
        else:
            # Magnitudes in [0.5, 1.5]: away from the kinks and poles (ReLU, Abs, Div, Log)
            # where a finite difference says nothing about the gradient.
            value = rng.uniform(0.5, 1.5, size=full)
            if port not in sample.positive:
                value *= rng.choice([-1.0, 1.0], size=full)
            params[f"in_{port}.value"] = value
    return params, feeds


def _sources(sample, shape_of):
    """Top-level nodes that hold each input: a Parameter (float) or an Input (int)."""
    out = []
    for port, shape, dtype, _ in _port_specs(sample):
        full = list(shape_of(shape))
        if dtype == "int64":
            out.append((f"in_{port}", "Input", {"shape": full[1:], "dtype": "int64"}))
        else:
            out.append((f"in_{port}", "Parameter", {"shape": full, "init": "zeros"}))
    return out


def _loss_tail(source: str):
    nodes_ = [("sin", "Sin", {}), ("total", "Sum", {}), ("loss", "Output", {})]
    edges = [(source, "sin.x"), ("sin.y", "total.x"), ("total.y", "loss.x")]
    return nodes_, edges


def _check(doc, params_data, feeds, seed=0):
    program = core.compile(doc, "float64")
    params = program.init_params(seed=3)
    params.update(params_data)
    check_gradients(program, params, feeds)


def _with_steps(shape):
    """A sequence of STEPS slices along axis 1 (after the leading axis)."""
    return shape[:1] + (STEPS,) + shape[1:]


@pytest.mark.parametrize("type_name,sample", list(_cases()))
def test_gradients_inside_a_scan(type_name, sample):
    ports = list(_port_specs(sample))
    body_nodes = [(port, "Input", {"role": "sequence"}) for port, *_ in ports]
    body_nodes += [("op", type_name, sample.params), ("out", "Output", {"role": "stack"})]
    body_edges = [(f"{port}.y", f"op.{port}") for port, *_ in ports] + [("op.y", "out.x")]
    mode = {"mode": "scan", "axis": 1} if ports else {"mode": "repeat", "count": STEPS}
    loop = ("loop", "Loop", mode, {"body": graph(body_nodes, body_edges)})
    tail_nodes, tail_edges = _loss_tail("loop.out")
    doc = document(_sources(sample, _with_steps) + [loop] + tail_nodes,
                   [(f"in_{port}.y", f"loop.{port}") for port, *_ in ports] + tail_edges)
    rng = np.random.default_rng(0)
    params, feeds = _data(sample, _with_steps, rng)
    _check(doc, params, feeds)


@pytest.mark.parametrize("type_name,sample", list(_cases()))
def test_gradients_inside_a_while_loop(type_name, sample):
    """Runs while 2 - step > 0: three steps, each feeding the same inputs, stacking results."""
    ports = list(_port_specs(sample))
    body_nodes = [(port, "Input", {}) for port, *_ in ports] + [
        ("op", type_name, sample.params), ("out", "Output", {}),
        ("t", "LoopIndex", {}), ("two", "Constant", {"value": 2.0}), ("left", "Sub", {}),
        ("again", "Output", {"role": "continue"})]
    body_edges = [(f"{port}.y", f"op.{port}") for port, *_ in ports] + [
        ("op.y", "out.x"), ("two.y", "left.a"), ("t.y", "left.b"), ("left.y", "again.x")]
    loop = ("loop", "Loop", {"mode": "while", "max_iter": 10},
            {"body": graph(body_nodes, body_edges)})
    tail_nodes, tail_edges = _loss_tail("loop.out")
    same = tuple  # the inputs are the sample's own shapes
    doc = document(_sources(sample, same) + [loop] + tail_nodes,
                   [(f"in_{port}.y", f"loop.{port}") for port, *_ in ports] + tail_edges)
    params, feeds = _data(sample, same, np.random.default_rng(1))
    _check(doc, params, feeds)


@pytest.mark.parametrize("side", ["then", "else"])
@pytest.mark.parametrize("type_name,sample", list(_cases()))
def test_gradients_inside_a_scalar_branch(type_name, sample, side):
    """The node sits on the side taken; the other side is a different function of the inputs."""
    ports = list(_port_specs(sample))
    taken = graph([(f"i_{port}", "Input", {}) for port, *_ in ports]
                  + [("op", type_name, sample.params), ("out", "Output", {})],
                  [(f"i_{port}.y", f"op.{port}") for port, *_ in ports] + [("op.y", "out.x")])
    other = graph([(f"i_{port}", "Input", {}) for port, *_ in ports]
                  + [("op", type_name, sample.params), ("neg", "Neg", {}), ("out", "Output", {})],
                  [(f"i_{port}.y", f"op.{port}") for port, *_ in ports]
                  + [("op.y", "neg.x"), ("neg.y", "out.x")])
    bodies = {"then": taken, "else": other} if side == "then" else {"then": other, "else": taken}
    cond = 1.0 if side == "then" else -1.0
    branch = ("br", "Branch", {"mode": "scalar"}, bodies)
    tail_nodes, tail_edges = _loss_tail("br.out")
    doc = document(_sources(sample, tuple) + [("cond", "Constant", {"value": cond}), branch]
                   + tail_nodes,
                   [(f"in_{port}.y", f"br.i_{port}") for port, *_ in ports]
                   + [("cond.y", "br.cond")] + tail_edges)
    params, feeds = _data(sample, tuple, np.random.default_rng(2))
    _check(doc, params, feeds)


@pytest.mark.parametrize("type_name,sample", list(_cases()))
def test_gradients_inside_a_select_branch(type_name, sample):
    """Both sides run; a condition with the output's shape picks per element."""
    ports = list(_port_specs(sample))
    program_probe = _single_node_program(type_name, sample)
    out_shape = program_probe
    then = graph([(f"i_{port}", "Input", {}) for port, *_ in ports]
                 + [("op", type_name, sample.params), ("out", "Output", {})],
                 [(f"i_{port}.y", f"op.{port}") for port, *_ in ports] + [("op.y", "out.x")])
    other = graph([(f"i_{port}", "Input", {}) for port, *_ in ports]
                  + [("op", type_name, sample.params), ("sq", "Square", {}), ("out", "Output", {})],
                  [(f"i_{port}.y", f"op.{port}") for port, *_ in ports]
                  + [("op.y", "sq.x"), ("sq.y", "out.x")])
    rng = np.random.default_rng(3)
    cond = np.where(rng.random(out_shape) > 0.5, 1.0, -1.0).tolist()
    branch = ("br", "Branch", {"mode": "select"}, {"then": then, "else": other})
    tail_nodes, tail_edges = _loss_tail("br.out")
    doc = document(_sources(sample, tuple) + [("cond", "Constant", {"value": cond}), branch]
                   + tail_nodes,
                   [(f"in_{port}.y", f"br.i_{port}") for port, *_ in ports]
                   + [("cond.y", "br.cond")] + tail_edges)
    params, feeds = _data(sample, tuple, rng)
    _check(doc, params, feeds)


def _single_node_program(type_name, sample):
    """The output shape of the node on the sample's inputs."""
    ports = list(_port_specs(sample))
    doc = document(_sources(sample, tuple) + [("op", type_name, sample.params),
                                              ("out", "Output", {})],
                   [(f"in_{port}.y", f"op.{port}") for port, *_ in ports] + [("op.y", "out.x")])
    program = core.compile(doc, "float64")
    params = program.init_params(0)
    params.update(_data(sample, tuple, np.random.default_rng(0))[0])
    feeds = _data(sample, tuple, np.random.default_rng(0))[1]
    return program.run(params, feeds)["out"].shape
