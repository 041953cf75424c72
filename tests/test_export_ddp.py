"""The exported torch script on more processes (DistributedDataParallel under torchrun).

Two CPU processes (gloo) with a per-process batch of 16 train to the very figures one process
does with a global batch of 32: each process takes its contiguous part of the same shuffled
global batches, the loss of each part is weighted by its share of the rows, and losses and
metrics are summed over the processes before they are logged. DDP is told to look for unused
parameters only when the graph can leave some out of a step (branches, routes, weights that do
not lead to the loss), so a plain graph trains without its warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.export import export_source

from tests.export_check import load_module
from tests.sample_graphs import example_feeds
from wiregrad import core

torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).parent.parent / "assets" / "examples"
TRAINED = sorted(p for p in EXAMPLES.glob("*.wg.json") if core.load(p).training is not None)


def mlp_document(**training) -> dict:
    """The spiral classifier example, small: 126 rows, 101 of them to train on, so that a global
    batch of 32 ends each epoch with a batch of 5 rows, which 2 processes split unevenly; and
    evaluated 8 rows at a time, so that both processes evaluate part of each set."""
    doc = json.loads((EXAMPLES / "spiral-mlp.wg.json").read_text(encoding="utf-8"))
    doc["training"]["dataset"]["n"] = 126
    doc["training"].update({"epochs": 3, "batch_size": 16, "eval_batch_size": 8}, **training)
    return doc


def document(data: dict) -> core.Document:
    return core.loads(json.dumps(data))


def with_nodes(doc: dict, nodes: list, edges: list) -> core.Document:
    doc["graph"]["nodes"] += nodes
    doc["graph"]["edges"] += [{"from": a, "to": b} for a, b in edges]
    return document(doc)


def branch_document() -> core.Document:
    """The classifier with a scalar Branch after its first layer: a Linear on one side only."""
    doc = mlp_document()
    doc["graph"]["edges"] = [e for e in doc["graph"]["edges"] if e["to"] != "act1.x"]
    then = {"nodes": [{"id": "h", "type": "Input"},
                      {"id": "lin", "type": "Linear", "params": {"out_features": 32}},
                      {"id": "out", "type": "Output"}],
            "edges": [{"from": "h.y", "to": "lin.x"}, {"from": "lin.y", "to": "out.x"}]}
    other = {"nodes": [{"id": "h", "type": "Input"}, {"id": "act", "type": "Tanh"},
                       {"id": "out", "type": "Output"}],
             "edges": [{"from": "h.y", "to": "act.x"}, {"from": "act.y", "to": "out.x"}]}
    return with_nodes(doc, [{"id": "level", "type": "Mean"},
                            {"id": "gate", "type": "Branch", "params": {"mode": "scalar"},
                             "then": then, "else": other}],
                      [("x.y", "level.x"), ("level.y", "gate.cond"), ("hidden1.y", "gate.h"),
                       ("gate.out", "act1.x")])


def find_unused(source: str) -> bool:
    line = next(x for x in source.splitlines() if x.startswith("FIND_UNUSED_PARAMETERS = "))
    return line.split("=")[1].split("#")[0].strip() == "True"


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    path = folder / "mlp_torch.py"
    path.write_text(export_source(document(mlp_document()), "torch"), encoding="utf-8")
    return path


# -- sharding ---------------------------------------------------------------------------------


def test_each_process_takes_a_contiguous_part_weighted_by_its_share(script, tmp_path):
    module = load_module(script.read_text(encoding="utf-8"), tmp_path)
    values = np.random.default_rng(0).normal(size=40)
    for world in (1, 2, 3):
        for n in (1, 2, 5, 16, 17):
            rows = np.arange(100, 100 + n)
            parts = [module.rank_rows(rows, rank, world) for rank in range(world)]
            taken = np.concatenate([r for r, w in parts if w > 0])
            np.testing.assert_array_equal(taken, rows)
            # BatchNorm cannot train on one row: no part has one out of more
            assert n == 1 or all(len(r) > 1 for r, w in parts if w > 0)
            # DDP averages the processes' gradients: with these weights, the step's loss is
            # the mean over the whole global batch
            mean = sum(w * values[r - 100].mean() for r, w in parts) / world
            assert mean == pytest.approx(values[:n].mean(), rel=1e-12)


def test_the_global_batch_is_the_per_process_batch_times_the_processes(script, tmp_path):
    module = load_module(script.read_text(encoding="utf-8"), tmp_path)
    assert module.per_process_batch(None, 4) == 16  # the training section's batch_size
    assert module.per_process_batch(32, 2) == 16
    assert module.per_process_batch(32, 1) == 32
    with pytest.raises(ValueError, match="does not split into 3"):
        module.per_process_batch(32, 3)


# -- find_unused_parameters -------------------------------------------------------------------


def test_ddp_looks_for_unused_parameters_only_where_a_step_can_leave_some_out():
    plain = document(mlp_document())
    assert not find_unused(export_source(plain, "torch"))
    assert find_unused(export_source(branch_document(), "torch"))
    aside = with_nodes(mlp_document(), [{"id": "aux", "type": "Linear",
                                         "params": {"out_features": 2}},
                                        {"id": "aux_out", "type": "Output"}],
                       [("act2.y", "aux.x"), ("aux.y", "aux_out.x")])
    assert find_unused(export_source(aside, "torch"))  # aux does not lead to the loss


@pytest.mark.parametrize("path", TRAINED, ids=lambda p: p.name.split(".")[0])
def test_a_step_reaches_every_weight_where_the_script_says_it_does(path, tmp_path):
    doc = core.load(path)
    module = load_module(export_source(doc, "torch"), tmp_path)
    if module.FIND_UNUSED_PARAMETERS:
        pytest.skip("the script asks DDP to look for unused parameters")
    model = module.Model().double()
    module.load_params(model, core.compile(doc).init_params(0))
    feeds = example_feeds(doc, core.compile(doc), path)
    tensors = {k: torch.as_tensor(v) if np.asarray(v).dtype == np.int64
               else torch.as_tensor(v, dtype=torch.float64) for k, v in feeds.items()}
    model(**tensors)[doc.training["loss"]].backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing


# -- two processes against one ------------------------------------------------------------------


def run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_two_processes_train_as_one_with_the_same_global_batch(script):
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("this PyTorch has no torch.distributed with gloo")
    folder = script.parent
    common = ["--device", "cpu", "--dtype", "float64"]
    run([sys.executable, str(script), *common, "--global-batch", "32", "--history", "one.json"],
        folder)
    # per-process batch 16 (the training section's) on 2 processes: a global batch of 32
    two = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(script), *common, "--history", "two.json"], folder)
    one_history = json.loads((folder / "one.json").read_text(encoding="utf-8"))
    two_history = json.loads((folder / "two.json").read_text(encoding="utf-8"))
    assert len(one_history) == len(two_history) == 3
    for a, b in zip(one_history, two_history):
        assert set(a) == set(b) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-7), (a["epoch"], key)
    assert "DDP: 2 processes, global batch 32 (16 each), gloo" in two.stdout
    assert "find_unused_parameters" not in two.stderr
