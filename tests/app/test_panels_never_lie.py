"""The training panels never lie and never break: what they show is the graph, the run and the
document on screen now, in words and numbers that mean what they say."""

import os
from itertools import pairwise

import numpy as np
import pytest
from PySide6.QtWidgets import QLabel
from wiregrad.app.number_text import CleanAxis, number
from wiregrad.app.training import flow_scale
from wiregrad.app.training.history import History
from wiregrad.app.training.node_view import _fmt as inspector_figure
from wiregrad.app.training.plots import TrainingPlots
from wiregrad.app.training.status import _figure_text

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")


def open_example(window, name):
    assert window.open_path(os.path.join(EXAMPLES, f"{name}.wg.json"), example=True)


def train(qtbot, dock, epochs=1, **settings):
    dock.form.set_value("epochs", epochs)
    for key, value in settings.items():
        dock.form.set_value(key, value)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=20_000)


def redraw(dock):
    dock._views_stale = True
    dock._redraw_views(force=True)


def live_glows(window, dock):
    """Every glow drawn, each on a wire the scene shows now."""
    glows = dock.overlay._glows
    for edge, glow in glows.items():
        assert glow.parentItem() is window.scene.wire_items[edge]
        assert glow.scene() is window.scene
    return glows


# -- the gradient-flow overlay ----------------------------------------------------------------


def test_deleting_or_disconnecting_wires_under_gradient_flow_leaves_nothing_dead(qtbot, window):
    dock, ctrl = window.training, window.controller
    open_example(window, "spiral-mlp")
    train(qtbot, dock)
    dock.show_gradient_flow(True)
    wire = next(e for e in live_glows(window, dock) if e.src == "hidden1")

    ctrl.disconnect(wire)
    redraw(dock)  # raised "QGraphicsPathItem already deleted" here
    assert wire not in live_glows(window, dock)
    ctrl.stack.undo()
    qtbot.waitUntil(lambda: wire in dock.overlay._glows)  # the wire back, and its gradient
    live_glows(window, dock)

    ctrl.remove_nodes(["act1"])
    redraw(dock)
    assert not any("act1" in (e.src, e.dst) for e in live_glows(window, dock))
    ctrl.stack.undo()
    qtbot.waitUntil(lambda: any(e.src == "act1" for e in dock.overlay._glows))
    ctrl.stack.redo()
    redraw(dock)
    live_glows(window, dock)

    dock.run_example(0)
    ctrl.remove_nodes(["hidden2"])
    dock.run_example(1)  # the example tags are redrawn on the nodes there are
    assert "hidden2" not in dock.overlay._tags and "hidden1" in dock.overlay._tags

    ctrl.move_nodes({"head": ((0, 0), (40, 300))})  # a glow follows its wire
    qtbot.waitUntil(lambda: all(glow.path() == window.scene.wire_items[e].path
                                for e, glow in dock.overlay._glows.items()))

    open_example(window, "sine-regression")
    redraw(dock)
    assert not live_glows(window, dock) and not dock.overlay._tags


def test_the_inside_tab_follows_the_selection_the_inspector_shows(qtbot, window):
    dock, ctrl, scene = window.training, window.controller, window.scene
    open_example(window, "spiral-mlp")
    train(qtbot, dock)
    dock.tabs.setCurrentIndex(1)
    dock.show_gradient_flow(True)
    scene.select_nodes(["hidden1"])
    assert "hidden1" in dock.inspector.title.text()

    ctrl.disconnect(next(e for e in scene.wire_items if e.src == "act2"))
    redraw(dock)
    scene.select_nodes(["act1"])
    assert window.inspector.ids == ["act1"]
    assert "<b>act1</b>" in dock.inspector.title.text()

    ctrl.rename("act1", "relu1")  # the item keeps its selection, the node a new id
    redraw(dock)
    assert window.scene.selected_node_ids() == ["relu1"]
    assert "<b>relu1</b>" in dock.inspector.title.text()

    dock.inspect_node("hidden2")  # what the Inside tab shows is what the canvas selects
    assert scene.selected_node_ids() == ["hidden2"] and window.inspector.ids == ["hidden2"]


# -- a document opened ------------------------------------------------------------------------


