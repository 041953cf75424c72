"""Losses of a prediction against a target, element by element: MSELoss, L1Loss, HuberLoss,
BCEWithLogitsLoss, BCELoss, KLDivLoss. The class-id losses are in class_losses.py.

Each has PyTorch's `reduction`: `mean` (the default, and the only one of version 1) and `sum`
give one number; `none` gives every element's loss, shaped like the prediction. A target of
the same float type as the prediction gets a gradient too, as in PyTorch.
"""

from __future__ import annotations

from .base import (
    FLOAT,
    NodeType,
    Param,
    Sample,
    ShapeError,
    TensorType,
    broadcast_shapes,
    float_input,
)
from .kernels import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    clamped_logs,
    sigmoid,
    xlogx,
)
from .registry import register

_SCALAR = TensorType((), FLOAT)

REDUCTION = Param("reduction", "choice", "mean",
                  "How the losses of the elements make y: their mean, their sum, or none "
                  "(y keeps them all).", choices=("mean", "sum", "none"))


def reduced_type(p: dict, shape: tuple) -> TensorType:
    """y's type: one number, or (reduction none) the losses of every element of `shape`."""
    return TensorType(tuple(shape), FLOAT) if p["reduction"] == "none" else _SCALAR


def np_reduce(losses: str, reduction: str, like: str) -> str:
    """Code for y from code for the losses of every element; `like` gives the float type."""
    if reduction == "none":
        return losses
    return f"np.asarray(({losses}).{reduction}(), dtype={like}.dtype)"


def torch_reduce(losses: str, reduction: str) -> str:
    return losses if reduction == "none" else f"torch.{reduction}({losses})"


def onnx_reduce(g, losses: str, reduction: str) -> str:
    """The ONNX rules' y from the losses of every element: their mean or sum, or themselves."""
    if reduction == "none":
        return losses
    return g.reduce("ReduceMean" if reduction == "mean" else "ReduceSum", losses, None, False)


def same_lengths(a: tuple, b: tuple) -> bool:
    """Equal shapes, where an unknown length matches anything."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _check_target(ins: dict, pred_port: str) -> None:
    """The target must broadcast to the prediction's shape without enlarging it.

    PyTorch only warns when, say, pred (N, 1) meets target (N,) and then averages over an
    (N, N) grid; that is almost always a bug, so here it is an error.
    """
    pred, target = float_input(ins, pred_port), float_input(ins, "target")
    out = broadcast_shapes(pred.shape, target.shape, port="target")
    if not same_lengths(out, pred.shape) or any(
        o is None and d is not None for o, d in zip(out, pred.shape)
    ):
        raise ShapeError("target", f"shape {target} does not match {pred_port} {pred}")


def _pair_shape(e, first: str) -> tuple:
    """The static shape `first` and target broadcast to (None: a length set at run time)."""
    a, b = e.t(first).shape, e.t("target").shape
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    return tuple(y if x == 1 else x for x, y in zip(a, b))


def _pair_grads(e, first: str, g_first: str | None, g_target: str | None) -> dict:
    """The gradients asked for, each computed over the broadcast pair, summed back to its
    input's shape."""
    shape = _pair_shape(e, first)
    out = {}
    if e.need(first) and g_first is not None:
        out[first] = e.ub(g_first, first, shape)
    if e.need("target") and g_target is not None:
        out["target"] = e.ub(g_target, "target", shape)
    return out


def _scale(p: dict, e, count: str) -> str:
    """The upstream gradient of each element's loss: gy over `count` elements for a mean."""
    return f"({{gy}} / {count})" if p["reduction"] == "mean" else "{gy}"


class Loss(NodeType):
    category = "Losses"
    inputs = ("pred", "target")
    params = (REDUCTION,)
    samples = (
        Sample({}, {"pred": (4, 3), "target": (4, 3)}),
        Sample({}, {"pred": (2, 3, 2), "target": (2, 3, 2)}, note="3-D"),
        Sample({}, {"pred": (4, 3), "target": (3,)}, note="one target for every sample"),
        Sample({"reduction": "sum"}, {"pred": (3, 2), "target": (3, 2)}),
        Sample({"reduction": "none"}, {"pred": (2, 3, 2), "target": (2, 3, 2)}),
        Sample({"reduction": "none"}, {"pred": (4, 3), "target": (3,)},
               note="every element's loss, one target for every sample"),
    )

    def summary(self, p):
        return self.name if p["reduction"] == "mean" else f"{self.name} {p['reduction']}"

    def infer(self, p, ins):
        first = self.inputs[0]
        _check_target(ins, first)
        return {"y": reduced_type(p, ins[first].shape)}


