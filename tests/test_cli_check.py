"""`wiregrad check FILE`, as interfaces.md says.

It validates the document and prints every node's output shape, B standing for the batch axis,
then exits 0; or exits 1 listing every error, each naming its node. A file that is missing or
is not JSON is one readable line on stderr, never a traceback; `--debug` shows the traceback.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.cli import main

from wiregrad import core

EXAMPLES = Path(__file__).parents[2] / "shared" / "spec" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.wg.json")) if EXAMPLES.is_dir() else []
needs_examples = pytest.mark.skipif(not EXAMPLE_FILES, reason=f"no spec examples in {EXAMPLES}")


def check(capsys, *args) -> tuple:
    """Run `wiregrad check ARGS` in this process: (exit code, stdout, stderr)."""
    code = main(["check", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, nodes, edges, name="doc.wg.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"format": "wiregrad.graph", "version": 1,
                                "graph": {"nodes": nodes, "edges": edges}}), encoding="utf-8")
    return path


def node(node_id, type_name, **params):
    return {"id": node_id, "type": type_name, "params": params} if params else \
        {"id": node_id, "type": type_name}


def edge(src, dst):
    return {"from": src, "to": dst}


def table(out: str) -> dict:
    """The printed rows: node path -> the rest of its line."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("  "):
            path, _, rest = line.strip().partition(" ")
            rows[path] = rest.strip()
    return rows


# -- documents that are right ------------------------------------------------------------------


@needs_examples
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name.removesuffix(".wg.json"))
def test_each_example_checks_ok_listing_every_node_with_its_shape(capsys, path):
    code, out, err = check(capsys, path)
    assert code == 0, err
    assert err == ""
    assert out.rstrip().endswith("OK")
    rows = table(out)
    data = json.loads(path.read_text(encoding="utf-8"))
    for n in data["graph"]["nodes"]:
        assert n["id"] in rows, f"{n['id']} is not listed"
        assert n["type"] in rows[n["id"]]
    for n in data["graph"]["nodes"]:
        if n["type"] == "Input":
            assert "(B" in rows[n["id"]], "a top-level Input carries the batch axis"


@needs_examples
def test_the_spiral_example_shows_its_shapes_with_B_for_the_batch(capsys):
    path = EXAMPLES / "spiral-mlp.wg.json"
    if not path.exists():
        pytest.skip("spiral-mlp example absent")
    code, out, _ = check(capsys, path)
    rows = table(out)
    assert code == 0
    assert rows["x"].endswith("y: (B, 2)")
    assert rows["label"].endswith("y: (B,) int64")
    assert rows["hidden1"].endswith("y: (B, 32)")
    assert rows["head"].endswith("y: (B, 3)")
    assert rows["ce"].endswith("y: ()")
    assert rows["logits"].endswith("(B, 3)"), "an Output shows the value it gives"
    assert rows["loss"].endswith("()")


@needs_examples
def test_nodes_inside_loop_bodies_are_listed_by_their_path(capsys):
    path = EXAMPLES / "sequence-rnn.wg.json"
    if not path.exists():
        pytest.skip("sequence-rnn example absent")
    code, out, _ = check(capsys, path)
    rows = table(out)
    assert code == 0
    assert any(p.startswith("rnn/") for p in rows)
    # the sequence length is set by the data: shown as ?, the batch as B
    assert "(B, ?, 1)" in rows["seq"]


@needs_examples
def test_nodes_inside_block_instances_are_listed_per_instance(capsys):
    path = EXAMPLES / "blocks-and-gate.wg.json"
    if not path.exists():
        pytest.skip("blocks-and-gate example absent")
    code, out, _ = check(capsys, path)
    rows = table(out)
    assert code == 0
    assert any(p.startswith("res1/") for p in rows) and any(p.startswith("res2/") for p in rows)


def test_shared_nodes_tree_loops_and_nodes_in_blocks_show_their_types_and_shapes(
        capsys, tmp_path):
    from wiregrad.core.fileio import save

    from tests.test_per_sample import _tree_rnn
    from tests.test_shared_weights import _siamese

    save(_siamese(), tmp_path / "siamese.wg.json")
    code, out, _ = check(capsys, tmp_path / "siamese.wg.json")
    rows = table(out)
    assert code == 0
    assert rows["f2"].startswith("Linear (shares f1)") and rows["f2"].endswith("y: (B, 3)")
    assert rows["two"].startswith("Block (shares one)")
    assert rows["two/fc"].startswith("Linear") and rows["two/fc"].endswith("y: (B, 2)")
    save(_tree_rnn(), tmp_path / "tree.wg.json")
    code, out, _ = check(capsys, tmp_path / "tree.wg.json")
    rows = table(out)
    assert code == 0
    assert rows["tree"].endswith("h: (B, ?, 3)")  # one value per tree node
    assert rows["tree/kids"].endswith("y: (B, 2, 3)")  # a node's two children's values
    assert rows["pick"].endswith("y: (B, 3)")