def test_opening_another_document_leaves_nothing_of_the_old_run(qtbot, window):
    dock = window.training
    open_example(window, "spiral-mlp")
    train(qtbot, dock, epochs=2, optimizer={"type": "adam", "lr": 0.01,
                                            "schedule": {"type": "cosine", "T_max": 2}})
    dock.run_example(0)
    dock.show_gradient_flow(True)
    dock.inspect_node("hidden1")
    dock._redraw_plots(force=True)
    steps = dock.history.current.last_step()
    assert f"{steps}/{steps}" in dock.progress.format() and dock.plots.lr_plot.isVisible()

    open_example(window, "sine-regression")
    qtbot.wait(100)
    shown = " ".join(label.text() for label in dock.findChildren(QLabel) if label.isVisible())
    assert f"{steps}/{steps}" not in shown + dock.progress.format()
    assert dock.progress.format() == "not started" and dock.progress.value() <= 0
    assert not dock.figure_labels and dock.speed.text() == ""
    assert dock.example_text.text() == "" and dock.example_row.maximum() == 0
    assert "Click a node" in dock.inspector.title.text()
    assert not dock.overlay._tags and not dock.overlay._glows and dock.overlay._badge is None
    plots = dock.plots
    assert not plots.curves and not plots.lr_plot.isVisible() and not plots.tip.isVisible()
    assert plots.loss_plot.vb.viewRange()[0][1] < steps  # no axis left at the old run's length


# -- stopping and pausing ---------------------------------------------------------------------


def test_a_stop_names_the_epoch_the_bar_shows(qtbot, window):
    dock = window.training
    open_example(window, "spiral-mlp")
    assert dock.step()  # one step, then paused: in epoch 1, no epoch complete
    qtbot.waitUntil(lambda: dock.state == "paused", timeout=20_000)
    assert dock.step()
    qtbot.waitUntil(lambda: dock.history.current.last_step() == 2, timeout=5_000)
    dock._redraw_plots(force=True)
    assert "epoch 1/" in dock.progress.format()
    dock.stop()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=5_000)
    assert "Stopped at step 2 (epoch 1" in dock.note.text()   # said "(epoch 0)"
    assert "epoch 1/" in dock.progress.format() and "stopped" in dock.progress.format()


def test_pause_says_paused_and_resume_says_so(qtbot, window):
    dock = window.training
    open_example(window, "spiral-mlp")
    dock.form.set_value("epochs", 5000)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.history.current.last_step() > 5, timeout=20_000)
    dock.pause()
    assert "Paused" in dock.note.text()
    assert dock.progress.format().startswith("paused")
    assert "paused" in window.statusBar().currentMessage()
    dock.resume()
    assert "Resumed" in dock.note.text()
    assert not dock.progress.format().startswith("paused")
    assert "resumed" in window.statusBar().currentMessage()
    dock.stop()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=10_000)


# -- wire colours -----------------------------------------------------------------------------


def looks_red(color) -> bool:
    return color.red() > 200 and color.green() < 140 and color.blue() < 140


def test_a_healthy_network_shows_no_exploding_wire(qtbot, window):
    dock = window.training
    open_example(window, "spiral-mlp")
    train(qtbot, dock, epochs=1)
    dock.show_gradient_flow(True)
    glows = live_glows(window, dock)
    loss_wire = next(e for e in glows if e.src == "ce" and e.dst == "loss")
    assert not any(looks_red(glow.pen().color()) for glow in glows.values())
    assert glows[loss_wire].pen().color() == flow_scale.LOSS_COLOR   # 1 by definition
    assert "1 by definition" in glows[loss_wire].toolTip()
    levels = dock.overlay.flow_levels()
    assert levels and all(t < flow_scale.EXPLODING for t in levels.values())
    assert not any(e.dst == "logits" for e in glows)  # no gradient flows back from it


def test_the_colour_scale_compares_a_wire_with_the_network():
    median = 0.2
    assert flow_scale.position(0.2, median) == pytest.approx(0.5)         # green
    assert flow_scale.position(0.2 * 1e3, median) == 1.0                  # exploding
    assert flow_scale.position(0.2 * 1e-3, median) == 0.0                 # vanishing
    assert flow_scale.position(2e3, 1e4) == 1.0         # huge in itself, whatever the rest do
    assert flow_scale.position(float("nan"), median) == 1.0


