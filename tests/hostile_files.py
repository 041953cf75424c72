"""Hostile versions of real documents, and what the engine must do with each.

`MUTATIONS` damage a document dict the way a careless hand, a broken tool or an attacker
would (a key dropped, a value of the wrong type, a huge or negative size, an unknown type,
control characters, ids duplicated, a cycle, nesting too deep); `BOMBS` graft a small
structure that would exhaust the machine if built (blocks that use the next one twice, loops of
10**12 steps, a Linear of 10**9 outputs, loops nested 200 deep). Each takes the dict (which it
may change) and a random.Random, and returns the file text.

`fate(text)` is the contract every such file is held to, run by the tests in a forked child
with a time and memory limit (tests/isolated.py): it loads or is refused with a GraphError;
what loads saves as UTF-8 and reads back the same; its check and compile succeed or raise a
GraphError. Anything else raised is a failure of the engine.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

from wiregrad.core.compiler import analyze
from wiregrad.core.fileio import dumps, loads

from wiregrad import core

HUGE = [10**12, 10**30, 2**63, 1e308, -(10**12)]
NEGATIVE = [-1, -2, -(10**9), 0]
WRONG = [None, True, "x", "x.y", "a.b.c", [], {}, [1, "a"], {"x": None}, -1, 1.5, 10**30]
TYPES = ["NoSuchType", "", "linear", "Loop", "Branch", "Block", "Input", "Output", "Linear",
         "Constant"]
CONTROL = [chr(c) for c in (*range(32), 127)] + ["\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\u202e"]
SURROGATES = ["\ud800", "\udfff", "\udc80x", "a\ud83d"]


# -- where things are ---------------------------------------------------------------------------


def places(value, prefix=()) -> list:
    """Every place in a JSON value (the root too): the tuple of keys and indices reaching it."""
    out, stack = [], [(prefix, value)]
    while stack:
        path, item = stack.pop()
        out.append(path)
        if isinstance(item, dict):
            stack.extend((path + (k,), v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((path + (i,), v) for i, v in enumerate(item))
    return out


def get(data, path):
    for key in path:
        data = data[key]
    return data


def put(data, path, value):
    """data with the value at path replaced (the root replaced: the value itself)."""
    if not path:
        return value
    get(data, path[:-1])[path[-1]] = value
    return data


def leaves(data, kinds) -> list:
    return [p for p in places(data) if p and isinstance(get(data, p), kinds)
            and not isinstance(get(data, p), bool)]


def graphs(data) -> list:
    """The path of every graph: the top one, block definitions, bodies and branch sides."""
    out = []
    for path in places(data):
        value = get(data, path)
        if isinstance(value, dict) and isinstance(value.get("nodes"), list):
            out.append(path)
    return out


def text_of(data) -> str:
    # ensure_ascii: lone surrogates and control characters travel as JSON escapes, as a
    # tool that writes escapes would write them; the reader sees the same strings.
    return json.dumps(data, ensure_ascii=True)


# -- mutations ----------------------------------------------------------------------------------


def drop(data, rng):
    spots = [p for p in places(data) if p]
    if spots:
        path = rng.choice(spots)
        del get(data, path[:-1])[path[-1]]
    return text_of(data)


def retype(data, rng):
    path = rng.choice(places(data))
    return text_of(put(data, path, copy.deepcopy(rng.choice(WRONG))))


def huge(data, rng):
    spots = leaves(data, (int, float))
    if spots:
        put(data, rng.choice(spots), rng.choice(HUGE))
    return text_of(data)


def negative(data, rng):
    spots = leaves(data, int)
    if spots:
        put(data, rng.choice(spots), rng.choice(NEGATIVE))
    return text_of(data)


def unknown_type(data, rng):
    spots = [p for p in places(data) if p and p[-1] == "type" and "nodes" in p]
    if spots:
        put(data, rng.choice(spots), rng.choice(TYPES))
    return text_of(data)


def _insert_into_text(data, rng, pieces):
    spots = leaves(data, str)
    if spots:
        path = rng.choice(spots)
        text = get(data, path)
        at = rng.randint(0, len(text))
        put(data, path, text[:at] + rng.choice(pieces) + text[at:])
    return text_of(data)


def control_characters(data, rng):
    return _insert_into_text(data, rng, CONTROL)


def lone_surrogates(data, rng):
    return _insert_into_text(data, rng, SURROGATES)


def duplicate_id(data, rng):
    found = graphs(data)
    graph = get(data, rng.choice(found)) if found else {"nodes": []}
    if graph["nodes"]:
        node = copy.deepcopy(rng.choice(graph["nodes"]))
        graph["nodes"].insert(rng.randint(0, len(graph["nodes"])), node)
    return text_of(data)


def cycle(data, rng):
    """A -> B made B -> A too: an edge out of B replaces one into A."""
    found = graphs(data)
    graph = get(data, rng.choice(found)) if found else {}
    edges = graph.get("edges")
    edges = [e for e in edges if isinstance(e, dict) and isinstance(e.get("from"), str)
             and isinstance(e.get("to"), str)] if isinstance(edges, list) else []

    def owner(end: str) -> str:
        return end.split(".")[0]

    closing = [(into_a, out_of_b) for first in edges for into_a in edges for out_of_b in edges
               if owner(into_a["to"]) == owner(first["from"]) != owner(first["to"])
               and owner(out_of_b["from"]) == owner(first["to"])]
    if closing:
        into_a, out_of_b = rng.choice(closing)
        into_a["from"] = out_of_b["from"]
    return text_of(data)


def deep_json(data, rng):
    """A value replaced by lists nested deep: some loads (in `ui`), past the reader's limit not."""
    depth = rng.choice([50, 400, 900, 990, 1200, 5000])
    nested = text_of(0)
    for _ in range(depth):
        nested = f"[{nested}]"
    marker = "__deep__"
    spots = [p for p in places(data) if p]
    if isinstance(data, dict):
        spots.append(("ui", "deep"))
        if not isinstance(data.get("ui"), dict):
            data["ui"] = {}
    data = put(data, rng.choice(spots) if spots else (), marker)
    return text_of(data).replace(json.dumps(marker), nested, 1)


