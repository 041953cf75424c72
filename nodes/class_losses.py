"""Losses over classes on the last axis: CrossEntropyLoss (of logits) and NLLLoss (of
log-probabilities), with PyTorch's options: class `weight`s, an `ignore_index`, label smoothing
(CrossEntropyLoss) and a `reduction`.

PyTorch wants the classes on axis 1; ours are on the last axis, where a Linear puts them, so
the torch rules move them there and back.
"""

from __future__ import annotations

from .base import INT, NodeType, Param, Sample, ShapeError, TensorType, float_input
from .kernels import (
    class_loss,
    class_loss_backward,
    cross_entropy_loss,
    cross_entropy_loss_backward,
)
from .losses import REDUCTION, reduced_type, same_lengths
from .registry import register

WEIGHT = Param("weight", "value", None,
               "A weight for each class, a list of one number per class; null: all 1.",
               nullable=True)
IGNORE_INDEX = Param("ignore_index", "int", -100,
                     "Positions whose target is this class id count for nothing.")

_WEIGHTS = [0.5, 1.0, 2.0]  # for the samples' three classes


class ClassLoss(NodeType):
    """A loss of (..., C) scores against class ids shaped (...), C known when checked."""

    category = "Losses"

    def summary(self, p):
        return self.name if p["reduction"] == "mean" else f"{self.name} {p['reduction']}"

    def classes(self, p: dict, ins: dict) -> TensorType:
        """The scores' type, with its classes checked against the class weights."""
        port = self.inputs[0]
        scores = float_input(ins, port)
        if scores.ndim < 1 or scores.shape[-1] is None:
            raise ShapeError(port, f"needs a known last axis of classes, got {scores}")
        weight = p["weight"]
        if weight is not None:
            if not isinstance(weight, (list, tuple)) or any(
                    isinstance(w, (list, tuple)) for w in weight):
                raise ShapeError(None, f"weight must be a list of one number per class, "
                                       f"got {weight!r}")
            if len(weight) != scores.shape[-1]:
                raise ShapeError(port, f"has {scores.shape[-1]} classes on its last axis, "
                                       f"but weight gives {len(weight)}")
        return scores

    def options(self, p: dict, e, *names: str) -> str:
        """The params as arguments of a kernel call (`reduction` is one of its choices). Class
        weights are written as floats: TorchScript types `[1, 2]` as a list of ints."""
        return ", ".join(repr(p[n]) if n == "reduction"
                         else e.lit([float(w) for w in p[n]]) if n == "weight" and p[n]
                         else e.lit(p[n]) for n in names)


def _check_ids(target: TensorType, scores: TensorType, port: str) -> None:
    expected = scores.shape[:-1]
    if not same_lengths(target.shape, expected):
        raise ShapeError("target", f"expected class ids shaped like {port} without the last "
                                   f"axis {TensorType(expected)}, got {target} ({port} {scores})")


