"""The training section's schema: every key, its default and its check, in one place.

A document's `"training"` object (format.md, docs/training.md) is read here and nowhere else:
the trainer (`read` gives a `Plan`, defaults filled), the exports (`filled` writes the section
with its defaults into the script, so a script has no defaults of its own), the editor's form
(`DEFAULTS`, `MINIMUMS`, `DTYPES`, `starter`) and the controller (`rename_node`) all use it.
`wiregrad check` lists `problems(section)` and then checks the section against the graph and
the data (core/training_check.py).

The one default learning rate is 1e-3 (`DEFAULT_LR`): PyTorch's for Adam, AdamW and SGD, the
default of every optimizer in core/optim.py, and what the engine has always used for a file
that leaves `lr` out; changing it would change how saved documents train.

No key has been renamed yet: format versions 1 and 2 share these keys (fileio.MIGRATIONS). A
rename would be a migration in core/fileio.py, which then finds only these names here.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

from .errors import GraphError
from .metrics import METRICS
from .optim import OPTIMIZERS, make_optimizer

DEFAULT_LR = 1e-3
DTYPES = ("float32", "float64")
REQUIRED = "required"  # the default of a key that has none


@dataclass(frozen=True)
class Key:
    """One key of the section: its default (REQUIRED: none) and what it means (docs/training.md)."""

    name: str
    default: object
    meaning: str
    shown: str = ""  # the default as the reference table writes it, when not as JSON


KEYS = (
    Key("dataset", REQUIRED, "where the data comes from: a generator or a file (below)"),
    Key("feeds", {}, "top-level `Input` id -> dataset array name; an Input left out takes the "
        "array of its own id"),
    Key("split", {"validation": 0.2, "seed": 0}, "the train/validation split: `validation` a "
        "fraction in [0, 1), `seed` a whole number"),
    Key("loss", REQUIRED, "the id of a top-level `Output` holding one number; training "
        "minimises it"),
    Key("metrics", [], "figures computed after every epoch: `{\"type\": accuracy, mse or mae, "
        "\"pred\": an Output id, \"target\": an Input id}`"),
    Key("optimizer", {"type": "adam", "lr": DEFAULT_LR}, "the optimizer (`sgd`, `adam`, "
        "`adamw`) and its optional `schedule`; a missing `lr` is 0.001 for every type"),
    Key("batch_size", 32, "rows per gradient step (whole number >= 1)"),
    Key("epochs", 10, "passes over the training rows (whole number >= 0); `--epochs N` "
        "overrides"),
    Key("seed", 0, "initial parameters, shuffling and dropout (whole number >= 0); `--seed S` "
        "overrides"),
    Key("clip_grad_norm", None, "clip the gradient to this global L2 norm (a number > 0) "
        "before each step", shown="none"),
    Key("dtype", "float32", "`\"float32\"` or `\"float64\"`: the float type the program runs in"),
    Key("eval_batch_size", None, "rows per forward pass when computing validation and metrics "
        "(whole number >= 1)", shown="see below"),
)
NAMES = tuple(key.name for key in KEYS)
DEFAULTS = {key.name: key.default for key in KEYS if key.default is not REQUIRED}
# The smallest value of each whole-number key (the form's spin boxes start there too).
MINIMUMS = {"batch_size": 1, "epochs": 0, "seed": 0, "eval_batch_size": 1}


@dataclass
class Plan:
    """A training section, checked, with every default filled."""

    dataset: dict
    feeds: dict
    validation: float
    split_seed: int
    loss: str
    metrics: list
    optimizer: dict
    batch_size: int
    epochs: int
    seed: int
    clip: float | None
    dtype: str
    eval_batch_size: int | None = None  # None: batch_size or EVAL_CHUNK (trainer.eval_rows)


# -- reading ----------------------------------------------------------------------------------

def read(doc, epochs=None, seed=None) -> Plan:
    """A document's training section as a Plan; a GraphError names every key that is wrong.
    `epochs` and `seed` override the section's (the command line's --epochs and --seed)."""
    section = doc.training
    if not isinstance(section, dict):
        raise GraphError("the document has no training section: add \"training\" with a dataset, "
                         "a loss and an optimizer (see the format documentation)")
    overrides = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
    section = {**section, **overrides}
    errors = problems(section)
    if errors:
        raise GraphError.collect(errors)
    full = filled(section)
    return Plan(dataset=full["dataset"], feeds=full["feeds"],
                validation=full["split"]["validation"], split_seed=full["split"]["seed"],
                loss=full["loss"], metrics=full["metrics"], optimizer=full["optimizer"],
                batch_size=full["batch_size"], epochs=full["epochs"], seed=full["seed"],
                clip=full["clip_grad_norm"], dtype=full["dtype"],
                eval_batch_size=full["eval_batch_size"])


def filled(section: dict) -> dict:
    """A copy of a (checked) section with every default written in, `split` and the
    optimizer's `lr` too: what an exported script runs by."""
    out = copy.deepcopy(section)
    for name, default in DEFAULTS.items():
        out.setdefault(name, copy.deepcopy(default))
    out["split"] = {**DEFAULTS["split"], **out["split"]}
    out["optimizer"] = dict(out["optimizer"])
    out["optimizer"].setdefault("lr", DEFAULT_LR)
    return {name: out[name] for name in NAMES if name in out}


