"""Helpers for engine tests: build documents in code, and check a program's gradients.

`check_gradients` compares `value_and_grad` with central finite differences in float64 on
every parameter (a random subset of the entries of large ones).
"""

from __future__ import annotations

import numpy as np
from wiregrad.core import Document, Edge, Graph, Node


def graph(nodes: list, edges: list) -> Graph:
    """nodes: (id, type, params) or (id, type, params, bodies); edges: ("a.y", "b.x")."""
    g = Graph()
    for spec in nodes:
        node_id, type_name, params = spec[:3]
        bodies = spec[3] if len(spec) > 3 else {}
        g.nodes.append(Node(node_id, type_name, dict(params), bodies=dict(bodies)))
    g.edges = [Edge.parse(a, b) for a, b in edges]
    return g


def document(nodes: list, edges: list, blocks: dict | None = None) -> Document:
    return Document(graph(nodes, edges), "test", blocks or {})


def check_gradients(program, params: dict, feeds: dict, loss: str = "loss", train: bool = False,
                    seed: int = 0, eps: float = 1e-6, max_entries: int = 24, rtol: float = 1e-5,
                    atol: float = 1e-7) -> float:
    """Assert that analytic gradients match central differences; return the loss value."""
    value, grads = program.value_and_grad(params, feeds, loss=loss, train=train, seed=seed)
    assert set(grads) == set(params) - program.buffer_names  # buffers are not trained
    rng = np.random.default_rng(1234)
    for name, p in params.items():
        if name in program.buffer_names:
            continue
        assert grads[name].shape == p.shape, name
        flat = np.arange(p.size)
        if p.size > max_entries:
            flat = rng.choice(p.size, max_entries, replace=False)
        for k in flat:
            idx = np.unravel_index(k, p.shape)
            shifted = {n: a.copy() for n, a in params.items()}
            shifted[name][idx] += eps
            up = program.value_and_grad(shifted, feeds, loss=loss, train=train, seed=seed)[0]
            shifted[name][idx] -= 2 * eps
            down = program.value_and_grad(shifted, feeds, loss=loss, train=train, seed=seed)[0]
            numeric = (up - down) / (2 * eps)
            analytic = grads[name][idx]
            assert abs(numeric - analytic) <= atol + rtol * max(abs(numeric), abs(analytic)) * 10, (
                f"{name}{list(idx)}: analytic {analytic!r}, numeric {numeric!r}")
    return value
