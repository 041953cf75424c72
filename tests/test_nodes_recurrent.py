"""The fused recurrent cells (GRUCell, LSTMCell) and MultiheadAttention as a user meets them:
shape rules and the errors they give, PyTorch's initialisation, and what the registry-wide
gradient and PyTorch sweeps cannot see: a cell run over a whole sequence in a scan Loop against
nn.GRU / nn.LSTM, attention under a padding mask and a causal mask against
nn.MultiheadAttention, a query with no allowed key, and self-attention (one input as query, key
and value)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from wiregrad.nodes import kernels
from wiregrad.nodes.base import INT, ParamError, ShapeError

from tests.program_check import check_gradients, document, graph
from tests.test_node_library import N, T, infer
from wiregrad import core, nodes

# ---------------------------------------------------------------------------------------------
# Shape rules

SHAPES = [
    ("GRUCell", {"hidden_size": 3}, {"x": T(N, 5), "h": T(N, 3)}, T(N, 3)),
    ("GRUCell", {"hidden_size": 3}, {"x": T(N, 5), "h": T(4, 3)}, T(4, 3)),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(N, 5, 8), "key": T(N, 7, 8), "value": T(N, 7, 8)}, T(N, 5, 8)),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(N, 5, 8), "key": T(N, 7, 8), "value": T(N, 7, 8), "mask": T(5, 7)},
     T(N, 5, 8)),
    ("MultiheadAttention", {"embed_dim": 4, "num_heads": 4},
     {"query": T(N, None, 4), "key": T(N, None, 4), "value": T(N, 6, 4),
      "mask": T(N, None, None)}, T(N, None, 4)),
]


@pytest.mark.parametrize("type_name, params, ins, out", SHAPES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPES)])
def test_shape_rule(type_name, params, ins, out):
    assert infer(type_name, params, **ins)["y"] == out


def test_lstm_cell_gives_the_next_h_and_c():
    assert infer("LSTMCell", {"hidden_size": 3}, x=T(N, 5), h=T(N, 3), c=T(N, 3)) == {
        "h_next": T(N, 3), "c_next": T(N, 3)}


SHAPE_ERRORS = [
    ("GRUCell", {"hidden_size": 3}, {"x": T(N, 2, 5), "h": T(N, 3)}, "x",
     "expected (batch, features)"),
    ("GRUCell", {"hidden_size": 3}, {"x": T(N, None), "h": T(N, 3)}, "x",
     "known number of features"),
    ("GRUCell", {"hidden_size": 3}, {"x": T(N, 5, dtype=INT), "h": T(N, 3)}, "x",
     "expected a float tensor"),
    ("GRUCell", {"hidden_size": 3}, {"x": T(N, 5), "h": T(N, 4)}, "h",
     "expected (batch, 3) for hidden_size 3"),
    ("GRUCell", {"hidden_size": 3}, {"x": T(N, 5), "h": T(3,)}, "h", "expected (batch, 3)"),
    ("GRUCell", {"hidden_size": 3}, {"x": T(4, 5), "h": T(2, 3)}, "h",
     "batch of 2 rows, but x has 4"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 3},
     {"query": T(N, 5, 8), "key": T(N, 5, 8), "value": T(N, 5, 8)}, None,
     "num_heads 3 does not divide embed_dim 8"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(N, 5, 6), "key": T(N, 5, 8), "value": T(N, 5, 8)}, "query",
     "expected (batch, length, 8) for embed_dim 8"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(N, 5, 8), "key": T(N, 8), "value": T(N, 5, 8)}, "key", "expected (batch"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(N, 5, 8), "key": T(N, 5, 8), "value": T(N, 4, 8)}, "value",
     "length 4 differs from key's 5"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(3, 5, 8), "key": T(2, 5, 8), "value": T(N, 5, 8)}, "key",
     "batch 2 differs from query's 3"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(N, 5, 8), "key": T(N, 7, 8), "value": T(N, 7, 8), "mask": T(7, 5)}, "mask",
     "expected (5, 7) (query length L, key length S)"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(2, 5, 8), "key": T(2, 7, 8), "value": T(2, 7, 8), "mask": T(3, 5, 7)}, "mask",
     "expected (2, 5, 7)"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(N, 5, 8), "key": T(N, 7, 8), "value": T(N, 7, 8), "mask": T(N, 1, 5, 7)},
     "mask", "expected (L, S) or (batch, L, S)"),
    ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2},
     {"query": T(N, 5, 8), "key": T(N, 7, 8), "value": T(N, 7, 8),
      "mask": T(5, 7, dtype=INT)}, "mask", "expected a float tensor"),
]


@pytest.mark.parametrize("type_name, params, ins, port, words", SHAPE_ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_ERRORS)])
def test_shape_error_names_port_and_says_why(type_name, params, ins, port, words):
    with pytest.raises(ShapeError) as err:
        infer(type_name, params, **ins)
    assert err.value.port == port
    assert words in err.value.message


def test_lstm_cell_checks_c_like_h():
    with pytest.raises(ShapeError) as err:
        infer("LSTMCell", {"hidden_size": 3}, x=T(N, 5), h=T(N, 3), c=T(N, 2))
    assert err.value.port == "c" and "hidden_size 3" in err.value.message


def test_a_bad_mask_is_a_check_time_error_on_the_mask_port():
    doc = _attention_doc(8, 2, mask=("Constant", {"value": np.ones((4, 3)).tolist()}))
    with pytest.raises(core.GraphError) as err:
        core.compile(doc)
    assert "attn.mask: expected (3, 5)" in str(err.value)


def test_heads_that_do_not_divide_the_embedding_name_the_node():
    with pytest.raises(core.GraphError) as err:
        core.compile(_attention_doc(8, 3))
    assert err.value.node == "attn" and "does not divide" in str(err.value)


@pytest.mark.parametrize("type_name, given", [
    ("GRUCell", {"hidden_size": 0}),
    ("GRUCell", {}),
    ("MultiheadAttention", {"embed_dim": 4, "num_heads": 0}),
    ("MultiheadAttention", {"num_heads": 2}),
])
def test_bad_sizes_are_parameter_errors(type_name, given):
    with pytest.raises(ParamError):
        nodes.get(type_name).resolve_params(given)


# ---------------------------------------------------------------------------------------------
# PyTorch's tensors and initialisation


def test_cells_have_pytorchs_tensors_and_init():
    gru = nodes.get("GRUCell")
    specs = gru.weights(gru.resolve_params({"hidden_size": 16}), {"x": T(N, 5), "h": T(N, 16)})
    assert {n: w.shape for n, w in specs.items()} == {
        "weight_ih": (48, 5), "weight_hh": (48, 16), "bias_ih": (48,), "bias_hh": (48,)}
    assert {(w.init.kind, w.init.scale) for w in specs.values()} == {("uniform", 0.25)}
    lstm = nodes.get("LSTMCell")
    specs = lstm.weights(lstm.resolve_params({"hidden_size": 4, "bias": False}),
                         {"x": T(N, 3), "h": T(N, 4), "c": T(N, 4)})
    assert {n: w.shape for n, w in specs.items()} == {"weight_ih": (16, 3), "weight_hh": (16, 4)}
    assert {(w.init.kind, w.init.scale) for w in specs.values()} == {("uniform", 0.5)}


def test_attention_has_pytorchs_tensors_and_init():
    node = nodes.get("MultiheadAttention")
    specs = node.weights(node.resolve_params({"embed_dim": 16, "num_heads": 4}), {})
    assert {n: w.shape for n, w in specs.items()} == {
        "in_proj_weight": (48, 16), "in_proj_bias": (48,), "out_proj.weight": (16, 16),
        "out_proj.bias": (16,)}
    # xavier_uniform_ on (3E, E), zero biases, out_proj as nn.Linear(E, E).
    assert specs["in_proj_weight"].init.scale == pytest.approx(math.sqrt(6 / (16 + 48)))
    assert specs["in_proj_bias"].init.kind == specs["out_proj.bias"].init.kind == "constant"
    assert specs["in_proj_bias"].init.scale == specs["out_proj.bias"].init.scale == 0.0
    assert specs["out_proj.weight"].init.scale == pytest.approx(1 / 4)
    program = core.compile(_attention_doc(16, 4))
    assert program.param_names == ["attn.in_proj_weight", "attn.in_proj_bias",
                                   "attn.out_proj.weight", "attn.out_proj.bias"]


# ---------------------------------------------------------------------------------------------
# A cell over a whole sequence: a scan Loop against nn.GRU / nn.LSTM

B, STEPS, FEATURES, HIDDEN = 3, 5, 4, 6


def _sequence_doc(cell: str, bias: bool = True):
    """cell over x (B, steps, features) from the state h0 (and c0): every step's h stacked,
    loss = sum(sin(hs))."""
    states = ["h"] + (["c"] if cell == "LSTMCell" else [])
    outs = {"h": "h_next", "c": "c_next"} if cell == "LSTMCell" else {"h": "y"}
    body = graph(
        [("xt", "Input", {"role": "sequence"})]
        + [(s, "Input", {"role": "carry"}) for s in states]
        + [("cell", cell, {"hidden_size": HIDDEN, "bias": bias}), ("hs", "Output", {})]
        + [(f"{s}_next", "Output", {"role": "carry", "carry": s}) for s in states],
        [("xt.y", "cell.x"), (f"cell.{outs['h']}", "hs.x")]
        + [(f"{s}.y", f"cell.{s}") for s in states]
        + [(f"cell.{outs[s]}", f"{s}_next.x") for s in states])
    return document(
        [("x", "Input", {"shape": [None, FEATURES]})]
        + [(f"{s}0", "Input", {"shape": [HIDDEN]}) for s in states]
        + [("rnn", "Loop", {"mode": "scan", "axis": 1}, {"body": body}),
           ("sin", "Sin", {}), ("total", "Sum", {}), ("loss", "Output", {}),
           ("out", "Output", {})],
        [("x.y", "rnn.xt"), ("rnn.hs", "sin.x"), ("sin.y", "total.x"), ("total.y", "loss.x"),
         ("rnn.hs", "out.x")] + [(f"{s}0.y", f"rnn.{s}") for s in states])


def _against_torch_rnn(cell: str, torch_class: str, bias: bool):
    torch = pytest.importorskip("torch")
    doc = _sequence_doc(cell, bias)
    program = core.compile(doc, "float64")
    params = program.init_params(1)
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((B, STEPS, FEATURES)),
             "h0": rng.standard_normal((B, HIDDEN))}
    if cell == "LSTMCell":
        feeds["c0"] = rng.standard_normal((B, HIDDEN))
    hs = program.run(params, feeds)["out"]
    value, grads = program.value_and_grad(params, feeds)

    rnn = getattr(torch.nn, torch_class)(FEATURES, HIDDEN, bias=bias, batch_first=True).double()
    rnn.load_state_dict({f"{name.split('.')[-1]}_l0": torch.tensor(params[name])
                         for name in program.param_names})
    state = torch.tensor(feeds["h0"])[None]
    if cell == "LSTMCell":
        state = (state, torch.tensor(feeds["c0"])[None])
    t_hs, _ = rnn(torch.tensor(feeds["x"]), state)
    np.testing.assert_allclose(hs, t_hs.detach().numpy(), rtol=1e-9, atol=1e-12)
    loss = torch.sin(t_hs).sum()
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-9)
    for name in program.param_names:
        expected = getattr(rnn, f"{name.split('.')[-1]}_l0").grad.numpy()
        np.testing.assert_allclose(grads[name], expected, rtol=1e-8, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_in_a_scan_is_pytorchs_gru(bias):
    _against_torch_rnn("GRUCell", "GRU", bias)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_in_a_scan_is_pytorchs_lstm(bias):
    _against_torch_rnn("LSTMCell", "LSTM", bias)


def test_a_gru_sequence_gradient_matches_finite_differences():
    program = core.compile(_sequence_doc("GRUCell"), "float64")
    rng = np.random.default_rng(2)
    feeds = {"x": rng.standard_normal((2, 3, FEATURES)), "h0": rng.standard_normal((2, HIDDEN))}
    check_gradients(program, program.init_params(0), feeds)


@pytest.mark.parametrize("reach", ["both", "h_next", "c_next"])
def test_lstm_kernels_are_pytorchs_lstm_cell(reach):
    """The LSTM step and its gradients, kernel by kernel (what LSTMCell's rule calls), for
    gradients reaching both outputs or only one."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, h, c = (rng.standard_normal((4, n)) for n in (5, 3, 3))
    w_ih, w_hh = rng.standard_normal((12, 5)) * 0.5, rng.standard_normal((12, 3)) * 0.5
    b_ih, b_hh = rng.standard_normal(12) * 0.5, rng.standard_normal(12) * 0.5
    g_h = rng.standard_normal((4, 3)) if reach in ("both", "h_next") else None
    g_c = rng.standard_normal((4, 3)) if reach in ("both", "c_next") else None

    h_next, c_next, gates, tanh_c = kernels.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)
    d, g_x, g_h_prev, g_c_prev = kernels.lstm_cell_backward(c, gates, tanh_c, g_h, g_c, w_ih,
                                                            w_hh, True, True, True)
    ours = {"x": g_x, "h": g_h_prev, "c": g_c_prev,
            "weight_ih": kernels.gate_weight_grad(d, x),
            "weight_hh": kernels.gate_weight_grad(d, h),
            "bias_ih": kernels.gate_bias_grad(d), "bias_hh": kernels.gate_bias_grad(d)}

    t = {name: torch.tensor(v, requires_grad=True) for name, v in
         {"x": x, "h": h, "c": c, "weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih,
          "bias_hh": b_hh}.items()}
    cell = torch.nn.LSTMCell(5, 3).double()
    t_h, t_c = torch.func.functional_call(
        cell, {k: t[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
        (t["x"], (t["h"], t["c"])))
    np.testing.assert_allclose(h_next, t_h.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(c_next, t_c.detach().numpy(), rtol=1e-12)
    loss = sum((out * torch.tensor(g)).sum() for out, g in ((t_h, g_h), (t_c, g_c))
               if g is not None)
    loss.backward()
    for name, value in ours.items():
        np.testing.assert_allclose(value, t[name].grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


# ---------------------------------------------------------------------------------------------
# Attention: masks, self-attention, a query that may attend to nothing

E, HEADS, L, S = 8, 2, 3, 5


def _attention_doc(embed_dim, num_heads, mask=None, shared=None):
    """attn over query (B, L, E) and key, value (B, S, E), loss = sum(sin(y)). `mask`: (type,
    params) of the node giving the mask; `shared`: "all" feeds x to query, key and value,
    "kv" feeds one memory to key and value."""
    sources = {"all": {"query": "x", "key": "x", "value": "x"},
               "kv": {"query": "query", "key": "memory", "value": "memory"},
               None: {"query": "query", "key": "key", "value": "value"}}[shared]
    lengths = {"query": L, "key": S, "value": S, "memory": S, "x": L}
    inputs = sorted(set(sources.values()))
    nodes_ = [(name, "Input", {"shape": [lengths[name], embed_dim]}) for name in inputs]
    nodes_ += [("attn", "MultiheadAttention", {"embed_dim": embed_dim, "num_heads": num_heads}),
               ("sin", "Sin", {}), ("total", "Sum", {}), ("loss", "Output", {}),
               ("out", "Output", {})]
    edges = [(f"{src}.y", f"attn.{port}") for port, src in sources.items()]
    edges += [("attn.y", "sin.x"), ("sin.y", "total.x"), ("total.y", "loss.x"),
              ("attn.y", "out.x")]
    if mask is not None:
        nodes_.append(("mask", *mask))
        edges.append(("mask.y", "attn.mask"))
    return document(nodes_, edges)


def _engine_attention(doc, feeds, seed=5):
    program = core.compile(doc, "float64")
    params = program.init_params(seed)
    rng = np.random.default_rng(seed)
    for name in program.param_names:  # PyTorch's zero biases would leave them untested
        params[name] = params[name] + 0.1 * rng.standard_normal(params[name].shape)
    y = program.run(params, feeds)["out"]
    _, grads = program.value_and_grad(params, feeds)
    return params, y, grads


def _torch_attention(params, query, key, value, **mask_args):
    """nn.MultiheadAttention with the engine's tensors: (y, gradients by engine name)."""
    torch = pytest.importorskip("torch")
    attn = torch.nn.MultiheadAttention(E, HEADS, batch_first=True).double()
    attn.load_state_dict({name.removeprefix("attn."): torch.tensor(v)
                          for name, v in params.items()})
    y, _ = attn(*(torch.tensor(t) for t in (query, key, value)), **mask_args)
    torch.sin(y).sum().backward()
    grads = {f"attn.{name}": p.grad.numpy() for name, p in attn.named_parameters()}
    return y.detach().numpy(), grads


def _assert_same(y, grads, t_y, t_grads):
    np.testing.assert_allclose(y, t_y, rtol=1e-9, atol=1e-12)
    assert set(grads) == set(t_grads)
    for name, g in grads.items():
        np.testing.assert_allclose(g, t_grads[name], rtol=1e-8, atol=1e-12, err_msg=name)


def _qkv(batch=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, L, E)), rng.standard_normal((batch, S, E)),
            rng.standard_normal((batch, S, E)))


def test_attention_without_a_mask_is_pytorchs():
    query, key, value = _qkv()
    params, y, grads = _engine_attention(_attention_doc(E, HEADS),
                                         {"query": query, "key": key, "value": value})
    _assert_same(y, grads, *_torch_attention(params, query, key, value))


def test_a_padding_mask_is_pytorchs_key_padding_mask():
    """Each sample's keys past its own length are padding: mask (B, L, S) is 1 before it."""
    torch = pytest.importorskip("torch")
    query, key, value = _qkv()
    lengths = np.array([5, 3, 1, 4])
    valid = np.arange(S)[None, :] < lengths[:, None]  # (B, S)
    mask = np.broadcast_to(valid[:, None, :], (4, L, S)).astype(float)
    doc = _attention_doc(E, HEADS, mask=("Input", {"shape": [L, S]}))
    params, y, grads = _engine_attention(doc, {"query": query, "key": key, "value": value,
                                               "mask": mask})
    t_y, t_grads = _torch_attention(params, query, key, value,
                                    key_padding_mask=torch.tensor(~valid))
    _assert_same(y, grads, t_y, t_grads)


def test_a_causal_mask_is_pytorchs_causal_attn_mask():
    """Self-attention where position i sees positions 0 to i: one (L, L) mask for all."""
    torch = pytest.importorskip("torch")
    x = _qkv()[0]
    causal = np.tril(np.ones((L, L)))
    doc = _attention_doc(E, HEADS, mask=("Constant", {"value": causal.tolist()}), shared="all")
    params, y, grads = _engine_attention(doc, {"x": x})
    blocked = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
    _assert_same(y, grads, *_torch_attention(params, x, x, x, attn_mask=blocked))


def test_one_memory_as_key_and_value_is_pytorchs():
    query, memory, _ = _qkv()
    params, y, grads = _engine_attention(_attention_doc(E, HEADS, shared="kv"),
                                         {"query": query, "memory": memory})
    _assert_same(y, grads, *_torch_attention(params, query, memory, memory))


def test_a_query_with_no_allowed_key_gives_the_output_bias():
    """Row 1 of the mask allows nothing: y there is out_proj.bias, every value stays finite,
    and the other rows are what they are without that row."""
    query, key, value = _qkv(batch=2)
    mask = np.ones((L, S))
    mask[1] = -1.0
    doc = _attention_doc(E, HEADS, mask=("Constant", {"value": mask.tolist()}))
    feeds = {"query": query, "key": key, "value": value}
    params, y, grads = _engine_attention(doc, feeds)
    np.testing.assert_allclose(y[:, 1], np.broadcast_to(params["attn.out_proj.bias"], (2, E)))
    assert all(np.isfinite(g).all() for g in grads.values())
    _, free, _ = _engine_attention(_attention_doc(E, HEADS), feeds)
    np.testing.assert_allclose(y[:, [0, 2]], free[:, [0, 2]], rtol=1e-12)
    program = core.compile(doc, "float64")
    check_gradients(program, params, feeds)


def test_attention_exports_match_the_engine_for_shared_inputs_and_empty_rows(tmp_path):
    """The numpy and torch exports compute what the engine does, for self-attention with a
    causal mask and for a mask row that allows nothing (torch's own paths differ there)."""
    pytest.importorskip("torch")
    from tests.export_check import compare_numpy, compare_torch

    x = _qkv()[0]
    mask = np.tril(np.ones((L, L)))
    mask[0] = 0.0
    doc = _attention_doc(E, HEADS, mask=("Constant", {"value": mask.tolist()}), shared="all")
    params = core.compile(doc, "float64").init_params(2)
    compare_numpy(doc, params, {"x": x}, tmp_path)
    compare_torch(doc, params, {"x": x}, tmp_path, rtol=1e-6, dtype="float64")
    compare_torch(doc, params, {"x": x}, tmp_path, rtol=1e-5)


def test_attention_stays_float32():
    query, key, value = (a.astype(np.float32) for a in _qkv())
    mask = np.ones((4, L, S), np.float32)
    mask[:, 0] = 0
    program = core.compile(_attention_doc(E, HEADS, mask=("Input", {"shape": [L, S]})))
    params = program.init_params(0)
    feeds = {"query": query, "key": key, "value": value, "mask": mask}
    assert program.run(params, feeds)["out"].dtype == np.float32
    _, grads = program.value_and_grad(params, feeds)
    assert all(g.dtype == np.float32 and np.isfinite(g).all() for g in grads.values())
