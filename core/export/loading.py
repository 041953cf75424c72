"""Importing an exported module's text as a module, for the checks that run it beside the
engine (the editor's parity badge, the tests, the benchmarks).

The text is written to a file and imported from there under a fresh name: `inspect`, dataclasses
and tracebacks all want a real file and a module registered while it runs. Importing an exported
module runs nothing but definitions (interfaces.md).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import tempfile
from pathlib import Path

_counter = itertools.count()


def import_text(text: str, folder=None, name: str | None = None):
    """The module `text` defines. Written into `folder` as NAME.py and kept there; without a
    folder, into a temporary one removed once it is imported."""
    name = name or f"wiregrad_exported_{next(_counter)}"
    if folder is None:
        with tempfile.TemporaryDirectory() as where:
            return _import_file(text, Path(where) / f"{name}.py", name)
    return _import_file(text, Path(folder) / f"{name}.py", name)


def _import_file(text: str, path: Path, name: str):
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and the like look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


__all__ = ["import_text"]
