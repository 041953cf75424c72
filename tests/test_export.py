"""Export to Python: the numpy target computes what the engine computes.

Every example, every node type's samples (at the top level, in a scan, in a while loop, on
both sides of a scalar branch, in a select branch) and hand-made control-flow documents are
exported in float64, imported, and compared with the engine on the same params and feeds:
outputs, losses and every gradient to 1e-6 relative. Dropout draws the same masks from the
same seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.export import export_source

from tests.export_check import compare_numpy, load_module
from tests.program_check import document, graph
from tests.sample_graphs import example_feeds, feeds_for, full_params, sample_documents
from wiregrad import core

EXAMPLES = sorted((Path(__file__).parent.parent / "assets" / "examples").glob("*.wg.json"))
CASES = list(sample_documents())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name.split(".")[0])
def test_examples_match_the_engine(path, tmp_path):
    doc = core.load(path)
    program = core.compile(doc, "float64")
    params = program.init_params(3)
    compare_numpy(doc, params, example_feeds(doc, program, path), tmp_path)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_node_type_matches_the_engine(case, tmp_path):
    _, doc, data_params, feeds = case
    compare_numpy(doc, full_params(doc, data_params), feeds, tmp_path)


def test_init_params_draws_the_engines_values(tmp_path):
    for path in EXAMPLES:
        doc = core.load(path)
        module = load_module(export_source(doc, "numpy"), tmp_path)
        for seed in (0, 7, 2**40 + 3):
            expected = core.compile(doc).init_params(seed)
            got = module.init_params(seed)
            assert list(got) == list(expected)
            for name, value in expected.items():
                assert got[name].dtype == value.dtype
                np.testing.assert_array_equal(got[name], value)


# ---------------------------------------------------------------------------------------------
# Control flow beyond the examples


def _mlp_body():
    """h_next = tanh(fc(concat(x, h))) with x constant and h a carry; also stacks h_next."""
    return graph(
        [("x", "Input", {}), ("h", "Input", {"role": "carry"}),
         ("join", "Concat", {"axis": -1}), ("fc", "Linear", {"out_features": 3}),
         ("act", "Tanh", {}), ("h_next", "Output", {"role": "carry", "carry": "h"}),
         ("hs", "Output", {})],
        [("x.y", "join.x0"), ("h.y", "join.x1"), ("join.y", "fc.x"), ("fc.y", "act.x"),
         ("act.y", "h_next.x"), ("act.y", "hs.x")])


def test_repeat_loop_with_a_learned_initial_state(tmp_path):
    """A Parameter (no batch axis) as the carry's start is broadcast to the batch; its
    gradient is summed back over the batch. The constant input's gradient sums the steps."""
    doc = document(
        [("x", "Input", {"shape": [2]}), ("pre", "Linear", {"out_features": 2}),
         ("h0", "Parameter", {"shape": [3]}),
         ("loop", "Loop", {"mode": "repeat", "count": 4}, {"body": _mlp_body()}),
         ("s", "Sum", {}), ("loss", "Output", {}), ("hs", "Output", {})],
        [("x.y", "pre.x"), ("pre.y", "loop.x"), ("h0.y", "loop.h"), ("loop.hs", "s.x"),
         ("s.y", "loss.x"), ("loop.h_next", "hs.x")])
    program = core.compile(doc, "float64")
    compare_numpy(doc, program.init_params(1), feeds_for(program), tmp_path)


