"""The losses of format version 2 as a user meets them: `reduction` on every loss, the class
options of CrossEntropyLoss and NLLLoss (weight, ignore_index, label_smoothing), BCELoss,
HuberLoss and KLDivLoss. Shape rules and the errors they give; what the registry-wide checks
cannot draw (ignored targets, probabilities at 0 and 1, zeros in a KL target), against
PyTorch; errors at run time naming the node; and that version-1 documents compute what they
did."""

from __future__ import annotations

import numpy as np
import pytest
from wiregrad.core.codegen.single import NodeRun
from wiregrad.nodes.base import FLOAT, INT, ParamError, ShapeError, TensorType

from tests.program_check import document
from wiregrad import core, nodes

N = None  # the batch axis, unknown until run time

LOSSES = ("MSELoss", "L1Loss", "HuberLoss", "BCEWithLogitsLoss", "BCELoss", "KLDivLoss",
          "CrossEntropyLoss", "NLLLoss")


def T(*shape, dtype=FLOAT):
    return TensorType(tuple(shape), dtype)


def infer(type_name, params, **ins):
    node = nodes.get(type_name)
    return node.infer(node.resolve_params(params), ins)


def compiled(type_name, params, *xs):
    node = nodes.get(type_name)
    p = node.resolve_params(params)
    types = {port: TensorType(x.shape, INT if x.dtype.kind in "iu" else FLOAT)
             for port, x in zip(node.input_ports(p), xs)}
    return NodeRun(node, p, types, dtype=np.float64)


def forward(type_name, params, *xs):
    return compiled(type_name, params, *xs).forward(list(xs), [])[0]


# ---------------------------------------------------------------------------------------------
# Shape rules

SHAPES = [
    ("MSELoss", {"reduction": "sum"}, {"pred": T(N, 3), "target": T(3)}, ()),
    ("MSELoss", {"reduction": "none"}, {"pred": T(N, 3), "target": T(3)}, (N, 3)),
    ("L1Loss", {"reduction": "none"}, {"pred": T(N, 2, 2), "target": T(N, 2, 2)}, (N, 2, 2)),
    ("HuberLoss", {}, {"pred": T(N, 1), "target": T(N, 1)}, ()),
    ("BCELoss", {"reduction": "none"}, {"pred": T(N, 2), "target": T(N, 2)}, (N, 2)),
    ("BCEWithLogitsLoss", {"reduction": "none"}, {"logits": T(N), "target": T(N)}, (N,)),
    ("KLDivLoss", {}, {"logp": T(N, 4), "target": T(N, 4)}, ()),
    ("KLDivLoss", {"reduction": "none"}, {"logp": T(N, 4), "target": T(4)}, (N, 4)),
    ("CrossEntropyLoss", {"reduction": "none"},
     {"logits": T(N, 5, 3), "target": T(N, 5, dtype=INT)}, (N, 5)),
    ("CrossEntropyLoss", {"reduction": "none"}, {"logits": T(N, 3), "target": T(N, 3)}, (N,)),
    ("CrossEntropyLoss", {"weight": [1, 2, 3], "reduction": "sum"},
     {"logits": T(N, 3), "target": T(N, dtype=INT)}, ()),
    ("NLLLoss", {}, {"logp": T(N, None, 3), "target": T(N, None, dtype=INT)}, ()),
    ("NLLLoss", {"reduction": "none"}, {"logp": T(N, 3), "target": T(N, dtype=INT)}, (N,)),
]


@pytest.mark.parametrize("type_name, params, ins, shape", SHAPES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPES)])
def test_reduction_none_keeps_every_loss_and_the_others_give_one_number(type_name, params, ins,
                                                                         shape):
    assert infer(type_name, params, **ins)["y"] == TensorType(shape, FLOAT)


