"""Layers with weights or structure: Linear, Conv2D, pooling, Embedding, LayerNorm, Dropout, ..."""

from __future__ import annotations

import math

import numpy as np

from .base import NodeType, Param, Sample, ShapeError, TensorType, Weight, float_input, uniform
from .registry import register


@register
class Linear(NodeType):
    category = "Layers"
    help = "y = x @ weight + bias over the last axis."
    params = (
        Param("out_features", "int", help="Number of output units.", minimum=1),
        Param("bias", "bool", True, "Add a learned bias."),
    )
    summary_format = "{out_features}"
    samples = (
        Sample({"out_features": 3}, {"x": (4, 5)}),
        Sample({"out_features": 2, "bias": False}, {"x": (2, 3, 4)}, note="3-D input, no bias"),
    )

    def infer(self, p, ins):
        x = float_input(ins, "x")
        if x.ndim < 1 or x.shape[-1] is None:
            raise ShapeError("x", f"needs a known last axis, got {x}")
        return {"y": TensorType(x.shape[:-1] + (p["out_features"],), x.dtype)}

    def weights(self, p, ins):
        n_in = ins["x"].shape[-1]
        k = 1.0 / math.sqrt(n_in) if n_in else 0.0
        out = {"weight": Weight((n_in, p["out_features"]), uniform(k))}
        if p["bias"]:
            out["bias"] = Weight((p["out_features"],), uniform(k))
        return out

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        y = x @ ws[0]
        if len(ws) > 1:
            y += ws[1]
        return [y], (x, ws[0])

    def backward(self, p, saved, gys, need):
        x, w = saved
        gy = gys[0]
        gx = gy @ w.T if need[0] else None
        gw = gb = None
        if x.ndim == 2:
            x2, gy2 = x, gy
        else:
            x2, gy2 = x.reshape(-1, x.shape[-1]), gy.reshape(-1, gy.shape[-1])
        if need[1]:
            gw = x2.T @ gy2
        if len(need) > 2 and need[2]:
            gb = gy2.sum(axis=0)
        return [gx, gw, gb][: len(need)]
