"""Functions copied, as source, into exported modules: reading data, splitting, batching,
optimizers, schedules, metrics and the training loop. They repeat what core.datasets,
core.optim, core.metrics and core.trainer do, operation for operation, so an exported script
trains to the engine's numbers; tests/test_export*.py compare them.

The names below the line "module globals" stand for what the exported module defines around
these functions (its forward, value_and_grad, TRAINING, ...); they are never copied.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time

import numpy as np

# -- module globals (defined by the exported module; placeholders here) ----------------------

DTYPE = np.float32
TRAINING: dict = {}
INPUTS: dict = {}  # Input id -> "float" or "int64"
HERE = "."
DATA_DIR = "."
WEIGHTS_FILE = None


def init_params(seed=0):
    raise NotImplementedError


def forward(params, feeds, train=False, seed=0):
    raise NotImplementedError


def value_and_grad(params, feeds, loss="loss", train=True, seed=0):
    raise NotImplementedError


def make_dataset(spec):
    raise NotImplementedError


# -- data -------------------------------------------------------------------------------------


def class_ids(values):
    """int64 ids in order of first appearance, and the class names."""
    mapping = {}
    ids = np.array([mapping.setdefault(v, len(mapping)) for v in values], dtype=np.int64)
    return ids, list(mapping)


def looks_numeric(values):
    """A column is numeric when at least half of its non-empty values are numbers."""
    filled = [v for v in values if v]
    numbers = 0
    for v in filled:
        try:
            float(v)
            numbers += 1
        except ValueError:
            pass
    return numbers * 2 >= len(filled)


def read_csv(path, columns=None, delimiter=","):
    """A CSV file with a header row: a list of columns makes a 2-D float array, one column a
    1-D array (numbers as float64, text as int64 class ids in order of first appearance)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [h.strip() for h in next(reader)]
        rows = [[v.strip() for v in row] for row in reader if any(v.strip() for v in row)]
    by_column = dict(zip(header, (list(c) for c in zip(*rows))))
    if columns is None:
        columns = {h: h for h in header}
    arrays = {}
    for name, cols in columns.items():
        if isinstance(cols, list):
            arrays[name] = np.stack([np.array(by_column[c], dtype=np.float64) for c in cols],
                                    axis=1)
        elif looks_numeric(by_column[cols]):
            arrays[name] = np.array(by_column[cols], dtype=np.float64)
        else:
            arrays[name] = class_ids(by_column[cols])[0]
    return arrays


def text_to_ids(array):
    """Numbers pass; a text array becomes int64 class ids in order of first appearance."""
    if array.dtype.kind not in "US":
        return array
    _, first, inverse = np.unique(array, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse].reshape(array.shape).astype(np.int64)


def read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: text_to_ids(archive[name]) for name in archive.files}


def read_npy(path, name="x"):
    return {name: text_to_ids(np.load(path, allow_pickle=False))}


def split_rows(arrays, validation, seed):
    """A seeded split into (train, validation): round(n * validation) rows to validation."""
    n = len(next(iter(arrays.values())))
    n_val = round(n * validation)
    order = np.random.default_rng(seed).permutation(n)
    train = {k: a[order[n_val:]] for k, a in arrays.items()}
    val = {k: a[order[:n_val]] for k, a in arrays.items()}
    return train, val


def batches(arrays, batch_size, rng):
    """Mini-batches covering every row once, in a fresh order drawn from rng."""
    n = len(next(iter(arrays.values())))
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        yield {k: a[rows] for k, a in arrays.items()}


def feeds_from(arrays, feed_names):
    """The graph's Input arrays from the dataset's, cast as the engine casts feeds."""
    out = {}
    for input_id, kind in INPUTS.items():
        name = feed_names.get(input_id, input_id)
        if name not in arrays:
            continue
        array = np.asarray(arrays[name])
        if kind == "int64":
            out[input_id] = array.astype(np.int64)
        else:
            out[input_id] = array.astype(DTYPE)
    return out


# -- metrics ----------------------------------------------------------------------------------


