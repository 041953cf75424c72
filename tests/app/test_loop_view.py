"""The unrolled Loop view: select a Loop after a run (or Run one example) and step through it.

The inspector shows a step slider, each body wire's value and gradient at that step, and a
plot of one value across the steps; inside the loop's body the wires carry the step's values.
Per-sample while and tree loops show each sample's own step count.
"""

import os
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from wiregrad.app import step_labels
from wiregrad.app.training import loop_steps, unroll

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")


@pytest.fixture
def dock(window):
    yield window.training
    window.training.shutdown()


def open_example(window, name):
    assert window.open_path(os.path.join(EXAMPLES, f"{name}.wg.json"), example=True)


def train(qtbot, dock, epochs=1):
    dock.form.set_value("epochs", epochs)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=30_000)


def unrolled(qtbot, window, loop_id):
    """Select a Loop on the canvas and wait for its steps."""
    model = loop_steps.shared(window.controller)
    window.scene.select_nodes([loop_id])
    qtbot.waitUntil(lambda: model.record is not None and not model.working, timeout=15_000)
    return model


def test_a_loop_selected_after_a_run_shows_each_steps_values_and_gradients(qtbot, window, dock):
    open_example(window, "sequence-rnn")
    train(qtbot, dock)
    model = unrolled(qtbot, window, "rnn")
    panel = window.inspector.steps_panel
    assert panel.isVisible() and "Unrolled: rnn" in panel.header.text()
    record = model.record
    sequence = dock.info.train_feeds["seq"][model.row]
    assert record.kind == "scan" and record.steps == len(sequence) == 10
    assert (panel.slider.minimum(), panel.slider.maximum()) == (0, 9)

    panel.slider.setValue(4)
    assert model.step == 4
    assert "step <b>4</b> of 10" in panel.step_label.text()
    labels = [panel.table.item(i, 0).text() for i in range(panel.table.rowCount())]
    assert {"cell", "act"} <= set(labels)
    row = labels.index("act")
    # the value is the example's own at that step: what Run one example gives for it
    example = dock.run_example(model.row)["rnn/act"]
    assert panel.table.item(row, 1).text() == unroll.short(example[4], 3)
    assert panel.table.item(row, 2).text().startswith("rms ")      # its gradient at step 4
    assert "gradient rms" in panel.table.item(row, 1).toolTip()

    # the plot: the chosen value over the 10 steps, a line at the step shown
    xs, ys = panel.curve.getData()
    assert len(xs) == 10 and np.isfinite(ys).all()
    assert panel.marker.value() == 4
    panel.how_box.setCurrentText("gradient norm")
    assert np.isfinite(panel.curve.getData()[1]).all()
    panel.marker.setValue(7)                                       # dragging the line
    assert model.step == 7 and panel.slider.value() == 7


def test_inside_the_body_the_wires_carry_the_steps_values(qtbot, window, dock):
    open_example(window, "sequence-rnn")
    train(qtbot, dock)
    model = unrolled(qtbot, window, "rnn")
    panel = window.inspector.steps_panel
    panel.slider.setValue(5)
    assert window.controller.open_node("rnn")                      # the breadcrumb: main › rnn
    assert panel.isVisible()                                       # the slider stays at hand
    scene = window.scene
    value, grad = model.at_step("act", "y")
    np.testing.assert_array_equal(value, model.record.value("act", "y", 5))
    tag = scene.step_tags["act"]                                   # over the node: the whole value
    assert tag.parentItem() is scene.node_items["act"]
    assert tag.lines[0] == "t5  (16,)" == step_labels.tag_lines(value, grad, 5)[0]
    assert tag.lines[2].startswith("∇ rms ")                       # and its gradient's size
    assert tag.rect.width() <= scene.node_items["act"].rect.width()  # not over the next node
    wire = next(w for e, w in scene.wire_items.items() if e.src == "act")
    assert "at step 5 of 10" in wire.toolTip() and "gradient rms" in wire.toolTip()
    # a body's wires are short: a label says as much as fits beside its wire
    here = [scene.node_items["h_next"].x(), scene.node_items["h_next"].y()]
    window.controller.move_nodes({"h_next": (here, [here[0] + 400, here[1]])})
    wire = next(w for e, w in scene.wire_items.items() if e.src == "act" and e.dst == "h_next")
    assert wire.label == f"t5  {unroll.short(value, 2)}"
    panel.slider.setValue(6)
    assert wire.label.startswith("t6  ") and scene.step_tags["act"].lines[0].startswith("t6 ")

    scene.select_nodes(["cell"])                                   # a body node: plotted
    assert panel.wire_box.currentData() == ("cell", "y")
    scene.clearSelection()
    window.go_up()
    shape_labels = [w.label for w in scene.wire_items.values()]
    assert not any(label.startswith("t") for label in shape_labels)  # shapes again outside
    assert not scene.step_tags


