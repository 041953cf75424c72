"""How fast the fused recurrent cells and attention train, against PyTorch, in one run.

    python -m bench.cells [--steps N] [--only NAME]

Each case trains Adam steps (float32, random data) with the engine (a compiled document and
its flat-buffer Adam, as `core.train` runs a step) and with PyTorch eager on the CPU:

- an LSTM (and a GRU) of hidden size 128 over 50 steps, batch 32, 64 input features: the cell
  in a scan Loop, a Linear head on the last state and CrossEntropyLoss; against torch's fused
  nn.LSTM / nn.GRU and against a Python loop over nn.LSTMCell / nn.GRUCell, the way a
  document runs it (the target: the engine no slower than that loop);
- self-attention, batch 32, L = S = 32, E = 64, 4 heads (without a mask, and with a causal
  one), its mean over the sequence through a Linear head into CrossEntropyLoss; against
  nn.MultiheadAttention.

Both start from the same parameters, and their first gradients are checked to agree. The
timing is bench.engine's: median time per step over blocks, torch's blocks run on their own.
Prints a markdown table of ms/step and the ratios, all measured in the same run.

This is a benchmark, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse

import numpy as np
from wiregrad.core.allocator import keep_freed_memory

from bench.engine import EngineRunner, document, graph, time_steps
from wiregrad import core

FEATURES, HIDDEN, STEPS, CLASSES = 64, 128, 50, 10
EMBED, HEADS, LENGTH = 64, 4, 32


# -- the nets as documents --------------------------------------------------------------------


def cell_doc(cell: str):
    """cell (GRUCell or LSTMCell) over x (B, STEPS, FEATURES) from zero states, a Linear head
    on the last h, CrossEntropyLoss."""
    states = ["h", "c"] if cell == "LSTMCell" else ["h"]
    outs = {"h": "h_next", "c": "c_next"} if cell == "LSTMCell" else {"h": "y"}
    body = graph(
        [("xt", "Input", {"role": "sequence"})]
        + [(s, "Input", {"role": "carry"}) for s in states]
        + [("cell", cell, {"hidden_size": HIDDEN})]
        + [(f"{s}_next", "Output", {"role": "carry", "carry": s}) for s in states],
        [("xt.y", "cell.x")] + [(f"{s}.y", f"cell.{s}") for s in states]
        + [(f"cell.{outs[s]}", f"{s}_next.x") for s in states])
    return document(
        [("x", "Input", {"shape": [None, FEATURES]}),
         ("label", "Input", {"shape": [], "dtype": "int64"})]
        + [(f"{s}0", "Constant", {"value": [0.0] * HIDDEN}) for s in states]
        + [("rnn", "Loop", {"mode": "scan", "axis": 1}, {"body": body}),
           ("head", "Linear", {"out_features": CLASSES}), ("ce", "CrossEntropyLoss", {}),
           ("loss", "Output", {})],
        [(f"{s}0.y", f"rnn.{s}") for s in states]
        + [("x.y", "rnn.xt"), ("rnn.h_next", "head.x"), ("head.y", "ce.logits"),
           ("label.y", "ce.target"), ("ce.y", "loss.x")])


def attention_doc(causal: bool):
    """Self-attention over x (B, LENGTH, EMBED), its mean over the sequence, a Linear head,
    CrossEntropyLoss."""
    nodes_ = [("x", "Input", {"shape": [LENGTH, EMBED]}),
              ("label", "Input", {"shape": [], "dtype": "int64"}),
              ("attn", "MultiheadAttention", {"embed_dim": EMBED, "num_heads": HEADS}),
              ("pool", "Mean", {"axis": 1}), ("head", "Linear", {"out_features": CLASSES}),
              ("ce", "CrossEntropyLoss", {}), ("loss", "Output", {})]
    edges = [("x.y", "attn.query"), ("x.y", "attn.key"), ("x.y", "attn.value"),
             ("attn.y", "pool.x"), ("pool.y", "head.x"), ("head.y", "ce.logits"),
             ("label.y", "ce.target"), ("ce.y", "loss.x")]
    if causal:
        nodes_.append(("mask", "Constant",
                       {"value": np.tril(np.ones((LENGTH, LENGTH))).tolist()}))
        edges.append(("mask.y", "attn.mask"))
    return document(nodes_, edges)


# -- PyTorch --------------------------------------------------------------------------------------


class TorchRunner:
    """Adam steps of a torch model whose forward maps x to logits; `tensors` pairs its
    parameters with the engine's: (parameter, engine name, transposed)."""

    def __init__(self, model, forward, tensors: list):
        import torch

        self.torch, self.model, self.forward, self.tensors = torch, model, forward, tensors
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(self, feeds):
        x = self.torch.from_numpy(feeds["x"])
        y = self.torch.from_numpy(feeds["label"])
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.forward(x), y)
        loss.backward()
        self.opt.step()
        return loss.detach().item()


def _load(module, params: dict, names: dict) -> list:
    """module's tensors from the engine's: torch name -> (engine name, transposed). Returns
    (parameter, engine name, transposed) for each."""
    import torch

    state = {key: torch.from_numpy(np.ascontiguousarray(params[name].T if t else params[name]))
             for key, (name, t) in names.items()}
    module.load_state_dict(state)
    return [(module.get_parameter(key), name, t) for key, (name, t) in names.items()]


def _head(params) -> tuple:
    from torch import nn

    head = nn.Linear(params["head.weight"].shape[0], CLASSES)
    return head, _load(head, params, {"weight": ("head.weight", True),
                                      "bias": ("head.bias", False)})


