"""Datasets: named numpy arrays that share their first length, from a generator or a file.

A document's `training.dataset` entry says where the data comes from:

    {"kind": "spiral", "n": 600, "classes": 3, "noise": 0.2, "seed": 0}     a built-in generator
    {"kind": "csv", "path": "iris.csv", "columns": {"x": [...], "label": "species"}}
    {"kind": "npz", "path": "data.npz"}          {"kind": "npy", "path": "x.npy", "name": "x"}

`load_dataset(spec, base_dir)` turns it into a `Dataset`: a dict of arrays (`dataset["x"]`), the
class names of text columns (`dataset.classes["label"] == ["setosa", ...]`) and a length. File
paths are relative to `base_dir`, the directory of the document. Generators are plain functions
too (`spiral(n=300, seed=0)` returns the dict of arrays). Float arrays are float64 here; the
trainer casts them to the program's dtype. Class ids are int64.

`split(dataset, validation, seed)` draws a seeded train/validation split, and `batches(arrays,
batch_size, rng)` yields shuffled mini-batches as dicts; both index whole arrays at once.

Anything wrong with the data raises `core.errors.DataError`, naming the file, the column or array,
and the row.

An exported training script generates, reads, splits and batches its data with a copy of the
functions here (core/export/copying.py), so those use only numpy, the standard library and each
other, and builtins in annotations.
"""

from __future__ import annotations

import csv
import inspect
import math
import os

import numpy as np

from .errors import DataError, GraphError
from .generators import (
    GENERATORS,
    _float,
    _int,
    adding,
    circles,
    copy_first,
    expr_trees,
    moons,
    pairs,
    rotations,
    running_max,
    seq_parity,
    seq_sum,
    sine,
    spiral,
    xor,
)
from .npz import load_array, load_arrays

__all__ = [
    "BUNDLED",
    "DIGITS_FILE",
    "FILE_KINDS",
    "GENERATORS",
    "KINDS",
    "Dataset",
    "adding",
    "batches",
    "circles",
    "copy_first",
    "digits_arrays",
    "expr_trees",
    "load_dataset",
    "moons",
    "pairs",
    "read_csv",
    "read_npy",
    "read_npz",
    "rotations",
    "running_max",
    "seq_parity",
    "seq_sum",
    "sine",
    "spiral",
    "split",
    "split_rows",
    "xor",
]


class Dataset:
    """Named arrays with the same first length.

    `arrays`: name -> ndarray. `classes`: name -> class names, for arrays made from a text
    column (id i stands for `classes[name][i]`). `source`: where it came from, for messages.
    Two names may refer to one array (aliases); subsets keep them one array.
    `named_by_file`: the names are a file's text (a CSV read without "columns" takes them from
    its header row), so messages count them instead of quoting them (listed_names).
    """

    def __init__(self, arrays: dict, classes: dict | None = None, source: str = "dataset",
                 named_by_file: bool = False):
        self.source = source
        self.named_by_file = named_by_file
        self.arrays = {name: np.asarray(a) for name, a in arrays.items()}
        self.classes = dict(classes or {})
        self._length = _common_length(self.arrays, source)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise DataError(f"{self.source}: no array {name!r} "
                            f"(arrays: {self.listed_names()})") from None

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def names(self) -> list[str]:
        return list(self.arrays)

    def listed_names(self) -> str:
        """The arrays' names for a message. A dataset path may point at a private file, whose
        first line a CSV reader takes for its header: such names are counted, not quoted."""
        if self.named_by_file:
            count = len(self.arrays)
            return f"{count} named by the header row of {self.source}; name the columns in " \
                   "the dataset's \"columns\""
        return ", ".join(self.arrays)

    def subset(self, indices: np.ndarray) -> Dataset:
        """The rows at `indices` (an int array), as a new Dataset with the same classes."""
        return Dataset(_take(self.arrays, indices), self.classes, self.source, self.named_by_file)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {a.dtype}{list(a.shape)}" for k, a in self.arrays.items())
        return f"Dataset({self.source}, {len(self)} rows; {shapes})"


