"""The training dock as a user drives it: train, watch, pause, step, stop, train again."""

import os
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget
from wiregrad.core.document import Node
from wiregrad.core.trainer import Session

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")


@pytest.fixture
def dock(window):
    existing = getattr(window, "training", None)
    if existing is not None:
        yield existing
        existing.shutdown()
        return
    from wiregrad.app.training.dock import TrainingDock

    widget = TrainingDock(window.controller, window.scene, window)
    holder = QDockWidget("Training", window)
    holder.setWidget(widget)
    window.addDockWidget(Qt.BottomDockWidgetArea, holder)
    yield widget
    widget.shutdown()


def open_example(window, name):
    assert window.open_path(os.path.join(EXAMPLES, f"{name}.wg.json"), example=True)


def set_training(dock, **changes):
    for key, value in changes.items():
        dock.form.set_value(key, value)


def wait_idle(qtbot, dock, timeout=10_000):
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=timeout)


def test_train_a_few_epochs_then_pause_resume_stop_and_train_again(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=3)
    assert dock.train()
    wait_idle(qtbot, dock)
    run = dock.history.current
    assert run.state == "finished" and run.epochs_done == 3
    assert run.last_step() == 3 * run.steps_per_epoch
    xs, ys = dock.plots.curves[1].smooth.getData()
    assert len(xs) == run.last_step() and np.isfinite(ys).all()
    assert len(dock.plots.curves[1].val.getData()[0]) == 3    # validation loss per epoch
    assert "training loss" in [w.text() for w in dock.figures_host.findChildren(type(dock.note))]
    assert dock.params is not None                             # the weights stay

    set_training(dock, epochs=5000)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.history.current.last_step() > 20, timeout=10_000)
    run = dock.history.current
    assert run.label.startswith("run 2") and "continued" in run.label
    dock.pause()
    assert dock.pause_button.text().endswith("Resume")
    qtbot.waitUntil(lambda: dock.worker.is_paused(), timeout=5_000)
    qtbot.wait(150)  # the paused event flushes what was queued
    paused_at = dock.worker.current_step()
    qtbot.wait(300)
    assert dock.worker.current_step() == paused_at             # no progress while paused
    assert run.last_step() == paused_at                        # the plot shows where it stopped
    dock.resume()
    qtbot.waitUntil(lambda: run.last_step() > paused_at + 20, timeout=10_000)
    dock.stop()
    wait_idle(qtbot, dock)
    assert run.state == "stopped"
    assert "Stopped" in dock.note.text()

    dock.reset_weights()
    set_training(dock, epochs=2, **{"optimizer.lr": 0.003})
    assert dock.train()
    wait_idle(qtbot, dock)
    third = dock.history.current
    assert third.label == "run 3: lr 0.003" and third.state == "finished"
    assert len(dock.plots.curves) == 3                        # runs overlay


def test_step_trains_one_batch_at_a_time(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    assert dock.step()
    qtbot.waitUntil(lambda: dock.state == "paused", timeout=10_000)
    assert dock.history.current.last_step() == 1
    assert dock.step()
    qtbot.waitUntil(lambda: dock.history.current.last_step() == 2, timeout=5_000)
    qtbot.wait(100)
    assert dock.worker.current_step() == 2 and dock.state == "paused"
    dock.stop()
    wait_idle(qtbot, dock)
    assert dock.history.current.last_step() == 2


def test_stop_during_a_step_ends_after_that_step(qtbot, window, dock, monkeypatch):
    open_example(window, "spiral-mlp")
    in_step = threading.Event()
    original = Session.step

    def slow_step(self, feeds):
        in_step.set()
        time.sleep(0.3)
        return original(self, feeds)

    monkeypatch.setattr(Session, "step", slow_step)
    dock.worker.in_process = True  # the patch lives in this process: train in a thread of it
    assert dock.train()
    assert in_step.wait(10)
    qtbot.wait(50)  # well inside the first step
    before = dock.worker.current_step()
    started = time.perf_counter()
    dock.stop()
    wait_idle(qtbot, dock, timeout=5_000)
    assert time.perf_counter() - started < 1.0
    assert dock.history.current.last_step() <= before + 1
    assert dock.history.current.state == "stopped"


def test_a_nan_stops_the_run_and_badges_the_node(qtbot, window, dock):
    open_example(window, "sine-regression")
    dock.form.set_value("optimizer", {"type": "sgd", "lr": 1e6})
    assert dock.train()
    wait_idle(qtbot, dock)
    run = dock.history.current
    assert run.state == "failed"
    assert "NaN" in dock.note.text() and "mse" in dock.note.text()
    assert dock.overlay.nan[0] == "mse"
    badge = dock.overlay._badge
    assert badge is not None and badge.parentItem() is window.scene.node_items["mse"]
    assert dock.params is not None                     # the last good weights are kept
    assert all(np.isfinite(v).all() for v in dock.params.values())
    window.controller.add_node("ReLU", (0, 400))       # an edit takes the badge away
    assert dock.overlay._badge is None


def test_a_graph_edit_stops_the_run_with_a_message(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=5000)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.history.current.last_step() > 5, timeout=10_000)
    assert not dock.form.isEnabled()                   # settings are locked while it runs
    window.controller.add_node("ReLU", (0, 400))
    wait_idle(qtbot, dock)
    assert "graph changed" in dock.note.text()
    assert dock.form.isEnabled()


