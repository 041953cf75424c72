"""Training by a document's training section: events, determinism, stopping, NaNs, bad data."""

from __future__ import annotations

import copy
import math
import threading

import numpy as np
import pytest
from wiregrad.core.trainer import Session, TrainingError, run_session

from tests.test_engine import mlp_doc
from wiregrad import core


def spiral_doc(epochs=3, **overrides):
    doc = mlp_doc(hidden=16)
    doc.training = {
        "dataset": {"kind": "spiral", "n": 300, "classes": 3, "noise": 0.2, "seed": 0},
        "feeds": {"x": "x", "label": "y"},
        "split": {"validation": 0.2, "seed": 0},
        "loss": "loss",
        "metrics": [{"type": "accuracy", "pred": "logits", "target": "label"}],
        "optimizer": {"type": "adam", "lr": 0.02},
        "batch_size": 32,
        "epochs": epochs,
        "seed": 0,
    }
    doc.training.update(overrides)
    return doc


def test_training_reports_every_step_and_epoch_and_returns_history_and_params():
    events = []
    result = core.train(spiral_doc(epochs=2), callback=events.append)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    steps = [e for e in events if e["kind"] == "step"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert len(steps) == 2 * 8  # 240 training rows in batches of 32
    assert [e["step"] for e in steps] == list(range(1, 17))
    assert len(epochs) == 2
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "elapsed", "steps_per_s"):
        assert key in epochs[-1]
    history, params = result
    assert len(history) == 2 and set(params) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_training_learns():
    result = core.train(spiral_doc(epochs=30))
    assert result.history[-1]["loss"] < result.history[0]["loss"] * 0.7
    assert result.history[-1]["val_accuracy"] > 0.6


def test_the_same_document_and_seed_give_the_same_numbers_bit_for_bit():
    a = core.train(spiral_doc(epochs=3))
    b = core.train(spiral_doc(epochs=3))
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    c = core.train(spiral_doc(epochs=3), seed=7)
    assert [r["loss"] for r in c.history] != [r["loss"] for r in a.history]


def test_epochs_and_seed_arguments_override_the_document():
    result = core.train(spiral_doc(epochs=10), epochs=1)
    assert len(result.history) == 1


def test_a_stop_event_ends_training_after_the_current_step():
    stop = threading.Event()
    seen = []

    def callback(event):
        if event["kind"] == "step":
            seen.append(event["step"])
            if event["step"] == 5:
                stop.set()

    result = core.train(spiral_doc(epochs=50), callback=callback, stop=stop)
    assert result.stopped and seen[-1] == 5 and result.steps == 5


def test_the_best_params_by_validation_loss_are_kept():
    result = core.train(spiral_doc(epochs=6))
    best = min(result.history, key=lambda r: r["val_loss"])
    assert result.best_epoch == best["epoch"]
    assert set(result.best_params) == set(result.params)


def sine_doc(lr):
    from tests.program_check import document

    doc = document(
        [("x", "Input", {"shape": [1]}), ("y", "Input", {"shape": [1]}),
         ("fc1", "Linear", {"out_features": 8}), ("act", "Tanh", {}),
         ("fc2", "Linear", {"out_features": 1}), ("mse", "MSELoss", {}), ("loss", "Output", {})],
        [("x.y", "fc1.x"), ("fc1.y", "act.x"), ("act.y", "fc2.x"), ("fc2.y", "mse.pred"),
         ("y.y", "mse.target"), ("mse.y", "loss.x")])
    doc.training = {"dataset": {"kind": "sine", "n": 128, "seed": 0}, "loss": "loss",
                    "optimizer": {"type": "sgd", "lr": lr}, "epochs": 5}
    return doc


def test_nan_stops_training_naming_the_node_and_keeps_the_last_good_params():
    doc = sine_doc(lr=1e6)
    with pytest.raises(TrainingError) as info:
        core.train(doc)
    error = info.value
    assert error.node is not None and "NaN or Inf" in str(error)
    assert error.result is not None
    assert all(np.isfinite(p).all() for p in error.result.params.values())


def test_a_log_of_a_negative_is_named_as_the_source_of_the_nan():
    doc = core.Document(core.Graph(), "nan")
    from tests.program_check import graph

    doc.graph = graph(
        [("x", "Input", {"shape": [2]}), ("y", "Input", {"shape": [1]}),
         ("fc", "Linear", {"out_features": 1}), ("log", "Log", {}), ("mse", "MSELoss", {}),
         ("loss", "Output", {})],
        [("x.y", "fc.x"), ("fc.y", "log.x"), ("log.y", "mse.pred"), ("y.y", "mse.target"),
         ("mse.y", "loss.x")])
    doc.training = {"dataset": {"kind": "sine", "n": 64, "seed": 0}, "loss": "loss",
                    "feeds": {"x": "x", "y": "y"}, "epochs": 1}
    doc.graph.nodes[0].params["shape"] = [1]
    with pytest.raises(TrainingError) as info:
        core.train(doc)
    assert info.value.node == "log"


@pytest.mark.parametrize("change,words", [
    (lambda t: t.pop("dataset"), ["missing 'dataset'"]),
    (lambda t: t.update(bogus=1), ["unknown key 'bogus'"]),
    (lambda t: t.update(loss="nope"), ["'nope' is not an Output"]),
    (lambda t: t.update(feeds={"x": "x", "label": "zzz"}), ["'zzz'", "label"]),
    (lambda t: t.update(dataset={"kind": "csv", "path": "missing.csv"}), ["missing.csv"]),
    (lambda t: t.update(dataset={"kind": "wobble"}), ["unknown kind 'wobble'"]),
    (lambda t: t.update(batch_size=0), ["batch_size"]),
    (lambda t: t.update(optimizer={"type": "adagrad"}), ["adagrad"]),
    (lambda t: t.update(metrics=[{"type": "f1"}]), ["metrics[0]"]),
])
def test_a_wrong_training_section_is_a_clear_error(change, words):
    doc = spiral_doc()
    change(doc.training)
    with pytest.raises(core.GraphError) as info:
        core.train(doc)
    for word in words:
        assert word in str(info.value)


