"""The one place the editor asks the engine about shapes and errors, and how it shows them.

`analyze(doc)` is core's analysis (every error, the inferred type of every port, warnings,
and which errors training ignores); the editor runs it off the GUI thread (validation.py).
"""

from __future__ import annotations

from core.compiler import Analysis
from core.compiler import analyze as _engine_analyze
from core.errors import GraphError


def analyze(doc, dtype: str = "float32") -> Analysis:
    try:
        return _engine_analyze(doc, dtype=dtype)
    except GraphError as exc:  # refused before analysis could collect (a document too big)
        return Analysis(errors=list(exc.errors))


def format_type(tensor_type) -> str:
    """A TensorType as a wire label: `(B, 16)`, the same text `wiregrad check` prints."""
    return tensor_type.label()


def port_kind(tensor_type) -> str:
    """float / int / scalar: how a port is coloured."""
    if tensor_type is None:
        return "float"
    if getattr(tensor_type, "dtype", "float") == "int64":
        return "int"
    if tuple(getattr(tensor_type, "shape", (None,))) == ():
        return "scalar"
    return "float"
