"""Crash recovery per window: each window autosaves to files of its own, only the work of
windows that are gone is offered, and the work comes back with its trained weights."""

import errno
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from wiregrad.app import recovery as rec
from wiregrad.app.training.inside import base_dir_for
from wiregrad.app.window import MainWindow
from wiregrad.core.trainer import Session

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")
SPIRAL = os.path.join(EXAMPLES, "spiral-mlp.wg.json")


def doc_text(node_id: str) -> str:
    return json.dumps({"format": "wiregrad.graph", "version": 2,
                       "graph": {"nodes": [{"id": node_id, "type": "Tanh"}], "edges": []}})


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def plant(folder, stem, pid, start, text, path=None, weights=None) -> None:
    """Recovery files as a window of process `pid` would have left them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.wg.json").write_text(text)
    (folder / f"{stem}.lock.json").write_text(json.dumps(
        {"pid": pid, "start": start, "path": path, "time": 0, "weights": weights}))


def files(folder) -> set:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.fixture
def new_window(window, qtbot):
    """More windows in this process, beside the `window` fixture's; each is closed cleanly (its
    changes discarded) at the end."""
    made = []

    def make() -> MainWindow:
        win = MainWindow()
        qtbot.addWidget(win)
        made.append(win)
        return win

    yield make
    for win in made:
        win.ask_unsaved = lambda: "discard"
        win.close()


def asked_by(win) -> list:
    """Answer No to every offer `win` makes; the list of what was offered fills as it asks."""
    offered = []
    win.ask_restore = lambda original: offered.append(original) or False
    return offered


def test_each_window_autosaves_to_files_of_its_own(window, new_window):
    other = new_window()
    window.controller.add_node("Tanh", (0, 0))
    other.controller.add_node("ReLU", (0, 0))
    assert window.recovery.autosave() and other.recovery.autosave()
    assert not window.recovery.autosave()  # nothing new since
    mine, theirs = window.recovery.text_path, other.recovery.text_path
    assert mine != theirs and mine.parent == theirs.parent
    assert "tanh" in mine.read_text() and "relu" in theirs.read_text()
    lock = json.loads((mine.parent / (mine.name.replace(".wg.json", ".lock.json"))).read_text())
    assert lock["pid"] == os.getpid() and lock["start"] == rec.process_start(os.getpid())


def test_only_the_work_of_windows_that_are_gone_is_offered(window, new_window):
    window.controller.add_node("Tanh", (0, 0))
    assert window.recovery.autosave()
    folder = window.recovery.folder
    plant(folder, "recovery-dead-1", dead_pid(), None, doc_text("gone"), "/somewhere/gone.wg.json")
    plant(folder, "recovery-reused-1", os.getpid(), "1", doc_text("reused"), "/x/reused.wg.json")
    plant(folder, "recovery-alive-1", os.getpid(), rec.process_start(os.getpid()),
          doc_text("alive"), "/x/alive.wg.json")
    live = files(folder) - {f for f in files(folder) if "dead" in f or "reused" in f}

    other = new_window()
    offered = asked_by(other)
    assert not other.offer_recovery()
    # the dead process's work and that of a pid since taken by another process (this one)
    assert sorted(offered) == ["/somewhere/gone.wg.json", "/x/reused.wg.json"]
    # No removes exactly the orphans' files: the live windows' are untouched
    assert files(folder) == live | {f"{other.recovery.stem}.lock.json"}
    assert "tanh" in window.recovery.text_path.read_text()


def test_a_clean_close_removes_only_the_windows_own_files(window, new_window):
    other = new_window()
    window.controller.add_node("Tanh", (0, 0))
    other.controller.add_node("ReLU", (0, 0))
    assert window.recovery.autosave() and other.recovery.autosave()
    folder, theirs = window.recovery.folder, other.recovery.text_path
    window.close()  # the fixture answers "discard"
    assert files(folder) == {theirs.name, theirs.name.replace(".wg.json", ".lock.json")}
    assert "relu" in theirs.read_text()


def test_saving_removes_the_autosaved_copy_but_keeps_the_lock(window, tmp_path):
    window.controller.add_node("Tanh", (0, 0))
    assert window.recovery.autosave()
    assert window.save_as(str(tmp_path / "saved.wg.json"))
    assert files(window.recovery.folder) == {window.recovery.stem + ".lock.json"}


def test_undoing_back_to_the_saved_state_removes_the_autosaved_copy(window):
    window.controller.add_node("Tanh", (0, 0))
    assert window.recovery.autosave()
    window.controller.stack.undo()
    assert not window.recovery.autosave()
    assert not window.recovery.text_path.exists()


def test_an_orphan_is_offered_by_one_window_only(window, new_window):
    folder = window.recovery.folder
    plant(folder, "recovery-dead-7", dead_pid(), None, doc_text("gone"))
    second, third = new_window(), new_window()
    offered_to_third = asked_by(third)

    def second_asks(original):  # while the second window asks, the third one opens
        assert not third.offer_recovery()
        return False

    second.ask_restore = second_asks
    assert not second.offer_recovery()
    assert offered_to_third == []
    assert not (folder / "recovery-dead-7.wg.json").exists()


def _crash(window) -> None:
    """The window's process "dies": its lock now names a process that has ended."""
    lock = window.recovery.folder / f"{window.recovery.stem}.lock.json"
    lock.write_text(json.dumps(dict(json.loads(lock.read_text()), pid=dead_pid())))
    window.recovery.stem = None  # (so that the fixture's close leaves those files alone)