def test_a_document_without_training_section_says_so():
    with pytest.raises(core.GraphError, match="no training section"):
        core.train(mlp_doc())


def test_a_dataset_array_of_the_wrong_shape_names_the_input(tmp_path):
    np.savez(tmp_path / "data.npz", x=np.zeros((10, 5)), y=np.zeros(10, dtype=np.int64))
    doc = spiral_doc(dataset={"kind": "npz", "path": "data.npz"})
    with pytest.raises(core.GraphError) as info:
        core.train(doc, base_dir=tmp_path)
    assert info.value.node == "x" and "(5,)" in str(info.value) and "(2,)" in str(info.value)


def test_datasets_are_found_relative_to_the_document(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(40, 2)), y=rng.integers(0, 3, 40))
    doc = spiral_doc(dataset={"kind": "npz", "path": "data.npz"}, epochs=1)
    core.save(doc, tmp_path / "net.wg.json")
    result = core.train(core.load(tmp_path / "net.wg.json"))
    assert len(result.history) == 1


def test_training_does_not_change_the_document():
    doc = spiral_doc(epochs=1)
    before = copy.deepcopy(doc.to_dict())
    core.train(doc)
    assert doc.to_dict() == before


def test_a_schedule_and_clipping_are_applied():
    doc = spiral_doc(epochs=3, clip_grad_norm=0.5,
                     optimizer={"type": "sgd", "lr": 0.1, "momentum": 0.9,
                                "schedule": {"type": "step", "step_size": 1, "gamma": 0.5}})
    result = core.train(doc)
    assert [r["lr"] for r in result.history] == [0.05, 0.025, 0.0125]


def test_a_sequence_model_trains_through_its_scan_loop():
    from tests.test_engine import example

    doc = example("sequence-rnn.wg.json")
    doc.training = {"dataset": {"kind": "seq_sum", "n": 200, "min_len": 3, "max_len": 6, "seed": 0},
                    "feeds": {"seq": "seq", "target": "target"}, "loss": "loss",
                    "metrics": [{"type": "mse", "pred": "pred", "target": "target"}],
                    "optimizer": {"type": "adam", "lr": 0.01}, "epochs": 8, "batch_size": 20}
    result = core.train(doc)
    assert result.history[-1]["val_mse"] < result.history[0]["val_mse"]


def test_an_unsaved_copy_of_an_example_still_finds_its_data_file():
    from pathlib import Path

    doc = core.load(Path(__file__).resolve().parents[1] / "assets" / "examples" / "iris-csv.wg.json")
    doc.path = None  # as the editor opens an example: a new, unsaved document
    result = core.train(doc.copy(), epochs=1)
    assert len(result.history) == 1


# -- training runs what the loss needs --------------------------------------------------------


def with_stray_nodes(doc):
    """The document with a Sigmoid wired to nothing and an Output hanging from it: neither the
    loss nor a metric depends on them."""
    from wiregrad.core.document import Edge, Node

    doc.add_node((), Node("sigmoid", "Sigmoid"))
    doc.add_node((), Node("probs", "Output"))
    doc.add_edge((), Edge("sigmoid", "y", "probs", "x"))
    return doc


def test_a_stray_unconnected_node_is_ignored_by_training_with_a_warning():
    doc = with_stray_nodes(spiral_doc(epochs=2))
    with pytest.raises(core.GraphError, match="sigmoid.x is not connected"):
        core.compile(doc)  # the document as a whole does not compile
    session = Session(doc)
    warnings = [str(w) for w in session.program.warnings]
    assert warnings == ["ignored by training: sigmoid (x is not connected), and probs after it"]
    assert session.program.ignored_by_training == {"sigmoid": "x is not connected",
                                                   "probs": "after sigmoid"}
    assert [n.id for n in session.doc.graph.nodes if n.id in ("sigmoid", "probs")] == []
    result = run_session(session)
    assert len(result.history) == 2 and math.isfinite(result.history[-1]["val_loss"])
    assert set(result.params) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    assert [n.id for n in doc.graph.nodes][-2:] == ["sigmoid", "probs"]  # the document keeps them


def test_wiregrad_train_prints_the_warning_and_trains(tmp_path, capsys):
    from wiregrad.core.cli import main

    path = tmp_path / "stray.wg.json"
    core.save(with_stray_nodes(spiral_doc(epochs=1)), path)
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "warning: ignored by training: sigmoid (x is not connected), and probs after it" in err
    assert (tmp_path / "out" / "weights.npz").exists()


def test_a_problem_on_the_loss_path_still_stops_training_naming_the_node():
    doc = with_stray_nodes(spiral_doc())
    doc.remove_edge((), next(e for e in doc.graph.edges if e.dst == "act"))
    with pytest.raises(core.GraphError) as info:
        core.train(doc)
    assert str(info.value) == "act.x is not connected"  # the stray Sigmoid is not listed
    assert info.value.node == "act"


def test_a_metric_keeps_its_prediction_on_the_path():
    doc = with_stray_nodes(spiral_doc())
    doc.training["metrics"].append({"type": "accuracy", "pred": "probs", "target": "label"})
    with pytest.raises(core.GraphError, match="sigmoid.x is not connected"):
        Session(doc)