class DifferenceLoss(Loss):
    """f(pred - target) per element. Subclasses give f and its derivative as numpy code over
    the difference `{d}` and the params (`np_fn`, `np_grad`), and f as torch code over the
    ports and params (`torch_fn`)."""

    np_fn = ""
    np_grad = ""
    torch_fn = ""

    def _code(self, template: str, e, d: str) -> str:
        return template.format(**e.fields(), d=d)

    def np_forward(self, p, e):
        d = e.local("diff")
        e.emit(e.fmt(f"{d} = {{pred}} - {{target}}"))
        return np_reduce(self._code(self.np_fn, e, d), p["reduction"], d)

    def np_backward(self, p, e):
        d, g = e.local("diff"), e.tmp("g")
        e.emit(e.fmt(f"{g} = {self._code(self.np_grad, e, d)} * {_scale(p, e, f'{d}.size')}"))
        return _pair_grads(e, "pred", g, f"-{g}")

    def torch_forward(self, p, e):
        return torch_reduce(e.fmt(self.torch_fn), p["reduction"])

    def onnx_forward(self, p, g):
        d = g.op("Sub", g.x(self.inputs[0]), g.x("target"))
        return onnx_reduce(g, self.onnx_fn(p, g, d), p["reduction"])

    def onnx_fn(self, p, g, d: str) -> str:
        """f of the difference d, as ONNX operators."""
        raise NotImplementedError


@register
class MSELoss(DifferenceLoss):
    help = "Squared differences between pred and target (their mean, sum, or each)."
    np_fn = "{d} * {d}"
    np_grad = "2 * {d}"
    torch_fn = "({pred} - {target}) ** 2"

    def onnx_fn(self, p, g, d):
        return g.op("Mul", d, d)


@register
class L1Loss(DifferenceLoss):
    help = "Absolute differences between pred and target (their mean, sum, or each)."
    np_fn = "np.abs({d})"
    np_grad = "np.sign({d})"
    torch_fn = "torch.abs({pred} - {target})"

    def onnx_fn(self, p, g, d):
        return g.op("Abs", d)


@register
class HuberLoss(DifferenceLoss):
    help = "Squared differences below delta, absolute ones above, as PyTorch's huber_loss."
    params = Loss.params + (
        Param("delta", "float", 1.0, "Where the loss turns from squared to absolute (> 0)."),
    )
    np_fn = ("np.where(np.abs({d}) < {delta}, 0.5 * {d} * {d}, "
             "{delta} * (np.abs({d}) - 0.5 * {delta}))")
    np_grad = "np.clip({d}, -{delta}, {delta})"
    torch_fn = "F.huber_loss({pred}, {target}.expand_as({pred}), reduction='none', delta={delta})"
    samples = Loss.samples[:1] + (
        Sample({"delta": 0.5, "reduction": "sum"}, {"pred": (4, 3), "target": (4, 3)}),
        Sample({"delta": 2.0, "reduction": "none"}, {"pred": (4, 3), "target": (3,)}),
    )

    def onnx_fn(self, p, g, d):
        size = g.op("Abs", d)
        delta = g.const(p["delta"])
        small = g.op("Mul", g.op("Mul", d, d), g.const(0.5))
        large = g.op("Mul", g.op("Sub", size, g.const(0.5 * p["delta"])), delta)
        return g.where(g.op("Less", size, delta), small, large)

    def infer(self, p, ins):
        if p["delta"] <= 0:
            raise ShapeError(None, f"delta must be greater than 0, got {p['delta']}")
        return super().infer(p, ins)


