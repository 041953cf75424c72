"""The registry of node types, by name and by former name."""

from __future__ import annotations

from .base import NodeType

_TYPES: dict[str, NodeType] = {}
_FORMER: dict[str, str] = {}


def register(cls: type[NodeType]) -> type[NodeType]:
    """Class decorator: instantiate the type once and file it under its name and former names."""
    if not cls.name:
        cls.name = cls.__name__
    if cls.name in _TYPES:
        raise ValueError(f"node type {cls.name!r} is registered twice")
    _TYPES[cls.name] = cls()
    for old in cls.former_names:
        _FORMER[old] = cls.name
    return cls


def get(name: str) -> NodeType | None:
    """The type registered under `name`, or under a name it used to have; None if unknown."""
    return _TYPES.get(name) or _TYPES.get(_FORMER.get(name, ""))


def canonical_name(name: str) -> str | None:
    """The current name of a type given by its current or a former name."""
    if name in _TYPES:
        return name
    return _FORMER.get(name)


def all_types() -> dict[str, NodeType]:
    return dict(_TYPES)
