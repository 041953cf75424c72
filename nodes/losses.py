"""Losses: one number out, the mean over all elements or positions (PyTorch's reduction="mean").

A target of the same float type as the prediction gets a gradient too, as in PyTorch; class ids
do not.
"""

from __future__ import annotations

from .base import (
    FLOAT,
    INT,
    NodeType,
    Sample,
    ShapeError,
    TensorType,
    broadcast_shapes,
    float_input,
)
from .kernels import cross_entropy, cross_entropy_backward, sigmoid
from .registry import register

_SCALAR = TensorType((), FLOAT)


def _same_lengths(a: tuple, b: tuple) -> bool:
    """Equal shapes, where an unknown length matches anything."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _check_target(ins: dict, pred_port: str) -> None:
    """The target must broadcast to the prediction's shape without enlarging it.

    PyTorch only warns when, say, pred (N, 1) meets target (N,) and then averages over an
    (N, N) grid; that is almost always a bug, so here it is an error.
    """
    pred, target = float_input(ins, pred_port), float_input(ins, "target")
    out = broadcast_shapes(pred.shape, target.shape, port="target")
    if not _same_lengths(out, pred.shape) or any(
        o is None and d is not None for o, d in zip(out, pred.shape)
    ):
        raise ShapeError("target", f"shape {target} does not match {pred_port} {pred}")


class Loss(NodeType):
    category = "Losses"
    inputs = ("pred", "target")
    samples = (
        Sample({}, {"pred": (4, 3), "target": (4, 3)}),
        Sample({}, {"pred": (2, 3, 2), "target": (2, 3, 2)}, note="3-D"),
        Sample({}, {"pred": (4, 3), "target": (3,)}, note="one target for every sample"),
    )

    def infer(self, p, ins):
        _check_target(ins, self.inputs[0])
        return {"y": _SCALAR}


class DifferenceLoss(Loss):
    """mean(f(pred - target)). Subclasses give f and its derivative as code over the
    difference `{d}`: `np_fn` and `np_grad`."""

    np_fn = ""
    np_grad = ""

    def np_forward(self, p, e):
        d = e.local("diff")
        e.emit(e.fmt(f"{d} = {{pred}} - {{target}}"))
        return f"np.asarray(({self.np_fn.format(d=d)}).mean(), dtype={d}.dtype)"

    def np_backward(self, p, e):
        d, g = e.local("diff"), e.tmp("g")
        e.emit(e.fmt(f"{g} = {self.np_grad.format(d=d)} * ({{gy}} / {d}.size)"))
        shape = _pair_shape(e, "pred")
        out = {}
        if e.need("pred"):
            out["pred"] = e.ub(g, "pred", shape)
        if e.need("target"):
            out["target"] = e.ub(f"-{g}", "target", shape)
        return out


@register
class MSELoss(DifferenceLoss):
    help = "Mean of squared differences between pred and target."
    np_fn = "{d} * {d}"
    np_grad = "2 * {d}"
    torch_forward = "torch.mean(({pred} - {target}) ** 2)"


@register
class L1Loss(DifferenceLoss):
    help = "Mean of absolute differences between pred and target."
    np_fn = "np.abs({d})"
    np_grad = "np.sign({d})"
    torch_forward = "torch.mean(torch.abs({pred} - {target}))"


@register
class CrossEntropyLoss(NodeType):
    category = "Losses"
    help = "Softmax cross-entropy, classes on the last axis; target class ids or probabilities."


    @property
    def torch_helpers(self):
        return (torch_cross_entropy,)

    def np_forward(self, p, e):
        e.emit(e.fmt(f"{{y}}, {e.local('logp')} = {e.helper(cross_entropy)}({{logits}}, {{target}})"))

    def np_backward(self, p, e):
        gl, gt = e.tmp("glogits"), e.tmp("gtarget")
        name = e.helper(cross_entropy_backward)
        e.emit(e.fmt(f"{gl}, {gt} = {name}({e.local('logp')}, {{target}}, {{gy}})"))
        return {"logits": gl, "target": gt}  # the target's is None for class ids

    def torch_forward(self, p, e):
        return e.fmt(f"{e.helper(torch_cross_entropy)}({{logits}}, {{target}})")
    inputs = ("logits", "target")
    samples = (
        Sample({}, {"logits": (5, 3), "target": ((5,), "int64", 3)}),
        Sample({}, {"logits": (2, 4, 3), "target": ((2, 4), "int64", 3)}, note="a sequence"),
        Sample({}, {"logits": (4, 3), "target": (4, 3)}, note="probability targets"),
        Sample({}, {"logits": (2, 3, 4), "target": (2, 3, 4)}, note="3-D probabilities"),
    )

    def infer(self, p, ins):
        logits, target = float_input(ins, "logits"), ins["target"]
        if logits.ndim < 1 or logits.shape[-1] is None:
            raise ShapeError("logits", f"needs a known last axis of classes, got {logits}")
        if target.dtype == INT:
            expected, what = logits.shape[:-1], "class ids shaped like logits without the last axis"
        else:
            expected, what = logits.shape, "probabilities shaped like logits"
        if not _same_lengths(target.shape, expected):
            raise ShapeError("target", f"expected {what} {TensorType(expected)}, "
                                       f"got {target} (logits {logits})")
        return {"y": _SCALAR}


@register
class BCEWithLogitsLoss(Loss):
    help = "Binary cross-entropy of sigmoid(logits) against target, computed stably."
    # max(x, 0) - x t + log(1 + e^-|x|): never exponentiates a positive number.
    np_forward = ("np.asarray((np.maximum({logits}, 0) - {logits} * {target} "
                  "+ np.log1p(np.exp(-np.abs({logits})))).mean(), dtype={logits}.dtype)")
    torch_forward = "F.binary_cross_entropy_with_logits({logits}, {target}.expand_as({logits}))"

    def np_backward(self, p, e):
        scale = e.tmp("scale")
        e.emit(e.fmt(f"{scale} = {{gy}} / np.broadcast({{logits}}, {{target}}).size"))
        shape = _pair_shape(e, "logits")
        out = {}
        if e.need("logits"):
            g = e.fmt(f"({e.helper(sigmoid)}({{logits}}) - {{target}}) * {scale}")
            out["logits"] = e.ub(g, "logits", shape)
        if e.need("target"):
            out["target"] = e.ub(e.fmt(f"-{{logits}} * {scale}"), "target", shape)
        return out
    inputs = ("logits", "target")
    samples = (
        Sample({}, {"logits": (4, 3), "target": (4, 3)}),
        Sample({}, {"logits": (3,), "target": (3,)}, note="one logit per sample"),
        Sample({}, {"logits": (2, 3, 2), "target": (2, 3, 2)}, note="3-D"),
    )


# ---------------------------------------------------------------------------------------------
# Helpers of the rules above


def _pair_shape(e, first: str) -> tuple:
    """The static shape `first` and target broadcast to (None: a length set at run time)."""
    a, b = e.t(first).shape, e.t("target").shape
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    return tuple(y if x == 1 else x for x, y in zip(a, b))


F = None  # torch.nn.functional in the exported module


def torch_cross_entropy(logits, target):
    """Cross-entropy with classes on the last axis (PyTorch wants them on axis 1)."""
    if logits.ndim > 2:
        logits = logits.movedim(-1, 1)
        if target.is_floating_point():
            target = target.movedim(-1, 1)
    return F.cross_entropy(logits, target)
