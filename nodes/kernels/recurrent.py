"""Kernels of the fused recurrent cells (GRUCell, LSTMCell), as PyTorch computes them.

A cell is one node that runs once per step of a scan Loop, so a step costs what a hand-written
numpy cell costs: one matmul for x and one for h, the gate nonlinearities in place on the array
those matmuls made, and a backward that reads the activated gates the forward kept instead of
computing them again. Gate order and tensor layout are PyTorch's (weight_ih is (gates * H, in)).

Measured (float32, one BLAS thread, batch 32, input 64, hidden 128, two shared cores; an LSTM
step): its matmuls cost about 60 us forward, 40 us for the gradient of h and 55 us for the
weight gradients, about what BLAS does on one core.

- The gates are kept as (gates, B, H), each gate a contiguous block, made by one batched matmul
  per input (within a few us of `x @ w.T`). Elementwise operations on the gate slices of a
  (B, gates * H) array are strided and cost up to three times as much (a sigmoid over the i
  and f slices of (32, 512): 10.5 us, over all of it: 6.1 us). An LSTM step in blocks against
  slices: forward 80 against 93 us, backward 57 against 77 us, weight gradients 58 against
  55 us.
- The weight gradients are added step by step. Summing them once from every step's stacked
  gate gradients, as `stacked_weight_grads` would, is the same matmul work in one call (a
  hand-written LSTM: 14.5 ms a training step, against 13.5 ms step by step), and a rule that
  sees only its stacked inputs would have to compute every step's gates again.
"""

from __future__ import annotations

import numpy as np


def gate_blocks(x, w, n_h):
    """x (B, in) times each gate's rows of w (gates * H, in): (gates, B, H), one batched
    matmul, every gate a contiguous block."""
    return x @ w.reshape(-1, n_h, w.shape[1]).transpose(0, 2, 1)


def gate_weight_grad(d, x):
    """The gradient of a (gates * H, in) weight, from the gradient d (gates, B, H) of what
    gate_blocks(x, w) gave: d.T @ x, gate by gate."""
    return np.matmul(d.transpose(0, 2, 1), x).reshape(-1, x.shape[-1])


def gate_input_grad(d, w):
    """The gradient of x, from the gradient d (gates, B, H) of gate_blocks(x, w)."""
    return np.matmul(d, w.reshape(d.shape[0], d.shape[2], -1)).sum(axis=0)


def gate_bias_grad(d):
    """The gradient of a (gates * H,) bias added to every row of (gates, B, H)."""
    return d.sum(axis=1).reshape(-1)


