"""Auto-layout (core.arrange): a layered drawing of one graph, as the examples are drawn.

Every graph of every example, arranged, has no two node rectangles overlapping, every wire
running left to right and every node on the editor's grid, and passes the examples' own layout
rule; the same document always gives the same positions, and arranging twice changes nothing.
A document with no positions at all comes out readable; disconnected pieces do not overlap; a
cycle or a missing grandalf does not crash it.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from wiregrad.core.arrange import GRID, arrange_positions, default_size
from wiregrad.core.document import Document, Edge, Graph, Node
from wiregrad.core.errors import GraphError
from wiregrad.core.well_formed import walk_graphs

from wiregrad import core

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("*.wg.json"))
EXAMPLE_GAP_X, EXAMPLE_GAP_Y = 150, 120  # tests/test_examples.py's rule for drawn examples


def _load(name: str) -> Document:
    return core.load(EXAMPLES_DIR / name)


def _without_pos(doc: Document) -> Document:
    for _, graph, _ in walk_graphs(doc):
        for node in graph.nodes:
            node.pos = None
    return doc


def _apply(doc: Document, ref, spots: dict) -> None:
    for node_id, pos in spots.items():
        doc.move_node(ref, node_id, pos)


def _assert_readable(doc: Document, ref, spots: dict, sizes: dict | None = None) -> None:
    """No overlap, wires left to right, on the grid, and the examples' spacing."""
    graph = doc.graph_at(ref)
    assert set(spots) == {n.id for n in graph.nodes}
    size = {n.id: (sizes or {}).get(n.id) or default_size(doc, n) for n in graph.nodes}
    ids = [n.id for n in graph.nodes]
    for i, a in enumerate(ids):
        (ax, ay), (aw, ah) = spots[a], size[a]
        assert ax % GRID == 0 and ay % GRID == 0, f"{ref}: {a} off the grid at {spots[a]}"
        for b in ids[i + 1:]:
            (bx, by), (bw, bh) = spots[b], size[b]
            apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
            assert apart, f"{ref}: {a} at {spots[a]} and {b} at {spots[b]} overlap"
            if sizes is None:
                dx, dy = abs(ax - bx), abs(ay - by)
                assert dx >= EXAMPLE_GAP_X or dy >= EXAMPLE_GAP_Y, f"{ref}: {a}, {b} too close"
    for edge in graph.edges:
        assert spots[edge.src][0] < spots[edge.dst][0], f"{ref}: {edge} runs right to left"


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_graph_of_every_example_arranges_readably(name):
    doc = _load(name)
    for ref, _, _ in walk_graphs(doc):
        _assert_readable(doc, ref, arrange_positions(doc, ref))


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_same_document_gives_the_same_positions_and_arranging_twice_changes_nothing(name):
    first, second = _without_pos(_load(name)), _without_pos(_load(name))
    for ref, _, _ in walk_graphs(first):
        spots = arrange_positions(first, ref)
        assert arrange_positions(second, ref) == spots
        _apply(first, ref, spots)
        assert arrange_positions(first, ref) == spots


def test_a_document_without_positions_reads_left_to_right_like_the_example():
    doc = _without_pos(_load("spiral-mlp.wg.json"))
    spots = arrange_positions(doc)
    _assert_readable(doc, (), spots)
    column = 180  # as the examples are drawn
    # the main chain is one straight row, a column per node, from the input at the origin
    chain = ["x", "hidden1", "act1", "hidden2", "act2", "head"]
    assert [spots[n] for n in chain] == [(i * column, 0) for i in range(len(chain))]
    # the label joins next to the loss that reads it, not far away in the first column
    assert spots["label"][0] == spots["ce"][0] - column
    # outputs and the loss stand on the right
    rightmost = max(x for x, _ in spots.values())
    assert spots["loss"][0] == rightmost
    assert spots["logits"][0] >= spots["head"][0] + column


def test_bodies_arrange_like_any_graph():
    doc = _without_pos(_load("parity-rnn.wg.json"))
    ref = ("rnn", "body")
    spots = arrange_positions(doc, ref)
    _assert_readable(doc, ref, spots)
    assert spots["h_next"][0] == max(x for x, _ in spots.values())


def _chain(graph: Graph, prefix: str, length: int) -> None:
    graph.nodes.append(Node(f"{prefix}0", "Input"))
    for i in range(1, length):
        graph.nodes.append(Node(f"{prefix}{i}", "ReLU"))
        graph.edges.append(Edge(f"{prefix}{i - 1}", "y", f"{prefix}{i}", "x"))


def test_disconnected_pieces_and_lone_nodes_are_stacked_without_overlap():
    graph = Graph()
    _chain(graph, "a", 4)
    graph.nodes.append(Node("alone1", "Constant"))
    _chain(graph, "b", 3)
    graph.nodes.append(Node("both", "Add"))  # one node read twice through two ports
    graph.edges += [Edge("b2", "y", "both", "a"), Edge("b2", "y", "both", "b")]
    graph.nodes.append(Node("alone2", "Constant"))
    doc = Document(graph)
    spots = arrange_positions(doc)
    _assert_readable(doc, (), spots)
    bottom_a = max(spots[f"a{i}"][1] + default_size(doc, graph.node(f"a{i}"))[1] for i in range(4))
    assert min(spots[f"b{i}"][1] for i in range(3)) > bottom_a, "the second piece goes below"
    assert spots["alone1"][1] == spots["alone2"][1] > spots["both"][1], "lone nodes: a row under"


def test_a_cycle_is_drawn_not_refused():
    graph = Graph()
    _chain(graph, "c", 4)
    graph.edges.append(Edge("c3", "y", "c1", "x"))  # closes c1 -> c2 -> c3 -> c1
    graph.edges.append(Edge("c2", "y", "c2", "x"))  # and a node reading itself
    doc = Document(graph)
    spots = arrange_positions(doc)
    assert spots["c0"][0] < spots["c1"][0] < spots["c2"][0] < spots["c3"][0]
    acyclic = copy.deepcopy(graph)
    acyclic.edges = acyclic.edges[:3]
    _assert_readable(Document(acyclic), (), spots)


def test_given_sizes_keep_big_nodes_apart():
    doc = _without_pos(_load("spiral-mlp.wg.json"))
    sizes = {n.id: (300, 400) for n in doc.graph.nodes}
    spots = arrange_positions(doc, (), sizes)
    _assert_readable(doc, (), spots, sizes)
    assert spots["hidden1"][0] - spots["x"][0] >= 300


def test_the_drawing_starts_where_the_nodes_were():
    doc = _load("spiral-mlp.wg.json")
    for node in doc.graph.nodes:
        node.pos = [node.pos[0] + 400, node.pos[1] + 300]
    spots = arrange_positions(doc)
    assert min(x for x, _ in spots.values()) == 400
    assert min(y for _, y in spots.values()) == 220  # the example has logits above the row


def test_an_empty_graph_has_nothing_to_place():
    assert arrange_positions(Document()) == {}


def test_without_grandalf_it_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "grandalf.graphs", None)  # import now fails
    with pytest.raises(GraphError, match="pip install grandalf"):
        arrange_positions(_load("spiral-mlp.wg.json"))


def test_the_layout_needs_no_qt():
    code = ("import sys, wiregrad as wg; from wiregrad.core.arrange import arrange_positions; "
            "doc = wg.load(sys.argv[1]); arrange_positions(doc); "
            "assert not any(m.startswith(('PySide6', 'shiboken')) for m in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(EXAMPLES_DIR / "spiral-mlp.wg.json")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