def test_settings_edits_are_undoable(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    editor = dock.form.editors["optimizer.lr"]
    editor.setText("0.003")
    editor.editingFinished.emit()
    assert window.controller.doc.training["optimizer"]["lr"] == 0.003
    assert window.controller.stack.undoText() == "Training: lr = 0.003"
    window.controller.stack.undo()
    assert window.controller.doc.training["optimizer"]["lr"] == 0.01
    assert dock.form.editors["optimizer.lr"].text() == "0.01"   # the form follows the document
    box = dock.form.editors["dataset.kind"]
    box.activated.emit(box.findText("moons"))
    assert window.controller.doc.training["dataset"]["kind"] == "moons"
    assert "classes" not in window.controller.doc.training["dataset"]


def test_inside_the_network_gradient_flow_and_one_example(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=2)
    dock.train()
    wait_idle(qtbot, dock)
    dock.show_gradient_flow(True)
    glows = dock.overlay._glows
    assert glows, "wires carry their gradient"
    first = next(e for e in glows if e.src == "hidden1")
    assert glows[first].parentItem() is window.scene.wire_items[first]
    assert not any(e.src == "x" for e in glows)  # no gradient is computed for the data
    dock.inspect_node("hidden1")
    assert "hidden1" in dock.inspector.title.text()
    assert "gradient rms" in dock.inspector.figures.text()
    values = dock.run_example(0)
    assert values["hidden1"].shape == (32,) and values["logits"].shape == (3,)
    assert "hidden1" in dock.overlay._tags
    dock.clear_example()
    assert not dock.overlay._tags


def test_trained_weights_are_saved_beside_the_document(qtbot, window, dock, tmp_path):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=1)
    dock.train()
    wait_idle(qtbot, dock)
    path = tmp_path / "spiral.wg.json"
    assert window.save_as(str(path))
    if not hasattr(window, "training"):
        dock.save_weights(str(path))  # before the dock is part of the window
    weights = tmp_path / "spiral.weights.npz"
    assert weights.exists()
    trained = {k: v.copy() for k, v in dock.params.items()}
    assert window.open_path(str(path))
    assert dock.params is not None
    assert all(np.array_equal(dock.params[k], trained[k]) for k in trained)


def test_the_dock_works_with_a_graph_that_has_no_training_section(qtbot, window, dock):
    window.controller.add_node("Input", (0, 0))
    assert not dock.train()
    assert "no training section" in dock.note.text()


def test_closing_the_window_during_training_stops_it(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=5000)
    dock.train()
    qtbot.waitUntil(lambda: dock.history.current.last_step() > 5, timeout=10_000)
    if hasattr(window, "training"):
        window.close()
    else:
        dock.shutdown()
    assert not dock.worker.is_running()


def test_new_nodes_keep_the_trained_weights_of_the_others(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=1)
    dock.train()
    wait_idle(qtbot, dock)
    trained = dock.params["hidden1.weight"].copy()
    ctrl = window.controller
    ctrl.push(__import__("wiregrad.app.commands", fromlist=["AddNode"]).AddNode(
        ctrl.doc, (), Node("extra", "Parameter", {"shape": [2]})))
    dock.step()
    qtbot.waitUntil(lambda: dock.state == "paused", timeout=10_000)
    assert "new weight tensors start fresh" in dock.note.text() or dock.history.current.continued
    dock.stop()
    wait_idle(qtbot, dock)
    assert not np.array_equal(dock.params["hidden1.weight"], trained)  # one more step from them


