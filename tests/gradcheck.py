"""Checks a node type's backward against central finite differences.

For a node type and one of its `Sample`s: draw float64 inputs and weights (seeded), run forward,
and compare backward's gradients of `loss = sum(y * R)` (R a fixed random projection of every
output) with (loss(v + eps) - loss(v - eps)) / 2 eps, element by element. Along the way it checks
the shape rule against what forward produced, the shape and dtype of every gradient, that
gradients not asked for are None, and that nothing the node was given is modified.

Inputs are drawn away from the points where the functions we test are not differentiable: the
values of one tensor are distinct (a shuffled grid with jitter) and none is near 0, so ReLU, Abs,
Max and MaxPool see no ties or kinks within eps.
"""

from __future__ import annotations

import math

import numpy as np
from wiregrad.core.codegen.single import NodeRun
from wiregrad.nodes.base import FLOAT, INT, Sample, TensorType

from wiregrad import nodes

EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-5


def distinct_values(rng: np.random.Generator, shape: tuple, low: float, high: float):
    """Values in (low, high), pairwise at least (high - low) / (5 n) apart, in random order."""
    n = math.prod(shape)
    cells = rng.permutation(n) + rng.uniform(0.1, 0.9, size=n)
    return (low + (high - low) * cells / max(n, 1)).reshape(shape)


def sample_ports(node, p: dict, sample: Sample) -> list:
    """The node's input ports the sample connects: all but the optional ones it leaves out."""
    return [port for port in node.input_ports(p)
            if port in sample.inputs or port not in node.optional_inputs]


def draw_inputs(node, p: dict, sample: Sample, rng, dtype=np.float64) -> dict:
    """port -> array for every input port of the sample."""
    out = {}
    for port in sample_ports(node, p, sample):
        spec = sample.inputs[port]
        if len(spec) == 3 and spec[1] == "int64":
            shape, _, high = spec
            out[port] = rng.integers(0, high, size=shape, dtype=np.int64)
            continue
        shape = tuple(spec)
        if port in sample.probability:
            values = distinct_values(rng, shape, 0.05, 0.95)
        elif port in sample.positive:
            values = distinct_values(rng, shape, 0.5, 2.5)
        else:
            # Distinct magnitudes with random signs: distinct values, none near 0.
            signs = rng.choice([-1.0, 1.0], size=shape)
            values = signs * distinct_values(rng, shape, 0.1, 2.1)
        out[port] = values.astype(dtype)
    return out


def input_types(arrays: dict) -> dict:
    return {port: TensorType(a.shape, INT if a.dtype.kind in "iu" else FLOAT)
            for port, a in arrays.items()}


def draw_weights(node, p: dict, types: dict, rng, dtype=np.float64) -> list:
    """Random normal weights of the declared shapes (declared inits like LayerNorm's ones
    would leave part of the gradient untested)."""
    decls = node.weights(p, types)
    return [(0.5 * rng.standard_normal(w.shape)).astype(dtype) for w in decls.values()]


def compiled(node, p: dict, xs: list, dtype=np.float64, ports=None) -> NodeRun:
    """The node's numpy rule compiled for inputs shaped like xs, given to `ports` (default:
    every input port)."""
    ports = list(node.input_ports(p)) if ports is None else ports
    types = {port: TensorType(x.shape, INT if x.dtype.kind in "iu" else FLOAT)
             for port, x in zip(ports, xs)}
    run = NodeRun(node, p, types, dtype)
    # NodeRun takes every declared port; an optional one left unconnected takes no argument.
    run.ports = [port for port in run.ports if port in types]
    return run


def run_forward(run: NodeRun, xs: list, ws: list, seed: int = 0) -> list:
    """Forward in training mode with a fresh, fixed random stream, so Dropout draws the same
    mask on every call."""
    return run.forward(xs, ws, train=True, rng=np.random.default_rng(seed))


def run_backward(run: NodeRun, xs: list, ws: list, rs: list, need: list, seed: int = 0) -> list:
    """The gradients for upstream gradients rs, through the same forward as run_forward."""
    return run.grads(xs, ws, rs, need, train=True, rng=np.random.default_rng(seed))[1]


def projected_loss(run: NodeRun, xs, ws, rs) -> float:
    ys = run_forward(run, xs, ws)
    return float(sum(np.sum(y * r) for y, r in zip(ys, rs)))


def differentiable(node, port: str, array: np.ndarray) -> bool:
    return array.dtype.kind == "f" and port not in node.nondiff_inputs