# -- figures and plots ------------------------------------------------------------------------


def test_no_figure_reads_minus_zero():
    assert number(-0.0) == "0" and number(-1e-20) == "-1.00e-20" and number(-0.5) == "-0.5"
    assert _figure_text("loss", -0.0) == "0" and _figure_text("accuracy", -0.0) == "0.0%"
    assert inspector_figure(-0.0) == "0"
    axis = CleanAxis("left")
    ticks = axis.tickStrings([-0.5, -0.0, -1e-17, 0.5], 1.0, 0.5)
    assert ticks == ["-0.5", "0", "0", "0.5"]  # pyqtgraph wrote "-0" and "-1e-17"
    history = History()
    run = history.new_run({"epochs": 1})
    run.add_events([{"kind": "start", "total_steps": 2, "steps_per_epoch": 2, "epochs": 1},
                    {"kind": "step", "step": 1, "loss": -0.0},
                    {"kind": "epoch", "epoch": 1, "step": 1, "loss": -0.0, "lr": -0.0}])
    plots = TrainingPlots()
    plots.set_history(history)
    assert "-0" not in plots.describe_at(1)


def fake_history(runs: int) -> History:
    history = History()
    for k in range(runs):
        run = history.new_run({"optimizer": {"lr": 0.01 / (k + 1), "weight_decay": 1e-4,
                                             "schedule": {"type": "cosine", "T_max": 10}},
                               "batch_size": 16 * (k + 1)})
        run.add_events([{"kind": "start", "total_steps": 100, "steps_per_epoch": 10,
                         "epochs": 10}])
        for e in range(10):
            run.add_events([{"kind": "step", "step": e * 10 + i + 1, "loss": 1 / (e + i + 1)}
                            for i in range(10)])
            run.add_events([{"kind": "epoch", "epoch": e + 1, "step": e * 10 + 10,
                             "loss": 0.5, "val_loss": 0.6, "accuracy": 0.9,
                             "val_accuracy": 0.8, "lr": 0.01 * (1 - e / 10)}])
    return history


@pytest.mark.parametrize("height", [180, 230, 260, 320])
def test_plot_titles_never_overlap_and_the_legend_is_not_cut_off(qtbot, height):
    """The dock gives the plots 230 px at least (at 1280x800, about that); smaller still,
    the titles stay apart."""
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.set_history(fake_history(4))
    plots.resize(585, height)
    plots.show()
    qtbot.waitExposed(plots)
    plots.refresh()
    qtbot.wait(50)
    assert plots.show_lr  # the schedule shows the learning rate: three plots
    titles = [p.getAxis("left").label.sceneBoundingRect()
              for p in (plots.loss_plot, plots.metric_plot, plots.lr_plot)]
    # rotated titles: their scene rectangles are as tall as the text is long
    for upper, lower in pairwise(titles):
        assert upper.bottom() <= lower.top() + 1, (upper, lower)
    legend = plots.loss_legend
    if height < 230:  # below the dock's least: titles apart is all that can be asked
        return
    view_rect = plots.view.sceneRect()
    for plot in (plots.loss_plot, plots.metric_plot, plots.lr_plot):
        assert view_rect.contains(plot.sceneBoundingRect().adjusted(1, 1, -1, -1))
    assert legend.isVisible() and legend.items, "the legend names the latest run at least"
    assert plots.loss_plot.vb.sceneBoundingRect().contains(legend.sceneBoundingRect())
    named = [label.text for _sample, label in legend.items]
    assert named[-1].startswith("run 4")
    assert all(len(text) <= 40 for text in named)


def test_the_legend_is_renamed_with_the_runs_and_keeps_the_newest(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(585, 400)
    plots.show()
    history = fake_history(5)
    plots.set_history(history)
    plots.refresh()
    qtbot.wait(50)
    named = [label.text.split(":")[0] for _sample, label in plots.loss_legend.items]
    assert named == ["run 3", "run 4", "run 5"]
    assert np.all([c.smooth.isVisible() for c in plots.curves.values()])  # every curve stays
