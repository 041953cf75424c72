"""Trained weights kept with the document: `NAME.weights.npz` beside `NAME.wg.json`.

Written when the document is saved (never pickled: plain arrays keyed by parameter name, as
`wiregrad train --out` writes them), read when it is opened.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from core.fileio import atomic_write


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
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in params.items()})
    atomic_write(target, buffer.getvalue())
    return target


def load_weights(doc_path) -> dict | None:
    """The weights beside a document, or None (no file, or one that cannot be read)."""
    if not doc_path:
        return None
    target = weights_path(doc_path)
    if not target.exists():
        return None
    try:
        with np.load(target, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError):
        return None


def matching(params: dict | None, program) -> tuple:
    """(params for `program`, how many tensors were kept): trained values where the name and
    shape still fit, fresh initial values elsewhere. (None, 0) when nothing fits."""
    if not params:
        return None, 0
    kept = {n: params[n] for n in program.param_names
            if n in params and tuple(np.shape(params[n])) == tuple(program.param_shapes[n])}
    return (kept, len(kept)) if kept else (None, 0)
