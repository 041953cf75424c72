"""Every save that fails says why in a dialog, and the window stays modified: nothing the user
made is taken for saved when it is not."""

import errno
import os
import shutil

import pytest
from wiregrad.core import fileio
from wiregrad.core.errors import GraphError

from wiregrad import core

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")
SPIRAL = os.path.join(EXAMPLES, "spiral-mlp.wg.json")


@pytest.fixture
def read_only_refused(monkeypatch):
    """Saving over a file without write permission fails, even as root: core.fileio refuses
    it (SaveError); an engine that does not yet is made to, so the window's side is tested."""
    if hasattr(fileio, "SaveError"):
        return
    real = fileio.atomic_write

    def refusing(path, data, *args, **kwargs):
        if os.path.exists(path) and not os.stat(path).st_mode & 0o222:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, data, *args, **kwargs)

    monkeypatch.setattr(fileio, "atomic_write", refusing)


@pytest.fixture
def edited(window, tmp_path):
    """The spiral example opened from a file of its own, with one unsaved edit."""
    path = tmp_path / "spiral.wg.json"
    shutil.copy(SPIRAL, path)
    assert window.open_path(str(path))
    window.controller.add_node("Tanh", (300, 0))
    assert window.isWindowModified()
    return path


def assert_kept_unsaved(window):
    assert window.isWindowModified() and window.is_dirty()
    assert not window.controller.stack.isClean()


def test_saving_over_a_read_only_file_says_so_and_keeps_the_window_modified(
        window, dialogs, edited, read_only_refused):
    edited.chmod(0o444)
    before = edited.read_bytes()
    assert not window.save()
    assert dialogs.kinds() == ["warning"]
    assert "spiral.wg.json" in dialogs.texts()[0]
    assert_kept_unsaved(window)
    assert edited.read_bytes() == before


def test_save_as_over_a_read_only_file_says_so(window, dialogs, edited, tmp_path,
                                               read_only_refused):
    target = tmp_path / "other.wg.json"
    target.write_text("{}")
    target.chmod(0o444)
    assert not window.save_as(str(target))
    assert len(dialogs.shown) == 1 and "other.wg.json" in dialogs.texts()[0]
    assert target.read_text() == "{}"
    assert_kept_unsaved(window)
    assert window.controller.doc.path == str(edited)  # still the file it came from


def test_a_full_disk_says_so_and_keeps_the_window_modified(window, dialogs, edited,
                                                            monkeypatch):
    before = edited.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert not window.save()
    monkeypatch.undo()
    text = dialogs.texts()[0].lower()
    assert "space" in text or "full" in text
    assert_kept_unsaved(window)
    assert edited.read_bytes() == before
    assert window.save()  # room again: the same window saves
    assert not window.isWindowModified()


def test_a_refusal_from_the_engine_is_shown_as_it_says(window, dialogs, edited, monkeypatch):
    def refuse(doc, path):
        if hasattr(fileio, "SaveError"):  # a GraphError (and an OSError)
            raise fileio.SaveError(path, errno.EROFS, "read-only file system; save elsewhere")
        raise GraphError(f"{path}: cannot save: read-only file system; save elsewhere")

    monkeypatch.setattr(core, "save", refuse)
    assert not window.save()
    assert "read-only file system; save elsewhere" in dialogs.texts()[0]
    assert_kept_unsaved(window)


def test_a_close_whose_save_fails_is_cancelled(window, dialogs, edited, read_only_refused):
    edited.chmod(0o444)
    window.ask_unsaved = lambda: "save"
    assert not window.close()
    assert window.isVisible()
    assert [s.kind for s in dialogs.shown] == ["warning"]
    assert_kept_unsaved(window)


def test_weights_that_cannot_be_written_keep_the_window_modified(window, dialogs, qtbot,
                                                                 tmp_path):
    path = tmp_path / "spiral.wg.json"
    shutil.copy(SPIRAL, path)
    blocker = tmp_path / "spiral.weights.npz"
    blocker.mkdir()  # a folder where the weights go: they cannot be written
    (blocker / "keep").write_text("mine")
    assert window.open_path(str(path))
    dock = window.training
    dock.form.set_value("epochs", 1)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=20_000)
    assert not window.save()
    assert "not its trained weights" in dialogs.texts()[0]
    assert window.controller.stack.isClean()  # the document itself was saved...
    assert dock.weights_dirty and window.isWindowModified()  # ...its weights were not
    assert (blocker / "keep").read_text() == "mine"


def test_text_that_cannot_be_encoded_is_saved_or_said(window, dialogs, tmp_path):
    source = tmp_path / "odd.wg.json"
    source.write_text('{"format": "wiregrad.graph", "version": 2, "graph": {"nodes": '
                      '[{"id": "a", "type": "Tanh", "label": "\\ud800"}], "edges": []}}')
    assert window.open_path(str(source))
    window.controller.add_node("ReLU", (0, 0))
    target = tmp_path / "saved.wg.json"
    if window.save_as(str(target)):  # escaped on save: it loads back
        assert window.open_path(str(target))
    else:                            # or refused, with a dialog, and the work kept
        assert len(dialogs.shown) == 1
        assert_kept_unsaved(window)
