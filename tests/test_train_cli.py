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

import core
from core.cli import main
from tests.test_trainer import spiral_doc


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
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "train", path, "--out", str(out)],
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
