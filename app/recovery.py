"""Crash recovery: each window autosaves its unsaved work to files of its own, and a window that
opens offers only the work of windows that are gone.

The files, in `recovery/` beside the settings, for the window named `recovery-<pid>-<n>`:
  .lock.json      whose they are: {"pid", "start", "path", "time", "weights", "folder"} ("folder":
                  where the document's relative data paths start); created (never
                  overwritten) when the window opens, so no two windows share a name
  .wg.json        the document's text, every 30 s while it has unsaved work that changed
  .weights.npz    its trained weights, when they are not saved beside the document's file

A lock's owner lives while its pid runs and, where the system says when a process started
(/proc on Linux), started when the lock says: a pid used again later is another process. Work
whose owner is gone is an orphan. Only orphans are offered; each is claimed (its lock renamed
away, then rewritten in this process's name) before it is offered, so two windows never offer
the same work. Yes brings it back and autosaves it as this window's own before the orphan's
files go; No removes that orphan's files. A save, a discarded change or a clean close removes
only the window's own files.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer, Signal

from ..core.errors import GraphError
from ..core.fileio import atomic_write, dumps
from .training.weights import save_weights, weights_path

INTERVAL_MS = 30_000
PREFIX = "recovery-"
DOC, LOCK = ".wg.json", ".lock.json"
AUTOSAVE_ERRORS = (GraphError, OSError, ValueError)  # ValueError: UnicodeEncodeError
_numbers = itertools.count(1)  # the <n> of this process's windows


def recovery_dir() -> Path:
    return Path(QSettings().fileName()).parent / "recovery"


# -- whose files: processes and their start times ------------------------------------------------


def _proc_stat(pid: int) -> tuple | None:
    """(state, start time in clock ticks since boot) of a process, from /proc; None without."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 1:].split()  # the name before, in brackets, may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[1] if stat else None


MY_START = process_start(os.getpid())


