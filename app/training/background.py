"""Work for a view, done off the UI thread: the newest request wins.

A view that runs the graph to draw something (a Loop unrolled, a sequence's predictions) hands
`Background.submit` a function; it runs in a worker thread, and `done` delivers its result in
the UI thread (a queued signal: the receiver lives there). Requests made while one runs are not
queued up: only the newest waits, so a view that asks on every snapshot never falls behind.
A function's exception is delivered as its result, for the view to show, not lost in a thread.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal


class Background(QObject):
    done = Signal(object, object)   # (the tag given to submit, the result or the exception)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending = None          # (function, tag) waiting for the worker
        self._thread: threading.Thread | None = None

    def submit(self, fn, tag=None) -> None:
        with self._lock:
            self._pending = (fn, tag)
            if self._thread is not None:
                return  # the running worker takes it next
            self._thread = threading.Thread(target=self._work, name="wiregrad-view", daemon=True)
            self._thread.start()

    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def discard(self) -> None:
        """Forget a request not started yet (the one running still delivers)."""
        with self._lock:
            self._pending = None

    def wait(self, timeout: float = 5.0) -> bool:
        """Block until the worker is done (tests, closing); True if it is."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _work(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._thread = None
                    return
            fn, tag = job
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - handed to the view, which shows it
                result = exc
            try:
                self.done.emit(tag, result)
            except RuntimeError:  # the receiving view was deleted meanwhile
                pass
