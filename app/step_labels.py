"""A Loop's step on its body's canvas: wire labels that fit their wire, and a tag over each node.

Inside the body of the loop the inspector unrolls (training/loop_steps.py), each wire says what
it carried at the step shown and each node carries a small tag with its value and gradient
there. A body's wires are often short (a node's width apart): a label takes the longest of its
forms that fits beside the wire, or none, and the tag above the node and the wire's tooltip
always have the whole of it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from . import theme
from .training import probe as pr
from .training import unroll
from .training.overlay import Tag

TAG_BG = QColor(48, 30, 70, 235)     # the loop colour, dark: a step's value, not a shape
TAG_TEXT = QColor("#e9dcff")
SLACK = 24                           # px of wire kept clear of the ports at either end


def wire_label(value, step: int, length: float) -> str:
    """The longest label for the value that fits a wire of this length ('' if none does)."""
    one = unroll.one_example(value)
    shape = unroll.shape_text(one)
    metrics = theme.style().label_metrics
    for text in (f"t{step}  {shape} {pr.preview(one, 2)}", f"t{step}  {pr.preview(one, 1)}",
                 f"t{step}"):
        if metrics.horizontalAdvance(text) + 10 + 2 * SLACK <= length:
            return text
    return ""


def tag_lines(value, grad, step: int) -> list:
    """A node's tag: the step and its value's shape, the first values, the gradient's size."""
    one = unroll.one_example(value)
    lines = [f"t{step}  {unroll.shape_text(one)}", pr.preview(one, 4)]
    if grad is not None:
        norm = float(np.sqrt(np.sum(np.square(np.asarray(grad, dtype=np.float64)))))
        lines.append(f"∇ rms {pr.rms(grad):.2g}  norm {norm:.2g}")
    return lines


def step_tag(lines: list, parent=None) -> Tag:
    """A small rounded label over a node, no wider than the node (the next node's tag is a
    wire's length away)."""
    room = (parent.rect.width() if parent is not None else 160) - 10
    tag = Tag(lines, TAG_BG, TAG_TEXT, parent=parent, max_width=room)
    tag.setZValue(6)
    tag.setPos(0, -tag.rect.height() - 3)
    return tag