def test_nested_loops_and_a_block_inside_a_loop(tmp_path):
    inner = graph(
        [("v", "Input", {"role": "carry"}), ("blk", "Block", {"block": "Cell"}),
         ("out", "Output", {"role": "carry", "carry": "v"})],
        [("v.y", "blk.x"), ("blk.y", "out.x")])
    outer = graph(
        [("step", "Input", {"role": "sequence"}), ("h", "Input", {"role": "carry"}),
         ("mix", "Add", {}),
         ("inner", "Loop", {"mode": "repeat", "count": 2}, {"body": inner}),
         ("t", "LoopIndex", {}), ("scaled", "Mul", {}),
         ("h_next", "Output", {"role": "carry", "carry": "h"}), ("ys", "Output", {})],
        [("step.y", "mix.a"), ("h.y", "mix.b"), ("mix.y", "inner.v"), ("inner.out", "h_next.x"),
         ("inner.out", "scaled.a"), ("t.y", "scaled.b"), ("scaled.y", "ys.x")])
    cell = graph(
        [("x", "Input", {}), ("fc", "Linear", {"out_features": 3}), ("act", "Sin", {}),
         ("y", "Output", {})],
        [("x.y", "fc.x"), ("fc.y", "act.x"), ("act.y", "y.x")])
    doc = document(
        [("seq", "Input", {"shape": [None, 3]}), ("h0", "Constant", {"value": [0.0, 0.1, 0.2]}),
         ("rnn", "Loop", {"mode": "scan", "axis": 1}, {"body": outer}),
         ("m", "Mean", {}), ("loss", "Output", {}), ("last", "Output", {})],
        [("seq.y", "rnn.step"), ("h0.y", "rnn.h"), ("rnn.ys", "m.x"), ("m.y", "loss.x"),
         ("rnn.h_next", "last.x")],
        blocks={"Cell": cell})
    program = core.compile(doc, "float64")
    compare_numpy(doc, program.init_params(2), feeds_for(program, steps=5), tmp_path)


def test_blocks_share_one_function_and_keep_their_own_weights(tmp_path):
    doc = core.load(EXAMPLES[[p.name for p in EXAMPLES].index("blocks-and-gate.wg.json")])
    text = export_source(doc, "numpy")
    assert text.count("def block_Residual(") == 1
    assert 'block_Residual(params, "res1/"' in text and 'block_Residual(params, "res2/"' in text


def test_dropout_draws_the_engines_masks(tmp_path):
    """In training mode the same seed gives the same masks, also inside a loop and a branch."""
    body = graph(
        [("x", "Input", {}), ("drop", "Dropout", {"p": 0.3}), ("fc", "Linear", {"out_features": 4}),
         ("out", "Output", {})],
        [("x.y", "drop.x"), ("drop.y", "fc.x"), ("fc.y", "out.x")])
    then = graph([("x", "Input", {}), ("d", "Dropout", {"p": 0.5}), ("out", "Output", {})],
                 [("x.y", "d.x"), ("d.y", "out.x")])
    other = graph([("x", "Input", {}), ("n", "Neg", {}), ("out", "Output", {})],
                  [("x.y", "n.x"), ("n.y", "out.x")])
    doc = document(
        [("x", "Input", {"shape": [4]}), ("d0", "Dropout", {"p": 0.5}),
         ("loop", "Loop", {"mode": "repeat", "count": 3}, {"body": body}),
         ("c", "Constant", {"value": 1.0}),
         ("br", "Branch", {"mode": "scalar"}, {"then": then, "else": other}),
         ("s", "Sum", {}), ("loss", "Output", {})],
        [("x.y", "d0.x"), ("d0.y", "loop.x"), ("loop.out", "br.x"), ("c.y", "br.cond"),
         ("br.out", "s.x"), ("s.y", "loss.x")])
    program = core.compile(doc, "float64")
    params, feeds = program.init_params(0), feeds_for(program, batch=6)
    for seed in (0, 11):
        compare_numpy(doc, params, feeds, tmp_path, train=True, seed=seed)


# ---------------------------------------------------------------------------------------------
# Training as a script


@pytest.mark.parametrize("path", [p for p in EXAMPLES if core.load(p).training],
                         ids=lambda p: p.name.split(".")[0])
def test_exported_training_follows_the_engine(path, tmp_path):
    """The script's train() reads, splits, shuffles, drops out and updates as core.train: the
    same history and parameters after two epochs (float32, up to rounding)."""
    doc = core.load(path)
    text = export_source(doc, "numpy", data_dir=str(path.parent.resolve()))
    module = load_module(text, tmp_path)
    history, params = module.train(epochs=2, verbose=False)
    result = core.train(doc, epochs=2, base_dir=str(path.parent))
    assert len(history) == len(result.history) == 2
    for mine, theirs in zip(history, result.history):
        for key, value in mine.items():
            assert value == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), key
    for name, value in result.params.items():
        np.testing.assert_allclose(params[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
