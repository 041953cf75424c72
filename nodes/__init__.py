"""The library of node types. Importing the package registers every type.

Only numpy is imported here: the node library knows nothing of documents, compilers or Qt.
"""

from . import activations, control, conv, layers, losses, math, sources, tensor  # noqa: F401 (register)
from .base import (
    FLOAT,
    INT,
    REQUIRED,
    NodeType,
    Param,
    ParamError,
    Sample,
    ShapeError,
    TensorType,
    Weight,
)
from .registry import all_types, canonical_name, get, register

__all__ = [
    "FLOAT", "INT", "REQUIRED", "NodeType", "Param", "ParamError", "Sample",
    "ShapeError", "TensorType", "Weight", "all_types", "canonical_name", "get", "register",
]
