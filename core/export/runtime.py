"""The parts of an exported numpy script that are its own: feeds from the dataset's arrays,
evaluation, the training loop, reading weights and `main`. Copied, as source, into exported
modules. Everything they compute with is the engine's own code, copied beside them
(training.py): data from core.datasets, metrics from core.metrics, the optimizer from
core.optim; the loop does what core.trainer does, step for step, so a script trains to the
engine's numbers.

The names below the line "module globals" stand for what the exported module defines around
these functions (its forward, value_and_grad, TRAINING, the copied engine functions, ...);
they are never copied.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from ..npz import load_arrays

# -- module globals (defined by the exported module; placeholders here) ----------------------

DTYPE = np.float32
TRAINING: dict = {}  # the training section, every default filled (core/training_section.py)
BUFFER_NAMES: tuple = ()  # tensors training updates but does not train (BatchNorm statistics)
INPUTS: dict = {}  # Input id -> "float" or "int64"
HERE = "."
DATA_DIR = "."
WEIGHTS_FILE = None
EVAL_BATCH = 1024  # rows per evaluation pass (the trainer's rule, core/trainer.eval_rows)
METRICS: dict = {}


def init_params(seed=0):
    raise NotImplementedError


def forward(params, feeds, train=False, seed=0):
    raise NotImplementedError


def value_and_grad(params, feeds, loss="loss", train=True, seed=0, out=None):
    raise NotImplementedError


def make_dataset(spec):
    raise NotImplementedError


def split_rows(arrays, validation, seed):
    raise NotImplementedError


def batches(arrays, batch_size, rng, shuffle=True):
    raise NotImplementedError


def make_optimizer(spec, params, where="training.optimizer"):
    raise NotImplementedError


# -- copied -----------------------------------------------------------------------------------


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


def evaluate(params, feeds, loss, metrics, chunk=None):
    """Loss and metrics over a whole set, in chunks."""
    if not feeds:
        return {}
    n = len(next(iter(feeds.values())))
    chunk = chunk or EVAL_BATCH
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
    epochs = plan["epochs"] if epochs is None else epochs
    seed = plan["seed"] if seed is None else seed
    split = plan["split"]
    train_set, val_set = split_rows(make_dataset(plan["dataset"]), split["validation"],
                                    split["seed"])
    train_feeds = feeds_from(train_set, plan["feeds"])
    val_feeds = feeds_from(val_set, plan["feeds"]) if len(
        next(iter(val_set.values()))) else {}
    if params is None:
        params = init_params(seed)
    params = {k: np.asarray(v, dtype=DTYPE) for k, v in params.items()}
    buffers = {k: np.array(v) for k, v in params.items() if k in BUFFER_NAMES}
    optimizer = make_optimizer(plan["optimizer"],
                               {k: v for k, v in params.items() if k not in BUFFER_NAMES})
    # views into the optimizer's flat buffer, and the buffers the forward updates in place
    params = {**optimizer.params, **buffers}
    loss_name, metrics = plan["loss"], plan["metrics"]
    batch_size, clip = plan["batch_size"], plan["clip_grad_norm"]
    shuffle_rng = np.random.default_rng([seed, 1])
    dropout_rng = np.random.default_rng([seed, 2])
    history = []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        losses = []
        for feeds in batches(train_feeds, batch_size, shuffle_rng):
            loss, _ = value_and_grad(params, feeds, loss_name, train=True, seed=dropout_rng,
                                     out=optimizer.grads)
            if not (math.isfinite(loss) and np.isfinite(optimizer.flat_grads).all()):
                raise FloatingPointError(f"the loss or a gradient became NaN or Inf at epoch "
                                         f"{epoch}; a lower learning rate often helps")
            if clip is not None:
                optimizer.clip_grad_norm(clip)
            optimizer.step()
            losses.append(loss)
        if optimizer.schedule is not None:
            optimizer.schedule.step()
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
    arrays = load_arrays(path or weights_path(WEIGHTS_FILE))
    return {name: np.asarray(array, dtype=DTYPE) for name, array in arrays.items()}


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
