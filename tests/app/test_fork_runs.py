"""Forking runs: every run keeps bounded checkpoints and its history in the document's runs
folder; a right-click on a curve forks from an epoch; the forked run starts from exactly that
checkpoint and is labelled with what changed; reopening the document brings the runs back."""

import json
import os
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from wiregrad.app.training import run_model
from wiregrad.app.training.checkpoints import OLDER, RECENT, RunRecorder, kept_epochs
from wiregrad.app.training.plots import curve_color, run_color
from wiregrad.app.training.run_diff import describe_change
from wiregrad.core.npz import load_arrays
from wiregrad.core.trainer import Session, run_session

from wiregrad import core

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")
SPIRAL = os.path.join(EXAMPLES, "spiral-mlp.wg.json")
EPOCHS = 24  # more than RECENT + OLDER: the older checkpoints are thinned


@pytest.fixture(autouse=True)
def every_epoch(monkeypatch):
    """A checkpoint for every epoch, however fast (the app writes at most two a second)."""
    monkeypatch.setattr(run_model, "CHECKPOINT_EVERY_S", 0.0)


def saved_spiral(tmp_path, name="A"):
    path = tmp_path / f"{name}.wg.json"
    shutil.copy(SPIRAL, path)
    return path


def train(qtbot, dock, epochs):
    dock.form.set_value("epochs", epochs)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=20_000)
    run = dock.history.current
    assert run.state == "finished"
    return run


def starts_from(dock, monkeypatch) -> dict:
    """What the worker is asked to start from, caught on its way."""
    caught = {}
    original = dock.worker.start

    def start(doc, params=None, **kwargs):
        caught["params"] = None if params is None else {k: v.copy() for k, v in params.items()}
        caught["record"] = kwargs.get("checkpoints")
        return original(doc, params=params, **kwargs)

    monkeypatch.setattr(dock.worker, "start", start)
    return caught


# -- what is kept, and how a change is told -----------------------------------------------------

def test_checkpoints_are_bounded_and_thinning_only_ever_deletes():
    before = set()
    for last in range(1, 600):
        kept = kept_epochs(last)
        assert len(kept) <= RECENT + OLDER and kept == sorted(kept)
        assert kept[-RECENT:] == list(range(max(1, last - RECENT + 1), last + 1))
        assert set(kept) <= before | {last}       # nothing deleted is wanted again
        before = set(kept)
    assert kept_epochs(0) == []


def test_fast_epochs_skip_checkpoints_but_never_the_last(tmp_path):
    record = RunRecorder({"folder": str(tmp_path / "run"), "record": {"id": "r"},
                          "every_s": 3600})
    record.start({"total_steps": 20, "steps_per_epoch": 1, "epochs": 20})
    for epoch in range(1, 21):
        record.step(epoch, 1.0 / epoch)
        record.epoch({"epoch": epoch, "loss": 1.0 / epoch}, {"w": np.full(2, float(epoch))})
    record.finish("finished")
    first_ones = list(range(1, RECENT + 1))      # the first epochs always, then the last
    assert sorted(int(p.stem[6:]) for p in (tmp_path / "run").glob("epoch-*")) == \
        [*first_ones, 20]
    assert load_arrays(tmp_path / "run" / "epoch-20.npz")["w"].tolist() == [20.0, 20.0]
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["checkpoints"] == [*first_ones, 20] and len(saved["epochs"]) == 20


def test_a_run_that_took_no_step_leaves_nothing(tmp_path):
    record = RunRecorder({"folder": str(tmp_path / "run"), "record": {"id": "r"}})
    record.finish("failed")
    assert not (tmp_path / "run").exists()