def setting(section, name: str):
    """One key's value, or its default; any section, even a broken one (the form shows it)."""
    value = section.get(name) if isinstance(section, dict) else None
    return copy.deepcopy(DEFAULTS.get(name)) if value is None else value


def starter(loss: str) -> dict:
    """A first training section for a graph that has none: generated data, the defaults,
    and enough epochs to see a small network learn."""
    return {"dataset": {"kind": "spiral", "n": 600, "classes": 3, "noise": 0.2, "seed": 0},
            "feeds": {}, "loss": loss, "optimizer": copy.deepcopy(DEFAULTS["optimizer"]),
            "batch_size": DEFAULTS["batch_size"], "epochs": 50, "seed": DEFAULTS["seed"]}


def rename_node(section: dict, old: str, new: str) -> dict:
    """The section with a renamed top-level Input/Output's references updated (feeds keys,
    the loss, metrics' pred and target)."""
    out = json.loads(json.dumps(section))
    feeds = out.get("feeds")
    if isinstance(feeds, dict) and old in feeds:
        out["feeds"] = {(new if k == old else k): v for k, v in feeds.items()}
    if out.get("loss") == old:
        out["loss"] = new
    for metric in out.get("metrics") or []:
        if isinstance(metric, dict):
            for key in ("pred", "target"):
                if metric.get(key) == old:
                    metric[key] = new
    return out


def moved(section, old_folder, new_folder):
    """The section as a document moved from `old_folder` to `new_folder` must say it: a relative
    data file path (relative to the graph file, format.md) rewritten so that it still names the
    same file. Written with "/", relative where the two folders share a root, else absolute.
    The section itself when nothing changes (no folder known, the same folder, a generator, an
    absolute path)."""
    if not old_folder or not new_folder or not isinstance(section, dict):
        return section
    old_folder, new_folder = os.path.abspath(old_folder), os.path.abspath(new_folder)
    dataset = section.get("dataset")
    path = dataset.get("path") if isinstance(dataset, dict) else None
    if old_folder == new_folder or not isinstance(path, str) or not path \
            or os.path.isabs(path):
        return section
    target = os.path.normpath(os.path.join(old_folder, path))
    try:
        rebased = os.path.relpath(target, new_folder)
    except ValueError:  # Windows: another drive
        rebased = target
    out = copy.deepcopy(section)
    out["dataset"]["path"] = PurePath(rebased).as_posix()
    return out


# -- checking ---------------------------------------------------------------------------------

