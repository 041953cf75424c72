"""Layers with weights or run-time behaviour: Linear, Embedding, LayerNorm, Dropout.

Convolution and pooling live in conv.py; Flatten and Reshape in tensor.py.
"""

from __future__ import annotations

import math

import numpy as np

from .base import (
    FLOAT,
    INT,
    NodeType,
    Param,
    Sample,
    ShapeError,
    TensorType,
    Weight,
    constant,
    float_input,
    normal,
    uniform,
)
from .registry import register


def _known_last_axis(x: TensorType, what: str) -> int:
    if x.ndim < 1 or x.shape[-1] is None:
        raise ShapeError("x", f"needs a known last axis ({what}), got {x}")
    return x.shape[-1]


@register
class Linear(NodeType):
    category = "Layers"
    help = "y = x @ weight + bias over the last axis."
    torch_forward = "{self}({x})"
    torch_weights = {"weight": ("weight", True), "bias": ("bias", False)}  # (in, out) -> (out, in)

    def np_forward(self, p, e):
        return e.fmt("{x} @ {weight} + {bias}" if p["bias"] else "{x} @ {weight}")

    def np_backward(self, p, e):
        out = {}
        if e.need("x"):
            out["x"] = e.fmt("{gy} @ {weight}.T")
        if e.ndim("x") == 2:
            x, gy = e.fmt("{x}"), e.fmt("{gy}")
        else:  # every axis before the last is a batch of rows
            x, gy = e.fmt("{x}.reshape(-1, {x}.shape[-1])"), e.fmt("{gy}.reshape(-1, {gy}.shape[-1])")
        out["weight"] = f"{x}.T @ {gy}"
        if p["bias"]:
            out["bias"] = f"{gy}.sum(axis=0)"
        return out

    def torch_module(self, p, e):
        return f"nn.Linear({e.t('x').shape[-1]}, {p['out_features']}, bias={p['bias']})"
    params = (
        Param("out_features", "int", help="Number of output units.", minimum=1),
        Param("bias", "bool", True, "Add a learned bias."),
    )
    summary_format = "{out_features}"
    samples = (
        Sample({"out_features": 3}, {"x": (4, 5)}),
        Sample({"out_features": 2, "bias": False}, {"x": (2, 3, 4)}, note="3-D input, no bias"),
        Sample({"out_features": 2}, {"x": (3, 2, 2, 3)}, note="4-D input"),
    )

    def infer(self, p, ins):
        x = float_input(ins, "x")
        _known_last_axis(x, "the input features")
        return {"y": TensorType(x.shape[:-1] + (p["out_features"],), FLOAT)}

    def weights(self, p, ins):
        n_in = _known_last_axis(ins["x"], "the input features")
        k = 1.0 / math.sqrt(n_in) if n_in else 0.0
        out = {"weight": Weight((n_in, p["out_features"]), uniform(k))}
        if p["bias"]:
            out["bias"] = Weight((p["out_features"],), uniform(k))
        return out

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        y = x @ ws[0]
        if len(ws) > 1:
            y += ws[1]  # y is ours: adding in place saves a copy
        return [y], (x, ws[0])

    def backward(self, p, saved, gys, need):
        x, w = saved
        gy = gys[0]
        gx = gy @ w.T if need[0] else None
        if x.ndim != 2:  # every axis before the last is a batch of rows
            x, gy = x.reshape(-1, x.shape[-1]), gy.reshape(-1, gy.shape[-1])
        gw = x.T @ gy if need[1] else None
        if len(need) == 2:
            return [gx, gw]
        return [gx, gw, np.add.reduce(gy, axis=0) if need[2] else None]


