"""What PyTorch computes for the losses (every option of format version 2): entries of
tests/torch_reference.py's REFERENCE (same signature: fn(p, inputs, weights) -> outputs).

Each calls PyTorch's own function of the same name with the node's params. Our class axis is
the last one; PyTorch wants it on axis 1, so it is moved there (and, with reduction "none",
the result keeps PyTorch's layout, which then is ours: the class axis is gone).
"""

from __future__ import annotations

import warnings

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None


def _pair(i, first):
    """The prediction and the target broadcast to its shape, as PyTorch's losses want."""
    return i[first], i["target"].expand_as(i[first])


def _class_axis_to_1(x):
    return x.movedim(-1, 1) if x.ndim > 2 else x


def _weight(p, like):
    return None if p["weight"] is None else torch.tensor(p["weight"], dtype=like.dtype)


def _cross_entropy(p, i, w):
    logits, target = i["logits"], i["target"]
    ignore_index = p["ignore_index"]
    if target.is_floating_point():  # ignore_index applies to class ids only
        target, ignore_index = _class_axis_to_1(target), -100
    return [F.cross_entropy(_class_axis_to_1(logits), target, weight=_weight(p, logits),
                            ignore_index=ignore_index, reduction=p["reduction"],
                            label_smoothing=p["label_smoothing"])]


def _nll(p, i, w):
    logp = i["logp"]
    return [F.nll_loss(_class_axis_to_1(logp), i["target"], weight=_weight(p, logp),
                       ignore_index=p["ignore_index"], reduction=p["reduction"])]


def _kl_div(p, i, w):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's note on reduction "mean"
        return [F.kl_div(*_pair(i, "logp"), reduction=p["reduction"],
                         log_target=p["log_target"])]


REFERENCE: dict = {
    "MSELoss": lambda p, i, w: [F.mse_loss(*_pair(i, "pred"), reduction=p["reduction"])],
    "L1Loss": lambda p, i, w: [F.l1_loss(*_pair(i, "pred"), reduction=p["reduction"])],
    "HuberLoss": lambda p, i, w: [F.huber_loss(*_pair(i, "pred"), reduction=p["reduction"],
                                               delta=p["delta"])],
    "BCEWithLogitsLoss": lambda p, i, w: [F.binary_cross_entropy_with_logits(
        *_pair(i, "logits"), reduction=p["reduction"])],
    "BCELoss": lambda p, i, w: [F.binary_cross_entropy(*_pair(i, "pred"),
                                                       reduction=p["reduction"])],
    "KLDivLoss": _kl_div,
    "CrossEntropyLoss": _cross_entropy,
    "NLLLoss": _nll,
}
