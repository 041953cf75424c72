"""Revalidation after edits, debounced: shapes and errors without blocking the UI.

Any document event restarts a short timer; when it fires, the document is analysed once and
`updated` carries the result to the canvas and the problems dock. Analysis is fast enough for
the GUI thread at the sizes we bench (see bench/canvas.py); it never runs per keystroke.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from . import analysis


class Validator(QObject):
    updated = Signal(object)   # analysis.Analysis

    def __init__(self, controller, delay_ms: int = 100, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(delay_ms)
        self.timer.timeout.connect(self.run_now)
        self.last_seconds = 0.0
        self.result = analysis.Analysis()
        self._doc = None
        controller.document_replaced.connect(self._bind)
        self._bind()

    def _bind(self) -> None:
        if self._doc is not None:
            self._doc.unsubscribe(self._on_event)
        self._doc = self.controller.doc
        self._doc.subscribe(self._on_event)
        self.schedule()

    def _on_event(self, event) -> None:
        if event.kind not in ("ui_changed", "node_moved", "name_changed"):
            self.schedule()

    def schedule(self) -> None:
        self.timer.start()

    def run_now(self) -> analysis.Analysis:
        self.timer.stop()
        start = time.perf_counter()
        self.result = analysis.analyze(self.controller.doc)
        self.last_seconds = time.perf_counter() - start
        self.updated.emit(self.result)
        return self.result
