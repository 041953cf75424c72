"""The run model: one per document, the state machine every training view follows, the weights
and their dirty flag, and where the runs are kept."""

import os
import shutil

import pytest
from wiregrad.app.training.run_model import TRANSITIONS, RunModel
from wiregrad.core.document import Document

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")
SPIRAL = os.path.join(EXAMPLES, "spiral-mlp.wg.json")


@pytest.fixture(autouse=True)
def every_epoch(monkeypatch):
    from wiregrad.app.training import run_model

    monkeypatch.setattr(run_model, "CHECKPOINT_EVERY_S", 0.0)


def recorder(signal) -> list:
    seen = []
    signal.connect(lambda *args: seen.append(args[0] if len(args) == 1 else args))
    return seen


def train(qtbot, window, epochs=2):
    dock = window.training
    dock.form.set_value("epochs", epochs)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=20_000)
    return dock.history.current


def test_the_state_machine_goes_only_where_a_run_can_go(qapp):
    model = RunModel(Document())
    states = recorder(model.state_changed)
    assert model.state == "idle" and not model.busy
    with pytest.raises(ValueError, match="from idle to paused"):
        model.set_state("paused")
    for state in ("running", "paused", "running", "stopping", "finished", "running", "failed"):
        model.set_state(state)
    assert states == ["running", "paused", "running", "stopping", "finished", "running",
                      "failed"]
    model.set_state("failed")          # the same state: nothing said
    assert len(states) == 7
    with pytest.raises(ValueError):
        model.set_state("stopping")    # only a going run can be stopped
    assert set(TRANSITIONS) == {"idle", "running", "paused", "stopping", "finished", "failed"}
    assert all(target in TRANSITIONS for targets in TRANSITIONS.values() for target in targets)


def test_stopping_is_said_only_for_a_going_run(qapp):
    model = RunModel(Document())
    model.stopping()
    assert model.state == "idle"
    model.set_state("running")
    model.stopping()
    assert model.state == "stopping" and model.busy


def test_weights_changes_and_the_dirty_flag_are_signals(qapp):
    model = RunModel(Document())
    dirty, replaced = recorder(model.weights_changed), recorder(model.params_changed)
    version = model.weights_version
    model.keep({"w": 1}, dirty=True)
    model.keep({"w": 2}, dirty=True)
    assert dirty == [True] and len(replaced) == 2      # the flag is said when it changes
    assert model.params == {"w": 2} and model.snapshot == {"w": 2}
    assert model.weights_version == version + 2
    model.dirty = False
    assert dirty == [True, False]
    assert model.unsaved_weights() == (None, None)
    model.set_state("running")
    assert not model.reset()                            # not during a run


def test_opening_a_document_replaces_the_model_and_every_view_follows(qtbot, window, tmp_path):
    a, b = tmp_path / "A.wg.json", tmp_path / "B.wg.json"
    shutil.copy(SPIRAL, a)
    shutil.copy(SPIRAL, b)
    dock = window.training
    assert window.open_path(str(a))
    first = window.run_model
    assert dock.model is first and first.doc is window.controller.doc
    assert dock.overlay._model is first and dock.plots.history is first.history
    train(qtbot, window, epochs=1)
    assert first.dirty and window.isWindowModified()

    assert window.open_path(str(b))
    model = window.run_model
    assert model is not first and model.doc is window.controller.doc
    assert dock.model is model and dock.overlay._model is model
    assert dock.plots.history is model.history and dock.plots.forks is model
    assert dock.params is None and not dock.history.runs and not window.isWindowModified()

    model.set_state("running")                  # the panel shows the new model's state
    assert dock.state == "running" and not dock.train_button.isEnabled()
    model.set_state("paused")
    assert dock.state == "paused" and dock.pause_button.text().endswith("Resume")
    model.set_state("stopping")
    assert dock.state == "stopping" and not dock.stop_button.isEnabled()
    model.set_state("finished")
    assert dock.state == "idle" and dock.train_button.isEnabled()

    model.dirty = True                          # the window's title follows the model
    assert window.isWindowModified()
    model.dirty = False
    assert not window.isWindowModified()


def test_an_unsaved_documents_runs_move_beside_it_when_it_is_first_saved(
        qtbot, window, tmp_path):
    assert window.open_path(SPIRAL, example=True)
    run = train(qtbot, window, epochs=2)
    store = window.run_model.store
    temp = store.folder
    assert store.temporary and (temp / run.id / "run.json").is_file()
    assert not str(temp).startswith(str(tmp_path))

    assert window.save_as(str(tmp_path / "mine.wg.json"))
    moved = tmp_path / "mine-run" / "runs" / run.id
    assert store.folder == tmp_path / "mine-run" / "runs" and not store.temporary
    assert (moved / "run.json").is_file() and (moved / "epoch-2.npz").is_file()
    assert not temp.exists()


def test_an_unsaved_documents_runs_go_when_it_is_closed_unsaved(qtbot, window):
    assert window.open_path(SPIRAL, example=True)
    train(qtbot, window, epochs=1)
    temp = window.run_model.store.folder
    assert temp.is_dir()
    window.new_document()                       # "discard" (the window fixture)
    qtbot.waitUntil(lambda: not temp.exists(), timeout=5_000)
