"""Layers with weights or run-time behaviour: Linear, Embedding, LayerNorm, Dropout.

Convolution and pooling live in conv.py; Flatten and Reshape in tensor.py.
"""

from __future__ import annotations

import math

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
from .kernels import embedding
from .registry import register


def _known_last_axis(x: TensorType, what: str) -> int:
    if x.ndim < 1 or x.shape[-1] is None:
        raise ShapeError("x", f"needs a known last axis ({what}), got {x}")
    return x.shape[-1]


@register
class Linear(NodeType):
    category = "Layers"
    help = "y = x @ weight + bias over the last axis."
    stacked_weight_grads = True  # the weight gradients sum over every row of x and gy
    torch_forward = "{self}({x})"
    torch_weights = {"weight": ("weight", True), "bias": ("bias", False)}  # (in, out) -> (out, in)

    def np_forward(self, p, e):
        if not p["bias"]:
            return e.fmt("{x} @ {weight}")
        e.emit(e.fmt("{y} = {x} @ {weight}"))
        e.emit(e.fmt("{y} += {bias}"))  # y is new: adding in place saves a copy

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

    def onnx_forward(self, p, g):
        y = g.op("MatMul", g.x(), g.weight("weight"))
        return g.op("Add", y, g.weight("bias")) if p["bias"] else y

    def rowwise_axes(self, p):
        return 1
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


@register
class Embedding(NodeType):
    category = "Layers"
    help = "Looks up a learned vector for each int64 id; y adds a last axis."
    stacked_weight_grads = True  # add.at over every id
    torch_forward = "{self}({x})"
    torch_weights = {"weight": ("weight", False)}

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(embedding)}({{weight}}, {{x}})")

    def np_backward(self, p, e):
        gw = e.tmp("gw")
        e.emit(e.fmt(f"{gw} = np.zeros({{weight}}.shape, dtype={{gy}}.dtype)"))
        # add.at accumulates ids that occur more than once.
        e.emit(e.fmt(f"np.add.at({gw}, {{x}}.ravel(), {{gy}}.reshape(-1, {{weight}}.shape[1]))"))
        return {"weight": gw}

    def torch_module(self, p, e):
        return f"nn.Embedding({p['num_embeddings']}, {p['embedding_dim']})"

    def onnx_forward(self, p, g):
        return g.op("Gather", g.weight("weight"), g.x(), axis=0)
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

    def onnx_forward(self, p, g):
        return g.op("LayerNormalization", g.x(), g.weight("weight"), g.weight("bias"),
                    axis=-1, epsilon=p["eps"])

    def rowwise_axes(self, p):
        return 1
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


@register
class Dropout(NodeType):
    category = "Layers"
    help = ("While training, zeroes each element with probability p and scales the rest by "
            "1/(1-p); the identity otherwise.")
    # numpy draws its masks from the run's rng; torch uses nn.Dropout (and its own masks).
    torch_forward = "{self}({x})"
    torch_weights: dict = {}

    def np_forward(self, p, e):
        if p["p"] == 0.0:
            return e.fmt("{x}")
        scale = e.local("scale")
        if p["p"] == 1.0:
            e.emit(e.fmt(f"{scale} = np.zeros({{x}}.shape, dtype={{x}}.dtype) if train else None"))
        else:
            keep = f"1.0 / (1.0 - {e.lit(p['p'])})"
            e.emit(e.fmt(f"{scale} = (rng.random({{x}}.shape) >= {{p}}).astype({{x}}.dtype) * "
                         f"({keep}) if train else None"))
        return e.fmt(f"{{x}} * {scale} if train else {{x}}")

    def np_backward(self, p, e):
        if p["p"] == 0.0:
            return {"x": e.fmt("{gy}")}
        scale = e.local("scale")
        return {"x": e.fmt(f"{{gy}} * {scale} if train else {{gy}}")}

    def torch_module(self, p, e):
        return f"nn.Dropout({e.lit(p['p'])})"

    # The ONNX model is inference, where Dropout passes x through.
    onnx_forward = "Identity"
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
