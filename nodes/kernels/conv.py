"""Kernels of convolution over NCL and NCHW: Conv1D, Conv2D, ConvTranspose2D.

Sizes (kernel, stride, padding, dilation) arrive as the document wrote them, an int or a pair
[h, w]; `as_pair` reads either.

Measured choices (float32, one BLAS thread, the convnet of bench.engine: batch 64,
1x28x28 -> 8 channels, 8x13x13 -> 16, 3x3 kernels; layer 1 / layer 2):

- Conv2D copies the kh x kw windows into one contiguous im2col buffer (N, G, Cg*kh*kw, Ho*Wo),
  a strided slice copy per kernel offset (a dilation only moves where each offset's slice
  starts), and contracts it with the weight by one batched matmul, over the groups as well as
  the samples, whose result is already NCHW. A bias rides in that matmul as one more column of
  each group's weight against a row of ones. Forward 0.20 / 0.47 ms, against 5.8 / 1.2 ms for
  np.tensordot over the strided window view and 1.2 / 0.36 ms for einsum on the columns. The
  weight and bias gradients are one matmul against the kept columns (0.08 / 0.24 ms, against
  1.1 / 1.3 ms for tensordot); the input gradient for stride 1 is done on whole rows (0.62 ms
  against 0.98 ms by blocks and 2.9 ms for tensordot and a window scatter).
- Groups cost what im2col costs: at 64x32x28x28, 3x3, forward and backward take 46 ms
  depthwise (groups 32; PyTorch's direct kernel 4.7 ms), 57 ms with dilation 2 and 52 ms
  plain (PyTorch 15 / 26 ms). A direct sum over the 9 offsets would bring depthwise to about
  22 ms (measured, not written: a second code path for one layout).
- Conv1D is Conv2D with H = 1 (views, no copies): the same kernels, one offset per tap.
- ConvTranspose2D's forward is Conv2D's input gradient (the same rows or col2im code) and its
  backward a Conv2D forward: no kernel of its own beyond the cropping of the padding.
"""

from __future__ import annotations

import numpy as np


