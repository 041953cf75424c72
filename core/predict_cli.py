"""`wiregrad predict FILE --weights W.npz --input DATA.csv|npz [-o OUT.csv|npz]`.

Runs a trained graph on new data, without targets, and writes its predictions: the Outputs
that the Inputs predictions need allow (codegen/feeds.py: not the loss, which needs the
labels), those with a batch axis, one row per example.

Reading the input:

- `.npz`: an array per Input, named as the Input or as `training.feeds` maps it;
- `.csv` (with a header row): as the training section's dataset would read it, through its
  `columns` mapping when the dataset is a CSV file that has one (only the arrays the Inputs
  need, so a file without the label column reads); else one column per Input named as it
  (or as `training.feeds` maps it), or, for a graph with a single 2-D Input, every numeric
  column in file order.

The rows run in passes of `training.eval_batch_size` rows (else the training batch size where a
sample's result depends on its batch, else 1024; core/trainer.eval_rows).

Writing: `.npz` holds one array per Output; `.csv` one column per number of a row (`logits_0`,
`logits_1`, ... for an Output of shape (B, 2), the Output's id for one of shape (B,)) and, for
an Output a training `accuracy` metric reads, the predicted class id (`class`, or `ID_class` when
several Outputs have one): the arg-max of the last axis, or score > 0 for a single score.
Without `-o`, beside the input as `NAME-predictions.csv` (or `.npz`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .codegen.feeds import input_order, output_needs, target_inputs
from .compiler import compile_for_training
from .datasets import csv_arrays
from .errors import GraphError
from .export_cli import check_weights
from .fileio import atomic_write, load
from .npz import load_arrays, save_arrays
from .terminal import printable
from .trainer import EVAL_CHUNK

KINDS = (".csv", ".npz")


def cmd_predict(args) -> int:
    doc = load(args.file)
    training = doc.training if isinstance(doc.training, dict) else {}
    dtype = training.get("dtype", "float32")
    # The graph training runs (less any nodes with problems that training leaves out).
    program = compile_for_training(doc, dtype if dtype in ("float32", "float64") else "float32")
    weights = Path(args.weights)
    check_weights(weights, program.doc)
    params = load_arrays(weights, f"--weights {weights}")
    source = Path(args.input)
    out = Path(args.output) if args.output else default_output(source)
    if source.suffix.lower() not in KINDS:
        raise GraphError(f"--input: expected a .csv or .npz file, got {str(source)!r}")
    if out.suffix.lower() not in KINDS:
        raise GraphError(f"-o: the output must be a .csv or .npz file, got {str(out)!r}")
    if not out.parent.resolve().is_dir():
        raise GraphError(f"-o: folder {str(out.parent)!r} does not exist")
    inputs = prediction_inputs(program)
    feeds = read_inputs(program, inputs, source, training, doc)
    outputs = predict(program, params, feeds, eval_rows(program, training))
    if out.suffix.lower() == ".npz":
        save_arrays(out, outputs)
    else:
        atomic_write(out, predictions_csv(outputs, classified(training, outputs)).encode("utf-8"))
    rows = len(next(iter(feeds.values())))
    print(printable(f"wrote {out} ({rows} rows: {', '.join(outputs)})"))
    return 0


def default_output(source: Path) -> Path:
    """Beside the input: `new.csv` -> `new-predictions.csv`."""
    return source.with_name(f"{source.stem}-predictions{source.suffix.lower()}")


def prediction_inputs(program) -> list:
    """The Inputs the predictions need, in positional order (targets left out)."""
    layout = program.layout()
    needs = output_needs(layout)
    targets = target_inputs(layout, needs)
    used = {i for inputs in needs.values() for i in inputs}
    return [i for i in input_order(layout, needs) if i in used and i not in targets]


def eval_rows(program, training: dict) -> int:
    """Rows per pass, by core/trainer.eval_rows's rule, read from a section not checked whole."""
    rows = training.get("eval_batch_size")
    if not _whole(rows):
        batch = training.get("batch_size", 32)
        rows = batch if program.batch_level and _whole(batch) else EVAL_CHUNK
    return rows


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# -- reading --------------------------------------------------------------------------------


def read_inputs(program, inputs: list, source: Path, training: dict, doc) -> dict:
    """The prediction Inputs' arrays from the input file, checked and cast as feeds."""
    feed_names = training.get("feeds") if isinstance(training.get("feeds"), dict) else {}
    shown = f"--input {source.name}"
    if source.suffix.lower() == ".npz":
        arrays, by_file = load_arrays(source, shown), False
    else:
        arrays, by_file = _csv_inputs(program, inputs, source, training, feed_names)
    feeds = {}
    for input_id in inputs:
        name = feed_names.get(input_id, input_id)
        if not isinstance(name, str) or name not in arrays:
            name = input_id
        if name not in arrays:
            listed = f"{len(arrays)} arrays" if by_file else ", ".join(map(str, arrays)) or "none"
            raise GraphError(f"{shown}: no data for Input {input_id!r} (looked for "
                             f"{_looked(input_id, feed_names)}; the file has {listed})",
                             input_id)
        feeds[input_id] = _as_feed(program, input_id, arrays[name], shown)
    return feeds


