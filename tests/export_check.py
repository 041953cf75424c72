"""Helpers for the export tests: write a module, import it, compare it with the engine.

`sample_documents()` builds, for every registered node type and each of its samples, small
documents that put the node at the top level, inside a scan, inside a while loop, on either
side of a scalar branch and in a select branch (float inputs come from Parameters, so the
gradients with respect to the node's inputs are compared too).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys

import numpy as np

import core
import nodes
from core.export import export_source
from tests.program_check import document, graph

SKIP = {"Input", "Output", "Constant", "LoopIndex"}
STEPS = 3
_counter = itertools.count()


def load_module(text: str, directory, name: str | None = None):
    """Write `text` as a .py file in `directory` and import it under a fresh name."""
    name = name or f"wg_export_{next(_counter)}"
    path = directory / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def rel_diff(a, b) -> float:
    """max |a - b| / max(|a|, tiny): the figure the tests bound."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-30))


def losses(program) -> list:
    return [k for k, s in program.output_shapes.items()
            if all(d is not None for d in s) and int(np.prod(s)) == 1]


def compare_numpy(doc, params, feeds, tmp_path, train=False, seed=0, rtol=1e-6) -> float:
    """Export `doc` (float64), check outputs and gradients against the engine; returns the
    largest relative difference seen."""
    program = core.compile(doc, "float64")
    module = load_module(export_source(doc, "numpy", dtype="float64"), tmp_path)
    worst = 0.0
    expected = program.run(params, feeds, train=train, seed=seed)
    got = module.forward(params, feeds, train=train, seed=seed)
    assert set(got) == set(expected)
    for name, value in expected.items():
        d = rel_diff(value, got[name])
        assert d <= rtol, f"output {name}: relative difference {d:.3g}"
        worst = max(worst, d)
    for loss in losses(program):
        value, grads = program.value_and_grad(params, feeds, loss=loss, train=train, seed=seed)
        value2, grads2 = module.value_and_grad(params, feeds, loss=loss, train=train, seed=seed)
        d = rel_diff(value, value2)
        assert d <= rtol, f"loss {loss}: {value} vs {value2}"
        worst = max(worst, d)
        assert set(grads2) == set(grads)
        for name, g in grads.items():
            d = rel_diff(g, grads2[name])
            assert d <= rtol, f"d{loss}/d{name}: relative difference {d:.3g}"
            worst = max(worst, d)
    return worst


# ---------------------------------------------------------------------------------------------
# Documents for every node type


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


def compare_torch(doc, params, feeds, tmp_path, rtol=1e-5, module=None,
                  dtype="float32") -> float:
    """Export `doc` to torch, load the engine's params, check outputs and, through autograd,
    every gradient of every loss against the engine in `dtype`; returns the worst relative
    difference."""
    import torch

    program = core.compile(doc, dtype)
    if module is None:
        module = load_module(export_source(doc, "torch"), tmp_path)
    params32 = {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
    model = module.Model().to(getattr(torch, dtype))
    module.load_params(model, params32)
    model.eval()
    tensors = {k: torch.as_tensor(np.asarray(v, dtype=np.int64 if program.input_dtypes[k] == "int64"
                                             else dtype)) for k, v in feeds.items()}
    worst = 0.0
    expected = program.run(params32, feeds)
    got = model(**tensors)
    for name, value in expected.items():
        d = rel_diff(value, got[name].detach().numpy())
        assert d <= rtol, f"output {name}: relative difference {d:.3g}"
        worst = max(worst, d)
    for loss in losses(program):
        _, grads = program.value_and_grad(params32, feeds, loss=loss, train=False)
        model.zero_grad()
        out = model(**tensors)[loss]
        if out.requires_grad:
            out.sum().backward()
        for name, g in grads.items():
            key, transposed = module.PARAM_NAMES[name]
            tg = model.get_parameter(key).grad
            tg = np.zeros_like(g) if tg is None else (tg.T if transposed else tg).numpy()
            d = rel_diff(g, tg)
            assert d <= rtol, f"d{loss}/d{name}: relative difference {d:.3g}"
            worst = max(worst, d)
    return worst