SHAPE_ERRORS = [
    ("CrossEntropyLoss", {"weight": [1.0, 2.0]}, {"logits": T(N, 3), "target": T(N, dtype=INT)},
     "logits", "has 3 classes on its last axis, but weight gives 2"),
    ("CrossEntropyLoss", {"weight": [[1.0, 2.0, 3.0]]},
     {"logits": T(N, 3), "target": T(N, dtype=INT)}, None, "one number per class"),
    ("CrossEntropyLoss", {"weight": 2.0}, {"logits": T(N, 3), "target": T(N, dtype=INT)}, None,
     "one number per class"),
    ("NLLLoss", {"weight": [1.0, 2.0]}, {"logp": T(N, 4), "target": T(N, dtype=INT)}, "logp",
     "but weight gives 2"),
    ("NLLLoss", {}, {"logp": T(N, 3), "target": T(N, 3)}, "target", "int64 class ids"),
    ("NLLLoss", {}, {"logp": T(N, 3), "target": T(N, 3, dtype=INT)}, "target",
     "shaped like logp without the last axis"),
    ("NLLLoss", {}, {"logp": T(N, None), "target": T(N, dtype=INT)}, "logp", "known last axis"),
    ("NLLLoss", {}, {"logp": T(N, 3, dtype=INT), "target": T(N, dtype=INT)}, "logp",
     "float tensor"),
    ("HuberLoss", {"delta": 0.0}, {"pred": T(N, 1), "target": T(N, 1)}, None,
     "delta must be greater than 0"),
    ("BCELoss", {}, {"pred": T(N, 1), "target": T(N)}, "target", "does not match"),
    ("KLDivLoss", {}, {"logp": T(N, 1), "target": T(N, 4)}, "target", "does not match"),
]


@pytest.mark.parametrize("type_name, params, ins, port, words", SHAPE_ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_ERRORS)])
def test_shape_error_names_port_and_says_why(type_name, params, ins, port, words):
    with pytest.raises(ShapeError) as err:
        infer(type_name, params, **ins)
    assert err.value.port == port
    assert words in err.value.message


@pytest.mark.parametrize("type_name, params, words", [
    ("MSELoss", {"reduction": "batchmean"}, "reduction must be one of mean, sum, none"),
    ("KLDivLoss", {"reduction": "avg"}, "batchmean, mean, sum, none"),
    ("CrossEntropyLoss", {"label_smoothing": 1.5}, "at most 1.0"),
    ("CrossEntropyLoss", {"ignore_index": 0.5}, "whole number"),
])
def test_parameter_values_outside_their_declaration_are_refused(type_name, params, words):
    with pytest.raises(ParamError, match=words):
        nodes.get(type_name).resolve_params(params)


def test_defaults_are_pytorchs():
    p = nodes.get("CrossEntropyLoss").resolve_params({})
    assert p == {"reduction": "mean", "weight": None, "ignore_index": -100,
                 "label_smoothing": 0.0}
    assert nodes.get("NLLLoss").resolve_params({}) == {"reduction": "mean", "weight": None,
                                                       "ignore_index": -100}
    assert nodes.get("KLDivLoss").resolve_params({}) == {"reduction": "batchmean",
                                                         "log_target": False}
    assert nodes.get("HuberLoss").resolve_params({}) == {"reduction": "mean", "delta": 1.0}
    for name in LOSSES:
        node = nodes.get(name)
        assert node.category == "Losses" and node.help
        assert all(param.help for param in node.params)


# ---------------------------------------------------------------------------------------------
# Against PyTorch, on inputs the registry-wide samples cannot draw


def against_torch(type_name, params, *xs, seed=0):
    """Forward and every float input's gradient (of sum(y * r), r random) against PyTorch's
    function, in float64."""
    torch = pytest.importorskip("torch")
    from tests.reference_losses import REFERENCE

    node = nodes.get(type_name)
    p = node.resolve_params(params)
    run = compiled(type_name, params, *xs)
    (y,) = run.forward(list(xs), [])
    r = np.random.default_rng(seed).standard_normal(np.shape(y))
    _, grads = run.grads(list(xs), [], [r])

    tensors = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in xs]
    (t_y,) = REFERENCE[type_name](p, dict(zip(node.input_ports(p), tensors)), {})
    np.testing.assert_allclose(y, t_y.detach().numpy(), rtol=1e-10, atol=1e-12)
    flowing = [t for t in tensors if t.requires_grad]
    t_grads = iter(torch.autograd.grad((t_y * torch.tensor(r)).sum(), flowing))
    for t, g in zip(tensors, grads):
        if t.requires_grad:
            np.testing.assert_allclose(g, next(t_grads).numpy(), rtol=1e-10, atol=1e-12)
        else:
            assert g is None
    return y