def _looked(input_id: str, feed_names: dict) -> str:
    mapped = feed_names.get(input_id)
    if isinstance(mapped, str) and mapped != input_id:
        return f"{mapped!r} or {input_id!r}"
    return repr(input_id)


def _csv_inputs(program, inputs: list, source: Path, training: dict, feed_names: dict) -> tuple:
    """(arrays, named by the file) from a CSV input: see the module docstring."""
    shown = f"--input {source.name}"
    spec = training.get("dataset")
    columns = spec.get("columns") if isinstance(spec, dict) and spec.get("kind") == "csv" \
        else None
    delimiter = spec.get("delimiter", ",") if isinstance(spec, dict) else ","
    delimiter = delimiter if isinstance(delimiter, str) and len(delimiter) == 1 else ","
    if isinstance(columns, dict):
        wanted = {feed_names.get(i, i) for i in inputs}
        mapping = {name: cols for name, cols in columns.items() if name in wanted}
        if mapping:
            return csv_arrays(str(source), mapping, delimiter, shown)[0], False
    arrays, classes = csv_arrays(str(source), None, delimiter, shown)
    if len(inputs) == 1:
        (only,) = inputs
        shape = program.input_shapes[only]
        if len(shape) == 2 and feed_names.get(only, only) not in arrays and only not in arrays:
            numeric = [a for name, a in arrays.items() if name not in classes]
            if not numeric:
                raise GraphError(f"{shown}: no numeric column for Input {only!r}", only)
            return {only: np.stack(numeric, axis=1)}, False
    return arrays, True


def _as_feed(program, input_id: str, array: np.ndarray, shown: str) -> np.ndarray:
    array = np.asarray(array)
    if program.input_dtypes[input_id] == "int64" and array.dtype.kind == "f" \
            and np.array_equal(array, np.round(array)):
        array = array.astype(np.int64)  # class ids read from a CSV of numbers
    try:
        return program._check_feed(input_id, array)
    except GraphError as exc:
        raise GraphError(f"{shown}: {exc.message}", input_id) from None


# -- running and writing --------------------------------------------------------------------


def predict(program, params: dict, feeds: dict, rows: int) -> dict:
    """Every Output with a batch axis that the feeds allow, over all rows, in passes."""
    n = len(next(iter(feeds.values())))
    parts: dict = {}
    for start in range(0, n, rows):
        chunk = {k: v[start:start + rows] for k, v in feeds.items()}
        for name, value in program.run(params, chunk, train=False).items():
            shape = program.output_shapes[name]
            if len(shape) >= 1 and shape[0] is None:
                parts.setdefault(name, []).append(np.asarray(value))
    if not parts:
        raise GraphError("no Output with a batch axis can be computed from the Inputs "
                         f"{', '.join(feeds)} alone (each needs a target, or has no batch axis)")
    return {name: np.concatenate(values) for name, values in parts.items()}


def classified(training: dict, outputs: dict) -> list:
    """The Outputs a training accuracy metric reads, among those written, in order."""
    metrics = training.get("metrics") if isinstance(training.get("metrics"), list) else []
    read = {m.get("pred") for m in metrics if isinstance(m, dict) and m.get("type") == "accuracy"}
    return [name for name in outputs if name in read]


def class_ids(pred: np.ndarray) -> np.ndarray:
    """As the accuracy metric decides (core/metrics.accuracy): the arg-max of the last axis,
    or for one score per row, 1 where the score is above 0."""
    if pred.ndim == 1 or pred.shape[-1] == 1:
        return (pred.reshape(pred.shape[0], -1) > 0).astype(np.int64).reshape(
            pred.shape if pred.ndim == 1 else pred.shape[:-1])
    return pred.argmax(axis=-1)


def predictions_csv(outputs: dict, classes: list) -> str:
    """The predictions as CSV text: a header row, then one row per example. Numbers are
    written as short as they read back exactly in their dtype (float32: `0.1`)."""
    columns, header = [], []
    for name, value in outputs.items():
        columns.append(value.reshape(len(value), -1).astype(str))
        header += _column_names(name, value.shape[1:])
    for name in classes:
        ids = class_ids(outputs[name])
        columns.append(ids.reshape(len(ids), -1).astype(str))
        header += _column_names("class" if len(classes) == 1 else f"{name}_class",
                                ids.shape[1:])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(np.concatenate(columns, axis=1).tolist())
    return text.getvalue()


def _column_names(stem: str, shape: tuple) -> list:
    """`logits_0`, `logits_1`, ... for the numbers of one row (`_i_j` past one axis)."""
    if not shape:
        return [stem]
    return [f"{stem}_" + "_".join(map(str, index)) for index in np.ndindex(*shape)]


__all__ = ["cmd_predict", "default_output", "predict", "predictions_csv"]
