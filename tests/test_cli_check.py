"""`wiregrad check FILE`, as interfaces.md says.

It validates the document and prints every node's output shape, B standing for the batch axis,
then exits 0; or exits 1 listing every error, each naming its node. A file that is missing or
is not JSON is one readable line on stderr, never a traceback; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main

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
    from core.fileio import save
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
    result = subprocess.run([sys.executable, "-m", "core.cli", "check", str(path)],
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
    result = subprocess.run([sys.executable, "-m", "core.cli", *args],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "not valid JSON" in result.stderr


def test_debug_in_process_lets_the_graph_error_through(tmp_path):
    from core import GraphError

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
