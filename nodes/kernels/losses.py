"""Kernels of the losses: class-id losses (CrossEntropyLoss, NLLLoss) and BCELoss, as PyTorch.

A class-id loss at position i is -sum_c q_ic logp_ic, where q is the effective target: for a
class id t_i, (1 - s) w[t_i] at t_i plus s/C w_c everywhere (s: label smoothing, w: the class
weights, all 1 by default), and nothing at an ignored position. Its gradient to the logits is
softmax_i sum_c q_ic - q_i, so one backward serves every option. q is never built densely: the
picked term and the smoothing term are kept apart.

`reduction` is "mean", "sum" or "none"; a class-id mean divides by the summed weight w[t_i] of
the positions not ignored (their count when unweighted), as PyTorch's nll_loss does.
"""

from __future__ import annotations

import math

import numpy as np

from .basic import log_softmax

# -- class ids ------------------------------------------------------------------------------


def class_positions(target, n_classes, weight, ignore_index, dtype):
    """(ids, per, keep): the flat class ids ready for indexing (an ignored position reads
    class 0), each position's weight w[t_i] (0 where ignored), and whether each position
    counts; per is None when every weight would be 1, keep None when nothing is ignored.

    Ids outside [0, n_classes), other than ignore_index, are refused."""
    ids = target.reshape(-1)
    keep = None
    if ids.size:
        low, high = ids.min(), ids.max()
        # ignore_index is usually -100, below every id: then no position needs a look.
        if low <= ignore_index <= high:
            keep = ids != ignore_index
            ids = np.where(keep, ids, 0)
            low, high = ids.min(), ids.max()
        if low < 0 or high >= n_classes:
            bad = ids[(ids < 0) | (ids >= n_classes)]
            raise ValueError(f"class ids must be in [0, {n_classes}) or be ignore_index "
                             f"{ignore_index}, got {bad[0]}")
    if weight is None and keep is None:
        return ids, None, None
    per = np.ones(len(ids), dtype) if weight is None else np.asarray(weight, dtype)[ids]
    if keep is not None:
        per[~keep] = 0
    return ids, per, keep


def position_scale(gy, reduction, divisor):
    """The upstream gradient of each position's loss: a scalar, or a column for "none"."""
    if reduction == "none":
        return gy.reshape(-1, 1)
    return gy / divisor if reduction == "mean" else gy


def class_loss(logp, target, weight, ignore_index, smoothing, reduction):
    """The loss of log-probabilities logp (..., C) against class ids shaped like logp
    without its last axis."""
    n_classes = logp.shape[-1]
    positions = math.prod(logp.shape[:-1])
    flat = logp.reshape(positions, n_classes)
    ids, per, keep = class_positions(target, n_classes, weight, ignore_index, logp.dtype)
    # One log-probability per position by (row, id) indexing: on small arrays twice as fast
    # as take_along_axis.
    losses = -flat[np.arange(positions), ids]
    if per is not None:
        losses *= per
    if smoothing:
        # A matrix-vector product: with 1s for weights, 2x faster than summing each row.
        if weight is None:
            spread = -(flat @ np.ones(n_classes, logp.dtype))
        else:
            spread = -(flat @ np.asarray(weight, logp.dtype))
        if keep is not None:
            spread *= keep
        losses = (1 - smoothing) * losses + (smoothing / n_classes) * spread
    if reduction == "none":
        return losses.reshape(target.shape)
    total = losses.sum()
    if reduction == "mean":
        total = total / (positions if per is None else per.sum())
    return np.asarray(total, dtype=logp.dtype)