def accuracy(pred, target, threshold=0.0):
    """The fraction of positions whose predicted class (arg-max of the scores) is the target's;
    one score per position: class 1 where it is above threshold."""
    binary = pred.shape[-1] == 1 and target.shape in (pred.shape, pred.shape[:-1])
    if binary or (pred.ndim == 1 and target.shape == pred.shape):
        hits = (pred.reshape(target.shape) > threshold) == (target > 0.5)
    elif target.shape == pred.shape:
        hits = pred.argmax(axis=-1) == target.argmax(axis=-1)
    else:
        hits = pred.argmax(axis=-1) == target
    return float(np.mean(hits)) if hits.size else float("nan")


def mse(pred, target):
    diff = np.subtract(pred, target, dtype=np.float64)
    return float(np.mean(np.square(diff))) if diff.size else float("nan")


def mae(pred, target):
    diff = np.subtract(pred, target, dtype=np.float64)
    return float(np.mean(np.abs(diff))) if diff.size else float("nan")


METRICS = {"accuracy": accuracy, "mse": mse, "mae": mae}


# -- optimizers (PyTorch's update rules, in the parameters' dtype) -----------------------------


class Adam:
    """torch.optim.Adam (and AdamW with decoupled=True): updates params in place."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, decoupled=False):
        self.params, self.lr, self.betas, self.eps = params, lr, tuple(betas), eps
        self.weight_decay, self.amsgrad, self.decoupled = weight_decay, amsgrad, decoupled
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.v_max = {k: np.zeros_like(p) for k, p in params.items()}
        self.steps = 0

    def step(self, grads):
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** self.steps)
        bias_correction2_sqrt = (1 - beta2 ** self.steps) ** 0.5
        for name, p in self.params.items():
            g = grads[name]
            if self.weight_decay:
                if self.decoupled:
                    p *= 1 - self.lr * self.weight_decay
                else:
                    g = p * self.weight_decay + g
            m, v = self.m[name], self.v[name]
            weight = 1 - beta1
            if weight < 0.5:  # m.lerp_(g, 1 - beta1), in PyTorch's two forms
                m += (g - m) * weight
            else:
                m[...] = g - (g - m) * (1 - weight)
            v *= beta2
            v += g * (1 - beta2) * g
            if self.amsgrad:
                np.maximum(self.v_max[name], v, out=self.v_max[name])
                v = self.v_max[name]
            p -= m / (np.sqrt(v) / bias_correction2_sqrt + self.eps) * step_size


class SGD:
    """torch.optim.SGD with momentum, dampening, Nesterov and L2 weight decay."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        self.params, self.lr, self.momentum, self.dampening = params, lr, momentum, dampening
        self.nesterov, self.weight_decay = nesterov, weight_decay
        self.buffers = {k: np.zeros_like(p) for k, p in params.items()}
        self.steps = 0

    def step(self, grads):
        self.steps += 1
        for name, p in self.params.items():
            d = grads[name]
            if self.weight_decay:
                d = p * self.weight_decay + d
            if self.momentum:
                buf = self.buffers[name]
                if self.steps == 1:
                    buf[...] = d
                else:
                    buf *= self.momentum
                    buf += d * (1 - self.dampening) if self.dampening else d
                d = buf * self.momentum + d if self.nesterov else buf
            p -= d * self.lr


def clip_grad_norm(grads, max_norm):
    """Scale the gradients so their global 2-norm is at most max_norm (as PyTorch)."""
    flat = np.concatenate([g.ravel() for g in grads.values()])
    total = math.sqrt(float(np.dot(flat, flat)))
    coef = min(max_norm / (total + 1e-6), 1.0)
    for g in grads.values():
        g *= coef
    return total


def next_lr(schedule, optimizer, epoch, base_lr):
    """The learning rate after `epoch` epochs (StepLR or CosineAnnealingLR, recursive form)."""
    lr = optimizer.lr
    if schedule["type"] == "step":
        gamma = schedule.get("gamma", 0.1)
        return lr * gamma if epoch % schedule["step_size"] == 0 else lr
    t, big_t, low = epoch, schedule["T_max"], schedule.get("eta_min", 0.0)
    if (t - 1 - big_t) % (2 * big_t) == 0:
        return lr + (base_lr - low) * (1 - math.cos(math.pi / big_t)) / 2
    return ((1 + math.cos(math.pi * t / big_t)) / (1 + math.cos(math.pi * (t - 1) / big_t))
            * (lr - low) + low)


