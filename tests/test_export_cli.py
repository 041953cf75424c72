"""`wiregrad export` and what no document can do to exported code.

The command writes a module that compiles and passes `ruff check`, deterministically; copies
`--weights` beside it; and reports a broken document or bad weights as one line. Documents
whose names, labels, block names and dataset settings carry code fail to inject any of it:
importing the export runs nothing. Ids that are keywords, builtins or the module's own names
still give working code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.cli import main
from wiregrad.core.export import export_source

from tests.export_check import compare_numpy, load_module
from tests.payloads import payload_document, payloads
from tests.program_check import document
from wiregrad import core

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.wg.json"))
SPIRAL = ROOT / "assets" / "examples" / "spiral-mlp.wg.json"
TARGETS = ["numpy", "torch"]


def _ruff():
    return shutil.which("ruff")


@pytest.mark.parametrize("target", TARGETS)
def test_exports_compile_and_pass_ruff(target, tmp_path):
    paths = []
    for path in EXAMPLES:
        out = tmp_path / f"{path.name.split('.')[0].replace('-', '_')}_{target}.py"
        out.write_text(export_source(core.load(path), target), encoding="utf-8")
        paths.append(str(out))
    subprocess.run([sys.executable, "-m", "py_compile", *paths], check=True)
    if _ruff() is None:
        pytest.skip("ruff is not installed")
    result = subprocess.run([_ruff(), "check", "--isolated", "--no-cache", *paths],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_exports_are_deterministic(target):
    for path in EXAMPLES:
        first = export_source(core.load(path), target)
        assert export_source(core.load(path), target) == first


def test_without_o_the_module_is_written_beside_the_document(tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    models.mkdir()
    doc_path = models / "spiral-mlp.wg.json"
    shutil.copy(SPIRAL, doc_path)
    monkeypatch.chdir(tmp_path)  # not where the document is: the module goes beside it
    for target in ("numpy", "torch"):
        assert main(["export", str(doc_path), "--target", target]) == 0
        written = models / f"spiral_mlp_{target}.py"
        assert written.exists()
        assert f"wrote {written}" in capsys.readouterr().out
    assert main(["export", str(doc_path), "--target", "numpy", "-o", str(tmp_path / "m.py")]) == 0
    assert 'DATA_DIR = "models"' in (tmp_path / "m.py").read_text()  # data found from there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py", "models"]


def test_onnx_target_writes_a_model_with_the_given_weights(tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    doc = core.load(SPIRAL)
    program = core.compile(doc, dtype="float32")
    params = program.init_params(5)
    weights = tmp_path / "trained.npz"
    np.savez(weights, **params)
    out = tmp_path / "spiral.onnx"
    assert main(["export", str(SPIRAL), "--target", "onnx", "-o", str(out),
                 "--weights", str(weights)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    feeds = {i.name: x if i.name == "x" else np.zeros(4, np.int64)
             for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, feeds)))
    want = program.run(params, {"x": x, "label": np.zeros(4, np.int64)})
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-4, atol=1e-5)
    assert main(["export", str(SPIRAL), "--target", "onnx", "-o", str(tmp_path / "m.py")]) == 1
    assert ".onnx" in capsys.readouterr().err


def test_cli_weights_are_copied_beside_the_module_and_loaded(tmp_path, capsys):
    doc = core.load(SPIRAL)
    params = core.compile(doc).init_params(5)
    weights = tmp_path / "trained.npz"
    np.savez(weights, **params)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert main(["export", str(SPIRAL), "--target", "numpy", "-o", str(out_dir / "net.py"),
                 "--weights", str(weights)]) == 0
    assert (out_dir / "trained.npz").exists()
    text = (out_dir / "net.py").read_text()
    plain = export_source(core.load(SPIRAL), "numpy", data_dir=os.path.relpath(SPIRAL.parent,
                                                                                 out_dir))
    assert "trained.npz" in text and len(text) - len(plain) < 200  # loaded, not inlined
    module = load_module(text, out_dir)
    loaded = module.load_weights()
    for name, value in params.items():
        np.testing.assert_array_equal(loaded[name], value)


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.wg.json"
    bad.write_text(json.dumps({"format": "wiregrad.graph", "version": 1, "graph": {
        "nodes": [{"id": "x", "type": "NoSuchType"}], "edges": []}}))
    assert main(["export", str(bad), "--target", "numpy", "-o", str(tmp_path / "a.py")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NoSuchType" in err and "Traceback" not in err
    assert not (tmp_path / "a.py").exists()

    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, other=np.zeros(3))
    assert main(["export", str(SPIRAL), "--target", "numpy", "-o", str(tmp_path / "b.py"),
                 "--weights", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hidden1.weight" in err
    assert main(["export", str(SPIRAL), "--target", "numpy", "-o", str(tmp_path / "b.py"),
                 "--weights", str(tmp_path / "none.npz")]) == 1
    assert "none.npz: no such file" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(SPIRAL), "--target", "jax"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Injection


@pytest.mark.parametrize("target", TARGETS)
def test_document_text_never_becomes_code(target, tmp_path):
    marker = tmp_path / "PWNED"
    for k, payload in enumerate(payloads(marker)):
        doc = payload_document(payload)
        doc.training = {"dataset": {"kind": "npy", "path": payload, "name": payload},
                        "feeds": {"x": payload}, "loss": "loss",
                        "metrics": [{"type": "mse", "pred": "loss", "target": "x",
                                     "name": payload}],
                        "optimizer": {"type": "adam", "lr": 0.01}}
        if target == "torch":
            pytest.importorskip("torch")
        text = export_source(doc, target)
        compile(text, f"case{k}", "exec")
        module = load_module(text, tmp_path)
        assert not marker.exists(), f"payload {k} ran"
        assert module.DOCUMENT_NAME == payload


def test_ids_that_are_keywords_builtins_or_module_names(tmp_path):
    ids = ["class", "lambda", "self", "np", "params", "grads", "rng", "t", "print", "sum",
           "forward", "DTYPE", "init_params", "json", "g_sum", "type"]
    nodes_ = [("x", "Input", {"shape": [3]})]
    edges = []
    prev = "x"
    for i, node_id in enumerate(ids):
        nodes_.append((node_id, "Linear" if i % 2 == 0 else "Tanh",
                       {"out_features": 3} if i % 2 == 0 else {}))
        edges.append((f"{prev}.y", f"{node_id}.x"))
        prev = node_id
    nodes_ += [("total", "Sum", {}), ("loss", "Output", {}), ("out", "Output", {})]
    edges += [(f"{prev}.y", "total.x"), ("total.y", "loss.x"), (f"{prev}.y", "out.x")]
    doc = document(nodes_, edges)
    program = core.compile(doc, "float64")
    feeds = {"x": np.random.default_rng(0).standard_normal((4, 3))}
    compare_numpy(doc, program.init_params(0), feeds, tmp_path)