CLASS_OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"weight": [0.2, 1.0, 3.0, 0.5]},
    {"weight": [0.2, 1.0, 3.0, 0.5], "reduction": "none"},
    {"label_smoothing": 0.3},
    {"weight": [0.2, 1.0, 3.0, 0.5], "label_smoothing": 0.3},
    {"weight": [0.2, 1.0, 3.0, 0.5], "label_smoothing": 0.3, "reduction": "none"},
    {"ignore_index": 2, "weight": [0.2, 1.0, 3.0, 0.5], "label_smoothing": 0.1},
]


@pytest.mark.parametrize("params", CLASS_OPTIONS, ids=str)
def test_cross_entropy_skips_targets_of_ignore_index_as_pytorch(params):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2, 5, 4))
    target = rng.integers(0, 4, (2, 5))
    target[0, 1] = target[1, 3] = params.get("ignore_index", -100)
    against_torch("CrossEntropyLoss", params, logits, target)


@pytest.mark.parametrize("params", [{k: v for k, v in o.items() if k != "label_smoothing"}
                                    for o in CLASS_OPTIONS[:5]] + [{"ignore_index": 3}], ids=str)
def test_nll_skips_targets_of_ignore_index_as_pytorch(params):
    rng = np.random.default_rng(4)
    logp = rng.standard_normal((7, 4))
    target = rng.integers(0, 4, 7)
    target[[0, 4]] = params.get("ignore_index", -100)
    against_torch("NLLLoss", params, logp, target)


@pytest.mark.parametrize("params", [{}, {"weight": [1.0, 0.5, 2.0], "label_smoothing": 0.2},
                                    {"ignore_index": 0, "reduction": "none"}], ids=str)
def test_cross_entropy_ignore_index_does_not_apply_to_probabilities(params):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 3))
    target = rng.dirichlet(np.ones(3), 6)
    against_torch("CrossEntropyLoss", params, logits, target)


@pytest.mark.filterwarnings("ignore:invalid value")
def test_a_mean_over_targets_that_are_all_ignored_is_nan_with_no_gradient_as_pytorch():
    y = against_torch("CrossEntropyLoss", {}, np.zeros((2, 3)), np.array([-100, -100]))
    assert np.isnan(y)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_takes_probabilities_and_clamps_its_logs_as_pytorch(reduction):
    rng = np.random.default_rng(6)
    pred = rng.uniform(0.02, 0.98, (5, 3))
    target = rng.uniform(0, 1, (5, 3))
    against_torch("BCELoss", {"reduction": reduction}, pred, target)
    against_torch("BCELoss", {"reduction": reduction}, pred, target[0])  # one for all samples


@pytest.mark.filterwarnings("ignore:divide by zero")  # log(0), then clamped
def test_bce_at_zero_and_one_is_finite_as_pytorch():
    torch = pytest.importorskip("torch")
    pred = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    target = np.array([0.0, 1.0, 1.0, 0.0, 0.5])
    y = forward("BCELoss", {"reduction": "none"}, pred, target)
    expected = torch.nn.functional.binary_cross_entropy(torch.tensor(pred), torch.tensor(target),
                                                        reduction="none")
    np.testing.assert_array_equal(y, expected.numpy())  # log(0) is -100
    assert y[2] == 100.0 and y[0] == 0.0


def test_bce_gradient_matches_finite_differences():
    rng = np.random.default_rng(7)
    pred, target = rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0, 1, (4, 3))
    run = compiled("BCELoss", {"reduction": "sum"}, pred, target)
    _, (g_pred, g_target) = run.grads([pred, target], [], [np.array(1.0)])
    eps = 1e-6
    for x, g in ((pred, g_pred), (target, g_target)):
        numeric = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            keep = x[i]
            x[i] = keep + eps
            up = run.forward([pred, target], [])[0]
            x[i] = keep - eps
            down = run.forward([pred, target], [])[0]
            x[i] = keep
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_divergence_as_pytorch(reduction, log_target):
    rng = np.random.default_rng(8)
    logp = np.log(rng.dirichlet(np.ones(4), 3))
    target = rng.dirichlet(np.ones(4), 3)
    if log_target:
        target = np.log(target)
    against_torch("KLDivLoss", {"reduction": reduction, "log_target": log_target}, logp, target)


def test_kl_divergence_of_a_zero_target_probability_is_zero():
    logp = np.log(np.array([[0.5, 0.25, 0.25]]))
    target = np.array([[0.5, 0.5, 0.0]])
    run = compiled("KLDivLoss", {"reduction": "none"}, logp, target)
    (y,), (g_logp, _) = run.grads([logp, target], [], [np.ones((1, 3))], [True, False])
    np.testing.assert_allclose(y, [[0.0, 0.5 * np.log(2), 0.0]], atol=1e-15)
    np.testing.assert_array_equal(g_logp, -target)


