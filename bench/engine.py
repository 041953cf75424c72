"""How fast the engine trains, against PyTorch eager and hand-written numpy, in one run.

    python -m bench.engine [--steps N] [--only NAME]

For each net, trains a few hundred Adam steps (float32, random data) three ways: the engine
(compiled document, flat-buffer Adam, exactly what `core.train` runs per step), PyTorch eager on
the CPU (when installed), and a hand-written numpy version of the same net with forward,
backward and Adam written out (its gradients are checked against the engine's first). The RNN
has two hand-written versions: the naive one, and one that hoists every step's input
projection into one matmul before the loop and the weight gradients after it, as a hand-written
BPTT does. The runners take turns, block by block, so a change in the machine's load touches
them all alike. Prints the median time per step of each and the ratios.

This is a benchmark, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from wiregrad.core.allocator import keep_freed_memory
from wiregrad.core.optim import Adam

from wiregrad import core

# -- the nets as documents --------------------------------------------------------------------


def graph(nodes_: list, edges: list) -> core.Graph:
    """nodes: (id, type, params) or (id, type, params, bodies); edges: ("a.y", "b.x")."""
    out = core.Graph()
    for spec in nodes_:
        bodies = spec[3] if len(spec) > 3 else {}
        out.nodes.append(core.Node(spec[0], spec[1], dict(spec[2]), bodies=dict(bodies)))
    out.edges = [core.Edge.parse(a, b) for a, b in edges]
    return out


def document(nodes_: list, edges: list) -> core.Document:
    return core.Document(graph(nodes_, edges), "bench")


def mlp_doc(sizes, act="ReLU"):
    nodes_ = [("x", "Input", {"shape": [sizes[0]]}), ("label", "Input", {"shape": [], "dtype": "int64"})]
    edges, prev = [], "x.y"
    for i, width in enumerate(sizes[1:]):
        nodes_.append((f"fc{i}", "Linear", {"out_features": width}))
        edges.append((prev, f"fc{i}.x"))
        prev = f"fc{i}.y"
        if i < len(sizes) - 2:
            nodes_.append((f"act{i}", act, {}))
            edges.append((prev, f"act{i}.x"))
            prev = f"act{i}.y"
    nodes_ += [("ce", "CrossEntropyLoss", {}), ("loss", "Output", {})]
    edges += [(prev, "ce.logits"), ("label.y", "ce.target"), ("ce.y", "loss.x")]
    return document(nodes_, edges)


def rnn_doc(features, hidden, classes):
    body = graph(
        [("xt", "Input", {"role": "sequence"}), ("h", "Input", {"role": "carry"}),
         ("join", "Concat", {}), ("cell", "Linear", {"out_features": hidden}), ("act", "Tanh", {}),
         ("h_next", "Output", {"role": "carry", "carry": "h"})],
        [("xt.y", "join.x0"), ("h.y", "join.x1"), ("join.y", "cell.x"), ("cell.y", "act.x"),
         ("act.y", "h_next.x")])
    return document(
        [("x", "Input", {"shape": [None, features]}), ("label", "Input", {"shape": [], "dtype": "int64"}),
         ("h0", "Constant", {"value": [0.0] * hidden}),
         ("rnn", "Loop", {"mode": "scan", "axis": 1}, {"body": body}),
         ("head", "Linear", {"out_features": classes}), ("ce", "CrossEntropyLoss", {}),
         ("loss", "Output", {})],
        [("x.y", "rnn.xt"), ("h0.y", "rnn.h"), ("rnn.h_next", "head.x"), ("head.y", "ce.logits"),
         ("label.y", "ce.target"), ("ce.y", "loss.x")])


def conv_doc(batch_norm=False):
    """conv 8, (BatchNorm), ReLU, pool, conv 16, (BatchNorm), ReLU, linear."""
    nodes_ = [("x", "Input", {"shape": [1, 28, 28]}),
              ("label", "Input", {"shape": [], "dtype": "int64"}),
              ("c1", "Conv2D", {"out_channels": 8, "kernel_size": 3}), ("r1", "ReLU", {}),
              ("p1", "MaxPool2D", {"kernel_size": 2}),
              ("c2", "Conv2D", {"out_channels": 16, "kernel_size": 3}), ("r2", "ReLU", {}),
              ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 10}),
              ("ce", "CrossEntropyLoss", {}), ("loss", "Output", {})]
    edges = [("x.y", "c1.x"), ("r1.y", "p1.x"), ("p1.y", "c2.x"), ("r2.y", "flat.x"),
             ("flat.y", "fc.x"), ("fc.y", "ce.logits"), ("label.y", "ce.target"),
             ("ce.y", "loss.x")]
    if batch_norm:
        nodes_ += [("bn1", "BatchNorm", {}), ("bn2", "BatchNorm", {})]
        edges += [("c1.y", "bn1.x"), ("bn1.y", "r1.x"), ("c2.y", "bn2.x"), ("bn2.y", "r2.x")]
    else:
        edges += [("c1.y", "r1.x"), ("c2.y", "r2.x")]
    return document(nodes_, edges)


# -- the engine, as the trainer runs it ---------------------------------------------------------


class EngineRunner:
    def __init__(self, doc, params):
        self.program = core.compile(doc, "float32")
        trainable = self.program.trainable_names
        self.opt = Adam([params[n] for n in trainable], lr=1e-3)
        buffers = [params[n].copy() for n in self.program.param_names[len(trainable):]]
        self.params, self.grads = list(self.opt.params) + buffers, list(self.opt.grads)
        self.rng = np.random.default_rng(0)

    def step(self, feeds):
        # Feeds are checked and cast once per dataset by the trainer; here, they already fit.
        loss, _ = self.program.loss_and_grads(self.params, feeds, "loss", True, self.rng, self.grads,
                                              checked=True)
        self.opt.step()
        return loss


# -- hand-written numpy -------------------------------------------------------------------------


class HandAdam:
    """Adam over one flat buffer, updated in place, as PyTorch computes it."""

    def __init__(self, arrays, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        total = sum(a.size for a in arrays)
        self.flat = np.empty(total, np.float32)
        self.gflat = np.zeros(total, np.float32)
        self.m, self.v, self.s = (np.zeros(total, np.float32) for _ in range(3))
        self.params, self.grads, offset = [], [], 0
        for a in arrays:
            self.params.append(self.flat[offset:offset + a.size].reshape(a.shape))
            self.grads.append(self.gflat[offset:offset + a.size].reshape(a.shape))
            self.params[-1][...] = a
            offset += a.size
        self.lr, self.b1, self.b2, self.eps, self.t = lr, betas[0], betas[1], eps, 0

    def step(self):
        self.t += 1
        g, m, v, s = self.gflat, self.m, self.v, self.s
        m *= self.b1
        np.multiply(g, 1 - self.b1, out=s)
        m += s
        v *= self.b2
        np.multiply(g, g, out=s)
        s *= 1 - self.b2
        v += s
        np.sqrt(v, out=s)
        s /= (1 - self.b2 ** self.t) ** 0.5
        s += self.eps
        np.divide(m, s, out=s)
        s *= self.lr / (1 - self.b1 ** self.t)
        self.flat -= s


def softmax_ce(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = float(np.log(total[:, 0]).mean() - shifted[np.arange(n), labels].mean())
    g = e / total
    g[np.arange(n), labels] -= 1
    g /= n
    return loss, g


class HandMLP:
    def __init__(self, params, names, act="ReLU"):
        self.opt = HandAdam([params[n] for n in names])
        self.tanh = act == "Tanh"

    def step(self, feeds):
        x, labels = feeds["x"], feeds["label"]
        ps, gs = self.opt.params, self.opt.grads
        layers = len(ps) // 2
        inputs, acts = [], []
        h = x
        for i in range(layers):
            inputs.append(h)
            z = h @ ps[2 * i]
            z += ps[2 * i + 1]
            if i < layers - 1:
                h = np.tanh(z) if self.tanh else np.maximum(z, 0)
                acts.append(h)
            else:
                h = z
        loss, g = softmax_ce(h, labels)
        for i in range(layers - 1, -1, -1):
            np.matmul(inputs[i].T, g, out=gs[2 * i])
            np.sum(g, axis=0, out=gs[2 * i + 1])
            if i:
                g = g @ ps[2 * i].T
                g *= (1 - acts[i - 1] ** 2) if self.tanh else (acts[i - 1] > 0)
        self.opt.step()
        return loss


class HandRNN:
    def __init__(self, params, names):
        self.opt = HandAdam([params[n] for n in names])

    def step(self, feeds):
        x, labels = feeds["x"], feeds["label"]
        w, b, wo, bo = self.opt.params
        gw, gb, gwo, gbo = self.opt.grads
        batch, steps, features = x.shape
        hidden = w.shape[1]
        h = np.zeros((batch, hidden), np.float32)
        joins, hs = [], []
        for t in range(steps):
            join = np.concatenate([x[:, t], h], axis=1)
            h = np.tanh(join @ w + b)
            joins.append(join)
            hs.append(h)
        logits = h @ wo + bo
        loss, g = softmax_ce(logits, labels)
        np.matmul(h.T, g, out=gwo)
        np.sum(g, axis=0, out=gbo)
        gh = g @ wo.T
        gw.fill(0)
        gb.fill(0)
        for t in range(steps - 1, -1, -1):
            gz = gh * (1 - hs[t] ** 2)
            gw += joins[t].T @ gz
            gb += gz.sum(axis=0)
            gh = (gz @ w.T)[:, features:]
        self.opt.step()
        return loss


class HandRNNHoisted:
    """The same RNN the way a hand-written BPTT does it: every step's input projection as
    one matmul before the loop, and the weight gradients as one matmul each after it."""

    def __init__(self, params, names):
        self.opt = HandAdam([params[n] for n in names])

    def step(self, feeds):
        x, labels = feeds["x"], feeds["label"]
        w, b, wo, bo = self.opt.params
        gw, gb, gwo, gbo = self.opt.grads
        batch, steps, features = x.shape
        wx, wh = w[:features], w[features:]
        xw = x @ wx  # (batch, steps, hidden): every step's projection at once
        xw += b
        h = np.zeros((batch, wh.shape[0]), np.float32)
        hs = [h]
        for t in range(steps):
            z = h @ wh
            z += xw[:, t]
            h = np.tanh(z)
            hs.append(h)
        logits = h @ wo + bo
        loss, g = softmax_ce(logits, labels)
        np.matmul(h.T, g, out=gwo)
        np.sum(g, axis=0, out=gbo)
        gh = g @ wo.T
        gzs = []
        for t in range(steps - 1, -1, -1):
            gz = hs[t + 1] * hs[t + 1]
            np.subtract(1, gz, out=gz)
            gz *= gh
            gzs.append(gz)
            gh = gz @ wh.T
        gz_all = np.stack(gzs[::-1], axis=1)  # (batch, steps, hidden)
        rows = gz_all.reshape(-1, gz_all.shape[-1])
        np.matmul(np.stack(hs[:-1], axis=1).reshape(-1, wh.shape[0]).T, rows, out=gw[features:])
        np.matmul(x.reshape(-1, features).T, rows, out=gw[:features])
        np.sum(rows, axis=0, out=gb)
        self.opt.step()
        return loss


def _im2col(x, k):
    """The k x k windows of NCHW x as contiguous columns (N, C*k*k, Ho*Wo)."""
    n, c, h, w = x.shape
    ho, wo = h - k + 1, w - k + 1
    cols = np.empty((n, c, k, k, ho, wo), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = x[:, :, i:i + ho, j:j + wo]
    return cols.reshape(n, c * k * k, ho * wo)


def _conv(x, w, b):
    """3x3 convolution by im2col + one batched matmul; returns y and the columns."""
    cols = _im2col(x, 3)
    y = np.matmul(w.reshape(len(w), -1), cols)
    y += b[:, None]
    n, _, h, ww = x.shape
    return y.reshape(n, len(w), h - 2, ww - 2), cols


def _conv_back(x, cols, w, gy, gw, gb, need_x):
    n, o, ho, wo = gy.shape
    gy3 = gy.reshape(n, o, ho * wo)
    np.copyto(gw, np.matmul(gy3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(gw.shape))
    np.sum(gy3, axis=(0, 2), out=gb)
    if not need_x:
        return None
    g_cols = np.matmul(w.reshape(o, -1).T, gy3).reshape(n, x.shape[1], 3, 3, ho, wo)
    gx = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            gx[:, :, i:i + ho, j:j + wo] += g_cols[:, :, i, j]
    return gx


class HandConv:
    def __init__(self, params, names):
        self.opt = HandAdam([params[n] for n in names])

    def step(self, feeds):
        x, labels = feeds["x"], feeds["label"]
        w1, b1, w2, b2, wf, bf = self.opt.params
        g1, gb1, g2, gb2, gwf, gbf = self.opt.grads
        z1, cols1 = _conv(x, w1, b1)
        a1 = np.maximum(z1, 0)
        corners = [a1[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]  # 2x2 max-pool
        p1 = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
        z2, cols2 = _conv(p1, w2, b2)
        a2 = np.maximum(z2, 0)
        n = len(x)
        flat = a2.reshape(n, -1)
        logits = flat @ wf + bf
        loss, g = softmax_ce(logits, labels)
        np.matmul(flat.T, g, out=gwf)
        np.sum(g, axis=0, out=gbf)
        g = (g @ wf.T).reshape(a2.shape) * (z2 > 0)
        gp = _conv_back(p1, cols2, w2, g, g2, gb2, True)
        # max-pool backward: to the first arg-max of each 2x2 block
        ga = np.empty_like(a1)
        free = np.ones(p1.shape, bool)
        for (i, j), corner in zip(((0, 0), (0, 1), (1, 0), (1, 1)), corners):
            hit = (corner == p1) & free
            free &= ~hit
            ga[:, :, i::2, j::2] = gp * hit
        ga *= z1 > 0
        _conv_back(x, cols1, w1, ga, g1, gb1, False)
        self.opt.step()
        return loss


# -- PyTorch eager --------------------------------------------------------------------------------


def torch_runner(kind, spec, params, names):
    try:
        import torch
        from torch import nn
    except ImportError:
        return None

    def linear(w, b):
        layer = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
        return layer

    p = [params[n] for n in names]
    if kind == "mlp":
        layers = []
        for i in range(len(p) // 2):
            layers.append(linear(p[2 * i], p[2 * i + 1]))
            if i < len(p) // 2 - 1:
                layers.append(nn.Tanh() if spec.get("act") == "Tanh" else nn.ReLU())
        model = nn.Sequential(*layers)
        forward = model
    elif kind == "rnn":
        cell, head = linear(p[0], p[1]), linear(p[2], p[3])
        model = nn.ModuleList([cell, head])

        def forward(x):
            h = x.new_zeros(x.shape[0], p[0].shape[1])
            for t in range(x.shape[1]):
                h = torch.tanh(cell(torch.cat([x[:, t], h], dim=1)))
            return head(h)
    else:
        c1, c2 = nn.Conv2d(1, 8, 3), nn.Conv2d(8, 16, 3)
        with torch.no_grad():
            for conv, name in ((c1, "c1"), (c2, "c2")):
                conv.weight.copy_(torch.from_numpy(params[f"{name}.weight"]))
                conv.bias.copy_(torch.from_numpy(params[f"{name}.bias"]))
        norms = [nn.BatchNorm2d(8), nn.BatchNorm2d(16)] if kind == "bnconv" else \
            [nn.Identity(), nn.Identity()]  # BatchNorm's initial values are torch's own
        model = nn.Sequential(c1, norms[0], nn.ReLU(), nn.MaxPool2d(2), c2, norms[1], nn.ReLU(),
                              nn.Flatten(), linear(params["fc.weight"], params["fc.bias"]))
        forward = model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    class Runner:
        def step(self, feeds):
            x = torch.from_numpy(feeds["x"])
            y = torch.from_numpy(feeds["label"])
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(forward(x), y)
            loss.backward()
            opt.step()
            return loss.detach().item()

    return Runner()


# -- timing ---------------------------------------------------------------------------------------

NETS = [
    ("MLP 2-16-16-2, batch 32", "mlp", {"sizes": [2, 16, 16, 2]}, 32, 600),
    ("MLP 64-128-10, batch 64", "mlp", {"sizes": [64, 128, 10]}, 64, 600),
    ("MLP 784-256-128-10, batch 128", "mlp", {"sizes": [784, 256, 128, 10]}, 128, 300),
    ("MLP 784-1024-1024-10, batch 256", "mlp", {"sizes": [784, 1024, 1024, 10]}, 256, 60),
    ("RNN tanh 64, 50 steps, batch 32", "rnn", {"features": 8, "hidden": 64, "classes": 10}, 32, 100),
    ("convnet on 1x28x28, batch 64", "conv", {}, 64, 60),
    ("convnet with BatchNorm on 1x28x28, batch 64", "bnconv", {}, 64, 60),
]


def make_case(kind, spec, batch, rng):
    if kind == "mlp":
        doc = mlp_doc(spec["sizes"], spec.get("act", "ReLU"))
        x = rng.normal(size=(batch, spec["sizes"][0])).astype(np.float32)
        classes = spec["sizes"][-1]
    elif kind == "rnn":
        doc = rnn_doc(spec["features"], spec["hidden"], spec["classes"])
        x = rng.normal(size=(batch, 50, spec["features"])).astype(np.float32)
        classes = spec["classes"]
    else:
        doc = conv_doc(batch_norm=kind == "bnconv")
        x = rng.normal(size=(batch, 1, 28, 28)).astype(np.float32)
        classes = 10
    return doc, {"x": x, "label": rng.integers(0, classes, batch)}


def make_hands(kind, spec, params, names) -> dict:
    """The hand-written versions of a net, by name."""
    if kind == "mlp":
        return {"hand": HandMLP(params, names, spec.get("act", "ReLU"))}
    if kind == "rnn":
        return {"hand": HandRNN(params, names), "hoisted": HandRNNHoisted(params, names)}
    if kind == "bnconv":
        return {}  # against torch only
    return {"hand": HandConv(params, names)}


def check_hand_gradients(hand, params, program, feeds):
    """The hand-written gradients must equal the engine's (float32: relative to the largest,
    5e-3; sums over a convolution's windows round differently)."""
    hand.opt.step = lambda: None  # compute gradients only
    loss = hand.step(feeds)
    del hand.opt.step
    value, grads = program.value_and_grad(params, feeds, train=False)
    assert abs(loss - value) <= 1e-4 * max(1.0, abs(value)), (loss, value)
    for name, g in zip(program.param_names, hand.opt.grads):
        scale = float(np.abs(grads[name]).max()) or 1.0
        err = float(np.abs(g - grads[name]).max()) / scale
        assert err < 5e-3, f"hand-written gradient of {name} differs from the engine's by {err:.2g}"


