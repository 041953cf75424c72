"""Property: any sequence of edits through the undo stack undoes to the document we started
from and redoes to the one we ended with; the canvas mirrors the document all along."""

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core
from app.controller import EditorController
from app.scene import CanvasScene

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "examples", "spiral-mlp.wg.json")
TYPES = ["Linear", "ReLU", "Tanh", "Add", "Input", "Output", "Loop", "Constant"]
OPS = ["add", "remove", "connect", "disconnect", "move", "param", "rename", "label", "group",
       "ungroup", "paste", "body", "comment"]


def apply(c: EditorController, op: str, a: int, b: int) -> None:
    graph = c.doc.graph_at(c.ref)
    ids = [n.id for n in graph.nodes]
    pick = (lambda k: ids[k % len(ids)]) if ids else None
    if op == "add":
        c.add_node(TYPES[a % len(TYPES)], (a % 700, b % 500))
    elif not ids:
        return
    elif op == "remove":
        c.remove_nodes([pick(a)])
    elif op == "connect":
        src, dst = graph.node(pick(a)), graph.node(pick(b))
        outs, ins = c.doc.ports(src)[1], c.doc.ports(dst)[0]
        if outs and ins:
            c.connect(src.id, outs[a % len(outs)], dst.id, ins[b % len(ins)])
    elif op == "disconnect" and graph.edges:
        c.disconnect(graph.edges[a % len(graph.edges)])
    elif op == "move":
        node_id = pick(a)
        old = graph.node(node_id).pos
        c.move_nodes({node_id: (old, [b % 900, a % 600])})
    elif op == "param":
        node = graph.node(pick(a))
        if node.type == "Linear":
            c.set_param([node.id], "out_features" if b % 2 else "bias", 1 + b % 64 if b % 2 else bool(b % 4))
        elif node.type == "Loop":
            c.set_param([node.id], "count", b % 5)
        elif node.type == "Input":
            c.set_param([node.id], "shape", None if b % 3 == 0 else [1 + b % 8])
    elif op == "rename":
        c.rename(pick(a), f"n{b % 50}")
    elif op == "label":
        c.set_label(pick(a), None if b % 3 == 0 else f"label {b}")
    elif op == "group":
        chosen = {pick(a), pick(b)}
        if not any(graph.node(i).type in ("Input", "Output") for i in chosen):
            c.group(sorted(chosen))
    elif op == "ungroup":
        blocks = [n.id for n in graph.nodes if n.type == "Block"]
        if blocks:
            c.ungroup(blocks[a % len(blocks)])
    elif op == "paste":
        c.paste_text(c.copy_text([pick(a), pick(b)]))
    elif op == "body":
        loops = [n for n in graph.nodes if n.type == "Loop"]
        if loops:
            c.add_node(TYPES[b % len(TYPES)], (b % 300, a % 300), ref=(loops[a % len(loops)].id, "body"))
    elif op == "comment":
        comments = list(c.doc.ui.get("comments", []))
        comments.append({"id": f"c{len(comments)}", "kind": "note", "graph": [], "text": str(b),
                         "rect": [a % 500, b % 500, 200, 80]})
        c.set_ui("comments", comments)


def mirrors(scene: CanvasScene, c: EditorController) -> bool:
    graph = c.doc.graph_at(c.ref)
    return (set(scene.node_items) == {n.id for n in graph.nodes}
            and set(scene.wire_items) == set(graph.edges))


steps = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 10_000), st.integers(0, 10_000)),
                 min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_undo_all_gives_the_original_and_redo_all_the_final(qapp, steps):
    doc = core.load(EXAMPLE)
    c = EditorController(doc)
    scene = CanvasScene(c)
    original = json.dumps(doc.to_dict(), sort_keys=True)
    for op, a, b in steps:
        apply(c, op, a, b)
        assert mirrors(scene, c)
    final = json.dumps(doc.to_dict(), sort_keys=True)
    while c.stack.canUndo():
        c.stack.undo()
    assert json.dumps(doc.to_dict(), sort_keys=True) == original
    assert mirrors(scene, c)
    while c.stack.canRedo():
        c.stack.redo()
    assert json.dumps(doc.to_dict(), sort_keys=True) == final
    assert mirrors(scene, c)
