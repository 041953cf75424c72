"""How the editor shows what the engine inferred: a port's shape as wire text, its kind as
a colour."""

from __future__ import annotations


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
