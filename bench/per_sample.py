"""What structure that changes per sample costs (format version 2), in one run.

    python -m bench.per_sample [--steps N]

1. A per-sample `while` Loop (a learned residual step applied k times, k read from each sample,
   batch 64) trained three ways, each a whole Adam step on the same batch:
   - the per-sample while: each step runs the body on the samples still going;
   - the batch-of-one loop: the same document run on one sample at a time, gradients summed,
     one Adam step (what a user without per-sample loops would write);
   - masking: a batch-level while that runs every sample for the batch's longest k, a `Where`
     keeping the state of the samples that are done (the other way to write it).
   Two batches: k uniform in 1 .. 20, and most samples done early (k = 1 + a geometric count,
   mean 3, at most 20).
2. A TreeRNN (a `tree` Loop) over random expression trees of 7 to 31 nodes, batch 64: the
   engine (nodes of one height run together across the batch) against the usual PyTorch way,
   a recursion over each tree's nodes, sample by sample, and against the torch export of the
   same document (which batches by height too).

Prints the median ms per training step and the ratios. The engine's per-sample gradients are
checked against the batch-of-one loop's first. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse

import numpy as np
from wiregrad.core.allocator import keep_freed_memory
from wiregrad.core.export import export_source
from wiregrad.core.export.loading import import_text
from wiregrad.core.generators import expr_trees

from wiregrad import core

from .engine import EngineRunner, document, graph, time_steps

STATE, HIDDEN, MAX_STEPS, BATCH = 8, 32, 20, 64


# -- 1. per-sample while --------------------------------------------------------------------------


def ponder_doc(per_sample: bool) -> core.Document:
    """z <- z + W2 tanh(W1 z) for k steps of each sample; MSE against a target.

    Per sample: continue = k - (t + 1). Masked: the loop runs while any sample has steps left
    (a batch-level continue, the batch's Max), and a Where keeps the state of a sample once
    t >= k."""
    nodes_ = [("z", "Input", {"role": "carry"}), ("k", "Input", {}), ("t", "LoopIndex", {}),
              ("one", "Constant", {"value": 1.0}), ("done", "Add", {}), ("left", "Sub", {}),
              ("fc1", "Linear", {"out_features": HIDDEN}), ("act", "Tanh", {}),
              ("fc2", "Linear", {"out_features": STATE}), ("moved", "Add", {}),
              ("z_next", "Output", {"role": "carry", "carry": "z"}),
              ("go", "Output", {"role": "continue"})]
    edges = [("z.y", "fc1.x"), ("fc1.y", "act.x"), ("act.y", "fc2.x"), ("z.y", "moved.a"),
             ("fc2.y", "moved.b"), ("t.y", "done.a"), ("one.y", "done.b"), ("k.y", "left.a"),
             ("done.y", "left.b")]
    if per_sample:
        edges += [("moved.y", "z_next.x"), ("left.y", "go.x")]
    else:
        nodes_ += [("zero", "Constant", {"value": 0.0}), ("running", "Greater", {}),
                   ("keep", "Where", {}), ("most", "Max", {}), ("this", "Sub", {})]
        edges += [("k.y", "this.a"), ("t.y", "this.b"), ("this.y", "running.a"),
                  ("zero.y", "running.b"), ("running.y", "keep.cond"), ("moved.y", "keep.a"),
                  ("z.y", "keep.b"), ("keep.y", "z_next.x"), ("left.y", "most.x"),
                  ("most.y", "go.x")]
    body = graph(nodes_, edges)
    return document(
        [("x", "Input", {"shape": [STATE]}), ("k", "Input", {"shape": [1]}),
         ("target", "Input", {"shape": [STATE]}),
         ("loop", "Loop", {"mode": "while", "per_sample": per_sample, "max_iter": MAX_STEPS},
          {"body": body}),
         ("mse", "MSELoss", {}), ("loss", "Output", {})],
        [("x.y", "loop.z"), ("k.y", "loop.k"), ("loop.z_next", "mse.pred"),
         ("target.y", "mse.target"), ("mse.y", "loss.x")])


class BatchOfOne(EngineRunner):
    """The per-sample document, one sample at a time: the batch's mean loss is the mean of the
    samples' own, so the mean of their gradients is the batch's gradient."""

    def __init__(self, doc, params):
        super().__init__(doc, params)
        self.one = [np.empty_like(g) for g in self.grads]

    def gradients(self, feeds):
        for g in self.grads:
            g.fill(0.0)
        rows = len(feeds["x"])
        for i in range(rows):
            sample = {name: value[i:i + 1] for name, value in feeds.items()}
            self.program.loss_and_grads(self.params, sample, "loss", True, self.rng, self.one,
                                        checked=True)
            for total, g in zip(self.grads, self.one):
                total += g
        for g in self.grads:
            g /= rows

    def step(self, feeds):
        self.gradients(feeds)
        self.opt.step()


def ponder_case(kind: str, rng) -> dict:
    if kind == "uniform":
        k = rng.integers(1, MAX_STEPS + 1, BATCH)
    else:
        k = np.minimum(1 + rng.geometric(1 / 3, BATCH) - 1, MAX_STEPS)
        k[0] = MAX_STEPS  # one sample needs them all
    return {"x": rng.normal(size=(BATCH, STATE)).astype(np.float32),
            "k": k.astype(np.float32)[:, None],
            "target": rng.normal(size=(BATCH, STATE)).astype(np.float32)}


def bench_ponder(steps: int) -> None:
    print("| k per sample | per-sample while ms/step | batch of one ms/step | masked ms/step "
          "| speed-up over batch of one | speed-up over masking |")
    print("|---|---|---|---|---|---|")
    for kind in ("uniform", "most early"):
        feeds = ponder_case(kind, np.random.default_rng(0))
        doc, masked = ponder_doc(True), ponder_doc(False)
        params = core.compile(doc, "float32").init_params(0)
        runners = {"per-sample": EngineRunner(doc, params), "one": BatchOfOne(doc, params),
                   "masked": EngineRunner(masked, params)}
        _, grads = runners["per-sample"].program.value_and_grad(params, feeds)
        runners["one"].gradients(feeds)
        for name, g in zip(runners["one"].program.param_names, runners["one"].grads):
            err = float(np.abs(g - grads[name]).max()) / (float(np.abs(grads[name]).max()) or 1)
            assert err < 1e-4, f"batch of one differs from the per-sample loop on {name}: {err}"
        t = time_steps(runners, feeds, steps)
        label = f"{kind} (mean {feeds['k'].mean():.1f}, max {int(feeds['k'].max())})"
        print(f"| {label} | {t['per-sample'] * 1e3:.3f} | {t['one'] * 1e3:.3f} | "
              f"{t['masked'] * 1e3:.3f} | {t['one'] / t['per-sample']:.1f}x | "
              f"{t['masked'] / t['per-sample']:.2f}x |", flush=True)


# -- 2. tree loop ---------------------------------------------------------------------------------

TREE_HIDDEN, EMBED, TOKENS, CLASSES = 64, 16, 14, 10


def tree_doc() -> core.Document:
    body = graph([("tok", "Input", {"role": "sequence"}),
                  ("kids", "Input", {"role": "children", "of": "h",
                                     "shape": [2, TREE_HIDDEN]}),
                  ("flat", "Flatten", {}), ("join", "Concat", {}),
                  ("cell", "Linear", {"out_features": TREE_HIDDEN}), ("act", "Tanh", {}),
                  ("h", "Output", {})],
                 [("kids.y", "flat.x"), ("tok.y", "join.x0"), ("flat.y", "join.x1"),
                  ("join.y", "cell.x"), ("cell.y", "act.x"), ("act.y", "h.x")])
    return document(
        [("tokens", "Input", {"shape": [None], "dtype": "int64"}),
         ("children", "Input", {"shape": [None, 2], "dtype": "int64"}),
         ("root", "Input", {"shape": [], "dtype": "int64"}),
         ("label", "Input", {"shape": [], "dtype": "int64"}),
         ("embed", "Embedding", {"num_embeddings": TOKENS, "embedding_dim": EMBED}),
         ("tree", "Loop", {"mode": "tree"}, {"body": body}), ("pick", "Gather", {}),
         ("head", "Linear", {"out_features": CLASSES}), ("ce", "CrossEntropyLoss", {}),
         ("loss", "Output", {})],
        [("tokens.y", "embed.x"), ("embed.y", "tree.tok"), ("children.y", "tree.children"),
         ("tree.h", "pick.x"), ("root.y", "pick.index"), ("pick.y", "head.x"),
         ("head.y", "ce.logits"), ("label.y", "ce.target"), ("ce.y", "loss.x")])


def torch_recursive(params: dict):
    """The usual PyTorch TreeRNN: each tree walked by recursion from its root, sample by
    sample (as TreeLSTM code is written), the roots stacked for the loss."""
    import torch

    def tensor(name, transpose=False):
        value = torch.from_numpy(params[name].T.copy() if transpose else params[name].copy())
        return torch.nn.Parameter(value)

    embed, w, b = tensor("embed.weight"), tensor("tree/cell.weight"), tensor("tree/cell.bias")
    hw, hb = tensor("head.weight"), tensor("head.bias")
    opt = torch.optim.Adam([embed, w, b, hw, hb], lr=1e-3)
    zero = torch.zeros(TREE_HIDDEN)

    def node(tokens, children, n):
        kids = [node(tokens, children, c) if c >= 0 else zero for c in children[n]]
        x = torch.cat([embed[tokens[n]], *kids])
        return torch.tanh(x @ w + b)

    class Runner:
        def step(self, feeds):
            roots = [node(feeds["tokens"][i], feeds["children"][i].tolist(), feeds["root"][i])
                     for i in range(len(feeds["root"]))]
            logits = torch.stack(roots) @ hw + hb
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(feeds["label"]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.item()

    return Runner()


def torch_export(doc, params: dict):
    """The torch export of the same document, trained with torch's Adam."""
    import torch

    module = import_text(export_source(doc, "torch"))
    model = module.Model()
    module.load_params(model, params)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    class Runner:
        def step(self, feeds):
            out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            return out["loss"].item()

    return Runner()


def bench_tree(steps: int) -> None:
    trees = expr_trees(BATCH, min_nodes=7, max_nodes=31, seed=0)
    feeds = {"tokens": trees["tokens"], "children": trees["children"], "root": trees["root"],
             "label": trees["target"]}
    doc = tree_doc()
    params = core.compile(doc, "float32").init_params(0)
    runners = {"engine": EngineRunner(doc, params)}
    try:
        import torch  # noqa: F401
    except ImportError:
        torch_text = "torch not installed"
    else:
        runners["torch"] = torch_recursive(params)
        runners["torch_export"] = torch_export(doc, params)
        torch_text = ""
    sizes = trees["length"]
    print(f"\nTreeRNN, hidden {TREE_HIDDEN}, batch {BATCH}: trees of {sizes.min()} to "
          f"{sizes.max()} nodes (mean {sizes.mean():.1f}) {torch_text}")
    print("| runner | ms/step | vs engine |")
    print("|---|---|---|")
    t = time_steps(runners, feeds, steps)
    names = {"engine": "engine (tree Loop, by height)", "torch": "PyTorch, recursion per sample",
             "torch_export": "PyTorch, the torch export (by height)"}
    for key, name in names.items():
        if key in t:
            print(f"| {name} | {t[key] * 1e3:.2f} | {t[key] / t['engine']:.1f}x |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=1.0, help="scale the step counts")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the trainer does
    print(f"numpy {np.__version__}; float32, Adam; batch {BATCH}\n")
    bench_ponder(max(10, int(100 * args.steps)))
    bench_tree(max(10, int(40 * args.steps)))


if __name__ == "__main__":
    main()
