"""Kernels of convolution and pooling over NCHW.

Measured choices (float32, one BLAS thread, the convnet of bench.engine: batch 64,
1x28x28 -> 8 channels, 8x13x13 -> 16, 3x3 kernels; layer 1 / layer 2):

- Conv2D copies the k x k windows into one contiguous im2col buffer (N, C*k*k, Ho*Wo), a strided
  slice copy per kernel offset, and contracts it with the weight by one batched matmul whose
  result is already NCHW. A bias rides in that matmul as one more column of the weight against
  a row of ones. Forward 0.20 / 0.47 ms, against 5.8 / 1.2 ms for np.tensordot over the strided
  window view and 1.2 / 0.36 ms for einsum on the columns. The weight and bias gradients are
  one matmul against the kept columns (0.08 / 0.24 ms, against 1.1 / 1.3 ms for tensordot); the
  input gradient for stride 1 is done on whole rows (0.62 ms against 0.98 ms by blocks and
  2.9 ms for tensordot and a window scatter).
- MaxPool2D and AvgPool2D with stride == kernel read the input as tiles (N, C, Ho, k, Wo, k)
  and work on the k*k tile offsets as views: the max is k*k - 1 np.maximum calls
  (x.max(axis=(3, 5)) takes 8 ms), the arg-max one boolean mask per offset, true at the FIRST
  maximum in row-major order (PyTorch's rule; ties are common after a ReLU). At 64x8x26x26,
  k = 2: forward 0.43 ms, backward 0.25 ms, against 2.75 / 1.09 ms with argmax over the window
  view, which other strides still use (as does a max with a NaN: its gradient goes to the
  first NaN, as in PyTorch).
"""

from __future__ import annotations

import numpy as np

# -- convolution and pooling over NCHW --------------------------------------------------------


def window_slice(i, stride, n_out):
    """The input positions that kernel offset i touches, one per output position."""
    return slice(i, i + stride * (n_out - 1) + 1, stride)


def conv_windows(x, k, stride):
    """The k x k windows of NCHW x, a view shaped (N, C, Ho, Wo, k, k)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return windows[:, :, ::stride, ::stride]


def scatter_windows(g_win, shape, k, stride):
    """Sum per-window gradients (N, C, Ho, Wo, k, k) back onto an NCHW input of `shape`."""
    gx = np.zeros(shape, dtype=g_win.dtype)
    ho, wo = g_win.shape[2:4]
    for i in range(k):
        rows = window_slice(i, stride, ho)
        for j in range(k):
            gx[:, :, rows, window_slice(j, stride, wo)] += g_win[:, :, :, :, i, j]
    return gx


def im2col(x, k, stride, ho, wo, ones):
    """The k x k windows of NCHW x copied into contiguous columns (N, C*k*k, Ho*Wo), rows in
    (c, i, j) order; with `ones`, one more row of ones (for a bias folded into the weight).
    One strided copy per kernel offset, each a whole (N, C, Ho, Wo) block."""
    n, c = x.shape[:2]
    ckk = c * k * k
    buf = np.empty((n, ckk + ones, ho * wo), dtype=x.dtype)
    cols = buf[:, :ckk].reshape(n, c, k, k, ho, wo)  # a view: buf[:, :ckk] is contiguous per row
    for i in range(k):
        rows = window_slice(i, stride, ho)
        for j in range(k):
            cols[:, :, i, j] = x[:, :, rows, window_slice(j, stride, wo)]
    if ones:
        buf[:, ckk] = 1
    return buf


def col2im(g_cols, shape, k, stride):
    """Sum column gradients (N, C, k, k, Ho, Wo) back onto an NCHW input of `shape`."""
    gx = np.zeros(shape, dtype=g_cols.dtype)
    ho, wo = g_cols.shape[-2:]
    for i in range(k):
        rows = window_slice(i, stride, ho)
        for j in range(k):
            gx[:, :, rows, window_slice(j, stride, wo)] += g_cols[:, :, i, j]
    return gx


def conv_input_grad_rows(gy, weight, shape):
    """Conv2D's input gradient for stride 1, its col2im done on whole rows: gy widened from Wo
    to the input's W columns puts kernel offset (i, j) of every output position at one shift
    i*W + j of the flattened input, so the scatter is k*k adds of runs Ho*W long."""
    n, o, ho, wo = gy.shape
    c, k = weight.shape[1], weight.shape[2]
    h, wd = shape[2], shape[3]
    wide = np.zeros((n, o, ho, wd), dtype=gy.dtype)
    wide[..., :wo] = gy
    g = np.matmul(weight.reshape(o, c * k * k).T, wide.reshape(n, o, ho * wd))
    g = g.reshape(n, c, k * k, ho * wd)
    gx = np.zeros((n, c, h * wd), dtype=gy.dtype)
    for i in range(k):
        for j in range(k):
            s = i * wd + j
            run = min(ho * wd, h * wd - s)  # what runs past the end is a widened zero column
            gx[:, :, s:s + run] += g[:, :, i * k + j, :run]
    return gx.reshape(shape)


def conv2d(x, weight, bias, stride, padding):
    """PyTorch's conv2d (cross-correlation) on NCHW x. Returns (y, the columns backward needs,
    the padded input's shape)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, wd = x.shape
    o, k = weight.shape[0], weight.shape[2]
    ckk = c * k * k
    ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
    cols = im2col(x, k, stride, ho, wo, bias is not None)
    if bias is None:
        wb = weight.reshape(o, ckk)
    else:  # [w | b] @ [cols; 1]: the bias rides in the matmul, and its gradient too
        wb = np.empty((o, ckk + 1), dtype=weight.dtype)
        wb[:, :ckk] = weight.reshape(o, ckk)
        wb[:, ckk] = bias
    y = np.matmul(wb, cols)  # (N, O, Ho*Wo): already NCHW
    return y.reshape(n, o, ho, wo), cols, x.shape


