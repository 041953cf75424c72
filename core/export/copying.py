"""Copying the engine's own code into an exported module, so the module computes what the
engine computes because it runs the same lines.

`Copies` collects functions, classes and module-level constants by name from an engine module
(core.datasets, core.metrics, core.optim, ...), each after what it uses from that same module,
each once. Copied code may raise GraphError or DataError; the exported module defines those as
plain ValueErrors (ERROR_STUBS). Code meant to be copied uses only numpy, the standard library
modules the export imports, builtins in annotations, and its own module's names.
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
import textwrap

_OURS = (__name__.rsplit(".", 2)[0] + ".",)  # core's modules: the code an export may copy

ERROR_STUBS = {
    "GraphError": ('class GraphError(ValueError):\n'
                   '    """A setting or value Wiregrad refuses (its error type, here a ValueError)."""\n'),
    "DataError": ('class DataError(GraphError):\n'
                  '    """A dataset that cannot be read or used."""\n'),
}


@functools.cache
def _module_constants(module) -> dict:
    """name -> (source of its assignment, names it reads) for a module's top-level assignments.
    Once per module and process: a module's source does not change while it runs."""
    source = inspect.getsource(module)
    lines = source.splitlines(keepends=True)
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    reads = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)} \
                        if node.value is not None else set()
                    out[target.id] = (_segment(lines, node) + "\n", reads)
    return out


def _segment(lines: list, node) -> str:
    """A top-level statement's text (ast.get_source_segment splits the whole source per call)."""
    text = "".join(lines[node.lineno - 1:node.end_lineno])
    last = len(lines[node.end_lineno - 1].encode("utf-8")) - node.end_col_offset
    encoded = text.encode("utf-8")
    return encoded[node.col_offset:len(encoded) - last].decode("utf-8")


def _reads(obj) -> set:
    """The global names a function or class (its bases and methods) refers to."""
    if inspect.isfunction(obj):
        names = set(obj.__code__.co_names)
        for const in obj.__code__.co_consts:  # nested functions and comprehensions
            if inspect.iscode(const):
                names |= set(const.co_names)
        return names
    names = {base.__name__ for base in obj.__bases__}
    for value in vars(obj).values():
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value):
            names |= _reads(value)
    return names


class Copies:
    """Source pieces for an exported module, in an order where each comes after what it uses."""

    def __init__(self):
        self.parts: list = []
        self._done: set = set()

    def add(self, module, name: str) -> None:
        """Copy `name` from `module` (a function, class or constant), after what it uses: the
        functions and classes of Wiregrad's own modules it calls, and its module's constants."""
        key = ("", name) if name in ERROR_STUBS else (module.__name__, name)
        if key in self._done:
            return
        self._done.add(key)
        if name in ERROR_STUBS:
            if name == "DataError":
                self.add(module, "GraphError")
            self.parts.append(ERROR_STUBS[name])
            return
        constants = _module_constants(module)
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            reads, source = _reads(obj), textwrap.dedent(inspect.getsource(obj))
        else:
            source, reads = constants[name]
        for other in sorted(reads):
            home = self._home(module, other, constants)
            if home is not None:
                self.add(home, other)
        self.parts.append(source.rstrip() + "\n")

    @staticmethod
    def _home(module, name: str, constants: dict):
        """The module to copy a name `module` uses from, or None if it is not ours to copy."""
        if name in ERROR_STUBS:
            return module
        value = getattr(module, name, None)
        if inspect.isfunction(value) or inspect.isclass(value):
            home = sys.modules.get(value.__module__)
            return home if value.__module__.startswith(_OURS) else None
        return module if name in constants and not inspect.ismodule(value) else None
