"""The one code generator: the engine runs, in memory, the functions the numpy export writes;
an error on a generated line names its node; document text never becomes code; scan loops
rewritten to do less per step compute what the document says."""

from __future__ import annotations

import io
import tokenize
import traceback
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.codegen.layout import Layout
from wiregrad.core.export import export_source

from tests.payloads import payload_document, payloads
from tests.program_check import document, graph
from wiregrad import core

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def _defs(source: str) -> list:
    """The top-level `def` blocks of a module's text."""
    blocks, current = [], None
    for line in source.splitlines():
        if line.startswith("def "):
            current = [line]
            blocks.append(current)
        elif current is not None and (line.startswith((" ", "\t")) or not line):
            current.append(line)
        else:
            current = None
    return ["\n".join(b).rstrip() for b in blocks]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.wg.json")))
def test_the_engine_runs_the_functions_the_export_writes(name):
    doc = core.load(EXAMPLES / name)
    exported = export_source(doc, "numpy")
    dtype = (doc.training or {}).get("dtype", "float32")
    program = core.compile(doc, dtype)
    compiled = [program.schedule(tuple(program.output_names))]
    compiled += [program.loss_schedule(n) for n, s in program.output_shapes.items()
                 if all(d is not None for d in s) and int(np.prod(s)) == 1]
    for fn in compiled:
        defs = _defs(fn.source)
        assert defs, "no functions"
        for text in defs:
            assert text in exported, f"{name}: an engine function is not in the export:\n{text}"


def _embedding_in_a_loop():
    body = graph([("ids", "Input", {"role": "sequence", "dtype": "int64"}),
                  ("h", "Input", {"role": "carry"}),
                  ("emb", "Embedding", {"num_embeddings": 4, "embedding_dim": 3}),
                  ("mix", "Add", {}), ("h_next", "Output", {"role": "carry", "carry": "h"})],
                 [("ids.y", "emb.x"), ("emb.y", "mix.a"), ("h.y", "mix.b"),
                  ("mix.y", "h_next.x")])
    return document(
        [("ids", "Input", {"shape": [None], "dtype": "int64"}),
         ("h0", "Constant", {"value": [0.0, 0.0, 0.0]}),
         ("rnn", "Loop", {"mode": "scan", "axis": 1}, {"body": body}),
         ("s", "Sum", {}), ("loss", "Output", {})],
        [("ids.y", "rnn.ids"), ("h0.y", "rnn.h"), ("rnn.h_next", "s.x"), ("s.y", "loss.x")])


def test_an_error_on_a_generated_line_names_the_node_and_shows_the_line():
    program = core.compile(_embedding_in_a_loop(), "float64")
    params = program.init_params(0)
    with pytest.raises(core.GraphError) as info:
        program.run(params, {"ids": np.array([[0, 1, 7]])})
    assert info.value.node == "rnn/emb"
    assert str(info.value).startswith("rnn/emb: Embedding ids must be in [0, 4)")
    shown = "".join(traceback.format_exception(info.value.__cause__))
    assert "rnn_emb = embedding(" in shown, shown  # the generated line itself


def test_an_error_inside_a_block_names_the_instance_path():
    block = graph([("x", "Input", {}), ("bad", "Embedding", {"num_embeddings": 2,
                                                             "embedding_dim": 2}),
                   ("y", "Output", {})], [("x.y", "bad.x"), ("bad.y", "y.x")])
    doc = document([("ids", "Input", {"shape": [], "dtype": "int64"}),
                    ("one", "Block", {"block": "B"}), ("two", "Block", {"block": "B"}),
                    ("y", "Output", {}), ("z", "Output", {})],
                   [("ids.y", "one.x"), ("ids.y", "two.x"), ("one.y", "y.x"),
                    ("two.y", "z.x")], blocks={"B": block})
    program = core.compile(doc)
    with pytest.raises(core.GraphError) as info:
        program.run(program.init_params(0), {"ids": np.array([0, 5])})
    assert info.value.node == "one/bad"


def _code_outside_comments_and_strings(source: str) -> str:
    kept = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.COMMENT, tokenize.STRING):
            kept.append(token.string)
    return " ".join(kept)


def test_document_text_never_becomes_engine_code(tmp_path):
    marker = tmp_path / "PWNED"
    for payload in payloads(marker):
        program = core.compile(payload_document(payload), "float64")
        params = program.init_params(0)
        program.value_and_grad(params, {"x": np.ones((2, 3))})
        source = program.loss_schedule("loss").source
        assert "open(" not in _code_outside_comments_and_strings(source)
        assert not marker.exists()


def _rnn(features=3, hidden=5):
    body = graph([("xt", "Input", {"role": "sequence"}), ("h", "Input", {"role": "carry"}),
                  ("join", "Concat", {}), ("cell", "Linear", {"out_features": hidden}),
                  ("act", "Tanh", {}), ("h_next", "Output", {"role": "carry", "carry": "h"}),
                  ("states", "Output", {})],
                 [("xt.y", "join.x0"), ("h.y", "join.x1"), ("join.y", "cell.x"),
                  ("cell.y", "act.x"), ("act.y", "h_next.x"), ("act.y", "states.x")])
    return document(
        [("x", "Input", {"shape": [None, features]}), ("h0", "Constant", {"value": [0.1] * hidden}),
         ("rnn", "Loop", {"mode": "scan", "axis": 1}, {"body": body}),
         ("s1", "Sum", {}), ("s2", "Mean", {}), ("total", "Add", {}), ("loss", "Output", {})],
        [("x.y", "rnn.xt"), ("h0.y", "rnn.h"), ("rnn.h_next", "s1.x"), ("rnn.states", "s2.x"),
         ("s1.y", "total.a"), ("s2.y", "total.b"), ("total.y", "loss.x")])


def test_a_scan_computes_its_input_projection_once_before_its_steps():
    program = core.compile(_rnn(), "float64")
    source = program.loss_schedule("loss").source
    before_loop = source[:source.index("for t in")]
    assert '@ params["rnn/cell.weight"][:3]' in before_loop  # every step's x_t @ W_x at once
    params = program.init_params(0)
    x = np.random.default_rng(0).normal(size=(4, 6, 3))
    plain = Layout(program.doc, program._compiler)  # the document as it is, unrewritten
    program._layouts[False] = plain
    program._compiled.clear()
    value_plain, grads_plain = program.value_and_grad(params, {"x": x})
    del program._layouts[False]
    program._compiled.clear()
    value, grads = program.value_and_grad(params, {"x": x})
    assert value == pytest.approx(value_plain, rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, grads_plain[name], rtol=1e-10, atol=1e-12)


def test_a_rewritten_scan_still_names_its_real_nodes_and_keeps_its_weights():
    program = core.compile(_rnn(), "float64")
    assert program.param_names == ["rnn/cell.weight", "rnn/cell.bias"]
    record = program.trace(program.init_params(0), {"x": np.ones((2, 4, 3))}, loss="loss")
    assert all("~" not in path for path, _ in record["values"])
    assert len(record["values"][("rnn/cell", "y")]) == 4  # one per step
