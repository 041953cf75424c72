"""The one place the editor asks the engine about shapes and errors.

`analyze(doc)` calls `core.analyze` when the compiler provides it and otherwise falls back to
the structural checks of `core.validate` (errors, no shapes), so the editor works either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import core
from core.validate import structural_errors


@dataclass
class Analysis:
    errors: list = field(default_factory=list)       # core.GraphError, each with .node (a path)
    port_types: dict = field(default_factory=dict)   # (node_path, output port) -> TensorType


def has_shapes() -> bool:
    """Whether the engine infers shapes (core.analyze exists)."""
    return _engine_analyze() is not None


def _engine_analyze():
    fn = getattr(core, "analyze", None)
    if fn is not None:
        return fn
    try:
        from core import compiler
    except ImportError:
        return None
    return getattr(compiler, "analyze", None)


def analyze(doc, dtype: str = "float32") -> Analysis:
    fn = _engine_analyze()
    if fn is None:
        return Analysis(errors=list(structural_errors(doc)))
    try:
        result = fn(doc, dtype=dtype)
    except core.GraphError as exc:  # an engine that raises instead of collecting
        return Analysis(errors=list(exc.errors))
    return Analysis(errors=list(getattr(result, "errors", []) or []),
                    port_types=dict(getattr(result, "port_types", {}) or {}))


def format_type(tensor_type) -> str:
    """A TensorType as a wire label: `(B, 16)`, the first unknown axis of a batched value as B."""
    shape = tuple(getattr(tensor_type, "shape", ()))
    batched = getattr(tensor_type, "batched", None)
    if batched is None:
        batched = bool(shape) and shape[0] is None
    dims = []
    for i, d in enumerate(shape):
        if d is None:
            dims.append("B" if (batched and i == 0) else "?")
        else:
            dims.append(str(d))
    text = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    dtype = getattr(tensor_type, "dtype", "float")
    if dtype not in ("float", "float32", "float64"):
        text += f" {dtype}"
    return text


def port_kind(tensor_type) -> str:
    """float / int / scalar: how a port is coloured."""
    if tensor_type is None:
        return "float"
    if getattr(tensor_type, "dtype", "float") == "int64":
        return "int"
    if tuple(getattr(tensor_type, "shape", (None,))) == ():
        return "scalar"
    return "float"
