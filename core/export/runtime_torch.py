"""Functions copied into torch exports: the training loop with torch.optim, on CUDA when
present (`--device`), and with DistributedDataParallel when torchrun starts it (LOCAL_RANK and
WORLD_SIZE > 1 in the environment). Data come from the same code as the numpy target
(runtime.py), so both see the same batches. Placeholders stand for module globals.

Under DDP every process draws the same shuffled order (one seed) and takes its contiguous part
of each global batch; losses and metrics are summed over the processes before anything is
logged. So N processes with a per-process batch B train exactly as one process with batch N*B
does, up to rounding (docs/export.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

# -- module globals (defined by the exported module; placeholders here) ----------------------

torch = None  # the exported module imports torch; exporting needs no torch

TRAINING: dict = {}  # the training section, every default filled (core/training_section.py)
WEIGHTS_FILE = None
EVAL_BATCH = 1024  # rows per evaluation pass (the trainer's rule, core/trainer.eval_rows)
METRICS: dict = {}
FIND_UNUSED_PARAMETERS = True  # decided from the graph at export (training.py)
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
    kind = spec["type"].lower()
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


def process_ranks():
    """(rank, world size, distributed): torchrun says so in the environment; one process
    started by hand, or by torchrun alone, trains without DDP, as rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if "LOCAL_RANK" not in os.environ or world < 2:
        return 0, 1, False
    return int(os.environ["RANK"]), world, True


def per_process_batch(global_batch, world):
    """Rows each process takes per step: the training section's batch_size, or an equal part
    of a fixed global batch (which must then divide by the number of processes)."""
    if global_batch is None:
        return TRAINING["batch_size"]
    if global_batch < 1:
        raise ValueError(f"--global-batch must be at least 1, got {global_batch}")
    if global_batch % world:
        raise ValueError(f"--global-batch {global_batch} does not split into {world} equal "
                         f"per-process batches")
    return global_batch // world


def join_processes(device):
    """Join torchrun's process group (NCCL on GPUs, gloo on CPUs); returns this process's
    device: its own GPU, by its rank on this machine."""
    if not torch.distributed.is_available():
        raise RuntimeError("started by torchrun, but this PyTorch has no torch.distributed")
    if str(device).startswith("cuda"):
        local = int(os.environ["LOCAL_RANK"])
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    torch.distributed.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    return device


def sum_over_processes(values, device, world):
    """values (floats) summed element-wise over every process: the same on each."""
    if world == 1:
        return np.asarray(values, dtype=np.float64)
    tensor = torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)
    torch.distributed.all_reduce(tensor)
    return tensor.cpu().numpy()


