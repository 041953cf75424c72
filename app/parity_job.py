"""One export check, run in a process of its own so that the editor never waits for it.

`ParityJob.start(kind, doc, target, steps)` writes the job beside a fresh temporary folder and
runs export_parity.py with this Python; the process answers one JSON object a line (see
export_parity.py), read here as it comes: `progress` for each progress line, then `finished`
with the result, or `failed` with a message a user can act on. `cancel()` ends the process.
The process imports numpy, core and (for the torch target) torch; never Qt.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

# The folder that holds the `wiregrad` package: the checkout, or site-packages.
ROOT = Path(__file__).resolve().parents[1]
if not (ROOT / "wiregrad" / "__init__.py").is_file():
    ROOT = ROOT.parent
SCRIPT = Path(__file__).resolve().with_name("export_parity.py")
# Run the file by path with the folder holding `wiregrad` first on the path: `python -m
# wiregrad.app...` would import app/__init__.py, which loads Qt.
LAUNCH = ("import runpy, sys; sys.argv = sys.argv[1:]; "
          "runpy.run_path(sys.argv[0], run_name='__main__')")


class ParityJob(QObject):
    progress = Signal(str, int, int)    # side ("engine" / "script"), steps done, steps wanted
    finished = Signal(dict)             # the result (export_parity.check_export or
                                        # train_both_ways)
    failed = Signal(str)                # what went wrong, in words

    def __init__(self, parent=None):
        super().__init__(parent)
        self.process: QProcess | None = None
        self._folder: tempfile.TemporaryDirectory | None = None
        self._buffer = b""
        self._answer_kept: tuple | None = None
        self.kind = ""

    def is_running(self) -> bool:
        return self.process is not None

    def start(self, kind: str, doc, target: str, steps: int = 0) -> None:
        """`kind`: "verify" (one batch) or "train" (`steps` steps both ways)."""
        self.cancel()
        self.kind = kind
        self._folder = tempfile.TemporaryDirectory(prefix="wiregrad-parity-")
        job_path = Path(self._folder.name) / "job.json"
        job = {"check": kind, "doc": doc.to_dict(), "folder": doc.folder or os.getcwd(),
               "target": target, "steps": steps}
        job_path.write_text(json.dumps(job), encoding="utf-8")
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        path = environment.value("PYTHONPATH", "")
        environment.insert("PYTHONPATH", str(ROOT) + (os.pathsep + path if path else ""))
        process.setProcessEnvironment(environment)
        process.setWorkingDirectory(self._folder.name)
        process.readyReadStandardOutput.connect(self._read)
        process.finished.connect(self._ended)
        process.errorOccurred.connect(self._error)
        self.process = process
        self._buffer = b""
        self._answer_kept = None
        process.start(sys.executable, ["-c", LAUNCH, str(SCRIPT), str(job_path)])

    def cancel(self) -> None:
        """End a running check; nothing more is signalled for it."""
        process, self.process = self.process, None
        if process is not None:
            for signal in (process.readyReadStandardOutput, process.finished,
                           process.errorOccurred):
                signal.disconnect()
            process.kill()
            process.waitForFinished(2000)
            process.deleteLater()
        self._cleanup()

    def wait(self, msecs: int = 60_000) -> bool:
        """Block until the check ends (scripts and tests; the dialog never waits)."""
        process = self.process
        if process is None:
            return True
        done = process.waitForFinished(msecs)
        if process is self.process:
            self._read()
            self._ended(process.exitCode(), process.exitStatus())
        return done

    # -- the process's answers ----------------------------------------------------------------

    def _read(self) -> None:
        if self.process is None:
            return
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._answer(json.loads(line, parse_constant=_constant))

    def _answer(self, entry: dict) -> None:
        kind = entry.pop("kind", "")
        if kind == "progress":
            self.progress.emit(entry["side"], entry["done"], entry["total"])
        elif kind in ("result", "error"):
            self._answer_kept = (kind, entry)  # told once the process has ended

    def _ended(self, code: int, status) -> None:
        process = self.process
        if process is None:
            return
        self._read()
        error = bytes(process.readAllStandardError()).decode("utf-8", "replace").strip()
        self.process = None  # not running any more when the answer is told
        process.deleteLater()
        self._cleanup()
        kind, entry = self._answer_kept or ("", {})
        if kind == "result":
            self.finished.emit(entry)
        elif kind == "error":
            self.failed.emit(entry["message"])
        else:
            last = error.splitlines()[-1] if error else f"exit code {code}"
            self.failed.emit(f"The check stopped without an answer: {last}")

    def _error(self, error) -> None:
        if error == QProcess.FailedToStart and self.process is not None:
            self.process = None
            self._cleanup()
            self.failed.emit(f"Could not start {sys.executable} to run the check.")

    def _cleanup(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


def _constant(name: str) -> float:
    """NaN and Infinity as json writes them."""
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]
