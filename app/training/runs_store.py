"""Where a document's runs live on disk, and reading them back. No Qt here.

A saved document `NAME.wg.json` keeps its runs in `NAME-run/runs/<run id>/` beside it (the
folder `wiregrad train` writes its outputs to, `NAME-run/`): one folder per run, written by the
training process as the run goes (checkpoints.py says what is in it). Run ids start with the
time the run started, so they sort in the order the runs were made.

A document that has not been saved (a new one, or an example opened as a copy) has nowhere of
its own: its runs go to a temporary folder, made at its first run. The first save moves them
beside the document (Save As of a saved document copies them, so both files keep theirs); a
document closed without saving takes its temporary runs with it. Moving and copying happen in a
thread, never in the UI thread; a run going on at the time is moved when it ends, so the
training process never writes into a folder that is being moved.

Reading: `past_runs` gives the records of the latest MAX_PAST runs (run.json and steps.npz), as
the editor shows them when the document is opened; `checkpoint` reads one epoch's parameters,
through core.npz (never pickle). A run whose record cannot be read is left out, not half shown.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ...core.errors import GraphError
from ...core.npz import load_arrays
from .checkpoints import RUN_FILE, STEPS_FILE, checkpoint_name

MAX_PAST = 8  # past runs read when a document is opened: the latest ones


def runs_folder(doc_path) -> Path:
    """`NAME-run/runs` beside `NAME.wg.json` (NAME as `wiregrad train` cuts it)."""
    path = Path(doc_path)
    return path.parent / (path.name.split(".")[0] + "-run") / "runs"


def new_run_id() -> str:
    """Sortable by start time (to the millisecond), unique even among runs started together
    (the random part)."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}-{secrets.token_hex(2)}"


class RunsStore:
    """One document's runs folder."""

    def __init__(self, doc_path=None):
        self._folder: Path | None = runs_folder(doc_path) if doc_path else None
        self.temporary = False          # the folder is a temp one (an unsaved document)
        self._pending: Path | None = None
        self._mover: threading.Thread | None = None
        self.problem = ""               # why the last move failed, if it did

    # -- where --------------------------------------------------------------------------------

    @property
    def folder(self) -> Path | None:
        """The folder the runs are in now (None: an unsaved document with no run yet)."""
        self._settle()
        return self._folder

    def run_dir(self, run_id: str) -> Path:
        """The folder for a new run's record (made by the training process)."""
        self._settle()
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="wiregrad-runs-"))
            self.temporary = True
        return self._folder / run_id

    def checkpoint_path(self, run_id: str, epoch: int) -> Path | None:
        folder = self.folder
        return None if folder is None else folder / run_id / checkpoint_name(epoch)

    # -- reading ------------------------------------------------------------------------------

    def epochs_on_disk(self, run_id: str) -> list:
        """The epochs of a run whose checkpoint is in its folder, in order."""
        folder = self.folder
        if folder is None or not (folder / run_id).is_dir():
            return []
        epochs = []
        for path in (folder / run_id).glob("epoch-*.npz"):
            number = path.name[len("epoch-"):-len(".npz")]
            if number.isdigit():
                epochs.append(int(number))
        return sorted(epochs)

    def checkpoint(self, run_id: str, epoch: int) -> dict:
        """The parameters saved at the end of `epoch`; GraphError when they cannot be read."""
        path = self.checkpoint_path(run_id, epoch)
        if path is None or not path.is_file():
            raise GraphError(f"the checkpoint of epoch {epoch} is no longer there")
        return load_arrays(path, shown=f"{run_id}/{path.name}")

    def past_runs(self, limit: int = MAX_PAST) -> list:
        """The latest `limit` runs' records, oldest first: run.json's dict with "steps" and
        "losses" arrays added. Runs that took no step, or whose record is unreadable, are
        left out."""
        folder = self.folder
        if folder is None or not folder.is_dir():
            return []
        records = []
        for run_dir in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):
            record = _read_record(run_dir)
            if record is not None:
                records.append(record)
            if len(records) >= limit:
                break
        return records[::-1]

    # -- following the document's file --------------------------------------------------------

    def follow(self, doc_path, busy: bool = False) -> None:
        """The document was saved as `doc_path`: its runs go beside it. `busy`: a run is
        writing into the folder now; the move waits for `run_ended`."""
        target = runs_folder(doc_path)
        self._settle()
        if self._folder is None or self._folder == target:
            self._folder, self.temporary = target, False
            return
        if busy:
            self._pending = target
            return
        self._move_to(target)

    def run_ended(self) -> None:
        """A run ended: a move that waited for it goes now."""
        if self._pending is not None:
            target, self._pending = self._pending, None
            self._move_to(target)

    def _move_to(self, target: Path) -> None:
        source, temporary = self._folder, self.temporary
        self._folder, self.temporary = target, False
        self._mover = threading.Thread(target=self._transfer, args=(source, target, temporary),
                                       name="wiregrad-runs-move", daemon=True)
        self._mover.start()

    def _transfer(self, source: Path, target: Path, move: bool) -> None:
        """Each run folder of `source` into `target`, moved (from a temp folder) or copied."""
        try:
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                for run_dir in source.iterdir():
                    if (target / run_dir.name).exists():
                        continue
                    if move:
                        shutil.move(str(run_dir), str(target / run_dir.name))
                    else:
                        shutil.copytree(run_dir, target / run_dir.name)
                if move:
                    shutil.rmtree(source, ignore_errors=True)
        except OSError as exc:
            self.problem = f"the runs could not be moved to {target}: {exc}"

    def _settle(self) -> None:
        """Wait for a move under way (only a read right after a save ever waits)."""
        mover = self._mover
        if mover is not None:
            mover.join()
            self._mover = None

    def discard(self) -> None:
        """The document goes away unsaved: a temp folder of its runs goes with it."""
        self._settle()
        if self.temporary and self._folder is not None and self._pending is None:
            folder, self._folder = self._folder, None
            threading.Thread(target=shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True},
                             name="wiregrad-runs-discard", daemon=True).start()


def _read_record(run_dir: Path) -> dict | None:
    try:
        record = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        steps = load_arrays(run_dir / STEPS_FILE, shown=f"{run_dir.name}/{STEPS_FILE}")
    except (OSError, ValueError, GraphError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    record["steps"] = np.asarray(steps.get("step", np.empty(0)), dtype=np.float64).ravel()
    record["losses"] = np.asarray(steps.get("loss", np.empty(0)), dtype=np.float64).ravel()
    if not len(record["steps"]) or len(record["steps"]) != len(record["losses"]):
        return None
    return record
