"""Kernels of control flow: per-sample while loops, route branches, tree loops."""

from __future__ import annotations

import numpy as np

# -- control flow ---------------------------------------------------------------------------


def single_value(x, message):
    """The one number x holds, or a ValueError: `message` with {shape} filled in."""
    if np.size(x) != 1:
        raise ValueError(message.format(shape=np.shape(x)))
    return float(np.reshape(x, ()))


def still_going(cont, n):
    """Which of the n running samples go on: those whose own continue value is > 0."""
    flags = np.reshape(cont, -1)
    if flags.size != n:
        raise ValueError(f": the continue output must hold one value per sample, {n} here; "
                         f"got shape {np.shape(cont)}")
    return flags > 0


def stack_rows(steps, rows, batch):
    """A per-sample loop's stacked output (batch, steps, ...): step t's values at the rows
    that ran it, zeros after a sample stopped."""
    first = steps[0]
    out = np.zeros((batch, len(steps)) + first.shape[1:], dtype=first.dtype)
    for t, (ran, value) in enumerate(zip(rows, steps)):
        out[ran, t] = value
    return out


def route_rows(cond):
    """A route branch's split: (take then, the rows that go to then, those that go to else)."""
    take = np.reshape(cond, (np.shape(cond)[0], -1))[:, 0] > 0
    return take, np.flatnonzero(take), np.flatnonzero(~take)


def put_rows(out, value, rows, batch):
    """Write a side's values at its rows of the whole batch's output (made on first use)."""
    if out is None:
        out = np.zeros((batch,) + np.shape(value)[1:], dtype=value.dtype)
    out[rows] = value
    return out


def tree_levels(children, nodes):
    """The (sample, node) pairs of each height of a batch of trees, leaves (height 0) first.
    children: int64 (B, N, K), the K child indices of each node, -1 for none; a child comes
    before its parent. `nodes` is the N the tree's data have."""
    children = np.asarray(children)
    batch, n, k = children.shape
    if n != nodes:
        raise ValueError(f": the children input describes {n} nodes a tree, but the sequence "
                         f"inputs have {nodes}")
    parent = np.arange(n)[None, :, None]
    bad = (children < -1) | (children >= parent)
    if bad.any():
        b, node, j = (int(i[0]) for i in np.nonzero(bad))
        raise ValueError(f": node {node} of sample {b} has child {int(children[b, node, j])}; a "
                         f"child is a node before its parent (0 .. {node - 1}), or -1 for none")
    height = np.zeros((batch, n), dtype=np.int64)
    rows = np.arange(batch)[:, None]
    for node in range(n):
        kids = children[:, node]
        below = np.where(kids >= 0, height[rows, np.maximum(kids, 0)] + 1, 0)
        height[:, node] = below.max(axis=1) if k else 0
    return [np.nonzero(height == h) for h in range(int(height.max(initial=-1)) + 1)]


def node_rows(x, b, n, axis):
    """Each (sample b, node n)'s slice of x, whose nodes are along `axis`."""
    return np.moveaxis(x, axis, 1)[b, n] if axis != 1 else x[b, n]


def children_values(values, children, b, n, shape, dtype):
    """The values (B, N, ...) at the K children of each (sample b, node n): (R, K, ...), zeros
    where a node has no such child (all zeros before any node has a value: leaves)."""
    kids = children[b, n]  # (R, K)
    if values is None:
        return np.zeros(kids.shape + tuple(shape[1:]), dtype=dtype)
    out = values[b[:, None], np.maximum(kids, 0)]
    out[kids < 0] = 0
    return out


def children_backward(g_values, g_children, children, b, n):
    """Add the gradient of children_values into the gradient of the values (B, N, ...)."""
    kids = children[b, n]
    real = kids >= 0
    rows = np.broadcast_to(b[:, None], kids.shape)
    np.add.at(g_values, (rows[real], kids[real]), g_children[real])


def put_nodes(out, value, b, n, batch, nodes):
    """Write the values of some (sample, node) pairs into the whole (B, N, ...) (made on first
    use)."""
    if out is None:
        out = np.zeros((batch, nodes) + np.shape(value)[1:], dtype=value.dtype)
    out[b, n] = value
    return out
