"""The engine's contract: programs, feeds, params, gradients, loops, branches and blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.program_check import check_gradients, document, graph
from wiregrad import core

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
SPEC_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "spec" / "examples"


def example(name: str):
    for folder in (EXAMPLES, SPEC_EXAMPLES):
        if (folder / name).exists():
            return core.load(folder / name)
    pytest.skip(f"example {name} not found")


def mlp_doc(hidden=8, classes=3, features=2):
    return document(
        [("x", "Input", {"shape": [features]}), ("label", "Input", {"shape": [], "dtype": "int64"}),
         ("fc1", "Linear", {"out_features": hidden}), ("act", "Tanh", {}),
         ("fc2", "Linear", {"out_features": classes}), ("logits", "Output", {}),
         ("ce", "CrossEntropyLoss", {}), ("loss", "Output", {})],
        [("x.y", "fc1.x"), ("fc1.y", "act.x"), ("act.y", "fc2.x"), ("fc2.y", "logits.x"),
         ("fc2.y", "ce.logits"), ("label.y", "ce.target"), ("ce.y", "loss.x")])


def mlp_feeds(rng, batch=6, features=2, classes=3):
    return {"x": rng.normal(size=(batch, features)), "label": rng.integers(0, classes, batch)}


# -- the program surface ------------------------------------------------------------------------


def test_shapes_use_none_for_the_batch_and_for_lengths_set_by_data():
    program = core.compile(example("sequence-rnn.wg.json"))
    assert program.input_shapes == {"seq": (None, None, 1), "target": (None, 1)}
    assert program.output_shapes == {"pred": (None, 1), "loss": ()}


def test_params_are_named_by_node_path_with_layouts_from_the_spec():
    program = core.compile(example("sequence-rnn.wg.json"))
    params = program.init_params(seed=0)
    assert list(params) == ["rnn/cell.weight", "rnn/cell.bias", "readout.weight", "readout.bias"]
    assert params["rnn/cell.weight"].shape == (17, 16)  # (in_features, out_features)
    assert all(p.dtype == np.float32 for p in params.values())


def test_init_is_seeded_and_each_block_instance_starts_differently():
    program = core.compile(example("blocks-and-gate.wg.json"))
    a, b = program.init_params(seed=0), program.init_params(seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["res1/fc.weight"], a["res2/fc.weight"])
    c = program.init_params(seed=1)
    assert not np.array_equal(a["stem.weight"], c["stem.weight"])


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    program = core.compile(mlp_doc(hidden=64, features=100), "float64")
    w = program.init_params(0)["fc1.weight"]
    assert np.abs(w).max() <= 0.1 and np.abs(w).max() > 0.09


def test_value_and_grad_returns_exactly_the_params_keys_and_shapes():
    program = core.compile(mlp_doc(), "float64")
    params = program.init_params(0)
    loss, grads = program.value_and_grad(params, mlp_feeds(np.random.default_rng(0)))
    assert isinstance(loss, float)
    assert list(grads) == list(params)
    assert all(grads[k].shape == params[k].shape for k in params)


def test_mlp_gradients_match_finite_differences():
    program = core.compile(mlp_doc(), "float64")
    check_gradients(program, program.init_params(0), mlp_feeds(np.random.default_rng(0)))


def test_fan_out_accumulates():
    """b = a + a; c = b + b gives dc/da = 4."""
    doc = document(
        [("a", "Parameter", {"shape": [3], "init": "ones"}), ("b", "Add", {}), ("c", "Add", {}),
         ("s", "Sum", {}), ("loss", "Output", {})],
        [("a.y", "b.a"), ("a.y", "b.b"), ("b.y", "c.a"), ("b.y", "c.b"), ("c.y", "s.x"),
         ("s.y", "loss.x")])
    program = core.compile(doc, "float64")
    loss, grads = program.value_and_grad(program.init_params(0), {})
    assert loss == 12.0
    np.testing.assert_array_equal(grads["a.value"], [4.0, 4.0, 4.0])


def test_backward_twice_gives_the_same_and_changes_nothing():
    program = core.compile(example("sequence-rnn.wg.json"), "float64")
    params = program.init_params(0)
    rng = np.random.default_rng(0)
    feeds = {"seq": rng.normal(size=(4, 7, 1)), "target": rng.normal(size=(4, 1))}
    before = {k: v.copy() for k, v in params.items()}
    feeds_before = {k: v.copy() for k, v in feeds.items()}
    first = program.value_and_grad(params, feeds)
    second = program.value_and_grad(params, feeds)
    assert first[0] == second[0]
    assert all(np.array_equal(first[1][k], second[1][k]) for k in params)
    assert all(np.array_equal(before[k], params[k]) for k in params)
    assert all(np.array_equal(feeds_before[k], feeds[k]) for k in feeds)


def test_a_program_reused_with_new_data_equals_a_fresh_one():
    doc = mlp_doc()
    used = core.compile(doc, "float64")
    params = used.init_params(0)
    rng = np.random.default_rng(0)
    used.value_and_grad(params, mlp_feeds(rng, batch=9))
    new = mlp_feeds(rng, batch=5)
    fresh = core.compile(doc, "float64")
    a, b = used.value_and_grad(params, new), fresh.value_and_grad(params, new)
    assert a[0] == b[0] and all(np.array_equal(a[1][k], b[1][k]) for k in params)


def test_run_returns_every_output_or_those_asked_for():
    program = core.compile(mlp_doc())
    params = program.init_params(0)
    feeds = mlp_feeds(np.random.default_rng(0))
    outs = program.run(params, feeds)
    assert set(outs) == {"logits", "loss"} and outs["logits"].shape == (6, 3)
    only = program.run(params, {"x": feeds["x"]}, outputs=["logits"])
    np.testing.assert_array_equal(only["logits"], outs["logits"])


def test_float32_programs_compute_in_float32():
    program = core.compile(mlp_doc(), "float32")
    params = program.init_params(0)
    outs = program.run(params, mlp_feeds(np.random.default_rng(0)))
    assert outs["logits"].dtype == np.float32
    _, grads = program.value_and_grad(params, mlp_feeds(np.random.default_rng(0)))
    assert all(g.dtype == np.float32 for g in grads.values())


def test_gradients_are_written_into_given_buffers():
    program = core.compile(mlp_doc(), "float64")
    params = program.init_params(0)
    buffers = {k: np.full_like(v, 7.0) for k, v in params.items()}
    feeds = mlp_feeds(np.random.default_rng(0))
    _, grads = program.value_and_grad(params, feeds, out=buffers)
    _, expected = program.value_and_grad(params, feeds)
    for k in params:
        assert grads[k] is buffers[k]
        np.testing.assert_allclose(buffers[k], expected[k])


def test_gradients_of_params_the_loss_does_not_reach_are_zero():
    doc = mlp_doc()
    doc.graph.nodes.append(core.Node("spare", "Parameter", {"shape": [2]}))
    program = core.compile(doc, "float64")
    _, grads = program.value_and_grad(program.init_params(0), mlp_feeds(np.random.default_rng(0)))
    np.testing.assert_array_equal(grads["spare.value"], [0.0, 0.0])


# -- feeds and params at the door ---------------------------------------------------------------


@pytest.mark.parametrize("feeds,words", [
    ({"x": np.zeros((6, 3)), "label": np.zeros(6, int)}, ["'x'", "(6, 3)", "(B, 2)"]),
    ({"x": np.zeros((6, 2)), "label": np.zeros(6)}, ["'label'", "integers"]),
    ({"x": np.array([["a", "b"]]), "label": np.zeros(1, int)}, ["'x'", "numbers"]),
    ({"x": np.zeros((6, 2))}, ["missing feed", "'label'"]),
    ({"x": np.zeros((6, 2)), "label": np.zeros(6, int), "z": 1}, ["unknown feed", "'z'"]),
    ({"x": np.zeros((6, 2)), "label": np.zeros(5, int)}, ["batch"]),
])
def test_bad_feeds_are_graph_errors_naming_the_input(feeds, words):
    program = core.compile(mlp_doc())
    with pytest.raises(core.GraphError) as info:
        program.value_and_grad(program.init_params(0), feeds)
    for word in words:
        assert word in str(info.value)


def test_params_with_missing_extra_or_misshapen_entries_are_named():
    program = core.compile(mlp_doc())
    feeds = mlp_feeds(np.random.default_rng(0))
    params = program.init_params(0)
    del params["fc1.bias"]
    params["bogus"] = np.zeros(1)
    with pytest.raises(core.GraphError, match="missing fc1.bias; unknown bogus"):
        program.run(params, feeds)
    params = program.init_params(0)
    params["fc2.weight"] = np.zeros((3, 3))
    with pytest.raises(core.GraphError, match="fc2.weight"):
        program.run(params, feeds)


# -- compile errors -----------------------------------------------------------------------------


def test_shape_errors_name_the_node_the_port_and_where_the_value_came_from():
    doc = document(
        [("x", "Input", {"shape": [4]}), ("fc1", "Linear", {"out_features": 8}),
         ("w", "Parameter", {"shape": [3, 2]}), ("mm", "MatMul", {}), ("out", "Output", {})],
        [("x.y", "fc1.x"), ("fc1.y", "mm.a"), ("w.y", "mm.b"), ("mm.y", "out.x")])
    with pytest.raises(core.GraphError) as info:
        core.compile(doc)
    assert info.value.node == "mm"
    assert str(info.value).startswith("mm.")


def test_mse_target_mismatch_reads_like_the_spec_example():
    doc = document(
        [("x", "Input", {"shape": [2]}), ("t", "Input", {"shape": [3]}),
         ("mse", "MSELoss", {}), ("loss", "Output", {})],
        [("x.y", "mse.pred"), ("t.y", "mse.target"), ("mse.y", "loss.x")])
    with pytest.raises(core.GraphError) as info:
        core.compile(doc)
    assert info.value.node == "mse" and "mse." in str(info.value)


def test_every_error_is_reported_not_just_the_first():
    doc = document(
        [("x", "Input", {"shape": [4]}), ("a", "Linear", {"out_features": 2}),
         ("b", "Linear", {"out_features": 0}), ("out", "Output", {}), ("out2", "Output", {})],
        [("a.y", "out.x"), ("x.y", "b.x"), ("b.y", "out2.x")])
    with pytest.raises(core.GraphError) as info:
        core.compile(doc)
    assert {e.node for e in info.value.errors} == {"a", "b"}
    assert "a.x is not connected" in str(info.value.errors[0])


def test_a_top_level_input_needs_a_shape():
    doc = document([("x", "Input", {}), ("out", "Output", {})], [("x.y", "out.x")])
    with pytest.raises(core.GraphError, match="needs a shape"):
        core.compile(doc)


def test_analyze_collects_errors_and_shapes_without_raising():
    from wiregrad.core.compiler import analyze

    doc = mlp_doc()
    doc.graph.edges = [e for e in doc.graph.edges if e.dst != "act"]
    result = analyze(doc)
    assert [e.node for e in result.errors] == ["act"]
    assert str(result.port_types[("fc1", "y")]) == "(?, 8)"


# -- loops ----------------------------------------------------------------------------------------


def rnn_doc(mode="scan", count=5):
    body = graph(
        [("xt", "Input", {"role": "sequence"} if mode == "scan" else {}),
         ("h", "Input", {"role": "carry", "shape": [4]}), ("join", "Concat", {}),
         ("cell", "Linear", {"out_features": 4}), ("act", "Tanh", {}),
         ("h_next", "Output", {"role": "carry", "carry": "h"}), ("states", "Output", {})],
        [("xt.y", "join.x0"), ("h.y", "join.x1"), ("join.y", "cell.x"), ("cell.y", "act.x"),
         ("act.y", "h_next.x"), ("act.y", "states.x")])
    params = {"mode": mode, "count": count}
    return document(
        [("seq", "Input", {"shape": [None, 2] if mode == "scan" else [2]}),
         ("h0", "Parameter", {"shape": [4]}), ("rnn", "Loop", params, {"body": body}),
         ("sum", "Sum", {}), ("states_sum", "Sum", {}), ("both", "Add", {}), ("sq", "Square", {}),
         ("loss", "Output", {})],
        [("seq.y", "rnn.xt"), ("h0.y", "rnn.h"), ("rnn.h_next", "sum.x"),
         ("rnn.states", "states_sum.x"), ("sum.y", "both.a"), ("states_sum.y", "both.b"),
         ("both.y", "sq.x"), ("sq.y", "loss.x")])


def test_scan_steps_follow_the_data_and_gradients_flow_through_every_step():
    program = core.compile(rnn_doc(), "float64")
    assert program.output_shapes["loss"] == ()
    params = program.init_params(0)
    rng = np.random.default_rng(0)
    for length in (1, 3, 6):
        check_gradients(program, params, {"seq": rng.normal(size=(2, length, 2))})


def test_scan_stacks_states_along_its_axis():
    doc = rnn_doc()
    doc.graph.nodes.append(core.Node("states", "Output"))
    doc.graph.edges.append(core.Edge("rnn", "states", "states", "x"))
    program = core.compile(doc, "float64")
    outs = program.run(program.init_params(0), {"seq": np.ones((3, 5, 2))}, outputs=["states"])
    assert outs["states"].shape == (3, 5, 4)


def test_a_learned_initial_state_is_broadcast_to_the_batch_and_its_gradient_summed_back():
    program = core.compile(rnn_doc(), "float64")
    params = program.init_params(0)
    _, grads = program.value_and_grad(params, {"seq": np.ones((3, 4, 2))})
    assert grads["h0.value"].shape == (4,)


def test_repeat_runs_count_steps():
    program = core.compile(rnn_doc("repeat", count=4), "float64")
    check_gradients(program, program.init_params(1), {"seq": np.random.default_rng(0).normal(size=(2, 2))})


def test_zero_repeat_steps_pass_the_carry_through_and_stack_nothing():
    doc = rnn_doc("repeat", count=0)
    doc.graph.nodes.append(core.Node("states", "Output"))
    doc.graph.edges.append(core.Edge("rnn", "states", "states", "x"))
    program = core.compile(doc, "float64")
    params = program.init_params(0)
    outs = program.run(params, {"seq": np.ones((3, 2))})
    assert outs["states"].shape == (3, 0, 4)


def counter_doc(max_iter=50):
    """z <- z * 0.5 + x while mean |change| > 0.01: the step count depends on x."""
    body = graph(
        [("z", "Input", {"role": "carry"}), ("x", "Input", {}), ("half", "Constant", {"value": 0.5}),
         ("scaled", "Mul", {}), ("w", "Parameter", {"shape": [3], "init": "ones"}),
         ("wx", "Mul", {}), ("next", "Add", {}), ("z_next", "Output", {"role": "carry", "carry": "z"}),
         ("delta", "Sub", {}), ("size", "Abs", {}), ("mean", "Mean", {}),
         ("tol", "Constant", {"value": 0.01}), ("gap", "Sub", {}),
         ("go", "Output", {"role": "continue"}), ("t", "LoopIndex", {}), ("steps", "Output", {})],
        [("z.y", "scaled.a"), ("half.y", "scaled.b"), ("x.y", "wx.a"), ("w.y", "wx.b"),
         ("scaled.y", "next.a"), ("wx.y", "next.b"), ("next.y", "z_next.x"), ("next.y", "delta.a"),
         ("z.y", "delta.b"), ("delta.y", "size.x"), ("size.y", "mean.x"), ("mean.y", "gap.a"),
         ("tol.y", "gap.b"), ("gap.y", "go.x"), ("t.y", "steps.x")])
    return document(
        [("x", "Input", {"shape": [3]}), ("z0", "Constant", {"value": [0.0, 0.0, 0.0]}),
         ("settle", "Loop", {"mode": "while", "max_iter": max_iter}, {"body": body}),
         ("s", "Sum", {}), ("loss", "Output", {}), ("steps", "Output", {})],
        [("x.y", "settle.x"), ("z0.y", "settle.z"), ("settle.z_next", "s.x"), ("s.y", "loss.x"),
         ("settle.steps", "steps.x")])


def test_while_stops_on_the_data_and_differentiates_every_executed_step():
    program = core.compile(counter_doc(), "float64")
    assert program.output_shapes["steps"] == (None,)
    params = program.init_params(0)
    small = program.run(params, {"x": np.full((1, 3), 0.001)})["steps"]
    large = program.run(params, {"x": np.full((1, 3), 10.0)})["steps"]
    assert len(small) < len(large)
    check_gradients(program, params, {"x": np.full((2, 3), 0.7)})


def test_while_respects_max_iter():
    program = core.compile(counter_doc(max_iter=3), "float64")
    steps = program.run(program.init_params(0), {"x": np.full((1, 3), 10.0)})["steps"]
    np.testing.assert_array_equal(steps, [0.0, 1.0, 2.0])


def test_loops_inside_loops_nest_their_step_counters():
    inner = graph([("acc", "Input", {"role": "carry"}), ("t", "LoopIndex", {}), ("add", "Add", {}),
                   ("next", "Output", {"role": "carry", "carry": "acc"})],
                  [("acc.y", "add.a"), ("t.y", "add.b"), ("add.y", "next.x")])
    outer = graph([("acc", "Input", {"role": "carry"}),
                   ("inner", "Loop", {"mode": "repeat", "count": 3}, {"body": inner}),
                   ("t", "LoopIndex", {}), ("add", "Add", {}),
                   ("next", "Output", {"role": "carry", "carry": "acc"})],
                  [("acc.y", "inner.acc"), ("inner.next", "add.a"), ("t.y", "add.b"),
                   ("add.y", "next.x")])
    doc = document([("zero", "Constant", {"value": 0.0}),
                    ("outer", "Loop", {"mode": "repeat", "count": 2}, {"body": outer}),
                    ("total", "Output", {})],
                   [("zero.y", "outer.acc"), ("outer.next", "total.x")])
    program = core.compile(doc, "float64")
    # each outer step adds 0+1+2 from the inner loop, then its own index (0, then 1)
    assert float(program.run({}, {})["total"]) == 3 + 0 + 3 + 1


# -- branches and blocks --------------------------------------------------------------------------


def test_a_scalar_branch_runs_only_the_side_taken():
    then = graph([("v", "Input", {}), ("out", "Output", {})], [("v.y", "out.x")])
    other = graph([("v", "Input", {}), ("boom", "Log", {}), ("out", "Output", {})],
                  [("v.y", "boom.x"), ("boom.y", "out.x")])
    doc = document([("v", "Input", {"shape": [2]}), ("c", "Input", {"shape": []}),
                    ("first", "Sum", {}),
                    ("br", "Branch", {}, {"then": then, "else": other}), ("out", "Output", {})],
                   [("v.y", "br.v"), ("c.y", "first.x"), ("first.y", "br.cond"),
                    ("br.out", "out.x")])
    program = core.compile(doc, "float64")
    with np.errstate(all="raise"):  # Log of a negative would raise if the else side ran
        out = program.run({}, {"v": np.full((1, 2), -1.0), "c": np.ones(1)})
    np.testing.assert_array_equal(out["out"], [[-1.0, -1.0]])


def test_a_scalar_branch_refuses_a_condition_of_many_values():
    doc = example("blocks-and-gate.wg.json")
    doc.graph.node("gate").params["mode"] = "scalar"
    program = core.compile(doc)
    with pytest.raises(core.GraphError, match="gate.cond"):
        program.run(program.init_params(0), {"x": np.ones((4, 4))})


def test_blocks_and_a_select_branch_train_with_correct_gradients():
    doc = example("blocks-and-gate.wg.json")
    doc.graph.nodes += [core.Node("target", "Input", {"shape": [1]}), core.Node("mse", "MSELoss"),
                        core.Node("loss", "Output")]
    doc.graph.edges += [core.Edge("head", "y", "mse", "pred"),
                        core.Edge("target", "y", "mse", "target"), core.Edge("mse", "y", "loss", "x")]
    program = core.compile(doc, "float64")
    rng = np.random.default_rng(0)
    check_gradients(program, program.init_params(0),
                    {"x": rng.normal(size=(6, 4)), "target": rng.normal(size=(6, 1))})


@pytest.mark.parametrize("name", ["spiral-mlp.wg.json", "adaptive-while.wg.json",
                                  "sequence-rnn.wg.json"])
def test_spec_examples_have_correct_gradients(name):
    doc = example(name)
    program = core.compile(doc, "float64")
    rng = np.random.default_rng(0)
    feeds = {}
    for input_id, shape in program.input_shapes.items():
        shape = tuple(4 if i == 0 else (5 if d is None else d) for i, d in enumerate(shape))
        feeds[input_id] = (rng.integers(0, 2, shape) if program.input_dtypes[input_id] == "int64"
                           else rng.normal(size=shape))
    check_gradients(program, program.init_params(0), feeds)


# -- control-flow errors --------------------------------------------------------------------------


def test_a_carry_that_changes_shape_is_refused():
    body = graph([("h", "Input", {"role": "carry"}), ("fc", "Linear", {"out_features": 3}),
                  ("next", "Output", {"role": "carry", "carry": "h"})],
                 [("h.y", "fc.x"), ("fc.y", "next.x")])
    doc = document([("x", "Input", {"shape": [2]}),
                    ("loop", "Loop", {"mode": "repeat", "count": 2}, {"body": body}),
                    ("out", "Output", {})],
                   [("x.y", "loop.h"), ("loop.next", "out.x")])
    with pytest.raises(core.GraphError, match="carry 'h' changes"):
        core.compile(doc)


def test_branch_sides_giving_different_shapes_are_refused():
    then = graph([("v", "Input", {}), ("fc", "Linear", {"out_features": 3}), ("out", "Output", {})],
                 [("v.y", "fc.x"), ("fc.y", "out.x")])
    other = graph([("v", "Input", {}), ("out", "Output", {})], [("v.y", "out.x")])
    doc = document([("v", "Input", {"shape": [2]}), ("c", "Constant", {"value": 1.0}),
                    ("br", "Branch", {}, {"then": then, "else": other}), ("out", "Output", {})],
                   [("v.y", "br.v"), ("c.y", "br.cond"), ("br.out", "out.x")])
    with pytest.raises(core.GraphError, match="br: output 'out'"):
        core.compile(doc)


def test_a_block_that_uses_itself_is_refused():
    inner = graph([("x", "Input", {}), ("again", "Block", {"block": "Loopy"}), ("y", "Output", {})],
                  [("x.y", "again.x"), ("again.y", "y.x")])
    doc = document([("x", "Input", {"shape": [2]}), ("b", "Block", {"block": "Loopy"}),
                    ("y", "Output", {})],
                   [("x.y", "b.x"), ("b.y", "y.x")], blocks={"Loopy": inner})
    with pytest.raises(core.GraphError, match="uses itself"):
        core.compile(doc)


def test_nan_sources_are_found_by_node():
    doc = document([("x", "Input", {"shape": [2]}), ("log", "Log", {}), ("s", "Sum", {}),
                    ("loss", "Output", {})],
                   [("x.y", "log.x"), ("log.y", "s.x"), ("s.y", "loss.x")])
    program = core.compile(doc)
    assert program.first_nonfinite({}, {"x": -np.ones((1, 2))}) == "log"
    assert program.first_nonfinite({}, {"x": np.ones((1, 2))}) is None


def test_an_error_while_running_names_the_node():
    doc = document([("ids", "Input", {"shape": [], "dtype": "int64"}),
                    ("emb", "Embedding", {"num_embeddings": 3, "embedding_dim": 2}),
                    ("out", "Output", {})],
                   [("ids.y", "emb.x"), ("emb.y", "out.x")])
    program = core.compile(doc)
    with pytest.raises(core.GraphError) as info:
        program.run(program.init_params(0), {"ids": np.array([0, 7])})
    assert info.value.node == "emb" and str(info.value).startswith("emb: ")


def test_trace_shows_every_value_and_gradient_inside_loops_too():
    program = core.compile(example("sequence-rnn.wg.json"), "float64")
    params = program.init_params(0)
    rng = np.random.default_rng(0)
    feeds = {"seq": rng.normal(size=(3, 4, 1)), "target": rng.normal(size=(3, 1))}
    record = program.trace(params, feeds, loss="loss")
    values, grads = record["values"], record["grads"]
    assert len(values[("rnn/act", "y")]) == 4  # one per step
    assert values[("rnn/act", "y")][0].shape == (3, 16)
    np.testing.assert_allclose(values[("readout", "y")][0], program.run(params, feeds)["pred"])
    assert len(grads[("rnn/cell", "y")]) == 4
    # the gradient at the last step's state is what the readout sends back
    w = params["readout.weight"]
    pred, target = values[("readout", "y")][0], feeds["target"]
    expected = (2 * (pred - target) / pred.size) @ w.T
    np.testing.assert_allclose(grads[("rnn/act", "y")][-1], expected)
    assert ("seq", "y") in values and ("rnn/step", "y") in values


def test_the_first_nan_inside_a_loop_names_the_body_node_where_it_started():
    body = graph([("h", "Input", {"role": "carry"}), ("one", "Constant", {"value": 1.0}),
                  ("down", "Sub", {}), ("log", "Log", {}), ("double", "Add", {}),
                  ("next", "Output", {"role": "carry", "carry": "h"}), ("logs", "Output", {})],
                 [("h.y", "down.a"), ("one.y", "down.b"), ("down.y", "log.x"),
                  ("log.y", "double.a"), ("log.y", "double.b"), ("down.y", "next.x"),
                  ("double.y", "logs.x")])
    doc = document([("x", "Input", {"shape": [2]}),
                    ("loop", "Loop", {"mode": "repeat", "count": 3}, {"body": body}),
                    ("out", "Output", {})],
                   [("x.y", "loop.h"), ("loop.logs", "out.x")])
    program = core.compile(doc)
    assert program.first_nonfinite({}, {"x": np.full((1, 2), 1.5)}) == "loop/log"
    assert program.first_nonfinite({}, {"x": np.full((1, 2), 9.0)}) is None
