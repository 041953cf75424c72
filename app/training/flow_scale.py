"""How big the gradient on a wire is, and the colour that says so.

A wire's size is the gradient flowing back into its source port per example: the rms of the
gradient over the probe rows, times the rows when the value has one row per example (the
loss is a mean over the batch, so each example's share is 1/rows of it). A value the batch was
reduced to (the loss itself) is not per example: its size is its own rms, which for the loss is
1 by definition.

Colours compare a wire with the network it is part of: the ratio of its size to the median of
every traced port's size (loop steps and block instances included). A healthy network's
gradients sit within a decade or two of each other, so they are green; a wire a thousand times
smaller than the rest is blue (vanishing), one a thousand times larger red (exploding). A
gradient huge in itself (over ABSOLUTE_HIGH per example, a thousand times the loss's own) is
red whatever the rest do, and a NaN or Inf has a colour of its own.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
from PySide6.QtGui import QColor

from ..number_text import number
from . import probe as pr

# log10(size / median) -> colour: a decade below or above the median is still green
RAMP = [(-3.0, QColor("#3b5bdb")), (-1.5, QColor("#4dabf7")), (0.0, QColor("#51cf66")),
        (2.0, QColor("#fcc419")), (3.0, QColor("#ff4d4f"))]
ABSOLUTE_HIGH = 1e3
NAN_COLOR = QColor("#c2255c")
NO_GRADIENT = QColor(110, 110, 120)
LOSS_COLOR = QColor("#adb5bd")   # the loss's own wire: its gradient is 1 by definition
EXPLODING = (2.0 - RAMP[0][0]) / (RAMP[-1][0] - RAMP[0][0])  # 100x the median: yellow to red
FLOW_KEY = ("<span style='color:#4dabf7'>■ thin blue: vanishing</span> &nbsp; "
            "<span style='color:#51cf66'>■ green: healthy</span> &nbsp; "
            "<span style='color:#ff4d4f'>■ thick red: exploding</span> &nbsp; "
            "<span style='color:#9aa1ab'>— each wire's gradient per example, against the "
            "network's median</span>")


def per_example_size(trace: pr.Trace, paths: list, port: str) -> float | None:
    """The gradient flowing back into a port, per example, over every run; None when none
    flows there."""
    steps = [g for path in paths for g in trace.grads.get((path, port), [])]
    if not steps:
        return None
    size = pr.rms(np.concatenate([np.ravel(g) for g in steps]))
    batched = all(np.ndim(g) >= 1 and np.shape(g)[0] == trace.rows for g in steps)
    return size * trace.rows if batched and trace.rows > 1 else size


def reference(trace: pr.Trace) -> float | None:
    """The network's typical gradient size: the median over every traced port that has one
    row per example (the loss and other batch-reduced values left out), zeros left out."""
    sizes = []
    for (path, port), steps in trace.grads.items():
        if not all(np.ndim(g) >= 1 and np.shape(g)[0] == trace.rows for g in steps):
            continue
        size = per_example_size(trace, [path], port)
        if size is not None and math.isfinite(size) and size > 0:
            sizes.append(size)
    return float(np.median(sizes)) if sizes else None


def position(size: float, median: float | None) -> float:
    """0 (vanishing) .. 1 (exploding) for a size compared with the network's median: 0.5 is
    the median itself (green), EXPLODING and up read as exploding."""
    if not math.isfinite(size):
        return 1.0
    if size <= 0:
        return 0.0
    if size >= ABSOLUTE_HIGH:
        return 1.0
    if median is None or median <= 0:
        median = 1.0  # nothing to compare with: the loss's own gradient
    low, high = RAMP[0][0], RAMP[-1][0]
    decades = min(high, max(low, math.log10(size / median)))
    return (decades - low) / (high - low)


def color_at(t: float) -> QColor:
    """The ramp's colour at a position 0..1."""
    low, high = RAMP[0][0], RAMP[-1][0]
    decades = low + t * (high - low)
    for (d0, c0), (d1, c1) in pairwise(RAMP):
        if decades <= d1:
            return _mix(c0, c1, (decades - d0) / (d1 - d0))
    return RAMP[-1][1]


def style(size: float, median: float | None) -> tuple:
    """(colour, pen width, position 0..1) for a wire's size."""
    if not math.isfinite(size):
        return NAN_COLOR, 6.0, 1.0
    if size <= 0:
        return NO_GRADIENT, 1.0, 0.0
    t = position(size, median)
    return color_at(t), 1.5 + 5.0 * t, t


def ratio_text(size: float, median: float | None) -> str:
    """`0.8× the network's median` for a tooltip."""
    if median is None or median <= 0 or not math.isfinite(size):
        return ""
    return f"{number(size / median, 2)}× the network's median ({number(median, 3)})"


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(round(a.red() + (b.red() - a.red()) * t),
                  round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t))
