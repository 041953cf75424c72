"""Pasting takes exactly what opening a file takes: the clipboard is read by the file loader."""

import json

import pytest
from wiregrad.app.controller import EditorController
from wiregrad.core import fileio
from wiregrad.core.document import Document


def clip(nodes, edges=(), blocks=None) -> str:
    data = {"format": "wiregrad.graph", "version": 2,
            "graph": {"nodes": list(nodes), "edges": list(edges)}}
    if blocks is not None:
        data["blocks"] = blocks
    return json.dumps(data)


@pytest.fixture
def controller(qapp):
    return EditorController(Document())


def test_a_copied_selection_pastes_back_with_fresh_ids(controller):
    first = controller.paste_text(clip([{"id": "fc", "type": "Linear",
                                         "params": {"out_features": 4}}]))
    text = controller.copy_text(first)
    again = controller.paste_text(text)
    assert first == ["fc"] and len(again) == 1 and again[0] != "fc"
    assert controller.doc.graph.node(again[0]).params == {"out_features": 4}


@pytest.mark.parametrize("node", [
    {"id": "fc", "type": "Linear", "params": {"out_features": 4, "made_up": 1}},   # unknown param
    {"id": "fc", "type": "Linear", "params": {"out_features": 4}, "colour": "red"},  # unknown key
    {"id": "fc", "type": "Linear", "params": {"out_features": 4}, "pos": "here"},   # bad pos
])
def test_what_a_file_may_not_hold_is_not_pasted(controller, node):
    document = {"format": "wiregrad.graph", "version": 2, "graph": {"nodes": [node], "edges": []}}
    with pytest.raises(fileio.GraphError):
        fileio.from_dict(document)  # the file loader refuses it...
    messages = []
    controller.message.connect(messages.append)
    assert controller.paste_text(clip([node])) == []  # ...and so does paste
    assert controller.doc.graph.nodes == []
    assert messages and messages[0].startswith("Cannot paste")
