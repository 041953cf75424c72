"""Export to Python: the torch target computes what the engine computes.

Examples in float32 to 1e-5 (outputs, and gradients through autograd); every node type's
samples in every setting (top level, scan, while, both branch sides, select) in float64 to
1e-6 and at the top level in float32 to 1e-5; training steps with torch.optim against the
engine's Session.step on the same batches; the exported script's training against core.train.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import core
from core.export import export_source
from tests.export_check import compare_torch, load_module
from tests.sample_graphs import example_feeds, full_params, sample_documents

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
    from core.trainer import Session

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


def test_model_runs_on_another_dtype_and_keeps_state_names(tmp_path):
    doc = core.load(EXAMPLES[[p.name for p in EXAMPLES].index("blocks-and-gate.wg.json")])
    module = load_module(export_source(doc, "torch"), tmp_path)
    model = module.Model()
    assert {k for k in model.state_dict()} == {key for key, _ in module.PARAM_NAMES.values()}
    assert "res1.fc.weight" in model.state_dict() and "res2.fc.weight" in model.state_dict()
    assert type(model.res1) is type(model.res2)
