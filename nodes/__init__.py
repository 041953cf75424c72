"""The library of node types. Importing the package registers every type.

Only numpy is imported here: the node library knows nothing of documents, compilers or Qt.
"""

from . import (  # noqa: F401 (register)
    activations,
    attention,
    class_losses,
    control,
    conv,
    layers,
    losses,
    math,
    norm,
    pool,
    recurrent,
    sources,
    structure,
    tensor,
)
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
