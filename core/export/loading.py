"""Importing an exported module's text as a module, for the checks that run it beside the
engine (the editor's parity badge, the tests, the benchmarks), and reading a torch export's
gradients back under the engine's parameter names.

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

import numpy as np

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


def torch_grads(module, model, like: dict) -> dict:
    """The gradients a torch export's `model` holds after backward, by the engine's names (the
    keys of `like`, the engine's gradients), as numpy arrays shaped as the engine's: a weight
    torch keeps transposed is turned back, and one no gradient reached gives zeros."""
    out = {}
    for name, ours in like.items():
        key, transposed = module.PARAM_NAMES[name]
        grad = model.get_parameter(key).grad
        out[name] = np.zeros_like(ours) if grad is None else \
            (grad.T if transposed else grad).detach().numpy()
    return out


__all__ = ["import_text", "torch_grads"]
