"""Recurrent cells: GRUCell and LSTMCell, each one fused node (format version 2).

A cell is one step of a recurrent network, meant for the body of a scan Loop: x is the step's
input (B, in), h (and c) the state carried from step to step. Each is PyTorch's cell of the
same name: its gate order, its tensors (weight_ih (gates * H, in), weight_hh (gates * H, H),
bias_ih, bias_hh) in its layout, its initialisation U(-1/sqrt(H), 1/sqrt(H)). The kernels,
and why the weight gradients are added step by step, are in kernels/recurrent.py.
"""

from __future__ import annotations

import math

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
from .kernels import (
    gate_bias_grad,
    gate_weight_grad,
    gru_cell,
    gru_cell_backward,
    lstm_cell,
    lstm_cell_backward,
)
from .registry import register

HIDDEN = Param("hidden_size", "int", help="Length of the state vector h (H).", minimum=1)
BIAS = Param("bias", "bool", True, "Learn the biases bias_ih and bias_hh.")


def cell_batch(p: dict, ins: dict, states: tuple) -> int | None:
    """Check x (B, in) and the state ports (B, hidden_size); returns the batch length."""
    x = float_input(ins, "x")
    if x.ndim != 2:
        raise ShapeError("x", f"expected (batch, features), got {x}")
    if x.shape[1] is None:
        raise ShapeError("x", f"needs a known number of features (axis 1), got {x}")
    batch = x.shape[0]
    for port in states:
        t = float_input(ins, port)
        if t.ndim != 2 or t.shape[1] != p["hidden_size"]:
            raise ShapeError(port, f"expected (batch, {p['hidden_size']}) for hidden_size "
                             f"{p['hidden_size']}, got {t}")
        if None not in (batch, t.shape[0]) and t.shape[0] != batch:
            raise ShapeError(port, f"batch of {t.shape[0]} rows, but x has {batch}")
        batch = t.shape[0] if batch is None else batch
    return batch


def cell_weights(p: dict, ins: dict, gates: int) -> dict:
    """PyTorch's tensors of a cell with `gates` gates, and its init U(-1/sqrt(H), 1/sqrt(H))."""
    n_in, n_h = ins["x"].shape[1], p["hidden_size"]
    init = uniform(1.0 / math.sqrt(n_h))
    out = {"weight_ih": Weight((gates * n_h, n_in), init),
           "weight_hh": Weight((gates * n_h, n_h), init)}
    if p["bias"]:
        out["bias_ih"] = Weight((gates * n_h,), init)
        out["bias_hh"] = Weight((gates * n_h,), init)
    return out


