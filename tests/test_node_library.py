"""The node library as a user meets it: shape rules, the errors they give, parameter defaults
and checks, initialisation, and the behaviours the gradient sweep cannot see (ties, NaN, dropout
in training, numerical stability)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from wiregrad.core.codegen.single import NodeRun
from wiregrad.nodes.base import FLOAT, INT, ParamError, ShapeError, TensorType

from wiregrad import nodes

N = None  # the batch axis, unknown until run time


def T(*shape, dtype=FLOAT):
    return TensorType(tuple(shape), dtype)


def infer(type_name, params, **ins):
    node = nodes.get(type_name)
    return node.infer(node.resolve_params(params), ins)


class Ran:
    """One node run forward by its numpy rule; `backward` sends gradients back through the
    same run (same inputs, same random draws)."""

    def __init__(self, node_run, xs, ws, train, seed):
        self.node_run, self.xs, self.ws, self.train, self.seed = node_run, xs, ws, train, seed

    def backward(self, gys, need):
        rng = np.random.default_rng(self.seed)
        return self.node_run.grads(self.xs, self.ws, gys, need, self.train, rng)[1]


def run(type_name, params, *xs, ws=(), train=False, seed=0):
    """(outputs, the run) of one node on these inputs and weights."""
    node = nodes.get(type_name)
    p = node.resolve_params(params)
    types = {port: TensorType(x.shape, INT if x.dtype.kind in "iu" else FLOAT)
             for port, x in zip(node.input_ports(p), xs)}
    node_run = NodeRun(node, p, types, dtype=xs[0].dtype if xs[0].dtype.kind == "f" else np.float64)
    ys = node_run.forward(list(xs), list(ws), train, np.random.default_rng(seed))
    return ys, Ran(node_run, list(xs), list(ws), train, seed)


# ---------------------------------------------------------------------------------------------
# Shape inference

SHAPES = [
    ("Add", {}, {"a": T(N, 3), "b": T(3)}, (N, 3)),
    ("Div", {}, {"a": T(N, 1, 4), "b": T(N, 3, 1)}, (N, 3, 4)),
    ("MatMul", {}, {"a": T(N, 3), "b": T(3, 5)}, (N, 5)),
    ("MatMul", {}, {"a": T(N, 2, 3), "b": T(3,)}, (N, 2)),
    ("MatMul", {}, {"a": T(3,), "b": T(N, 3, 4)}, (N, 4)),
    ("MatMul", {}, {"a": T(N, 1, 2, 3), "b": T(5, 3, 4)}, (N, 5, 2, 4)),
    ("Greater", {}, {"a": T(N, 3), "b": T()}, (N, 3)),
    ("Where", {}, {"cond": T(N, 1), "a": T(N, 4), "b": T()}, (N, 4)),
    ("Pow", {"exponent": 2}, {"x": T(N, 3)}, (N, 3)),
    ("Sum", {}, {"x": T(N, 3)}, ()),
    ("Sum", {"axis": 1}, {"x": T(N, 3, 4)}, (N, 4)),
    ("Mean", {"axis": [1, -1], "keepdims": True}, {"x": T(N, 3, 4)}, (N, 1, 1)),
    ("Max", {"axis": 0}, {"x": T(N, 3)}, (3,)),
    ("Concat", {}, {"x0": T(N, 3), "x1": T(N, 5)}, (N, 8)),
    ("Concat", {"n": 3, "axis": 1}, {"x0": T(N, 1, 2), "x1": T(N, None, 2),
                                     "x2": T(N, 2, 2)}, (N, None, 2)),
    ("Slice", {"start": 1, "stop": -1}, {"x": T(N, 10)}, (N, 8)),
    ("Slice", {"axis": -1, "step": -2}, {"x": T(N, 3, 5)}, (N, 3, 3)),
    ("Slice", {"start": 2}, {"x": T(N, None)}, (N, None)),
    ("Transpose", {"axes": [0, 2, 1]}, {"x": T(N, 3, 4)}, (N, 4, 3)),
    ("Flatten", {}, {"x": T(N, 2, 3, 4)}, (N, 24)),
    ("Flatten", {}, {"x": T(N, None, 4)}, (N, None)),
    ("Reshape", {"shape": [4, -1]}, {"x": T(N, 12)}, (N, 4, 3)),
    ("Reshape", {"shape": [-1, 2]}, {"x": T(N, None)}, (N, None, 2)),
    ("Linear", {"out_features": 7}, {"x": T(N, 5, 3)}, (N, 5, 7)),
    ("Conv2D", {"out_channels": 8, "kernel_size": 3}, {"x": T(N, 1, 28, 28)}, (N, 8, 26, 26)),
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1},
     {"x": T(N, 3, 7, None)}, (N, 4, 4, None)),
    ("MaxPool2D", {"kernel_size": 2}, {"x": T(N, 8, 13, 13)}, (N, 8, 6, 6)),
    ("AvgPool2D", {"kernel_size": 3, "stride": 1}, {"x": T(N, 2, 5, 6)}, (N, 2, 3, 4)),
    ("Embedding", {"num_embeddings": 10, "embedding_dim": 4}, {"x": T(N, None, dtype=INT)},
     (N, None, 4)),
    ("LayerNorm", {}, {"x": T(N, 6)}, (N, 6)),
    ("Dropout", {}, {"x": T(N, 6)}, (N, 6)),
    ("Softmax", {"axis": 1}, {"x": T(N, 3, 2)}, (N, 3, 2)),
    ("MSELoss", {}, {"pred": T(N, 1), "target": T(N, 1)}, ()),
    ("CrossEntropyLoss", {}, {"logits": T(N, 3), "target": T(N, dtype=INT)}, ()),
    ("CrossEntropyLoss", {}, {"logits": T(N, 5, 3), "target": T(N, 5, 3)}, ()),
    ("BCEWithLogitsLoss", {}, {"logits": T(N, 2), "target": T(N, 2)}, ()),
]


@pytest.mark.parametrize("type_name, params, ins, shape", SHAPES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPES)])
def test_shape_rule(type_name, params, ins, shape):
    assert infer(type_name, params, **ins)["y"] == TensorType(shape, FLOAT)


SHAPE_ERRORS = [
    ("Linear", {"out_features": 2}, {"x": T(N, None)}, "x", "known last axis"),
    ("Conv2D", {"out_channels": 2, "kernel_size": 3}, {"x": T(N, 10)}, "x",
     "expected 4 axes (N, C, H, W), got 2"),
    ("Conv2D", {"out_channels": 2, "kernel_size": 5}, {"x": T(N, 1, 4, 8)}, "x",
     "smaller than the kernel"),
    ("MaxPool2D", {"kernel_size": 2}, {"x": T(N, 3, 4)}, "x", "expected 4 axes"),
    ("MatMul", {}, {"a": T(N, 3), "b": T(4, 2)}, "b", "inner lengths differ"),
    ("Add", {}, {"a": T(N, 3), "b": T(N, 4)}, "b", "do not broadcast"),
    ("Add", {}, {"a": T(N, 3), "b": T(N, 3, dtype=INT)}, "b", "expected a float tensor"),
    ("Concat", {}, {"x0": T(N, 3, 2), "x1": T(N, 4, 3)}, "x1", "only axis 2 may differ"),
    ("Concat", {}, {"x0": T(N, 3), "x1": T(N, 2, 3)}, "x1", "expected 2 axes"),
    ("Sum", {"axis": 3}, {"x": T(N, 3)}, "x", "out of range"),
    ("Sum", {"axis": [1, -1]}, {"x": T(N, 3)}, "x", "twice"),
    ("Softmax", {"axis": 2}, {"x": T(N, 3)}, "x", "out of range"),
    ("Transpose", {"axes": [0, 1]}, {"x": T(N, 3, 4)}, "x", "not a permutation"),
    ("Reshape", {"shape": [5, -1]}, {"x": T(N, 12)}, "x", "do not divide"),
    ("Reshape", {"shape": [5]}, {"x": T(N, 12)}, "x", "cannot take shape"),
    ("Embedding", {"num_embeddings": 3, "embedding_dim": 2}, {"x": T(N, 4)}, "x", "int64"),
    ("CrossEntropyLoss", {}, {"logits": T(N, 3), "target": T(N, 1, dtype=INT)}, "target",
     "class ids"),
    ("CrossEntropyLoss", {}, {"logits": T(N, 3), "target": T(N, 2)}, "target",
     "probabilities"),
    ("MSELoss", {}, {"pred": T(N, 1), "target": T(N)}, "target", "does not match"),
    ("BCEWithLogitsLoss", {}, {"logits": T(N, 2), "target": T(N, 3)}, "target",
     "do not broadcast"),
]


@pytest.mark.parametrize("type_name, params, ins, port, words", SHAPE_ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_ERRORS)])
def test_shape_error_names_port_and_says_why(type_name, params, ins, port, words):
    with pytest.raises(ShapeError) as err:
        infer(type_name, params, **ins)
    assert err.value.port == port
    assert words in err.value.message


def test_concat_ports_follow_n():
    node = nodes.get("Concat")
    assert node.input_ports(node.resolve_params({"n": 3})) == ("x0", "x1", "x2")


# ---------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize("type_name, given, expected", [
    ("LeakyReLU", {}, {"negative_slope": 0.01}),
    ("ELU", {}, {"alpha": 1.0}),
    ("Softmax", {}, {"axis": -1}),
    ("LogSoftmax", {}, {"axis": -1}),
    ("Dropout", {}, {"p": 0.5}),
    ("LayerNorm", {}, {"eps": 1e-5}),
    ("Linear", {"out_features": 4}, {"out_features": 4, "bias": True}),
    ("Conv2D", {"out_channels": 8, "kernel_size": 3},
     {"out_channels": 8, "kernel_size": 3, "stride": 1, "padding": 0, "dilation": 1,
      "groups": 1, "bias": True}),
    ("MaxPool2D", {"kernel_size": 2}, {"kernel_size": 2, "stride": None, "padding": 0}),
    ("Slice", {}, {"axis": 1, "start": None, "stop": None, "step": 1}),
    ("Concat", {}, {"n": 2, "axis": -1}),
    ("Sum", {}, {"axis": None, "keepdims": False}),
    ("Max", {"axis": [1, 2]}, {"axis": [1, 2], "keepdims": False}),
    ("Pow", {"exponent": 3}, {"exponent": 3.0}),
])
def test_param_defaults(type_name, given, expected):
    assert nodes.get(type_name).resolve_params(given) == expected


@pytest.mark.parametrize("type_name, given, words", [
    ("Dropout", {"p": 1.5}, "at most"),
    ("Dropout", {"p": -0.1}, "at least"),
    ("Conv2D", {"out_channels": 8, "kernel_size": 0}, "at least"),
    ("Conv2D", {"out_channels": 8, "kernel_size": 3, "padding": -1}, "at least"),
    ("Linear", {}, "out_features"),
    ("Linear", {"out_features": 2.5}, "whole number"),
    ("Pow", {}, "exponent"),
    ("Slice", {"step": 0}, "step"),
    ("Reshape", {"shape": [-1, -1]}, "at most one -1"),
    ("Softmax", {"dim": 1}, "unknown parameter"),
])
def test_param_errors(type_name, given, words):
    with pytest.raises(ParamError, match=words):
        nodes.get(type_name).resolve_params(given)


def test_summaries():
    conv = nodes.get("Conv2D")
    assert conv.summary(conv.resolve_params({"out_channels": 8, "kernel_size": 3})) \
        == "Conv2D 8 3x3"
    linear = nodes.get("Linear")
    assert linear.summary(linear.resolve_params({"out_features": 16})) == "Linear 16"
    for name, node in nodes.all_types().items():
        assert node.help, f"{name} has no help line"


# ---------------------------------------------------------------------------------------------
# Initialisation (PyTorch's defaults)


def _draw(type_name, params, ins, seed=0):
    node = nodes.get(type_name)
    p = node.resolve_params(params)
    rng = np.random.default_rng(seed)
    return {name: w.init(rng, w.shape) for name, w in node.weights(p, ins).items()}


def test_linear_init_is_uniform_in_one_over_sqrt_fan_in():
    ws = _draw("Linear", {"out_features": 300}, {"x": T(N, 64)})
    k = 1 / math.sqrt(64)
    assert ws["weight"].shape == (64, 300) and ws["bias"].shape == (300,)
    for w in ws.values():
        assert np.abs(w).max() <= k
        assert np.abs(w).max() > 0.95 * k  # fills the range, not a narrower one
    assert abs(ws["weight"].std() - k / math.sqrt(3)) < 0.05 * k


def test_conv2d_init_uses_channels_times_kernel_area():
    ws = _draw("Conv2D", {"out_channels": 64, "kernel_size": 3}, {"x": T(N, 8, 9, 9)})
    k = 1 / math.sqrt(8 * 3 * 3)
    assert ws["weight"].shape == (64, 8, 3, 3) and ws["bias"].shape == (64,)
    assert k * 0.95 < np.abs(ws["weight"]).max() <= k
    assert np.abs(ws["bias"]).max() <= k


def test_embedding_and_layernorm_init():
    emb = _draw("Embedding", {"num_embeddings": 100, "embedding_dim": 50}, {"x": T(N, dtype=INT)})
    assert abs(emb["weight"].std() - 1) < 0.05 and abs(emb["weight"].mean()) < 0.05
    ln = _draw("LayerNorm", {}, {"x": T(N, 6)})
    assert np.array_equal(ln["weight"], np.ones(6)) and np.array_equal(ln["bias"], np.zeros(6))
    assert list(ln) == ["weight", "bias"]


# ---------------------------------------------------------------------------------------------
# Behaviours the gradient sweep does not reach


def test_where_does_not_leak_nan_from_the_side_not_taken():
    cond = np.array([[1.0, -1.0, 0.0]])
    a = np.array([[1.0, np.inf, np.nan]])
    b = np.array([[np.inf, 2.0, 3.0]])
    (y,), ran = run("Where", {}, cond, a, b)
    assert np.array_equal(y, [[1.0, 2.0, 3.0]])
    gy = np.array([[1.0, np.inf, np.nan]])
    _, ga, gb = ran.backward([gy], [True, True, True])
    assert np.array_equal(ga, [[1.0, 0.0, 0.0]])
    assert np.array_equal(gb[:, :1], [[0.0]]) and np.isinf(gb[0, 1])


def test_max_gradient_goes_to_first_argmax():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    (y,), ran = run("Max", {"axis": 1}, x)
    assert np.array_equal(y, [3.0, 2.0])
    (g,) = ran.backward([np.ones(2)], [True])
    assert np.array_equal(g, [[0, 1, 0], [1, 0, 0]])
    (y,), ran = run("Max", {}, x)
    (g,) = ran.backward([np.array(5.0)], [True])
    assert np.array_equal(g, [[0, 5, 0], [0, 0, 0]])


def test_maxpool_gradient_goes_to_one_argmax_per_window():
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, 1, 3] = 1.0  # second window has one maximum, the first is all ties
    _, ran = run("MaxPool2D", {"kernel_size": 2}, x)
    (g,) = ran.backward([np.ones((1, 1, 1, 2))], [True])
    assert np.array_equal(g[0, 0], [[1, 0, 0, 0], [0, 0, 0, 1]])


def test_maximum_and_minimum_split_ties_like_torch():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0])
    for name, expect_a in (("Maximum", [0.5, 1, 0]), ("Minimum", [0.5, 0, 1])):
        _, ran = run(name, {}, a, b)
        ga, gb = ran.backward([np.ones(3)], [True, True])
        assert np.array_equal(ga, expect_a) and np.array_equal(ga + gb, np.ones(3))


def test_greater_is_float_without_gradient():
    (y,), ran = run("Greater", {}, np.array([1.0, 2.0], np.float32),
                               np.array([2.0, 1.0], np.float32))
    assert y.dtype == np.float32 and np.array_equal(y, [0.0, 1.0])
    assert ran.backward([np.ones(2, np.float32)], [True, True]) == [None, None]


def test_cross_entropy_2d_matches_torch_exactly():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((64, 10)) * 5
    logits[0] = [1000.0] + [0.0] * 9  # stable with huge logits
    target = rng.integers(0, 10, 64)
    (y,), ran = run("CrossEntropyLoss", {}, logits, target)
    (g, gt) = ran.backward([np.array(1.0)], [True, False])
    t_logits = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.tensor(target))
    t_loss.backward()
    np.testing.assert_allclose(y, t_loss.item(), rtol=1e-14)
    np.testing.assert_allclose(g, t_logits.grad.numpy(), rtol=1e-12, atol=1e-16)
    assert gt is None


def test_cross_entropy_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="class ids"):
        run("CrossEntropyLoss", {}, np.zeros((2, 3)), np.array([0, 3]))


def test_embedding_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        run("Embedding", {"num_embeddings": 4, "embedding_dim": 2}, np.array([1, -1]),
            ws=[np.zeros((4, 2))])


def test_embedding_accumulates_repeated_ids():
    (y,), ran = run("Embedding", {"num_embeddings": 3, "embedding_dim": 2},
                               np.array([[0, 2, 0]]), ws=[np.arange(6.0).reshape(3, 2)])
    assert np.array_equal(y, [[[0, 1], [4, 5], [0, 1]]])
    gx, gw = ran.backward([np.ones((1, 3, 2))], [False, True])
    assert gx is None and np.array_equal(gw, [[2, 2], [0, 0], [1, 1]])


@pytest.mark.parametrize("type_name, x", [
    ("Sigmoid", [-1000.0, 0.0, 1000.0]),
    ("Softplus", [-1000.0, 0.0, 30.0, 1000.0]),
    ("ELU", [-1000.0, 1000.0]),
    ("LogSoftmax", [[-1000.0, 0.0, 1000.0]]),
    ("Softmax", [[-1000.0, 0.0, 1000.0]]),
])
def test_activations_are_stable_at_extremes(type_name, x):
    x = np.array(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,), ran = run(type_name, {}, x)
        (g,) = ran.backward([np.ones_like(x)], [True])
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))


def test_softplus_is_the_identity_above_twenty_as_torch():
    (y,), _ = run("Softplus", {}, np.array([20.5, 25.0]))
    assert np.array_equal(y, [20.5, 25.0])


def test_bce_with_logits_is_stable():
    x = np.array([[-1000.0, 1000.0]])
    t = np.array([[0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (y,), _ = run("BCEWithLogitsLoss", {}, x, t)
    assert y == 0.0


def test_losses_are_float_scalars():
    x = np.ones((3, 2), np.float32)
    for name in ("MSELoss", "L1Loss", "BCEWithLogitsLoss", "CrossEntropyLoss"):
        (y,), _ = run(name, {}, x, x)
        assert isinstance(y, np.ndarray) and y.shape == () and y.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# Dropout


def test_dropout_is_identity_when_not_training():
    x = np.arange(6.0).reshape(2, 3)
    (y,), ran = run("Dropout", {"p": 0.9}, x)
    assert np.array_equal(y, x)
    (g,) = ran.backward([np.ones_like(x)], [True])
    assert np.array_equal(g, np.ones_like(x))


def test_dropout_in_training_drops_p_and_scales_the_rest():
    x = np.ones((200, 500), np.float32)
    (y,), ran = run("Dropout", {"p": 0.3}, x, train=True)
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    (g,) = ran.backward([np.ones_like(x)], [True])
    assert np.array_equal(g, y)  # the gradient passes through the same mask and scale


def test_dropout_masks_follow_the_seed():
    x = np.ones((4, 50))
    (a,), _ = run("Dropout", {}, x, train=True, seed=1)
    (b,), _ = run("Dropout", {}, x, train=True, seed=1)
    (c,), _ = run("Dropout", {}, x, train=True, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_dropout_p_one_gives_zeros():
    (y,), ran = run("Dropout", {"p": 1.0}, np.ones((3, 4)), train=True)
    assert np.array_equal(y, np.zeros((3, 4)))
    (g,) = ran.backward([np.ones((3, 4))], [True])
    assert np.array_equal(g, np.zeros((3, 4)))


# ---------------------------------------------------------------------------------------------
# Conv2D at the size it is used at (a fast path must stay correct on realistic shapes)


def test_conv2d_matches_torch_on_an_mnist_sized_batch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8, 13, 13)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    (y,), ran = run("Conv2D", {"out_channels": 16, "kernel_size": 3, "padding": 1},
                               x, ws=[w, b])
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, gb = ran.backward([gy], [True, True, True])
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    ty.backward(torch.tensor(gy))
    assert y.dtype == gx.dtype == gw.dtype == np.float32
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-4, atol=1e-3)
