"""What PyTorch computes for indexing, structure and reduction types (OneHot, ArgMax, Stack, Split,
Pad, Min, Var, LogSumExp) and the version-2 activations (SiLU, Mish, PReLU, GELU with
`approximate`): entries of tests/torch_reference.py's REFERENCE (same signature:
fn(p, inputs, weights) -> outputs)."""

from __future__ import annotations

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None


def _axes(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


def _one_hot(p, i, w):
    return [F.one_hot(i["x"], p["num_classes"]).to(torch.float64)]


def _argmax(p, i, w):
    return [torch.argmax(i["x"], dim=p["axis"], keepdim=p["keepdims"])]


def _stack(p, i, w):
    return [torch.stack([i[f"x{k}"] for k in range(p["n"])], dim=p["axis"])]


def _split(p, i, w):
    x = i["x"]
    return list(torch.chunk(x, p["n"], dim=p["axis"]))


def _pad(p, i, w):
    flat = [width for pair in p["pad"] for width in pair]
    return [F.pad(i["x"], flat, mode="constant", value=p["value"])]


def _min(p, i, w):
    # amin shares the gradient among ties; the samples have none, so it is the first arg-min.
    x = i["x"]
    return [x.amin(dim=_axes(p["axis"], x.ndim), keepdim=p["keepdims"])]


def _var(p, i, w):
    x = i["x"]
    return [torch.var(x, dim=_axes(p["axis"], x.ndim), unbiased=p["unbiased"],
                      keepdim=p["keepdims"])]


def _logsumexp(p, i, w):
    x = i["x"]
    return [torch.logsumexp(x, dim=_axes(p["axis"], x.ndim), keepdim=p["keepdims"])]


REFERENCE: dict = {
    "OneHot": _one_hot,
    "ArgMax": _argmax,
    "Stack": _stack,
    "Split": _split,
    "Pad": _pad,
    "Min": _min,
    "Var": _var,
    "LogSumExp": _logsumexp,
    "SiLU": lambda p, i, w: [F.silu(i["x"])],
    "Mish": lambda p, i, w: [F.mish(i["x"])],
    "PReLU": lambda p, i, w: [F.prelu(i["x"], w["weight"])],
    "GELU": lambda p, i, w: [F.gelu(i["x"], approximate=p["approximate"])],
}
