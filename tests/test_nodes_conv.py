"""Convolution and pooling of version 2 as a user meets them: sizes as an int or a pair, shape
rules and the errors they give, defaults, canvas summaries, PyTorch's initialisation, and what
the registry-wide gradient sweep does not see (ties at a padded border, padding counted by a
mean, adaptive windows of unequal sizes, realistic shapes in float32 against PyTorch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from wiregrad.core.codegen.single import NodeRun
from wiregrad.core.errors import GraphError
from wiregrad.nodes.base import FLOAT, Param, ParamError, ShapeError, TensorType

from tests.program_check import document
from wiregrad import core, nodes

N = None  # the batch axis, unknown until run time


def T(*shape):
    return TensorType(tuple(shape), FLOAT)


def infer(type_name, params, x):
    node = nodes.get(type_name)
    return node.infer(node.resolve_params(params), {"x": x})["y"].shape


def run(type_name, params, x, ws=(), gy=None):
    """The node's output and, given gy, its gradients (x, then each weight)."""
    node = nodes.get(type_name)
    p = node.resolve_params(params)
    node_run = NodeRun(node, p, {"x": TensorType(x.shape, FLOAT)}, dtype=x.dtype)
    (y,) = node_run.forward([x], list(ws), False, np.random.default_rng(0))
    if gy is None:
        return y, None
    return y, node_run.grads([x], list(ws), [gy], None, False, np.random.default_rng(0))[1]


# ---------------------------------------------------------------------------------------------
# The "pair" parameter kind: an int, or [h, w]

SIZE = Param("kernel_size", "pair", minimum=1)


@pytest.mark.parametrize("given, kept", [(3, 3), ([3, 5], [3, 5]), ((2, 2), [2, 2]),
                                         (4.0, 4), ([1, 2.0], [1, 2])])
def test_a_pair_param_takes_an_int_or_two_and_keeps_the_form_given(given, kept):
    assert SIZE.check(given) == kept
    assert type(SIZE.check(given)) is type(kept)


@pytest.mark.parametrize("given, words", [
    ([3, 5, 7], "a pair"), ([3], "a pair"), ("3", "whole number"), (True, "whole number"),
    ([3, 1.5], "whole number"), (0, "at least 1"), ([3, 0], "at least 1"), (None, "null"),
])
def test_a_pair_param_refuses(given, words):
    with pytest.raises(ParamError, match=words):
        SIZE.check(given)


# ---------------------------------------------------------------------------------------------
# Shape rules

SHAPES = [
    ("Conv1D", {"out_channels": 4, "kernel_size": 3}, T(N, 2, 10), (N, 4, 8)),
    ("Conv1D", {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 2, "dilation": 3,
                "groups": 2}, T(N, 6, 11), (N, 4, 5)),
    ("Conv1D", {"out_channels": 4, "kernel_size": 3}, T(N, 2, None), (N, 4, None)),
    ("Conv2D", {"out_channels": 8, "kernel_size": [3, 5]}, T(N, 1, 28, 28), (N, 8, 26, 24)),
    ("Conv2D", {"out_channels": 8, "kernel_size": 3, "dilation": 2, "padding": 2,
                "groups": 4}, T(N, 4, 9, 9), (N, 8, 9, 9)),
    ("Conv2D", {"out_channels": 2, "kernel_size": [1, 3], "stride": [1, 2],
                "padding": [0, 1]}, T(N, 3, 5, None), (N, 2, 5, None)),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1,
                         "output_padding": 1}, T(N, 8, 7, 7), (N, 4, 14, 14)),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": [4, 1], "stride": [2, 1]},
     T(N, 8, 5, None), (N, 4, 12, None)),
    ("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}, T(N, 8, 28, 28), (N, 8, 14, 14)),
    ("MaxPool2D", {"kernel_size": [2, 1]}, T(N, 8, 9, 5), (N, 8, 4, 5)),
    ("AvgPool2D", {"kernel_size": [3, 2], "stride": 1, "padding": [1, 0]}, T(N, 2, 5, 6),
     (N, 2, 5, 5)),
    ("AdaptiveAvgPool2D", {"output_size": 1}, T(N, 16, 7, 7), (N, 16, 1, 1)),
    ("AdaptiveAvgPool2D", {"output_size": [3, 5]}, T(N, 16, None, 2), (N, 16, 3, 5)),
]