def test_restore_brings_back_the_document_and_its_trained_weights(window, new_window, qtbot,
                                                                  tmp_path):
    path = tmp_path / "spiral.wg.json"
    shutil.copy(SPIRAL, path)
    assert window.open_path(str(path))
    dock = window.training
    dock.form.set_value("epochs", 1)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=20_000)
    trained = {k: v.copy() for k, v in dock.params.items()}
    window.controller.add_node("Tanh", (300, 0))
    assert window.recovery.autosave()
    assert window.recovery.weights_path.exists()
    crashed = window.recovery.stem
    _crash(window)

    other = new_window()
    offered = []
    other.ask_restore = lambda original: offered.append(original) or True
    assert other.offer_recovery()
    assert offered == [str(path)]
    doc = other.controller.doc
    assert doc.path == str(path) and doc.graph.node("tanh") is not None
    assert other.isWindowModified()
    restored = other.training.params
    assert set(restored) == set(trained)
    assert all(np.array_equal(restored[k], trained[k]) for k in trained)
    assert other.training.weights_dirty  # not yet saved beside the file
    # the work now lives in the new window's own files; the crashed window's are gone
    assert not any(f.startswith(crashed) for f in files(other.recovery.folder))
    assert "tanh" in other.recovery.text_path.read_text() and other.recovery.weights_path.exists()


@pytest.mark.parametrize("saved", [False, True], ids=["example copy", "saved file"])
def test_recovered_work_reads_its_data_from_where_the_original_did(window, new_window,
                                                                   tmp_path, saved):
    """An example opened as an unsaved copy reads ../data/iris.csv from the examples' folder;
    a saved file from its own. The work that comes back does too, before any save."""
    source = os.path.join(EXAMPLES, "iris-csv.wg.json")
    if saved:
        (tmp_path / "data").mkdir()
        shutil.copy(os.path.join(EXAMPLES, "..", "data", "iris.csv"), tmp_path / "data")
        (tmp_path / "work").mkdir()
        shutil.copy(source, tmp_path / "work" / "iris.wg.json")
        source = str(tmp_path / "work" / "iris.wg.json")
    assert window.open_path(source, example=not saved)
    folder = window.controller.doc.folder
    window.controller.add_node("Tanh", (300, 0))
    assert window.recovery.autosave()
    _crash(window)

    other = new_window()
    other.ask_restore = lambda original: True
    assert other.offer_recovery()
    doc = other.controller.doc
    assert doc.folder == folder and doc.graph.node("tanh") is not None
    assert Session(doc, base_dir=base_dir_for(doc)).train_feeds  # the data is found


