"""How the editor's small plots behave: figures to read, not to explore.

pyqtgraph's plots come with a context menu, an auto-range button, mouse panning and zooming,
and SI prefixes on the axes ("3 (x0.001)"). The editor's plots are small and redrawn by the
run, so they have none of those: `quiet_plot` takes them away.
"""

from __future__ import annotations


def quiet_plot(item, mouse: bool = False, buttons: bool = False):
    """`item` (a pyqtgraph PlotItem) without its menu, its auto-range button (unless
    `buttons`), mouse panning and zooming (unless `mouse`), and SI prefixes on its left and
    bottom axes. Returns the item."""
    item.setMenuEnabled(False)
    if not buttons:
        item.hideButtons()
    if not mouse:
        item.setMouseEnabled(x=False, y=False)
    for side in ("left", "bottom"):
        item.getAxis(side).enableAutoSIPrefix(False)  # "0.003", not "3 (x0.001)"
    return item
