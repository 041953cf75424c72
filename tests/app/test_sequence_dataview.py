"""The data view for sequences: one example with the model's prediction after each step, and
prediction against target over many sequences (regression) or the example's class
probabilities (classification); computed off the UI thread."""

import os
import time

import numpy as np
import pytest
from wiregrad.app.training import sequences as sq
from wiregrad.app.training.dataview import DataView
from wiregrad.app.training.worker import SessionInfo
from wiregrad.core.trainer import Session

from wiregrad import core

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples")


def session(name):
    doc = core.load(os.path.join(EXAMPLES, f"{name}.wg.json"))
    s = Session(doc, base_dir=EXAMPLES)
    info = SessionInfo(s.train_feeds, s.val_feeds, s.classes, list(s.names), s.steps_per_epoch,
                       s.plan.epochs, s.plan)
    return doc, s, info


@pytest.fixture
def view(qtbot):
    widget = DataView()
    qtbot.addWidget(widget)
    widget.resize(700, 300)
    widget.show()
    yield widget
    widget.sequences.background.wait()


def drawn(qtbot, view):
    qtbot.waitUntil(lambda: view.sequences.shown is not None, timeout=15_000)
    return view.sequences.shown


def test_regression_over_sequences_shows_the_prediction_step_by_step_and_a_scatter(qtbot, view):
    doc, s, info = session("sequence-rnn")
    assert view.configure(doc, info)
    assert view.spec["mode"] == "seq_regress" and view.sequences.isVisible()
    assert not view.plot_widget.isVisible()
    params = s.param_dict(copy=True)
    view.show_params(params)
    pic = drawn(qtbot, view)
    seq = info.val_feeds["seq"][0]
    xs, ys = view.sequences.input_curves[0].getData()
    np.testing.assert_allclose(ys, seq[:, 0], rtol=1e-6)           # the example's values
    xs, ys = view.sequences.pred_curve.getData()
    assert list(xs) == list(range(1, 11))                          # a prediction after each step
    whole = s.program.run(params, {"seq": seq[None]}, outputs=["pred"])["pred"]
    assert ys[-1] == pytest.approx(float(whole[0, 0]), rel=1e-5)   # the last: the whole sequence
    first = s.program.run(params, {"seq": seq[None, :1]}, outputs=["pred"])["pred"]
    assert ys[0] == pytest.approx(float(first[0, 0]), rel=1e-5)    # the first: one step of it
    assert view.sequences.target_line.value() == pytest.approx(float(info.val_feeds["target"][0, 0]))
    px, py = view.sequences.points.getData()
    assert len(px) == sq.MAX_SAMPLES                               # prediction vs target
    np.testing.assert_allclose(px, info.val_feeds["target"][:sq.MAX_SAMPLES, 0], rtol=1e-6)
    shown = {"seq": info.val_feeds["seq"][:sq.MAX_SAMPLES]}
    np.testing.assert_allclose(py, s.program.run(params, shown, outputs=["pred"])["pred"][:, 0],
                               rtol=1e-4, atol=1e-6)
    assert "r²" in view.sequences.caption.text() and pic.mode == "seq_regress"


def test_classification_over_sequences_shows_the_class_probabilities(qtbot, view):
    doc, s, info = session("parity-rnn")
    assert view.configure(doc, info)
    assert view.spec["mode"] == "seq_classify"
    view.sequences.row_box.setValue(5)
    view.show_params(s.param_dict(copy=True))
    pic = drawn(qtbot, view)
    assert pic.row == 5
    length = info.val_feeds["seq"].shape[1]
    curves = [c for c in view.sequences.class_curves if c.isVisible()]
    assert len(curves) == 2 and all(len(c.getData()[0]) == length for c in curves)
    probs = np.stack([c.getData()[1] for c in curves], axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)  # a distribution each step
    heights = view.sequences.bars.opts["height"]
    np.testing.assert_allclose(heights, probs[-1], rtol=1e-6)      # the bars: the end of it
    text = view.sequences.caption.text()
    assert f"true class {int(info.val_feeds['label'][5])}" in text and "Accuracy" in text


def test_a_long_lstm_sequence_is_drawn_without_holding_the_ui(qtbot, view):
    doc, s, info = session("lstm-sequence")
    assert view.configure(doc, info)
    params = s.param_dict(copy=True)
    started = time.perf_counter()
    view.show_params(params)
    assert time.perf_counter() - started < 0.02                    # it only asks for the picture
    pic = drawn(qtbot, view)
    assert pic.sequence.shape == (50, 2) and pic.after.shape == (50, 1)
    assert sum(c.isVisible() for c in view.sequences.input_curves) == 2   # value and marker


def test_only_the_newest_snapshot_is_drawn(qtbot, view, monkeypatch):
    doc, s, info = session("sequence-rnn")
    view.configure(doc, info)
    real = sq.picture
    asked = []

    def slow(program, params, spec, feeds, row):
        asked.append(params)
        time.sleep(0.2)
        return real(program, params, spec, feeds, row)

    monkeypatch.setattr(sq, "picture", slow)
    snapshots = [s.param_dict(copy=True) for _ in range(4)]
    for params in snapshots:
        view.show_params(params)
    drawn(qtbot, view)
    view.sequences.background.wait()
    qtbot.wait(50)
    assert asked[-1] is snapshots[-1] and len(asked) <= 2          # the ones between: skipped


def test_other_data_keeps_its_own_views():
    for name in ("spiral-mlp", "ponder", "tree-expressions"):
        _doc, s, info = session(name)
        assert sq.find_sequence_view(s.plan, s.program, info.train_feeds) is None


def test_the_dock_shows_a_sequence_run_in_its_live_tab(qtbot, window):
    dock = window.training
    assert window.open_path(os.path.join(EXAMPLES, "sequence-rnn.wg.json"), example=True)
    dock.form.set_value("epochs", 2)
    assert dock.train()
    qtbot.waitUntil(lambda: dock.state == "idle", timeout=30_000)
    dock._redraw_views(force=True)
    view = dock.dataview
    assert view.active and view.spec["mode"] == "seq_regress"
    qtbot.waitUntil(lambda: view.sequences.shown is not None, timeout=15_000)
    fit = sq.fit_figures(*view.sequences.shown.scatter)
    assert fit["r2"] > 0.5                                         # two epochs learn a sum
    assert window.open_path(os.path.join(EXAMPLES, "spiral-mlp.wg.json"), example=True)
    assert not view.sequences.isVisible() and view.sequences.spec is None
    dock.shutdown()
