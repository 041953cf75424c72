"""Buffers: tensors a program keeps and saves but does not train, such as BatchNorm's running
statistics (interfaces.md, version 2). Training updates them as PyTorch does; evaluation reads
them; weights files and both exports carry them."""

from __future__ import annotations

import numpy as np
import pytest
from wiregrad.core.export import export_source

from tests.export_check import load_module
from tests.program_check import check_gradients, document, graph
from wiregrad import core

RNG = np.random.default_rng(0)


def _net():
    """x -> Linear -> BatchNorm -> Tanh -> Linear -> cross-entropy."""
    return document(
        [("x", "Input", {"shape": [3]}), ("label", "Input", {"shape": [], "dtype": "int64"}),
         ("fc", "Linear", {"out_features": 4}), ("bn", "BatchNorm", {"momentum": 0.2}),
         ("act", "Tanh", {}), ("head", "Linear", {"out_features": 2}),
         ("ce", "CrossEntropyLoss", {}), ("loss", "Output", {}), ("logits", "Output", {})],
        [("x.y", "fc.x"), ("fc.y", "bn.x"), ("bn.y", "act.x"), ("act.y", "head.x"),
         ("head.y", "ce.logits"), ("label.y", "ce.target"), ("ce.y", "loss.x"),
         ("head.y", "logits.x")])


def _torch_net(params):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    fc, bn, head = (m.double() for m in (nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.2),
                                         nn.Linear(4, 2)))
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(params["fc.weight"].T))
        fc.bias.copy_(torch.tensor(params["fc.bias"]))
        bn.weight.copy_(torch.tensor(params["bn.weight"]))
        bn.bias.copy_(torch.tensor(params["bn.bias"]))
        head.weight.copy_(torch.tensor(params["head.weight"].T))
        head.bias.copy_(torch.tensor(params["head.bias"]))
    return nn.Sequential(fc, bn, nn.Tanh(), head)


def _feeds(rows=8):
    return {"x": RNG.normal(size=(rows, 3)), "label": RNG.integers(0, 2, rows)}


def test_init_params_holds_the_buffers_and_gradients_do_not():
    program = core.compile(_net(), "float64")
    params = program.init_params(0)
    assert program.buffer_names == {"bn.running_mean", "bn.running_var"}
    np.testing.assert_array_equal(params["bn.running_mean"], np.zeros(4))
    np.testing.assert_array_equal(params["bn.running_var"], np.ones(4))
    _, grads = program.value_and_grad(params, _feeds())
    assert set(grads) == set(params) - program.buffer_names
    assert program.trainable_names == [n for n in program.param_names
                                       if n not in program.buffer_names]


