"""Trained weights kept with the document: `NAME.weights.npz` beside `NAME.wg.json`.

Written when the document is saved (never pickled: plain arrays keyed by parameter name, as
`wiregrad train --out` writes them), read when it is opened. A file beside the document that
cannot be read, or whose arrays do not fit the graph, is never half used: `load_for` says why,
and the panel starts from fresh weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ... import core
from ...core.errors import GraphError
from ...core.npz import load_arrays, save_arrays

FRESH = "starting from fresh weights"


def weights_path(doc_path) -> Path:
    path = Path(doc_path)
    name = path.name
    for suffix in (".wg.json", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(f"{name}.weights.npz")


def save_weights(doc_path, params: dict) -> Path:
    target = weights_path(doc_path)
    save_arrays(target, params)
    return target


def check_fit(arrays: dict, program) -> None:
    """Raise GraphError unless the arrays are weights of `program`: numbers, in the shapes
    its parameters have, at least one of them. (Missing ones start fresh when training.)"""
    kept = 0
    for name in program.param_names:
        if name not in arrays:
            continue
        value = arrays[name]
        if value.dtype.kind not in "fiu":
            raise GraphError(f"{name} does not hold numbers")
        if tuple(value.shape) != tuple(program.param_shapes[name]):
            raise GraphError(f"{name} does not have the shape the graph gives it "
                             f"{tuple(program.param_shapes[name])}")
        kept += 1
    if program.param_names and not kept:
        raise GraphError("none of its arrays is a weight of this graph")


def load_for(doc, path=None, what: str = "The weights beside the file") -> tuple:
    """(weights, notice) for `doc`, read from `path` (default: the file beside the document):
    (None, "") when there is no file; (None, why and what happens now) when it cannot be read
    or does not fit the graph; (weights, "") otherwise."""
    if path is None:
        if not doc.path:
            return None, ""
        path = weights_path(doc.path)
    path = Path(path)
    if not os.path.lexists(path):
        return None, ""
    try:
        arrays = load_arrays(path, shown=path.name)  # GraphError for anything wrong with it
    except GraphError as exc:
        return None, f"{what} could not be read: {exc}; {FRESH}."
    except Exception:  # noqa: BLE001 (should the reader miss a case, the panel still opens)
        return None, f"{what} could not be read: {path.name}: not a valid .npz archive; {FRESH}."
    program = _compiled(doc)
    try:
        if program is not None:
            check_fit(arrays, program)
    except GraphError as exc:
        return None, f"{what} do not fit this graph: {path.name}: {exc}; {FRESH}."
    return (arrays or None), ""


def _compiled(doc):
    """The document's program, to check shapes against; None when it does not compile (the
    weights are then checked when training starts, by `matching`)."""
    try:
        return core.compile(doc)
    except (GraphError, RecursionError, MemoryError):
        return None


def matching(params: dict | None, program) -> tuple:
    """(params for `program`, how many tensors were kept): trained values where the name and
    shape still fit, fresh initial values elsewhere. (None, 0) when nothing fits."""
    if not params:
        return None, 0
    kept = {n: params[n] for n in program.param_names
            if n in params and tuple(np.shape(params[n])) == tuple(program.param_shapes[n])}
    return (kept, len(kept)) if kept else (None, 0)
