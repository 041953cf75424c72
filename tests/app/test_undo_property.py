"""Property: any sequence of edits through the undo stack, in any graph of any example (the
main graph, loop bodies, branch sides, block definitions), undoes to the document we started
from and redoes to the one we ended with, byte for byte once saved; the canvas mirrors the
document all along.

Byte for byte, not merely equal: a parameter set and then unset, or a ui entry removed and put
back, must come back where it was in the saved text, so that undoing every edit and saving
leaves a file that a diff shows as unchanged.
"""

import copy
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wiregrad.app import commands as cmd
from wiregrad.app.controller import EditorController
from wiregrad.app.scene import CanvasScene
from wiregrad.core.fileio import dumps
from wiregrad.core.well_formed import walk_graphs

from wiregrad import core, nodes

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"
# Between them: a plain MLP, loop bodies (scan and while), a Block used twice and a Branch,
# params written in another order than declared, shared weights.
NAMES = ["spiral-mlp", "sequence-rnn", "blocks-and-gate", "ponder", "siamese", "adaptive-while",
         "tree-expressions"]
TYPES = ["Linear", "ReLU", "Tanh", "Add", "Input", "Output", "Loop", "Branch", "Block",
         "Constant"]
OPS = ["add", "remove", "connect", "disconnect", "move", "param", "param", "param", "rename",
       "label", "label", "group", "ungroup", "paste", "body", "comment", "enter", "enter",
       "leave", "training", "view", "unview"]


def canonical_text(doc) -> str:
    """What Save writes for a document that changed since it was read."""
    return json.dumps(doc.to_dict(), indent=2, ensure_ascii=False) + "\n"


def param_value(decl, b: int):
    """A value of the declared kind (or None: back to the default), as the inspector gives."""
    if b % 5 == 0:
        return None
    low = decl.minimum if decl.minimum is not None else 0
    kind = decl.kind
    if kind in ("int", "pair"):
        return int(low) + b % 4
    if kind == "float":
        return float(low) + (b % 7) / 10
    if kind == "bool":
        return bool(b % 2)
    if kind == "choice":
        return decl.choices[b % len(decl.choices)]
    if kind in ("shape", "reshape"):
        return [1 + b % 8]
    if kind in ("axis", "axes"):
        return -1
    if kind == "value":
        return (b % 9) / 4
    return f"s{b % 3}"


def apply(c: EditorController, op: str, a: int, b: int) -> None:
    graph = c.doc.graph_at(c.ref)
    ids = [n.id for n in graph.nodes]
    pick = (lambda k: ids[k % len(ids)]) if ids else None
    if op == "add":
        c.add_node(TYPES[a % len(TYPES)], (a % 700, b % 500))
    elif op == "enter":
        refs = [ref for ref, _, _ in walk_graphs(c.doc)]
        c.open_graph(refs[a % len(refs)])
    elif op == "leave":
        c.open_graph(())
    elif op == "training":
        training = copy.deepcopy(c.doc.training) or {}
        key = ("epochs", "seed", "batch_size")[a % 3]
        training[key] = 1 + b % 50
        if b % 7 == 0:
            training = None
        if training != c.doc.training:
            c.push(cmd.SetTraining(c.doc, training))
    elif op == "view":
        c.set_ui("view", {"center": [a % 300, b % 300], "zoom": 1 + b % 3})
    elif op == "unview":
        c.set_ui(("comments", "view")[a % 2], None)
    elif op == "comment":
        comments = list(c.doc.ui.get("comments", []))
        comments.append({"id": f"c{len(comments)}", "kind": "note", "graph": list(c.ref),
                         "text": str(b), "rect": [a % 500, b % 500, 200, 80]})
        c.set_ui("comments", comments)
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
        decls = [d for d in nodes.get(node.type).params if d.name != "block"]
        if decls:
            decl = decls[b % len(decls)]
            c.set_param([node.id], decl.name, param_value(decl, b // 7))
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
            c.add_node(TYPES[b % len(TYPES)], (b % 300, a % 300),
                       ref=c.ref + (loops[a % len(loops)].id, "body"))


def mirrors(scene: CanvasScene, c: EditorController) -> bool:
    graph = c.doc.graph_at(c.ref)
    return (set(scene.node_items) == {n.id for n in graph.nodes}
            and set(scene.wire_items) == set(graph.edges))


def undo_all(c: EditorController) -> None:
    while c.stack.canUndo():
        c.stack.undo()


def redo_all(c: EditorController) -> None:
    while c.stack.canRedo():
        c.stack.redo()


steps = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 10_000), st.integers(0, 10_000)),
                 min_size=1, max_size=25)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(NAMES), steps=steps)