@register
class CrossEntropyLoss(ClassLoss):
    help = "Softmax cross-entropy, classes on the last axis; target class ids or probabilities."
    inputs = ("logits", "target")
    params = (
        REDUCTION, WEIGHT, IGNORE_INDEX,
        Param("label_smoothing", "float", 0.0,
              "Mix this share of the uniform distribution into the target, as PyTorch.",
              minimum=0.0, maximum=1.0),
    )
    samples = (
        Sample({}, {"logits": (5, 3), "target": ((5,), "int64", 3)}),
        Sample({}, {"logits": (2, 4, 3), "target": ((2, 4), "int64", 3)}, note="a sequence"),
        Sample({}, {"logits": (4, 3), "target": (4, 3)}, note="probability targets"),
        Sample({}, {"logits": (2, 3, 4), "target": (2, 3, 4)}, note="3-D probabilities"),
        Sample({"weight": _WEIGHTS, "ignore_index": 1},
               {"logits": (6, 3), "target": ((6,), "int64", 3)}, note="weighted mean"),
        Sample({"label_smoothing": 0.1, "reduction": "sum"},
               {"logits": (2, 4, 3), "target": ((2, 4), "int64", 3)}),
        Sample({"weight": _WEIGHTS, "label_smoothing": 0.2, "ignore_index": 2},
               {"logits": (2, 4, 3), "target": ((2, 4), "int64", 3)}, note="every option"),
        Sample({"weight": _WEIGHTS, "label_smoothing": 0.2, "ignore_index": 0,
                "reduction": "none"}, {"logits": (5, 3), "target": ((5,), "int64", 3)}),
        Sample({"weight": _WEIGHTS, "label_smoothing": 0.1, "ignore_index": 0},
               {"logits": (4, 3), "target": (4, 3)}, note="weighted, smoothed probabilities"),
        Sample({"reduction": "none"}, {"logits": (2, 3, 4), "target": (2, 3, 4)},
               note="each position's loss against probabilities"),
    )

    def infer(self, p, ins):
        logits, target = self.classes(p, ins), ins["target"]
        if target.dtype == INT:
            _check_ids(target, logits, "logits")
        else:
            target = float_input(ins, "target")
            if not same_lengths(target.shape, logits.shape):
                raise ShapeError("target", f"expected probabilities shaped like logits "
                                           f"{logits}, got {target}")
        return {"y": reduced_type(p, logits.shape[:-1])}

    def _args(self, p, e) -> str:
        return self.options(p, e, "weight", "ignore_index", "label_smoothing", "reduction")

    def np_forward(self, p, e):
        call = f"{e.helper(cross_entropy_loss)}({{logits}}, {{target}}, {self._args(p, e)})"
        e.emit(e.fmt(f"{{y}}, {e.local('logp')} = {call}"))

    def np_backward(self, p, e):
        gl, gt = e.tmp("glogits"), e.tmp("gtarget")
        name = e.helper(cross_entropy_loss_backward)
        e.emit(e.fmt(f"{gl}, {gt} = {name}({e.local('logp')}, {{target}}, {self._args(p, e)}, "
                     "{gy})"))
        return {"logits": gl, "target": gt}  # the target's is None for class ids

    @property
    def torch_helpers(self):
        return (torch_cross_entropy,)

    def torch_forward(self, p, e):
        defaults = {"weight": None, "ignore_index": -100, "label_smoothing": 0.0,
                    "reduction": "mean"}
        extra = "".join(f", {n}={self.options(p, e, n)}" for n in defaults if p[n] != defaults[n])
        return e.fmt(f"{e.helper(torch_cross_entropy)}({{logits}}, {{target}}{extra})")

    def onnx_forward(self, p, g):
        logp = g.op("LogSoftmax", g.x("logits"), axis=-1)
        if g.is_int("target"):
            return onnx_class_loss(g, logp, "logits", p, p["label_smoothing"])
        classes = g.t("logits").shape[-1]
        q = g.x("target")
        if p["label_smoothing"]:
            q = g.op("Add", g.op("Mul", q, g.const(1.0 - p["label_smoothing"])),
                     g.const(p["label_smoothing"] / classes))
        if p["weight"] is not None:
            q = g.op("Mul", q, g.const(p["weight"]))
        terms = g.op("Mul", q, logp)
        if p["reduction"] == "none":
            return g.op("Neg", g.reduce("ReduceSum", terms, [g.ndim("logits") - 1], False))
        total = g.op("Neg", g.reduce("ReduceSum", terms, None, False))
        if p["reduction"] == "sum":
            return total
        positions = list(range(g.ndim("logits") - 1))
        return g.op("Div", total, g.count(g.x("logits"), g.t("logits").shape, positions))