def test_reset_weights_are_restored_as_reset(window, tmp_path, new_window):
    folder = window.recovery.folder
    plant(folder, "recovery-dead-3", dead_pid(), None, doc_text("gone"), weights="reset")
    other = new_window()
    other.ask_restore = lambda original: True
    assert other.offer_recovery()
    assert other.training.params is None and other.training.weights_dirty


def test_unreadable_recovered_weights_say_so_and_the_document_still_comes_back(window, new_window):
    folder = window.recovery.folder
    plant(folder, "recovery-dead-4", dead_pid(), None, doc_text("gone"), weights="trained")
    (folder / "recovery-dead-4.weights.npz").write_bytes(b"PK\x03\x04 truncated")
    other = new_window()
    other.ask_restore = lambda original: True
    assert other.offer_recovery()
    assert other.controller.doc.graph.node("gone") is not None
    assert "recovered weights could not be read" in other.training.note.text()


def test_a_process_killed_but_not_yet_reaped_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = None
        deadline = time.monotonic() + 10
        while start is None and time.monotonic() < deadline:
            start = rec.process_start(child.pid)
        assert rec.owner_alive(child.pid, start)
        assert not rec.owner_alive(child.pid, str(int(start) + 1))  # the pid, another process
        child.kill()
        deadline = time.monotonic() + 10
        while rec.owner_alive(child.pid, start) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not rec.owner_alive(child.pid, start)  # a zombie holds the pid, nothing else
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("pid", [None, "12", -3, 0, True])
def test_a_lock_without_a_sensible_pid_has_no_owner(pid):
    assert not rec.owner_alive(pid, None)


def test_work_left_by_an_earlier_version_is_offered(window, new_window):
    settings = window.recovery.folder.parent
    (settings / "recovery.wg.json").write_text(doc_text("old"))
    (settings / "recovery.json").write_text(json.dumps({"path": "/x/old.wg.json"}))
    other = new_window()
    offered = []
    other.ask_restore = lambda original: offered.append(original) or True
    assert other.offer_recovery()
    assert offered == ["/x/old.wg.json"] and other.controller.doc.graph.node("old") is not None
    assert not (settings / "recovery.wg.json").exists()


def test_an_autosave_that_fails_says_so_once_on_the_status_bar(window, dialogs, monkeypatch):
    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(rec, "atomic_write", disk_full)
    said = []
    window.recovery.failed.connect(said.append)
    window.controller.add_node("Tanh", (0, 0))
    assert not window.recovery.autosave()
    window.controller.add_node("ReLU", (0, 0))
    assert not window.recovery.autosave()
    assert len(said) == 1 and "No space left on device" in said[0]
    assert "Autosave failed" in window.statusBar().currentMessage()
    assert dialogs.shown == []  # never a modal every 30 s
    monkeypatch.undo()
    assert window.recovery.autosave()
    window.controller.add_node("Sigmoid", (0, 0))
    monkeypatch.setattr(rec, "atomic_write", disk_full)
    assert not window.recovery.autosave()
    assert len(said) == 2  # failing again after a success is said again


def test_a_recovered_document_that_does_not_load_shows_why(window, new_window):
    folder = window.recovery.folder
    plant(folder, "recovery-dead-5", dead_pid(), None, "{not json")
    other = new_window()
    other.ask_restore = lambda original: True
    shown = []
    other.show_load_errors = lambda path, errors: shown.append(path)
    assert not other.offer_recovery()
    assert shown == ["recovered work"]