def _common_length(arrays: dict, source: str) -> int:
    if not arrays:
        raise DataError(f"{source}: no arrays")
    lengths = {}
    for name, a in arrays.items():
        if a.ndim == 0:
            raise DataError(f"{source}: array {name!r} is a single value, not rows of data")
        lengths[name] = a.shape[0]
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise DataError(f"{source}: arrays have different numbers of rows ({listed})")
    return next(iter(lengths.values()))


def _take(arrays: dict, indices) -> dict:
    """Index every array once (aliases share the result)."""
    taken: dict[int, np.ndarray] = {}
    out = {}
    for name, a in arrays.items():
        if id(a) not in taken:
            taken[id(a)] = a[indices]
        out[name] = taken[id(a)]
    return out


# -- files ------------------------------------------------------------------------------------

def _check_file(path: str, shown: str) -> None:
    """A dataset file must be there, and be a plain file: a folder cannot be read, and a pipe
    or device could block or never end."""
    if os.path.isfile(path):
        return
    if os.path.isdir(path):
        raise DataError(f"dataset file {shown!r} is a folder, not a file")
    if os.path.exists(path):
        raise DataError(f"dataset file {shown!r} is not a plain file (a pipe or a device?)")
    raise _open_error(FileNotFoundError(), shown, os.path.abspath(path))


def _open_error(error: OSError, shown: str, resolved: str) -> DataError:
    if isinstance(error, FileNotFoundError):
        return DataError(f"dataset file {shown!r} not found (looked for {resolved})")
    return DataError(f"cannot read dataset file {shown!r}: {error.strerror or error}")


def _parse_floats(values: list[str]) -> tuple[np.ndarray | None, int]:
    """(the column as float64, -1), or (None, index of the first value that is not a finite
    number). The fast path converts the whole column in one call."""
    try:
        column = np.array(values, dtype=np.float64)
    except ValueError:
        column = None
    if column is not None:
        bad = np.flatnonzero(~np.isfinite(column))
        return (column, -1) if bad.size == 0 else (None, int(bad[0]))
    for i, v in enumerate(values):
        try:
            if not math.isfinite(float(v)):
                return None, i
        except ValueError:
            return None, i
    return None, -1  # unreachable: numpy refused a value that float() takes


def _looks_numeric(values: list[str]) -> bool:
    """A column is numeric when at least half of its non-empty values are numbers, so that a
    typo in a column of numbers is reported rather than turning the column into classes."""
    filled = [v for v in values if v]
    numbers = 0
    for v in filled:
        try:
            float(v)
            numbers += 1
        except ValueError:
            pass
    return numbers * 2 >= len(filled)