CELL_TORCH_WEIGHTS = {name: (name, False)
                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def onnx_gates(p: dict, g, port: str, which: str, gates: int) -> list:
    """The ONNX rules' W_{which} port + b_{which} (PyTorch's layout: (gates * H, in)), cut
    into the gates' blocks (B, H)."""
    bias = g.weight(f"bias_{which}") if p["bias"] else None
    total = g.op("Gemm", g.x(port), g.weight(f"weight_{which}"), bias, transB=1)
    return g.op("Split", total, outputs=gates, axis=1, num_outputs=gates)


@register
class GRUCell(NodeType):
    category = "Layers"
    help = ("One step of a GRU, as PyTorch's GRUCell: x (B, in) and the state h (B, H) give "
            "the next state y (B, H).")
    inputs = ("x", "h")
    params = (HIDDEN, BIAS)
    summary_format = "{hidden_size}"
    torch_forward = "{self}({x}, {h})"
    torch_weights = CELL_TORCH_WEIGHTS
    samples = (
        Sample({"hidden_size": 3}, {"x": (4, 5), "h": (4, 3)}),
        Sample({"hidden_size": 2, "bias": False}, {"x": (3, 4), "h": (3, 2)}, note="no bias"),
        Sample({"hidden_size": 4}, {"x": (2, 1), "h": (2, 4)}, note="one input feature"),
    )

    def infer(self, p, ins):
        batch = cell_batch(p, ins, ("h",))
        return {"y": TensorType((batch, p["hidden_size"]), FLOAT)}

    def weights(self, p, ins):
        return cell_weights(p, ins, 3)

    def np_forward(self, p, e):
        gates, hn = e.local("gates"), e.local("hn")
        biases = "{bias_ih}, {bias_hh}" if p["bias"] else "None, None"
        e.emit(e.fmt(f"{{y}}, {gates}, {hn} = {e.helper(gru_cell)}({{x}}, {{h}}, "
                     f"{{weight_ih}}, {{weight_hh}}, {biases})"))

    def np_backward(self, p, e):
        d_i, d_h, g_x, g_h = e.tmp("d_i"), e.tmp("d_h"), e.tmp("g_x"), e.tmp("g_h")
        e.emit(e.fmt(f"{d_i}, {d_h}, {g_x}, {g_h} = {e.helper(gru_cell_backward)}({{h}}, "
                     f"{e.local('gates')}, {e.local('hn')}, {{gy}}, {{weight_ih}}, "
                     f"{{weight_hh}}, {e.lit(e.need('x'))}, {e.lit(e.need('h'))})"))
        weight_grad, bias_grad = e.helper(gate_weight_grad), e.helper(gate_bias_grad)
        out = {"x": g_x, "h": g_h,
               "weight_ih": e.fmt(f"{weight_grad}({d_i}, {{x}})"),
               "weight_hh": e.fmt(f"{weight_grad}({d_h}, {{h}})"),
               "bias_ih": f"{bias_grad}({d_i})", "bias_hh": f"{bias_grad}({d_h})"}
        return {name: expr for name, expr in out.items() if e.need(name)}

    def torch_module(self, p, e):
        return f"nn.GRUCell({e.t('x').shape[1]}, {p['hidden_size']}, bias={p['bias']})"

    def onnx_forward(self, p, g):
        x_r, x_z, x_n = onnx_gates(p, g, "x", "ih", 3)
        h_r, h_z, h_n = onnx_gates(p, g, "h", "hh", 3)
        r = g.op("Sigmoid", g.op("Add", x_r, h_r))
        z = g.op("Sigmoid", g.op("Add", x_z, h_z))
        n = g.op("Tanh", g.op("Add", x_n, g.op("Mul", r, h_n)))
        return g.op("Add", g.op("Mul", g.op("Sub", g.x("h"), n), z), n)


@register
class LSTMCell(NodeType):
    category = "Layers"
    help = ("One step of an LSTM, as PyTorch's LSTMCell: x (B, in) and the state h, c (B, H) "
            "give the next state h_next, c_next.")
    inputs = ("x", "h", "c")
    outputs = ("h_next", "c_next")
    params = (HIDDEN, BIAS)
    summary_format = "{hidden_size}"
    torch_weights = CELL_TORCH_WEIGHTS
    samples = (
        Sample({"hidden_size": 3}, {"x": (4, 5), "h": (4, 3), "c": (4, 3)}),
        Sample({"hidden_size": 2, "bias": False}, {"x": (3, 4), "h": (3, 2), "c": (3, 2)},
               note="no bias"),
    )

    def infer(self, p, ins):
        batch = cell_batch(p, ins, ("h", "c"))
        state = TensorType((batch, p["hidden_size"]), FLOAT)
        return {"h_next": state, "c_next": state}

    def weights(self, p, ins):
        return cell_weights(p, ins, 4)

    def np_forward(self, p, e):
        h_next, c_next = e.outs["h_next"], e.outs["c_next"]
        gates, tanh_c = e.local("gates"), e.local("tanh_c")
        biases = "{bias_ih}, {bias_hh}" if p["bias"] else "None, None"
        e.emit(e.fmt(f"{h_next}, {c_next}, {gates}, {tanh_c} = {e.helper(lstm_cell)}({{x}}, "
                     f"{{h}}, {{c}}, {{weight_ih}}, {{weight_hh}}, {biases})"))

    def np_backward(self, p, e):
        d, g_x, g_h, g_c = e.tmp("d"), e.tmp("g_x"), e.tmp("g_h"), e.tmp("g_c")
        g_h_next, g_c_next = (e.gys.get(port) or "None" for port in ("h_next", "c_next"))
        needs = ", ".join(e.lit(e.need(port)) for port in ("x", "h", "c"))
        e.emit(e.fmt(f"{d}, {g_x}, {g_h}, {g_c} = {e.helper(lstm_cell_backward)}({{c}}, "
                     f"{e.local('gates')}, {e.local('tanh_c')}, {g_h_next}, {g_c_next}, "
                     f"{{weight_ih}}, {{weight_hh}}, {needs})"))
        out = {"x": g_x, "h": g_h, "c": g_c}
        weight_grad = e.helper(gate_weight_grad)
        out["weight_ih"] = e.fmt(f"{weight_grad}({d}, {{x}})")
        out["weight_hh"] = e.fmt(f"{weight_grad}({d}, {{h}})")
        if e.need("bias_ih") or e.need("bias_hh"):
            # Both biases meet the gates where the weights' products do: one gradient.
            g_b = e.tmp("g_b")
            e.emit(f"{g_b} = {e.helper(gate_bias_grad)}({d})")
            out["bias_ih"] = out["bias_hh"] = g_b
        return {name: expr for name, expr in out.items() if e.need(name)}

    def torch_module(self, p, e):
        return f"nn.LSTMCell({e.t('x').shape[1]}, {p['hidden_size']}, bias={p['bias']})"

    def torch_forward(self, p, e):
        e.emit(e.fmt(f"{e.outs['h_next']}, {e.outs['c_next']} = {{self}}({{x}}, ({{h}}, {{c}}))"))

    def onnx_forward(self, p, g):
        from_x, from_h = onnx_gates(p, g, "x", "ih", 4), onnx_gates(p, g, "h", "hh", 4)
        i, f, cell, o = (g.op("Add", a, b) for a, b in zip(from_x, from_h))
        c_next = g.op("Add", g.op("Mul", g.op("Sigmoid", f), g.x("c")),
                      g.op("Mul", g.op("Sigmoid", i), g.op("Tanh", cell)))
        h_next = g.op("Mul", g.op("Sigmoid", o), g.op("Tanh", c_next))
        return {"h_next": h_next, "c_next": c_next}