def test_inside_a_loop_body_the_inspector_flow_and_example_show_every_step(qtbot, window, dock):
    open_example(window, "sequence-rnn")
    set_training(dock, epochs=1)
    dock.train()
    wait_idle(qtbot, dock)
    dock.tabs.setCurrentIndex(1)
    dock.show_gradient_flow(True)
    assert window.controller.open_node("rnn")
    scene = window.scene
    glows = dock.overlay._glows
    into_cell = next(e for e in scene.wire_items if e.src == "cell")
    assert into_cell in glows and glows[into_cell].parentItem() is scene.wire_items[into_cell]
    scene.select_nodes(["cell"])                       # a click on a node in the body
    title = dock.inspector.title.text()
    assert "rnn/cell" in title and "10 steps" in title
    assert "gradient rms" in dock.inspector.figures.text()
    values = dock.run_example(0)
    assert values["rnn/cell"].shape == (10, 16)        # one row per step
    assert values["pred"].shape == (1,)
    tag = dock.overlay._tags["cell"]
    assert tag.parentItem() is scene.node_items["cell"] and "10 steps" in tag.lines[0]


def test_a_block_definition_runs_under_each_of_its_instances():
    from wiregrad.app.training import probe

    from wiregrad import core

    doc = core.load(os.path.join(EXAMPLES, "blocks-and-gate.wg.json"))
    assert probe.prefixes(doc, ()) == [""]
    assert probe.prefixes(doc, ("gate", "then")) == ["gate/then"]
    assert probe.prefixes(doc, ("@Residual",)) == ["res1", "res2"]
    program = core.compile(doc)
    trace = probe.Probe(doc).trace(program.init_params(0), {"x": np.ones((5, 4))})
    paths, port = probe.traced_as(doc, ("@Residual",), "fc")
    assert paths == ["res1/fc", "res2/fc"] and port is None and trace.runs(paths) == 1
    assert len(trace.ports(paths)[0][1]) == 2           # both instances' values


def test_unsaved_trained_weights_make_the_window_dirty(qtbot, window, dock, tmp_path, monkeypatch):
    open_example(window, "spiral-mlp")
    path = tmp_path / "spiral.wg.json"
    assert window.save_as(str(path))
    assert not window.isWindowModified()
    set_training(dock, epochs=1)
    window.controller.stack.setClean()              # the settings edit is not what we test
    dock.train()
    wait_idle(qtbot, dock)
    assert window.isWindowModified() and window.is_dirty()   # the title shows `*`
    asked = []
    monkeypatch.setattr(type(window), "ask_unsaved", lambda self: asked.append(1) or "cancel")
    window.close()
    assert asked and window.isVisible()              # closing asks, and Cancel keeps it open
    assert window.save()
    assert not window.isWindowModified()
    assert (tmp_path / "spiral.weights.npz").exists()
    dock.reset_weights()                             # forgetting them is a change too
    assert window.isWindowModified()
    assert window.save()
    assert not window.isWindowModified()
    assert not (tmp_path / "spiral.weights.npz").exists()  # reopening does not bring them back
    dock.reset_weights()                             # nothing left to forget
    assert not window.isWindowModified()


def test_the_csv_column_mapper_is_a_table_of_arrays_and_columns(qtbot, window, dock):
    open_example(window, "iris-csv")
    dock.tabs.setCurrentIndex(2)
    mapper = dock.form.editors["dataset.columns"]
    assert mapper.header == ["sepal_length", "sepal_width", "petal_length", "petal_width",
                             "species"]                 # read from the file's header
    assert mapper.arrays[:2] == ["x", "species"]
    assert mapper.targets == {"x": False, "species": True}
    doc = window.controller.doc
    original = dict(doc.training["dataset"]["columns"])

    mapper.set_checked("x", "petal_width", False)       # a click on a box
    assert doc.training["dataset"]["columns"]["x"] == ["sepal_length", "sepal_width",
                                                       "petal_length"]
    assert window.controller.stack.undoText() == "Training: columns of x"
    mapper = dock.form.editors["dataset.columns"]       # the form follows the document
    assert mapper.item(0, 4).checkState() == Qt.Unchecked

    mapper.set_checked("species", "sepal_width")        # a target's one column is replaced
    assert doc.training["dataset"]["columns"]["species"] == "sepal_width"
    mapper = dock.form.editors["dataset.columns"]
    mapper.set_checked("species", "target", False)      # not a target: a 2-D array
    assert doc.training["dataset"]["columns"]["species"] == ["sepal_width"]

    for _ in range(3):
        window.controller.stack.undo()
    assert doc.training["dataset"]["columns"] == original


def test_hidden_plots_are_not_redrawn_during_a_run_and_catch_up_when_shown(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=2)
    dock.tabs.setCurrentIndex(2)                       # the Settings tab: plots hidden
    dock.train()
    wait_idle(qtbot, dock)
    assert not dock.plots.curves                        # no UI-thread time spent on them
    assert "step" in dock.progress.format()             # the status still follows the run
    dock.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: 1 in dock.plots.curves, timeout=2_000)
    run = dock.history.current
    assert len(dock.plots.curves[1].smooth.getData()[0]) == run.last_step()