def test_a_change_is_told_by_node_parameter_wire_and_setting():
    before = core.load(SPIRAL).to_dict()
    after = json.loads(json.dumps(before))
    nodes = {n["id"]: n for n in after["graph"]["nodes"]}
    nodes["hidden1"]["params"]["out_features"] = 64
    nodes["hidden1"]["pos"] = [999, 999]          # a move is not an experiment
    after["training"]["optimizer"]["lr"] = 0.003
    after["training"]["epochs"] = 7               # nor is training longer
    assert describe_change(before, after) == "hidden1.out_features 32 -> 64; lr 0.01 -> 0.003"
    after["graph"]["nodes"].append({"id": "drop", "type": "Dropout"})
    assert "+drop (Dropout)" in describe_change(before, after)
    assert describe_change(before, before) == ""


# -- the dock, end to end ------------------------------------------------------------------------

def test_each_epoch_leaves_a_checkpoint_thinned_and_the_history_beside_the_document(
        qtbot, window, tmp_path):
    dock = window.training
    assert window.open_path(str(saved_spiral(tmp_path)))
    run = train(qtbot, dock, EPOCHS)
    folder = tmp_path / "A-run" / "runs" / run.id
    kept = sorted(int(p.stem.split("-")[1]) for p in folder.glob("epoch-*.npz"))
    assert len(kept) <= RECENT + OLDER < EPOCHS                  # thinned...
    assert kept[-RECENT:] == list(range(EPOCHS - RECENT + 1, EPOCHS + 1))  # ...not the latest
    assert [e for e in kept if e <= 10] == [2, 4, 6, 8, 10]      # the early ones spaced out
    assert dock.model.checkpoints_of(run) == kept
    record = json.loads((folder / "run.json").read_text())
    assert record["id"] == run.id and record["state"] == "finished"
    assert record["label"] == run.label and record["parent"] is None
    assert record["checkpoints"] == kept
    assert [e["epoch"] for e in record["epochs"]] == list(range(1, EPOCHS + 1))
    assert record["epochs"][-1]["val_loss"] == run.figure("val_loss")[-1]
    steps = load_arrays(folder / "steps.npz")
    assert np.array_equal(steps["loss"], run.losses.view())

    # the checkpoint of an epoch is what training that many epochs gives, headless
    doc = core.load(str(tmp_path / "A.wg.json"))
    session = Session(doc, epochs=kept[0])
    run_session(session, lambda event: None)
    checkpoint = load_arrays(folder / f"epoch-{kept[0]}.npz")
    assert set(checkpoint) >= set(session.names)
    for name, value in session.param_dict().items():
        np.testing.assert_array_equal(checkpoint[name], value)


def test_right_click_on_a_curve_forks_from_the_nearest_checkpoint(
        qtbot, window, tmp_path, dialogs, monkeypatch):
    dock = window.training
    assert window.open_path(str(saved_spiral(tmp_path)))
    window.training_dock.show()
    dock.tabs.setCurrentIndex(0)
    first = train(qtbot, dock, EPOCHS)
    dock._redraw_plots(force=True)
    qtbot.wait(50)

    epoch = 12
    step = first.step_of_epoch(epoch)
    plots = dock.plots
    vb = plots.loss_plot.vb
    on_curve = vb.mapViewToScene(QPointF(step, first.smoothed.view()[step - 1]))
    dialogs.answer(lambda menu: menu.actions()[0])
    qtbot.mouseClick(plots.view.viewport(), Qt.RightButton,
                     pos=plots.view.mapFromScene(on_curve))
    shown = dialogs.shown[-1]
    assert shown.kind == "QMenu" and shown.answer.text() == f"Fork from here (run 1, epoch {epoch})"
    assert dock.model.fork == (first, epoch)
    assert "Forked from run 1 at epoch 12" in dock.note.text()
    checkpoint = load_arrays(tmp_path / "A-run" / "runs" / first.id / f"epoch-{epoch}.npz")
    assert all(np.array_equal(dock.params[k], v) for k, v in checkpoint.items())
    assert dock.weights_dirty

    # a click away from every curve offers nothing to fork
    far = vb.mapViewToScene(QPointF(step, first.smoothed.view().max() * 50))
    assert plots.run_at(far) is None