@register
class NLLLoss(ClassLoss):
    help = "Negative log-likelihood of class ids under log-probabilities (classes last)."
    inputs = ("logp", "target")
    int_inputs = ("target",)
    nondiff_inputs = ("target",)
    params = (REDUCTION, WEIGHT, IGNORE_INDEX)
    samples = (
        Sample({}, {"logp": (5, 3), "target": ((5,), "int64", 3)}),
        Sample({"weight": _WEIGHTS, "ignore_index": 1},
               {"logp": (2, 4, 3), "target": ((2, 4), "int64", 3)}, note="weighted mean"),
        Sample({"reduction": "sum"}, {"logp": (2, 4, 3), "target": ((2, 4), "int64", 3)}),
        Sample({"weight": _WEIGHTS, "ignore_index": 0, "reduction": "none"},
               {"logp": (5, 3), "target": ((5,), "int64", 3)}),
    )

    def infer(self, p, ins):
        logp, target = self.classes(p, ins), ins["target"]
        if target.dtype != INT:
            raise ShapeError("target", f"expected int64 class ids, got {target}")
        _check_ids(target, logp, "logp")
        return {"y": reduced_type(p, logp.shape[:-1])}

    def _args(self, p, e) -> str:
        return self.options(p, e, "weight", "ignore_index") + ", 0.0, " + repr(p["reduction"])

    def np_forward(self, p, e):
        return e.fmt(f"{e.helper(class_loss)}({{logp}}, {{target}}, {self._args(p, e)})")

    def np_backward(self, p, e):
        name = e.helper(class_loss_backward)
        return {"logp": e.fmt(f"{name}({{logp}}, {{target}}, {self._args(p, e)}, {{gy}}, False)")}

    @property
    def torch_helpers(self):
        return (torch_nll_loss,)

    def torch_forward(self, p, e):
        args = self.options(p, e, "weight", "ignore_index", "reduction")
        return e.fmt(f"{e.helper(torch_nll_loss)}({{logp}}, {{target}}, {args})")

    def onnx_forward(self, p, g):
        return onnx_class_loss(g, g.x("logp"), "logp", p, 0.0)


def onnx_class_loss(g, logp: str, port: str, p: dict, smoothing: float) -> str:
    """The ONNX rules' loss of log-probabilities (..., C) against the class ids at `target`,
    as the class_loss kernel computes it: an ignored position reads class 0 and counts for
    nothing, and a mean divides by the summed weights of the positions that count."""
    last = g.ndim(port) - 1
    ids = g.x("target")
    keep = g.op("Not", g.op("Equal", ids, g.const(p["ignore_index"], "int64")))
    safe = g.where(keep, ids, g.const(0, "int64"))
    picked = g.op("GatherElements", logp, g.unsqueeze(safe, [-1]), axis=last)
    per = g.cast(keep, "float")
    if p["weight"] is not None:
        per = g.op("Mul", g.op("Gather", g.const(p["weight"]), safe, axis=0), per)
    losses = g.op("Mul", g.op("Neg", g.squeeze(picked, [-1])), per)
    if smoothing:
        classes = g.t(port).shape[-1]
        weights = g.const(p["weight"] if p["weight"] is not None else [1.0] * classes)
        spread = g.op("Neg", g.reduce("ReduceSum", g.op("Mul", logp, weights), [last], False))
        spread = g.op("Mul", spread, g.cast(keep, "float"))
        losses = g.op("Add", g.op("Mul", losses, g.const(1.0 - smoothing)),
                      g.op("Mul", spread, g.const(smoothing / classes)))
    if p["reduction"] == "none":
        return losses
    total = g.reduce("ReduceSum", losses, None, False)
    if p["reduction"] == "sum":
        return total
    return g.op("Div", total, g.reduce("ReduceSum", per, None, False))


# ---------------------------------------------------------------------------------------------
# The torch rules' helpers, copied into an exported module (which has torch and F)

torch = F = None


def torch_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                        weight: list[float] | None = None, ignore_index: int = -100,
                        label_smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy with classes on the last axis (PyTorch wants them on axis 1).
    ignore_index applies to class ids only (PyTorch refuses it with probabilities). Typed,
    and no variable changes its type, so that torch.jit.script takes a model using it."""
    if target.is_floating_point():
        ignore_index = -100
    if logits.ndim > 2:
        logits = logits.movedim(-1, 1)
        if target.is_floating_point():
            target = target.movedim(-1, 1)
    classes: torch.Tensor | None = None
    if weight is not None:
        classes = torch.tensor(weight, dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(logits, target, weight=classes, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)


def torch_nll_loss(logp: torch.Tensor, target: torch.Tensor, weight: list[float] | None,
                   ignore_index: int, reduction: str) -> torch.Tensor:
    """NLL loss with classes on the last axis (PyTorch wants them on axis 1)."""
    if logp.ndim > 2:
        logp = logp.movedim(-1, 1)
    classes: torch.Tensor | None = None
    if weight is not None:
        classes = torch.tensor(weight, dtype=logp.dtype, device=logp.device)
    return F.nll_loss(logp, target, weight=classes, ignore_index=ignore_index,
                      reduction=reduction)
