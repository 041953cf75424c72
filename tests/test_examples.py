"""The example documents in assets/examples/: what a newcomer opens first.

Every example loads, passes `wiregrad check`, compiles and is laid out left to right without
overlapping nodes; every one with a training section trains, with its own seed, to the target
the issue sets for it, and the quick ones with four other seeds too (the parity RNN's torch
export as well; bench/example_seeds.py prints the whole table). The parity RNN is also
compared with a loop-free MLP of the same size on the same data, and the while-loop example is
checked to stop early, after a number of steps that depends on its input. Of the version-2
examples, the TreeRNN is compared with a flat RNN of the same size reading the same
expressions, the per-sample while loop is checked to take each sample's own number of steps,
and the Siamese net to use one set of weights twice.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.cli import main as cli_main
from wiregrad.core.datasets import moons, seq_parity
from wiregrad.core.generators import expr_trees, rotations, spiral
from wiregrad.core.trainer import read_plan

from wiregrad import core

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("*.wg.json"))
# Spec examples that only show the format (no loss, no data).
NOT_TRAINED = {"blocks-and-gate.wg.json"}

# file -> (figure of the last epoch, "min" or "max", bound, epochs for the test: None = its own)
TARGETS = {name: (t["figure"], t["sense"], t["bound"], None) for name, t in json.loads(
    (EXAMPLES_DIR / "targets.json").read_text(encoding="utf-8")).items() if name != "_about"}

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
    assert len(EXAMPLES) >= 10
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


def _assert_reaches_target(name: str, final: dict, how: str = "") -> None:
    figure, sense, bound, _ = TARGETS[name]
    assert figure in final, f"{name}{how}: no {figure} in {sorted(final)}"
    value = final[figure]
    assert np.isfinite(value), f"{name}{how}: {figure} {value}"
    if sense == "min":
        assert value >= bound, f"{name}{how}: {figure} {value:.4f} < {bound}"
    else:
        assert value < bound, f"{name}{how}: {figure} {value:.4f} >= {bound}"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_example_trains_to_its_target(name):
    _, result = _trained(name)
    _assert_reaches_target(name, result.final())


# -- robust to the seed ----------------------------------------------------------------------
# Every example reaches its target with training seeds 0-4 (`--seed`: the initial parameters,
# the shuffling and dropout; the dataset and its split keep the document's own seeds), in the
# engine and in the torch export (float32): `python -m bench.example_seeds` prints that table.
# Here the examples that train in about a second do so with the seeds other than their own
# (their own is trained above), and the headline parity RNN's torch export with seeds 2 and 4
# (the ones its earlier tanh cell failed with in float32).

SEEDS = range(5)
SEEDED = ["adaptive-while.wg.json", "attention-max.wg.json", "iris-csv.wg.json",
          "parity-rnn.wg.json", "ponder.wg.json", "sequence-rnn.wg.json", "siamese.wg.json",
          "sine-regression.wg.json", "spiral-mlp.wg.json"]


def _other_seeds(name: str) -> list:
    return [s for s in SEEDS if s != _raw(name)["training"]["seed"]]


@pytest.mark.parametrize("name,seed", [(n, s) for n in SEEDED for s in _other_seeds(n)])
def test_example_reaches_its_target_with_other_seeds(name, seed):
    result = core.train(core.load(_path(name)), seed=seed, base_dir=str(EXAMPLES_DIR))
    _assert_reaches_target(name, result.final(), f" (seed {seed})")


@pytest.mark.parametrize("seed", [2, 4])
def test_parity_rnn_exported_to_torch_reaches_its_target_in_float32(seed, tmp_path):
    """The exported script's own training loop (float32, torch.optim) with a seed other than
    the document's: rounding must not send it down another path."""
    torch = pytest.importorskip("torch")
    from wiregrad.core.export import export_source

    from tests.export_check import load_module

    name = "parity-rnn.wg.json"
    assert seed != _raw(name)["training"]["seed"]
    doc = core.load(_path(name))
    module = load_module(export_source(doc, "torch", data_dir=str(EXAMPLES_DIR)), tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small model: one thread is faster than two that contend
    try:
        history, _ = module.train_torch(seed=seed, device="cpu", verbose=False)
    finally:
        torch.set_num_threads(threads)
    _assert_reaches_target(name, history[-1], f" (torch export, seed {seed})")


def test_training_is_repeatable_for_an_example():
    doc = core.load(_path("iris-csv.wg.json"))
    a, b = core.train(doc, epochs=5), core.train(doc, epochs=5)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


# -- the RNN against a loop-free MLP of the same size ----------------------------------------

def _node(id_: str, type_: str, params: dict | None = None, **extra) -> dict:
    return {"id": id_, "type": type_, **({"params": params} if params else {}), **extra}


def _graph(nodes: list, edges: list) -> dict:
    """nodes: (id, type[, params[, extra fields]]); edges: ("a.y", "b.x")."""
    return {"nodes": [_node(*n[:3], **(n[3] if len(n) > 3 else {})) for n in nodes],
            "edges": [{"from": a, "to": b} for a, b in edges]}


def _baseline(name: str, graph: dict, training: dict) -> core.Document:
    """A document to compare an example with: its own graph, the example's training."""
    return core.loads(json.dumps({"format": "wiregrad.graph", "version": 2, "name": name,
                                  "graph": graph, "training": training}))


def _mlp_document(training: dict, steps: int, hidden: int) -> core.Document:
    return _baseline("Parity with a loop-free MLP", _graph(
        [("seq", "Input", {"shape": [steps, 1]}), ("flat", "Flatten"),
         ("fc1", "Linear", {"out_features": hidden}), ("act", "Tanh"),
         ("fc2", "Linear", {"out_features": 2}), ("logits", "Output"),
         ("label", "Input", {"shape": [], "dtype": "int64"}), ("ce", "CrossEntropyLoss"),
         ("loss", "Output")],
        [("seq.y", "flat.x"), ("flat.y", "fc1.x"), ("fc1.y", "act.x"), ("act.y", "fc2.x"),
         ("fc2.y", "logits.x"), ("fc2.y", "ce.logits"), ("label.y", "ce.target"),
         ("ce.y", "loss.x")]), training)


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
    mlp_doc = _mlp_document(training, steps, hidden=16)
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


# -- version 2: structure that changes with each sample ----------------------------------------

def _flat_rnn_document(training: dict, hidden: int, cell: int) -> core.Document:
    """The TreeRNN's task for a plain RNN: the same tokens in prefix order, the same cell
    (token and state -> Linear -> ReLU -> Linear -> Tanh), the state after the last token."""
    body = _graph(
        [("tok", "Input", {"shape": [16], "role": "sequence"}),
         ("h", "Input", {"shape": [hidden], "role": "carry"}), ("join", "Concat", {"n": 2}),
         ("mix", "Linear", {"out_features": cell}), ("relu", "ReLU"),
         ("out", "Linear", {"out_features": hidden}), ("act", "Tanh"),
         ("h_next", "Output", {"role": "carry", "carry": "h"}),
         ("states", "Output", {"role": "stack"})],
        [("tok.y", "join.x0"), ("h.y", "join.x1"), ("join.y", "mix.x"), ("mix.y", "relu.x"),
         ("relu.y", "out.x"), ("out.y", "act.x"), ("act.y", "h_next.x"), ("act.y", "states.x")])
    training = dict(training, feeds={"prefix": "prefix", "last": "last", "label": "target"})
    return _baseline("Expressions read by a flat RNN", _graph(
        [("prefix", "Input", {"shape": [None], "dtype": "int64"}),
         ("embed", "Embedding", {"num_embeddings": 14, "embedding_dim": 16}),
         ("h0", "Constant", {"value": [0.0] * hidden}),
         ("rnn", "Loop", {"mode": "scan", "axis": 1}, {"body": body}),
         ("last", "Input", {"shape": [], "dtype": "int64"}), ("pick", "Gather"),
         ("readout", "Linear", {"out_features": 10}), ("logits", "Output"),
         ("label", "Input", {"shape": [], "dtype": "int64"}), ("ce", "CrossEntropyLoss"),
         ("loss", "Output")],
        [("prefix.y", "embed.x"), ("embed.y", "rnn.tok"), ("h0.y", "rnn.h"),
         ("rnn.states", "pick.x"), ("last.y", "pick.index"), ("pick.y", "readout.x"),
         ("readout.y", "logits.x"), ("readout.y", "ce.logits"), ("label.y", "ce.target"),
         ("ce.y", "loss.x")]), training)


def _tree_feeds(trees: dict) -> dict:
    return {k: trees[k] for k in ("tokens", "children", "root")}


def test_a_treernn_evaluates_expressions_a_flat_rnn_of_the_same_size_cannot():
    name = "tree-expressions.wg.json"
    tree_doc, tree = _trained(name)
    training = _raw(name)["training"]
    flat_doc = _flat_rnn_document(training, hidden=64, cell=192)
    flat = core.train(flat_doc)  # the same trees, split, optimizer, epochs and seed
    assert 0.8 < _size(flat.params) / _size(tree.params) < 1.25, "comparable parameter counts"
    tree_acc, flat_acc = tree.final()["val_accuracy"], flat.final()["val_accuracy"]
    print(f"\nvalidation accuracy: TreeRNN {tree_acc:.3f}, flat RNN {flat_acc:.3f}")
    assert tree_acc >= 0.95 and flat_acc < 0.5, (tree_acc, flat_acc)

    # Trained on trees of at most 15 nodes, the TreeRNN evaluates trees of 17 to 31 nodes: it
    # has learned the operators, not the expressions.
    big = expr_trees(1000, min_nodes=17, max_nodes=31, seed=99)
    logits = core.compile(tree_doc).run(tree.params, _tree_feeds(big), outputs=("logits",))
    assert (logits["logits"].argmax(-1) == big["target"]).mean() >= 0.9


def test_ponder_takes_each_samples_own_number_of_steps_and_is_evaluated_per_sample():
    name = "ponder.wg.json"
    doc, result = _trained(name)
    program = core.compile(doc)
    data = rotations(300, max_steps=12, seed=5)
    feeds = {"x": data["x"], "steps": data["steps"]}
    steps = program.loop_steps(result.params, feeds)["ponder"]
    np.testing.assert_array_equal(steps, data["steps"])  # k steps for a sample that asks k

    # The reported error is each sample's own: the same as running them one at a time.
    pred = program.run(result.params, feeds, outputs=("pred",))["pred"]
    alone = np.concatenate([program.run(result.params, {k: v[i:i + 1] for k, v in feeds.items()},
                                        outputs=("pred",))["pred"] for i in range(20)])
    np.testing.assert_allclose(pred[:20], alone, rtol=1e-5, atol=1e-6)
    assert np.mean((pred - data["target"]) ** 2) < 0.001

    # Trained on up to 12 steps, the learned step still holds for 20.
    longer = rotations(300, max_steps=20, seed=6)
    far = longer["steps"] > 12
    pred = program.run(result.params, {"x": longer["x"], "steps": longer["steps"]},
                       outputs=("pred",))["pred"]
    assert np.mean((pred[far] - longer["target"][far]) ** 2) < 0.01


def test_the_siamese_net_uses_one_encoder_twice():
    name = "siamese.wg.json"
    doc, result = _trained(name)
    assert not any(p.startswith("enc_b/") for p in result.params), "enc_b owns no weights"
    assert any(p.startswith("enc_a/") for p in result.params)
    program = core.compile(doc)
    points = spiral(600, classes=3, seed=3)
    a, b = points["x"][:300], points["x"][300:]
    ab = program.run(result.params, {"a": a, "b": b}, outputs=("logits",))["logits"]
    ba = program.run(result.params, {"a": b, "b": a}, outputs=("logits",))["logits"]
    np.testing.assert_allclose(ab, ba, rtol=1e-5, atol=1e-5)  # the same encoder on both sides
    same = (points["y"][:300] == points["y"][300:]).astype(np.int64)
    assert (ab.argmax(-1) == same).mean() >= 0.9  # points never seen in a pair


# -- version 2: the larger node library -----------------------------------------------------------

def test_the_digits_cnn_keeps_running_statistics_that_evaluation_uses():
    doc, result = _trained("digits-cnn.wg.json")
    for bn in ("bn1", "bn2"):
        assert np.any(result.params[f"{bn}.running_var"] != 1.0), "training moved them"
    from wiregrad.core.datasets import load_dataset, split

    _, val = split(load_dataset({"kind": "digits"}), 0.2, 0)
    program = core.compile(doc)
    logits = program.run(result.params, {"image": val["x"]}, outputs=("logits",))["logits"]
    assert (logits.argmax(-1) == val["y"]).mean() >= 0.97  # evaluation mode: running statistics


def test_an_lstm_solves_the_adding_problem_a_tanh_rnn_of_the_same_size_cannot():
    name = "lstm-sequence.wg.json"
    _, lstm = _trained(name)
    hidden = 64  # about the LSTM's 32 x 4 gates in parameters
    rnn = core.train(_baseline("The adding problem with a tanh RNN", _graph(
        [("seq", "Input", {"shape": [None, 2]}), ("h0", "Constant", {"value": [0.0] * hidden}),
         ("rnn", "Loop", {"mode": "scan", "axis": 1}, {"body": _graph(
             [("x", "Input", {"shape": [2], "role": "sequence"}),
              ("h", "Input", {"shape": [hidden], "role": "carry"}), ("join", "Concat"),
              ("cell", "Linear", {"out_features": hidden}), ("act", "Tanh"),
              ("h_next", "Output", {"role": "carry", "carry": "h"})],
             [("x.y", "join.x0"), ("h.y", "join.x1"), ("join.y", "cell.x"),
              ("cell.y", "act.x"), ("act.y", "h_next.x")])}),
         ("readout", "Linear", {"out_features": 1}), ("pred", "Output"),
         ("target", "Input", {"shape": [1]}), ("mse", "MSELoss"), ("loss", "Output")],
        [("seq.y", "rnn.x"), ("h0.y", "rnn.h"), ("rnn.h_next", "readout.x"),
         ("readout.y", "pred.x"), ("readout.y", "mse.pred"), ("target.y", "mse.target"),
         ("mse.y", "loss.x")]), _raw(name)["training"]))
    assert 0.8 < _size(rnn.params) / _size(lstm.params) < 1.25, "comparable parameter counts"
    lstm_mse, rnn_mse = lstm.final()["val_mse"], rnn.final()["val_mse"]
    print(f"\nvalidation MSE on the adding problem (50 steps): LSTM {lstm_mse:.4f}, "
          f"tanh RNN {rnn_mse:.4f} (always guessing 1: about 0.167)")
    assert lstm_mse < 0.01 and rnn_mse > 0.1, (lstm_mse, rnn_mse)


def test_the_attention_needs_its_causal_mask():
    name = "attention-max.wg.json"
    _, masked = _trained(name)
    data = _raw(name)
    graph = data["graph"]
    unmasked = core.train(_baseline("Running maximum, attention without a mask", {
        "nodes": [n for n in graph["nodes"] if n["id"] != "causal"],
        "edges": [e for e in graph["edges"] if e["from"] != "causal.y"]}, data["training"]))
    # Seeing the future, it answers the maximum of the whole sequence: right only where the
    # running maximum has already reached it.
    assert masked.final()["val_accuracy"] >= 0.99
    assert unmasked.final()["val_accuracy"] < 0.8


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_files_are_written_as_save_writes_them(name):
    # So that opening one, editing and saving changes only what was edited (no reordering).
    text = _path(name).read_text(encoding="utf-8")
    assert json.dumps(core.load(_path(name)).to_dict(), indent=2, ensure_ascii=False) + "\n" == text