def make_optimizer(params, spec):
    kind = spec.get("type", "adam").lower()
    options = {k: v for k, v in spec.items() if k not in ("type", "schedule")}
    if kind == "sgd":
        return SGD(params, **options)
    if kind == "adamw":
        options.setdefault("weight_decay", 1e-2)
    return Adam(params, decoupled=kind == "adamw", **options)


# -- training ---------------------------------------------------------------------------------


def evaluate(params, feeds, loss, metrics, chunk=1024):
    """Loss and metrics over a whole set, in chunks."""
    if not feeds:
        return {}
    n = len(next(iter(feeds.values())))
    total, preds = 0.0, {m["pred"]: [] for m in metrics}
    for start in range(0, n, chunk):
        part = {k: v[start:start + chunk] for k, v in feeds.items()}
        outs = forward(params, part)
        total += float(outs[loss]) * len(next(iter(part.values())))
        for name, parts in preds.items():
            parts.append(outs[name])
    result = {"loss": total / n}
    for m in metrics:
        pred = np.concatenate(preds[m["pred"]])
        result[m.get("name", m["type"])] = METRICS[m["type"]](pred, feeds[m["target"]])
    return result


def train(epochs=None, seed=None, params=None, verbose=True):
    """Train by the document's training section; returns (history, params)."""
    plan = TRAINING
    epochs = plan.get("epochs", 10) if epochs is None else epochs
    seed = plan.get("seed", 0) if seed is None else seed
    split = plan.get("split", {})
    train_set, val_set = split_rows(make_dataset(plan["dataset"]), split.get("validation", 0.2),
                                    split.get("seed", 0))
    train_feeds = feeds_from(train_set, plan.get("feeds", {}))
    val_feeds = feeds_from(val_set, plan.get("feeds", {})) if len(
        next(iter(val_set.values()))) else {}
    if params is None:
        params = init_params(seed)
    params = {k: np.array(v, dtype=DTYPE) for k, v in params.items()}
    spec = plan.get("optimizer", {"type": "adam", "lr": 1e-3})
    optimizer = make_optimizer(params, spec)
    base_lr = optimizer.lr
    loss_name, metrics = plan["loss"], plan.get("metrics", [])
    batch_size, clip = plan.get("batch_size", 32), plan.get("clip_grad_norm")
    shuffle_rng = np.random.default_rng([seed, 1])
    dropout_rng = np.random.default_rng([seed, 2])
    history = []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        losses = []
        for feeds in batches(train_feeds, batch_size, shuffle_rng):
            loss, grads = value_and_grad(params, feeds, loss_name, train=True, seed=dropout_rng)
            if not (math.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())):
                raise FloatingPointError(f"the loss or a gradient became NaN or Inf at epoch "
                                         f"{epoch}; a lower learning rate often helps")
            if clip is not None:
                clip_grad_norm(grads, clip)
            optimizer.step(grads)
            losses.append(loss)
        if spec.get("schedule") is not None:
            optimizer.lr = next_lr(spec["schedule"], optimizer, epoch, base_lr)
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": optimizer.lr}
        if metrics:
            record.update({k: v for k, v in evaluate(params, train_feeds, loss_name,
                                                      metrics).items() if k != "loss"})
        record.update({f"val_{k}": v for k, v in evaluate(params, val_feeds, loss_name,
                                                           metrics).items()})
        history.append(record)
        if verbose:
            figures = "  ".join(f"{k} {v:.4g}" for k, v in record.items()
                                if k not in ("epoch", "lr"))
            print(f"epoch {epoch}/{epochs}  {figures}  ({time.perf_counter() - started:.1f} s)")
    return history, params


def weights_path(name):
    """A file beside this script."""
    return os.path.join(HERE, name)


def load_weights(path=None):
    """Trained weights from an .npz file (by default the one exported beside this script)."""
    with np.load(path or weights_path(WEIGHTS_FILE), allow_pickle=False) as archive:
        return {name: np.asarray(archive[name], dtype=DTYPE) for name in archive.files}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the exported graph by its document's "
                                                 "training section.")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=None, help="write the trained weights to this .npz")
    args = parser.parse_args(argv)
    start = load_weights() if WEIGHTS_FILE else None
    _, params = train(args.epochs, args.seed, start)
    if args.out:
        np.savez(args.out, **params)
        print(f"wrote {args.out}")
    return 0