def conv2d_backward(cols, shape, weight, gy, stride, padding, need_x):
    """Gradients of conv2d to x (None unless need_x), the weight and the bias (None without
    one), from the columns and padded shape conv2d returned."""
    k = weight.shape[2]
    n, o = gy.shape[:2]
    gy3 = gy.reshape(n, o, gy.shape[2] * gy.shape[3])
    gx = None
    if need_x:
        if stride == 1:
            gx = conv_input_grad_rows(gy, weight, shape)
        else:
            g_cols = np.matmul(weight.reshape(o, -1).T, gy3)  # (N, C*k*k, Ho*Wo)
            gx = col2im(g_cols.reshape((n, shape[1], k, k) + gy.shape[2:]), shape, k, stride)
        if padding:
            gx = gx[:, :, padding:-padding, padding:-padding]
    g = np.matmul(gy3, cols.transpose(0, 2, 1)).sum(axis=0)  # (O, C*k*k [+ 1])
    gw = g[:, :weight[0].size].reshape(weight.shape)
    gb = g[:, -1] if g.shape[1] > weight[0].size else None
    return gx, gw, gb


def pool_tiles(x, k):
    """For stride == kernel: the k*k views (N, C, Ho, Wo) of each offset in a k x k tile, in
    row-major order (a remainder of H or W takes no part)."""
    n, c, h, w = x.shape
    ho, wo = h // k, w // k
    t = x[:, :, :ho * k, :wo * k].reshape(n, c, ho, k, wo, k)
    return [t[:, :, :, a, :, b] for a in range(k) for b in range(k)]


def untile(g6, shape):
    """Tile-shaped gradients (N, C, Ho, k, Wo, k) onto the full NCHW input of `shape`."""
    n, c, ho, k, wo, _ = g6.shape
    g = g6.reshape(n, c, ho * k, wo * k)
    if g.shape == tuple(shape):
        return g
    gx = np.zeros(shape, dtype=g.dtype)
    gx[:, :, :ho * k, :wo * k] = g
    return gx


def max_pool2d(x, k, stride):
    """Max over k x k windows. Returns (y, where the maximum was): one boolean mask per tile
    offset (stride == kernel) or the index of each window's first maximum."""
    if stride == k and k > 1:
        views = pool_tiles(x, k)
        y = np.maximum(views[0], views[1])
        for v in views[2:]:
            np.maximum(y, v, out=y)
        if not np.isnan(y.sum()):
            # First-max masks: equal to the max and not taken by an earlier offset.
            masks = np.empty((k * k,) + y.shape, dtype=bool)
            np.equal(views[0], y, out=masks[0])
            taken = masks[0].copy()
            free = np.empty(y.shape, dtype=bool)
            for i in range(1, k * k):
                np.equal(views[i], y, out=masks[i])
                np.logical_not(taken, out=free)
                masks[i] &= free
                if i < k * k - 1:
                    taken |= masks[i]
            return y, masks
    win = conv_windows(x, k, stride)
    flat = win.reshape(win.shape[:4] + (k * k,))
    idx = flat.argmax(axis=-1)  # the first maximum in row-major order, as PyTorch
    return np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0], idx


def max_pool2d_backward(shape, where, gy, k, stride):
    """The gradient of max_pool2d, all of each window's to its first maximum."""
    if where.dtype == bool:  # tile masks
        n, c, ho, wo = gy.shape
        g6 = np.empty((n, c, ho, k, wo, k), dtype=gy.dtype)
        for i in range(k * k):
            np.multiply(where[i], gy, out=g6[:, :, :, i // k, :, i % k])
        return untile(g6, shape)
    g_win = np.zeros(where.shape + (k * k,), dtype=gy.dtype)
    np.put_along_axis(g_win, where[..., None], gy[..., None], axis=-1)
    return scatter_windows(g_win.reshape(where.shape + (k, k)), shape, k, stride)


def avg_pool2d(x, k, stride):
    """Mean over k x k windows."""
    if stride == k and k < 8:
        # Row by row, then the rows: the order numpy's mean over the windows adds in, so the
        # result is bit for bit the same (pairwise summation only starts at 8 terms).
        views = pool_tiles(x, k)
        y = None
        for a in range(k):
            row = views[a * k].copy()
            for v in views[a * k + 1:(a + 1) * k]:
                row += v
            y = row if y is None else np.add(y, row, out=y)
        y /= k * k
        return y
    return conv_windows(x, k, stride).mean(axis=(4, 5))


def avg_pool2d_backward(shape, gy, k, stride):
    """The gradient of avg_pool2d: each window's share spread over it."""
    share = gy / (k * k)
    if stride == k:
        n, c, ho, wo = share.shape
        g6 = np.empty((n, c, ho, k, wo, k), dtype=share.dtype)
        g6[...] = share[:, :, :, None, :, None]
        return untile(g6, shape)
    g_win = np.broadcast_to(share[..., None, None], share.shape + (k, k))
    return scatter_windows(g_win, shape, k, stride)
