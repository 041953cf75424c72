"""`wiregrad predict FILE --weights W.npz --input DATA.csv|npz [-o OUT.csv|npz]`: trained
weights on new data without targets; predictions written as npz arrays or CSV columns."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.cli import main
from wiregrad.core.npz import save_arrays

from tests.test_trainer import spiral_doc
from wiregrad import core

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def trained(tmp_path):
    """A spiral classifier (Input x fed from array "x", label from "y"), its weights, and
    12 new points."""
    doc = spiral_doc(epochs=2)
    path = tmp_path / "net.wg.json"
    core.save(doc, path)
    program = core.compile(doc)
    params = program.init_params(5)
    save_arrays(tmp_path / "w.npz", params)
    x = np.random.default_rng(3).normal(size=(12, 2)).astype(np.float32)
    return path, program, params, x


def run(capsys, *args) -> tuple:
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path: Path) -> tuple:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def test_npz_in_npz_out_holds_the_predictions_without_the_loss(capsys, tmp_path, trained):
    path, program, params, x = trained
    save_arrays(tmp_path / "new.npz", {"x": x})
    code, out, err = run(capsys, path, "--weights", tmp_path / "w.npz", "--input",
                         tmp_path / "new.npz")
    assert code == 0, err
    written = tmp_path / "new-predictions.npz"  # beside the input by default
    assert str(written) in out
    got = dict(np.load(written))
    assert set(got) == {"logits"}
    np.testing.assert_array_equal(got["logits"], program.run(params, {"x": x})["logits"])


def test_csv_out_has_a_column_per_number_and_the_class_of_the_accuracy_metric(
        capsys, tmp_path, trained):
    path, program, params, x = trained
    save_arrays(tmp_path / "new.npz", {"x": x, "y": np.zeros(12, np.int64)})  # labels unused
    out = tmp_path / "pred.csv"
    code, _, err = run(capsys, path, "--weights", tmp_path / "w.npz", "--input",
                       tmp_path / "new.npz", "-o", out)
    assert code == 0, err
    header, rows = read_csv(out)
    assert header == ["logits_0", "logits_1", "logits_2", "class"]
    assert len(rows) == 12
    logits = program.run(params, {"x": x})["logits"]
    values = np.array([[float(v) for v in row[:3]] for row in rows], np.float32)
    np.testing.assert_array_equal(values, logits)  # float32 read back exactly
    assert [int(row[3]) for row in rows] == logits.argmax(axis=1).tolist()


def test_a_csv_input_with_every_numeric_column_for_the_one_2d_input(capsys, tmp_path, trained):
    path, program, params, x = trained
    lines = ["a,b,note"] + [f"{p:.9g},{q:.9g},text{k}" for k, (p, q) in enumerate(x)]
    (tmp_path / "points.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = run(capsys, path, "--weights", tmp_path / "w.npz", "--input",
                       tmp_path / "points.csv")
    assert code == 0, err
    header, rows = read_csv(tmp_path / "points-predictions.csv")
    assert header[:3] == ["logits_0", "logits_1", "logits_2"] and len(rows) == 12
    logits = program.run(params, {"x": x})["logits"]
    values = np.array([[float(v) for v in row[:3]] for row in rows])
    np.testing.assert_allclose(values, logits, rtol=1e-6)


def test_a_csv_input_read_through_the_training_columns_mapping_needs_no_label(
        capsys, tmp_path):
    """The iris example maps four columns to x and the species to the label: a file with the
    four measurements only is read through the same mapping."""
    (tmp_path / "examples").mkdir()
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "assets" / "examples" / "iris-csv.wg.json", tmp_path / "examples")
    shutil.copy(ROOT / "assets" / "data" / "iris.csv", tmp_path / "data")
    doc_path = tmp_path / "examples" / "iris-csv.wg.json"
    doc = core.load(doc_path)
    program = core.compile(doc)
    params = program.init_params(0)
    save_arrays(tmp_path / "w.npz", params)
    source = (tmp_path / "data" / "iris.csv").read_text(encoding="utf-8").splitlines()
    measured = [",".join(line.split(",")[:4]) for line in source[:8]]
    (tmp_path / "new.csv").write_text("\n".join(measured) + "\n", encoding="utf-8")
    code, _, err = run(capsys, doc_path, "--weights", tmp_path / "w.npz", "--input",
                       tmp_path / "new.csv", "-o", tmp_path / "out.npz")
    assert code == 0, err
    x = np.array([[float(v) for v in line.split(",")] for line in measured[1:]], np.float32)
    got = np.load(tmp_path / "out.npz")["logits"]
    np.testing.assert_array_equal(got, program.run(params, {"x": x})["logits"])


def test_rows_run_in_passes_of_the_eval_batch_size(capsys, tmp_path, trained, monkeypatch):
    path, program, params, x = trained
    core.save(spiral_doc(epochs=2, eval_batch_size=5), path)
    save_arrays(tmp_path / "new.npz", {"x": x})
    calls = []
    original = core.program.Program.run

    def counting(self, params, feeds, *args, **kwargs):
        calls.append(len(feeds["x"]))
        return original(self, params, feeds, *args, **kwargs)

    monkeypatch.setattr(core.program.Program, "run", counting)
    code, _, err = run(capsys, path, "--weights", tmp_path / "w.npz", "--input",
                       tmp_path / "new.npz")
    assert code == 0, err
    assert calls == [5, 5, 2]
    got = np.load(tmp_path / "new-predictions.npz")["logits"]
    np.testing.assert_allclose(got, original(program, params, {"x": x})["logits"], rtol=1e-6)


@pytest.mark.parametrize("case, words", [
    ("no-input-array", ["no data for Input 'x'", "'x'"]),
    ("bad-shape", ["'x'", "(B, 2)"]),
    ("wrong-weights", ["--weights", "fc1.weight"]),
    ("bad-kind", ["--input", ".csv or .npz"]),
    ("bad-output", ["-o", ".csv or .npz"]),
])
def test_problems_are_one_line_naming_what_is_wrong(capsys, tmp_path, trained, case, words):
    path, _, params, x = trained
    arrays = {"z": x} if case == "no-input-array" else \
        {"x": np.zeros((4, 3))} if case == "bad-shape" else {"x": x}
    save_arrays(tmp_path / "new.npz", arrays)
    (tmp_path / "new.txt").write_text("1,2\n", encoding="utf-8")
    if case == "wrong-weights":
        save_arrays(tmp_path / "w.npz", {**params, "fc1.weight": np.zeros((3, 3))})
    args = [path, "--weights", tmp_path / "w.npz", "--input",
            tmp_path / ("new.txt" if case == "bad-kind" else "new.npz")]
    if case == "bad-output":
        args += ["-o", tmp_path / "out.json"]
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    for word in words:
        assert word in err