def test_training_runs_in_a_process_without_qt_that_ends_with_the_dock(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=2)
    assert dock.train()
    wait_idle(qtbot, dock)
    pid = dock.worker._child.runner.pid
    assert pid != os.getpid()
    if os.path.exists(f"/proc/{pid}/maps"):
        with open(f"/proc/{pid}/maps") as maps:
            assert "PySide6" not in maps.read()            # the trainer's interpreter has no Qt
    assert dock.train()
    wait_idle(qtbot, dock)
    assert dock.worker._child.runner.pid == pid               # one warm child serves every run
    dock.shutdown()
    with pytest.raises(ProcessLookupError):                   # ended and reaped: no zombie
        os.kill(pid, 0)


def _child_environment(dock) -> dict:
    with open(f"/proc/{dock.worker._child.runner.pid}/environ", "rb") as handle:
        pairs = handle.read().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="reads /proc")
def test_the_training_process_leaves_a_core_to_the_editor(dock, monkeypatch):
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    dock.worker.warm_up()
    cores = len(os.sched_getaffinity(0))
    child = _child_environment(dock)
    assert child["OPENBLAS_NUM_THREADS"] == child["OMP_NUM_THREADS"] == str(max(1, cores - 1))
    assert "OPENBLAS_NUM_THREADS" not in os.environ           # the editor's own is untouched


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="reads /proc")
def test_a_thread_count_the_user_set_reaches_the_training_process(dock, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    dock.worker.warm_up()
    child = _child_environment(dock)
    assert child["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in child


def test_the_data_view_shows_steps_per_sample_for_a_per_sample_while(qtbot, window, dock):
    open_example(window, "ponder")
    set_training(dock, epochs=3)
    assert dock.train()
    wait_idle(qtbot, dock)
    view = dock.dataview
    assert view.active and view.spec["mode"] == "steps" and view.spec["loop"] == "ponder"
    view.show_params(dock.params)
    steps, errors = view.train_points.getData()
    # each sample's own k: the steps taken are whole numbers 1 .. 12 plus the jitter
    k = view.steps_feeds["steps"]
    np.testing.assert_allclose(np.round(steps), k)
    assert np.all(np.abs(steps - k) <= 0.25) and np.isfinite(errors).all()
    assert "Steps per sample" in view.caption.text() and "mean" in view.caption.text()


def test_the_inside_tab_shows_a_batchnorms_running_statistics(qtbot, window, dock):
    open_example(window, "digits-cnn")
    set_training(dock, epochs=1)
    assert dock.train()
    wait_idle(qtbot, dock, timeout=30_000)
    dock.inspect_node("bn1")
    dock._redraw_views(force=True)
    text = dock.inspector.figures.text()
    assert "buffer</span> running_mean (16)" in text and "running_var (16)" in text


def test_the_forms_defaults_are_the_training_sections_schema(qtbot, window, dock):
    from wiregrad.app.training.form import _EMPTY, default_section
    from wiregrad.core.training_section import DEFAULT_LR, DEFAULTS

    open_example(window, "spiral-mlp")
    assert dock.form.editors["optimizer.lr"].placeholderText() == f"{DEFAULT_LR:g}"
    dock.form.editors["optimizer.type"].activated.emit(
        dock.form.editors["optimizer.type"].findText("sgd"))
    assert dock.form.editors["optimizer.lr"].placeholderText() == f"{DEFAULT_LR:g}"
    set_training(dock, batch_size=_EMPTY, epochs=_EMPTY)    # left out: the defaults show
    assert dock.form.editors["batch_size"].value() == DEFAULTS["batch_size"]
    assert dock.form.editors["epochs"].value() == DEFAULTS["epochs"]
    assert default_section(window.controller.doc)["optimizer"] == DEFAULTS["optimizer"]


def test_a_stray_node_off_the_loss_path_is_ignored_by_training(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    set_training(dock, epochs=1)
    stray = window.controller.add_node("Sigmoid", (0, 400))  # nothing wired into it
    assert dock.train()
    assert f"ignored by training: {stray} (x is not connected)" in dock.note.text()
    wait_idle(qtbot, dock)
    assert dock.history.current.state == "finished"
    assert stray in [n.id for n in window.controller.doc.graph.nodes]  # the document keeps it


def test_a_problem_on_the_loss_path_still_stops_training_naming_the_node(qtbot, window, dock):
    open_example(window, "spiral-mlp")
    window.controller.add_node("Sigmoid", (0, 400))
    graph = window.controller.doc.graph
    window.controller.disconnect(next(e for e in graph.edges if e.dst == "head"))
    assert not dock.train()
    assert "Cannot train:" in dock.note.text() and "head.x is not connected" in dock.note.text()
    assert "sigmoid" not in dock.note.text()
