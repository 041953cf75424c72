"""Metrics reported during training: functions of (pred, target) numpy arrays to a float.

A document's `training.metrics` names them by type (`{"type": "accuracy", "pred": "logits",
"target": "label"}`); `METRICS` maps each type to its function and `get_metric` looks one up.
Each is the mean over every sample and position, computed in float64, so a trainer that evaluates
in batches of equal-sized rows can combine batch values weighted by their number of rows. Arrays
with no elements give nan. Shapes that do not fit raise `core.errors.GraphError`, naming both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import GraphError

__all__ = ["METRICS", "accuracy", "get_metric", "mae", "mse"]


def _shapes(name: str, pred: np.ndarray, target: np.ndarray, expected: str) -> GraphError:
    return GraphError(f"{name}: pred of shape {pred.shape} and target of shape {target.shape} "
                      f"do not fit; {expected}")


def accuracy(pred, target, threshold: float = 0.0) -> float:
    """The fraction of positions whose predicted class is the target's.

    `pred` holds scores (logits or probabilities) on its last axis; the predicted class is the
    arg-max there (the first one on ties). `target` is either int class ids shaped like pred
    without its last axis, or one-hot/probabilities shaped like pred (the target class is then
    its arg-max too). Class ids may be floats with whole values, as a trainer may cast them.

    Binary case: where pred has one score per position (last axis of size 1, or pred shaped
    exactly like a target of 0/1 labels), the prediction is class 1 where the score is above
    `threshold` (0 for logits, as BCEWithLogitsLoss; pass 0.5 for probabilities), and the target
    is class 1 where it is above 0.5.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.ndim == 0:
        raise _shapes("accuracy", pred, target, "pred needs an axis of class scores")
    binary = pred.shape[-1] == 1 and target.shape in (pred.shape, pred.shape[:-1])
    if binary or (pred.ndim == 1 and target.shape == pred.shape):
        hits = (pred.reshape(target.shape) > threshold) == (target > 0.5)
    elif target.shape == pred.shape:
        hits = pred.argmax(axis=-1) == target.argmax(axis=-1)
    elif target.shape == pred.shape[:-1]:
        if target.dtype.kind == "f" and not np.array_equal(target, np.round(target)):
            raise GraphError(f"accuracy: target of shape {target.shape} looks like class ids "
                             "but holds fractions")
        if target.dtype.kind not in "biuf":
            raise GraphError(f"accuracy: target class ids have dtype {target.dtype}")
        hits = pred.argmax(axis=-1) == target
    else:
        raise _shapes("accuracy", pred, target,
                      "target must be class ids shaped like pred without its last axis, "
                      "or one-hot/probabilities shaped like pred")
    return float(np.mean(hits)) if hits.size else float("nan")


def _difference(name: str, pred, target) -> np.ndarray:
    pred, target = np.asarray(pred), np.asarray(target)
    if target.shape != pred.shape:
        try:
            fits = np.broadcast_shapes(pred.shape, target.shape) == pred.shape
        except ValueError:
            fits = False
        if not fits:
            raise _shapes(name, pred, target, "target must have pred's shape (or broadcast to it "
                          "without enlarging it: (n, 1) against (n,) is refused)")
    return np.subtract(pred, target, dtype=np.float64)


def mse(pred, target) -> float:
    """The mean squared error over all elements, as PyTorch's MSELoss (reduction="mean")."""
    diff = _difference("mse", pred, target)
    return float(np.mean(np.square(diff, out=diff))) if diff.size else float("nan")


def mae(pred, target) -> float:
    """The mean absolute error over all elements, as PyTorch's L1Loss (reduction="mean")."""
    diff = _difference("mae", pred, target)
    return float(np.mean(np.abs(diff, out=diff))) if diff.size else float("nan")


METRICS: dict[str, Callable[..., float]] = {"accuracy": accuracy, "mse": mse, "mae": mae}


def get_metric(name: str) -> Callable[..., float]:
    """The metric function of a type name; an unknown one is an error listing the known ones."""
    if name not in METRICS:
        raise GraphError(f"unknown metric type {name!r} (known: {', '.join(sorted(METRICS))})")
    return METRICS[name]
