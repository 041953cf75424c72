"""The document model: a headless object whose every change is one event.

The editor mirrors a Document by its events and never holds the truth itself, so:
- each edit emits exactly the event that describes it, and an edit that changes nothing emits none;
- remove_node returns what undo needs, and putting those back restores the document exactly;
- renaming a node keeps its edges, and set_param checks values against the node type;
- graph_at reaches loop/branch bodies and block definitions;
- a Document built from scratch, with no Qt anywhere, works; core and nodes never import Qt.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from wiregrad.core.document import (
    Document,
    Edge,
    Event,
    Graph,
    Node,
    Subscription,
    unique_id,
)
from wiregrad.core.fileio import dumps, loads

from wiregrad import core


def build() -> Document:
    """x -> fc -> act -> out, and a repeat loop `rnn` with a carry, built by hand."""
    body = Graph(
        [Node("h", "Input", {"role": "carry"}), Node("cell", "Tanh"),
         Node("h_next", "Output", {"role": "carry", "carry": "h"})],
        [Edge("h", "y", "cell", "x"), Edge("cell", "y", "h_next", "x")])
    graph = Graph(
        [Node("x", "Input", {"shape": [2]}, pos=[0, 0]),
         Node("fc", "Linear", {"out_features": 4}, label="hidden"),
         Node("act", "ReLU"),
         Node("rnn", "Loop", {"mode": "repeat", "count": 3}, bodies={"body": body}),
         Node("out", "Output"),
         Node("final", "Output")],
        [Edge("x", "y", "fc", "x"), Edge("fc", "y", "act", "x"), Edge("act", "y", "out", "x"),
         Edge("act", "y", "rnn", "h"), Edge("rnn", "h_next", "final", "x")])
    block = Graph([Node("bx", "Input"), Node("bf", "Linear", {"out_features": 4}),
                   Node("by", "Output")],
                  [Edge("bx", "y", "bf", "x"), Edge("bf", "y", "by", "x")])
    return Document(graph, name="hand-built", blocks={"Dense": block})


@pytest.fixture
def doc():
    return build()


@pytest.fixture
def events(doc):
    seen: list = []
    doc.subscribe(seen.append)
    return seen


def assert_loadable(doc: Document) -> None:
    """What the document holds can be saved and opened again, unchanged."""
    assert loads(dumps(doc)).to_dict() == doc.to_dict()


# -- a document needs nothing but core ---------------------------------------------------------


def test_a_document_built_from_scratch_in_a_test_works_and_compiles(doc):
    assert_loadable(doc)
    program = core.compile(doc)
    assert set(program.output_shapes) == {"out", "final"}


def test_core_and_nodes_import_no_qt():
    code = ("import wiregrad, wiregrad.nodes, wiregrad.core.cli, wiregrad.core.compiler, sys; "
            "assert not any(m.startswith(('PySide6', 'pyqtgraph', 'shiboken')) "
            "for m in sys.modules), sorted(m for m in sys.modules if 'Qt' in m or 'Side' in m)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


# -- events ------------------------------------------------------------------------------------


def test_add_node_emits_node_added(doc, events):
    doc.add_node((), Node("extra", "Sigmoid"))
    assert events == [Event("node_added", (), "extra")]
    assert doc.graph.nodes[-1].id == "extra"


def test_add_node_at_an_index_puts_it_there(doc, events):
    doc.add_node((), Node("first", "Sigmoid"), index=0)
    assert doc.graph.nodes[0].id == "first"


def test_add_node_inside_a_body_names_the_body(doc, events):
    doc.add_node(("rnn", "body"), Node("extra", "Sigmoid"))
    assert events == [Event("node_added", ("rnn", "body"), "extra")]
    assert doc.graph_at(("rnn", "body")).node("extra") is not None


@pytest.mark.parametrize("node, words", [
    (Node("fc", "ReLU"), "exists already"),
    (Node("1bad", "ReLU"), "not a valid node id"),
    (Node("ok", "NoSuchType"), "unknown node type"),
])
def test_add_node_refuses_what_the_file_could_not_hold(doc, events, node, words):
    with pytest.raises(core.GraphError, match=words):
        doc.add_node((), node)
    assert events == []
    assert_loadable(doc)


def test_move_node_emits_node_moved_with_the_position(doc, events):
    doc.move_node((), "fc", (10.0, 20.5))
    assert events == [Event("node_moved", (), "fc", [10, 20.5])]
    assert doc.graph.node("fc").pos == [10, 20.5]


def test_moving_a_node_where_it_is_emits_nothing(doc, events):
    doc.move_node((), "x", (0, 0))
    doc.move_node((), "act", None)
    assert events == []


def test_set_param_emits_param_changed_naming_the_param(doc, events):
    doc.set_param((), "fc", "out_features", 8)
    assert events == [Event("param_changed", (), "fc", "out_features")]
    assert doc.graph.node("fc").params["out_features"] == 8


def test_setting_a_param_to_its_current_value_emits_nothing(doc, events):
    doc.set_param((), "fc", "out_features", 4)
    assert events == []


def test_set_param_none_removes_it_so_the_default_applies(doc, events):
    doc.set_param((), "fc", "bias", False)
    doc.set_param((), "fc", "bias", None)
    assert "bias" not in doc.graph.node("fc").params
    assert [e.kind for e in events] == ["param_changed", "param_changed"]
    doc.set_param((), "fc", "bias", None)  # already absent
    assert len(events) == 2


def test_set_param_stores_the_canonical_value(doc):
    doc.set_param((), "fc", "out_features", 8.0)
    assert doc.graph.node("fc").params["out_features"] == 8
    assert isinstance(doc.graph.node("fc").params["out_features"], int)


@pytest.mark.parametrize("name, value, words", [
    ("out_features", 0, "at least"),
    ("out_features", "many", "whole number"),
    ("out_features", 2.5, "whole number"),
    ("bias", "yes", "true or false"),
    ("colour", "red", "no parameter 'colour'"),
])
def test_set_param_checks_values_and_names_the_node(doc, events, name, value, words):
    with pytest.raises(core.GraphError, match=words) as info:
        doc.set_param((), "fc", name, value)
    assert info.value.node == "fc"
    assert events == []
    assert doc.graph.node("fc").params == {"out_features": 4}


def test_set_param_does_not_keep_a_reference_to_the_callers_value(doc):
    shape = [3]
    doc.set_param((), "x", "shape", shape)
    shape.append(99)
    assert doc.graph.node("x").params["shape"] == [3]


def test_set_label_emits_label_changed_and_nothing_when_unchanged(doc, events):
    doc.set_label((), "act", "non-linearity")
    doc.set_label((), "act", "non-linearity")
    assert events == [Event("label_changed", (), "act", "non-linearity")]


def test_add_edge_and_remove_edge_emit_their_events(doc, events):
    doc.remove_edge((), Edge("act", "y", "out", "x"))
    doc.add_edge((), Edge("fc", "y", "out", "x"))
    assert events == [Event("edge_removed", (), "out", Edge("act", "y", "out", "x")),
                      Event("edge_added", (), "out", Edge("fc", "y", "out", "x"))]


def test_an_input_takes_one_edge(doc, events):
    with pytest.raises(core.GraphError, match="already has an edge") as info:
        doc.add_edge((), Edge("x", "y", "act", "x"))
    assert info.value.node == "act"
    assert events == []


def test_removing_an_edge_that_is_not_there_is_a_graph_error(doc, events):
    with pytest.raises(core.GraphError, match="no edge"):
        doc.remove_edge((), Edge("x", "y", "out", "x"))
    assert events == []


def test_set_name_emits_once_and_not_when_unchanged(doc, events):
    doc.set_name("renamed")
    doc.set_name("renamed")
    assert events == [Event("name_changed", data="renamed")]


def test_set_training_emits_once_and_not_when_unchanged(doc, events):
    doc.set_training({"epochs": 2})
    doc.set_training({"epochs": 2})
    doc.set_training(None)
    doc.set_training(None)
    assert [e.kind for e in events] == ["training_changed", "training_changed"]


def test_set_ui_emits_once_and_not_when_unchanged(doc, events):
    doc.set_ui("comments", [{"text": "hi"}])
    doc.set_ui("comments", [{"text": "hi"}])
    doc.set_ui("comments", None)
    doc.set_ui("comments", None)
    assert events == [Event("ui_changed", data="comments"), Event("ui_changed", data="comments")]
    assert "comments" not in doc.ui


def test_set_block_adds_replaces_and_removes_and_returns_the_old_definition(doc, events):
    new = Graph([Node("i", "Input"), Node("o", "Output")], [Edge("i", "y", "o", "x")])
    assert doc.set_block("Other", new) is None
    old = doc.blocks["Dense"]
    assert doc.set_block("Dense", new.copy()) is old
    assert doc.set_block("Other", None) is new
    assert events == [Event("block_changed", ("@Other",), None, "Other"),
                      Event("block_changed", ("@Dense",), None, "Dense"),
                      Event("block_changed", ("@Other",), None, "Other")]
    assert set(doc.blocks) == {"Dense"}


def test_set_block_emits_nothing_when_nothing_changes(doc, events):
    doc.set_block("Absent", None)
    doc.set_block("Dense", doc.blocks["Dense"].copy())
    assert events == []


def test_replace_with_takes_the_other_content_and_emits_reset(doc, events):
    other = Document(Graph([Node("only", "Input", {"shape": [1]})]), name="other")
    doc.replace_with(other)
    assert events == [Event("reset")]
    assert doc.name == "other" and [n.id for n in doc.graph.nodes] == ["only"]


def test_every_edit_bumps_the_revision_and_a_no_op_does_not(doc):
    start = doc.revision
    doc.move_node((), "x", (0, 0))
    assert doc.revision == start
    doc.move_node((), "x", (1, 0))
    assert doc.revision == start + 1


def test_unsubscribed_listeners_hear_nothing_more(doc):
    seen: list = []
    doc.subscribe(seen.append)
    doc.set_name("a")
    doc.unsubscribe(seen.append)
    doc.set_name("b")
    assert len(seen) == 1


def test_a_subscription_hears_only_the_document_it_follows_now(doc):
    seen: list = []
    listening = Subscription(seen.append)
    listening.follow(doc)
    doc.set_name("a")
    other = Document()
    listening.follow(other)
    doc.set_name("b")              # the old document: no longer heard
    other.set_name("c")
    listening.follow(other)        # following it again does not hear it twice
    other.set_name("d")
    assert [event.data for event in seen] == ["a", "c", "d"]


# -- remove, and put back ----------------------------------------------------------------------


def test_remove_node_emits_its_edges_removed_then_the_node(doc, events):
    doc.remove_node((), "act")
    assert [e.kind for e in events] == ["edge_removed", "edge_removed", "edge_removed",
                                        "node_removed"]
    assert events[-1] == Event("node_removed", (), "act")
    assert doc.graph.node("act") is None
    assert not doc.graph.edges_of("act")


@pytest.mark.parametrize("ref, node_id", [((), "act"), ((), "x"), ((), "rnn"),
                                          (("rnn", "body"), "cell"), (("@Dense",), "bf")])
def test_putting_back_what_remove_node_returns_restores_the_document_exactly(doc, ref, node_id):
    before = doc.to_dict()
    node, index, edges = doc.remove_node(ref, node_id)
    assert doc.to_dict() != before
    doc.add_node(ref, node, index)
    for edge_index, edge in edges:
        doc.add_edge(ref, edge, edge_index)
    assert doc.to_dict() == before


def test_removing_a_missing_node_names_it(doc, events):
    with pytest.raises(core.GraphError, match="no node 'ghost'") as info:
        doc.remove_node(("rnn", "body"), "ghost")
    assert info.value.node == "rnn/ghost"
    assert events == []


# -- rename ------------------------------------------------------------------------------------


def test_rename_node_keeps_its_edges_and_emits_node_renamed(doc, events):
    doc.rename_node((), "act", "relu1")
    assert events == [Event("node_renamed", (), "relu1", "act")]
    assert doc.graph.node("act") is None
    assert Edge("fc", "y", "relu1", "x") in doc.graph.edges
    assert Edge("relu1", "y", "out", "x") in doc.graph.edges
    assert Edge("relu1", "y", "rnn", "h") in doc.graph.edges
    assert_loadable(doc)


def test_renaming_to_the_same_id_emits_nothing(doc, events):
    doc.rename_node((), "act", "act")
    assert events == []


@pytest.mark.parametrize("new, words", [("fc", "exists already"), ("2x", "not a valid node id"),
                                        ("a b", "not a valid node id")])
def test_rename_node_refuses_taken_and_invalid_ids(doc, events, new, words):
    before = doc.to_dict()
    with pytest.raises(core.GraphError, match=words):
        doc.rename_node((), "act", new)
    assert events == [] and doc.to_dict() == before


def test_renaming_a_loop_body_input_renames_the_loops_port_and_its_carry_output(doc):
    doc.rename_node(("rnn", "body"), "h", "state")
    body = doc.graph_at(("rnn", "body"))
    assert body.node("h_next").params["carry"] == "state"
    assert Edge("act", "y", "rnn", "state") in doc.graph.edges
    assert_loadable(doc)


def test_renaming_a_loop_body_output_renames_the_loops_output_port(doc):
    doc.rename_node(("rnn", "body"), "h_next", "h_after")
    assert Edge("rnn", "h_after", "final", "x") in doc.graph.edges
    assert_loadable(doc)


def test_renaming_a_block_input_renames_the_port_on_every_instance(doc):
    doc.add_node((), Node("d1", "Block", {"block": "Dense"}))
    doc.add_node((), Node("d2", "Block", {"block": "Dense"}))
    doc.add_edge((), Edge("x", "y", "d1", "bx"))
    doc.add_edge((), Edge("d1", "by", "d2", "bx"))
    doc.rename_node(("@Dense",), "bx", "inp")
    assert Edge("x", "y", "d1", "inp") in doc.graph.edges
    assert Edge("d1", "by", "d2", "inp") in doc.graph.edges
    assert_loadable(doc)


def test_renaming_an_input_both_branch_sides_share_moves_the_wire_to_the_new_port():
    side = Graph([Node("h", "Input"), Node("act", "Tanh"), Node("o", "Output")],
                 [Edge("h", "y", "act", "x"), Edge("act", "y", "o", "x")])
    other = Graph([Node("h", "Input"), Node("o", "Output")], [Edge("h", "y", "o", "x")])
    graph = Graph([Node("x", "Input"), Node("c", "Input"),
                   Node("gate", "Branch", bodies={"then": side, "else": other}),
                   Node("out", "Output")],
                  [Edge("x", "y", "gate", "h"), Edge("c", "y", "gate", "cond"),
                   Edge("gate", "o", "out", "x")])
    doc = Document(graph)
    before = doc.to_dict()
    doc.rename_node(("gate", "then"), "h", "state")
    assert doc.graph_at(("gate", "else")).node("state") is not None   # one port, both sides
    assert doc.ports(doc.graph.node("gate")) == (("cond", "state"), ("o",))
    assert Edge("x", "y", "gate", "state") in doc.graph.edges
    assert not any(e.dst_port == "h" for e in doc.graph.edges)
    doc.rename_node(("gate", "else"), "o", "result")                  # an Output too
    assert doc.graph_at(("gate", "then")).node("result") is not None
    assert Edge("gate", "result", "out", "x") in doc.graph.edges
    assert_loadable(doc)
    doc.rename_node(("gate", "else"), "result", "o")
    doc.rename_node(("gate", "then"), "state", "h")
    assert doc.to_dict() == before


def test_renaming_back_undoes_a_rename_exactly(doc):
    before = doc.to_dict()
    doc.rename_node(("rnn", "body"), "h", "state")
    doc.rename_node(("rnn", "body"), "state", "h")
    assert doc.to_dict() == before


# -- graph references --------------------------------------------------------------------------


def test_graph_at_reaches_the_top_graph_bodies_and_block_definitions(doc):
    assert doc.graph_at(()) is doc.graph
    assert doc.graph_at(("rnn", "body")) is doc.graph.node("rnn").bodies["body"]
    assert doc.graph_at(["rnn", "body"]) is doc.graph.node("rnn").bodies["body"]
    assert doc.graph_at(("@Dense",)) is doc.blocks["Dense"]


def test_graph_at_reaches_branch_sides_and_bodies_inside_block_definitions():
    side = Graph([Node("i", "Input"), Node("o", "Output")], [Edge("i", "y", "o", "x")])
    branch = Node("gate", "Branch", bodies={"then": side, "else": side.copy()})
    doc = Document(blocks={"B": Graph([branch])})
    assert doc.graph_at(("@B", "gate", "else")) is branch.bodies["else"]
    assert doc.node_at(("@B", "gate", "then"), "o").type == "Output"


@pytest.mark.parametrize("ref, words", [
    (("@Nope",), "no block named 'Nope'"),
    (("rnn",), "alternate"),
    (("rnn", "then"), "no body 'then'"),
    (("ghost", "body"), "no body 'body' in node 'ghost'"),
])
def test_graph_at_a_reference_to_nothing_is_a_graph_error(doc, ref, words):
    with pytest.raises(core.GraphError, match=words):
        doc.graph_at(ref)


def test_ports_come_from_the_type_or_from_the_bodies(doc):
    assert doc.ports(doc.graph.node("fc")) == (("x",), ("y",))
    assert doc.ports(doc.graph.node("rnn")) == (("h",), ("h_next",))
    assert doc.ports(Node("d", "Block", {"block": "Dense"})) == (("bx",), ("by",))


# -- copies ------------------------------------------------------------------------------------


def test_copy_is_independent_of_the_original_and_has_no_listeners(doc, events):
    doc.set_training({"epochs": 1, "optimizer": {"type": "adam"}})
    doc.set_ui("view", [0, 0, 10, 10])
    events.clear()
    twin = doc.copy()
    assert twin.to_dict() == doc.to_dict()

    twin.set_param((), "fc", "out_features", 99)
    twin.rename_node(("rnn", "body"), "cell", "cell2")
    twin.blocks["Dense"].nodes.clear()
    twin.training["optimizer"]["type"] = "sgd"
    twin.ui["view"][0] = 5
    twin.graph.node("x").params["shape"].append(7)

    assert events == []
    assert doc.graph.node("fc").params["out_features"] == 4
    assert doc.graph_at(("rnn", "body")).node("cell") is not None
    assert doc.blocks["Dense"].nodes
    assert doc.training["optimizer"]["type"] == "adam"
    assert doc.ui["view"] == [0, 0, 10, 10]
    assert doc.graph.node("x").params["shape"] == [2]


def test_to_dict_is_a_copy_not_a_view(doc):
    data = doc.to_dict()
    data["graph"]["nodes"][1]["params"]["out_features"] = 1
    data["graph"]["nodes"][0]["pos"][0] = 99
    assert doc.graph.node("fc").params["out_features"] == 4
    assert doc.graph.node("x").pos == [0, 0]


def test_to_dict_leaves_out_what_is_not_set():
    doc = Document(Graph([Node("a", "ReLU")]))
    assert doc.to_dict() == {"format": "wiregrad.graph", "version": 2,
                             "graph": {"nodes": [{"id": "a", "type": "ReLU"}], "edges": []}}
    assert json.loads(dumps(doc)) == doc.to_dict()


# -- ids ---------------------------------------------------------------------------------------


def test_unique_id_numbers_a_taken_id_and_replaces_an_invalid_one(doc):
    assert unique_id(doc.graph, "new") == "new"
    assert unique_id(doc.graph, "fc") == "fc_2"
    doc.add_node((), Node("fc_2", "ReLU"))
    assert unique_id(doc.graph, "fc") == "fc_3"
    assert unique_id(doc.graph, "fc_2") == "fc_3"
    assert unique_id(doc.graph, "3 bad") == "node"
