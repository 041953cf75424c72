"""Attention: MultiheadAttention (format version 2).

PyTorch's nn.MultiheadAttention(embed_dim, num_heads, bias, batch_first=True), output 0, with
no dropout: query (B, L, E) attends to key and value (B, S, E). Its tensors keep PyTorch's
names and layout, `in_proj_weight` (3E, E) holding the query's, key's and value's projections
one under the other, so a node's tensors are `attn.in_proj_weight`, `attn.out_proj.weight`.

The optional `mask` is float, (L, S) for every sample or (B, L, S) for each: > 0 where a query
may attend to a key. A query with no allowed key attends to nothing: its attention output is
zero (y = out_proj.bias there), as PyTorch's scaled-dot-product path computes it, where its
need_weights path gives NaN. The mask takes no gradient. Kernels: kernels/attention.py.
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
    constant,
    float_input,
    uniform,
)
from .kernels import attention, attention_backward
from .registry import register

# Engine weight name -> (nn.MultiheadAttention's attribute, transposed); also the order of
# the gradients attention_backward returns after the three inputs.
_TORCH_WEIGHTS = {
    "in_proj_weight": ("in_proj_weight", False),
    "in_proj_bias": ("in_proj_bias", False),
    "out_proj.weight": ("out_proj.weight", False),
    "out_proj.bias": ("out_proj.bias", False),
}


def torch_attention(attn, query, key, value, mask):
    """nn.MultiheadAttention's output 0 for our float mask (> 0: may attend), where a query
    row with no allowed key gives out_proj.bias on every path PyTorch may take (its fast
    inference path gives NaN there)."""
    import torch

    if mask is None:
        return attn(query, key, value, need_weights=False)[0]
    allowed = mask > 0
    empty = ~allowed.any(dim=-1, keepdim=True)
    # Such a row may attend everywhere (finite values), then its result is replaced.
    blocked = ~(allowed | empty)
    if blocked.dim() == 3:
        blocked = blocked.repeat_interleave(attn.num_heads, dim=0)
    y = attn(query, key, value, attn_mask=blocked, need_weights=False)[0]
    bias = attn.out_proj.bias if attn.out_proj.bias is not None else y.new_zeros(())
    return torch.where(empty, bias, y)


@register
class MultiheadAttention(NodeType):
    category = "Layers"
    help = ("Multi-head attention of query (B, L, E) over key and value (B, S, E), as "
            "PyTorch's nn.MultiheadAttention(batch_first=True) output 0; the optional float "
            "mask, (L, S) or (B, L, S), is > 0 where a query may attend, and a query with no "
            "allowed key gives out_proj.bias.")
    inputs = ("query", "key", "value", "mask")
    optional_inputs = ("mask",)
    nondiff_inputs = ("mask",)
    params = (
        Param("embed_dim", "int", help="Length E of query, key and value vectors.",
              minimum=1),
        Param("num_heads", "int", help="Number of heads; must divide embed_dim.", minimum=1),
        Param("bias", "bool", True, "Learn in_proj_bias and out_proj.bias."),
    )
    summary_format = "{embed_dim}/{num_heads}"
    torch_weights = _TORCH_WEIGHTS
    torch_helpers = (torch_attention,)
    samples = (
        Sample({"embed_dim": 4, "num_heads": 2}, {"query": (2, 3, 4), "key": (2, 3, 4),
                                                  "value": (2, 3, 4)}, note="no mask"),
        Sample({"embed_dim": 6, "num_heads": 3}, {"query": (2, 3, 6), "key": (2, 4, 6),
                                                  "value": (2, 4, 6), "mask": (3, 4)},
               note="key longer than query, one mask for all samples"),
        Sample({"embed_dim": 4, "num_heads": 1, "bias": False},
               {"query": (3, 2, 4), "key": (3, 5, 4), "value": (3, 5, 4), "mask": (3, 2, 5)},
               note="a mask per sample, one head, no bias"),
    )

    def infer(self, p, ins):
        e, heads = p["embed_dim"], p["num_heads"]
        if e % heads:
            raise ShapeError(None, f"num_heads {heads} does not divide embed_dim {e}")
        query = self._sequence(ins, "query", e)
        key = self._sequence(ins, "key", e)
        value = self._sequence(ins, "value", e)
        batch = _same(query.shape[0], key.shape[0], "key", "batch", "query")
        batch = _same(batch, value.shape[0], "value", "batch", "query")
        length = _same(key.shape[1], value.shape[1], "value", "length", "key")
        if "mask" in ins:
            self._check_mask(ins, query.shape[1], length, batch)
        return {"y": TensorType((batch, query.shape[1], e), FLOAT)}

    @staticmethod
    def _sequence(ins: dict, port: str, e: int) -> TensorType:
        t = float_input(ins, port)
        if t.ndim != 3 or t.shape[2] != e:
            raise ShapeError(port, f"expected (batch, length, {e}) for embed_dim {e}, got {t}")
        return t

    @staticmethod
    def _check_mask(ins: dict, n_query, n_key, batch) -> None:
        mask = float_input(ins, "mask")
        if mask.ndim not in (2, 3):
            raise ShapeError("mask", f"expected (L, S) or (batch, L, S), got {mask}")
        want = (n_query, n_key) if mask.ndim == 2 else (batch, n_query, n_key)
        if any(None not in (m, w) and m != w for m, w in zip(mask.shape, want)):
            shown = TensorType(want)
            raise ShapeError("mask", f"expected {shown} (query length L, key length S), "
                             f"got {mask}")

    def weights(self, p, ins):
        e = p["embed_dim"]
        # xavier_uniform_ on (3E, E): fan_in E, fan_out 3E; out_proj as nn.Linear(E, E).
        out = {"in_proj_weight": Weight((3 * e, e), uniform(math.sqrt(6.0 / (4 * e))))}
        if p["bias"]:
            out["in_proj_bias"] = Weight((3 * e,), constant(0.0))
        out["out_proj.weight"] = Weight((e, e), uniform(1.0 / math.sqrt(e)))
        if p["bias"]:
            out["out_proj.bias"] = Weight((e,), constant(0.0))
        return out

    def np_forward(self, p, e):
        saved = ", ".join(e.local(name) for name in ("q", "k", "v", "weights", "merged"))
        w = e.weights
        b_in, b_out = (w["in_proj_bias"], w["out_proj.bias"]) if p["bias"] else ("None", "None")
        mask = e.ins.get("mask", "None")
        e.emit(f"{e.y}, {saved} = {e.helper(attention)}({e.ins['query']}, {e.ins['key']}, "
               f"{e.ins['value']}, {w['in_proj_weight']}, {b_in}, {w['out_proj.weight']}, "
               f"{b_out}, {p['num_heads']}, {mask})")

    def np_backward(self, p, e):
        grads = {name: e.tmp("g_" + name.replace(".", "_"))
                 for name in ("query", "key", "value", *e.weights)}
        order = ["query", "key", "value"] + list(_TORCH_WEIGHTS)  # attention_backward's
        flags = [name in grads and e.need(name) for name in order]
        targets = [grads.get(name, "_") for name in order]
        saved = ", ".join(e.local(name) for name in ("q", "k", "v", "weights", "merged"))
        e.emit(f"{', '.join(targets)} = {e.helper(attention_backward)}({e.ins['query']}, "
               f"{e.ins['key']}, {e.ins['value']}, {e.weights['in_proj_weight']}, "
               f"{e.weights['out_proj.weight']}, {saved}, {e.gy}, {e.lit(tuple(flags))})")
        return {name: var for name, var in grads.items() if e.need(name)}

    def torch_module(self, p, e):
        return (f"nn.MultiheadAttention({p['embed_dim']}, {p['num_heads']}, bias={p['bias']}, "
                "batch_first=True)")

    def torch_forward(self, p, e):
        mask = e.ins.get("mask", "None")
        return (f"{e.helper(torch_attention)}({e.module}, {e.ins['query']}, {e.ins['key']}, "
                f"{e.ins['value']}, {mask})")

    def onnx_forward(self, p, g):
        e, heads = p["embed_dim"], p["num_heads"]
        d = e // heads
        w_in = g.weight("in_proj_weight")
        heads_of = {}
        for k, port in enumerate(("query", "key", "value")):
            rows = g.op("Slice", w_in, g.ints([k * e]), g.ints([(k + 1) * e]), g.ints([0]))
            t = g.op("MatMul", g.x(port), g.op("Transpose", rows))
            if p["bias"]:
                b = g.op("Slice", g.weight("in_proj_bias"), g.ints([k * e]),
                         g.ints([(k + 1) * e]), g.ints([0]))
                t = g.op("Add", t, b)
            split = g.reshape(t, [0, 0, heads, d])  # 0: that length as it is
            heads_of[port] = g.op("Transpose", split, perm=[0, 2, 1, 3])
        q = g.op("Mul", heads_of["query"], g.const(1.0 / math.sqrt(d)))
        scores = g.op("MatMul", q, g.op("Transpose", heads_of["key"], perm=[0, 1, 3, 2]))
        if g.has("mask"):
            allowed = g.positive("mask")
            if g.ndim("mask") == 3:
                allowed = g.unsqueeze(allowed, [1])  # the same for every head
            # A large finite floor, not -inf: a query with no allowed key then gets finite
            # weights, which the Where below turns into zeros (the kernel's empty row).
            scores = g.where(allowed, scores, g.const(-1e30))
            weights = g.where(allowed, g.op("Softmax", scores, axis=-1), g.const(0.0))
        else:
            weights = g.op("Softmax", scores, axis=-1)
        merged = g.op("Transpose", g.op("MatMul", weights, heads_of["value"]),
                      perm=[0, 2, 1, 3])
        y = g.op("MatMul", g.reshape(merged, [0, 0, e]), g.op("Transpose",
                                                               g.weight("out_proj.weight")))
        return g.op("Add", y, g.weight("out_proj.bias")) if p["bias"] else y


def _same(a, b, port: str, what: str, other: str):
    """Two lengths that must agree (None: known at run time); the known one."""
    if None not in (a, b) and a != b:
        raise ShapeError(port, f"{what} {b} differs from {other}'s {a}")
    return a if a is not None else b
