"""The numpy functions node rules call: the one place each of these computations is written.

The engine calls them as they are; an exported numpy module carries a copy of the source of
those its graph uses (see core/codegen/rules.py). So each is a plain, self-contained function:
it may use `np`, `math` and the other functions here, by name, and nothing else.

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
- ReLU's gradient is a bit mask (0.10 ms against 1.27 ms for np.where on 64x8x26x26), and a
  softmax over 2 to 4 classes takes the maximum of its columns (0.9 us against 2.3 us).
"""

from __future__ import annotations

import math

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


# -- activations ----------------------------------------------------------------------------


def sigmoid(x):
    """1 / (1 + e^-x) without overflow: exp is only ever taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def relu_backward(y, gy):
    """gy where y > 0 (y: the ReLU's input or output), else 0: gy's bits AND a mask of
    all-ones where y > 0.

    As fast as a multiply and bit for bit np.where: gy * (y > 0) would turn an infinite gy
    into NaN and keep -0.0."""
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[gy.dtype.itemsize]
    keep = np.greater(y, 0).astype(ints)
    np.negative(keep, out=keep)  # 1 -> all bits set
    keep &= np.ascontiguousarray(gy).view(ints)
    return keep.view(gy.dtype)


def tanh_backward(y, gy):
    """gy * (1 - y * y), in one buffer."""
    g = y * y
    np.subtract(1, g, out=g)
    g *= gy
    return g


def log_softmax(x, axis):
    """log(softmax(x)) along an axis, computed stably."""
    n = x.shape[axis]
    if 2 <= n <= 4 and axis in (-1, x.ndim - 1):
        # A few classes: numpy reduces a short last axis row by row; the maximum of its
        # columns is the same number, faster.
        top = np.maximum(x[..., 0], x[..., 1])
        for j in range(2, n):
            np.maximum(top, x[..., j], out=top)
        z = x - top[..., None]
    else:
        z = x - x.max(axis=axis, keepdims=True)
    total = np.exp(z).sum(axis=axis, keepdims=True)
    z -= np.log(total, out=total)
    return z


# -- losses and lookups ---------------------------------------------------------------------


def check_ids(ids, n, what):
    """Refuse class or embedding ids outside [0, n) (numpy would wrap negative ones)."""
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"{what} must be in [0, {n}), got ids from {ids.min()} to {ids.max()}")


def cross_entropy(logits, target):
    """Mean softmax cross-entropy, classes on the last axis; target int64 class ids or
    probabilities. Returns (loss, log-probabilities)."""
    logp = log_softmax(logits, -1)
    n_classes = logits.shape[-1]
    positions = math.prod(logits.shape[:-1])
    if target.dtype.kind in "iu":
        check_ids(target, n_classes, "class ids")
        # One log-probability per position by (row, id) indexing: on small arrays twice as
        # fast as take_along_axis, and the same numbers summed in the same order.
        picked = logp.reshape(positions, n_classes)[np.arange(positions), target.reshape(-1)]
        loss = -picked.sum() / positions
    else:
        loss = -(target * logp).sum() / positions
    return np.asarray(loss, dtype=logits.dtype), logp


def cross_entropy_backward(logp, target, gy):
    """Gradients of cross_entropy to the logits and (probabilities only) to the target."""
    n_classes = logp.shape[-1]
    positions = math.prod(logp.shape[:-1])
    scale = gy / positions
    g_logits = np.exp(logp)  # d/dz of -sum(t * log_softmax(z)) = softmax(z) * sum(t) - t
    if target.dtype.kind in "iu":
        g_logits.reshape(positions, n_classes)[np.arange(positions), target.reshape(-1)] -= 1
        g_target = None
    else:
        g_logits *= target.sum(axis=-1, keepdims=True)
        g_logits -= target
        g_target = -logp * scale
    g_logits *= scale
    return g_logits, g_target


def embedding(weight, ids):
    """The rows of weight for each id; y adds a last axis."""
    check_ids(ids, len(weight), "Embedding ids")
    return weight[ids]


def gather_index(x, index, axis):
    """Gather's index laid out for np.take_along_axis: per sample b, index (B,) picks one
    position along `axis`, index (B, M) picks M; other axes broadcast."""
    check_ids(index, x.shape[axis], "Gather indices")
    shape = [1] * x.ndim
    shape[0] = index.shape[0]
    if index.ndim == 2:
        shape[axis] = index.shape[1]
    idx = index.reshape(shape)
    full = list(x.shape)
    full[axis] = shape[axis]
    return np.broadcast_to(idx, full)


def gather(x, index, axis):
    """Per sample b: x[b, index[b]] along `axis` (that axis removed), or for index (B, M) the M
    positions index[b, m] (the axis then has length M). Returns (y, the laid-out index)."""
    idx = gather_index(x, index, axis)
    y = np.take_along_axis(x, idx, axis)
    return (np.squeeze(y, axis) if index.ndim == 1 else y), idx


def gather_backward(shape, idx, gy, axis, one):
    """Gather's gradient: gy scattered back to where it was picked, adding where a position
    was picked more than once."""
    if one:
        gy = np.expand_dims(gy, axis)
    gx = np.zeros(shape, dtype=gy.dtype)
    lead = np.indices(idx.shape, sparse=True)
    where = tuple(idx if a == axis else lead[a] for a in range(len(shape)))
    np.add.at(gx, where, gy)
    return gx


# -- linear algebra and reductions ------------------------------------------------------------


def unbroadcast(g, shape):
    """Sum a gradient back to the shape of the input that was broadcast to make it."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def matmul_backward(a, b, gy):
    """Gradients of np.matmul(a, b) for any ranks: 1-D operands promoted as matmul does,
    broadcast batch axes summed back."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    gy2 = gy[..., None] if b.ndim == 1 else gy
    gy2 = gy2[..., None, :] if a.ndim == 1 else gy2
    ga = unbroadcast(gy2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
    gb = unbroadcast(np.swapaxes(a2, -1, -2) @ gy2, b2.shape).reshape(b.shape)
    return ga, gb


def max_backward(x, gy, axes, keepdims):
    """The gradient of x.max(axis=axes), all of it to the first maximum in row-major order."""
    if keepdims:
        gy = np.squeeze(gy, axis=axes)
    kept = tuple(a for a in range(x.ndim) if a not in axes)
    flat = x.transpose(kept + axes).reshape([x.shape[a] for a in kept] + [-1])
    idx = flat.argmax(axis=-1)
    g = np.zeros(flat.shape, dtype=gy.dtype)
    np.put_along_axis(g, idx[..., None], np.asarray(gy)[..., None], axis=-1)
    moved = g.reshape([x.shape[a] for a in kept + axes])
    return moved.transpose(np.argsort(kept + axes))


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
