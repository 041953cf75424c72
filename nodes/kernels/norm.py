"""Kernels of normalisation (BatchNorm), as PyTorch computes it."""

from __future__ import annotations

import numpy as np


def batch_norm(x, weight, bias, running_mean, running_var, momentum, eps, train):
    """BatchNorm over axis 1 (channels) of (B, C), (B, C, L) or (B, C, H, W): returns
    (y, xhat, rstd), xhat and rstd kept for the gradient.

    Training normalises by the batch's own statistics and moves the running ones towards them
    in place (the variance unbiased, as PyTorch keeps it); otherwise the running statistics
    normalise and nothing changes."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if train:
        axes = (0,) + tuple(range(2, x.ndim))
        n = x.size // x.shape[1]
        if n < 2:
            raise ValueError(f"expected more than 1 value per channel when training, got input "
                             f"of shape {tuple(x.shape)} (PyTorch's rule: train with batches "
                             "of 2 or more, or use LayerNorm)")
        mean = x.mean(axis=axes)
        xc = x - mean.reshape(shape)
        var = np.square(xc).mean(axis=axes)
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean
        running_var *= 1.0 - momentum
        running_var += (momentum * n / (n - 1)) * var
    else:
        xc = x - running_mean.reshape(shape)
        var = running_var
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    xhat = xc * rstd.reshape(shape)
    y = xhat * weight.reshape(shape)
    y += bias.reshape(shape)
    return y, xhat, rstd


def batch_norm_backward(gy, xhat, rstd, weight, train, need_x):
    """(gx or None, gweight, gbias) of batch_norm. In training the batch statistics depend on
    every sample of the batch, so each sample's gradient takes the others' into account."""
    axes = (0,) + tuple(range(2, gy.ndim))
    shape = (1, -1) + (1,) * (gy.ndim - 2)
    gbias = gy.sum(axis=axes)
    gweight = (gy * xhat).sum(axis=axes)
    gx = None
    if need_x:
        scale = (weight * rstd).reshape(shape)
        if train:
            n = gy.size // gy.shape[1]
            gx = scale * (gy - (gbias / n).reshape(shape) - xhat * (gweight / n).reshape(shape))
        else:
            gx = gy * scale
    return gx, gweight, gbias
