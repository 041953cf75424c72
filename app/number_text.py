"""How the editor writes numbers for people: short, and never `-0`.

A figure that rounds to zero is shown as `0`, whatever its sign: `-0`, `-0.000` or a tick at
`-1e-17` tell a user nothing but that something looks wrong. Every figure the training panel,
the plots and the export dialog show goes through `number` (or `CleanAxis` for plot ticks).
"""

from __future__ import annotations

import math
import re

import pyqtgraph as pg

_NEGATIVE_ZERO = re.compile(r"^-(?=(0+\.?0*|\.0+)(e[+-]?\d+)?$)", re.IGNORECASE)


def no_negative_zero(text: str) -> str:
    """`-0`, `-0.00`, `-0e+00` -> the same without the sign; anything else as it is."""
    return _NEGATIVE_ZERO.sub("", text)


def number(value, digits: int = 4, empty: str = "–") -> str:
    """`0.0123`, `1.235e-05`, `12.35`: `digits` significant digits, plain notation between
    1e-3 and 1e4; `empty` for None; NaN and Inf said as such."""
    if value is None:
        return empty
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        text = f"{value:.{digits}g}"
    else:
        text = f"{value:.{max(1, digits - 2)}e}"
    return no_negative_zero(text)


def percent(fraction: float, places: int = 1) -> str:
    """`97.5%` for 0.975."""
    if fraction is None or not math.isfinite(fraction):
        return "–"
    return no_negative_zero(f"{100 * fraction:.{places}f}") + "%"


class CleanAxis(pg.AxisItem):
    """A plot axis whose tick labels never read `-0` (a tick computed as -0.0 or -1e-17 at
    the origin), nor a tiny float error in place of 0."""

    def tickStrings(self, values, scale, spacing):
        snapped = [0.0 if abs(v) < abs(spacing) * 1e-6 else v for v in values]
        return [no_negative_zero(s) for s in super().tickStrings(snapped, scale, spacing)]


def clean_axes() -> dict:
    """`axisItems` for a new plot: clean left and bottom axes."""
    return {"left": CleanAxis("left"), "bottom": CleanAxis("bottom")}