def problems(section: dict) -> list:
    """Every problem of the section by itself (keys, types, ranges, the optimizer), each a
    GraphError whose message starts with the key: `training.batch_size must be ...`."""
    errors = [GraphError(f"training: unknown key {k!r} (known: {', '.join(NAMES)})")
              for k in section if k not in NAMES]
    errors += [GraphError(f"training: missing {k!r}") for k in ("dataset", "loss")
               if section.get(k) is None]
    for name, check in CHECKS.items():
        if section.get(name) is not None:
            message = check(f"training.{name}", section[name])
            if message:
                errors.append(GraphError(message))
    return errors


def _dataset(where: str, spec) -> str | None:
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        return f"{where} must be an object with a \"kind\" (a generator such as spiral, or " \
               "csv, npz, npy)"
    return None


def _feeds(where: str, feeds) -> str | None:
    if not isinstance(feeds, dict) or not all(isinstance(v, str) for v in feeds.values()):
        return f"{where} must map Input ids to dataset array names"
    return None


def _split(where: str, spec) -> str | None:
    shape = f"{where} must be {{\"validation\": fraction, \"seed\": n}}"
    if not isinstance(spec, dict) or set(spec) - {"validation", "seed"}:
        return shape
    fraction = spec.get("validation", 0.0)
    if not _is_number(fraction) or not 0 <= fraction < 1:
        return f"{where}.validation must be a number in [0, 1), got {fraction!r}"
    if not _is_whole(spec.get("seed", 0), 0):
        return f"{where}.seed must be a whole number >= 0, got {spec['seed']!r}"
    return None


def _loss(where: str, name) -> str | None:
    if isinstance(name, str) and name:
        return None
    return f"{where} must name a top-level Output, got {name!r}"


def _metrics(where: str, metrics) -> str | None:
    if not isinstance(metrics, list):
        return f"{where} must be a list"
    for i, m in enumerate(metrics):
        if not isinstance(m, dict) or m.get("type") not in METRICS or \
                not isinstance(m.get("pred"), str) or not isinstance(m.get("target"), str):
            return (f"{where}[{i}] must be {{\"type\": one of {', '.join(METRICS)}, \"pred\": an "
                    f"Output id, \"target\": an Input id}}")
    return None


def _optimizer(where: str, spec) -> str | None:
    """make_optimizer's own checks (type, settings, schedule), run on one tiny tensor."""
    try:
        make_optimizer(spec, [np.zeros(1)], where)
    except GraphError as error:
        return error.message
    return None


def _whole(name: str):
    low = MINIMUMS[name]
    return lambda where, value: None if _is_whole(value, low) else \
        f"{where} must be a whole number >= {low}, got {value!r}"


def _clip(where: str, value) -> str | None:
    return None if _is_number(value) and value > 0 else \
        f"{where} must be a positive number, got {value!r}"


def _dtype(where: str, value) -> str | None:
    return None if value in DTYPES else f"{where} must be float32 or float64, got {value!r}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


CHECKS = {"dataset": _dataset, "feeds": _feeds, "split": _split, "loss": _loss,
          "metrics": _metrics, "optimizer": _optimizer, "batch_size": _whole("batch_size"),
          "epochs": _whole("epochs"), "seed": _whole("seed"), "clip_grad_norm": _clip,
          "dtype": _dtype, "eval_batch_size": _whole("eval_batch_size")}


# -- the reference table ----------------------------------------------------------------------

def markdown_table() -> str:
    """The keys as docs/training.md's reference table (a test keeps the page equal to it)."""
    rows = ["| key | required | default | meaning |", "|---|---|---|---|"]
    for key in KEYS:
        required = key.default is REQUIRED
        shown = "-" if required else key.shown or f"`{json.dumps(key.default)}`"
        rows.append(f"| `{key.name}` | {'yes' if required else 'no'} | {shown} | {key.meaning} |")
    return "\n".join(rows) + "\n"


__all__ = ["DEFAULTS", "DEFAULT_LR", "DTYPES", "KEYS", "MINIMUMS", "NAMES", "OPTIMIZERS", "Plan",
           "filled", "markdown_table", "moved", "problems", "read", "rename_node", "setting", "starter"]