def test_run_one_example_is_enough_to_unroll_a_per_sample_while(qtbot, window, dock):
    open_example(window, "ponder")
    dock.run_example()                                             # no training run at all
    dock.run_example(3)  # (the first one loads the data: only then is there a row 3)
    model = unrolled(qtbot, window, "ponder")
    record = model.record
    assert record.kind == "per-sample while" and record.row == 3
    counts = record.counts
    assert len(counts) == 32 and counts.min() >= 1 and counts.min() < counts.max()
    assert record.steps == counts[3]                               # this sample's own count
    panel = window.inspector.steps_panel
    assert panel.slider.maximum() == counts[3] - 1
    assert "each sample its own count" in panel.counts.text()

    other = int(np.argmax(counts))                                  # the longest: another range
    panel.row_box.setValue(other)
    qtbot.waitUntil(lambda: model.record.row == other and not model.working, timeout=15_000)
    assert model.record.steps == counts[other] and panel.slider.maximum() == counts[other] - 1


def test_a_tree_loop_steps_through_the_levels_of_each_samples_tree(qtbot, window, dock):
    open_example(window, "tree-expressions")
    dock.run_example(0)
    model = unrolled(qtbot, window, "tree")
    record = model.record
    assert record.kind == "tree" and len(record.counts) == 16
    assert record.steps == record.counts[0]
    assert "levels of its tree" in window.inspector.steps_panel.counts.text()


def test_before_any_run_the_panel_says_how_and_run_one_example_is_enough(qtbot, window, dock):
    open_example(window, "sequence-rnn")
    window.scene.select_nodes(["rnn"])
    panel = window.inspector.steps_panel
    assert panel.isVisible() and not panel.slider.isVisible()
    assert panel.status.text() == loop_steps.NO_RUN
    qtbot.mouseClick(dock.example_button, Qt.LeftButton)           # Run one example
    model = loop_steps.shared(window.controller)
    qtbot.waitUntil(lambda: model.record is not None and not model.working, timeout=15_000)
    assert panel.slider.isVisible() and panel.slider.maximum() == model.record.steps - 1
    window.scene.select_nodes(["readout"])                         # not a Loop: no panel
    assert not panel.isVisible()


def test_a_loop_selected_before_training_unrolls_when_the_run_ends(qtbot, window, dock):
    open_example(window, "sequence-rnn")
    window.scene.select_nodes(["rnn"])
    model = loop_steps.shared(window.controller)
    assert model.record is None and model.status == loop_steps.NO_RUN
    train(qtbot, dock)
    qtbot.waitUntil(lambda: model.record is not None and not model.working, timeout=15_000)
    assert model.record.steps == 10 and window.inspector.steps_panel.slider.isVisible()
    first = model.record
    train(qtbot, dock)                                             # trained on: unrolled again
    # the run's start clears the record, its end brings a new one
    qtbot.waitUntil(lambda: model.record is not None and model.record is not first
                    and not model.working,
                    timeout=15_000)
    assert not np.array_equal(model.record.value("act", "y", 9), first.value("act", "y", 9))


def test_the_work_happens_off_the_ui_thread(qtbot, window, dock, monkeypatch):
    open_example(window, "sequence-rnn")
    train(qtbot, dock)
    real = unroll.unroll

    def slow(*args, **kwargs):
        time.sleep(0.6)
        return real(*args, **kwargs)

    monkeypatch.setattr(unroll, "unroll", slow)
    started = time.perf_counter()
    window.scene.select_nodes(["rnn"])
    assert time.perf_counter() - started < 0.3                     # the selection answers at once
    model = loop_steps.shared(window.controller)
    assert model.working and "Running example" in window.inspector.steps_panel.status.text()
    qtbot.waitUntil(lambda: model.record is not None and not model.working, timeout=15_000)
    assert model.record.steps == 10


def test_opening_another_document_forgets_the_unrolled_loop(qtbot, window, dock):
    open_example(window, "sequence-rnn")
    train(qtbot, dock)
    model = unrolled(qtbot, window, "rnn")
    open_example(window, "spiral-mlp")
    assert model.loop is None and model.record is None
    assert not window.inspector.steps_panel.isVisible()


def test_series_reduce_each_step_to_one_number():
    record = unroll.LoopSteps("rnn", "scan", 0, steps=3,
                              values={("a", "y"): [np.array([[3.0, 4.0]]), np.array([[1.0, 1.0]]),
                                                   np.array([[0.0, -2.0]])]},
                              grads={("a", "y"): [None, np.array([[0.0, 2.0]]), None]})
    np.testing.assert_allclose(unroll.series(record, "a", "y", "mean"), [3.5, 1.0, -1.0])
    np.testing.assert_allclose(unroll.series(record, "a", "y", "norm"), [5.0, np.sqrt(2), 2.0])
    np.testing.assert_allclose(unroll.series(record, "a", "y", "element", 1), [4.0, 1.0, -2.0])
    assert np.isnan(unroll.series(record, "a", "y", "element", 5)).all()
    np.testing.assert_allclose(unroll.series(record, "a", "y", "gradient norm"),
                               [np.nan, 2.0, np.nan])
