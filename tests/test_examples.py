"""The example documents in assets/examples/: what a newcomer opens first.

Every example loads, passes `wiregrad check`, compiles and is laid out left to right without
overlapping nodes; every one with a training section trains, with its own seed, to the target
the issue sets for it. The parity RNN is also compared with a loop-free MLP of about the same
size on the same data, and the while-loop example is checked to stop early, after a number of
steps that depends on its input.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

import core
from core.cli import main as cli_main
from core.datasets import moons, seq_parity
from core.trainer import read_plan

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("*.wg.json"))
# Spec examples that only show the format (no loss, no data).
NOT_TRAINED = {"blocks-and-gate.wg.json"}

# file -> (figure of the last epoch, "min" or "max", bound, epochs for the test: None = its own)
TARGETS = {
    "spiral-mlp.wg.json": ("val_accuracy", "min", 0.95, None),
    "sine-regression.wg.json": ("val_mse", "max", 0.01, None),
    "iris-csv.wg.json": ("val_accuracy", "min", 0.90, None),
    "parity-rnn.wg.json": ("val_accuracy", "min", 0.95, None),
    "sequence-rnn.wg.json": ("val_mse", "max", 0.01, None),
    "adaptive-while.wg.json": ("val_accuracy", "min", 0.95, None),
}

NODE_W, NODE_GAP_X, NODE_GAP_Y = 128, 150, 120  # the editor draws nodes 128 px wide


def _path(name: str) -> Path:
    return EXAMPLES_DIR / name


def _raw(name: str) -> dict:
    return json.loads(_path(name).read_text(encoding="utf-8"))


@functools.cache
def _trained(name: str):
    doc = core.load(_path(name))
    return doc, core.train(doc, epochs=TARGETS[name][3])


def _graphs(graph: dict, where: str = "graph"):
    """Every graph of a document: the top level and each body, with a path for messages."""
    yield where, graph
    for node in graph["nodes"]:
        for key in ("body", "then", "else"):
            if key in node:
                yield from _graphs(node[key], f"{where}/{node['id']}.{key}")


def test_every_example_is_listed():
    assert len(EXAMPLES) >= 7
    assert set(TARGETS) | NOT_TRAINED == set(EXAMPLES), "a new example needs a target here"


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_loads_checks_and_compiles(name, capsys):
    doc = core.load(_path(name))
    program = core.compile(doc)
    assert program.output_shapes
    assert cli_main(["check", str(_path(name))]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_named_labelled_and_laid_out(name):
    data = _raw(name)
    assert data.get("name", "").strip(), "every example has a clear name"
    graphs = list(_graphs(data["graph"]))
    for block, graph in data.get("blocks", {}).items():
        graphs.extend(_graphs(graph, f"blocks/{block}"))
    labelled = 0
    for where, graph in graphs:
        pos = {}
        for node in graph["nodes"]:
            assert "pos" in node, f"{where}: node {node['id']} has no pos"
            pos[node["id"]] = node["pos"]
            labelled += bool(node.get("label"))
            if node["type"] in ("Loop", "Branch"):
                assert node.get("label"), f"{where}: control node {node['id']} needs a label"
        ids = sorted(pos)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                dx, dy = abs(pos[a][0] - pos[b][0]), abs(pos[a][1] - pos[b][1])
                assert dx >= NODE_GAP_X or dy >= NODE_GAP_Y, f"{where}: {a} and {b} overlap"
        for edge in graph["edges"]:
            src, dst = edge["from"].split(".")[0], edge["to"].split(".")[0]
            assert pos[src][0] < pos[dst][0], f"{where}: edge {src} -> {dst} runs right to left"
    assert labelled >= 3, "label the key nodes"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_example_has_its_own_training_section(name):
    training = _raw(name)["training"]
    for key in ("dataset", "loss", "optimizer", "epochs", "seed", "metrics"):
        assert key in training, f"{name}: training.{key}"
    read_plan(core.load(_path(name)))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_example_trains_to_its_target(name):
    figure, sense, bound, _ = TARGETS[name]
    _, result = _trained(name)
    final = result.final()
    assert figure in final, f"{name}: no {figure} in {sorted(final)}"
    value = final[figure]
    assert np.isfinite(value)
    if sense == "min":
        assert value >= bound, f"{name}: {figure} {value:.4f} < {bound}"
    else:
        assert value < bound, f"{name}: {figure} {value:.4f} >= {bound}"


def test_training_is_repeatable_for_an_example():
    doc = core.load(_path("iris-csv.wg.json"))
    a, b = core.train(doc, epochs=5), core.train(doc, epochs=5)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


# -- the RNN against a loop-free MLP of the same size ----------------------------------------

def _mlp_document(training: dict, steps: int, hidden: int) -> core.Document:
    edges = [("seq.y", "flat.x"), ("flat.y", "fc1.x"), ("fc1.y", "act.x"), ("act.y", "fc2.x"),
             ("fc2.y", "logits.x"), ("fc2.y", "ce.logits"), ("label.y", "ce.target"),
             ("ce.y", "loss.x")]
    data = {"format": "wiregrad.graph", "version": 1, "name": "Parity with a loop-free MLP",
            "graph": {"nodes": [
                {"id": "seq", "type": "Input", "params": {"shape": [steps, 1]}},
                {"id": "flat", "type": "Flatten"},
                {"id": "fc1", "type": "Linear", "params": {"out_features": hidden}},
                {"id": "act", "type": "Tanh"},
                {"id": "fc2", "type": "Linear", "params": {"out_features": 2}},
                {"id": "logits", "type": "Output"},
                {"id": "label", "type": "Input", "params": {"shape": [], "dtype": "int64"}},
                {"id": "ce", "type": "CrossEntropyLoss"},
                {"id": "loss", "type": "Output"}],
                "edges": [{"from": a, "to": b} for a, b in edges]},
            "training": training}
    return core.loads(json.dumps(data))


def _accuracy(doc, params, seq: np.ndarray, target: np.ndarray) -> float:
    logits = core.compile(doc).run(params, {"seq": seq.astype(np.float32)},
                                   outputs=("logits",))["logits"]
    return float((logits.argmax(-1) == target).mean())


def _size(params: dict) -> int:
    return sum(int(np.prod(p.shape)) for p in params.values())


def test_parity_needs_the_loop_an_mlp_of_the_same_size_stays_near_chance():
    name = "parity-rnn.wg.json"
    training = _raw(name)["training"]
    steps = training["dataset"]["max_len"]
    rnn_doc, rnn = _trained(name)
    mlp_doc = _mlp_document(training, steps, hidden=20)
    mlp = core.train(mlp_doc)  # the same data, split, optimizer, epochs and seed
    assert 0.8 < _size(mlp.params) / _size(rnn.params) < 1.25, "comparable parameter counts"

    # Unseen sequences of the full length: the RNN has learned parity, the MLP has not.
    test = seq_parity(n=1000, min_len=steps, max_len=steps, seed=12345)
    rnn_acc = _accuracy(rnn_doc, rnn.params, test["seq"], test["target"])
    mlp_acc = _accuracy(mlp_doc, mlp.params, test["seq"], test["target"])
    assert rnn_acc >= 0.95, rnn_acc
    assert 0.4 <= mlp_acc <= 0.6, f"the MLP should be near chance, got {mlp_acc}"
    # On the validation set (short sequences included) the MLP does a little better than
    # chance, but nowhere near the RNN.
    assert mlp.final()["val_accuracy"] < 0.7
    assert rnn.final()["val_accuracy"] - mlp.final()["val_accuracy"] > 0.25

    # The same trained RNN reads sequences twice as long as any it saw: the MLP cannot even
    # take them (its input has a fixed length).
    longer = seq_parity(n=500, min_len=2 * steps, max_len=2 * steps, seed=54321)
    assert _accuracy(rnn_doc, rnn.params, longer["seq"], longer["target"]) >= 0.9


# -- the while loop decides its own depth ------------------------------------------------------

def test_adaptive_while_stops_early_after_a_data_dependent_number_of_steps():
    name = "adaptive-while.wg.json"
    doc, result = _trained(name)
    data = _raw(name)
    loop = next(n for n in data["graph"]["nodes"] if n["id"] == "settle")
    max_iter = loop["params"]["max_iter"]
    spec = data["training"]["dataset"]
    x = moons(n=spec["n"], noise=spec["noise"], seed=spec["seed"])["x"].astype(np.float32)
    program = core.compile(doc)
    steps = [program.run(result.params, {"x": x[i:i + 32]}, outputs=("trajectory",))
             ["trajectory"].shape[1] for i in range(0, len(x), 32)]
    assert max(steps) < max_iter, f"the state should settle before max_iter: {steps}"
    assert len(set(steps)) > 1, f"the depth should depend on the input: {steps}"
