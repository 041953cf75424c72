"""Functions copied into torch exports: the training loop with torch.optim, on CUDA when
present (`--device`), and under torchrun with DistributedDataParallel when launched that way
(LOCAL_RANK / WORLD_SIZE in the environment). Data come from the same code as the numpy
target (runtime.py), so both see the same batches. Placeholders stand for module globals.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

# -- module globals (defined by the exported module; placeholders here) ----------------------

torch = None  # the exported module imports torch; exporting needs no torch

TRAINING: dict = {}
WEIGHTS_FILE = None
EVAL_BATCH = 1024  # rows per evaluation pass (the trainer's rule, core/trainer.eval_rows)
METRICS: dict = {}
Model = None


def init_params(seed=0):
    raise NotImplementedError


def load_params(model, params):
    raise NotImplementedError


def load_weights(path=None):
    raise NotImplementedError


def make_dataset(spec):
    raise NotImplementedError


def split_rows(arrays, validation, seed):
    raise NotImplementedError


def batches(arrays, batch_size, rng):
    raise NotImplementedError


def feeds_from(arrays, feed_names):
    raise NotImplementedError


# -- copied -----------------------------------------------------------------------------------


def make_torch_optimizer(model, spec):
    """torch.optim from the training section's optimizer entry (PyTorch's defaults)."""
    kind = spec.get("type", "adam").lower()
    options = {k: v for k, v in spec.items() if k not in ("type", "schedule")}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    optimizer = classes[kind](model.parameters(), **options)
    schedule = spec.get("schedule")
    scheduler = None
    if schedule is not None:
        settings = {k: v for k, v in schedule.items() if k != "type"}
        if schedule["type"] == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, **settings)
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, **settings)
    return optimizer, scheduler


def to_device(feeds, device, dtype):
    out = {}
    for name, array in feeds.items():
        tensor = torch.as_tensor(array, device=device)
        out[name] = tensor if tensor.dtype == torch.int64 else tensor.to(dtype)
    return out


def evaluate_torch(model, feeds, loss, metrics, device, dtype, chunk=None):
    """Loss and metrics over a whole set, in chunks, without gradients."""
    if not feeds:
        return {}
    n = len(next(iter(feeds.values())))
    chunk = chunk or EVAL_BATCH
    total, preds = 0.0, {m["pred"]: [] for m in metrics}
    with torch.no_grad():
        for start in range(0, n, chunk):
            part = {k: v[start:start + chunk] for k, v in feeds.items()}
            outs = model(**to_device(part, device, dtype))
            total += float(outs[loss]) * len(next(iter(part.values())))
            for name, parts in preds.items():
                parts.append(outs[name].detach().cpu().double().numpy())
    result = {"loss": total / n}
    for m in metrics:
        pred = np.concatenate(preds[m["pred"]])
        result[m.get("name", m["type"])] = METRICS[m["type"]](pred, feeds[m["target"]])
    return result


def train_torch(epochs=None, seed=None, device=None, params=None, verbose=True,
                dtype_name="float32"):
    """Train by the document's training section; returns (history, model). Under torchrun
    each process takes its share of every batch and DDP averages the gradients."""
    plan = TRAINING
    epochs = plan.get("epochs", 10) if epochs is None else epochs
    seed = plan.get("seed", 0) if seed is None else seed
    dtype = getattr(torch, dtype_name)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    distributed = "LOCAL_RANK" in os.environ and world > 1
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if distributed:
        local = int(os.environ["LOCAL_RANK"])
        if str(device).startswith("cuda"):
            device = f"cuda:{local}"
            torch.cuda.set_device(local)
        torch.distributed.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    torch.manual_seed(seed)
    split = plan.get("split", {})
    train_set, val_set = split_rows(make_dataset(plan["dataset"]), split.get("validation", 0.2),
                                    split.get("seed", 0))
    train_feeds = feeds_from(train_set, plan.get("feeds", {}))
    val_feeds = feeds_from(val_set, plan.get("feeds", {})) if len(
        next(iter(val_set.values()))) else {}
    model = Model()
    load_params(model, init_params(seed) if params is None else params)
    model = model.to(device=device, dtype=dtype)
    net = model
    if distributed:
        ids = [torch.device(device).index] if str(device).startswith("cuda") else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                        find_unused_parameters=True)
    spec = plan.get("optimizer", {"type": "adam", "lr": 1e-3})
    optimizer, scheduler = make_torch_optimizer(model, spec)
    loss_name, metrics = plan["loss"], plan.get("metrics", [])
    batch_size, clip = plan.get("batch_size", 32), plan.get("clip_grad_norm")
    shuffle_rng = np.random.default_rng([seed, 1])
    history = []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        for batch in batches(train_feeds, batch_size, shuffle_rng):
            if distributed:
                batch = {k: v[rank::world] for k, v in batch.items()}
            optimizer.zero_grad()
            loss = net(**to_device(batch, device, dtype))[loss_name]
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            losses.append(loss.item())
        if scheduler is not None:
            scheduler.step()
        model.eval()
        record = {"epoch": epoch, "loss": float(np.mean(losses)),
                  "lr": optimizer.param_groups[0]["lr"]}
        if rank == 0:
            if metrics:
                record.update({k: v for k, v in evaluate_torch(
                    model, train_feeds, loss_name, metrics, device, dtype).items() if k != "loss"})
            record.update({f"val_{k}": v for k, v in evaluate_torch(
                model, val_feeds, loss_name, metrics, device, dtype).items()})
        history.append(record)
        if verbose and rank == 0:
            figures = "  ".join(f"{k} {v:.4g}" for k, v in record.items()
                                if k not in ("epoch", "lr"))
            print(f"epoch {epoch}/{epochs}  {figures}  ({time.perf_counter() - started:.1f} s, "
                  f"{device})")
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(f"the loss became NaN or Inf in epoch {epoch}")
    if distributed:
        torch.distributed.destroy_process_group()
    return history, model


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the exported graph by its document's "
                                                 "training section (CUDA when present; also "
                                                 "under torchrun with DDP).")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if "
                                                       "available)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--out", default=None, help="write the trained weights (engine names) "
                                                    "to this .npz")
    args = parser.parse_args(argv)
    start = load_weights() if WEIGHTS_FILE else None
    _, model = train_torch(args.epochs, args.seed, args.device, start, dtype_name=args.dtype)
    if args.out and int(os.environ.get("RANK", "0")) == 0:
        np.savez(args.out, **export_params(model))
        print(f"wrote {args.out}")
    return 0


def export_params(model):
    """The model's parameters under the engine's names, as numpy arrays."""
    state = model.state_dict()
    out = {}
    for name, (key, transposed) in PARAM_NAMES.items():
        value = state[key].detach().cpu()
        out[name] = (value.T if transposed else value).numpy()
    return out


PARAM_NAMES: dict = {}
