"""Constructs whose structure changes with each sample (format.md, version 2): per-sample while
loops, route branches and tree loops. The rule they answer to: a sample gives, in a batch,
exactly what it gives run alone (a batch of one), outputs and gradients alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.trainer import EVAL_CHUNK, eval_rows, read_plan

from tests.program_check import check_gradients, document, graph
from wiregrad import core

RNG = np.random.default_rng(0)
EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def _alone_and_together(program, feeds, outputs, params=None):
    """Assert that every sample's outputs, and the gradients of the summed loss, are those of
    the sample run alone."""
    params = params or program.init_params(0)
    together = program.run(params, feeds)
    _, grads = program.value_and_grad(params, feeds)
    total = {n: np.zeros_like(g) for n, g in grads.items()}
    batch = len(next(iter(feeds.values())))
    for i in range(batch):
        one = {k: v[i:i + 1] for k, v in feeds.items()}
        alone = program.run(params, one)
        for name in outputs:
            a, b = alone[name][0], together[name][i]
            if a.shape != b.shape:  # a stacked output: padded to the longest run in a batch
                assert np.all(b[a.shape[0]:] == 0)
                b = b[:a.shape[0]]
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"{name}[{i}]")
        for name, g in program.value_and_grad(params, one)[1].items():
            total[name] += g
    for name, g in grads.items():
        np.testing.assert_allclose(g, total[name], rtol=1e-10, atol=1e-12, err_msg=name)


# -- per-sample while ---------------------------------------------------------------------------


def _ponder(max_iter=20, per_sample=True, mix=False):
    """h <- tanh(W h + b) until sample i has taken steps[i] steps."""
    extra_nodes = [("avg", "Mean", {"axis": 0, "keepdims": True}), ("centre", "Sub", {})] \
        if mix else []
    extra_edges = [("act.y", "avg.x"), ("act.y", "centre.a"), ("avg.y", "centre.b")] \
        if mix else []
    body = graph([("h", "Input", {"role": "carry"}), ("n", "Input", {}), ("t", "LoopIndex", {}),
                  ("one", "Constant", {"value": 1.0}), ("done", "Add", {}), ("left", "Sub", {}),
                  ("cell", "Linear", {"out_features": 3}), ("act", "Tanh", {}),
                  ("h_next", "Output", {"role": "carry", "carry": "h"}),
                  ("go", "Output", {"role": "continue"}), ("states", "Output", {})]
                 + extra_nodes,
                 [("h.y", "cell.x"), ("cell.y", "act.x"),
                  ("centre.y" if mix else "act.y", "h_next.x"), ("act.y", "states.x"),
                  ("t.y", "done.a"), ("one.y", "done.b"), ("n.y", "left.a"),
                  ("done.y", "left.b"), ("left.y", "go.x")] + extra_edges)
    return document(
        [("x", "Input", {"shape": [3]}), ("steps", "Input", {"shape": []}),
         ("loop", "Loop", {"mode": "while", "per_sample": per_sample, "max_iter": max_iter},
          {"body": body}),
         ("s1", "Sum", {}), ("s2", "Sum", {}), ("total", "Add", {}), ("loss", "Output", {}),
         ("h", "Output", {}), ("states", "Output", {})],
        [("x.y", "loop.h"), ("steps.y", "loop.n"), ("loop.h_next", "s1.x"),
         ("loop.states", "s2.x"), ("s1.y", "total.a"), ("s2.y", "total.b"),
         ("total.y", "loss.x"), ("loop.h_next", "h.x"), ("loop.states", "states.x")])


FEEDS = {"x": RNG.normal(size=(6, 3)), "steps": np.array([1.0, 5, 2, 9, 3, 1])}


def test_a_per_sample_while_gives_each_sample_what_it_gives_alone():
    program = core.compile(_ponder(), "float64")
    _alone_and_together(program, FEEDS, ["h", "states"])
    states = program.run(program.init_params(0), FEEDS)["states"]
    assert states.shape == (6, 9, 3)  # as long as the longest run
    assert np.all(states[0, 1:] == 0) and np.all(states[3] != 0)


def test_loop_steps_reports_how_many_steps_each_sample_ran():
    program = core.compile(_ponder(max_iter=6), "float64")
    steps = program.loop_steps(program.init_params(0), {"x": FEEDS["x"], "steps": FEEDS["steps"]})
    np.testing.assert_array_equal(steps["loop"], [1, 5, 2, 6, 3, 1])  # capped at max_iter
    assert core.compile(_tree_rnn()).loop_steps({}, {}) == {}  # no per-sample while loop


def test_a_per_sample_while_has_exact_gradients_through_each_samples_steps():
    program = core.compile(_ponder(), "float64")
    check_gradients(program, program.init_params(1), FEEDS)


def test_body_nodes_that_mix_the_batch_see_only_the_samples_still_running():
    program = core.compile(_ponder(max_iter=3, mix=True), "float64")
    params = program.init_params(0)
    feeds = {"x": FEEDS["x"][:3], "steps": np.array([1.0, 3, 3])}
    h = feeds["x"].copy()
    w, b = params["loop/cell.weight"], params["loop/cell.bias"]
    running = [0, 1, 2]
    for t in range(3):
        act = np.tanh(h[running] @ w + b)
        h[running] = act - act.mean(axis=0, keepdims=True)
        running = [i for i in running if feeds["steps"][i] > t + 1]
    np.testing.assert_allclose(program.run(params, feeds)["h"], h, rtol=1e-12)
    check_gradients(program, params, feeds)


def test_a_per_sample_continue_of_the_wrong_shape_is_an_error_naming_it():
    doc = _ponder()
    body = doc.graph.node("loop").bodies["body"]
    body.nodes.append(core.Node("wide", "Concat", {}))
    body.edges = [e for e in body.edges if e.dst != "go"]
    body.edges += [core.Edge("left", "y", "wide", "x0"), core.Edge("left", "y", "wide", "x1"),
                   core.Edge("wide", "y", "go", "x")]
    body.node("left").type = "Reshape"  # left: (B, 1) per sample, then widened to (B, 2)
    body.node("left").params = {"shape": [1]}
    body.edges = [e for e in body.edges if not (e.dst == "left" and e.dst_port == "b")]
    body.edges = [core.Edge(e.src, e.src_port, e.dst, "x") if e.dst == "left" else e
                  for e in body.edges]
    with pytest.raises(core.GraphError, match="one value per sample") as info:
        core.compile(doc)
    assert info.value.node == "loop/go"


# -- route --------------------------------------------------------------------------------------


def _route():
    def side(act, extra=()):
        return graph([("x", "Input", {}), ("fc", "Linear", {"out_features": 2}), ("a", act, {}),
                      ("y", "Output", {})] + list(extra),
                     [("x.y", "fc.x"), ("fc.y", "a.x"), ("a.y", "y.x")])
    return document(
        [("x", "Input", {"shape": [3]}), ("c", "Input", {"shape": []}),
         ("br", "Branch", {"mode": "route"}, {"then": side("Tanh"), "else": side("Log")}),
         ("s", "Sum", {}), ("loss", "Output", {}), ("out", "Output", {})],
        [("x.y", "br.x"), ("c.y", "br.cond"), ("br.y", "s.x"), ("s.y", "loss.x"),
         ("br.y", "out.x")])


def test_a_route_branch_sends_each_sample_through_its_own_side():
    program = core.compile(_route(), "float64")
    params = program.init_params(0)
    params["br/else/fc.bias"] = np.full(2, 10.0)  # Log of a positive number on that side
    feeds = {"x": RNG.normal(size=(5, 3)), "c": np.array([1.0, -1, 1, 0, 2])}
    _alone_and_together(program, feeds, ["out"], params)
    check_gradients(program, params, feeds)


def test_a_side_no_sample_takes_does_not_run():
    program = core.compile(_route(), "float64")
    params = program.init_params(0)
    params["br/else/fc.bias"] = np.full(2, -100.0)  # Log of a negative number: NaN, if it ran
    out = program.run(params, {"x": RNG.normal(size=(4, 3)), "c": np.ones(4)})["out"]
    assert np.isfinite(out).all()


def test_a_route_condition_must_hold_one_value_per_sample():
    doc = _route()
    doc.graph.node("c").params["shape"] = [2]
    with pytest.raises(core.GraphError, match="one value per sample") as info:
        core.compile(doc)
    assert info.value.node == "br"


# -- tree loops ---------------------------------------------------------------------------------


def _tree_rnn(hidden=3):
    body = graph([("leaf", "Input", {"role": "sequence"}),
                  ("kids", "Input", {"role": "children", "of": "h", "shape": [2, hidden]}),
                  ("flat", "Flatten", {}), ("join", "Concat", {}),
                  ("cell", "Linear", {"out_features": hidden}), ("act", "Tanh", {}),
                  ("h", "Output", {})],
                 [("kids.y", "flat.x"), ("leaf.y", "join.x0"), ("flat.y", "join.x1"),
                  ("join.y", "cell.x"), ("cell.y", "act.x"), ("act.y", "h.x")])
    return document(
        [("x", "Input", {"shape": [None, 2]}),
         ("children", "Input", {"shape": [None, 2], "dtype": "int64"}),
         ("root", "Input", {"shape": [], "dtype": "int64"}),
         ("tree", "Loop", {"mode": "tree"}, {"body": body}), ("pick", "Gather", {}),
         ("s", "Sum", {}), ("loss", "Output", {}), ("hs", "Output", {}), ("top", "Output", {})],
        [("x.y", "tree.leaf"), ("children.y", "tree.children"), ("tree.h", "pick.x"),
         ("root.y", "pick.index"), ("pick.y", "s.x"), ("s.y", "loss.x"), ("tree.h", "hs.x"),
         ("pick.y", "top.x")])


CHILDREN = np.array([[[-1, -1], [-1, -1], [0, 1], [-1, -1], [2, 3]],     # ((0 1) 3): height 2
                     [[-1, -1], [-1, -1], [-1, -1], [1, 0], [-1, -1]],   # (1 0), a pad after it
                     [[-1, -1], [0, -1], [1, -1], [2, -1], [3, -1]]])    # a chain: height 4
TREES = {"x": RNG.normal(size=(3, 5, 2)), "children": CHILDREN, "root": np.array([4, 3, 4])}


def test_a_tree_loop_gives_each_tree_what_it_gives_alone():
    program = core.compile(_tree_rnn(), "float64")
    _alone_and_together(program, TREES, ["hs", "top"])
    check_gradients(program, program.init_params(1), TREES)


def test_nodes_of_the_same_height_run_together_across_the_batch():
    program = core.compile(_tree_rnn(), "float64")
    record = program.trace(program.init_params(0), TREES)
    runs = record["values"][("tree/cell", "y")]
    assert len(runs) == 5  # heights 0 .. 4, not 15 nodes
    assert [len(r) for r in runs] == [8, 3, 2, 1, 1]  # all trees' leaves (and pads) at once


@pytest.mark.parametrize("where, value, message", [
    ((0, 2, 0), 3, "node 2 of sample 0 has child 3"),
    ((1, 3, 1), 3, "node 3 of sample 1 has child 3"),
    ((2, 1, 0), -2, "node 1 of sample 2 has child -2"),
])
def test_a_child_not_before_its_parent_is_an_error_naming_the_loop(where, value, message):
    program = core.compile(_tree_rnn())
    children = CHILDREN.copy()
    children[where] = value
    with pytest.raises(core.GraphError, match=message) as info:
        program.run(program.init_params(0), dict(TREES, children=children))
    assert info.value.node == "tree"


def test_children_and_data_of_different_node_counts_are_an_error_naming_the_loop():
    program = core.compile(_tree_rnn())
    with pytest.raises(core.GraphError, match="5 nodes a tree, but the sequence inputs have 4"):
        program.run(program.init_params(0), dict(TREES, x=TREES["x"][:, :4]))


def test_a_children_input_needs_its_shape():
    doc = _tree_rnn()
    doc.graph.node("tree").bodies["body"].node("kids").params["shape"] = None
    with pytest.raises(core.GraphError, match="needs its shape") as info:
        core.compile(doc)
    assert info.value.node == "tree/kids"


# -- evaluation that does not depend on how rows are grouped ----------------------------------


def test_evaluation_runs_in_training_batches_when_a_sample_depends_on_its_batch():
    doc = core.load(EXAMPLES / "adaptive-while.wg.json")  # one continue value for the batch
    program = core.compile(doc)
    assert program.batch_level == ["settle", "settle/mean"]  # the loop, its Mean over the batch
    assert eval_rows(read_plan(doc), program) == doc.training["batch_size"]
    rowwise = document([("x", "Input", {"shape": [2]}), ("label", "Input", {"shape": [2]}),
                        ("fc", "Linear", {"out_features": 2}), ("mse", "MSELoss", {}),
                        ("loss", "Output", {})],
                       [("x.y", "fc.x"), ("fc.y", "mse.pred"), ("label.y", "mse.target"),
                        ("mse.y", "loss.x")])  # a mean loss combines exactly across chunks
    rowwise.training = {"dataset": {"kind": "spiral"}, "loss": "loss", "batch_size": 16}
    assert eval_rows(read_plan(rowwise), core.compile(rowwise)) == EVAL_CHUNK
    rowwise.training["eval_batch_size"] = 7
    assert eval_rows(read_plan(rowwise), core.compile(rowwise)) == 7
    rowwise.training["eval_batch_size"] = 0
    with pytest.raises(core.GraphError, match="eval_batch_size"):
        read_plan(rowwise)


def test_a_mean_over_the_batch_makes_a_graph_batch_level():
    doc = document([("x", "Input", {"shape": [2]}), ("m", "Mean", {"axis": 0}),
                    ("y", "Output", {})], [("x.y", "m.x"), ("m.y", "y.x")])
    assert core.compile(doc).batch_level == ["m"]
