"""Shared weights (format.md, version 2): a node's `shares` field makes it use another node's
tensors; both uses add into the one gradient; every way to get it wrong names the node."""

from __future__ import annotations

import json

import numpy as np
import pytest
from wiregrad.core.fileio import dumps

from tests.export_check import compare_numpy, compare_torch
from tests.program_check import check_gradients, document, graph
from wiregrad import core


def _siamese(shares_linear="f1", shares_block="one", out2=3):
    block = graph([("x", "Input", {}), ("fc", "Linear", {"out_features": 2}),
                   ("y", "Output", {})], [("x.y", "fc.x"), ("fc.y", "y.x")])
    doc = document(
        [("a", "Input", {"shape": [3]}), ("b", "Input", {"shape": [3]}),
         ("f1", "Linear", {"out_features": 3}), ("f2", "Linear", {"out_features": out2}),
         ("one", "Block", {"block": "B"}), ("two", "Block", {"block": "B"}),
         ("d", "Sub", {}), ("sq", "Square", {}), ("s", "Sum", {}), ("loss", "Output", {})],
        [("a.y", "f1.x"), ("b.y", "f2.x"), ("f1.y", "one.x"), ("f2.y", "two.x"),
         ("one.y", "d.a"), ("two.y", "d.b"), ("d.y", "sq.x"), ("sq.y", "s.x"),
         ("s.y", "loss.x")], blocks={"B": block})
    doc.graph.node("f2").shares = shares_linear
    doc.graph.node("two").shares = shares_block
    return doc


FEEDS = {"a": np.random.default_rng(0).normal(size=(4, 3)),
         "b": np.random.default_rng(1).normal(size=(4, 3))}


def test_a_sharing_node_uses_the_owners_tensors_and_adds_to_their_gradient():
    program = core.compile(_siamese(), "float64")
    assert program.param_names == ["f1.weight", "f1.bias", "one/fc.weight", "one/fc.bias"]
    params = program.init_params(0)
    check_gradients(program, params, FEEDS)
    # The same numbers as applying the owner twice by hand.
    w, b, v, c = (params[n] for n in program.param_names)
    expected = np.sum(((FEEDS["a"] @ w + b) @ v + c - ((FEEDS["b"] @ w + b) @ v + c)) ** 2)
    assert program.run(params, FEEDS)["loss"] == pytest.approx(expected, rel=1e-12)


def test_shared_weights_export_to_numpy_and_torch(tmp_path):
    doc = _siamese()
    params = core.compile(doc, "float64").init_params(0)
    assert compare_numpy(doc, params, FEEDS, tmp_path) <= 1e-12
    pytest.importorskip("torch")
    assert compare_torch(doc, params, FEEDS, tmp_path) <= 1e-5


def test_shares_is_saved_loaded_and_follows_a_renamed_owner():
    doc = core.loads(dumps(_siamese()))
    assert doc.graph.node("f2").shares == "f1"
    assert '"shares": "f1"' in dumps(doc)
    doc.rename_node((), "f1", "first")
    assert doc.graph.node("f2").shares == "first"
    core.compile(doc)


@pytest.mark.parametrize("node, shares, message", [
    ("f2", "f2", "shares its own tensors"),
    ("f2", "ghost", "not a node of this graph"),
    ("f2", "d", "a Linear can only share the tensors of another Linear"),
])
def test_a_bad_shares_is_an_error_naming_the_node(node, shares, message):
    doc = _siamese()
    doc.graph.node(node).shares = shares
    with pytest.raises(core.GraphError, match=message) as info:
        core.compile(doc)
    assert info.value.node == node


def test_a_node_without_tensors_has_none_to_share():
    doc = document([("x", "Input", {"shape": [2]}), ("t1", "Tanh", {}), ("t2", "Tanh", {}),
                    ("y", "Output", {})], [("x.y", "t1.x"), ("t1.y", "t2.x"), ("t2.y", "y.x")])
    doc.graph.node("t2").shares = "t1"
    with pytest.raises(core.GraphError, match="a Tanh has no tensors to share") as info:
        core.compile(doc)
    assert info.value.node == "t2"


def test_shares_in_a_circle_and_a_shape_mismatch_are_errors_naming_the_node():
    doc = _siamese()
    doc.graph.node("f1").shares = "f2"
    with pytest.raises(core.GraphError, match="circle") as info:
        core.compile(doc)
    assert info.value.node in ("f1", "f2")
    with pytest.raises(core.GraphError, match="same shapes") as info:
        core.compile(_siamese(out2=5))
    assert info.value.node == "f2"


def test_a_block_instance_shares_only_an_instance_of_its_own_block():
    doc = _siamese()
    doc.blocks["C"] = doc.blocks["B"].copy()
    doc.graph.node("two").params["block"] = "C"
    with pytest.raises(core.GraphError, match="instance of block 'B'") as info:
        core.compile(doc)
    assert info.value.node == "two"


def test_a_version_1_file_without_shares_loads_unchanged():
    data = json.loads(dumps(_siamese(None, None)))
    data["version"] = 1
    doc = core.loads(json.dumps(data))
    assert doc.to_dict() == dict(data, version=2)
