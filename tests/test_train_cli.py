"""`wiregrad train`: progress, the files it writes, --json, Ctrl+C and errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from wiregrad.core.cli import main

from tests.test_trainer import spiral_doc
from wiregrad import core


def saved(tmp_path, doc, name="net.wg.json"):
    path = tmp_path / name
    core.save(doc, path)
    return str(path)


def test_train_writes_weights_history_and_plot(tmp_path, capsys):
    path = saved(tmp_path, spiral_doc(epochs=3))
    out = tmp_path / "out"
    assert main(["train", path, "--out", str(out)]) == 0
    weights = np.load(out / "weights.npz")
    assert set(weights.files) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    with open(out / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(rows[0])
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "epoch 3/3" in captured.err  # plain progress lines when not a terminal
    assert "done: 3 epochs" in captured.out


def test_json_prints_one_object_with_every_figure(tmp_path, capsys):
    path = saved(tmp_path, spiral_doc(epochs=2))
    assert main(["train", path, "--out", str(tmp_path / "o"), "--json", "--epochs", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "epochs", "seconds"} <= set(result)
    assert result["epochs"] == 1


def test_seed_changes_the_numbers_and_the_same_seed_repeats_them(tmp_path, capsys):
    path = saved(tmp_path, spiral_doc(epochs=1))
    runs = []
    for seed in ("1", "1", "2"):
        main(["train", path, "--out", str(tmp_path / "o"), "--json", "--seed", seed])
        runs.append(json.loads(capsys.readouterr().out)["loss"])
    assert runs[0] == runs[1] != runs[2]


def test_a_missing_training_section_is_one_line_without_traceback(tmp_path, capsys):
    doc = spiral_doc()
    doc.training = None
    path = saved(tmp_path, doc)
    assert main(["train", path]) == 1
    err = capsys.readouterr().err
    assert "no training section" in err and "Traceback" not in err


def test_ctrl_c_stops_cleanly_and_still_writes_the_results(tmp_path):
    path = saved(tmp_path, spiral_doc(epochs=100000))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "wiregrad.core.cli", "train", path, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 30
    line = ""
    while time.time() < deadline and "epoch 2/" not in line:
        line = proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "stopping after this step" in stderr
    assert "stopped:" in stdout
    assert (out / "weights.npz").exists() and (out / "history.csv").exists()


def test_best_npz_holds_the_weights_of_the_lowest_validation_loss(tmp_path, capsys):
    # A learning rate so high that the last epoch's validation loss is not the lowest (the 5th).
    doc = spiral_doc(epochs=6, optimizer={"type": "adam", "lr": 1.0})
    path = saved(tmp_path, doc)
    out = tmp_path / "out"
    assert main(["train", path, "--out", str(out)]) == 0
    result = core.train(core.load(path))  # the same document and seed: the same numbers
    best = min(result.history, key=lambda r: r["val_loss"])
    assert result.best_epoch == best["epoch"]
    weights, kept = np.load(out / "weights.npz"), np.load(out / "best.npz")
    for name in result.params:
        np.testing.assert_array_equal(weights[name], result.params[name])
        np.testing.assert_array_equal(kept[name], result.best_params[name])
    assert best["epoch"] < len(result.history)
    assert any(not np.array_equal(weights[n], kept[n]) for n in result.params)
    assert "best.npz" in capsys.readouterr().out


def test_without_a_validation_set_best_npz_is_the_last_epoch(tmp_path, capsys):
    # The training loss is lowest at epoch 4 of 6 here: still the last epoch's weights.
    path = saved(tmp_path, spiral_doc(epochs=6, split={"validation": 0.0, "seed": 0},
                                      optimizer={"type": "adam", "lr": 2.0}))
    out = tmp_path / "out"
    assert main(["train", path, "--out", str(out), "--json"]) == 0
    assert "val_loss" not in json.loads(capsys.readouterr().out)
    weights, kept = np.load(out / "weights.npz"), np.load(out / "best.npz")
    assert set(kept.files) == set(weights.files)
    for name in weights.files:
        np.testing.assert_array_equal(kept[name], weights[name])


def test_train_starts_from_saved_weights(tmp_path, capsys):
    path = saved(tmp_path, spiral_doc(epochs=3))
    first, again, still = tmp_path / "first", tmp_path / "again", tmp_path / "still"
    assert main(["train", path, "--out", str(first), "--json"]) == 0
    ended = json.loads(capsys.readouterr().out)
    start = first / "weights.npz"
    # No epoch: the weights written are the ones started from, untouched.
    assert main(["train", path, "--out", str(still), "--epochs", "0", "--weights",
                 str(start)]) == 0
    for name, value in np.load(start).items():
        np.testing.assert_array_equal(np.load(still / "weights.npz")[name], value)
    capsys.readouterr()
    # One more epoch picks up where the run ended, well below a fresh first epoch.
    assert main(["train", path, "--out", str(again), "--epochs", "1", "--json",
                 "--weights", str(start)]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert main(["train", path, "--out", str(tmp_path / "fresh"), "--epochs", "1",
                 "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert resumed["loss"] < fresh["loss"] and resumed["loss"] < ended["loss"] * 1.5


def test_train_refuses_weights_that_do_not_fit_in_one_line(tmp_path, capsys):
    path = saved(tmp_path, spiral_doc(epochs=1))
    program = core.compile(core.load(path))
    params = program.init_params(0)
    cases = {"missing": {k: v for k, v in params.items() if k != "fc2.bias"},
             "shape": {**params, "fc1.weight": np.zeros((3, 16))}}
    for case, arrays in cases.items():
        core.npz.save_arrays(tmp_path / f"{case}.npz", arrays)
        code = main(["train", path, "--out", str(tmp_path / "o"), "--weights",
                     str(tmp_path / f"{case}.npz")])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and "--weights" in err, err
        assert ("fc2.bias" if case == "missing" else "fc1.weight") in err
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    assert main(["train", path, "--weights", str(tmp_path / "broken.npz")]) == 1
    assert "broken.npz" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
