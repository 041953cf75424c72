"""Importing an exported module in a benchmark: written to a folder, imported under its name.

(The tests have their own helper; benchmarks do not import tests.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def load_module(text: str, folder: Path, name: str):
    path = Path(folder) / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and the like look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module
