"""What `wiregrad check` says about a training section: from the graph and the names of the
data alone, so nothing is trained and no large data is loaded.

`check(doc, analysis)` gives (errors, warnings), each a GraphError whose message starts with
the key (and names the node where there is one). The errors:

- the section's own problems: keys, types, ranges, the optimizer (training_section.problems);
- a loss that is no top-level Output, or whose value is not a single number (the shapes that
  the compiler inferred tell);
- metrics whose pred is no top-level Output, or whose target is no top-level Input;
- feeds that name no top-level Input, or an array the dataset does not have, and Inputs the
  loss or metrics need that get no array;
- a dataset entry that cannot be: an unknown kind or parameter, CSV columns its header row
  does not have.

A data file that is not there or cannot be read (large data may live elsewhere until training)
is a warning that its arrays could not be checked; `train` says what is wrong with it.

The dataset's array names come without its data (`dataset_names`): a generator runs on a few
rows; an `npz` archive's names come from its zip directory, a `csv` file's from its header
row, an `npy` file's from the entry itself. Names read from a file are counted in messages,
never quoted (a path may point at a private file; docs/training.md).
"""

from __future__ import annotations

import csv
import math
import os
import zipfile

from ..nodes.base import shape_text
from . import training_scope, training_section
from .datasets import (
    BUNDLED,
    FILE_KINDS,
    GENERATORS,
    KINDS,
    _check_file,
    _csv_plan,
    load_dataset,
)
from .errors import DataError, GraphError
from .npz import _npz_archive, _npz_open

PEEK_ROWS = 8  # rows a generator makes to tell its arrays' names


class Unreadable(DataError):
    """A data file that is not there or cannot be read: its arrays cannot be told."""


def check(doc, analysis, base_dir: str | None = None) -> tuple:
    """(errors, warnings) of the document's training section (none when it has none)."""
    section = doc.training
    if not isinstance(section, dict):
        return [], []
    errors = training_section.problems(section)
    inputs = [n.id for n in doc.graph.nodes if n.type == "Input"]
    outputs = {n.id: n for n in doc.graph.nodes if n.type == "Output"}
    errors += _loss_problems(doc, analysis, section.get("loss"), outputs)
    errors += _metric_problems(section.get("metrics"), inputs, outputs)
    feeds = section.get("feeds", {})
    feeds = feeds if isinstance(feeds, dict) else {}
    errors += [GraphError(f"training.feeds: {name!r} is not an Input of the graph (Inputs: "
                          f"{', '.join(inputs) or 'none'})") for name in feeds if name not in inputs]
    spec = section.get("dataset")
    if isinstance(spec, dict) and isinstance(spec.get("kind"), str):
        try:
            names, listed = dataset_names(spec, base_dir or doc.folder or ".")
        except Unreadable as error:
            return errors, [GraphError(f"{_dataset_message(error.message)}; check cannot tell "
                                       "its arrays")]
        except DataError as error:
            return errors + [GraphError(_dataset_message(error.message))], []
        errors += _feed_problems(doc, feeds, inputs, names, listed)
    return errors, []


def _dataset_message(message: str) -> str:
    """A dataset error named by the key: `dataset 'x': ...` -> `training.dataset 'x': ...`."""
    if message.startswith("dataset"):
        return "training." + message
    return f"training.dataset: {message}"


def _loss_problems(doc, analysis, loss, outputs: dict) -> list:
    if not isinstance(loss, str) or not loss:
        return []  # the schema says so
    if loss not in outputs:
        return [GraphError(f"training.loss: {loss!r} is not an Output of the graph (outputs: "
                           f"{', '.join(outputs) or 'none'})")]
    value = _output_type(doc, analysis, loss)
    if value is None or (all(d is not None for d in value.shape) and math.prod(value.shape) == 1):
        return []  # unknown (a problem upstream is reported there), or one number
    return [GraphError(f"training.loss: Output {loss!r} is not a single number: its value has "
                       f"shape {shape_text(value.shape)}; reduce it with Mean or Sum", loss)]


def _metric_problems(metrics, inputs: list, outputs: dict) -> list:
    if not isinstance(metrics, list):
        return []
    errors = []
    for i, metric in enumerate(metrics):
        if not isinstance(metric, dict):
            continue
        pred, target = metric.get("pred"), metric.get("target")
        if isinstance(pred, str) and pred not in outputs:
            errors.append(GraphError(f"training.metrics[{i}].pred: {pred!r} is not an Output of "
                                     f"the graph (outputs: {', '.join(outputs) or 'none'})"))
        if isinstance(target, str) and target not in inputs:
            errors.append(GraphError(f"training.metrics[{i}].target: {target!r} is not an Input "
                                     f"of the graph (Inputs: {', '.join(inputs) or 'none'})"))
    return errors