def test_huber_is_squared_below_delta_and_absolute_above():
    pred, target = np.array([0.0, 0.0, 0.0, 0.0]), np.array([0.5, -1.9, 2.0, 3.5])
    y = against_torch("HuberLoss", {"delta": 2.0, "reduction": "none"}, pred, target)
    np.testing.assert_allclose(y, [0.125, 1.805, 2.0, 5.0])


# ---------------------------------------------------------------------------------------------
# Errors at run time name the node


def _class_doc(type_name, params, classes=3):
    port = nodes.get(type_name).inputs[0]
    return document(
        [("x", "Input", {"shape": [classes]}), ("label", "Input", {"shape": [], "dtype": "int64"}),
         ("ce", type_name, params), ("loss", "Output", {})],
        [("x.y", f"ce.{port}"), ("label.y", "ce.target"), ("ce.y", "loss.x")])


@pytest.mark.parametrize("type_name", ["CrossEntropyLoss", "NLLLoss"])
@pytest.mark.parametrize("bad", [3, -1, -100])
def test_class_ids_out_of_range_name_the_node(type_name, bad):
    program = core.compile(_class_doc(type_name, {"ignore_index": 1}), "float64")
    feeds = {"x": np.zeros((2, 3)), "label": np.array([0, bad])}
    with pytest.raises(core.GraphError) as err:
        program.run({}, feeds)
    assert err.value.node == "ce"
    assert f"class ids must be in [0, 3) or be ignore_index 1, got {bad}" in str(err.value)


def test_targets_of_minus_100_are_ignored_by_default():
    program = core.compile(_class_doc("CrossEntropyLoss", {"reduction": "sum"}), "float64")
    loss, _ = program.value_and_grad({}, {"x": np.zeros((3, 3)), "label": np.array([0, -100, 2])})
    assert loss == pytest.approx(2 * np.log(3))


def test_bce_refuses_values_that_are_not_probabilities_naming_the_node():
    doc = document(
        [("p", "Input", {"shape": [2]}), ("t", "Input", {"shape": [2]}), ("bce", "BCELoss", {}),
         ("loss", "Output", {})],
        [("p.y", "bce.pred"), ("t.y", "bce.target"), ("bce.y", "loss.x")])
    program = core.compile(doc, "float64")
    with pytest.raises(core.GraphError) as err:
        program.run({}, {"p": np.array([[0.5, 1.5]]), "t": np.array([[0.0, 1.0]])})
    assert err.value.node == "bce"
    assert "pred must hold probabilities in [0, 1]" in str(err.value)
    with pytest.raises(core.GraphError, match="target must hold probabilities"):
        program.run({}, {"p": np.array([[0.5, 0.5]]), "t": np.array([[0.0, -1.0]])})


# ---------------------------------------------------------------------------------------------
# Training with a loss


def _regression_doc(params):
    return document(
        [("x", "Input", {"shape": [2]}), ("y", "Input", {"shape": [2]}),
         ("fc", "Linear", {"out_features": 2}), ("mse", "MSELoss", params),
         ("loss", "Output", {})],
        [("x.y", "fc.x"), ("fc.y", "mse.pred"), ("y.y", "mse.target"), ("mse.y", "loss.x")])


def test_a_training_loss_with_reduction_none_is_refused_as_not_a_single_number():
    program = core.compile(_regression_doc({"reduction": "none"}), "float64")
    params = program.init_params(0)
    feeds = {"x": np.ones((4, 2)), "y": np.zeros((4, 2))}
    with pytest.raises(core.GraphError, match="the loss must be a single number") as err:
        program.value_and_grad(params, feeds, loss="loss")
    assert err.value.node == "loss"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_no_loss_mixes_the_batch(reduction):
    """A loss's batch mean or sum combines across batches: evaluation need not run in
    training-sized batches because of it."""
    program = core.compile(_regression_doc({"reduction": reduction}), "float64")
    assert program.batch_level == []
    for name in LOSSES:
        node = nodes.get(name)
        sample = node.samples[0] if node.samples else None
        p = node.resolve_params(sample.params if sample else {})
        assert not node.mixes_batch(p, {})
