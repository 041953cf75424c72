"""Inference without targets (interfaces.md, format version 2): `program.run(params, {"x": xb})`
gives every Output the feeds allow, and so do the numpy export's `forward` and the torch
export's `Model` (by name or by position); what cannot be computed is left out, and asking for
it by name still names the missing Input."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.codegen.feeds import (
    allowed,
    input_order,
    output_needs,
    output_sets,
    target_inputs,
)
from wiregrad.core.codegen.layout import Layout
from wiregrad.core.export import export_source

from tests.export_check import load_module, rel_diff
from tests.program_check import document
from tests.sample_graphs import example_feeds
from wiregrad import core

EXAMPLES = Path(__file__).parent.parent / "assets" / "examples"
# A multi-Input graph, a scan loop, a per-sample while loop, a tree loop and blocks.
INFERENCE_EXAMPLES = ["spiral-mlp", "siamese", "parity-rnn", "ponder", "tree-expressions",
                      "blocks-and-gate"]


def example(name: str):
    path = EXAMPLES / f"{name}.wg.json"
    doc = core.load(path)
    return path, doc


def prediction_feeds(doc, program, path) -> dict:
    """An example's feeds without its targets."""
    feeds = example_feeds(doc, program, path)
    targets = target_inputs(Layout.of(doc))
    return {k: v for k, v in feeds.items() if k not in targets}


# -- the engine -------------------------------------------------------------------------------


def test_the_inputs_alone_give_the_predictions_and_leave_out_the_loss():
    path, doc = example("spiral-mlp")
    program = core.compile(doc)
    params = program.init_params(0)
    feeds = example_feeds(doc, program, path)
    full = program.run(params, feeds)
    predicted = program.run(params, {"x": feeds["x"]})
    assert set(full) == {"logits", "loss"}
    assert set(predicted) == {"logits"}
    np.testing.assert_array_equal(predicted["logits"], full["logits"])


def test_a_requested_output_still_names_its_missing_input_and_unknown_feeds_are_errors():
    _, doc = example("spiral-mlp")
    program = core.compile(doc)
    params = program.init_params(0)
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(core.GraphError, match="missing feed for Input 'label'") as info:
        program.run(params, {"x": x}, outputs=["loss"])
    assert info.value.node == "label"
    with pytest.raises(core.GraphError, match="unknown feed 'z'"):
        program.run(params, {"x": x, "z": x})
    with pytest.raises(core.GraphError, match="unknown feed 'z'"):
        program.run(params, {"z": x})
    with pytest.raises(core.GraphError, match="missing feed for Input 'x'") as info:
        program.run(params, {"label": np.zeros(4, np.int64)})
    assert info.value.node == "x"
    with pytest.raises(core.GraphError, match="feeds must be a dict"):
        program.run(params, [x])


def test_each_set_of_feed_ids_chooses_its_function_once():
    _, doc = example("siamese")
    program = core.compile(doc)
    params = program.init_params(0)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.normal(size=(3, 2)), "b": rng.normal(size=(3, 2)),
             "same": np.array([0, 1, 1])}
    assert set(program.run(params, {"a": feeds["a"], "b": feeds["b"]})) == {"logits"}
    chosen = program._by_feeds[frozenset({"a", "b"})]
    program.run(params, {"b": feeds["b"], "a": feeds["a"]})  # the same ids in another order
    assert program._by_feeds[frozenset({"a", "b"})] is chosen
    assert len(program._by_feeds) == 1
    assert set(program.run(params, feeds)) == {"logits", "loss"}
    with pytest.raises(core.GraphError, match="'b'"):
        program.run(params, {"a": feeds["a"]})