def test_a_fork_starts_from_exactly_its_checkpoint_and_is_labelled_with_what_changed(
        qtbot, window, tmp_path, monkeypatch):
    dock = window.training
    assert window.open_path(str(saved_spiral(tmp_path)))
    first = train(qtbot, dock, EPOCHS)
    epoch = dock.model.checkpoints_of(first)[2]
    assert dock.fork_from(first, epoch)
    checkpoint = load_arrays(tmp_path / "A-run" / "runs" / first.id / f"epoch-{epoch}.npz")

    dock.form.set_value("optimizer.lr", 0.003)
    window.controller.set_param(["hidden2"], "out_features", 64)
    caught = starts_from(dock, monkeypatch)
    forked = train(qtbot, dock, 2)

    # the tensors that still fit start from the checkpoint, exactly; the others afresh
    fits = {"hidden1.weight", "hidden1.bias", "head.bias"}
    for name in fits:
        np.testing.assert_array_equal(caught["params"][name], checkpoint[name])
    assert caught["params"]["hidden2.weight"].shape == (32, 64)
    assert forked.parent == (first, epoch)
    assert forked.change == "hidden2.out_features 32 -> 64; lr 0.01 -> 0.003"
    assert forked.label == (f"run 2 from run 1 @ epoch {epoch}: "
                            "hidden2.out_features 32 -> 64; lr 0.01 -> 0.003")
    assert forked.x_offset == first.step_of_epoch(epoch)
    assert caught["record"]["record"]["parent"] == {"run": first.id, "epoch": epoch}
    assert dock.model.fork is None                 # the next run goes on from this one

    dock._redraw_plots(force=True)                 # its curve starts at the fork point...
    xs, _ = dock.plots.curves[forked.number].smooth.getData()
    assert xs[0] == forked.x_offset + 1
    text, marker = dock.plots.fork_tags[forked.number]    # ...where a tag says what changed
    assert marker.data["x"][0] == forked.x_offset
    assert dock.plots._tag_words[forked.number] == \
        "↳ run 2: hidden2.out_features 32 -> 64; lr 0.01 -> 0.003"
    assert text.textItem.toPlainText().startswith("↳ run 2: hidden2")


def test_reopening_the_document_brings_back_its_runs_greyed_and_forkable(
        qtbot, window, tmp_path, monkeypatch):
    dock = window.training
    a = saved_spiral(tmp_path)
    assert window.open_path(str(a))
    first = train(qtbot, dock, 3)
    assert dock.fork_from(first, 2)
    dock.form.set_value("optimizer.lr", 0.003)
    forked = train(qtbot, dock, 2)
    labels = [first.label, forked.label]
    assert window.save()

    assert window.open_path(str(saved_spiral(tmp_path, "B")))
    assert not dock.history.runs
    assert window.open_path(str(a))               # closed and opened again
    runs = dock.history.runs
    assert [r.label for r in runs] == labels and all(r.past for r in runs)
    assert runs[1].parent == (runs[0], 2) and runs[1].x_offset == forked.x_offset
    assert np.array_equal(runs[0].losses.view(), first.losses.view())
    assert runs[0].epochs_done == 3 and runs[0].checkpoints == [1, 2, 3]
    assert "2 earlier runs are on the plot" in dock.note.text()
    assert dock.progress.format() == "not started"  # nothing runs yet
    window.training_dock.show()
    dock.tabs.setCurrentIndex(0)
    dock._redraw_plots(force=True)
    assert set(dock.plots.curves) == {1, 2}
    assert curve_color(runs[0]) != run_color(1)    # greyed
    assert forked.number in dock.plots.fork_tags

    assert dock.fork_from(runs[0], 3)              # a past run forks like any other
    checkpoint = load_arrays(tmp_path / "A-run" / "runs" / runs[0].id / "epoch-3.npz")
    caught = starts_from(dock, monkeypatch)
    third = train(qtbot, dock, 1)
    for name, value in checkpoint.items():
        np.testing.assert_array_equal(caught["params"][name], value)
    assert third.number == 3 and third.label.startswith("run 3 from run 1 @ epoch 3")