def rank_rows(rows, rank, world):
    """This process's contiguous part of a global batch's row indices, and the weight of its
    loss in the step: its rows * world / the batch's rows. DDP averages the processes'
    gradients, so with those weights the step follows the mean loss over the whole global batch
    (for a loss that is a mean over rows), whatever each part's size.

    A batch that does not split evenly (an epoch's last) gives the first processes one row
    more, and never a part of one row out of more (BatchNorm cannot train on one): processes
    past the parts run on the whole batch with weight 0, since all take part in every step."""
    n = len(rows)
    parts = min(world, max(1, n // 2))
    if rank >= parts:
        return rows, 0.0
    start = rank * (n // parts) + min(rank, n % parts)
    stop = start + n // parts + (1 if rank < n % parts else 0)
    return rows[start:stop], (stop - start) * world / n


def evaluate_torch(model, feeds, loss, metrics, device, dtype, rank=0, world=1, chunk=None):
    """Loss and metrics over a whole set, in chunks, without gradients. With more processes,
    each evaluates every world-th chunk and the row-weighted sums of all are added up (each
    metric is a mean over rows), so each process returns the figures of the whole set."""
    if not feeds:
        return {}
    n = len(next(iter(feeds.values())))
    chunk = chunk or EVAL_BATCH
    sums = np.zeros(1 + len(metrics))
    with torch.no_grad():
        for start in range(rank * chunk, n, world * chunk):
            part = {k: v[start:start + chunk] for k, v in feeds.items()}
            rows = len(next(iter(part.values())))
            outs = model(**to_device(part, device, dtype))
            sums[0] += float(outs[loss]) * rows
            for i, m in enumerate(metrics, 1):
                pred = outs[m["pred"]].detach().cpu().double().numpy()
                sums[i] += METRICS[m["type"]](pred, part[m["target"]]) * rows
    sums = sum_over_processes(sums, device, world) / n
    result = {"loss": float(sums[0])}
    for i, m in enumerate(metrics, 1):
        result[m.get("name", m["type"])] = float(sums[i])
    return result


def train_epoch(net, optimizer, feeds, loss_name, batch_size, rng, where):
    """One pass over the training rows, batch_size rows a process per step. Returns the mean
    over the steps of each global batch's loss: what one process would log."""
    device, dtype, rank, world = where
    clip = TRAINING["clip_grad_norm"]
    row_ids = {"row": np.arange(len(next(iter(feeds.values()))))}
    total, steps = torch.zeros((), dtype=torch.float64, device=device), 0
    # Every process draws the same order from the same rng (the engine's, for one process).
    for order in batches(row_ids, batch_size * world, rng):
        rows, weight = rank_rows(order["row"], rank, world)
        optimizer.zero_grad()
        loss = net(**to_device({k: v[rows] for k, v in feeds.items()}, device, dtype))[loss_name]
        (loss if weight == 1.0 else loss * weight).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        optimizer.step()
        total += loss.detach().double() * (weight / world)
        steps += 1
    return float(sum_over_processes([float(total)], device, world)[0]) / steps


def share_buffers(model, world):
    """Process 0's buffers (BatchNorm's running statistics) on every process. DDP sends them
    before each step's forward, so after an epoch's last step each process holds its own
    update, which its part of the evaluation would read."""
    if world > 1:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, 0)


def leave_processes():
    """Leave torchrun's process group, after a training that ended well (one that failed
    leaves it to torchrun, which stops every process: the others may be waiting in a
    collective). The caller drops its DDP wrapper first; collected now rather than at exit, it
    lets go of gloo's threads while Python still runs (else one run in four aborted there)."""
    import gc

    gc.collect()
    torch.distributed.destroy_process_group()


def train_torch(epochs=None, seed=None, device=None, params=None, verbose=True,
                dtype_name=None, global_batch=None):
    """Train by the document's training section; returns (history, model). Under torchrun
    each process takes its part of every global batch (per_process_batch rows) and DDP
    averages the gradients; the history is the same on every process."""
    plan = TRAINING
    epochs = plan["epochs"] if epochs is None else epochs
    seed = plan["seed"] if seed is None else seed
    dtype = getattr(torch, dtype_name or plan["dtype"])
    rank, world, distributed = process_ranks()
    batch_size = per_process_batch(global_batch, world)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if distributed:
        device = join_processes(device)
    # Each process its own dropout masks; process 0 draws those one process would.
    torch.manual_seed(seed + 7919 * rank)
    split = plan["split"]
    train_set, val_set = split_rows(make_dataset(plan["dataset"]), split["validation"],
                                    split["seed"])
    train_feeds = feeds_from(train_set, plan["feeds"])
    val_feeds = feeds_from(val_set, plan["feeds"]) if len(
        next(iter(val_set.values()))) else {}
    model = Model().to(dtype=dtype)  # before loading: values keep the precision they have
    load_params(model, init_params(seed) if params is None else params)
    model = model.to(device=device)
    net = model
    if distributed:
        ids = [torch.device(device).index] if str(device).startswith("cuda") else None
        # Searching for unused parameters costs a walk of the autograd graph every step, and
        # DDP warns when it finds none: only graphs that can leave some unused ask for it.
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=FIND_UNUSED_PARAMETERS)
        if verbose and rank == 0:
            print(f"DDP: {world} processes, global batch {batch_size * world} ({batch_size} "
                  f"each), {torch.distributed.get_backend()}")
    optimizer, scheduler = make_torch_optimizer(
        model, plan["optimizer"])
    loss_name, metrics = plan["loss"], plan["metrics"]
    shuffle_rng = np.random.default_rng([seed, 1])
    where = (device, dtype, rank, world)
    history = []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        loss = train_epoch(net, optimizer, train_feeds, loss_name, batch_size, shuffle_rng, where)
        if scheduler is not None:
            scheduler.step()
        model.eval()
        share_buffers(model, world)
        record = {"epoch": epoch, "loss": loss, "lr": optimizer.param_groups[0]["lr"]}
        if metrics:
            record.update({k: v for k, v in evaluate_torch(
                model, train_feeds, loss_name, metrics, *where).items() if k != "loss"})
        record.update({f"val_{k}": v for k, v in evaluate_torch(
            model, val_feeds, loss_name, metrics, *where).items()})
        history.append(record)
        if verbose and rank == 0:
            figures = "  ".join(f"{k} {v:.4g}" for k, v in record.items()
                                if k not in ("epoch", "lr"))
            print(f"epoch {epoch}/{epochs}  {figures}  ({time.perf_counter() - started:.1f} s, "
                  f"{device})")
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(f"the loss became NaN or Inf in epoch {epoch}")
    if distributed:
        net = None  # before leaving (leave_processes)
        leave_processes()
    return history, model


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the exported graph by its document's "
                                                 "training section (CUDA when present; under "
                                                 "torchrun, on every process it starts, with "
                                                 "DDP).")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if "
                                                       "available; under torchrun each process "
                                                       "takes the GPU of its local rank)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dtype", default=TRAINING["dtype"],
                        choices=("float32", "float64"))
    parser.add_argument("--global-batch", type=int, default=None,
                        help="rows per step over all processes, split equally among them "
                             "(default: the training section's batch_size per process, so "
                             "more processes make a larger global batch)")
    parser.add_argument("--out", default=None, help="write the trained weights (engine names) "
                                                    "to this .npz")
    parser.add_argument("--history", default=None, help="write every epoch's figures to this "
                                                        ".json")
    args = parser.parse_args(argv)
    rank, world, _ = process_ranks()
    try:
        per_process_batch(args.global_batch, world)
    except ValueError as exc:
        parser.error(str(exc))
    start = load_weights() if WEIGHTS_FILE else None
    history, model = train_torch(args.epochs, args.seed, args.device, start,
                                 dtype_name=args.dtype, global_batch=args.global_batch)
    if rank == 0 and args.out:
        np.savez(args.out, **export_params(model))
        print(f"wrote {args.out}")
    if rank == 0 and args.history:
        with open(args.history, "w", encoding="utf-8") as f:
            json.dump(history, f, indent=1)
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
