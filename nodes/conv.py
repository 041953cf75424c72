"""2-D convolution and pooling over NCHW tensors, as PyTorch computes them.

Conv2D copies the kh x kw windows into one contiguous im2col buffer (N, C*k*k, Ho*Wo), a strided
slice copy per kernel offset, and contracts it with the weight by one batched BLAS matmul whose
result is already NCHW and contiguous. A bias rides in that matmul as one more column of the
weight against a row of ones. The buffer is kept for backward: the weight and bias gradients
are one matmul against it, the input gradient a matmul with the transposed weight and then a
scatter-add ("col2im") over the k*k offsets, on whole rows for stride 1 (see
_input_grad_rows); the first layer (need[0] False) skips it.

Measured per call with timeit (min of 7, float32, 1 BLAS thread, the convnet of bench.engine:
batch 64, 1x28x28 -> 8 channels and 8x13x13 -> 16, 3x3 kernels), layer 1 / layer 2:
- forward: 0.20 / 0.47 ms (0.24 / 0.49 with the bias added apart), against 5.8 / 1.2 ms for
  np.tensordot over the strided window view (it copies the windows anyway, into a layout BLAS
  takes badly) and 1.2 / 0.36 ms for einsum on the columns; one GEMM over (k*k*C, N*Ho*Wo)
  columns needs a transposed copy of the output (0.65 / 0.19 ms);
- weight and bias gradients: 0.08 / 0.24 ms (one batched matmul against the kept columns,
  summed over the batch; 0.15 / 0.28 with the bias summed apart), against 1.1 / 1.3 ms for
  tensordot over the window view, 0.57 / 0.62 ms for tensordot over the columns and
  0.48 / 0.75 ms for one GEMM over transposed columns;
- input gradient (layer 2 only): 0.62 ms on whole rows, against 0.98 ms for matmul + col2im
  by (N, C, Ho, Wo) blocks, 2.9 ms for the tensordot + window scatter before and 0.99 ms for a
  full convolution of the zero-padded output gradient with the flipped kernel.

MaxPool2D and AvgPool2D with stride == kernel (the common case) read the input as tiles
(N, C, Ho, k, Wo, k) by a reshape, and work on the k*k tile offsets as (N, C, Ho, Wo) views:
the max is k*k - 1 np.maximum calls (x.max(axis=(3, 5)) takes 8 ms: numpy reduces 2-element
strided axes badly), and the arg-max is kept as one boolean mask per offset, true at the FIRST
maximum in row-major order (PyTorch's rule; ties are common after a ReLU). Backward multiplies
gy by each mask into the matching view of the input gradient. At 64x8x26x26, k = 2: forward
0.43 ms and backward 0.25 ms, against 2.75 ms and 1.09 ms with argmax / take_along_axis /
put_along_axis over the window view, which other strides still use (as does a max with a NaN,
whose gradient goes to the first NaN). Average pooling adds the offsets in the order numpy's
mean over the windows does, so it gives the same bits.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import (
    FLOAT,
    NodeType,
    Param,
    Sample,
    ShapeError,
    TensorType,
    Weight,
    float_input,
    uniform,
)
from .registry import register


def windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """The k x k windows of NCHW x, a view shaped (N, C, Ho, Wo, k, k)."""
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]


def out_length(n: int | None, k: int, stride: int, padding: int = 0) -> int | None:
    """Output length along one spatial axis (PyTorch's floor rule); None when n is unknown."""
    if n is None:
        return None
    return (n + 2 * padding - k) // stride + 1


def _window_slice(i: int, stride: int, n_out: int) -> slice:
    """The input positions that kernel offset i touches, one per output position."""
    return slice(i, i + stride * (n_out - 1) + 1, stride)


def _spatial_output(p: dict, x: TensorType, padding: int = 0) -> tuple:
    """(Ho, Wo) for a k x k window moved by the node's stride, or a ShapeError."""
    if x.ndim != 4:
        raise ShapeError("x", f"expected 4 axes (N, C, H, W), got {x.ndim}: {x}")
    k, stride = p["kernel_size"], p["stride"] or p["kernel_size"]
    out = []
    for name, n in (("H", x.shape[2]), ("W", x.shape[3])):
        length = out_length(n, k, stride, padding)
        if length is not None and length < 1:
            pad = f" plus padding {2 * padding}" if padding else ""
            raise ShapeError("x", f"{name} = {n}{pad} is smaller than the kernel ({k})")
        out.append(length)
    return tuple(out)


def _scatter_windows(g_win: np.ndarray, shape: tuple, k: int, stride: int) -> np.ndarray:
    """Sum per-window gradients (N, C, Ho, Wo, k, k) back onto an NCHW input of `shape`."""
    gx = np.zeros(shape, dtype=g_win.dtype)
    ho, wo = g_win.shape[2:4]
    for i in range(k):
        rows = _window_slice(i, stride, ho)
        for j in range(k):
            gx[:, :, rows, _window_slice(j, stride, wo)] += g_win[:, :, :, :, i, j]
    return gx


def im2col(x: np.ndarray, k: int, stride: int, ho: int, wo: int, ones: bool = False) -> np.ndarray:
    """The k x k windows of NCHW x copied into contiguous columns (N, C*k*k, Ho*Wo), rows in
    (c, i, j) order; with `ones`, one more row of ones (for a bias folded into the weight).

    One strided slice copy per kernel offset: each moves a whole (N, C, Ho, Wo) block, so the
    Python loop runs k*k times whatever the batch.
    """
    n, c = x.shape[:2]
    ckk = c * k * k
    buf = np.empty((n, ckk + ones, ho * wo), dtype=x.dtype)
    cols = buf[:, :ckk]
    cols.shape = (n, c, k, k, ho, wo)  # a view of buf (assigning .shape never copies)
    for i in range(k):
        rows = _window_slice(i, stride, ho)
        for j in range(k):
            cols[:, :, i, j] = x[:, :, rows, _window_slice(j, stride, wo)]
    if ones:
        buf[:, ckk] = 1
    return buf


def col2im(g_cols: np.ndarray, shape: tuple, k: int, stride: int) -> np.ndarray:
    """Sum column gradients (N, C, k, k, Ho, Wo) back onto an NCHW input of `shape`."""
    gx = np.zeros(shape, dtype=g_cols.dtype)
    ho, wo = g_cols.shape[-2:]
    for i in range(k):
        rows = _window_slice(i, stride, ho)
        for j in range(k):
            gx[:, :, rows, _window_slice(j, stride, wo)] += g_cols[:, :, i, j]
    return gx


def _input_grad_rows(gy: np.ndarray, w: np.ndarray, shape: tuple) -> np.ndarray:
    """Conv2D's input gradient for stride 1, its col2im done on whole rows.

    gy is widened from Wo to the input's W columns (zeros in the extra ones), so that in the
    flattened (H*W) input, kernel offset (i, j) of every output position lands at one constant
    shift i*W + j: the scatter-add is then k*k adds of contiguous runs Ho*W long instead of
    k*k adds of Wo-long rows (0.66 ms against 0.98 ms at the bench's 64x8x13x13).
    """
    n, o, ho, wo = gy.shape
    c, k = w.shape[1], w.shape[2]
    h, wd = shape[2], shape[3]
    wide = np.zeros((n, o, ho, wd), dtype=gy.dtype)
    wide[..., :wo] = gy
    g = np.matmul(w.reshape(o, c * k * k).T, wide.reshape(n, o, ho * wd))
    g = g.reshape(n, c, k * k, ho * wd)
    gx = np.zeros((n, c, h * wd), dtype=gy.dtype)
    for i in range(k):
        for j in range(k):
            s = i * wd + j
            run = min(ho * wd, h * wd - s)  # what runs past the end is a widened zero column
            gx[:, :, s:s + run] += g[:, :, i * k + j, :run]
    return gx.reshape(shape)


@register
class Conv2D(NodeType):
    category = "Layers"
    help = "2-D cross-correlation over NCHW input, as PyTorch's Conv2d."
    torch_forward = "{self}({x})"
    torch_weights = {"weight": ("weight", False), "bias": ("bias", False)}

    @property
    def np_helpers(self):
        return (conv_windows, scatter_windows, conv2d, conv2d_backward)

    def np_forward(self, p, e):
        bias = "{bias}" if p["bias"] else "None"
        e.emit(e.fmt(f"{{y}}, {e.local('xpad')} = {e.helper(conv2d)}({{x}}, {{weight}}, {bias}, "
                     f"{{stride}}, {{padding}})"))

    def np_backward(self, p, e):
        gx, gw, gb = e.tmp("gx"), e.tmp("gw"), e.tmp("gb")
        e.emit(e.fmt(f"{gx}, {gw}, {gb} = {e.helper(conv2d_backward)}({e.local('xpad')}, "
                     f"{{weight}}, {{gy}}, {{stride}}, {{padding}})"))
        return {"x": gx, "weight": gw, "bias": gb}

    def torch_module(self, p, e):
        return (f"nn.Conv2d({e.t('x').shape[1]}, {p['out_channels']}, {p['kernel_size']}, "
                f"stride={p['stride']}, padding={p['padding']}, bias={p['bias']})")
    params = (
        Param("out_channels", "int", help="Number of output channels.", minimum=1),
        Param("kernel_size", "int", help="Height and width of the square kernel.", minimum=1),
        Param("stride", "int", 1, "Step between windows.", minimum=1),
        Param("padding", "int", 0, "Zeros added on every side of H and W.", minimum=0),
        Param("bias", "bool", True, "Add a learned bias per output channel."),
    )
    summary_format = "{out_channels} {kernel_size}x{kernel_size}"
    samples = (
        Sample({"out_channels": 2, "kernel_size": 3}, {"x": (2, 1, 5, 5)}),
        Sample({"out_channels": 3, "kernel_size": 2, "stride": 2, "padding": 1},
               {"x": (2, 2, 5, 4)}, note="stride and padding"),
        Sample({"out_channels": 2, "kernel_size": 3, "stride": 2, "bias": False},
               {"x": (1, 2, 7, 6)}, note="stride leaves a remainder, no bias"),
    )

    def infer(self, p, ins):
        x = float_input(ins, "x")
        ho, wo = _spatial_output(p, x, p["padding"])
        if x.shape[1] is None:
            raise ShapeError("x", f"needs a known number of channels (axis 1), got {x}")
        return {"y": TensorType((x.shape[0], p["out_channels"], ho, wo), FLOAT)}

    def weights(self, p, ins):
        c_in, k = ins["x"].shape[1], p["kernel_size"]
        bound = 1.0 / math.sqrt(c_in * k * k) if c_in else 0.0
        out = {"weight": Weight((p["out_channels"], c_in, k, k), uniform(bound))}
        if p["bias"]:
            out["bias"] = Weight((p["out_channels"],), uniform(bound))
        return out

    def forward(self, p, xs, ws, ctx):
        x, w = xs[0], ws[0]
        k, stride, pad = p["kernel_size"], p["stride"], p["padding"]
        if pad:
            xp = np.zeros(x.shape[:2] + (x.shape[2] + 2 * pad, x.shape[3] + 2 * pad), x.dtype)
            xp[:, :, pad:-pad, pad:-pad] = x
            x = xp
        n, c, h, wd = x.shape
        o, ckk = w.shape[0], c * k * k
        ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
        bias = len(ws) > 1
        cols = im2col(x, k, stride, ho, wo, ones=bias)
        if bias:  # [w | b] @ [cols; 1]: the bias rides in the matmul, and its gradient too
            wb = np.empty((o, ckk + 1), dtype=w.dtype)
            wb[:, :ckk] = w.reshape(o, ckk)
            wb[:, ckk] = ws[1]
        else:
            wb = w.reshape(o, ckk)
        y = np.matmul(wb, cols)  # (N, O, Ho*Wo): already NCHW
        return [y.reshape(n, o, ho, wo)], (cols, w, x.shape)

    def backward(self, p, saved, gys, need):
        cols, w, shape = saved  # cols: with a row of ones when there is a bias; shape: padded
        k, stride, pad = p["kernel_size"], p["stride"], p["padding"]
        gy = gys[0]
        n, o = gy.shape[:2]
        gy3 = gy.reshape(n, o, gy.shape[2] * gy.shape[3])
        gx = gw = gb = None
        if need[0]:
            if stride == 1:
                gx = _input_grad_rows(gy, w, shape)
            else:
                g_cols = np.matmul(w.reshape(o, -1).T, gy3)  # (N, C*k*k, Ho*Wo)
                gx = col2im(g_cols.reshape((n, shape[1], k, k) + gy.shape[2:]), shape, k, stride)
            if pad:
                gx = gx[:, :, pad:-pad, pad:-pad]
        if any(need[1:]):
            g = np.matmul(gy3, cols.transpose(0, 2, 1)).sum(axis=0)  # (O, C*k*k [+ 1])
            if need[1]:
                gw = g[:, : w[0].size].reshape(w.shape)
            if len(need) > 2 and need[2]:
                gb = g[:, -1]
        return [gx, gw, gb][: len(need)]


class Pool2D(NodeType):
    category = "Layers"
    params = (
        Param("kernel_size", "int", help="Height and width of the square window.", minimum=1),
        Param("stride", "int", None, "Step between windows; null: kernel_size.", minimum=1,
              nullable=True),
    )
    summary_format = "{kernel_size}x{kernel_size}"
    samples = (
        Sample({"kernel_size": 2}, {"x": (2, 2, 4, 4)}),
        Sample({"kernel_size": 2}, {"x": (2, 1, 5, 3)}, note="odd sizes drop the remainder"),
        Sample({"kernel_size": 3, "stride": 1}, {"x": (1, 2, 5, 5)}, note="overlapping"),
        Sample({"kernel_size": 2, "stride": 3}, {"x": (2, 1, 7, 7)}, note="gaps"),
    )

    def infer(self, p, ins):
        x = float_input(ins, "x")
        ho, wo = _spatial_output(p, x)
        return {"y": TensorType(x.shape[:2] + (ho, wo), FLOAT)}


def _tiles(x: np.ndarray, k: int) -> tuple:
    """For stride == kernel: x cropped to whole tiles, as a view (N, C, Ho, k, Wo, k), and the
    k*k views (N, C, Ho, Wo) of each offset in the tile, in row-major order."""
    n, c, h, w = x.shape
    ho, wo = h // k, w // k
    if h != ho * k or w != wo * k:
        x = x[:, :, : ho * k, : wo * k]  # the remainder takes no part (a copy below)
    t = x.reshape(n, c, ho, k, wo, k)
    return t, [t[:, :, :, a, :, b] for a in range(k) for b in range(k)]


def _untile(g6: np.ndarray, shape: tuple) -> np.ndarray:
    """Tile-shaped gradients (N, C, Ho, k, Wo, k) onto the full NCHW input of `shape`."""
    n, c, ho, k, wo, _ = g6.shape
    g = g6.reshape(n, c, ho * k, wo * k)
    if g.shape == tuple(shape):
        return g
    gx = np.zeros(shape, dtype=g.dtype)
    gx[:, :, : ho * k, : wo * k] = g
    return gx


@register
class MaxPool2D(Pool2D):
    help = "Maximum over k x k windows of NCHW input; the gradient goes to the arg-max."

    @property
    def np_helpers(self):
        return (conv_windows, scatter_windows, max_pool2d, max_pool2d_backward)

    def np_forward(self, p, e):
        k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
        e.emit(e.fmt(f"{{y}}, {e.local('argmax')} = {e.helper(max_pool2d)}({{x}}, {k}, {s})"))

    def np_backward(self, p, e):
        k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
        name = e.helper(max_pool2d_backward)
        return {"x": e.fmt(f"{name}({{x}}.shape, {e.local('argmax')}, {{gy}}, {k}, {s})")}

    def torch_forward(self, p, e):
        return e.fmt(f"F.max_pool2d({{x}}, {p['kernel_size']}, {p['stride'] or p['kernel_size']})")

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        k = p["kernel_size"]
        stride = p["stride"] or k
        if stride == k and k > 1:
            _, views = _tiles(x, k)
            y = np.maximum(views[0], views[1])
            for v in views[2:]:
                np.maximum(y, v, out=y)
            if not np.isnan(y.sum()):
                # First-max masks, one per tile offset: equal to the max and not already taken
                # by an earlier offset (ties go to the first in row-major order, as PyTorch).
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
                return [y], (x.shape, masks)
            # NaN: the arg-max below sends the gradient to the first NaN, as PyTorch does
        win = windows(x, k, stride)
        flat = win.reshape(win.shape[:4] + (k * k,))
        idx = flat.argmax(axis=-1)  # the first maximum in row-major order, as PyTorch
        y = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
        return [y], (x.shape, idx)

    def backward(self, p, saved, gys, need):
        shape, idx = saved
        k = p["kernel_size"]
        gy = gys[0]
        if idx.dtype == bool:  # tile masks
            masks = idx
            n, c, ho, wo = gy.shape
            g6 = np.empty((n, c, ho, k, wo, k), dtype=gy.dtype)
            for i in range(k * k):
                np.multiply(masks[i], gy, out=g6[:, :, :, i // k, :, i % k])
            return [_untile(g6, shape)]
        g_win = np.zeros(idx.shape + (k * k,), dtype=gy.dtype)
        np.put_along_axis(g_win, idx[..., None], gy[..., None], axis=-1)
        return [_scatter_windows(g_win.reshape(idx.shape + (k, k)), shape, k, p["stride"] or k)]


@register
class AvgPool2D(Pool2D):
    help = "Mean over k x k windows of NCHW input."

    @property
    def np_helpers(self):
        return (conv_windows, scatter_windows, avg_pool2d_backward)

    def np_forward(self, p, e):
        k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
        return e.fmt(f"{e.helper(conv_windows)}({{x}}, {k}, {s}).mean(axis=(4, 5))")

    def np_backward(self, p, e):
        k, s = p["kernel_size"], p["stride"] or p["kernel_size"]
        return {"x": e.fmt(f"{e.helper(avg_pool2d_backward)}({{x}}.shape, {{gy}}, {k}, {s})")}

    def torch_forward(self, p, e):
        return e.fmt(f"F.avg_pool2d({{x}}, {p['kernel_size']}, {p['stride'] or p['kernel_size']})")

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        k = p["kernel_size"]
        stride = p["stride"] or k
        if stride == k and k < 8:
            # Row by row, then the rows: the order numpy's mean over the windows adds in, so
            # the result is bit for bit the same (pairwise summation only starts at 8 terms).
            _, views = _tiles(x, k)
            y = None
            for a in range(k):
                row = views[a * k].copy()
                for v in views[a * k + 1: (a + 1) * k]:
                    row += v
                y = row if y is None else np.add(y, row, out=y)
            y /= k * k
            return [y], x.shape
        return [windows(x, k, stride).mean(axis=(4, 5))], x.shape

    def backward(self, p, saved, gys, need):
        k = p["kernel_size"]
        stride = p["stride"] or k
        share = gys[0] / (k * k)
        if stride == k:
            n, c, ho, wo = share.shape
            g6 = np.empty((n, c, ho, k, wo, k), dtype=share.dtype)
            g6[...] = share[:, :, :, None, :, None]
            return [_untile(g6, saved)]
        g_win = np.broadcast_to(share[..., None, None], share.shape + (k, k))
        return [_scatter_windows(g_win, saved, k, stride)]


# ---------------------------------------------------------------------------------------------
# Export helpers: plain numpy versions of the kernels above, copied into exported modules.


def conv_windows(x, k, stride):
    """The k x k windows of NCHW x, a view shaped (N, C, Ho, Wo, k, k)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return windows[:, :, ::stride, ::stride]


def scatter_windows(g_win, shape, k, stride):
    """Sum per-window gradients (N, C, Ho, Wo, k, k) back onto an NCHW input of `shape`."""
    gx = np.zeros(shape, dtype=g_win.dtype)
    ho, wo = g_win.shape[2:4]
    for i in range(k):
        rows = slice(i, i + stride * (ho - 1) + 1, stride)
        for j in range(k):
            cols = slice(j, j + stride * (wo - 1) + 1, stride)
            gx[:, :, rows, cols] += g_win[:, :, :, :, i, j]
    return gx


def conv2d(x, weight, bias, stride, padding):
    """PyTorch's conv2d (cross-correlation) on NCHW x; returns (y, the padded x)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = conv_windows(x, weight.shape[2], stride)
    y = np.tensordot(win, weight, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, O)
    if bias is not None:
        y += bias
    return y.transpose(0, 3, 1, 2), x


def conv2d_backward(xp, weight, gy, stride, padding):
    """Gradients of conv2d to x, weight and bias, from the padded x it kept."""
    k = weight.shape[2]
    g_win = np.tensordot(gy, weight, axes=([1], [0]))  # (N, Ho, Wo, C, k, k)
    gx = scatter_windows(g_win.transpose(0, 3, 1, 2, 4, 5), xp.shape, k, stride)
    if padding:
        gx = gx[:, :, padding:-padding, padding:-padding]
    gw = np.tensordot(gy, conv_windows(xp, k, stride), axes=([0, 2, 3], [0, 2, 3]))
    return gx, gw, gy.sum(axis=(0, 2, 3))


def max_pool2d(x, k, stride):
    """Max over k x k windows; returns (y, the index of each window's first maximum)."""
    win = conv_windows(x, k, stride)
    flat = win.reshape(win.shape[:4] + (k * k,))
    idx = flat.argmax(axis=-1)
    return np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0], idx


def max_pool2d_backward(shape, idx, gy, k, stride):
    g_win = np.zeros(idx.shape + (k * k,), dtype=gy.dtype)
    np.put_along_axis(g_win, idx[..., None], gy[..., None], axis=-1)
    return scatter_windows(g_win.reshape(idx.shape + (k, k)), shape, k, stride)


def avg_pool2d_backward(shape, gy, k, stride):
    share = gy / (k * k)
    g_win = np.broadcast_to(share[..., None, None], share.shape + (k, k))
    return scatter_windows(g_win, shape, k, stride)
