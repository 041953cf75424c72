"""What PyTorch computes for each node type: type name -> fn(p, inputs, weights) -> outputs.

`inputs` maps port -> torch tensor, `weights` maps weight name -> torch tensor, `p` is the
resolved params dict; the function returns the list of output tensors, in the order of the
type's output ports. Layouts follow ours: Linear's weight is (in, out), so it is transposed for
F.linear; classes are on the last axis, PyTorch's cross-entropy wants them on axis 1.
Dropout is the identity here (eval mode); training mode is checked separately.
"""

from __future__ import annotations

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the table is still read (every type must have an entry); it runs with torch
    torch = F = None


def _axes(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


def _sum(p, i, w):
    x = i["x"]
    return [x.sum(dim=_axes(p["axis"], x.ndim), keepdim=p["keepdims"])]


def _mean(p, i, w):
    x = i["x"]
    return [x.mean(dim=_axes(p["axis"], x.ndim), keepdim=p["keepdims"])]


def _max(p, i, w):
    # amax spreads the gradient over ties; the samples have none, so it equals "first arg-max".
    x = i["x"]
    return [x.amax(dim=_axes(p["axis"], x.ndim), keepdim=p["keepdims"])]


def _gather(p, i, w):
    x, index = i["x"], i["index"]
    axis = p["axis"] % x.ndim
    shape = [1] * x.ndim
    shape[0] = index.shape[0]
    if index.ndim == 2:
        shape[axis] = index.shape[1]
    full = list(x.shape)
    full[axis] = shape[axis]
    y = torch.gather(x, axis, index.reshape(shape).expand(full))
    return [y.squeeze(axis) if index.ndim == 1 else y]


def _slice(p, i, w):
    x = i["x"]
    axis = p["axis"] % x.ndim
    step = p["step"]
    if step > 0:
        index = (slice(None),) * axis + (slice(p["start"], p["stop"], step),)
        return [x[index]]
    # torch has no negative steps: take the Python slice's indices explicitly.
    n = x.shape[axis]
    idx = list(range(n))[slice(p["start"], p["stop"], step)]
    return [x.index_select(axis, torch.tensor(idx, dtype=torch.long))]


def _cross_entropy(p, i, w):
    logits, target = i["logits"], i["target"]
    # PyTorch wants classes on axis 1: (N, C, d1, ...).
    moved = logits.movedim(-1, 1) if logits.ndim > 2 else logits
    if target.dtype == torch.long:
        return [F.cross_entropy(moved, target)]
    t = target.movedim(-1, 1) if target.ndim > 2 else target
    return [F.cross_entropy(moved, t)]


def _conv2d(p, i, w):
    return [F.conv2d(i["x"], w["weight"], w.get("bias"), stride=p["stride"],
                     padding=p["padding"])]


def _pool_stride(p):
    return p["stride"] or p["kernel_size"]


REFERENCE = {
    # math
    "Add": lambda p, i, w: [i["a"] + i["b"]],
    "Sub": lambda p, i, w: [i["a"] - i["b"]],
    "Mul": lambda p, i, w: [i["a"] * i["b"]],
    "Div": lambda p, i, w: [i["a"] / i["b"]],
    "Maximum": lambda p, i, w: [torch.maximum(i["a"], i["b"])],
    "Minimum": lambda p, i, w: [torch.minimum(i["a"], i["b"])],
    "MatMul": lambda p, i, w: [torch.matmul(i["a"], i["b"])],
    "Greater": lambda p, i, w: [(i["a"] > i["b"]).to(i["a"].dtype)],
    "Where": lambda p, i, w: [torch.where(i["cond"] > 0, i["a"], i["b"])],
    "Neg": lambda p, i, w: [-i["x"]],
    "Exp": lambda p, i, w: [torch.exp(i["x"])],
    "Log": lambda p, i, w: [torch.log(i["x"])],
    "Sqrt": lambda p, i, w: [torch.sqrt(i["x"])],
    "Square": lambda p, i, w: [torch.square(i["x"])],
    "Abs": lambda p, i, w: [torch.abs(i["x"])],
    "Sin": lambda p, i, w: [torch.sin(i["x"])],
    "Cos": lambda p, i, w: [torch.cos(i["x"])],
    "Pow": lambda p, i, w: [torch.pow(i["x"], p["exponent"])],
    "Sum": _sum,
    "Mean": _mean,
    "Max": _max,
    "Gather": _gather,
    "Concat": lambda p, i, w: [torch.cat([i[f"x{k}"] for k in range(p["n"])], dim=p["axis"])],
    "Slice": _slice,
    "Transpose": lambda p, i, w: [i["x"].permute(*p["axes"])],
    "Flatten": lambda p, i, w: [i["x"].flatten(1)],
    "Reshape": lambda p, i, w: [i["x"].reshape(i["x"].shape[0], *p["shape"])],
    # activations
    "ReLU": lambda p, i, w: [F.relu(i["x"])],
    "LeakyReLU": lambda p, i, w: [F.leaky_relu(i["x"], p["negative_slope"])],
    "Sigmoid": lambda p, i, w: [torch.sigmoid(i["x"])],
    "Tanh": lambda p, i, w: [torch.tanh(i["x"])],
    "ELU": lambda p, i, w: [F.elu(i["x"], p["alpha"])],
    "Softplus": lambda p, i, w: [F.softplus(i["x"])],
    "GELU": lambda p, i, w: [F.gelu(i["x"], approximate="tanh")],
    "Identity": lambda p, i, w: [i["x"]],
    "Softmax": lambda p, i, w: [F.softmax(i["x"], dim=p["axis"])],
    "LogSoftmax": lambda p, i, w: [F.log_softmax(i["x"], dim=p["axis"])],
    # layers
    "Linear": lambda p, i, w: [F.linear(i["x"], w["weight"].T, w.get("bias"))],
    "Conv2D": _conv2d,
    "MaxPool2D": lambda p, i, w: [F.max_pool2d(i["x"], p["kernel_size"], _pool_stride(p))],
    "AvgPool2D": lambda p, i, w: [F.avg_pool2d(i["x"], p["kernel_size"], _pool_stride(p))],
    "Embedding": lambda p, i, w: [F.embedding(i["x"], w["weight"])],
    "LayerNorm": lambda p, i, w: [F.layer_norm(i["x"], i["x"].shape[-1:], w["weight"],
                                               w["bias"], eps=p["eps"])],
    "Dropout": lambda p, i, w: [F.dropout(i["x"], p["p"], training=False)],
    # sources
    "Parameter": lambda p, i, w: [w["value"]],
    # losses
    "MSELoss": lambda p, i, w: [F.mse_loss(*torch.broadcast_tensors(i["pred"], i["target"]))],
    "L1Loss": lambda p, i, w: [F.l1_loss(*torch.broadcast_tensors(i["pred"], i["target"]))],
    "CrossEntropyLoss": _cross_entropy,
    "BCEWithLogitsLoss": lambda p, i, w: [F.binary_cross_entropy_with_logits(i["logits"],
                                                                             i["target"])],
}


# The version-2 library's entries, one module per group of types.
from tests import (
    reference_conv,
    reference_losses,
    reference_norm,
    reference_recurrent,
    reference_structure,
)

for _group in (reference_structure, reference_losses, reference_conv, reference_recurrent,
               reference_norm):
    REFERENCE.update(_group.REFERENCE)
