"""Kernels of pooling over NCHW: MaxPool2D, AvgPool2D, AdaptiveAvgPool2D.

Sizes arrive as the document wrote them, an int or a pair [h, w]. Padding is added as values
that change nothing PyTorch counts: -inf for a max, zeros for a mean (whose divisor stays
kh*kw, PyTorch's count_include_pad=True); gradients are computed on the padded input and
cropped.

Measured choices (float32, one BLAS thread):

- With stride == kernel, MaxPool2D and AvgPool2D read the input as tiles (N, C, Ho, kh, Wo, kw)
  and work on the kh*kw tile offsets as views: the max is kh*kw - 1 np.maximum calls
  (x.max(axis=(3, 5)) takes 8 ms), the arg-max one boolean mask per offset, true at the FIRST
  maximum in row-major order (PyTorch's rule; ties are common after a ReLU). At 64x8x26x26,
  k = 2: forward 0.43 ms, backward 0.25 ms, against 2.75 / 1.09 ms with argmax over the window
  view, which other strides still use (as does a max with a NaN: its gradient goes to the
  first NaN, as in PyTorch).
- AdaptiveAvgPool2D's windows differ in size where the output does not divide the input, but a
  window's mean is the mean over its rows of the means over its columns: two matmuls with
  averaging matrices (oh, H) and (ow, W), whose transposes give the gradient. As two 2-D
  matmuls over every row at 64x256x14x14: 0.43 ms to 1x1 and 2.4 ms to 7x7, against 1.1 / 5.4
  ms for np.matmul broadcast over (N, C), 0.66 / 22 ms for a reshape and mean where the sizes
  divide, and 2.0 / 3.4 ms for einsum.
"""

from __future__ import annotations

import numpy as np

from .conv import as_pair, crop2d, pad2d, window_slice


def conv_windows(x, k, stride):
    """The kh x kw windows of NCHW x, a view shaped (N, C, Ho, Wo, kh, kw)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, k, axis=(2, 3))
    return windows[:, :, ::stride[0], ::stride[1]]


def scatter_windows(g_win, shape, stride):
    """Sum per-window gradients (N, C, Ho, Wo, kh, kw) back onto an NCHW input of `shape`."""
    gx = np.zeros(shape, dtype=g_win.dtype)
    ho, wo, kh, kw = g_win.shape[2:]
    for i in range(kh):
        rows = window_slice(i, stride[0], ho)
        for j in range(kw):
            gx[:, :, rows, window_slice(j, stride[1], wo)] += g_win[:, :, :, :, i, j]
    return gx


def pool_tiles(x, k):
    """For stride == kernel: the kh*kw views (N, C, Ho, Wo) of each offset in a kh x kw tile,
    in row-major order (a remainder of H or W takes no part)."""
    n, c, h, w = x.shape
    kh, kw = k
    ho, wo = h // kh, w // kw
    t = x[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw)
    return [t[:, :, :, a, :, b] for a in range(kh) for b in range(kw)]


def untile(g6, shape):
    """Tile-shaped gradients (N, C, Ho, kh, Wo, kw) onto the full NCHW input of `shape`."""
    n, c, ho, kh, wo, kw = g6.shape
    g = g6.reshape(n, c, ho * kh, wo * kw)
    if g.shape == tuple(shape):
        return g
    gx = np.zeros(shape, dtype=g.dtype)
    gx[:, :, :ho * kh, :wo * kw] = g
    return gx


def pool_padded_shape(shape, padding):
    ph, pw = padding
    return tuple(shape[:2]) + (shape[2] + 2 * ph, shape[3] + 2 * pw)


def max_pool2d(x, kernel, stride, padding):
    """Max over kh x kw windows. Returns (y, where the maximum was): one boolean mask per tile
    offset (stride == kernel) or the index of each window's first maximum."""
    k, stride = as_pair(kernel), as_pair(stride)
    x = pad2d(x, as_pair(padding), -np.inf)
    size = k[0] * k[1]
    if stride == k and size > 1:
        views = pool_tiles(x, k)
        y = np.maximum(views[0], views[1])
        for v in views[2:]:
            np.maximum(y, v, out=y)
        if not np.isnan(y.sum()):
            # First-max masks: equal to the max and not taken by an earlier offset.
            masks = np.empty((size,) + y.shape, dtype=bool)
            np.equal(views[0], y, out=masks[0])
            taken = masks[0].copy()
            free = np.empty(y.shape, dtype=bool)
            for i in range(1, size):
                np.equal(views[i], y, out=masks[i])
                np.logical_not(taken, out=free)
                masks[i] &= free
                if i < size - 1:
                    taken |= masks[i]
            return y, masks
    win = conv_windows(x, k, stride)
    flat = win.reshape(win.shape[:4] + (size,))
    idx = flat.argmax(axis=-1)  # the first maximum in row-major order, as PyTorch
    return np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0], idx


