"""Small documents that would exhaust the machine if Wiregrad tried to build them.

Each function returns a document as a plain dict (what a `.wg.json` file holds); `write_all`
writes them as files, so that the figures in docs/engine.md ("Limits") can be measured again:

    python -m tests.bombs /tmp/bombs        # then: python -m wiregrad check /tmp/bombs/X.wg.json

A document that is refused must be refused by counting and estimating, before anything is
expanded or allocated: these are what the resource-bound tests feed to check and compile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from wiregrad.nodes.control import MAX_STEPS

HEADER = {"format": "wiregrad.graph", "version": 2}
SPIRAL = {"dataset": {"kind": "spiral", "n": 64, "classes": 2, "seed": 0},
          "feeds": {"x": "x"}, "loss": "loss", "batch_size": 16, "epochs": 1}


def node(node_id: str, type_name: str, params: dict | None = None, **bodies) -> dict:
    out = {"id": node_id, "type": type_name, "params": dict(params or {})}
    out.update(bodies)
    return out


def edges(*pairs) -> list:
    return [{"from": a, "to": b} for a, b in pairs]


def document(graph: dict, blocks: dict | None = None, training: dict | None = None) -> dict:
    out = {**HEADER, "name": "bomb", "graph": graph}
    if blocks:
        out["blocks"] = blocks
    if training:
        out["training"] = training
    return out


def _top(middle: list, chain: list) -> dict:
    """x (2 features) -> middle nodes -> Mean -> Output loss."""
    return {"nodes": [node("x", "Input", {"shape": [2]}), *middle, node("mean", "Mean"),
                      node("loss", "Output")],
            "edges": edges(*chain, ("mean.y", "loss.x"))}


def block_bomb(levels: int = 40) -> dict:
    """Block B0 uses B1 twice, B1 uses B2 twice, ...: 2**levels instances of the last one."""
    blocks = {}
    for i in range(levels):
        inner = f"B{i + 1}"
        blocks[f"B{i}"] = {
            "nodes": [node("x", "Input"), node("a", "Block", {"block": inner}),
                      node("b", "Block", {"block": inner}), node("s", "Add"), node("y", "Output")],
            "edges": edges(("x.y", "a.x"), ("a.y", "b.x"), ("a.y", "s.a"), ("b.y", "s.b"),
                           ("s.y", "y.x"))}
    blocks[f"B{levels}"] = {"nodes": [node("x", "Input"), node("t", "Tanh"), node("y", "Output")],
                            "edges": edges(("x.y", "t.x"), ("t.y", "y.x"))}
    top = _top([node("top", "Block", {"block": "B0"})],
               [("x.y", "top.x"), ("top.y", "mean.x")])
    return document(top, blocks, SPIRAL)


def _carry_body(extra: list | None = None, extra_edges: tuple = ()) -> dict:
    """A loop body: carry h -> Tanh -> carry out (and whatever `extra` adds)."""
    return {"nodes": [node("h", "Input", {"role": "carry"}), node("t", "Tanh"),
                      node("next", "Output", {"role": "carry", "carry": "h"}), *(extra or [])],
            "edges": edges(("h.y", "t.x"), ("t.y", "next.x"), *extra_edges)}


def _loop_document(loop: dict) -> dict:
    return document(_top([loop], [("x.y", "loop.h"), ("loop.next", "mean.x")]),
                    training=SPIRAL)


def loop_count(count: int = 10**12) -> dict:
    """A repeat Loop of `count` steps."""
    return _loop_document(node("loop", "Loop", {"mode": "repeat", "count": count},
                               body=_carry_body()))


def while_body() -> dict:
    """A while body that never wants to stop: continue = 1 every step."""
    return _carry_body([node("one", "Constant", {"value": 1.0}),
                        node("go", "Output", {"role": "continue"})], (("one.y", "go.x"),))


def loop_max_iter(max_iter: int = 10**12) -> dict:
    """A while Loop allowed `max_iter` steps, whose body never says stop."""
    return _loop_document(node("loop", "Loop", {"mode": "while", "max_iter": max_iter},
                               body=while_body()))


def slow_step(max_iter: int = MAX_STEPS) -> dict:
    """One training step that takes minutes: a while Loop of `max_iter` steps (it never says
    stop), each taking the mean of a 512 x 512 parameter. Small values: only time is big."""
    body = _carry_body([node("w", "Input"), node("m", "Mean"), node("add", "Add"),
                        node("one", "Constant", {"value": 1.0}),
                        node("go", "Output", {"role": "continue"})],
                       (("w.y", "m.x"), ("one.y", "go.x")))
    body["edges"] = edges(("h.y", "add.a"), ("m.y", "add.b"), ("add.y", "t.x"),
                          ("t.y", "next.x"), ("w.y", "m.x"), ("one.y", "go.x"))
    loop = node("loop", "Loop", {"mode": "while", "max_iter": max_iter}, body=body)
    top = _top([node("w", "Parameter", {"shape": [512, 512]}), loop],
               [("x.y", "loop.h"), ("w.y", "loop.w"), ("loop.next", "mean.x")])
    return document(top, training=SPIRAL)


def huge_linear(out_features: int = 10**9) -> dict:
    """A Linear of `out_features` outputs: 2 x 10**9 weights, 8 GB in float32."""
    return document(_top([node("fc", "Linear", {"out_features": out_features})],
                         [("x.y", "fc.x"), ("fc.y", "mean.x")]), training=SPIRAL)


def nested_loops(depth: int = 200) -> dict:
    """Repeat Loops (count 1) nested `depth` deep, each body passing its carry inward."""
    body = _carry_body()
    for _ in range(depth - 1):
        body = {"nodes": [node("h", "Input", {"role": "carry"}),
                          node("inner", "Loop", {"mode": "repeat", "count": 1}, body=body),
                          node("next", "Output", {"role": "carry", "carry": "h"})],
                "edges": edges(("h.y", "inner.h"), ("inner.next", "next.x"))}
    return _loop_document(node("loop", "Loop", {"mode": "repeat", "count": 1}, body=body))


def nested_blocks(depth: int = 200) -> dict:
    """Blocks B0 -> B1 -> ... each using the next once: `depth` instances, nested as deep."""
    blocks = {}
    for i in range(depth - 1):
        blocks[f"B{i}"] = {"nodes": [node("x", "Input"), node("inner", "Block",
                                                               {"block": f"B{i + 1}"}),
                                     node("y", "Output")],
                           "edges": edges(("x.y", "inner.x"), ("inner.y", "y.x"))}
    blocks[f"B{depth - 1}"] = {"nodes": [node("x", "Input"), node("t", "Tanh"),
                                         node("y", "Output")],
                               "edges": edges(("x.y", "t.x"), ("t.y", "y.x"))}
    top = _top([node("top", "Block", {"block": "B0"})], [("x.y", "top.x"), ("top.y", "mean.x")])
    return document(top, blocks, SPIRAL)


BOMBS = {
    "block-bomb": block_bomb,
    "loop-count": loop_count,
    "loop-max-iter": loop_max_iter,
    "huge-linear": huge_linear,
    "nested-loops": nested_loops,
    "nested-blocks": nested_blocks,
}


def text(doc: dict) -> str:
    return json.dumps(doc) + "\n"


def write_all(folder) -> list:
    """Write every bomb as `NAME.wg.json` in `folder`; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in BOMBS.items():
        path = folder / f"{name}.wg.json"
        path.write_text(text(make()), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all(sys.argv[1] if len(sys.argv) > 1 else "bombs"):
        print(written, written.stat().st_size, "bytes")