def truncate(data, rng):
    text = text_of(data)
    return text[: rng.randint(0, len(text) - 1)]


def flip_bytes(data, rng):
    raw = bytearray(text_of(data).encode("utf-8"))
    for _ in range(rng.randint(1, 6)):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw)


MUTATIONS = {
    "drop": drop, "retype": retype, "huge": huge, "negative": negative,
    "unknown-type": unknown_type, "control": control_characters, "duplicate-id": duplicate_id,
    "cycle": cycle, "deep-json": deep_json, "truncate": truncate, "bytes": flip_bytes,
}
STRUCTURAL = ["drop", "retype", "huge", "negative", "unknown-type", "control", "duplicate-id",
              "cycle"]


def several(data, rng):
    """Two to four structural mutations, one after another."""
    for _ in range(rng.randint(2, 4)):
        data = json.loads(MUTATIONS[rng.choice(STRUCTURAL)](data, rng))
    return text_of(data)


MUTATIONS["several"] = several


# -- bombs --------------------------------------------------------------------------------------


def node(node_id, type_name, params=None, **bodies) -> dict:
    return {"id": node_id, "type": type_name, "params": dict(params or {}), **bodies}


def wire(a: str, b: str) -> dict:
    return {"from": a, "to": b}


def splice(data, rng, new_nodes: list, port_in: str, port_out: str, blocks=None) -> str:
    """Put new nodes on a wire of the top graph: A.p -> first.in ... last.out -> B.q."""
    graph = data["graph"]
    edges = graph["edges"]
    edge = rng.choice(edges)
    first, last = new_nodes[0]["id"], new_nodes[-1]["id"]
    target, edge["to"] = edge["to"], f"{first}.{port_in}"
    edges.append(wire(f"{last}.{port_out}", target))
    graph["nodes"].extend(new_nodes)
    if blocks:
        data.setdefault("blocks", {}).update(blocks)
    return text_of(data)