@pytest.mark.parametrize("type_name, params, x, shape", SHAPES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPES)])
def test_shape_rule(type_name, params, x, shape):
    assert infer(type_name, params, x) == shape


SHAPE_ERRORS = [
    ("Conv1D", {"out_channels": 2, "kernel_size": 3}, T(N, 1, 8, 8), "x",
     "expected 3 axes (N, C, L), got 4"),
    ("Conv1D", {"out_channels": 2, "kernel_size": 5, "padding": 1}, T(N, 1, 2), "x",
     "L = 2 plus padding 2 is smaller than the kernel (5)"),
    ("Conv2D", {"out_channels": 2, "kernel_size": 3}, T(N, 1, 8), "x",
     "expected 4 axes (N, C, H, W), got 3"),
    ("Conv2D", {"out_channels": 8, "kernel_size": 3, "groups": 4}, T(N, 6, 8, 8), "x",
     "6 channels do not split into groups = 4"),
    ("Conv2D", {"out_channels": 6, "kernel_size": 3, "groups": 4}, T(N, 8, 8, 8), None,
     "out_channels = 6 does not split into groups = 4"),
    ("Conv2D", {"out_channels": 2, "kernel_size": 3, "dilation": 3}, T(N, 1, 6, 9), "x",
     "H = 6 is smaller than the kernel (3, dilated by 3 to 7)"),
    ("Conv2D", {"out_channels": 2, "kernel_size": [2, 5]}, T(N, 1, 6, 4), "x",
     "W = 4 is smaller than the kernel (5)"),
    ("Conv2D", {"out_channels": 2, "kernel_size": 3}, T(N, None, 6, 6), "x",
     "known number of channels"),
    ("ConvTranspose2D", {"out_channels": 2, "kernel_size": 3}, T(N, 1, 6), "x",
     "expected 4 axes"),
    ("ConvTranspose2D", {"out_channels": 2, "kernel_size": 3, "stride": 2,
                         "output_padding": 2}, T(N, 1, 6, 6), None,
     "output_padding (2) must be smaller than stride (2)"),
    ("ConvTranspose2D", {"out_channels": 2, "kernel_size": 1, "padding": 1}, T(N, 1, 1, 4), "x",
     "H = 1 gives an output H of -1"),
    ("MaxPool2D", {"kernel_size": 3, "padding": 2}, T(N, 1, 8, 8), None,
     "at most half the window"),
    ("AvgPool2D", {"kernel_size": [2, 4], "padding": [0, 3]}, T(N, 1, 8, 8), None,
     "at most half the window"),
    ("AvgPool2D", {"kernel_size": 4, "padding": 1}, T(N, 1, 1, 8), "x",
     "H = 1 plus padding 2 is smaller than the kernel (4)"),
    ("MaxPool2D", {"kernel_size": 2}, T(N, 3, 4), "x", "expected 4 axes"),
    ("AdaptiveAvgPool2D", {"output_size": 2}, T(N, 3, 4), "x", "expected 4 axes"),
]


@pytest.mark.parametrize("type_name, params, x, port, words", SHAPE_ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_ERRORS)])
def test_shape_errors_name_the_port(type_name, params, x, port, words):
    with pytest.raises(ShapeError) as info:
        infer(type_name, params, x)
    assert info.value.port == port
    assert words in info.value.message


def test_the_compiler_reports_a_bad_input_on_the_node_and_port_before_running():
    doc = document([("x", "Input", {"shape": [3, 8, 8]}),
                    ("conv", "Conv1D", {"out_channels": 4, "kernel_size": 3}),
                    ("out", "Output", {})], [("x.y", "conv.x"), ("conv.y", "out.x")])
    with pytest.raises(GraphError, match=r"conv\.x: expected 3 axes \(N, C, L\), got 4.*"
                                         r"\(from x\.y\)"):
        core.compile(doc)