def test_an_output_that_needs_no_input_comes_with_any_feeds():
    doc = document(
        [("x", "Input", {"shape": [2]}), ("fc", "Linear", {"out_features": 1}),
         ("pred", "Output", {}), ("w", "Parameter", {"shape": [3]}), ("sq", "Square", {}),
         ("s", "Sum", {}), ("l2", "Output", {})],
        [("x.y", "fc.x"), ("fc.y", "pred.x"), ("w.y", "sq.x"), ("sq.y", "s.x"),
         ("s.y", "l2.x")])
    program = core.compile(doc, "float64")
    params = program.init_params(0)
    assert set(program.run(params, {})) == {"l2"}
    assert set(program.run(params, {"x": np.ones((2, 2))})) == {"pred", "l2"}


def test_the_sets_of_outputs_written_for_partial_feeds_cover_every_choice_of_feeds():
    needs = {"p": ("a",), "q": ("b",), "r": ("a", "b"), "loss": ("a", "b", "t"), "c": ()}
    sets = output_sets(needs)
    assert sets[0] == tuple(needs)
    for k in range(5):
        for fed in itertools.combinations(["a", "b", "t", "u"], k):
            first = next((s for s in sets if all(i in fed for o in s for i in needs[o])), ())
            assert first == allowed(needs, set(fed)), fed
    many = {f"o{k}": (f"i{k}",) for k in range(12)}  # 4096 sets: past the limit
    bounded = output_sets(many)
    assert len(bounded) <= 13 and bounded[0] == tuple(many)


def test_targets_go_last_in_the_positional_order():
    layout = Layout.of(example("siamese")[1])
    assert input_order(layout) == ["a", "b", "same"]
    assert target_inputs(layout) == {"same"}
    layout = Layout.of(example("ponder")[1])
    assert input_order(layout)[-1] == "target" and set(output_needs(layout)) == {"pred", "loss"}


# -- the exports --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INFERENCE_EXAMPLES)
def test_numpy_forward_gives_what_the_engine_gives_from_the_inputs_alone(name, tmp_path):
    path, doc = example(name)
    program = core.compile(doc, "float64")
    module = load_module(export_source(doc, "numpy", dtype="float64"), tmp_path)
    params = program.init_params(1)
    feeds = prediction_feeds(doc, program, path)
    expected = program.run(params, feeds)
    got = module.forward(params, feeds)
    assert set(got) == set(expected) == set(allowed(output_needs(program.layout()), feeds))
    for key, value in expected.items():
        assert rel_diff(value, got[key]) <= 1e-12, key


def test_numpy_forward_names_unknown_and_missing_feeds(tmp_path):
    _, doc = example("spiral-mlp")
    module = load_module(export_source(doc, "numpy"), tmp_path)
    params = module.init_params(0)
    x = np.zeros((3, 2))
    with pytest.raises(KeyError, match="unknown feed 'z'"):
        module.forward(params, {"x": x, "z": x})
    with pytest.raises(KeyError, match="missing feed for Input 'x'"):
        module.forward(params, {"label": np.zeros(3, np.int64)})
    assert set(module.forward(params, {"x": x})) == {"logits"}


torch_cases = pytest.mark.parametrize("name", INFERENCE_EXAMPLES)


@torch_cases
def test_torch_model_takes_the_inputs_by_name_or_position_and_returns_the_predictions(
        name, tmp_path):
    torch = pytest.importorskip("torch")
    path, doc = example(name)
    program = core.compile(doc)
    module = load_module(export_source(doc, "torch"), tmp_path)
    params = program.init_params(1)
    model = module.load_params(module.Model(), params).eval()
    feeds = prediction_feeds(doc, program, path)
    expected = program.run(params, feeds)
    tensors = {k: torch.as_tensor(np.asarray(
        v, dtype=np.int64 if program.input_dtypes[k] == "int64" else np.float32))
        for k, v in feeds.items()}
    order = [i for i in module.INPUT_ORDER if i in tensors]
    assert list(module.INPUT_ORDER[:len(order)]) == order  # the predictions' Inputs first
    with torch.no_grad():
        by_name = model(**tensors)
        by_position = model(*[tensors[i] for i in order])
    for got in (by_name, by_position):
        assert set(got) == set(expected)
        for key, value in expected.items():
            assert rel_diff(value, got[key].numpy()) <= 1e-5, key