def cell_runners(cell: str, params: dict) -> dict:
    """torch's fused layer (nn.LSTM / nn.GRU) and a loop over its cell, both from params."""
    from torch import nn

    kind = "LSTM" if cell == "LSTMCell" else "GRU"
    names = {n: f"rnn/cell.{n}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    layer = getattr(nn, kind)(FEATURES, HIDDEN, batch_first=True)
    layer_tensors = _load(layer, params, {f"{n}_l0": (full, False) for n, full in names.items()})
    layer_head, head_tensors = _head(params)

    def fused(x):
        _, state = layer(x)
        h = state[0] if kind == "LSTM" else state
        return layer_head(h[0])

    step_cell = getattr(nn, cell)(FEATURES, HIDDEN)
    cell_tensors = _load(step_cell, params, {n: (full, False) for n, full in names.items()})
    loop_head, loop_head_tensors = _head(params)

    def looped(x):
        h = x.new_zeros(x.shape[0], HIDDEN)
        c = x.new_zeros(x.shape[0], HIDDEN)
        for t in range(x.shape[1]):
            if kind == "LSTM":
                h, c = step_cell(x[:, t], (h, c))
            else:
                h = step_cell(x[:, t], h)
        return loop_head(h)

    return {f"torch {kind}": TorchRunner(nn.ModuleList([layer, layer_head]), fused,
                                         layer_tensors + head_tensors),
            f"torch {cell} loop": TorchRunner(nn.ModuleList([step_cell, loop_head]), looped,
                                              cell_tensors + loop_head_tensors)}


def attention_runners(params: dict, causal: bool) -> dict:
    import torch
    from torch import nn

    attn = nn.MultiheadAttention(EMBED, HEADS, batch_first=True)
    tensors = _load(attn, params, {n: (f"attn.{n}", False) for n in (
        "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")})
    head, head_tensors = _head(params)
    blocked = torch.triu(torch.ones(LENGTH, LENGTH, dtype=torch.bool), 1) if causal else None

    def forward(x):
        y, _ = attn(x, x, x, attn_mask=blocked, need_weights=False)
        return head(y.mean(dim=1))

    return {"torch MultiheadAttention": TorchRunner(nn.ModuleList([attn, head]), forward,
                                                    tensors + head_tensors)}


def check_gradients_agree(program, params, runner, feeds) -> None:
    """The engine's first gradients equal torch's (float32: relative to the largest entry,
    1e-3)."""
    _, grads = program.value_and_grad(params, feeds, train=False)
    runner.opt.step = lambda: None  # gradients only
    runner.step(feeds)
    del runner.opt.step
    for param, name, transposed in runner.tensors:
        theirs = param.grad.numpy().T if transposed else param.grad.numpy()
        scale = float(np.abs(grads[name]).max()) or 1.0
        err = float(np.abs(grads[name] - theirs).max()) / scale
        assert err < 1e-3, f"torch's gradient of {name} differs from the engine's by {err:.2g}"
        param.grad = None


# -- the table ------------------------------------------------------------------------------------

CASES = [
    ("LSTM 128, 50 steps, batch 32", "LSTMCell", 40),
    ("GRU 128, 50 steps, batch 32", "GRUCell", 40),
    ("self-attention E 64, 4 heads, L 32, batch 32", "attention", 100),
    ("self-attention, causal mask", "causal", 100),
]


def make_case(kind: str, rng):
    if kind in ("LSTMCell", "GRUCell"):
        doc = cell_doc(kind)
        x = rng.normal(size=(32, STEPS, FEATURES)).astype(np.float32)
    else:
        doc = attention_doc(kind == "causal")
        x = rng.normal(size=(32, LENGTH, EMBED)).astype(np.float32)
    return doc, {"x": x, "label": rng.integers(0, CLASSES, 32)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=1.0, help="scale the step counts")
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the trainer does
    import torch

    print(f"numpy {np.__version__}; torch {torch.__version__} ({torch.get_num_threads()} "
          "threads); float32, Adam")
    print()
    print("| case | engine ms/step | torch fused ms/step | torch cell loop ms/step | "
          "engine/fused | engine/cell loop |")
    print("|---|---|---|---|---|---|")
    for name, kind, steps in CASES:
        if args.only and args.only.lower() not in name.lower():
            continue
        steps = max(10, int(steps * args.steps))
        doc, feeds = make_case(kind, np.random.default_rng(0))
        program = core.compile(doc, "float32")
        params = program.init_params(0)
        if kind in ("LSTMCell", "GRUCell"):
            others = cell_runners(kind, params)
        else:
            others = attention_runners(params, kind == "causal")
        for runner in others.values():
            check_gradients_agree(program, params, runner, feeds)
        runners = {"engine": EngineRunner(doc, params), **others}
        t = time_steps(runners, feeds, steps)
        fused = next(n for n in others if "loop" not in n)
        loop = next((n for n in others if "loop" in n), None)
        loop_ms = f"{t[loop] * 1e3:.2f}" if loop else "-"
        loop_ratio = f"{t['engine'] / t[loop]:.2f}" if loop else "-"
        print(f"| {name} | {t['engine'] * 1e3:.2f} | {t[fused] * 1e3:.2f} | {loop_ms} | "
              f"{t['engine'] / t[fused]:.2f} | {loop_ratio} |", flush=True)


if __name__ == "__main__":
    main()