def _class_ids(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """int64 ids in order of first appearance, and the class names."""
    mapping: dict[str, int] = {}
    ids = np.fromiter((mapping.setdefault(v, len(mapping)) for v in values),
                      dtype=np.int64, count=len(values))
    return ids, list(mapping)


def _csv_plan(columns, header: list[str], shown: str) -> list[tuple[str, list[str], bool]]:
    """[(array name, column names, is_2d)] from the "columns" entry (None: every column)."""
    if columns is None:
        return [(h, [h], False) for h in header]
    if not isinstance(columns, dict) or not columns:
        raise DataError(f"{shown}: \"columns\" must map array names to a column or a list of "
                        f"columns, like {{\"x\": [\"a\", \"b\"], \"label\": \"c\"}}")
    plan = []
    for name, cols in columns.items():
        is_2d = isinstance(cols, list)
        names = cols if is_2d else [cols]
        if not names or not all(isinstance(c, str) for c in names):
            raise DataError(f"{shown}: array {name!r} must name a column or a non-empty list of "
                            f"columns, got {cols!r}")
        for c in names:
            if c not in header:
                # The header is the file's first line: it is never quoted (a dataset path may
                # point at a private file), so the message counts its columns instead.
                count = f"{len(header)} column{'s' if len(header) != 1 else ''}"
                raise DataError(f"{shown}: array {name!r} names column {c!r}, which the header "
                                f"row does not have (it has {count}; check the name and the "
                                "delimiter)")
        plan.append((name, names, is_2d))
    return plan


def _csv_rows(handle, delimiter: str, shown: str) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the rows (values stripped, blank lines skipped) and each row's line number."""
    reader = csv.reader(handle, delimiter=delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{shown}: the file is empty; expected a header row")
        header = [h.strip() for h in header]
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise DataError(f"{shown}, row {len(rows) + 1} (line {reader.line_num}): "
                                f"{len(row)} values, but the header has {len(header)} columns")
            rows.append([field.strip() for field in row])
            lines.append(reader.line_num)
    except csv.Error as error:
        raise DataError(f"{shown}, line {reader.line_num}: {error}") from None
    except UnicodeDecodeError:
        raise DataError(f"{shown}: not a UTF-8 text file") from None
    return header, rows, lines


def read_csv(path: str, columns: dict | None = None, delimiter: str = ",",
             shown: str | None = None) -> Dataset:
    """A CSV file with a header row, as a Dataset (see csv_arrays)."""
    return Dataset(*csv_arrays(path, columns, delimiter, shown), shown or path,
                   named_by_file=columns is None)


def csv_arrays(path: str, columns: dict | None = None, delimiter: str = ",",
               shown: str | None = None) -> tuple:
    """A CSV file with a header row, as (arrays, class names of the text columns).

    `columns` maps array names to a column name (a 1-D array) or a list of column names (a 2-D
    float64 array, columns in that order); left out, each column is an array of its own name.
    A 1-D column of numbers is float64; a column of text becomes int64 class ids in order of
    first appearance, the names in `dataset.classes[array]`. Values are stripped of spaces;
    blank lines are skipped. `shown` is the path as the document wrote it, for messages.
    """
    shown = shown or path
    _check_file(path, shown)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header, rows, lines = _csv_rows(handle, delimiter, shown)
    except OSError as error:
        raise _open_error(error, shown, os.path.abspath(path)) from None
    first_at = {}
    for i, h in enumerate(header):
        if h in first_at:
            raise DataError(f"{shown}: the header row repeats a column name (columns "
                            f"{first_at[h] + 1} and {i + 1})")
        first_at[h] = i
    if not rows:
        raise DataError(f"{shown}: no rows of data after the header")

    by_column = dict(zip(header, (list(c) for c in zip(*rows))))

    def where(row: int, name: str, column: str) -> str:
        """A value's place for messages: row, line and column, never what the file holds
        there; the column and array by name only where the document named them."""
        place = f"{shown}, row {row + 1} (line {lines[row]}), column "
        if columns is None:
            return place + str(first_at[column] + 1)
        return place + f"{column!r} (array {name!r})"

    def number_column(name: str, column: str) -> np.ndarray:
        values, bad = _parse_floats(by_column[column])
        if values is None:
            value = by_column[column][bad]
            if not value:
                what = "an empty value; expected a number"
            elif _looks_numeric([value]):
                what = "expected a finite number, found NaN or infinity"
            else:
                what = "expected a number, found text"
            raise DataError(f"{where(bad, name, column)}: {what}")
        return values

    arrays, classes = {}, {}
    for name, cols, is_2d in _csv_plan(columns, header, shown):
        if is_2d:
            arrays[name] = np.stack([number_column(name, c) for c in cols], axis=1)
            continue
        values = by_column[cols[0]]
        if _looks_numeric(values):
            arrays[name] = number_column(name, cols[0])
            continue
        if "" in values:
            bad = values.index("")
            raise DataError(f"{where(bad, name, cols[0])}: an empty value; expected a class "
                            "name")
        arrays[name], classes[name] = _class_ids(values)
    return arrays, classes


def _from_file_array(name: str, array: np.ndarray, shown: str, classes: dict) -> np.ndarray:
    """Numbers pass; text becomes class ids (order of first appearance); others are refused."""
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind in "US":
        uniques, first, inverse = np.unique(array, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        classes[name] = [str(u) for u in uniques[order]]
        return rank[inverse].reshape(array.shape).astype(np.int64)
    raise DataError(f"{shown}: array {name!r} has dtype {array.dtype}, expected numbers or text")


def read_npz(path: str, shown: str | None = None) -> Dataset:
    """A numpy .npz archive as a Dataset (see npz_arrays)."""
    return Dataset(*npz_arrays(path, shown), shown or path)


def npz_arrays(path: str, shown: str | None = None) -> tuple:
    """A numpy .npz archive as (arrays, class names): every array keeps its name, and text
    arrays become class ids. Read by core.npz, which checks each array before loading it."""
    shown = shown or path
    _check_file(path, shown)
    try:
        loaded = load_arrays(path, shown)
    except GraphError as error:
        raise DataError(str(error)) from None
    classes = {}
    arrays = {name: _from_file_array(name, a, shown, classes) for name, a in loaded.items()}
    return arrays, classes


def read_npy(path: str, name: str = "x", shown: str | None = None) -> Dataset:
    """A numpy .npy file as a Dataset (see npy_arrays)."""
    return Dataset(*npy_arrays(path, name, shown), shown or path)


def npy_arrays(path: str, name: str = "x", shown: str | None = None) -> tuple:
    """A numpy .npy file as (arrays, class names): one array, named `name`."""
    shown = shown or path
    _check_file(path, shown)
    try:
        array = load_array(path, shown)
    except GraphError as error:
        raise DataError(str(error)) from None
    classes = {}
    return {name: _from_file_array(name, array, shown, classes)}, classes


# The 8x8 handwritten digits shipped with Wiregrad (assets/data/digits.md: source, licence).
DIGITS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "assets", "data", "digits.npz")


def digits_arrays(path: str, shown: str | None = None) -> dict:
    """The digits archive as a dataset's arrays: x float64 (N, 1, 8, 8), the pixels of 0..16
    divided by 16, and y int64 (N,), the digit."""
    arrays, _ = npz_arrays(path, shown)
    if "images" not in arrays or "labels" not in arrays:
        raise DataError(f"{shown or path}: not the digits archive (no images and labels)")
    images = arrays["images"].astype(np.float64) / 16.0
    return {"x": images.reshape(-1, 1, 8, 8), "y": arrays["labels"].astype(np.int64)}


def read_digits() -> Dataset:
    return Dataset(digits_arrays(DIGITS_FILE, "the built-in digits (assets/data/digits.npz)"),
                   source="dataset 'digits'")


BUNDLED = {"digits": read_digits}  # data shipped with Wiregrad: no parameters, no path

FILE_KINDS = {
    "csv": (read_csv, ("path", "columns", "delimiter")),
    "npz": (read_npz, ("path",)),
    "npy": (read_npy, ("path", "name")),
}
KINDS = sorted([*GENERATORS, *FILE_KINDS, *BUNDLED])


# -- from a document's dataset entry ----------------------------------------------------------

def load_dataset(spec: dict, base_dir: str | os.PathLike | None = None) -> Dataset:
    """The Dataset a `training.dataset` entry describes; file paths are relative to `base_dir`
    (the document's directory; None: the working directory)."""
    if not isinstance(spec, dict):
        raise DataError(f"dataset must be an object with a \"kind\", got {spec!r}")
    kind = spec.get("kind")
    if kind is None:
        raise DataError(f"dataset: missing \"kind\" (known: {', '.join(KINDS)})")
    if kind not in KINDS:
        raise DataError(f"dataset: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    params = {k: v for k, v in spec.items() if k != "kind"}
    if kind in BUNDLED:
        if params:
            raise DataError(f"dataset {kind!r}: takes no parameters, got {next(iter(params))!r}")
        return BUNDLED[kind]()
    if kind in GENERATORS:
        generate = GENERATORS[kind]
        signature = inspect.signature(generate).parameters
        allowed = tuple(signature)
        required = [p for p, info in signature.items() if info.default is inspect.Parameter.empty]
    else:
        generate, allowed = FILE_KINDS[kind]
        required = ["path"]
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise DataError(f"dataset {kind!r}: unknown parameter {unknown[0]!r} "
                        f"(known: {', '.join(allowed)})")
    missing = [k for k in required if k not in params]
    if missing:
        raise DataError(f"dataset {kind!r}: missing parameter {missing[0]!r}")
    if kind in GENERATORS:
        return Dataset(generate(**params), source=f"dataset {kind!r}")

    path = params.pop("path")
    if not isinstance(path, str) or not path:
        raise DataError(f"dataset {kind!r}: path must be a file name, got {path!r}")
    if kind == "npy" and not isinstance(params.get("name", "x"), str):
        raise DataError(f"dataset 'npy': name must be text, got {params['name']!r}")
    if kind == "csv" and not (isinstance(params.get("delimiter", ","), str)
                              and len(params.get("delimiter", ",")) == 1):
        raise DataError(f"dataset 'csv': delimiter must be one character, got "
                        f"{params['delimiter']!r}")
    resolved = os.path.join(os.fspath(base_dir) if base_dir is not None else ".", path)
    return generate(resolved, shown=path, **params)


# -- splitting and batching -------------------------------------------------------------------

def split(dataset: Dataset | dict, validation: float = 0.2, seed: int = 0) -> tuple:
    """A seeded random split into (train, validation) Datasets (see split_rows)."""
    if not isinstance(dataset, Dataset):
        dataset = Dataset(dataset)
    train, val = split_rows(dataset.arrays, validation, seed)
    return (Dataset(train, dataset.classes, dataset.source, dataset.named_by_file),
            Dataset(val, dataset.classes, dataset.source, dataset.named_by_file))


def split_rows(arrays: dict, validation: float = 0.2, seed: int = 0) -> tuple:
    """A seeded random split of arrays into (train, validation) dicts. round(rows * validation)
    rows go to validation (0 <= validation < 1; zero rows for 0); the rest, at least one, to
    training."""
    validation = _float("split", "validation", validation, 0.0, 1.0)
    seed = _int("split", "seed", seed, 0)
    n = _common_length(arrays, "split")
    n_val = round(n * validation)
    if validation >= 1.0 or n_val >= n:
        raise DataError(f"split: validation {validation:g} of {n} rows leaves no rows to train on")
    order = np.random.default_rng(seed).permutation(n)
    return _take(arrays, order[n_val:]), _take(arrays, order[:n_val])


def batches(arrays: dict, batch_size: int, rng, shuffle: bool = True):
    """Mini-batches as dicts of arrays, covering every row once; the last one may be smaller.

    With `shuffle`, the rows are in a fresh random order drawn from `rng` (a numpy Generator, or
    a seed); without, in order, and each batch is a view of the arrays (rng may be None).
    """
    if not isinstance(arrays, dict):
        arrays = arrays.arrays  # a Dataset
    n = _common_length(arrays, "batches")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise DataError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not shuffle:
        for start in range(0, n, batch_size):
            yield {name: a[start:start + batch_size] for name, a in arrays.items()}
        return
    if rng is None:
        raise ValueError("batches: shuffling needs rng, a numpy Generator or a seed")
    order = np.random.default_rng(rng).permutation(n)
    for start in range(0, n, batch_size):
        yield _take(arrays, order[start:start + batch_size])