@register
class Embedding(NodeType):
    category = "Layers"
    help = "Looks up a learned vector for each int64 id; y adds a last axis."
    np_forward = "{weight}[{x}]"
    torch_forward = "{self}({x})"
    torch_weights = {"weight": ("weight", False)}

    def np_backward(self, p, e):
        gw = e.tmp("gw")
        e.emit(e.fmt(f"{gw} = np.zeros({{weight}}.shape, dtype={{gy}}.dtype)"))
        e.emit(e.fmt(f"np.add.at({gw}, {{x}}.ravel(), {{gy}}.reshape(-1, {{weight}}.shape[1]))"))
        return {"weight": gw}

    def torch_module(self, p, e):
        return f"nn.Embedding({p['num_embeddings']}, {p['embedding_dim']})"
    params = (
        Param("num_embeddings", "int", help="Number of ids (ids run from 0).", minimum=1),
        Param("embedding_dim", "int", help="Length of each vector.", minimum=1),
    )
    int_inputs = ("x",)
    nondiff_inputs = ("x",)
    summary_format = "{num_embeddings}x{embedding_dim}"
    samples = (
        Sample({"num_embeddings": 5, "embedding_dim": 3}, {"x": ((4,), "int64", 5)}),
        Sample({"num_embeddings": 4, "embedding_dim": 2}, {"x": ((3, 6), "int64", 4)},
               note="a sequence of ids per sample, with repeats"),
    )

    def infer(self, p, ins):
        x = ins["x"]
        if x.dtype != INT:
            raise ShapeError("x", f"expected int64 ids, got {x.dtype}; feed an int64 Input")
        return {"y": TensorType(x.shape + (p["embedding_dim"],), FLOAT)}

    def weights(self, p, ins):
        return {"weight": Weight((p["num_embeddings"], p["embedding_dim"]), normal(1.0))}

    def forward(self, p, xs, ws, ctx):
        x, w = xs[0], ws[0]
        if x.size and (x.min() < 0 or x.max() >= len(w)):
            raise ValueError(f"Embedding ids must be in [0, {len(w)}), got ids from "
                             f"{x.min()} to {x.max()}")
        return [w[x]], (x, w.shape)

    def backward(self, p, saved, gys, need):
        x, wshape = saved
        gw = None
        if need[1]:
            gw = np.zeros(wshape, dtype=gys[0].dtype)
            # add.at accumulates ids that occur more than once.
            np.add.at(gw, x.ravel(), gys[0].reshape(-1, wshape[1]))
        return [None, gw]


@register
class LayerNorm(NodeType):
    category = "Layers"
    help = "Normalises the last axis to mean 0 and variance 1, then scales and shifts."
    torch_forward = "{self}({x})"
    torch_weights = {"weight": ("weight", False), "bias": ("bias", False)}

    def np_forward(self, p, e):
        xhat, rstd, xc = e.local("xhat"), e.local("rstd"), e.tmp("xc")
        e.emit(e.fmt(f"{xc} = {{x}} - {{x}}.mean(axis=-1, keepdims=True)"))
        e.emit(e.fmt(f"{rstd} = 1 / np.sqrt(({xc} * {xc}).mean(axis=-1, keepdims=True) + {{eps}})"))
        e.emit(f"{xhat} = {xc} * {rstd}")
        return e.fmt(f"{xhat} * {{weight}} + {{bias}}")

    def np_backward(self, p, e):
        xhat, rstd = e.local("xhat"), e.local("rstd")
        out = {}
        if e.need("x"):
            gxhat = e.tmp("gxhat")
            e.emit(e.fmt(f"{gxhat} = {{gy}} * {{weight}}"))
            out["x"] = (f"{rstd} * ({gxhat} - {gxhat}.mean(axis=-1, keepdims=True) - {xhat} * "
                        f"({gxhat} * {xhat}).mean(axis=-1, keepdims=True))")
        rows = e.tmp("rows")
        e.emit(e.fmt(f"{rows} = {{gy}}.reshape(-1, {{gy}}.shape[-1])"))
        out["weight"] = f"({rows} * {xhat}.reshape({rows}.shape)).sum(axis=0)"
        out["bias"] = f"{rows}.sum(axis=0)"
        return out

    def torch_module(self, p, e):
        return f"nn.LayerNorm({e.t('x').shape[-1]}, eps={e.lit(p['eps'])})"
    params = (Param("eps", "float", 1e-5, "Added to the variance.", minimum=0.0),)
    samples = (
        Sample({}, {"x": (3, 5)}),
        Sample({"eps": 1e-3}, {"x": (2, 3, 4)}, note="3-D input"),
    )

    def infer(self, p, ins):
        x = float_input(ins, "x")
        _known_last_axis(x, "the normalised features")
        return {"y": x}

    def weights(self, p, ins):
        n = _known_last_axis(ins["x"], "the normalised features")
        return {"weight": Weight((n,), constant(1.0)), "bias": Weight((n,), constant(0.0))}

    def forward(self, p, xs, ws, ctx):
        x, (w, b) = xs[0], ws
        xc = x - x.mean(axis=-1, keepdims=True)
        rstd = 1 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + p["eps"])
        xhat = xc * rstd
        return [xhat * w + b], (xhat, rstd, w)

    def backward(self, p, saved, gys, need):
        xhat, rstd, w = saved
        gy = gys[0]
        gx = gw = gb = None
        if need[0]:
            gxhat = gy * w
            gx = rstd * (gxhat - gxhat.mean(axis=-1, keepdims=True)
                         - xhat * (gxhat * xhat).mean(axis=-1, keepdims=True))
        rows = gy.reshape(-1, gy.shape[-1])
        if need[1]:
            gw = (rows * xhat.reshape(rows.shape)).sum(axis=0)
        if need[2]:
            gb = rows.sum(axis=0)
        return [gx, gw, gb]