def class_loss_backward(logp, target, weight, ignore_index, smoothing, reduction, gy,
                        softmax):
    """The gradient of class_loss to its logp input (softmax false: NLLLoss), or to the
    logits logp was computed from (softmax true: CrossEntropyLoss)."""
    n_classes = logp.shape[-1]
    positions = math.prod(logp.shape[:-1])
    ids, per, keep = class_positions(target, n_classes, weight, ignore_index, logp.dtype)
    picked = 1 - smoothing if per is None else (1 - smoothing) * per
    if softmax:
        g = np.exp(logp).reshape(positions, n_classes)
        if per is not None:  # else every sum_c q_ic is 1
            # sum_c q_ic: the picked weight plus the smoothing's share of all the weights.
            mean_weight = 1 if weight is None else np.mean(np.asarray(weight, logp.dtype))
            total = picked + smoothing * mean_weight
            if keep is not None:
                total *= keep
            g *= total[:, None]
    else:
        g = np.zeros((positions, n_classes), logp.dtype)
    g[np.arange(positions), ids] -= picked
    if smoothing:
        share = np.full(n_classes, smoothing / n_classes, logp.dtype)
        if weight is not None:
            share *= np.asarray(weight, logp.dtype)
        g -= share
        if keep is not None:
            g[~keep] = 0
    divisor = positions if per is None else per.sum()
    if reduction == "mean" and not divisor:
        g.fill(0)  # a mean over nothing (every target ignored): no gradient, as PyTorch
    else:
        g *= position_scale(gy, reduction, divisor)
    return g.reshape(logp.shape)


def cross_entropy_loss(logits, target, weight, ignore_index, smoothing, reduction):
    """Softmax cross-entropy, classes on the last axis, target class ids or probabilities
    (ignore_index then does not apply; a mean is over positions). Returns (loss,
    log-probabilities)."""
    logp = log_softmax(logits, -1)
    if target.dtype.kind in "iu":
        return class_loss(logp, target, weight, ignore_index, smoothing, reduction), logp
    q = soft_targets(target, weight, smoothing)
    if reduction == "none":
        return -(q * logp).sum(axis=-1), logp
    total = -(q * logp).sum()
    if reduction == "mean":
        total = total / math.prod(logits.shape[:-1])
    return np.asarray(total, dtype=logits.dtype), logp


def soft_targets(target, weight, smoothing):
    """Probability targets as PyTorch weighs them: t (1 - s) + s / C, times the class weights."""
    q = target
    if smoothing:
        q = q * (1 - smoothing) + smoothing / target.shape[-1]
    if weight is not None:
        q = q * np.asarray(weight, target.dtype)
    return q


def cross_entropy_loss_backward(logp, target, weight, ignore_index, smoothing, reduction, gy):
    """Gradients of cross_entropy_loss to the logits and (probabilities only) the target."""
    if target.dtype.kind in "iu":
        g = class_loss_backward(logp, target, weight, ignore_index, smoothing, reduction, gy,
                                True)
        return g, None
    q = soft_targets(target, weight, smoothing)
    if reduction == "none":
        scale = gy[..., None]
    else:
        scale = position_scale(gy, reduction, math.prod(logp.shape[:-1]))
    g_logits = np.exp(logp)  # d/dz of -sum(q * log_softmax(z)) = softmax(z) * sum(q) - q
    g_logits *= q.sum(axis=-1, keepdims=True)
    g_logits -= q
    g_logits *= scale
    g_target = -logp * scale
    if smoothing:
        g_target *= 1 - smoothing
    if weight is not None:
        g_target *= np.asarray(weight, logp.dtype)
    return g_logits, g_target


# -- probabilities --------------------------------------------------------------------------


def clamped_logs(p):
    """log(p) and log(1 - p), each at least -100, as PyTorch's binary_cross_entropy."""
    return np.maximum(np.log(p), -100), np.maximum(np.log1p(-p), -100)


def binary_cross_entropy(pred, target):
    """Per element -(t log p + (1 - t) log(1 - p)); p and t must lie in [0, 1]."""
    for name, v in (("pred", pred), ("target", target)):
        if v.size and (v.min() < 0 or v.max() > 1):
            raise ValueError(f"{name} must hold probabilities in [0, 1], got values from "
                             f"{v.min():.4g} to {v.max():.4g} (BCEWithLogitsLoss takes logits)")
    log_p, log_q = clamped_logs(pred)
    return (target - 1) * log_q - target * log_p


def binary_cross_entropy_grad(pred, target):
    """d/dp of binary_cross_entropy as PyTorch computes it: (p - t) / max(p (1 - p), 1e-12)."""
    return (pred - target) / np.maximum((1 - pred) * pred, 1e-12)


def xlogx(t):
    """t log t, 0 at t = 0 (PyTorch's xlogy(t, t))."""
    return t * np.log(np.where(t == 0, 1, t))