def check_gradients(type_name: str, sample: Sample, seed: int = 0) -> None:
    node = nodes.get(type_name)
    p = node.resolve_params(sample.params)
    rng = np.random.default_rng(seed)
    inputs = draw_inputs(node, p, sample, rng)
    types = input_types(inputs)
    ports = list(inputs)
    xs = [inputs[port] for port in ports]
    ws = draw_weights(node, p, types, rng)
    names = ports + list(node.weights(p, types))
    values = xs + ws
    originals = [v.copy() for v in values]

    # Forward agrees with the shape rule.
    inferred = node.infer(p, types)
    run = compiled(node, p, xs, ports=ports)
    ys = run_forward(run, xs, ws)
    out_ports = node.output_ports(p)
    assert len(ys) == len(out_ports)
    for port, y in zip(out_ports, ys):
        assert isinstance(y, np.ndarray), f"{port}: forward gave {type(y).__name__}"
        assert y.shape == inferred[port].shape, f"{port}: {y.shape} vs inferred {inferred[port]}"
        want = np.int64 if inferred[port].dtype == INT else np.float64
        assert y.dtype == want, f"{port}: float64 in gave {y.dtype} out"

    rs = [rng.standard_normal(y.shape) for y in ys]
    rs_copy = [r.copy() for r in rs]
    wanted = [differentiable(node, name, v) if i < len(xs) else True
              for i, (name, v) in enumerate(zip(names, values))]
    grads = run_backward(run, xs, ws, rs, [True] * len(values))
    assert len(grads) == len(values), f"backward gave {len(grads)} gradients for {len(values)}"

    for name, v, g, want in zip(names, values, grads, wanted):
        if not want:
            assert g is None, f"{name}: no gradient flows here, got one"
            continue
        assert g is not None, f"{name}: missing gradient"
        g = np.asarray(g)
        assert g.shape == v.shape, f"{name}: gradient shape {g.shape} vs {v.shape}"
        assert g.dtype == np.float64, f"{name}: gradient dtype {g.dtype}"
        numeric = numeric_gradient(run, xs, ws, rs, v)
        bad = ~np.isclose(g, numeric, rtol=RTOL, atol=ATOL)
        assert not bad.any(), (
            f"{type_name} {sample.note or sample.params}: gradient of {name} differs at "
            f"{np.argwhere(bad)[:3].tolist()}: analytic {g[bad][:3]} vs numeric {numeric[bad][:3]}"
        )

    # Asking for one gradient at a time gives that gradient alone, and the same one.
    for i, want in enumerate(wanted):
        need = [j == i for j in range(len(values))]
        single = run_backward(run, xs, ws, rs, need)
        for j, g in enumerate(single):
            if j != i:
                assert g is None, f"{names[j]}: computed although not needed"
            elif want:
                np.testing.assert_allclose(g, grads[i], rtol=1e-12, atol=1e-12)

    for name, v, orig in zip(names, values, originals):
        assert np.array_equal(v, orig), f"{name} was modified"
    for r, orig in zip(rs, rs_copy):
        assert np.array_equal(r, orig), "backward modified the upstream gradient"


def numeric_gradient(run: NodeRun, xs, ws, rs, target: np.ndarray) -> np.ndarray:
    """Central differences of the projected loss with respect to every element of `target`,
    one of the arrays in xs or ws (perturbed in place, then restored)."""
    grad = np.zeros(target.shape)
    flat, gflat = target.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + EPS
        up = projected_loss(run, xs, ws, rs)
        flat[i] = keep - EPS
        down = projected_loss(run, xs, ws, rs)
        flat[i] = keep
        gflat[i] = (up - down) / (2 * EPS)
    return grad


def check_float32(type_name: str, sample: Sample, seed: int = 0) -> None:
    """float32 in, float32 out: outputs and gradients keep the program's float type."""
    node = nodes.get(type_name)
    p = node.resolve_params(sample.params)
    rng = np.random.default_rng(seed)
    inputs = draw_inputs(node, p, sample, rng, dtype=np.float32)
    types = input_types(inputs)
    xs = list(inputs.values())
    ws = draw_weights(node, p, types, rng, dtype=np.float32)
    run = compiled(node, p, xs, dtype=np.float32, ports=list(inputs))
    ys = run_forward(run, xs, ws)
    inferred = node.infer(p, types)
    for port, y in zip(node.output_ports(p), ys):
        want = np.int64 if inferred[port].dtype == INT else np.float32
        assert isinstance(y, np.ndarray) and y.dtype == want, f"output dtype {y.dtype}"
    rs = [np.ones(y.shape, dtype=np.float32) for y in ys]
    grads = run_backward(run, xs, ws, rs, [True] * (len(xs) + len(ws)))
    for g, v in zip(grads, xs + ws):
        if g is not None:
            assert np.asarray(g).dtype == v.dtype, f"gradient dtype {np.asarray(g).dtype}"