@register
class Dropout(NodeType):
    category = "Layers"
    help = ("While training, zeroes each element with probability p and scales the rest by "
            "1/(1-p); the identity otherwise.")
    # Export: numpy draws the engine's masks from the run's rng; torch uses nn.Dropout.
    torch_forward = "{self}({x})"
    torch_weights: dict = {}

    def np_forward(self, p, e):
        scale = e.local("scale")
        if p["p"] == 0.0:
            e.emit(f"{scale} = 1.0")
        elif p["p"] == 1.0:
            e.emit(e.fmt(f"{scale} = np.zeros({{x}}.shape, dtype={{x}}.dtype) if train else 1.0"))
        else:
            keep = f"1.0 / (1.0 - {e.lit(p['p'])})"
            e.emit(e.fmt(f"{scale} = (rng.random({{x}}.shape) >= {{p}}).astype({{x}}.dtype) * "
                         f"({keep}) if train else 1.0"))
        return e.fmt(f"{{x}} * {scale}")

    def np_backward(self, p, e):
        return {"x": e.fmt(f"{{gy}} * {e.local('scale')}")}

    def torch_module(self, p, e):
        return f"nn.Dropout({e.lit(p['p'])})"
    params = (Param("p", "float", 0.5, "Probability of zeroing an element.",
                    minimum=0.0, maximum=1.0),)
    summary_format = "{p:g}"
    samples = (
        Sample({}, {"x": (4, 5)}),
        Sample({"p": 0.2}, {"x": (2, 3, 4)}),
        Sample({"p": 1.0}, {"x": (3, 2)}, note="drops everything"),
    )

    def infer(self, p, ins):
        return {"y": float_input(ins, "x")}

    def forward(self, p, xs, ws, ctx):
        x = xs[0]
        if not ctx.train or p["p"] == 0.0:
            return [x], None
        if p["p"] == 1.0:
            scale = np.zeros(x.shape, dtype=x.dtype)
        else:
            keep = ctx.rng.random(x.shape) >= p["p"]
            scale = keep.astype(x.dtype)
            scale *= 1.0 / (1.0 - p["p"])
        return [x * scale], scale

    def backward(self, p, saved, gys, need):
        scale = saved
        return [gys[0] if scale is None else gys[0] * scale]