def owner_alive(pid, start) -> bool:
    """Whether the process that wrote a lock still runs: `pid` is taken by a process that
    started at `start` (where the system says; elsewhere the pid alone decides)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_alive(pid)  # os.kill there would end the process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process of another user holds the pid: not ours, but alive
    except OSError:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return start is None or started == str(start)


def _windows_alive(pid: int) -> bool:
    import ctypes

    kernel = ctypes.windll.kernel32
    handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259
    finally:
        kernel.CloseHandle(handle)


def _lock_bytes(path=None, weights=None, folder=None) -> bytes:
    return json.dumps({"pid": os.getpid(), "start": MY_START, "path": path, "time": time.time(),
                       "weights": weights, "folder": folder}).encode("utf-8")


def _read_lock(path: Path) -> dict | None:
    """A lock's content; None when there is none; {} when it cannot be read (no owner)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _create(path: Path, data: bytes) -> bool:
    """Write a new file; False when one is there already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return True


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _what_failed(exc: Exception) -> str:
    if isinstance(exc, GraphError):  # core's SaveError: it names the file and says why
        return str(exc)
    if isinstance(exc, UnicodeEncodeError):
        return "the document holds text that cannot be written as UTF-8"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


# -- work left by a window that is gone ----------------------------------------------------------


@dataclass
class Orphan:
    """Work left by a window that is gone, claimed by the window offering it."""

    folder: Path
    stem: str
    path: str | None     # the file the work came from; None: a document never saved
    weights: str | None  # "trained" (in weights_file), "reset", or None (the file's stand)
    data_folder: str | None = None  # where its relative data paths start (an example's folder)

    @property
    def doc_file(self) -> Path:
        return self.folder / f"{self.stem}{DOC}"

    @property
    def weights_file(self) -> Path:
        return weights_path(self.doc_file)

    def text(self) -> str:
        try:
            return self.doc_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GraphError(f"the recovered work cannot be read ({_what_failed(exc)})") from None

    def discard(self) -> None:
        _remove(self.doc_file, self.weights_file, self.folder / f"{self.stem}{LOCK}")


# -- one window's recovery files -----------------------------------------------------------------


class Recovery(QObject):
    failed = Signal(str)  # an autosave could not write: said once, until one succeeds again

    def __init__(self, window, interval_ms: int = INTERVAL_MS):
        super().__init__(window)
        self.window = window
        self.folder = recovery_dir()
        self.stem: str | None = None  # this window's name, once its lock is written
        self.saved_token = None
        self.failing = False
        try:
            self._claim_name()
        except OSError:
            pass  # the folder cannot be written: the first autosave tries again and says so
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()

    def _file(self, suffix: str) -> Path:
        return self.folder / f"{self.stem}{suffix}"

    @property
    def text_path(self) -> Path:
        return self._file(DOC)

    @property
    def weights_path(self) -> Path:
        return weights_path(self.text_path)

    def _claim_name(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            stem = f"{PREFIX}{os.getpid()}-{next(_numbers)}"
            if _create(self.folder / f"{stem}{LOCK}", _lock_bytes()):
                self.stem = stem
                return

    def autosave(self) -> bool:
        """Write the window's unsaved work (the document, and trained weights not saved beside
        its file) when it changed since the last autosave. True when it wrote."""
        window = self.window
        doc = window.controller.doc
        token = (doc.revision, window.training.weights_version)
        if not window.is_dirty():
            if self.saved_token is not None:
                self.clear()  # undone back to the saved state: nothing left to recover
            return False
        if token == self.saved_token:
            return False
        try:
            self._write(doc)
        except AUTOSAVE_ERRORS as exc:
            if not self.failing:
                self.failed.emit(f"Autosave failed ({_what_failed(exc)}): save the document "
                                 "to keep your work.")
            self.failing = True
            return False
        self.failing = False
        self.saved_token = token
        return True

    def _write(self, doc) -> None:
        if self.stem is None:
            self._claim_name()
        kind, params = self.window.training.unsaved_weights()
        if kind == "trained":
            save_weights(self.text_path, params)
        else:
            _remove(self.weights_path)
        atomic_write(self.text_path, dumps(doc).encode("utf-8"))
        atomic_write(self._file(LOCK), _lock_bytes(doc.path, kind, doc.folder))

    def clear(self) -> None:
        """The work is saved or discarded: remove this window's autosaved copy."""
        if self.stem is not None:
            _remove(self.text_path, self.weights_path)
        self.saved_token = None
        self.failing = False

    def close(self) -> None:
        """A clean close: remove this window's files, and only them."""
        self.timer.stop()
        self.clear()
        if self.stem is not None:
            _remove(self._file(LOCK))
            self.stem = None

    # -- the work of windows that are gone ----------------------------------------------------

    def orphans(self):
        """The work of windows that are gone, oldest first; each is claimed for this window as
        it comes, so stopping early leaves the others for the next window."""
        self._adopt_legacy()
        try:
            found = sorted(self.folder.glob(f"{PREFIX}*{DOC}"), key=_mtime)
        except OSError:
            return
        for doc_file in found:
            stem = doc_file.name[: -len(DOC)]
            if stem != self.stem:
                orphan = self._claim(stem)
                if orphan is not None:
                    yield orphan
        self._sweep_locks()

    def _claim(self, stem: str) -> Orphan | None:
        lock = self.folder / f"{stem}{LOCK}"
        meta = _read_lock(lock)
        if meta is not None and owner_alive(meta.get("pid"), meta.get("start")):
            return None  # a live window's work: neither offered nor touched
        aside = self.folder / f"{stem}.claim-{os.getpid()}"
        try:
            os.rename(lock, aside)  # of two windows taking it, one wins
        except FileNotFoundError:
            if meta is not None or not _create(lock, _lock_bytes()):
                return None  # taken by another window meanwhile
            meta = {}
        except OSError:
            return None
        else:
            if _read_lock(aside) != meta:  # another window claimed it in between: give back
                os.replace(aside, lock)
                return None
            atomic_write(lock, _lock_bytes(meta.get("path"), meta.get("weights"),
                                           meta.get("folder")))
            _remove(aside)
        path, weights, folder = meta.get("path"), meta.get("weights"), meta.get("folder")
        return Orphan(self.folder, stem, path if isinstance(path, str) else None,
                      weights if weights in ("trained", "reset") else None,
                      folder if isinstance(folder, str) else None)

    def _sweep_locks(self) -> None:
        """Locks of windows that are gone and left no work: nothing to offer, so remove them."""
        for lock in self.folder.glob(f"{PREFIX}*{LOCK}"):
            stem = lock.name[: -len(LOCK)]
            meta = _read_lock(lock)
            if (stem != self.stem and not (self.folder / f"{stem}{DOC}").exists()
                    and meta is not None and not owner_alive(meta.get("pid"), meta.get("start"))):
                _remove(lock)

    def _adopt_legacy(self) -> None:
        """The single recovery file of earlier versions becomes an orphan like the others."""
        old_text, old_meta = self.folder.parent / "recovery.wg.json", self.folder.parent / "recovery.json"
        if not old_text.exists():
            return
        meta = _read_lock(old_meta) or {}
        stem = f"{PREFIX}0-{int(time.time())}"
        path = meta.get("path") if isinstance(meta.get("path"), str) else None
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(self.folder / f"{stem}{LOCK}",
                         json.dumps({"pid": 0, "path": path}).encode("utf-8"))
            os.replace(old_text, self.folder / f"{stem}{DOC}")
            _remove(old_meta)
        except OSError:
            pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
