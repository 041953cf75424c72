"""Export to Python: the torch target computes what the engine computes.

Examples in float32 to 1e-5 (outputs, and gradients through autograd); every node type's
samples in every setting (top level, scan, while, both branch sides, select) in float64 to
1e-6 and at the top level in float32 to 1e-5; training steps with torch.optim against the
engine's Session.step on the same batches; the exported script's training against core.train.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core.export import export_source

from tests.export_check import compare_torch, load_module
from tests.sample_graphs import example_feeds, full_params, sample_documents
from wiregrad import core

torch = pytest.importorskip("torch")

EXAMPLES = sorted((Path(__file__).parent.parent / "assets" / "examples").glob("*.wg.json"))
CASES = list(sample_documents())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name.split(".")[0])
def test_examples_match_the_engine_in_float32(path, tmp_path):
    doc = core.load(path)
    program = core.compile(doc)
    compare_torch(doc, program.init_params(3), example_feeds(doc, program, path), tmp_path,
                  rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_node_type_matches_the_engine(case, tmp_path):
    name, doc, data_params, feeds = case
    params = full_params(doc, data_params)
    module = load_module(export_source(doc, "torch"), tmp_path)
    compare_torch(doc, params, feeds, tmp_path, rtol=1e-6, module=module, dtype="float64")
    if name.endswith("-plain"):
        compare_torch(doc, params, feeds, tmp_path, rtol=1e-5, module=module)


def test_training_steps_follow_the_engine(tmp_path):
    """Five Adam steps with torch.optim on the engine's own batches leave the parameters
    where the engine's Session.step leaves them (float32)."""
    from wiregrad.core.trainer import Session

    path = EXAMPLES[[p.name for p in EXAMPLES].index("spiral-mlp.wg.json")]
    doc = core.load(path)
    session = Session(doc, base_dir=str(path.parent))
    module = load_module(export_source(doc, "torch"), tmp_path)
    model = module.Model()
    module.load_params(model, session.param_dict(copy=True))
    optimizer = torch.optim.Adam(model.parameters(), lr=session.plan.optimizer["lr"])
    for k, feeds in enumerate(session.epoch_batches()):
        if k == 5:
            break
        engine_loss = session.step(feeds)
        optimizer.zero_grad()
        tensors = {name: torch.as_tensor(v) for name, v in feeds.items()}
        loss = model(**tensors)[session.plan.loss]
        loss.backward()
        optimizer.step()
        assert loss.item() == pytest.approx(engine_loss, rel=1e-5)
    mine = module.export_params(model)
    for name, value in session.param_dict().items():
        np.testing.assert_allclose(mine[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


def test_exported_torch_training_follows_the_engine(tmp_path):
    path = EXAMPLES[[p.name for p in EXAMPLES].index("sequence-rnn.wg.json")]
    doc = core.load(path)
    module = load_module(export_source(doc, "torch", data_dir=str(path.parent.resolve())),
                         tmp_path)
    history, _ = module.train_torch(epochs=1, device="cpu", verbose=False)
    result = core.train(doc, epochs=1, base_dir=str(path.parent))
    for key in ("loss", "val_loss", "mse", "val_mse", "lr"):
        assert history[0][key] == pytest.approx(result.history[0][key], rel=1e-4), key


def test_a_float64_document_exports_a_float64_model_that_trains_as_the_engine(tmp_path):
    """Its Model, initial values and saved weights keep float64, so two epochs agree with
    core.train to float64 rounding, not float32's."""
    path = EXAMPLES[[p.name for p in EXAMPLES].index("spiral-mlp.wg.json")]
    doc = core.load(path)
    doc.training["dtype"] = "float64"
    module = load_module(export_source(doc, "torch"), tmp_path)
    assert {p.dtype for p in module.Model().parameters()} == {torch.float64}
    assert {v.dtype for v in module.init_params(0).values()} == {np.dtype("float64")}
    history, _ = module.train_torch(epochs=2, device="cpu", verbose=False)
    result = core.train(doc, epochs=2, base_dir=str(path.parent))
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert history[-1][key] == pytest.approx(result.history[-1][key], rel=1e-12), key


def test_model_runs_on_another_dtype_and_keeps_state_names(tmp_path):
    doc = core.load(EXAMPLES[[p.name for p in EXAMPLES].index("blocks-and-gate.wg.json")])
    module = load_module(export_source(doc, "torch"), tmp_path)
    model = module.Model()
    assert {k for k in model.state_dict()} == {key for key, _ in module.PARAM_NAMES.values()}
    assert "res1.fc.weight" in model.state_dict() and "res2.fc.weight" in model.state_dict()
    assert type(model.res1) is type(model.res2)


def _prediction_model(name, tmp_path):
    doc = core.load(EXAMPLES[[p.name for p in EXAMPLES].index(f"{name}.wg.json")])
    program = core.compile(doc)
    params = program.init_params(2)
    module = load_module(export_source(doc, "torch"), tmp_path)
    return program, params, module.load_params(module.Model(), params).eval()


def test_torch_compile_takes_the_whole_model_without_a_graph_break(tmp_path):
    """fullgraph=True refuses any graph break; the Inputs alone and with the target each
    trace to one graph (backend "eager" checks the capture without a C++ compiler)."""
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available")
    program, params, model = _prediction_model("spiral-mlp", tmp_path)
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    try:
        compiled = torch.compile(model, fullgraph=True, backend=backend)
        x = torch.as_tensor(np.random.default_rng(0).normal(size=(6, 2)), dtype=torch.float32)
        label = torch.tensor([0, 1, 2, 0, 1, 2])
        with torch.no_grad():
            predicted = compiled(x)
            both = compiled(x=x, label=label)
    finally:
        torch._dynamo.reset()
    assert len(graphs) == 2
    assert set(predicted) == {"logits"} and set(both) == {"logits", "loss"}
    expected = program.run(params, {"x": x.numpy(), "label": label.numpy()})
    np.testing.assert_allclose(predicted["logits"].numpy(), expected["logits"], rtol=1e-5,
                               atol=1e-6)
    assert both["loss"].item() == pytest.approx(float(expected["loss"]), rel=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jit: deprecated, still there
@pytest.mark.parametrize("name", ["sine-regression", "blocks-and-gate", "sequence-rnn"])
def test_torch_jit_script_takes_a_model_whose_nodes_script(name, tmp_path):
    """forward is typed (every Input `Tensor | None`, a `dict[str, Tensor]` back), so
    TorchScript compiles it where the nodes' code itself scripts; saved and loaded, it gives
    the predictions from the Inputs alone."""
    program, params, model = _prediction_model(name, tmp_path)
    scripted = torch.jit.script(model)
    torch.jit.save(scripted, str(tmp_path / "model.pt"))
    loaded = torch.jit.load(str(tmp_path / "model.pt"))
    first = next(iter(program.input_shapes))
    shape = tuple(7 if d is None else d for d in program.input_shapes[first][1:])
    x = np.random.default_rng(1).normal(size=(5,) + shape)
    x = x.astype(np.float32)
    expected = program.run(params, {first: x})
    with torch.no_grad():
        for got in (scripted(torch.as_tensor(x)), loaded(**{first: torch.as_tensor(x)})):
            assert set(got) == set(expected)
            for key, value in expected.items():
                np.testing.assert_allclose(got[key].numpy(), value, rtol=1e-5, atol=1e-6)


def _spiral_with(loss: dict) -> core.Document:
    """spiral-mlp with its loss node replaced: a CrossEntropyLoss with options, or a
    LogSoftmax and an NLLLoss."""
    raw = json.loads((EXAMPLES[0].parent / "spiral-mlp.wg.json").read_text(encoding="utf-8"))
    graph = raw["graph"]
    graph["nodes"] = [n for n in graph["nodes"] if n["id"] != "ce"]
    graph["edges"] = [e for e in graph["edges"] if "ce." not in e["from"] + e["to"]]
    if loss["type"] == "NLLLoss":
        graph["nodes"].append({"id": "logp", "type": "LogSoftmax"})
        graph["edges"].append({"from": "head.y", "to": "logp.x"})
        scores = ("logp.y", "ce.logp")
    else:
        scores = ("head.y", "ce.logits")
    graph["nodes"].append({"id": "ce", **loss})
    graph["edges"] += [{"from": scores[0], "to": scores[1]},
                       {"from": "label.y", "to": "ce.target"}, {"from": "ce.y", "to": "loss.x"}]
    return core.loads(json.dumps(raw))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jit: deprecated, still there
@pytest.mark.parametrize("loss", [
    {"type": "CrossEntropyLoss"},
    {"type": "CrossEntropyLoss", "params": {"weight": [1, 2, 1], "label_smoothing": 0.1,
                                            "ignore_index": 2}},
    {"type": "NLLLoss", "params": {"weight": [2, 1, 1], "reduction": "sum"}},
], ids=["plain", "options", "nll"])
def test_torch_jit_script_takes_the_class_losses(loss, tmp_path):
    """Their helpers are typed (and integer class weights written as floats), so a scripted
    model gives the engine's loss."""
    doc = _spiral_with(loss)
    program = core.compile(doc)
    params = program.init_params(4)
    module = load_module(export_source(doc, "torch"), tmp_path)
    scripted = torch.jit.script(module.load_params(module.Model(), params).eval())
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 2)).astype(np.float32)
    label = rng.integers(0, 3, size=7)
    expected = program.run(params, {"x": x, "label": label})["loss"]
    with torch.no_grad():
        got = scripted(x=torch.as_tensor(x), label=torch.as_tensor(label))["loss"]
    assert got.item() == pytest.approx(float(expected), rel=1e-5)