def carry_body(extra=(), extra_edges=()) -> dict:
    return {"nodes": [node("h", "Input", {"role": "carry"}), node("t", "Tanh"),
                      node("next", "Output", {"role": "carry", "carry": "h"}), *extra],
            "edges": [wire("h.y", "t.x"), wire("t.y", "next.x"), *extra_edges]}


def block_bomb(data, rng, levels=40):
    blocks = {}
    for i in range(levels):
        inner = f"Bomb{i + 1}"
        blocks[f"Bomb{i}"] = {
            "nodes": [node("x", "Input"), node("a", "Block", {"block": inner}),
                      node("b", "Block", {"block": inner}), node("s", "Add"), node("y", "Output")],
            "edges": [wire("x.y", "a.x"), wire("a.y", "b.x"), wire("a.y", "s.a"),
                      wire("b.y", "s.b"), wire("s.y", "y.x")]}
    blocks[f"Bomb{levels}"] = {"nodes": [node("x", "Input"), node("t", "Tanh"), node("y", "Output")],
                               "edges": [wire("x.y", "t.x"), wire("t.y", "y.x")]}
    return splice(data, rng, [node("bomb", "Block", {"block": "Bomb0"})], "x", "y", blocks)


def loop_count(data, rng):
    loop = node("bomb", "Loop", {"mode": "repeat", "count": 10**12}, body=carry_body())
    return splice(data, rng, [loop], "h", "next")


def loop_max_iter(data, rng):
    body = carry_body([node("one", "Constant", {"value": 1.0}),
                       node("go", "Output", {"role": "continue"})], [wire("one.y", "go.x")])
    loop = node("bomb", "Loop", {"mode": "while", "max_iter": 10**12}, body=body)
    return splice(data, rng, [loop], "h", "next")


def huge_linear(data, rng):
    """A Linear of 10**9 outputs hung off a wire, feeding an Output of its own."""
    graph = data["graph"]
    edge = rng.choice(graph["edges"])
    graph["nodes"] += [node("bomb", "Linear", {"out_features": 10**9}), node("bomb_out", "Output")]
    graph["edges"] += [wire(edge["from"], "bomb.x"), wire("bomb.y", "bomb_out.x")]
    return text_of(data)


def nested_loops(data, rng, depth=200):
    body = carry_body()
    for _ in range(depth - 1):
        body = {"nodes": [node("h", "Input", {"role": "carry"}),
                          node("inner", "Loop", {"mode": "repeat", "count": 1}, body=body),
                          node("next", "Output", {"role": "carry", "carry": "h"})],
                "edges": [wire("h.y", "inner.h"), wire("inner.next", "next.x")]}
    loop = node("bomb", "Loop", {"mode": "repeat", "count": 1}, body=body)
    return splice(data, rng, [loop], "h", "next")


BOMBS = {"block-bomb": block_bomb, "loop-count": loop_count, "loop-max-iter": loop_max_iter,
         "huge-linear": huge_linear, "nested-loops": nested_loops}


# -- the contract -------------------------------------------------------------------------------


def fate(text: str | bytes) -> str:
    """What becomes of one file: 'refused at load', 'refused at check' or 'compiled'.
    Raises (AssertionError or whatever the engine raised) where the contract is broken."""
    try:
        doc = loads(text)
    except core.GraphError as exc:
        assert str(exc), "a GraphError without a message"
        return "refused at load"
    # Whatever loads saves: as read, and written afresh (an edit forces that).
    dumps(doc).encode("utf-8")
    doc.set_name(doc.name + " (edited)")
    saved = dumps(doc)
    saved.encode("utf-8")
    assert loads(saved).to_dict() == doc.to_dict(), "what was saved reads back differently"
    try:
        analyze(doc)
        core.compile(doc)
    except core.GraphError as exc:
        assert str(exc), "a GraphError without a message"
        return "refused at check"
    return "compiled"


def mutated(path, family: str, seed: int, table=None) -> str | bytes:
    """The text of the example at `path` after one mutation (or bomb) of a seeded random."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    make = (table or MUTATIONS)[family]
    return make(data, random.Random(f"{path.name}/{family}/{seed}"))