# -- GRU --------------------------------------------------------------------------------------


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's GRUCell: r, z = sigmoid(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z}),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.

    Returns (h', gates, hn): gates holds r, z and n (3, B, H), hn is W_hn h + b_hn; the
    backward reads both. Biases may be None."""
    n_h = h.shape[1]
    gates = gate_blocks(x, w_ih, n_h)
    hidden = gate_blocks(h, w_hh, n_h)
    if b_ih is not None:
        gates += b_ih.reshape(3, 1, n_h)
        hidden += b_hh.reshape(3, 1, n_h)
    rz = gates[:2]
    rz += hidden[:2]
    rz *= 0.5  # sigmoid(a) = 0.5 tanh(a / 2) + 0.5: never overflows, costs less than exp
    np.tanh(rz, out=rz)
    rz *= 0.5
    rz += 0.5
    r, z, n = gates
    hn = hidden[2]
    scratch = hidden[0]  # spent: its part of r is in gates now
    np.multiply(r, hn, out=scratch)
    n += scratch
    np.tanh(n, out=n)
    y = h - n
    y *= z
    y += n
    return y, gates, hn


def gru_cell_backward(h, gates, hn, gy, w_ih, w_hh, need_x, need_h):
    """Gradients of gru_cell for the output gradient gy: (d_i, d_h, g_x, g_h).

    d_i is the gradient of the input side's pre-activations (3, B, H: r, z, n), d_h that of
    the hidden side's (the same but r * d_n for n): gate_weight_grad(d_i, x) and
    gate_bias_grad(d_i) are weight_ih's and bias_ih's, and so with d_h and h for the hidden
    side's. g_x and g_h are None unless asked for."""
    r, z, n = gates
    d_i = np.empty_like(gates)
    d_r, d_z, d_n = d_i
    # n: h' = n + z (h - n), so dn = gy (1 - z), then through tanh. d_z is scratch until set.
    np.multiply(n, n, out=d_n)
    np.subtract(1, d_n, out=d_n)
    d_n *= gy
    np.subtract(1, z, out=d_z)
    d_n *= d_z
    # z: dz = gy (h - n), then through the sigmoid, z (1 - z); d_r is scratch until set.
    d_z *= z
    d_z *= gy
    np.subtract(h, n, out=d_r)
    d_z *= d_r
    # r: dr = d_n * hn, then through the sigmoid.
    np.subtract(1, r, out=d_r)
    d_r *= r
    d_r *= hn
    d_r *= d_n
    d_h = d_i.copy()
    d_h[2] *= r
    g_x = gate_input_grad(d_i, w_ih) if need_x else None
    g_h = None
    if need_h:
        g_h = gate_input_grad(d_h, w_hh)
        g_h += gy * z
    return d_i, d_h, g_x, g_h


# -- LSTM -------------------------------------------------------------------------------------


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's LSTMCell: i, f, g, o from W_ih x + b_ih + W_hh h + b_hh (sigmoid, sigmoid,
    tanh, sigmoid), c' = f * c + i * g, h' = o * tanh(c').

    Returns (h', c', gates, tanh_c): gates holds the activated i, f, g, o (4, B, H); the
    backward reads both. Biases may be None."""
    n_h = h.shape[1]
    gates = gate_blocks(x, w_ih, n_h)
    gates += gate_blocks(h, w_hh, n_h)
    if b_ih is not None:
        gates += (b_ih + b_hh).reshape(4, 1, n_h)  # one pass over the gates instead of two
    # sigmoid(a) = 0.5 tanh(a / 2) + 0.5 never overflows and costs less than exp; so one
    # tanh over all the gates, between scalings of the sigmoid ones (i, f together, o).
    sigmoids = (gates[:2], gates[3:])
    for s in sigmoids:
        s *= 0.5
    np.tanh(gates, out=gates)
    for s in sigmoids:
        s *= 0.5
        s += 0.5
    i, f, g, o = gates
    c_next = f * c
    c_next += i * g
    tanh_c = np.tanh(c_next)
    h_next = o * tanh_c
    return h_next, c_next, gates, tanh_c


def lstm_cell_backward(c, gates, tanh_c, g_h_next, g_c_next, w_ih, w_hh, need_x, need_h,
                       need_c):
    """Gradients of lstm_cell for the gradients of h' and c' (either may be None: no
    gradient reaches it): (d, g_x, g_h, g_c).

    d is the gradient of the gates' pre-activations (4, B, H), the same for the input and the
    hidden side: gate_weight_grad(d, x) is weight_ih's, gate_weight_grad(d, h) weight_hh's,
    gate_bias_grad(d) both biases'. g_x, g_h and g_c are None unless asked for."""
    i, f, g, o = gates
    # The gradient of c' in full: its own, and through h' = o tanh(c').
    if g_h_next is None:
        g_c = np.zeros_like(c) if g_c_next is None else g_c_next.copy()
    else:
        g_c = tanh_c * tanh_c
        np.subtract(1, g_c, out=g_c)
        g_c *= o
        g_c *= g_h_next
        if g_c_next is not None:
            g_c += g_c_next
    # What each activated gate meets: c' = f c + i g, h' = o tanh(c').
    d = np.empty_like(gates)
    d_i, d_f, d_g, d_o = d
    np.multiply(g_c, g, out=d_i)
    np.multiply(g_c, c, out=d_f)
    np.multiply(g_c, i, out=d_g)
    if g_h_next is None:
        d_o[...] = 0
    else:
        np.multiply(g_h_next, tanh_c, out=d_o)
    # Through the activations: a sigmoid's slope is s (1 - s), tanh's 1 - g^2.
    slope = np.subtract(1, gates)
    slope *= gates
    np.multiply(g, g, out=slope[2])
    np.subtract(1, slope[2], out=slope[2])
    d *= slope
    g_x = gate_input_grad(d, w_ih) if need_x else None
    g_h = gate_input_grad(d, w_hh) if need_h else None
    if need_c:
        g_c *= f
    else:
        g_c = None
    return d, g_x, g_h, g_c