def test_training_steps_move_the_running_statistics_as_pytorch_does():
    torch = pytest.importorskip("torch")
    program = core.compile(_net(), "float64")
    params = program.init_params(3)
    model = _torch_net(params).train()
    for _ in range(3):
        feeds = _feeds()
        program.value_and_grad(params, feeds, train=True)
        model(torch.tensor(feeds["x"]))
    bn = model[1]
    np.testing.assert_allclose(params["bn.running_mean"], bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(params["bn.running_var"], bn.running_var.numpy(), rtol=1e-12)

    # Evaluation normalises by the running statistics: PyTorch's eval mode.
    feeds = _feeds(5)
    ours = program.run(params, feeds, outputs=("logits",))["logits"]
    theirs = model.eval()(torch.tensor(feeds["x"])).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    before = params["bn.running_mean"].copy()
    program.run(params, feeds)  # not training: nothing moves
    np.testing.assert_array_equal(params["bn.running_mean"], before)


def test_gradients_are_exact_in_training_and_in_evaluation():
    program = core.compile(_net(), "float64")
    params = program.init_params(1)
    params["bn.running_mean"] = RNG.normal(size=4)
    params["bn.running_var"] = RNG.uniform(0.5, 2.0, size=4)
    for train in (True, False):
        check_gradients(program, params, _feeds(), train=train)


def test_a_params_dict_of_another_float_type_gets_the_updated_buffers():
    program = core.compile(_net(), "float32")
    params = {k: v.astype(np.float64) for k, v in program.init_params(0).items()}
    program.value_and_grad(params, _feeds(), train=True)
    assert params["bn.running_mean"].dtype == np.float32  # the updated copy replaced it
    assert np.any(params["bn.running_mean"] != 0)


def test_training_on_a_batch_of_one_is_the_error_pytorch_gives_naming_the_node():
    program = core.compile(_net(), "float64")
    with pytest.raises(core.GraphError, match="more than 1 value per channel") as info:
        program.value_and_grad(program.init_params(0), _feeds(1), train=True)
    assert info.value.node == "bn"
    program.run(program.init_params(0), _feeds(1))  # evaluating one sample is fine


def test_a_route_branch_updates_the_statistics_from_the_samples_it_routes_only():
    side = graph([("x", "Input", {}), ("bn", "BatchNorm", {}), ("y", "Output", {})],
                 [("x.y", "bn.x"), ("bn.y", "y.x")])
    plain = graph([("x", "Input", {}), ("y", "Output", {})], [("x.y", "y.x")])
    doc = document(
        [("x", "Input", {"shape": [2]}), ("c", "Input", {"shape": []}),
         ("br", "Branch", {"mode": "route"}, {"then": side, "else": plain}),
         ("s", "Sum", {}), ("loss", "Output", {})],
        [("x.y", "br.x"), ("c.y", "br.cond"), ("br.y", "s.x"), ("s.y", "loss.x")])
    program = core.compile(doc, "float64")
    params = program.init_params(0)
    x, c = RNG.normal(size=(6, 2)), np.array([1.0, -1, 1, 1, -1, 1])
    program.value_and_grad(params, {"x": x, "c": c}, train=True)
    routed = x[c > 0]
    np.testing.assert_allclose(params["br/then/bn.running_mean"], 0.1 * routed.mean(axis=0))


def test_trained_weights_carry_the_buffers(tmp_path):
    doc = _net()
    doc.training = {"dataset": {"kind": "moons", "n": 200, "seed": 0}, "feeds": {"label": "y"},
                    "loss": "loss", "optimizer": {"type": "adam", "lr": 0.05},
                    "batch_size": 20, "epochs": 3, "seed": 0,
                    "metrics": [{"type": "accuracy", "pred": "logits", "target": "label"}]}
    doc.graph.node("fc").params["out_features"] = 4
    doc.graph.node("x").params["shape"] = [2]
    result = core.train(doc)
    assert {"bn.running_mean", "bn.running_var"} <= set(result.params)
    assert np.any(result.params["bn.running_mean"] != 0), "training moved them"
    # The reported validation accuracy is evaluation mode's: with the running statistics.
    assert result.final()["val_accuracy"] > 0.7


def test_the_exports_carry_and_update_the_buffers(tmp_path):
    torch = pytest.importorskip("torch")
    doc = _net()
    program = core.compile(doc, "float32")
    params = program.init_params(2)
    feeds = {"x": RNG.normal(size=(8, 3)).astype(np.float32), "label": RNG.integers(0, 2, 8)}
    program.value_and_grad(params, feeds, train=True)  # statistics away from zeros and ones

    numpy_module = load_module(export_source(doc, "numpy"), tmp_path)
    assert set(numpy_module.init_params(2)) == set(params)
    assert set(numpy_module.BUFFER_NAMES) == program.buffer_names
    mine = {k: v.copy() for k, v in params.items()}
    _, grads = numpy_module.value_and_grad(mine, feeds, train=True)
    assert set(grads) == set(params) - program.buffer_names
    program.value_and_grad(params, feeds, train=True)
    np.testing.assert_allclose(mine["bn.running_var"], params["bn.running_var"], rtol=1e-6)

    torch_module = load_module(export_source(doc, "torch"), tmp_path)
    model = torch_module.load_params(torch_module.Model(), params).eval()
    np.testing.assert_allclose(model.state_dict()["bn.running_mean"].numpy(),
                               params["bn.running_mean"])
    got = model(x=torch.tensor(feeds["x"]), label=torch.tensor(feeds["label"]))["logits"]
    expected = program.run(params, feeds, outputs=("logits",))["logits"]
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert set(torch_module.PARAM_NAMES) == set(params)