def max_pool2d_backward(shape, where, gy, kernel, stride, padding):
    """The gradient of max_pool2d to its input of `shape`, all of each window's to its first
    maximum."""
    k, stride, padding = as_pair(kernel), as_pair(stride), as_pair(padding)
    full = pool_padded_shape(shape, padding)
    if where.dtype == bool:  # tile masks
        n, c, ho, wo = gy.shape
        g6 = np.empty((n, c, ho, k[0], wo, k[1]), dtype=gy.dtype)
        for i in range(k[0] * k[1]):
            np.multiply(where[i], gy, out=g6[:, :, :, i // k[1], :, i % k[1]])
        return crop2d(untile(g6, full), padding)
    g_win = np.zeros(where.shape + (k[0] * k[1],), dtype=gy.dtype)
    np.put_along_axis(g_win, where[..., None], gy[..., None], axis=-1)
    return crop2d(scatter_windows(g_win.reshape(where.shape + k), full, stride), padding)


def avg_pool2d(x, kernel, stride, padding):
    """Mean over kh x kw windows, padding counted as zeros."""
    k, stride = as_pair(kernel), as_pair(stride)
    x = pad2d(x, as_pair(padding))
    if stride == k and k[1] < 8:
        # Row by row, then the rows: the order numpy's mean over the windows adds in, so the
        # result is bit for bit the same (pairwise summation only starts at 8 terms).
        views = pool_tiles(x, k)
        y = None
        for a in range(k[0]):
            row = views[a * k[1]].copy()
            for v in views[a * k[1] + 1:(a + 1) * k[1]]:
                row += v
            y = row if y is None else np.add(y, row, out=y)
        y /= k[0] * k[1]
        return y
    return conv_windows(x, k, stride).mean(axis=(4, 5))


def avg_pool2d_backward(shape, gy, kernel, stride, padding):
    """The gradient of avg_pool2d: each window's share spread over it."""
    k, stride, padding = as_pair(kernel), as_pair(stride), as_pair(padding)
    full = pool_padded_shape(shape, padding)
    share = gy / (k[0] * k[1])
    if stride == k:
        n, c, ho, wo = share.shape
        g6 = np.empty((n, c, ho, k[0], wo, k[1]), dtype=share.dtype)
        g6[...] = share[:, :, :, None, :, None]
        return crop2d(untile(g6, full), padding)
    g_win = np.broadcast_to(share[..., None, None], share.shape + k)
    return crop2d(scatter_windows(g_win, full, stride), padding)


def adaptive_weights(n, m, dtype):
    """(m, n): row i averages PyTorch's adaptive window i of n positions,
    [floor(i n / m), ceil((i + 1) n / m))."""
    i = np.arange(m)
    start = (i * n) // m
    stop = ((i + 1) * n + m - 1) // m
    j = np.arange(n)
    inside = (j >= start[:, None]) & (j < stop[:, None])
    return (inside / (stop - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d(x, size):
    """PyTorch's adaptive_avg_pool2d to an output of `size` (an int or [oh, ow])."""
    oh, ow = as_pair(size)
    n, c, h, w = x.shape
    ah = adaptive_weights(h, oh, x.dtype)
    aw = adaptive_weights(w, ow, x.dtype)
    # Two 2-D matmuls over all rows at once (np.matmul over (N, C) would make N*C small ones);
    # only the narrowed intermediate is transposed.
    t = (x.reshape(-1, w) @ aw.T).reshape(n * c, h, ow)
    t = t.transpose(0, 2, 1).reshape(-1, h) @ ah.T  # (N*C*ow, oh)
    return np.ascontiguousarray(t.reshape(n, c, ow, oh).transpose(0, 1, 3, 2))


def adaptive_avg_pool2d_backward(shape, gy, size):
    """The gradient of adaptive_avg_pool2d to its input of `shape`."""
    oh, ow = as_pair(size)
    n, c, h, w = shape
    ah = adaptive_weights(h, oh, gy.dtype)
    aw = adaptive_weights(w, ow, gy.dtype)
    t = gy.transpose(0, 1, 3, 2).reshape(-1, oh) @ ah  # (N*C*ow, H)
    t = t.reshape(n * c, ow, h).transpose(0, 2, 1).reshape(-1, ow) @ aw  # (N*C*H, W)
    return t.reshape(shape)