def test_a_hand_built_document_checks_ok(capsys, tmp_path):
    path = write(tmp_path,
                 [node("x", "Input", shape=[5]), node("fc", "Linear", out_features=3),
                  node("y", "Output")],
                 [edge("x.y", "fc.x"), edge("fc.y", "y.x")])
    code, out, err = check(capsys, path)
    assert (code, err) == (0, "")
    assert table(out)["fc"].endswith("y: (B, 3)")


def test_check_runs_as_a_real_command(tmp_path):
    path = write(tmp_path,
                 [node("x", "Input", shape=[5]), node("fc", "Linear", out_features=3),
                  node("y", "Output")],
                 [edge("x.y", "fc.x"), edge("fc.y", "y.x")])
    result = subprocess.run([sys.executable, "-m", "wiregrad.core.cli", "check", str(path)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(B, 3)" in result.stdout and "OK" in result.stdout


# -- documents that are wrong ------------------------------------------------------------------


def broken(tmp_path) -> Path:
    """Two problems: `mix` adds (B, 2) to (B, 3), and `head` has nothing wired into it."""
    return write(
        tmp_path,
        [node("x", "Input", shape=[2]), node("z", "Input", shape=[3]), node("mix", "Add"),
         node("fc", "Linear", out_features=4), node("out", "Output"),
         node("head", "Linear", out_features=2), node("out2", "Output")],
        [edge("x.y", "mix.a"), edge("z.y", "mix.b"), edge("mix.y", "fc.x"),
         edge("fc.y", "out.x"), edge("head.y", "out2.x")])


def test_a_broken_document_exits_1_listing_every_error_with_its_node(capsys, tmp_path):
    code, out, err = check(capsys, broken(tmp_path))
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 2, err
    assert any("mix" in line and "(" in line for line in lines), "the shape error names mix"
    assert any("head" in line and "not connected" in line for line in lines)
    assert "2 problems found" in err
    assert "OK" not in out
    assert "Traceback" not in err


def test_a_linear_fed_a_wrong_shape_is_named(capsys, tmp_path):
    path = write(tmp_path,
                 [node("ids", "Input", shape=[2], dtype="int64"), node("fc", "Linear", out_features=2),
                  node("out", "Output")],
                 [edge("ids.y", "fc.x"), edge("fc.y", "out.x")])
    code, _, err = check(capsys, path)
    assert code == 1
    assert err.startswith("error: fc"), err


def test_structural_errors_are_listed_too(capsys, tmp_path):
    path = write(tmp_path, [node("a", "ReLU"), node("b", "Tanh")],
                 [edge("a.y", "b.x"), edge("b.y", "a.x")])
    code, _, err = check(capsys, path)
    assert code == 1
    assert "cycle" in err and "Traceback" not in err


def test_a_missing_file_is_one_readable_line(capsys, tmp_path):
    code, out, err = check(capsys, tmp_path / "absent.wg.json")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "absent.wg.json" in err and "no such file" in err


def test_invalid_json_is_one_readable_line_saying_where(capsys, tmp_path):
    path = tmp_path / "bad.wg.json"
    path.write_text('{"format": "wiregrad.graph",\n "version": 1,\n "graph": [}', encoding="utf-8")
    code, out, err = check(capsys, path)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "not valid JSON" in err and "line 3" in err


def test_a_folder_is_one_readable_line(capsys, tmp_path):
    code, _, err = check(capsys, tmp_path)
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, where):
    path = tmp_path / "bad.wg.json"
    path.write_text("{", encoding="utf-8")
    args = ["--debug", "check", str(path)] if where == "before" else ["check", str(path), "--debug"]
    result = subprocess.run([sys.executable, "-m", "wiregrad.core.cli", *args],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "not valid JSON" in result.stderr


def test_debug_in_process_lets_the_graph_error_through(tmp_path):
    from wiregrad.core import GraphError

    path = tmp_path / "bad.wg.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(GraphError, match="not valid JSON"):
        main(["check", str(path), "--debug"])


def test_a_document_near_the_memory_limit_checks_ok_with_a_warning(capsys, monkeypatch):
    spiral = Path(__file__).parents[1] / "assets" / "examples" / "spiral-mlp.wg.json"
    monkeypatch.setenv("WIREGRAD_MEMORY_LIMIT", "80k")  # one step needs about 52 KiB
    assert main(["check", str(spiral)]) == 0
    out, err = capsys.readouterr()
    assert out.rstrip().endswith("OK")
    assert err.startswith("warning: hidden2: one training step may need about")
    monkeypatch.setenv("WIREGRAD_MEMORY_LIMIT", "40k")
    assert main(["check", str(spiral)]) == 1
    assert "more than the limit of 40 KiB" in capsys.readouterr().err


# -- the training section ----------------------------------------------------------------------


def training_doc(tmp_path, name="net.wg.json", stray=False, **changes):
    """The spiral MLP of tests/test_trainer.py with its training section changed, saved."""
    from tests.test_trainer import spiral_doc, with_stray_nodes

    doc = spiral_doc(**changes)
    if stray:
        with_stray_nodes(doc)
    path = tmp_path / name
    core.save(doc, path)
    return path


@pytest.mark.parametrize("changes,line", [
    ({"feeds": {"nope": "x", "label": "y"}},
     "error: training.feeds: 'nope' is not an Input of the graph (Inputs: x, label)"),
    ({"feeds": {"x": "x", "label": "zzz"}},
     ("error: training.feeds: Input 'label' takes dataset array 'zzz', which the dataset does "
      "not have (arrays: x, y)")),
    ({"feeds": {}}, "error: training.feeds: Input 'label' has no data"),
    ({"loss": "logits"}, ("error: training.loss: Output 'logits' is not a single number: its "
                          "value has shape (B, 3); reduce it with Mean or Sum")),
    ({"loss": "nope"}, "error: training.loss: 'nope' is not an Output of the graph"),
    ({"metrics": [{"type": "accuracy", "pred": "nope", "target": "label"}]},
     "error: training.metrics[0].pred: 'nope' is not an Output of the graph"),
    ({"metrics": [{"type": "accuracy", "pred": "logits", "target": "fc2"}]},
     "error: training.metrics[0].target: 'fc2' is not an Input of the graph"),
    ({"metrics": [{"type": "f1", "pred": "logits", "target": "label"}]},
     "error: training.metrics[0] must be"),
    ({"optimizer": {"type": "adagrad"}}, "error: training.optimizer: unknown type 'adagrad'"),
    ({"split": {"validation": 1.5}}, "error: training.split.validation must be a number in [0, 1)"),
    ({"batch_size": 0}, "error: training.batch_size must be a whole number >= 1, got 0"),
    ({"dataset": {"kind": "wobble"}}, "error: training.dataset: unknown kind 'wobble'"),
    ({"dataset": {"kind": "spiral", "n": 10, "bogus": 1}},
     "error: training.dataset 'spiral': unknown parameter 'bogus'"),
])
def test_check_reports_each_training_problem_naming_its_key(tmp_path, capsys, changes, line):
    code, out, err = check(capsys, training_doc(tmp_path, **changes))
    assert code == 1
    assert err.splitlines()[0].startswith(line), err
    assert err.splitlines()[-1] == "1 problem found"
    assert "OK" not in out


def test_a_right_training_section_checks_ok(tmp_path, capsys):
    code, out, err = check(capsys, training_doc(tmp_path))
    assert (code, err) == (0, "")
    assert out.rstrip().endswith("OK")


@pytest.mark.parametrize("content,words", [
    (None, "training.dataset file 'data.npz' not found"),
    (b"", "training.dataset: data.npz: empty file (0 bytes), not an .npz archive"),
])
def test_a_data_file_check_cannot_read_is_a_warning(tmp_path, capsys, content, words):
    """Large data may live elsewhere until training: check says it could not tell the arrays,
    and `train` says what is wrong with the file."""
    if content is not None:
        (tmp_path / "data.npz").write_bytes(content)
    code, out, err = check(capsys, training_doc(tmp_path,
                                                dataset={"kind": "npz", "path": "data.npz"}))
    assert code == 0 and out.rstrip().endswith("OK")
    assert err.startswith(f"warning: {words}") and err.rstrip().endswith("check cannot tell its "
                                                                         "arrays")


@pytest.fixture
def no_data_reads(monkeypatch):
    """Make every reader of a dataset's data fail: check must read names only."""

    def refuse(*args, **kwargs):
        raise AssertionError("check read the data")

    for module, name in ((core.npz, "load_arrays"), (core.npz, "_npz_read"),
                         (core.datasets, "load_arrays"), (core.datasets, "npz_arrays"),
                         (core.datasets, "csv_arrays"), (core.datasets, "_csv_rows")):
        monkeypatch.setattr(module, name, refuse)


def test_check_names_an_npz_datasets_arrays_without_reading_them(tmp_path, capsys, no_data_reads):
    np.savez(tmp_path / "data.npz", x=np.zeros((50, 2)), y=np.zeros(50, dtype=np.int64))
    dataset = {"kind": "npz", "path": "data.npz"}
    assert check(capsys, training_doc(tmp_path, dataset=dataset))[0] == 0
    code, _, err = check(capsys, training_doc(tmp_path, dataset=dataset,
                                              feeds={"x": "x", "label": "labels"}))
    assert code == 1
    assert "takes dataset array 'labels', which the dataset does not have (arrays: x, y)" in err


def test_check_reads_a_csv_header_only_and_never_prints_it(tmp_path, capsys, no_data_reads):
    (tmp_path / "data.csv").write_text("secret_a,secret_b,kind\n1,2,a\nnot a number,3,b\n",
                                       encoding="utf-8")
    columns = {"x": ["secret_a", "secret_b"], "y": "kind"}
    ok = {"kind": "csv", "path": "data.csv", "columns": columns}
    assert check(capsys, training_doc(tmp_path, dataset=ok))[0] == 0  # rows are train's to read
    headed = {"kind": "csv", "path": "data.csv"}
    code, _, err = check(capsys, training_doc(tmp_path, dataset=headed))
    assert code == 1
    assert "(arrays: 3 named by the header row of data.csv;" in err
    assert "secret" not in err
    missing = {"kind": "csv", "path": "data.csv", "columns": {"x": ["nope"], "y": "kind"}}
    code, _, err = check(capsys, training_doc(tmp_path, dataset=missing))
    assert code == 1 and "array 'x' names column 'nope', which the header" in err


def test_check_does_not_generate_a_huge_dataset(tmp_path, capsys, monkeypatch):
    from wiregrad.core import generators

    sizes = []
    spiral = generators.GENERATORS["spiral"]

    @functools.wraps(spiral)  # the same signature: its parameters are checked by it
    def counting(n, **settings):
        sizes.append(n)
        return spiral(n, **settings)

    monkeypatch.setitem(generators.GENERATORS, "spiral", counting)
    dataset = {"kind": "spiral", "n": 10**9, "classes": 3, "noise": 0.2, "seed": 0}
    assert check(capsys, training_doc(tmp_path, dataset=dataset))[0] == 0
    assert sizes and max(sizes) <= 8


def test_check_says_which_errors_training_ignores(tmp_path, capsys):
    code, _, err = check(capsys, training_doc(tmp_path, stray=True))
    assert code == 1
    assert err.splitlines() == [
        ("error: sigmoid.x is not connected (training ignores it: the loss and metrics do not "
         "depend on sigmoid)"), "1 problem found"]


def test_nodes_of_blocks_inside_loops_inside_blocks_show_their_real_types(capsys, tmp_path):
    from wiregrad.core.fileio import save

    from tests.program_check import document, graph

    inner = graph([("x", "Input", {}), ("fc", "Linear", {"out_features": 3}),
                   ("act", "Tanh", {}), ("y", "Output", {})],
                  [("x.y", "fc.x"), ("fc.y", "act.x"), ("act.y", "y.x")])
    body = graph([("h", "Input", {"role": "carry"}), ("blk", "Block", {"block": "Inner"}),
                  ("h_next", "Output", {"role": "carry", "carry": "h"})],
                 [("h.y", "blk.x"), ("blk.y", "h_next.x")])
    outer = graph([("x", "Input", {}),
                   ("rnn", "Loop", {"mode": "repeat", "count": 2}, {"body": body}),
                   ("y", "Output", {})], [("x.y", "rnn.h"), ("rnn.h_next", "y.x")])
    doc = document([("x", "Input", {"shape": [3]}), ("o", "Block", {"block": "Outer"}),
                    ("out", "Output", {})], [("x.y", "o.x"), ("o.y", "out.x")],
                   blocks={"Inner": inner, "Outer": outer})
    save(doc, tmp_path / "nested.wg.json")
    code, out, _ = check(capsys, tmp_path / "nested.wg.json")
    rows = table(out)
    assert code == 0 and "(in block)" not in out
    assert rows["o/rnn"].startswith("Loop") and rows["o/rnn/blk"].startswith("Block")
    assert rows["o/rnn/blk/fc"].startswith("Linear") and rows["o/rnn/blk/fc"].endswith("(B, 3)")
    assert rows["o/rnn/blk/act"].startswith("Tanh") and rows["o/rnn/h"].startswith("Input")
    order = list(rows)  # each node right after the one enclosing it
    assert order.index("o/rnn") < order.index("o/rnn/blk") < order.index("o/rnn/blk/fc")
