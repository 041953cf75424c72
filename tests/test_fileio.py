"""Reading and writing `.wg.json` files, as format.md says.

- Every example of the spec loads, and saving it unchanged writes back the very same bytes.
- An edited document saved and loaded again is the edited document; `ui` is kept verbatim.
- Saving is atomic: a crash mid-save leaves the old file whole and no temporary file behind,
  and the failure is a SaveError naming the file (tests/test_atomic_save.py says the rest).
- Every way a file can be wrong is a GraphError that names the node (where there is one) and
  says what to do about it.
- Former names of a node type keep loading, under the current name.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from wiregrad.core.document import Edge, Node
from wiregrad.core.fileio import SaveError, dumps, loads
from wiregrad.core.trainer import Session

from wiregrad import core, nodes

EXAMPLES = Path(__file__).parents[2] / "shared" / "spec" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.wg.json")) if EXAMPLES.is_dir() else []

needs_examples = pytest.mark.skipif(not EXAMPLE_FILES, reason=f"no spec examples in {EXAMPLES}")


def example_param(path: Path):
    return pytest.param(path, id=path.name.removesuffix(".wg.json"))


# -- documents to start from ------------------------------------------------------------------


def node(node_id: str, type_name: str, **params) -> dict:
    out = {"id": node_id, "type": type_name}
    if params:
        out["params"] = params
    return out


def edge(src: str, dst: str) -> dict:
    return {"from": src, "to": dst}


def document(nodes_: list, edges: list = (), **top) -> dict:
    return {"format": "wiregrad.graph", "version": 2,
            "graph": {"nodes": list(nodes_), "edges": list(edges)}, **top}


def mlp() -> dict:
    """x -> fc -> act -> out: a small valid document to break in one place at a time."""
    return document(
        [node("x", "Input", shape=[2]), node("fc", "Linear", out_features=4),
         node("act", "ReLU"), node("out", "Output")],
        [edge("x.y", "fc.x"), edge("fc.y", "act.x"), edge("act.y", "out.x")],
        name="tiny", ui={"view": [0, 0, 100, 100]})


def loop_doc(mode: str, body_nodes: list, body_edges: list = ()) -> dict:
    loop = {"id": "L", "type": "Loop", "params": {"mode": mode},
            "body": {"nodes": body_nodes, "edges": list(body_edges)}}
    return document([loop])


def load_error(data) -> core.GraphError:
    """The GraphError that loading this document (a dict, or raw text) raises."""
    text = data if isinstance(data, (str, bytes)) else json.dumps(data)
    with pytest.raises(core.GraphError) as info:
        loads(text)
    return info.value


# -- round trips ------------------------------------------------------------------------------


@needs_examples
@pytest.mark.parametrize("path", [example_param(p) for p in EXAMPLE_FILES])
def test_every_spec_example_loads_and_saves_back_as_version_2_changing_nothing_else(
        path, tmp_path):
    doc = core.load(path)
    assert doc.path == str(path)
    assert doc.graph.nodes, "an example has nodes"
    copy_path = tmp_path / path.name
    core.save(doc, copy_path)
    written, read = copy_path.read_text(encoding="utf-8"), path.read_text(encoding="utf-8")
    assert written == read.replace('"version": 1,', '"version": 2,', 1)
    core.save(core.load(copy_path), copy_path)  # a version-2 file is written back as it was
    assert copy_path.read_text(encoding="utf-8") == written


@needs_examples
@pytest.mark.parametrize("path", [example_param(p) for p in EXAMPLE_FILES])
def test_every_spec_example_reads_as_the_plain_json_it_is(path):
    doc = core.load(path)
    assert doc.to_dict() == dict(json.loads(path.read_text(encoding="utf-8")), version=2)


def test_a_version_1_file_loads_and_means_what_it_meant():
    version_1 = dict(mlp(), version=1)
    doc = loads(json.dumps(version_1))
    assert doc.to_dict() == mlp()  # the same document, written as version 2


def test_an_edited_document_saved_and_loaded_again_is_the_edited_one(tmp_path):
    doc = loads(json.dumps(mlp()))
    doc.add_node((), Node("extra", "Tanh", label='a "quoted" label, ünïcode ✓', pos=[1.5, -2]))
    doc.add_edge((), Edge("act", "y", "extra", "x"))
    doc.set_param((), "fc", "out_features", 8)
    doc.move_node((), "fc", (10, 20))
    doc.set_name("tiny, edited")
    doc.set_training({"epochs": 3, "batch_size": 4})
    path = tmp_path / "edited.wg.json"
    core.save(doc, path)
    again = core.load(path)
    assert again.to_dict() == doc.to_dict()
    assert again.graph.node("extra").label == 'a "quoted" label, ünïcode ✓'
    assert doc.path == str(path)


def test_saving_unchanged_after_an_edit_and_its_undo_still_gives_a_loadable_file(tmp_path):
    doc = loads(json.dumps(mlp()))
    doc.move_node((), "fc", (5, 5))
    doc.move_node((), "fc", None)
    path = tmp_path / "a.wg.json"
    core.save(doc, path)
    assert core.load(path).to_dict() == mlp()


def test_an_edit_undone_saves_the_file_s_own_bytes_whatever_their_order():
    # Hand-written, not in the order Save writes: undoing back to it must not reorder the file.
    text = json.dumps(mlp(), indent=1, sort_keys=True) + "\n"
    doc = loads(text)
    label = doc.graph.node("fc").label
    doc.set_label((), "fc", "changed")
    assert dumps(doc) != text
    doc.set_label((), "fc", label)
    assert dumps(doc) == text


def test_a_section_changed_in_place_by_a_script_is_saved(tmp_path):
    path = tmp_path / "a.wg.json"
    path.write_text(json.dumps({**mlp(), "name": "before"}), encoding="utf-8")
    doc = core.load(path)
    doc.ui["note"] = "kept"  # no revision bump: the API allows it, Save must not lose it  # no revision bump: the API allows it, Save must not lose it
    core.save(doc, path)
    assert core.load(path).ui["note"] == "kept"


def test_saved_text_is_indented_json_with_a_final_newline():
    doc = loads(json.dumps(mlp()))
    doc.set_name("renamed")  # an edit, so the text is written afresh
    text = dumps(doc)
    assert text.endswith("}\n")
    assert text.startswith('{\n  "format": "wiregrad.graph",\n  "version": 2,')
    assert json.loads(text) == doc.to_dict()


def test_text_is_written_as_utf8_not_as_escapes(tmp_path):
    doc = loads(json.dumps(mlp()))
    doc.set_label((), "fc", "couche cachée ✓")
    path = tmp_path / "u.wg.json"
    core.save(doc, path)
    assert "couche cachée ✓" in path.read_text(encoding="utf-8")


def test_ui_section_is_kept_verbatim_including_keys_the_editor_does_not_know(tmp_path):
    ui = {"view": [0, 0, 800, 600], "comments": [{"text": "hi", "pos": [1, 2]}],
          "some_future_key": {"nested": [1, "two", None, True, 3.25]}}
    data = dict(mlp(), ui=ui)
    text = json.dumps(data, indent=2) + "\n"
    doc = loads(text)
    assert doc.ui == ui
    # edited elsewhere, ui still goes back out as it came in
    doc.move_node((), "act", (3, 4))
    path = tmp_path / "ui.wg.json"
    core.save(doc, path)
    assert json.loads(path.read_text(encoding="utf-8"))["ui"] == ui


def test_a_byte_order_mark_does_not_stop_a_file_from_loading(tmp_path):
    path = tmp_path / "bom.wg.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(mlp()).encode("utf-8"))
    assert core.load(path).to_dict() == mlp()


# -- atomic save ------------------------------------------------------------------------------


def test_a_crash_mid_save_leaves_the_old_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.wg.json"
    doc = loads(json.dumps(mlp()))
    core.save(doc, path)
    before = path.read_bytes()

    doc.set_name("new name that must not reach the disk")

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(SaveError, match="simulated") as info:
        core.save(doc, path)
    monkeypatch.undo()
    assert str(path) in str(info.value)

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.wg.json"]
    # and the document still knows it has unsaved changes: saving now writes them
    core.save(doc, path)
    assert core.load(path).name == "new name that must not reach the disk"


def test_a_crash_while_writing_the_temporary_file_leaves_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "model.wg.json"
    path.write_text("old content", encoding="utf-8")

    def crash(fd):
        raise OSError("power cut (simulated)")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(SaveError, match="simulated"):
        core.save(loads(json.dumps(mlp())), path)
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["model.wg.json"]


def test_save_to_a_new_file_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    core.save(loads(json.dumps(mlp())), "here.wg.json")
    assert core.load("here.wg.json").to_dict() == mlp()


ASSETS = Path(__file__).parents[1] / "assets"


def test_saved_into_another_folder_a_document_still_reads_its_data_file(tmp_path):
    doc = core.load(ASSETS / "examples" / "iris-csv.wg.json")       # "../data/iris.csv"
    elsewhere = tmp_path / "projects" / "iris.wg.json"
    elsewhere.parent.mkdir()
    core.save(doc, elsewhere)
    saved = core.load(elsewhere)
    path = saved.training["dataset"]["path"]
    assert not os.path.isabs(path) and "\\" not in path
    assert (tmp_path / "projects" / path).resolve() == (ASSETS / "data" / "iris.csv").resolve()
    assert doc.training == saved.training                           # the open one says it too
    assert Session(saved).train_feeds                               # and trains from it


def test_saved_in_its_own_folder_or_with_generated_data_the_section_is_untouched(tmp_path):
    doc = core.load(ASSETS / "examples" / "iris-csv.wg.json")
    doc.folder = str(tmp_path)                  # as if it had been opened from there
    core.save(doc, tmp_path / "iris.wg.json")
    assert doc.training["dataset"]["path"] == "../data/iris.csv"
    spiral = core.load(ASSETS / "examples" / "spiral-mlp.wg.json")
    before = copy.deepcopy(spiral.training)
    core.save(spiral, tmp_path / "s.wg.json")
    assert spiral.training == before


def test_a_failed_save_into_another_folder_leaves_the_data_path_as_it_was(tmp_path, monkeypatch):
    doc = core.load(ASSETS / "examples" / "iris-csv.wg.json")

    def refuse(*args, **kwargs):
        raise SaveError(args[0], None, "simulated")

    monkeypatch.setattr("wiregrad.core.fileio.atomic_write", refuse)
    with pytest.raises(SaveError):
        core.save(doc, tmp_path / "iris.wg.json")
    assert doc.training["dataset"]["path"] == "../data/iris.csv"
    assert doc.folder == str((ASSETS / "examples").resolve())


# -- load errors: the file as a whole ---------------------------------------------------------


def test_bad_json_says_where():
    error = load_error('{\n  "format": "wiregrad.graph",\n  "version": 1,\n  "graph": {,}\n}')
    assert "not valid JSON" in str(error)
    assert "line 4" in str(error) and "column" in str(error)
    assert error.node is None


def test_a_missing_file_is_a_graph_error_naming_the_file(tmp_path):
    with pytest.raises(core.GraphError, match="no such file") as info:
        core.load(tmp_path / "absent.wg.json")
    assert "absent.wg.json" in str(info.value)


def test_text_that_is_not_utf8_is_a_graph_error():
    assert "UTF-8" in str(load_error(b'{"format": "\xff"}'))


def test_nan_is_not_json():
    text = json.dumps(mlp()).replace('"out_features": 4', '"out_features": NaN')
    assert "NaN" in str(load_error(text))


def test_a_key_given_twice_is_an_error_rather_than_silently_one_of_them():
    text = '{"format": "wiregrad.graph", "version": 1, "version": 2, "graph": {"nodes": [], "edges": []}}'
    assert "'version' appears twice" in str(load_error(text))


@pytest.mark.parametrize("text", ["[]", "3", '"a string"', "null"])
def test_a_document_is_a_json_object(text):
    assert "JSON object" in str(load_error(text))


def test_another_format_is_refused_naming_both():
    message = str(load_error(dict(mlp(), format="something.else")))
    assert "something.else" in message and "wiregrad.graph" in message


def test_a_newer_version_is_refused_naming_both_versions():
    message = str(load_error(dict(mlp(), version=7)))
    assert "version 7" in message and "version 2" in message
    assert "update" in message.lower()


def test_a_missing_version_is_refused_saying_what_to_add():
    data = mlp()
    del data["version"]
    message = str(load_error(data))
    assert "'version'" in message and '"version": 2' in message


@pytest.mark.parametrize("version", [0, -1, 1.5, "1", True, None])
def test_a_version_that_is_not_a_whole_number_from_1_is_refused(version):
    assert "'version'" in str(load_error(dict(mlp(), version=version)))


def test_an_unknown_top_level_key_is_named():
    error = load_error(dict(mlp(), colour="blue"))
    assert "'colour'" in str(error) and "top level" in str(error)


@pytest.mark.parametrize("key, value, words", [
    ("graph", [], "graph"),
    ("name", 3, "'name'"),
    ("blocks", [], "'blocks'"),
    ("training", "fast", "'training'"),
    ("ui", [1], "'ui'"),
])
def test_sections_of_the_wrong_json_type_are_named(key, value, words):
    assert words in str(load_error(dict(mlp(), **{key: value})))


def test_a_graph_with_an_unknown_key_is_named():
    data = mlp()
    data["graph"]["wires"] = []
    assert "'wires'" in str(load_error(data))


# -- load errors: nodes -----------------------------------------------------------------------


def test_an_unknown_node_key_names_the_node_and_the_key():
    data = mlp()
    data["graph"]["nodes"][1]["colour"] = "red"
    error = load_error(data)
    assert error.node == "fc"
    assert "'colour'" in str(error)


def test_an_unknown_node_type_names_the_node_and_suggests_a_close_type():
    data = mlp()
    data["graph"]["nodes"][1]["type"] = "Linaer"
    error = load_error(data)
    assert error.node == "fc"
    assert "'Linaer'" in str(error) and "'Linear'" in str(error)


def test_an_unknown_parameter_names_the_node_and_the_parameter():
    data = mlp()
    data["graph"]["nodes"][1]["params"]["out_featurs"] = 3
    error = load_error(data)
    assert error.node == "fc"
    assert "'out_featurs'" in str(error) and "out_features" in str(error)


@pytest.mark.parametrize("bad_id", ["1fc", "fc-1", "", "f c", "@fc", 3, None])
def test_a_bad_node_id_says_what_an_id_may_be(bad_id):
    data = mlp()
    data["graph"]["nodes"][1]["id"] = bad_id
    message = str(load_error(data))
    assert "graph.nodes[1]" in message and "letters, digits" in message


def test_duplicate_ids_name_the_node():
    data = mlp()
    data["graph"]["nodes"][2]["id"] = "fc"
    error = load_error(data)
    assert error.node == "fc"
    assert "unique" in str(error)


@pytest.mark.parametrize("field, value", [("label", 5), ("pos", [1]), ("pos", [1, "2"]),
                                          ("pos", "0,0"), ("params", [1]), ("type", 5)])
def test_node_fields_of_the_wrong_type_name_the_node(field, value):
    data = mlp()
    data["graph"]["nodes"][1][field] = value
    error = load_error(data)
    assert error.node == "fc"
    assert repr(field) in str(error)


def test_a_loop_without_a_body_names_the_loop():
    error = load_error(document([node("L", "Loop")]))
    assert error.node == "L"
    assert "'body'" in str(error)


def test_a_branch_without_its_else_names_the_branch():
    error = load_error(document([{"id": "g", "type": "Branch",
                                  "then": {"nodes": [], "edges": []}}]))
    assert error.node == "g"
    assert "'else'" in str(error)


def test_a_body_on_a_node_that_has_none_is_named():
    data = mlp()
    data["graph"]["nodes"][1]["body"] = {"nodes": [], "edges": []}
    error = load_error(data)
    assert error.node == "fc"
    assert "'body'" in str(error)


# -- load errors: edges -----------------------------------------------------------------------


def test_an_unknown_input_port_names_the_node_and_lists_its_inputs():
    data = mlp()
    data["graph"]["edges"][0]["to"] = "fc.input"
    error = load_error(data)
    assert error.node == "fc"
    assert "no input port 'input'" in str(error) and "x" in str(error)


def test_an_unknown_output_port_names_the_node_and_lists_its_outputs():
    data = mlp()
    data["graph"]["edges"][0]["from"] = "x.out"
    error = load_error(data)
    assert error.node == "x"
    assert "no output port 'out'" in str(error) and "y" in str(error)


def test_an_edge_from_a_missing_node_names_the_node_it_reaches():
    data = mlp()
    data["graph"]["edges"][1]["from"] = "ghost.y"
    error = load_error(data)
    assert error.node == "act"
    assert "missing node 'ghost'" in str(error)


def test_an_edge_into_a_missing_node_names_the_node_it_leaves():
    data = mlp()
    data["graph"]["edges"][1]["to"] = "ghost.x"
    error = load_error(data)
    assert error.node == "fc"
    assert "missing node 'ghost'" in str(error)


@pytest.mark.parametrize("bad_edge", [
    {"from": "x.y"}, {"from": "x.y", "to": "fc.x", "colour": "red"}, "x.y -> fc.x",
    {"from": "x", "to": "fc.x"}, {"from": "x.y", "to": 3}, {"from": "x.y.z", "to": "fc.x"},
])
def test_a_malformed_edge_says_what_an_edge_is(bad_edge):
    data = mlp()
    data["graph"]["edges"][0] = bad_edge
    message = str(load_error(data))
    assert "graph.edges[0]" in message
    assert "node.port" in message or "'colour'" in message


def test_two_edges_into_one_input_name_the_node_and_both_sources():
    data = document(
        [node("x", "Input", shape=[2]), node("z", "Input", shape=[2]), node("a", "ReLU")],
        [edge("x.y", "a.x"), edge("z.y", "a.x")])
    error = load_error(data)
    assert error.node == "a"
    assert "x.y" in str(error) and "z.y" in str(error) and "takes one" in str(error)


def test_a_cycle_names_the_nodes_along_it_and_says_to_use_a_loop():
    data = document(
        [node("a", "ReLU"), node("b", "Tanh"), node("c", "ReLU"), node("d", "Tanh")],
        [edge("a.y", "b.x"), edge("b.y", "c.x"), edge("c.y", "a.x"), edge("c.y", "d.x")])
    error = load_error(data)
    assert error.node in {"a", "b", "c"}
    for name in ("a", "b", "c"):
        assert name in str(error)
    assert "d" not in str(error).split("(")[1].split(")")[0]
    assert "Loop" in str(error)


def test_a_self_edge_names_the_node():
    error = load_error(document([node("a", "ReLU")], [edge("a.y", "a.x")]))
    assert error.node == "a"
    assert "itself" in str(error)


def test_several_problems_are_all_reported_each_naming_its_node():
    data = document(
        [node("a", "ReLU"), node("b", "Tanh"), node("c", "ReLU")],
        [edge("a.y", "a.x"), edge("b.nope", "c.x")])
    error = load_error(data)
    assert {e.node for e in error.errors} == {"a", "b"}
    assert "1 more problem" in str(error)


# -- load errors: loop, branch and block rules ------------------------------------------------


def test_a_carry_input_without_its_output_names_the_input_inside_the_loop():
    error = load_error(loop_doc("repeat", [node("h", "Input", role="carry")]))
    assert error.node == "L/h"
    assert "carry Output" in str(error) and "carry = 'h'" in str(error)


def test_a_carry_output_naming_a_non_carry_input_names_the_output():
    error = load_error(loop_doc(
        "repeat", [node("h", "Input"), node("o", "Output", role="carry", carry="h")],
        [edge("h.y", "o.x")]))
    assert error.node == "L/o"
    assert "'h'" in str(error) and "not a carry Input" in str(error)


def test_a_carry_output_naming_something_that_is_not_an_id_is_still_a_graph_error():
    error = load_error(loop_doc(
        "repeat", [node("h", "Input", role="carry"), node("o", "Output", role="carry", carry=["h"])],
        [edge("h.y", "o.x")]))
    assert "L/o" in {e.node for e in error.errors}


def test_two_carry_outputs_for_one_carry_input_name_the_second():
    error = load_error(loop_doc(
        "repeat", [node("h", "Input", role="carry"), node("o1", "Output", role="carry", carry="h"),
                   node("o2", "Output", role="carry", carry="h")],
        [edge("h.y", "o1.x"), edge("h.y", "o2.x")]))
    assert error.node == "L/o2"
    assert "already" in str(error)


def test_a_continue_output_outside_a_while_loop_names_the_output():
    error = load_error(loop_doc("repeat", [node("h", "Input"), node("o", "Output", role="continue")],
                                [edge("h.y", "o.x")]))
    assert error.node == "L/o"
    assert "while" in str(error)


def test_a_continue_output_in_the_top_graph_names_the_output():
    error = load_error(document([node("o", "Output", role="continue")]))
    assert error.node == "o"
    assert "Loop" in str(error)


def test_a_while_loop_without_a_continue_output_names_the_loop():
    error = load_error(loop_doc("while", [node("h", "Input"), node("o", "Output")],
                                [edge("h.y", "o.x")]))
    assert error.node == "L"
    assert "continue" in str(error)


def test_a_sequence_input_outside_a_scan_names_the_input():
    error = load_error(loop_doc("repeat", [node("s", "Input", role="sequence"), node("o", "Output")],
                                [edge("s.y", "o.x")]))
    assert error.node == "L/s"
    assert "scan" in str(error)


def test_errors_inside_nested_bodies_carry_the_whole_path():
    inner = {"id": "M", "type": "Loop",
             "body": {"nodes": [node("h", "Input", role="carry")], "edges": []}}
    error = load_error(document([{"id": "L", "type": "Loop",
                                  "body": {"nodes": [inner], "edges": []}}]))
    assert error.node == "L/M/h"


def test_mismatched_branch_outputs_name_the_branch_and_both_sets_of_ids():
    data = document([{"id": "g", "type": "Branch",
                      "then": {"nodes": [node("a", "Output")], "edges": []},
                      "else": {"nodes": [node("b", "Output")], "edges": []}}])
    error = load_error(data)
    assert error.node == "g"
    assert "then: a" in str(error) and "else: b" in str(error)


def blocks_doc(blocks: dict) -> dict:
    return document([node("b", "Block", block="A")],
                    blocks={name: {"nodes": nodes_, "edges": []} for name, nodes_ in blocks.items()})


def test_a_block_that_uses_itself_directly_is_named():
    error = load_error(blocks_doc({"A": [node("again", "Block", block="A")]}))
    assert error.node == "@A"
    assert "uses itself" in str(error)


def test_a_block_that_uses_itself_through_another_is_named():
    error = load_error(blocks_doc({"A": [node("to_b", "Block", block="B")],
                                   "B": [node("to_a", "Block", block="A")]}))
    assert {e.node for e in error.errors} == {"@A", "@B"}


def test_a_block_that_uses_itself_from_inside_a_loop_body_is_found():
    looped = {"id": "L", "type": "Loop",
              "body": {"nodes": [node("again", "Block", block="A")], "edges": []}}
    assert load_error(blocks_doc({"A": [looped]})).node == "@A"


def test_a_block_node_naming_an_undefined_block_names_the_node_and_the_known_blocks():
    error = load_error(document([node("b", "Block", block="Missing")],
                                blocks={"Known": {"nodes": [], "edges": []}}))
    assert error.node == "b"
    assert "'Missing'" in str(error) and "Known" in str(error)


@pytest.mark.parametrize("value", [3, ["A"], {"name": "A"}])
def test_a_block_name_that_is_not_text_is_a_graph_error_naming_the_node(value):
    assert load_error(document([node("b", "Block", block=value)])).node == "b"


def test_errors_inside_a_block_definition_carry_the_block_in_their_path():
    data = document([], blocks={"A": {"nodes": [node("a", "ReLU")], "edges": [edge("a.y", "a.x")]}})
    assert load_error(data).node == "@A/a"


def test_a_block_name_must_be_an_identifier():
    assert "identifier" in str(load_error(document([], blocks={"my block": {"nodes": [],
                                                                            "edges": []}})))


# -- former type names ------------------------------------------------------------------------


@pytest.fixture
def renamed_type():
    """A node type registered for the test, once called OldSquash; removed afterwards."""
    from wiregrad.nodes import registry
    from wiregrad.nodes.activations import Tanh

    class Squash(Tanh):
        name = "TestSquash"
        former_names = ("OldSquash",)

    saved = dict(registry._TYPES), dict(registry._FORMER)
    nodes.register(Squash)
    yield "TestSquash"
    registry._TYPES.clear()
    registry._TYPES.update(saved[0])
    registry._FORMER.clear()
    registry._FORMER.update(saved[1])


def test_a_former_type_name_loads_as_the_current_one(renamed_type):
    assert nodes.canonical_name("OldSquash") == renamed_type
    data = mlp()
    data["graph"]["nodes"][2]["type"] = "OldSquash"
    doc = loads(json.dumps(data))
    assert doc.graph.node("act").type == renamed_type
    # saved again, the file says the current name
    assert json.loads(dumps(doc))["graph"]["nodes"][2]["type"] == renamed_type


def test_the_test_type_is_gone_after_its_test():
    assert nodes.get("TestSquash") is None and nodes.canonical_name("OldSquash") is None


def test_loading_never_modifies_the_data_it_is_given():
    data = mlp()
    before = copy.deepcopy(data)
    core.fileio.from_dict(data)
    assert data == before


def test_a_file_that_spells_defaults_out_is_still_saved_back_byte_for_byte(tmp_path):
    text = json.dumps({"format": "wiregrad.graph", "version": 2, "name": "", "graph": {"nodes": [
        {"id": "a", "type": "ReLU", "params": {}, "label": None, "pos": None}]},
        "blocks": {}, "training": None, "ui": {}}, indent=1)
    path = tmp_path / "spelled.wg.json"
    path.write_text(text, encoding="utf-8")
    core.save(core.load(path), path)
    assert path.read_text(encoding="utf-8") == text


def test_an_unknown_key_in_the_training_section_is_refused_at_load():
    text = json.dumps({"format": "wiregrad.graph", "version": 1,
                       "graph": {"nodes": [], "edges": []},
                       "training": {"dataset": {"kind": "xor"}, "loss": "loss", "epoch": 3}})
    with pytest.raises(core.GraphError, match="unknown key 'epoch' in the training section"):
        core.loads(text)