@register
class BCEWithLogitsLoss(Loss):
    help = "Binary cross-entropy of sigmoid(logits) against target, computed stably."
    inputs = ("logits", "target")
    samples = (
        Sample({}, {"logits": (4, 3), "target": (4, 3)}),
        Sample({}, {"logits": (3,), "target": (3,)}, note="one logit per sample"),
        Sample({}, {"logits": (2, 3, 2), "target": (2, 3, 2)}, note="3-D"),
        Sample({"reduction": "sum"}, {"logits": (4, 3), "target": (3,)}),
        Sample({"reduction": "none"}, {"logits": (4, 3), "target": (4, 3)}),
    )

    def np_forward(self, p, e):
        # max(x, 0) - x t + log(1 + e^-|x|): never exponentiates a positive number.
        losses = e.fmt("np.maximum({logits}, 0) - {logits} * {target} "
                       "+ np.log1p(np.exp(-np.abs({logits})))")
        return np_reduce(losses, p["reduction"], e.fmt("{logits}"))

    def np_backward(self, p, e):
        scale = e.tmp("scale")
        e.emit(e.fmt(f"{scale} = {_scale(p, e, 'np.broadcast({logits}, {target}).size')}"))
        g_logits = e.fmt(f"({e.helper(sigmoid)}({{logits}}) - {{target}}) * {scale}")
        return _pair_grads(e, "logits", g_logits, e.fmt(f"-{{logits}} * {scale}"))

    def torch_forward(self, p, e):
        return e.fmt(f"F.binary_cross_entropy_with_logits({{logits}}, "
                     f"{{target}}.expand_as({{logits}}), reduction={p['reduction']!r})")

    def onnx_forward(self, p, g):
        x, t = g.x("logits"), g.x("target")
        soft = g.op("Log", g.op("Add", g.op("Exp", g.op("Neg", g.op("Abs", x))), g.const(1.0)))
        losses = g.op("Add", g.op("Sub", g.op("Max", x, g.const(0.0)), g.op("Mul", x, t)), soft)
        return onnx_reduce(g, losses, p["reduction"])


@register
class BCELoss(Loss):
    help = ("Binary cross-entropy of probabilities pred (in [0, 1]) against target, as "
            "PyTorch: each log at least -100.")
    samples = (
        Sample({}, {"pred": (4, 3), "target": (4, 3)}, probability=("pred", "target")),
        Sample({"reduction": "sum"}, {"pred": (4, 3), "target": (3,)},
               probability=("pred", "target")),
        Sample({"reduction": "none"}, {"pred": (2, 3, 2), "target": (2, 3, 2)},
               probability=("pred", "target")),
    )

    def np_forward(self, p, e):
        losses = e.fmt(f"{e.helper(binary_cross_entropy)}({{pred}}, {{target}})")
        return np_reduce(losses, p["reduction"], e.fmt("{pred}"))

    def np_backward(self, p, e):
        scale = e.tmp("scale")
        e.emit(e.fmt(f"{scale} = {_scale(p, e, 'np.broadcast({pred}, {target}).size')}"))
        g_pred = e.fmt(f"{e.helper(binary_cross_entropy_grad)}({{pred}}, {{target}}) * {scale}")
        g_target = None
        if e.need("target"):
            log_p, log_q = e.tmp("log_p"), e.tmp("log_q")
            e.emit(e.fmt(f"{log_p}, {log_q} = {e.helper(clamped_logs)}({{pred}})"))
            g_target = f"({log_q} - {log_p}) * {scale}"
        return _pair_grads(e, "pred", g_pred, g_target)

    def torch_forward(self, p, e):
        return e.fmt(f"F.binary_cross_entropy({{pred}}, {{target}}.expand_as({{pred}}), "
                     f"reduction={p['reduction']!r})")

    def onnx_forward(self, p, g):
        pred, t, floor = g.x("pred"), g.x("target"), g.const(-100.0)
        log_p = g.op("Max", g.op("Log", pred), floor)
        log_q = g.op("Max", g.op("Log", g.op("Sub", g.const(1.0), pred)), floor)
        losses = g.op("Sub", g.op("Mul", g.op("Sub", t, g.const(1.0)), log_q),
                      g.op("Mul", t, log_p))
        return onnx_reduce(g, losses, p["reduction"])