def as_pair(v):
    """An int or an [h, w] pair as (h, w)."""
    if isinstance(v, (list, tuple)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def window_slice(i, stride, n_out):
    """The input positions that kernel offset i (dilation included) touches, one per output
    position."""
    return slice(i, i + stride * (n_out - 1) + 1, stride)


def pad2d(x, padding, value=0.0):
    """NCHW x with padding (h, w) rows and columns of `value` on every side (x itself if none)."""
    ph, pw = padding
    if not ph and not pw:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def crop2d(g, padding):
    """The inverse of pad2d, for gradients: the rows and columns padding added, cut away."""
    ph, pw = padding
    h, w = g.shape[2:]
    return g[:, :, ph:h - ph, pw:w - pw] if ph or pw else g


def im2col(x, k, stride, dilation, groups, ho, wo, ones):
    """The kh x kw windows of NCHW x copied into contiguous columns (N, G, Cg*kh*kw, Ho*Wo),
    rows in (c, i, j) order within a group; with `ones`, one more row of ones per group (for a
    bias folded into the weight). One strided copy per kernel offset, each a whole
    (N, C, Ho, Wo) block."""
    n, c = x.shape[:2]
    kh, kw = k
    cg = c // groups
    rows = cg * kh * kw
    buf = np.empty((n, groups, rows + ones, ho * wo), dtype=x.dtype)
    # A view: splitting the axes of a slice that is contiguous along them.
    cols = buf[:, :, :rows].reshape(n, groups, cg, kh, kw, ho, wo)
    for i in range(kh):
        r = window_slice(i * dilation[0], stride[0], ho)
        for j in range(kw):
            s = window_slice(j * dilation[1], stride[1], wo)
            cols[:, :, :, i, j] = x[:, :, r, s].reshape(n, groups, cg, ho, wo)
    if ones:
        buf[:, :, rows] = 1
    return buf


def col2im(g_cols, shape, stride, dilation):
    """Sum column gradients (N, C, kh, kw, Ho, Wo) back onto an NCHW input of `shape`."""
    gx = np.zeros(shape, dtype=g_cols.dtype)
    kh, kw, ho, wo = g_cols.shape[2:]
    for i in range(kh):
        r = window_slice(i * dilation[0], stride[0], ho)
        for j in range(kw):
            gx[:, :, r, window_slice(j * dilation[1], stride[1], wo)] += g_cols[:, :, i, j]
    return gx


def group_weight_t(weight, groups):
    """Each group's weight, transposed for the input gradient: (G, Cg*kh*kw, Og), a view."""
    o = weight.shape[0]
    return weight.reshape(groups, o // groups, -1).transpose(0, 2, 1)


def conv_input_grad_rows(gy, weight, shape, dilation, groups):
    """Conv2D's input gradient for stride 1, its col2im done on whole rows: gy widened from Wo
    to the input's W columns puts kernel offset (i, j) of every output position at one shift
    i*dh*W + j*dw of the flattened input, so the scatter is kh*kw adds of runs Ho*W long."""
    n, o, ho, wo = gy.shape
    kh, kw = weight.shape[2:]
    h, wd = shape[2], shape[3]
    wide = np.zeros((n, groups, o // groups, ho * wd), dtype=gy.dtype)
    wide.reshape(n, o, ho, wd)[..., :wo] = gy
    g = np.matmul(group_weight_t(weight, groups), wide)  # (N, G, Cg*kh*kw, Ho*W)
    g = g.reshape(n, shape[1], kh * kw, ho * wd)
    gx = np.zeros((n, shape[1], h * wd), dtype=gy.dtype)
    for i in range(kh):
        for j in range(kw):
            s = i * dilation[0] * wd + j * dilation[1]
            run = min(ho * wd, h * wd - s)  # what runs past the end is a widened zero column
            gx[:, :, s:s + run] += g[:, :, i * kw + j, :run]
    return gx.reshape(shape)


def conv_input_grad(gy, weight, shape, stride, dilation, groups):
    """The gradient of a convolution's (padded) input of `shape`, from its output gradient."""
    if stride == (1, 1):
        return conv_input_grad_rows(gy, weight, shape, dilation, groups)
    n, o, ho, wo = gy.shape
    gy4 = gy.reshape(n, groups, o // groups, ho * wo)
    g_cols = np.matmul(group_weight_t(weight, groups), gy4)  # (N, G, Cg*kh*kw, Ho*Wo)
    g_cols = g_cols.reshape((n, shape[1]) + weight.shape[2:] + (ho, wo))
    return col2im(g_cols, shape, stride, dilation)


def conv2d(x, weight, bias, stride, padding, dilation, groups):
    """PyTorch's conv2d (cross-correlation) on NCHW x. Returns (y, the columns backward needs,
    the padded input's shape)."""
    stride, dilation = as_pair(stride), as_pair(dilation)
    x = pad2d(x, as_pair(padding))
    n, _, h, wd = x.shape
    o, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    og, rows = o // groups, weight[0].size
    cols = im2col(x, (kh, kw), stride, dilation, groups, ho, wo, bias is not None)
    if bias is None:
        wb = weight.reshape(groups, og, rows)
    else:  # [w | b] @ [cols; 1]: the bias rides in the matmul, and its gradient too
        wb = np.empty((groups, og, rows + 1), dtype=weight.dtype)
        wb[:, :, :rows] = weight.reshape(groups, og, rows)
        wb[:, :, rows] = bias.reshape(groups, og)
    y = np.matmul(wb, cols)  # (N, G, Og, Ho*Wo): already NCHW
    return y.reshape(n, o, ho, wo), cols, x.shape


def conv2d_backward(cols, shape, weight, gy, stride, padding, dilation, groups, need_x):
    """Gradients of conv2d to x (None unless need_x), the weight and the bias (None without
    one), from the columns and padded shape conv2d returned."""
    stride, dilation = as_pair(stride), as_pair(dilation)
    n, o = gy.shape[:2]
    gy4 = gy.reshape(n, groups, o // groups, gy.shape[2] * gy.shape[3])
    gx = None
    if need_x:
        gx = crop2d(conv_input_grad(gy, weight, shape, stride, dilation, groups),
                    as_pair(padding))
    g = np.matmul(gy4, cols.transpose(0, 1, 3, 2)).sum(axis=0)  # (G, Og, Cg*kh*kw [+ 1])
    rows = weight[0].size
    gw = g[:, :, :rows].reshape(weight.shape)
    gb = g[:, :, rows].reshape(o) if g.shape[2] > rows else None
    return gx, gw, gb


def conv1d(x, weight, bias, stride, padding, dilation, groups):
    """PyTorch's conv1d on NCL x, as conv2d over H = 1. Returns (y, columns, padded shape)."""
    y, cols, shape = conv2d(x[:, :, None], weight[:, :, None], bias, (1, stride),
                            (0, padding), (1, dilation), groups)
    return y[:, :, 0], cols, shape


def conv1d_backward(cols, shape, weight, gy, stride, padding, dilation, groups, need_x):
    """Gradients of conv1d to x (None unless need_x), the weight and the bias."""
    gx, gw, gb = conv2d_backward(cols, shape, weight[:, :, None], gy[:, :, None], (1, stride),
                                 (0, padding), (1, dilation), groups, need_x)
    return (None if gx is None else gx[:, :, 0]), gw[:, :, 0], gb


def conv_transpose2d(x, weight, bias, stride, padding, output_padding):
    """PyTorch's conv_transpose2d on NCHW x, weight (C_in, C_out, kh, kw): the input gradient
    of the convolution it transposes, with the padding cropped off."""
    stride, padding, extra = as_pair(stride), as_pair(padding), as_pair(output_padding)
    n, _, h, wd = x.shape
    kh, kw = weight.shape[2:]
    full = (n, weight.shape[1], (h - 1) * stride[0] + kh + extra[0],
            (wd - 1) * stride[1] + kw + extra[1])
    y = crop2d(conv_input_grad(x, weight, full, stride, (1, 1), 1), padding)
    if bias is not None:
        y = y + bias[:, None, None]
    return y


def conv_transpose2d_backward(x, weight, gy, stride, padding, need_x, need_w, has_bias):
    """Gradients of conv_transpose2d to x, the weight and the bias (None where not wanted):
    the convolution of the padded output gradient, whose columns also give the weight's."""
    stride = as_pair(stride)
    gx = gw = gb = None
    if need_x or need_w:
        g_full = pad2d(gy, as_pair(padding))
        n, c_in, h, wd = x.shape
        kh, kw = weight.shape[2:]
        cols = im2col(g_full, (kh, kw), stride, (1, 1), 1, h, wd, False)[:, 0]
        if need_x:
            gx = np.matmul(weight.reshape(c_in, -1), cols).reshape(x.shape)
        if need_w:
            x3 = x.reshape(n, c_in, h * wd)
            gw = np.matmul(x3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    if has_bias:
        gb = gy.sum(axis=(0, 2, 3))
    return gx, gw, gb