def time_steps(runners: dict, feeds, steps, rounds=9) -> dict:
    """Median seconds per step of each runner over `rounds` blocks, after a warm-up.

    The numpy runners take turns block by block, so a change in the machine's load touches
    them alike. torch (the runners named torch...) runs its blocks on its own, after a pause: its worker threads and
    OpenBLAS's spin for a while after their last operation, and interleaved they take cores
    from each other (torch measured 7 ms a step instead of 2 on the RNN)."""
    times = {name: [] for name in runners}
    torch_names = [n for n in runners if n.startswith("torch")]
    for group in ([n for n in runners if n not in torch_names], torch_names):
        time.sleep(0.5)
        for name in group:
            for _ in range(max(3, steps // 20)):
                runners[name].step(feeds)
        per_block = max(1, steps // rounds)
        for _ in range(rounds):
            for name in group:
                start = time.perf_counter()
                for _ in range(per_block):
                    runners[name].step(feeds)
                times[name].append((time.perf_counter() - start) / per_block)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=1.0, help="scale the step counts")
    parser.add_argument("--only", default=None, help="run the nets whose name contains this")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the trainer does
    try:
        import torch

        torch_version = torch.__version__
        threads = torch.get_num_threads()
    except ImportError:
        torch_version, threads = None, 0
    print(f"numpy {np.__version__}; torch {torch_version or 'not installed'}"
          + (f" ({threads} threads)" if torch_version else "") + "; float32, Adam")
    print()
    print("| net | engine ms/step | torch ms/step | hand ms/step | engine/torch | engine/hand |"
          " engine/hoisted hand |")
    print("|---|---|---|---|---|---|---|")
    for name, kind, spec, batch, steps in NETS:
        if args.only and args.only.lower() not in name.lower():
            continue
        steps = max(10, int(steps * args.steps))
        rng = np.random.default_rng(0)
        doc, feeds = make_case(kind, spec, batch, rng)
        program = core.compile(doc, "float32")
        params = program.init_params(0)
        hands = make_hands(kind, spec, params, program.param_names)
        for hand in hands.values():
            check_hand_gradients(hand, params, program, feeds)
        runners = {"engine": EngineRunner(doc, params), **hands}
        runner = torch_runner(kind, spec, params, program.param_names)
        if runner:
            runners["torch"] = runner
        t = time_steps(runners, feeds, steps)
        torch_text = f"{t['torch'] * 1e3:.3f}" if "torch" in t else "-"
        ratio = f"{t['engine'] / t['torch']:.2f}" if "torch" in t else "-"
        hoisted = f"{t['engine'] / t['hoisted']:.2f}" if "hoisted" in t else "-"
        hand = f"{t['hand'] * 1e3:.3f}" if "hand" in t else "-"
        by_hand = f"{t['engine'] / t['hand']:.2f}" if "hand" in t else "-"
        print(f"| {name} | {t['engine'] * 1e3:.3f} | {torch_text} | {hand} | "
              f"{ratio} | {by_hand} | {hoisted} |", flush=True)


if __name__ == "__main__":
    main()