@register
class KLDivLoss(Loss):
    help = ("Kullback-Leibler divergence of target from log-probabilities logp, as PyTorch "
            "(batchmean: the sum over the first axis's length).")
    inputs = ("logp", "target")
    params = (
        Param("reduction", "choice", "batchmean",
              "How the losses of the elements make y: their sum over the first axis's length "
              "(the true KL divergence of each sample, averaged), their mean, their sum, or "
              "none (y keeps them all).", choices=("batchmean", "mean", "sum", "none")),
        Param("log_target", "bool", False, "The target is given as log-probabilities."),
    )
    samples = (
        Sample({}, {"logp": (4, 3), "target": (4, 3)}, positive=("target",)),
        Sample({"reduction": "mean"}, {"logp": (2, 3, 2), "target": (2, 3, 2)},
               positive=("target",)),
        Sample({"reduction": "sum", "log_target": True}, {"logp": (4, 3), "target": (3,)}),
        Sample({"reduction": "none"}, {"logp": (4, 3), "target": (4, 3)}, positive=("target",)),
        Sample({"reduction": "none", "log_target": True},
               {"logp": (2, 3, 2), "target": (2, 3, 2)}),
    )

    def summary(self, p):
        text = "" if p["reduction"] == "batchmean" else f" {p['reduction']}"
        return self.name + text + (" log_target" if p["log_target"] else "")

    def np_forward(self, p, e):
        if p["log_target"]:
            losses = e.fmt("np.exp({target}) * ({target} - {logp})")
        else:
            losses = e.fmt(f"{e.helper(xlogx)}({{target}}) - {{target}} * {{logp}}")
        if p["reduction"] != "batchmean":
            return np_reduce(losses, p["reduction"], e.fmt("{logp}"))
        return e.fmt(f"np.asarray(({losses}).sum() / {self._batch(e)}, dtype={{logp}}.dtype)")

    def np_backward(self, p, e):
        if p["reduction"] == "batchmean":
            scale = f"({{gy}} / {self._batch(e)})"
        else:
            scale = _scale(p, e, "np.broadcast({logp}, {target}).size")
        s = e.tmp("scale")
        e.emit(e.fmt(f"{s} = {scale}"))
        if p["log_target"]:
            et = e.tmp("exp_target")
            e.emit(e.fmt(f"{et} = np.exp({{target}}) * {s}"))
            g_logp = f"-{et}"
            g_target = e.fmt(f"{et} * ({{target}} - {{logp}} + 1)")
        else:
            g_logp = f"-{{target}} * {s}"
            g_target = e.fmt(f"(np.log({{target}}) + 1 - {{logp}}) * {s}")
        # d/dlogp involves the target alone, which may be smaller than logp.
        g_logp = e.fmt(f"np.broadcast_to({g_logp}, {{logp}}.shape)")
        return _pair_grads(e, "logp", g_logp, g_target)

    def torch_forward(self, p, e):
        # PyTorch warns at every call of its own "mean": the mean of "none" is the same.
        reduction = "none" if p["reduction"] == "mean" else p["reduction"]
        call = e.fmt(f"F.kl_div({{logp}}, {{target}}.expand_as({{logp}}), "
                     f"reduction={reduction!r}, log_target={{log_target}})")
        return torch_reduce(call, "mean") if p["reduction"] == "mean" else call

    def onnx_forward(self, p, g):
        logp, t = g.x("logp"), g.x("target")
        if p["log_target"]:
            losses = g.op("Mul", g.op("Exp", t), g.op("Sub", t, logp))
        else:  # t log t, 0 at t = 0
            safe = g.where(g.op("Equal", t, g.const(0.0)), g.const(1.0), t)
            losses = g.op("Sub", g.op("Mul", t, g.op("Log", safe)), g.op("Mul", t, logp))
        if p["reduction"] != "batchmean":
            return onnx_reduce(g, losses, p["reduction"])
        total = g.reduce("ReduceSum", losses, None, False)
        if not g.ndim("logp"):
            return total
        return g.op("Div", total, g.cast(g.squeeze(g.dim(logp, 0), [0]), "float"))

    @staticmethod
    def _batch(e) -> str:
        """What batchmean divides by: the first axis's length (1 for a scalar, as PyTorch)."""
        return e.fmt("{logp}.shape[0]") if e.ndim("logp") else "1"