def test_torch_model_refuses_unknown_and_missing_feeds(tmp_path):
    torch = pytest.importorskip("torch")
    _, doc = example("spiral-mlp")
    model = load_module(export_source(doc, "torch"), tmp_path).Model()
    x = torch.zeros(3, 2)
    with pytest.raises(TypeError):
        model(x=x, z=x)
    with pytest.raises(TypeError, match="missing feed for Input 'x'"):
        model(label=torch.zeros(3, dtype=torch.long))
    assert set(model(x, torch.zeros(3, dtype=torch.long))) == {"logits", "loss"}


def test_an_input_id_python_cannot_take_as_an_argument_still_works(tmp_path):
    """An Input named like a module the forward uses (`torch`) is taken through **feeds."""
    torch = pytest.importorskip("torch")
    doc = document(
        [("torch", "Input", {"shape": [2]}), ("fc", "Linear", {"out_features": 2}),
         ("pred", "Output", {}), ("label", "Input", {"shape": [2]}), ("mse", "MSELoss", {}),
         ("loss", "Output", {})],
        [("torch.y", "fc.x"), ("fc.y", "pred.x"), ("fc.y", "mse.pred"),
         ("label.y", "mse.target"), ("mse.y", "loss.x")])
    program = core.compile(doc)
    module = load_module(export_source(doc, "torch"), tmp_path)
    params = program.init_params(0)
    model = module.load_params(module.Model(), params)
    x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    expected = program.run(params, {"torch": x})["pred"]
    with torch.no_grad():
        for got in (model(torch=torch.as_tensor(x)), model(torch.as_tensor(x))):
            assert set(got) == {"pred"}
            assert rel_diff(expected, got["pred"].numpy()) <= 1e-6
    with pytest.raises(TypeError, match="unknown feed 'z'"):
        model(z=torch.as_tensor(x))
    with pytest.raises(TypeError, match="by position and by name"):
        model(torch.as_tensor(x), torch=torch.as_tensor(x))
    assert set(model(torch.as_tensor(x), torch.as_tensor(x))) == {"pred", "loss"}


def test_outputs_on_different_inputs_come_with_their_own_feeds_in_every_target(tmp_path):
    """p needs a, q needs b, r both: neither guard holds the other, so the torch forward is
    written as one `if` per run of nodes, and the numpy file has a function per set."""
    torch = pytest.importorskip("torch")
    doc = document(
        [("a", "Input", {"shape": [2]}), ("b", "Input", {"shape": [2]}),
         ("fa", "Linear", {"out_features": 2}), ("fb", "Tanh", {}), ("add", "Add", {}),
         ("p", "Output", {}), ("q", "Output", {}), ("r", "Output", {})],
        [("a.y", "fa.x"), ("b.y", "fb.x"), ("fa.y", "add.a"), ("fb.y", "add.b"),
         ("fa.y", "p.x"), ("fb.y", "q.x"), ("add.y", "r.x")])
    program = core.compile(doc, "float64")
    params = program.init_params(0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    numpy_module = load_module(export_source(doc, "numpy", dtype="float64"), tmp_path)
    torch_module = load_module(export_source(doc, "torch"), tmp_path)
    model = torch_module.load_params(torch_module.Model().double(), params)
    for feeds, wanted in [({"a": a}, {"p"}), ({"b": b}, {"q"}), ({"a": a, "b": b},
                                                                 {"p", "q", "r"})]:
        expected = program.run(params, feeds)
        assert set(expected) == wanted
        got = numpy_module.forward(params, feeds)
        with torch.no_grad():
            tensors = model(**{k: torch.as_tensor(v) for k, v in feeds.items()})
        assert set(got) == set(tensors) == wanted
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-12)
            np.testing.assert_allclose(tensors[key].numpy(), value, rtol=1e-12)