def _feed_problems(doc, feeds: dict, inputs: list, names: list, listed: str) -> list:
    """Feeds naming arrays the dataset lacks; Inputs the loss or metrics need with no array."""
    errors = []
    for input_id, array in feeds.items():
        if input_id in inputs and isinstance(array, str) and array not in names:
            errors.append(GraphError(f"training.feeds: Input {input_id!r} takes dataset array "
                                     f"{array!r}, which the dataset does not have (arrays: "
                                     f"{listed})", input_id))
    needed = training_scope.needed(doc) or set()
    for input_id in inputs:
        if input_id in needed and input_id not in feeds and input_id not in names:
            errors.append(GraphError(f"training.feeds: Input {input_id!r} has no data: the "
                                     f"dataset has no array {input_id!r}; map it in "
                                     f"training.feeds (arrays: {listed})", input_id))
    return errors


def _output_type(doc, analysis, output_id: str):
    """The inferred type of the value wired into a top-level Output, or None."""
    edge = doc.graph.edge_into(output_id, "x")
    return edge and analysis.port_types.get((edge.src, edge.src_port))


# -- the dataset's array names, without its data ------------------------------------------------

def dataset_names(spec: dict, base_dir: str) -> tuple:
    """(the array names a dataset entry yields, those names as a message lists them). Raises
    DataError for a wrong entry, Unreadable for a file that cannot be read."""
    kind = spec["kind"]
    if kind not in KINDS:
        raise DataError(f"dataset: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    if kind in GENERATORS or kind in BUNDLED:
        names = load_dataset(_peek(spec), base_dir).names()  # BUNDLED data is small
        return names, ", ".join(names)
    params = {k: v for k, v in spec.items() if k != "kind"}
    allowed = FILE_KINDS[kind][1]
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise DataError(f"dataset {kind!r}: unknown parameter {unknown[0]!r} "
                        f"(known: {', '.join(allowed)})")
    path = params.get("path")
    if not isinstance(path, str) or not path:
        raise DataError(f"dataset {kind!r}: path must be a file name, got {path!r}")
    resolved = os.path.join(base_dir, path)
    try:
        _check_file(resolved, path)
    except DataError as error:
        raise Unreadable(error.message) from None
    if kind == "npz":
        names = _npz_names(resolved, path)
        return names, ", ".join(names)
    if kind == "npy":
        name = params.get("name", "x")
        if not isinstance(name, str):
            raise DataError(f"dataset 'npy': name must be text, got {name!r}")
        return [name], name
    return _csv_names(resolved, path, params.get("columns"), params.get("delimiter", ","))


def _peek(spec: dict) -> dict:
    """A generator's entry on a few rows: the same arrays, whatever its n."""
    n = spec.get("n")
    generator = GENERATORS.get(spec["kind"])
    if generator is None or not isinstance(n, int) or isinstance(n, bool):
        return spec  # bundled data, or an n the generator itself refuses
    return {**spec, "n": min(n, PEEK_ROWS)}


def _npz_names(path: str, shown: str) -> list:
    """The arrays of an .npz archive, from its zip directory: no array is read."""
    try:
        with _npz_open(path, shown) as handle, _npz_archive(handle, shown) as archive:
            entries = [info.filename for info in archive.infolist()]
    except GraphError as error:
        raise Unreadable(error.message) from None
    except (zipfile.BadZipFile, OSError):
        raise Unreadable(f"{shown}: not a valid .npz archive") from None
    if not all(e.endswith(".npy") for e in entries):
        raise Unreadable(f"{shown}: not a valid .npz archive (it holds an entry that is not a "
                         ".npy array)")
    return [e[: -len(".npy")] for e in entries]


def _csv_names(path: str, shown: str, columns, delimiter) -> tuple:
    """The arrays of a CSV file, from its header row only (counted in messages when they are
    the header's own names, never quoted)."""
    if not (isinstance(delimiter, str) and len(delimiter) == 1):
        raise DataError(f"dataset 'csv': delimiter must be one character, got {delimiter!r}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except UnicodeDecodeError:
        raise Unreadable(f"{shown}: not a UTF-8 text file") from None
    except csv.Error:
        raise Unreadable(f"{shown}, line 1: not a readable header row") from None
    except OSError as error:
        raise Unreadable(f"cannot read dataset file {shown!r}: {error.strerror or error}") \
            from None
    if header is None:
        raise Unreadable(f"{shown}: the file is empty; expected a header row")
    header = [h.strip() for h in header]
    if columns is not None:
        names = [name for name, _, _ in _csv_plan(columns, header, shown)]
        return names, ", ".join(names)
    count = len(header)
    return header, (f"{count} named by the header row of {shown}; name the columns in the "
                    "dataset's \"columns\"")


__all__ = ["PEEK_ROWS", "Unreadable", "check", "dataset_names"]
