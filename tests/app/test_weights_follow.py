"""Weights follow their document, or nothing: a weights file that cannot be used gives a notice
and fresh weights, the panel starts afresh for every document, and one document's weights are
never written under another's name."""

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from wiregrad import core

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")
SPIRAL = os.path.join(EXAMPLES, "spiral-mlp.wg.json")
A_VALUE = 7.25  # every weight of document A: easy to find again anywhere


def program():
    return core.compile(core.load(SPIRAL))


def npz(members: dict) -> bytes:
    """A zip archive holding these members (name -> bytes), as np.savez lays it out."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    return buffer.getvalue()


def npy_header(shape, descr="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue()


def savez(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def good() -> bytes:
    return savez(program().init_params(3))


def with_member(name: str, data: bytes) -> bytes:
    """The good archive with one member replaced."""
    members = {f"{k}.npy": npy(v) for k, v in program().init_params(3).items()}
    members[name] = data
    return npz(members)


def flipped_in_data() -> bytes:
    data = bytearray(good())
    data[len(data) // 3] ^= 0xFF  # inside a stored member: its CRC no longer matches
    return bytes(data)


def transposed() -> bytes:
    return savez({k: np.atleast_2d(v).T.copy() for k, v in program().init_params(3).items()})


# Each makes the weights file at `path`: the ways a weights file beside a document can be bad.
VARIANTS = {
    "empty file": lambda path: path.write_bytes(b""),
    "truncated to 10 bytes": lambda path: path.write_bytes(good()[:10]),
    "truncated at a third": lambda path: path.write_bytes(good()[: len(good()) // 3]),
    "truncated at two thirds": lambda path: path.write_bytes(good()[: 2 * len(good()) // 3]),
    "one byte short": lambda path: path.write_bytes(good()[:-1]),
    "random bytes": lambda path: path.write_bytes(np.random.default_rng(1).bytes(4096)),
    "a byte flipped in the data": lambda path: path.write_bytes(flipped_in_data()),
    "a zip of a text file": lambda path: path.write_bytes(npz({"notes.txt": b"just text"})),
    "a member that is not .npy": lambda path: path.write_bytes(
        with_member("hidden1.weight.npy", b"not an array at all")),
    "an object array": lambda path: path.write_bytes(
        with_member("hidden1.weight.npy", npy(np.array([{"a": 1}, None], dtype=object)))),
    "a huge declared shape": lambda path: path.write_bytes(
        with_member("hidden1.weight.npy", npy_header((10**6, 10**6)) + b"\0" * 64)),
    "an unreadable .npy header": lambda path: path.write_bytes(
        with_member("hidden1.weight.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}   \n")),
    "a negative dimension": lambda path: path.write_bytes(
        with_member("hidden1.weight.npy", npy_header((-1, 32)) + b"\0" * 64)),
    "wrong shapes for the params": lambda path: path.write_bytes(transposed()),
    "text instead of numbers": lambda path: path.write_bytes(savez(
        {k: np.full(v.shape, "w", dtype="<U1") for k, v in program().init_params(3).items()})),
    "an empty archive": lambda path: path.write_bytes(savez({})),
    "arrays of another graph": lambda path: path.write_bytes(savez({"other.weight": np.ones(3)})),
    "a single .npy, not an archive": lambda path: path.write_bytes(npy(np.ones((2, 32)))),
    "a folder": lambda path: path.mkdir(),
    "a link to itself": lambda path: os.symlink(path.name, path),
}


def test_the_corrupt_weights_variants_are_twenty():
    assert len(VARIANTS) == 20  # the figure "Corrupt weights: 20 variants" counts these


def a_and_b(tmp_path):
    """Two documents: A with weights of its own (every value A_VALUE), B beside it."""
    a, b = tmp_path / "A.wg.json", tmp_path / "B.wg.json"
    shutil.copy(SPIRAL, a)
    shutil.copy(SPIRAL, b)
    (tmp_path / "A.weights.npz").write_bytes(
        savez({k: np.full(v.shape, A_VALUE, v.dtype) for k, v in program().init_params(0).items()}))
    return a, b


def holds_a_values(path) -> bool:
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return any(np.all(archive[name] == A_VALUE) for name in archive.files)
    except Exception:  # noqa: BLE001 (a corrupt file holds nobody's values)
        return False


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_weights_file_that_cannot_be_used_gives_a_notice_and_fresh_weights(
        window, tmp_path, variant):
    dock = window.training
    a, b = a_and_b(tmp_path)
    assert window.open_path(str(a))
    assert dock.params is not None and holds_a_values(tmp_path / "A.weights.npz")
    weights = tmp_path / "B.weights.npz"
    VARIANTS[variant](weights)

    assert window.open_path(str(b))
    note = dock.note.text()
    assert "fresh weights" in note and "B.weights.npz" in note
    assert "could not be read" in note or "do not fit" in note
    assert "fresh weights" in window.statusBar().currentMessage()
    assert dock.params is None and dock.snapshot is None and not dock.weights_dirty
    assert dock.weights_owner is window.controller.doc
    assert dock.state == "idle" and dock.train_button.isEnabled()  # a panel set up whole

    before = _contents(weights)
    window.controller.add_node("ReLU", (0, 0))
    assert window.save()
    assert not holds_a_values(weights)
    assert _contents(weights) == before  # the bad file is left for the user to look at


def _contents(path):
    if path.is_symlink():
        return ("link", os.readlink(path))
    if path.is_dir():
        return ("folder", sorted(os.listdir(path)))
    return path.read_bytes()


def test_the_notice_never_quotes_the_file(window, tmp_path):
    _, b = a_and_b(tmp_path)
    (tmp_path / "B.weights.npz").write_bytes(
        with_member("hidden1.weight.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': SECRET}\n"))
    assert window.open_path(str(b))
    assert "SECRET" not in window.training.note.text()
    assert "SECRET" not in window.statusBar().currentMessage()


def train_one_epoch(qtbot, dock):
    dock.form.set_value("epochs", 1)
    dock.controller.stack.setClean()
    assert dock.train()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=20_000)
    assert dock.params is not None and dock.weights_dirty


@pytest.mark.parametrize("variant", ["empty file", "truncated at a third", "a huge declared shape"])
def test_training_a_then_opening_b_and_saving_never_writes_a_weights_into_b(
        qtbot, window, tmp_path, variant):
    dock = window.training
    a, b = tmp_path / "A.wg.json", tmp_path / "B.wg.json"
    shutil.copy(SPIRAL, a)
    other_seed = json.loads(Path(SPIRAL).read_text())
    other_seed["training"]["seed"] = 11  # B trains to other values than A
    b.write_text(json.dumps(other_seed))
    assert window.open_path(str(a))
    train_one_epoch(qtbot, dock)
    trained_a = {k: v.copy() for k, v in dock.params.items()}
    weights_b = tmp_path / "B.weights.npz"
    VARIANTS[variant](weights_b)
    corrupt = weights_b.read_bytes()

    assert window.open_path(str(b))  # "discard" A's unsaved weights (the window fixture)
    assert dock.params is None and "fresh weights" in dock.note.text()
    assert window.save_as(str(b))
    assert weights_b.read_bytes() == corrupt  # B had no weights of its own to write

    train_one_epoch(qtbot, dock)       # now B has weights: they, not A's, go beside B
    assert window.save()
    with np.load(weights_b) as archive:
        saved = {k: archive[k] for k in archive.files}
    assert all(np.array_equal(saved[k], dock.params[k]) for k in saved)
    assert not any(np.array_equal(saved[k], trained_a[k]) for k in saved if "weight" in k)


def test_weights_are_written_only_beside_the_document_they_belong_to(window, tmp_path):
    dock = window.training
    a, b = a_and_b(tmp_path)
    assert window.open_path(str(a))
    doc_a = window.controller.doc
    dock.reset_weights()  # something to write: the reset takes A's file away
    other = core.load(str(b))
    assert dock.save_weights(str(b), other) is None  # not B's weights: nothing written, nothing removed
    assert not (tmp_path / "B.weights.npz").exists()
    assert (tmp_path / "A.weights.npz").exists()
    assert dock.weights_dirty and dock.weights_owner is doc_a


def panel_as_seen(dock) -> dict:
    """What the training panel shows and holds, widget by widget."""
    return {
        "progress": (dock.progress.value(), dock.progress.maximum(), dock.progress.format()),
        "speed": dock.speed.text(),
        "figures": list(dock.figure_labels),
        "note": dock.note.text(),
        "example row": (dock.example_row.minimum(), dock.example_row.maximum(),
                        dock.example_row.value()),
        "example text": dock.example_text.text(),
        "inspector": dock.inspector.title.text(),
        "curves": len(dock.plots.curves),
        "runs": len(dock.history.runs),
        "data view": dock.dataview.active,
        "state": dock.state,
        "buttons": [b.isEnabled() for b in (dock.train_button, dock.pause_button,
                                            dock.step_button, dock.stop_button,
                                            dock.reset_button)],
        "held": (dock.params, dock.snapshot, dock.info, dock.run_doc, dock.probe,
                 dock.selected, dock.error_text, dock.weights_dirty),
        "overlay": (dock.overlay.nan, dict(dock.overlay._tags), dict(dock.overlay._glows)),
    }


def test_opening_a_document_shows_the_panel_as_new(qtbot, window, tmp_path):
    from wiregrad.app.training.dock import TrainingDock

    dock = window.training
    a, b = tmp_path / "A.wg.json", tmp_path / "B.wg.json"
    shutil.copy(SPIRAL, a)
    shutil.copy(SPIRAL, b)
    assert window.open_path(str(a))
    train_one_epoch(qtbot, dock)
    dock.inspect_node("hidden1")
    dock.run_example(5)
    dock.tabs.setCurrentIndex(0)
    assert dock.progress.format().endswith("step 23/23") and dock.example_row.value() == 5

    assert window.open_path(str(b))
    fresh = TrainingDock(window.controller, window.scene, window)
    try:
        assert panel_as_seen(dock) == panel_as_seen(fresh)
    finally:
        fresh.shutdown()
        fresh.deleteLater()
