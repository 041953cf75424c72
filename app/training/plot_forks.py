"""Forks on the loss plot: right-click a run's curve to fork from that epoch, and each forked run
labelled where it starts.

A mixin of TrainingPlots (plots.py). A right-click on the loss plot finds the run whose curve is
nearest the click (in pixels, among the runs whose steps reach that far) and the epoch whose
checkpoint is nearest the step clicked; the menu offers "Fork from here" and, when chosen,
`fork_requested` carries (run, epoch) to the dock, which asks the run model to load it. Which
epochs have a checkpoint, and whether a fork can start now, the plots ask `self.forks` (the run
model: `checkpoints_of(run)`, `busy`).

A forked run's curve starts at its parent's step of the epoch it was forked from (`x_offset`),
marked by a diamond, and a tag there says what changed ("↳ run 4: hidden1.out_features 32 ->
64"), one per forked run, made once and moved only when the curve's first point changes. It
stands beside the fork point where there is room, cut short ("…") before the legend or the
plot's edge; the legend names the parent and epoch, the hover tip has the whole label.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QCursor, QFontMetricsF
from PySide6.QtWidgets import QMenu

PICK_PX = 40        # a click farther than this from every curve forks nothing
TAG_MIN_PX = 160    # a tag runs right of its fork point if it has this much room there
TAG_ROOM = 0.15     # of the plot's height: less than this above the fork point, the tag goes below


class ForkMenu:
    """The fork part of TrainingPlots."""

    forks = None  # what knows the checkpoints (the run model), set by the dock

    def _fork_hooks(self) -> None:
        self.fork_tags: dict = {}   # run number -> (TextItem, marker)
        self._tag_words: dict = {}  # run number -> the tag's whole text
        self._tag_homes: dict = {}  # run number -> the fork point (view coordinates)
        self.view.scene().sigMouseClicked.connect(self._clicked)
        self.loss_plot.vb.sigRangeChanged.connect(self._place_fork_tags)

    def _clicked(self, event) -> None:
        if event.button() != Qt.RightButton:
            return
        if self.loss_plot.vb.sceneBoundingRect().contains(event.scenePos()):
            event.accept()
            self.fork_menu(event.scenePos(), event.screenPos().toPoint())

    # -- which run, which epoch ---------------------------------------------------------------

    def run_at(self, scene_pos) -> tuple | None:
        """(run, step within the run) of the curve nearest `scene_pos` on the loss plot."""
        if self.history is None:
            return None
        vb = self.loss_plot.vb
        point = vb.mapSceneToView(scene_pos)
        log = self.log_box.isChecked()
        best, best_px = None, PICK_PX
        for run in self.history.runs:
            steps = run.steps.view()
            if not len(steps):
                continue
            local = point.x() - run.x_offset
            slack = max(1.0, 0.02 * (steps[-1] - steps[0] + 1))
            if local < steps[0] - slack or local > steps[-1] + slack:
                continue
            i = int(np.clip(np.searchsorted(steps, local), 0, len(steps) - 1))
            value = run.smoothed.view()[i]
            if not np.isfinite(value) or (log and value <= 0):
                continue
            y = np.log10(value) if log else value
            on_curve = vb.mapViewToScene(QPointF(point.x(), y))
            distance = abs(on_curve.y() - scene_pos.y())
            if distance < best_px:
                best, best_px = (run, int(steps[i])), distance
        return best

    def fork_epoch(self, run, step: int) -> int | None:
        """The epoch with a checkpoint nearest `step` of `run` (None: none kept)."""
        kept = self.forks.checkpoints_of(run) if self.forks is not None else []
        ends = run.epoch_steps.view()
        kept = [e for e in kept if 0 < e <= len(ends)]
        if not kept:
            return None
        return min(kept, key=lambda e: (abs(ends[e - 1] - step), -e))

    def fork_menu(self, scene_pos, screen_pos=None) -> None:
        """The right-click menu at `scene_pos`: fork from the nearest run's nearest checkpoint."""
        hit = self.run_at(scene_pos)
        menu = QMenu(self)
        if hit is None:
            menu.addAction("Fork from here: right-click on a run's curve").setEnabled(False)
            _show(menu, screen_pos)
            return
        run, step = hit
        epoch = self.fork_epoch(run, step)
        name = run.label.split(":")[0]
        if epoch is None:
            action = menu.addAction(f"Fork from here: {name} kept no checkpoint")
            action.setEnabled(False)
        else:
            action = menu.addAction(f"Fork from here ({name}, epoch {epoch})")
            busy = self.forks is not None and self.forks.busy
            action.setEnabled(not busy)
            if busy:
                action.setText(action.text() + ": stop the run first")
        chosen = _show(menu, screen_pos)
        if chosen is action and epoch is not None and action.isEnabled():
            self.fork_requested.emit(run, epoch)

    # -- labels where forks start -------------------------------------------------------------

    def _update_fork_tags(self) -> None:
        runs = self.history.runs if self.history is not None else []
        wanted = {run.number: run for run in runs if run.parent is not None or run.change}
        for number in [n for n in self.fork_tags if n not in wanted]:
            for item in self.fork_tags.pop(number):
                self.loss_plot.removeItem(item)
            self._tag_words.pop(number, None)
            self._tag_homes.pop(number, None)
        for number, run in wanted.items():
            if not len(run.smoothed):
                continue
            tag = self.fork_tags.get(number)
            if tag is None:
                tag = self.fork_tags[number] = self._make_fork_tag(run)
            _text, marker = tag
            first = float(run.smoothed.view()[0])
            y = np.log10(first) if self.log_box.isChecked() and first > 0 else first
            if np.isfinite(y):
                self._tag_homes[number] = QPointF(run.x_offset, y)
                marker.setData([run.x_offset], [y])
        self._place_fork_tags()

    def _place_fork_tags(self, *_signal_args) -> None:
        """Each tag beside its fork point: above it (below when the top of the plot is too
        near), running right, or left when there is more room there. A tag that would run
        into the legend drops below it, or, with no room there, is cut short with "…"."""
        vb = self.loss_plot.vb
        (_, _), (bottom, top) = vb.viewRange()
        height = max(top - bottom, 1e-12)
        area = vb.sceneBoundingRect()
        legend = self.loss_legend.sceneBoundingRect() \
            if self.loss_legend.isVisible() and self.loss_legend.items else None
        for number, (text, _marker) in self.fork_tags.items():
            home = self._tag_homes[number]
            point = vb.mapViewToScene(home)
            tall = QFontMetricsF(text.textItem.font()).height() * 1.3
            above = (top - home.y()) / height >= TAG_ROOM
            box_top = point.y() - tall if above else point.y()
            right_edge = area.right() - 4
            if legend is not None and legend.left() > point.x() and \
                    box_top < legend.bottom() and box_top + tall > legend.top():
                if legend.bottom() + 2 + tall <= area.bottom():
                    box_top = legend.bottom() + 2   # under the legend, the whole width
                else:
                    right_edge = legend.left() - 4
            right_room, left_room = right_edge - point.x(), point.x() - area.left() - 4
            to_right = right_room >= TAG_MIN_PX or right_room >= left_room
            room = max(right_room if to_right else left_room, 0.0) - 12  # the tag's margins
            metrics = QFontMetricsF(text.textItem.font())
            words = metrics.elidedText(self._tag_words[number], Qt.ElideRight, room)
            if text.textItem.toPlainText() != words:
                text.setText(words)
            text.setAnchor((0 if to_right else 1, 0))
            text.setPos(home.x(), vb.mapSceneToView(QPointF(point.x(), box_top)).y())

    def _make_fork_tag(self, run) -> tuple:
        from .plots import curve_color  # the run's own colour, as its curve has it

        color = curve_color(run)
        words = f"↳ run {run.number}: {run.change or 'same graph and settings'}"
        self._tag_words[run.number] = words
        self._tag_homes[run.number] = QPointF(run.x_offset, 0)
        text = pg.TextItem(words, color=color, anchor=(0, 0),
                           fill=pg.mkBrush(31, 33, 38, 210))
        text.setZValue(900)
        marker = pg.ScatterPlotItem([run.x_offset], [0], size=9, symbol="d",
                                    brush=pg.mkBrush(color), pen=None)
        marker.setZValue(900)
        self.loss_plot.addItem(text, ignoreBounds=True)
        self.loss_plot.addItem(marker, ignoreBounds=True)
        return text, marker

    def _clear_fork_tags(self) -> None:
        for items in self.fork_tags.values():
            for item in items:
                self.loss_plot.removeItem(item)
        self.fork_tags = {}
        self._tag_words = {}
        self._tag_homes = {}


def _show(menu: QMenu, screen_pos):
    """The action chosen, or None. Called through the class: PySide6 binds `menu.exec` on an
    instance straight to the C++ method, so a replaced QMenu.exec (the tests' stand-in for a
    modal menu nobody answers) would be passed by."""
    return QMenu.exec(menu, screen_pos if screen_pos is not None else QCursor.pos())
