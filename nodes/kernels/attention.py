"""Kernels of attention: PyTorch's nn.MultiheadAttention (batch first, no dropout), output 0.

Heads are views, never copies: a projection (B, L, E) read as (B, L, heads, d) and transposed
to (B, heads, L, d) keeps unit strides along d, which BLAS takes as they are, so each head's
scores and weighted values are one batched matmul. When query, key and value are one array
(self-attention) the three projections are one matmul against the whole in_proj_weight, as
PyTorch does; when key and value are one array (attending to a memory), theirs are one.

The scores are kept keys first, (B, heads, S, L), so that the softmax's reductions run down
columns: numpy reduces a short last axis one row at a time (a max over the last axis of
(32, 4, 32, 32) float32 takes 215 us), while halving down axis -2 takes 32 us and a sum as a
row of ones times each matrix 10 us. That took the attention benchmark (bench/cells.py, one
BLAS thread) from 2.0 to 1.5 ms a training step.

A query row with no allowed key (its mask row all <= 0) attends to nothing: its attention
output is zero, so y there is out_proj.bias, and no gradient flows back through that row's
scores. PyTorch's scaled-dot-product path gives the same; its need_weights path gives NaN.
"""

from __future__ import annotations

import math

import numpy as np


def attention_heads(t, num_heads):
    """(B, n, E) as (B, heads, n, d), a view."""
    b, n, e = t.shape
    return t.reshape(b, n, num_heads, e // num_heads).transpose(0, 2, 1, 3)


def attention_merge(t):
    """(B, heads, n, d) back to (B, n, E), contiguous."""
    b, heads, n, d = t.shape
    return t.transpose(0, 2, 1, 3).reshape(b, n, heads * d)


def rows_times(x, w):
    """x (B, n, in) @ w (in, out) as one matmul over all B * n rows (a 3-D matmul would make
    one call per sample)."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(x.shape[:-1] + (w.shape[-1],))


def attention_projections(query, key, value, w_in, b_in):
    """query, key and value times their thirds of in_proj_weight (plus in_proj_bias)."""
    e = w_in.shape[1]
    if query is key and key is value:
        qkv = rows_times(query, w_in.T)
        if b_in is not None:
            qkv += b_in
        return qkv[..., :e], qkv[..., e:2 * e], qkv[..., 2 * e:]
    q = rows_times(query, w_in[:e].T)
    if key is value:
        kv = rows_times(key, w_in[e:].T)
        if b_in is not None:
            q += b_in[:e]
            kv += b_in[e:]
        return q, kv[..., :e], kv[..., e:]
    k, v = rows_times(key, w_in[e:2 * e].T), rows_times(value, w_in[2 * e:].T)
    if b_in is not None:
        q += b_in[:e]
        k += b_in[e:2 * e]
        v += b_in[2 * e:]
    return q, k, v


def max_over_keys(scores):
    """The maximum over axis -2 of (B, heads, S, L), keeping it, by halving: each step is
    one np.maximum of two contiguous halves (32 us at (32, 4, 32, 32) float32, where
    scores.max(axis=-2) takes 100 us and a max over the last axis 215 us)."""
    n = scores.shape[-2]
    top = scores
    while n > 1:
        half = n // 2
        folded = np.maximum(top[..., :half, :], top[..., half:2 * half, :])
        if n % 2:
            np.maximum(folded[..., :1, :], top[..., 2 * half:, :], out=folded[..., :1, :])
        top, n = folded, half
    return top


def sum_over_keys(t):
    """The sum over axis -2 of (B, heads, S, L), kept: a row of ones times each matrix
    (10 us at (32, 4, 32, 32) float32, against 60 us for t.sum(axis=-2))."""
    return np.ones((1, t.shape[-2]), dtype=t.dtype) @ t


def masked_softmax(scores, mask):
    """Softmax over the keys of scores (B, heads, S, L), each query a column, in place,
    where the float mask ((L, S) or (B, L, S)) is > 0; a query with no such key gets
    all zeros."""
    if mask is not None:
        allowed = np.swapaxes(mask > 0, -1, -2)
        if allowed.ndim == 3:
            allowed = allowed[:, None]
        np.copyto(scores, -np.inf, where=~allowed)
    top = max_over_keys(scores)
    if mask is not None:
        top[top == -np.inf] = 0  # a query with no allowed key: exp gives zeros, not NaN
    scores -= top
    np.exp(scores, out=scores)
    total = sum_over_keys(scores)
    if mask is not None:
        total[total == 0] = 1
    scores /= total
    return scores


def attention(query, key, value, w_in, b_in, w_out, b_out, num_heads, mask):
    """Multi-head attention, batch first: query (B, L, E), key and value (B, S, E).

    Returns (y, q, k, v, weights, merged), what the backward reads: the heads of the scaled
    query projection (B, heads, L, d), of the key's and value's (B, heads, S, d), the
    attention weights with the keys first (B, heads, S, L: the softmax runs down columns,
    whose reductions are the fast ones) and the heads' outputs side by side (B, L, E)."""
    q, k, v = attention_projections(query, key, value, w_in, b_in)
    d = w_in.shape[1] // num_heads
    q = attention_heads(q, num_heads) * (1.0 / math.sqrt(d))
    k, v = attention_heads(k, num_heads), attention_heads(v, num_heads)
    weights = masked_softmax(k @ q.transpose(0, 1, 3, 2), mask)
    merged = attention_merge(weights.transpose(0, 1, 3, 2) @ v)
    y = rows_times(merged, w_out.T)
    if b_out is not None:
        y += b_out
    return y, q, k, v, weights, merged


def attention_backward(query, key, value, w_in, w_out, q, k, v, weights, merged, gy,
                       need):
    """Gradients of `attention` for the output gradient gy.

    `need` is a tuple of flags for (query, key, value, in_proj_weight, in_proj_bias,
    out_proj.weight, out_proj.bias); returns the gradients in that order, None where not
    needed."""
    n_q, n_k, n_v, n_w_in, n_b_in, n_w_out, n_b_out = need
    e = w_in.shape[1]
    gy_rows = gy.reshape(-1, e)
    g_w_out = gy_rows.T @ merged.reshape(-1, e) if n_w_out else None
    g_b_out = gy_rows.sum(axis=0) if n_b_out else None
    g_heads = attention_heads(rows_times(gy, w_out), q.shape[1])
    g_v = weights @ g_heads
    # Softmax backward down each column, in place: w * (g - sum(g * w)).
    g_scores = v @ g_heads.transpose(0, 1, 3, 2)
    g_scores -= sum_over_keys(g_scores * weights)
    g_scores *= weights
    # scores = k @ q.T with q already scaled by 1 / sqrt(d): the query's gradient takes the
    # scale once more, the key's none.
    g_q = g_scores.transpose(0, 1, 3, 2) @ k
    g_q *= 1.0 / math.sqrt(q.shape[-1])
    g_k = g_scores @ q
    g_q, g_k, g_v = attention_merge(g_q), attention_merge(g_k), attention_merge(g_v)
    sides = ((query, g_q, w_in[:e]), (key, g_k, w_in[e:2 * e]), (value, g_v, w_in[2 * e:]))
    g_inputs = [rows_times(g, w) if flag else None
                for (_, g, w), flag in zip(sides, (n_q, n_k, n_v))]
    g_w_in = None
    if n_w_in:
        g_w_in = np.empty_like(w_in)
        for part, (x, g, _) in enumerate(sides):
            rows = slice(part * e, (part + 1) * e)
            np.matmul(g.reshape(-1, e).T, x.reshape(-1, e), out=g_w_in[rows])
    g_b_in = None
    if n_b_in:
        g_b_in = np.concatenate([g.reshape(-1, e).sum(axis=0) for _, g, _ in sides])
    return (*g_inputs, g_w_in, g_b_in, g_w_out, g_b_out)