def test_undo_all_gives_the_original_and_redo_all_the_final(qapp, name, steps):
    doc = core.load(EXAMPLES / f"{name}.wg.json")
    c = EditorController(doc)
    scene = CanvasScene(c)
    original = canonical_text(doc)
    for op, a, b in steps:
        apply(c, op, a, b)
        assert mirrors(scene, c)
    final = canonical_text(doc)
    undo_all(c)
    assert canonical_text(doc) == original
    assert mirrors(scene, c)
    redo_all(c)
    assert canonical_text(doc) == final
    assert mirrors(scene, c)


def random_steps(rng: random.Random) -> list:
    return [(rng.choice(OPS), rng.randrange(10_000), rng.randrange(10_000))
            for _ in range(rng.randint(1, 30))]


@pytest.mark.parametrize("name", NAMES)
def test_many_edit_sequences_undo_to_the_same_saved_bytes(qapp, name):
    """A seeded sweep, wider than the hypothesis test: 60 sequences per example, no canvas."""
    path = EXAMPLES / f"{name}.wg.json"
    file_text = path.read_text(encoding="utf-8")
    rng = random.Random(f"undo-bytes-{name}")
    for _ in range(60):
        doc = core.load(path)
        c = EditorController(doc)
        original = canonical_text(doc)
        steps = random_steps(rng)
        for op, a, b in steps:
            apply(c, op, a, b)
        final = canonical_text(doc)
        undo_all(c)
        assert canonical_text(doc) == original, steps
        if original == file_text:  # a file already in canonical order is saved back as read
            assert dumps(doc) == file_text, steps
        redo_all(c)
        assert canonical_text(doc) == final, steps


def test_a_parameter_set_then_undone_keeps_its_place_in_the_saved_text(qapp):
    doc = core.load(EXAMPLES / "spiral-mlp.wg.json")
    c = EditorController(doc)
    before = canonical_text(doc)
    node = next(n for n in doc.graph.nodes if n.type == "Input" and "dtype" in n.params)
    c.set_param([node.id], "shape", None)   # removed ...
    c.stack.undo()                            # ... and put back: where it was, not last
    assert canonical_text(doc) == before


def test_a_ui_entry_removed_then_undone_keeps_its_place(qapp):
    doc = core.load(EXAMPLES / "spiral-mlp.wg.json")
    c = EditorController(doc)
    c.set_ui("comments", [{"id": "c1", "kind": "note", "graph": [], "text": "x",
                           "rect": [0, 0, 10, 10]}])
    c.set_ui("view", {"zoom": 2})
    before = canonical_text(doc)
    c.set_ui("comments", None)
    c.stack.undo()
    assert list(doc.ui) == ["comments", "view"]
    assert canonical_text(doc) == before


def test_deleting_a_node_whose_tensors_another_uses_keeps_the_canvas_in_step(qapp):
    # siamese: enc_b shares enc_a's tensors, drawn as a dashed line between them
    doc = core.load(EXAMPLES / "siamese.wg.json")
    c = EditorController(doc)
    scene = CanvasScene(c)
    before = canonical_text(doc)
    c.remove_nodes(["enc_a"])
    assert mirrors(scene, c) and "enc_a" not in scene.node_items
    c.stack.undo()
    assert mirrors(scene, c) and canonical_text(doc) == before