# ---------------------------------------------------------------------------------------------
# Parameters and summaries


@pytest.mark.parametrize("type_name, given, expected", [
    ("Conv1D", {"out_channels": 8, "kernel_size": 3},
     {"out_channels": 8, "kernel_size": 3, "stride": 1, "padding": 0, "dilation": 1,
      "groups": 1, "bias": True}),
    ("Conv2D", {"out_channels": 8, "kernel_size": [3, 5]},
     {"out_channels": 8, "kernel_size": [3, 5], "stride": 1, "padding": 0, "dilation": 1,
      "groups": 1, "bias": True}),
    ("ConvTranspose2D", {"out_channels": 8, "kernel_size": 4},
     {"out_channels": 8, "kernel_size": 4, "stride": 1, "padding": 0, "output_padding": 0,
      "bias": True}),
    ("AvgPool2D", {"kernel_size": 2}, {"kernel_size": 2, "stride": None, "padding": 0}),
])
def test_param_defaults(type_name, given, expected):
    assert nodes.get(type_name).resolve_params(given) == expected


def test_output_size_is_required():
    with pytest.raises(ParamError, match="output_size"):
        nodes.get("AdaptiveAvgPool2D").resolve_params({})


@pytest.mark.parametrize("type_name, params, text", [
    ("Conv2D", {"out_channels": 8, "kernel_size": 3}, "Conv2D 8 3x3"),
    ("Conv2D", {"out_channels": 8, "kernel_size": [3, 5]}, "Conv2D 8 3x5"),
    ("Conv2D", {"out_channels": 8, "kernel_size": 3, "dilation": 2, "groups": 4},
     "Conv2D 8 3x3 d2 g4"),
    ("Conv2D", {"out_channels": 8, "kernel_size": 3, "dilation": [2, 1]}, "Conv2D 8 3x3 d2x1"),
    ("Conv1D", {"out_channels": 16, "kernel_size": 5}, "Conv1D 16 5"),
    ("ConvTranspose2D", {"out_channels": 8, "kernel_size": 4, "stride": 2},
     "ConvTranspose2D 8 4x4 s2"),
    ("MaxPool2D", {"kernel_size": [2, 3]}, "MaxPool2D 2x3"),
    ("AvgPool2D", {"kernel_size": 2, "padding": 1}, "AvgPool2D 2x2"),
    ("AdaptiveAvgPool2D", {"output_size": 1}, "AdaptiveAvgPool2D 1x1"),
])
def test_summaries_read_as_sizes(type_name, params, text):
    node = nodes.get(type_name)
    assert node.summary(node.resolve_params(params)) == text


# ---------------------------------------------------------------------------------------------
# Initialisation (PyTorch's: U(-k, k), k = 1/sqrt(fan_in) for weight and bias)


@pytest.mark.parametrize("type_name, params, x, shape, fan_in", [
    ("Conv1D", {"out_channels": 64, "kernel_size": 5, "groups": 2}, T(N, 8, 20),
     (64, 4, 5), 4 * 5),
    ("Conv2D", {"out_channels": 64, "kernel_size": [3, 5], "groups": 4}, T(N, 8, 9, 9),
     (64, 2, 3, 5), 2 * 3 * 5),
    ("ConvTranspose2D", {"out_channels": 32, "kernel_size": 4}, T(N, 8, 5, 5),
     (8, 32, 4, 4), 32 * 4 * 4),
])
def test_init_is_uniform_in_one_over_sqrt_fan_in(type_name, params, x, shape, fan_in):
    node = nodes.get(type_name)
    p = node.resolve_params(params)
    rng = np.random.default_rng(0)
    ws = {name: w.init(rng, w.shape) for name, w in node.weights(p, {"x": x}).items()}
    k = 1 / math.sqrt(fan_in)
    assert ws["weight"].shape == shape and ws["bias"].shape == (params["out_channels"],)
    assert k * 0.95 < np.abs(ws["weight"]).max() <= k
    assert np.abs(ws["bias"]).max() <= k


