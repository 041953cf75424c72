"""Revalidation after edits: shapes and errors, debounced and off the UI thread.

Any document event restarts a short timer. When it fires, the document is copied (on the UI
thread, a few ms) and analysed in a worker thread; the result comes back through a queued
signal and `updated` carries it to the canvas and the problems dock. A result for a revision
that has since changed is still shown (it is the best we have) and another run follows.
`run_now()` does the same synchronously, for tests, file opening and the bench.
"""

from __future__ import annotations

import threading
import time
import weakref

from PySide6.QtCore import QObject, QTimer, Signal

from ..core.compiler import Analysis
from ..core.compiler import analyze as _engine_analyze
from ..core.document import Subscription
from ..core.errors import GraphError


def analyze(doc, dtype: str = "float32") -> Analysis:
    """Core's analysis of a document: every error, each port's inferred type, the warnings and
    the errors training ignores. A document refused before analysis (too big) gives its error."""
    try:
        return _engine_analyze(doc, dtype=dtype)
    except GraphError as exc:
        return Analysis(errors=list(exc.errors))


class _Relay(QObject):
    """Carries worker results to the UI thread. One for the process, never deleted, so a
    worker that finishes after its window closed has somewhere safe to emit."""

    finished = Signal(object, object, object, float)   # validator key, result, revision, seconds


_relay = None
_validators: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _get_relay() -> _Relay:
    global _relay
    if _relay is None:
        _relay = _Relay()
        _relay.finished.connect(_deliver)
    return _relay


def _deliver(key: int, result, revision: int, seconds: float) -> None:
    validator = _validators.get(key)
    if validator is not None:
        try:
            validator._on_finished(result, revision, seconds)
        except RuntimeError:  # its window is gone
            pass


class Validator(QObject):
    updated = Signal(object)              # Analysis

    def __init__(self, controller, delay_ms: int = 100, parent=None, threaded: bool = True):
        super().__init__(parent)
        self.controller = controller
        self.threaded = threaded
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(delay_ms)
        self.timer.timeout.connect(self.start)
        self.last_seconds = 0.0
        self.result = Analysis()
        self.running = False
        self.again = False
        self._listening = Subscription(self._on_event)
        self._key = id(self)
        _validators[self._key] = self
        _get_relay()
        controller.document_replaced.connect(self._bind)
        self._bind()

    def _bind(self) -> None:
        self._listening.follow(self.controller.doc)
        self.schedule()

    def _on_event(self, event) -> None:
        if event.kind not in ("ui_changed", "node_moved", "name_changed"):
            self.schedule()

    def schedule(self) -> None:
        self.timer.start()

    def start(self) -> None:
        """Analyse a snapshot of the document in a worker thread."""
        if self.running:
            self.again = True
            return
        if not self.threaded:
            self.run_now()
            return
        self.running = True
        doc = self.controller.doc
        snapshot, revision = doc.copy(), doc.revision
        worker = threading.Thread(target=self._work, args=(snapshot, revision), daemon=True,
                                  name="wiregrad-validate")
        worker.start()

    def _work(self, snapshot, revision: int) -> None:
        start = time.perf_counter()
        try:
            result = analyze(snapshot)
        except Exception as exc:  # noqa: BLE001 (an engine bug must not kill the editor: show it as a problem)
            result = Analysis(errors=[_EngineFailure(exc)])
        _get_relay().finished.emit(self._key, result, revision, time.perf_counter() - start)

    def _on_finished(self, result, revision: int, seconds: float) -> None:
        self.running = False
        self.last_seconds = seconds
        if self.controller.doc.revision == revision or not self.again:
            self._publish(result)
        if self.again or self.controller.doc.revision != revision:
            self.again = False
            self.schedule()

    def run_now(self) -> Analysis:
        self.timer.stop()
        start = time.perf_counter()
        result = analyze(self.controller.doc)
        self.last_seconds = time.perf_counter() - start
        self._publish(result)
        return result

    def _publish(self, result) -> None:
        self.result = result
        self.updated.emit(result)


class _EngineFailure:
    node = None

    def __init__(self, exc: Exception):
        self.message = f"internal error in shape inference: {type(exc).__name__}: {exc}"

    def __str__(self) -> str:
        return self.message