# ---------------------------------------------------------------------------------------------
# Behaviours the gradient sweep does not reach


def test_max_pool_ties_at_a_padded_border_go_to_the_first_real_maximum():
    # All ties: each 3x3 window's gradient goes to its first element in row-major order that
    # is input, never to the -inf padding.
    x = np.zeros((1, 1, 3, 3))
    y, (g,) = run("MaxPool2D", {"kernel_size": 3, "stride": 1, "padding": 1}, x,
                  gy=np.ones((1, 1, 3, 3)))
    assert np.array_equal(y, np.zeros((1, 1, 3, 3)))
    assert np.array_equal(g[0, 0], [[4, 2, 0], [2, 1, 0], [0, 0, 0]])


def test_avg_pool_counts_padding_as_zeros():
    x = np.ones((1, 1, 2, 2))
    y, (g,) = run("AvgPool2D", {"kernel_size": 2, "stride": 1, "padding": 1}, x,
                  gy=np.ones((1, 1, 3, 3)))
    assert np.allclose(y[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    assert np.allclose(g, 1.0)  # each input is in four windows, a quarter from each


def test_adaptive_windows_follow_pytorchs_floor_and_ceil():
    # 5 rows into 3: rows [0, 2), [1, 4), [3, 5); 2 columns into 4: each column twice.
    x = np.arange(10.0).reshape(1, 1, 5, 2)
    y, (g,) = run("AdaptiveAvgPool2D", {"output_size": [3, 4]}, x, gy=np.ones((1, 1, 3, 4)))
    rows = [x[0, 0, 0:2].mean(0), x[0, 0, 1:4].mean(0), x[0, 0, 3:5].mean(0)]
    assert np.allclose(y[0, 0], np.repeat(np.array(rows), 2, axis=1))
    # Each window spreads its gradient evenly: 2 columns per window, rows shared unevenly.
    assert np.allclose(g[0, 0, :, 0], [2 * (1 / 2), 2 * (1 / 2 + 1 / 3), 2 * (1 / 3),
                                       2 * (1 / 3 + 1 / 2), 2 * (1 / 2)])


REALISTIC = [
    ("Conv2D", {"out_channels": 32, "kernel_size": 3, "padding": 2, "dilation": 2,
                "groups": 32}, (32, 32, 14, 14)),
    ("Conv2D", {"out_channels": 24, "kernel_size": [3, 5], "stride": 2, "padding": [1, 2],
                "groups": 4}, (16, 8, 15, 15)),
    ("Conv1D", {"out_channels": 16, "kernel_size": 3, "dilation": 4, "groups": 4},
     (32, 16, 100)),
    ("ConvTranspose2D", {"out_channels": 8, "kernel_size": 4, "stride": 2, "padding": 1},
     (32, 16, 7, 7)),
    ("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}, (32, 8, 28, 28)),
    ("AdaptiveAvgPool2D", {"output_size": [5, 3]}, (32, 8, 13, 11)),
]


@pytest.mark.parametrize("type_name, params, shape", REALISTIC,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(REALISTIC)])
def test_float32_at_realistic_sizes_matches_torch(type_name, params, shape):
    torch = pytest.importorskip("torch")
    from tests.torch_reference import REFERENCE

    node = nodes.get(type_name)
    p = node.resolve_params(params)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    ws = [rng.standard_normal(w.shape).astype(np.float32)
          for w in node.weights(p, {"x": T(*shape)}).values()]
    y, _ = run(type_name, params, x, ws)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    _, grads = run(type_name, params, x, ws, gy)
    names = ["x"] + list(node.weights(p, {"x": T(*shape)}))
    tensors = {n: torch.tensor(v, requires_grad=True) for n, v in zip(names, [x] + ws)}
    (ty,) = REFERENCE[type_name](p, {"x": tensors["x"]},
                                 {n: tensors[n] for n in names[1:]})
    ty.backward(torch.tensor(gy))
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    for name, g in zip(names, grads):
        expected = tensors[name].grad.numpy()
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=name)
