"""`wiregrad export FILE --target numpy|torch [-o OUT.py] [--weights W.npz]`.

Writes one standalone Python module. With `--weights`, the trained weights are copied beside
the module and the module loads them from there (never as inline arrays). Problems are
GraphErrors, which the command line prints as one line each.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .codegen.layout import Layout
from .errors import GraphError
from .export import export_source
from .fileio import atomic_write, load
from .npz import load_arrays
from .terminal import printable


def default_output(doc_path: str, target: str) -> Path:
    """`spiral-mlp.wg.json` -> `spiral_mlp_numpy.py` in the current folder."""
    stem = Path(doc_path).name
    for suffix in (".wg.json", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = re.sub(r"\W", "_", stem, flags=re.ASCII) or "graph"
    if stem[0].isdigit():
        stem = "graph_" + stem
    return Path(f"{stem}_{target}.py")


def check_weights(path: Path, doc) -> None:
    """The .npz must hold exactly the document's parameters, with their shapes."""
    shapes = {name: array.shape for name, array in load_arrays(path, f"--weights {path}").items()}
    program = Layout.of(doc)
    expected = {name: tuple(spec.shape) for name, spec in program.tensors}
    missing = [n for n in expected if n not in shapes]
    extra = [n for n in shapes if n not in expected]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unknown {', '.join(extra)}"] if extra else [])
        raise GraphError(f"--weights: {path.name} does not match the graph: " + "; ".join(parts))
    for name, shape in expected.items():
        if tuple(shapes[name]) != shape:
            raise GraphError(f"--weights: {name} has shape {tuple(shapes[name])} in {path.name}, "
                             f"the graph's is {shape}", name.split(".", 1)[0])


def cmd_export(args) -> int:
    doc = load(args.file)
    out = Path(args.output) if args.output else default_output(args.file, args.target)
    if out.suffix != ".py":
        raise GraphError(f"-o: the output must be a .py file, got {str(out)!r}")
    out_dir = out.parent.resolve()
    doc_dir = Path(args.file).parent.resolve()
    data_dir = os.path.relpath(doc_dir, out_dir)
    weights_name = None
    if args.weights:
        weights = Path(args.weights)
        check_weights(weights, doc)
        weights_name = weights.name
    text = export_source(doc, args.target, weights_file=weights_name, data_dir=data_dir)
    if not out_dir.is_dir():
        raise GraphError(f"-o: folder {str(out.parent)!r} does not exist")
    if args.weights:
        target = out_dir / weights_name
        if not (target.exists() and os.path.samefile(target, args.weights)):
            shutil.copyfile(args.weights, target)
    atomic_write(out, text.encode("utf-8"))
    extra = f" (weights: {weights_name} beside it)" if weights_name else ""
    print(printable(f"wrote {out}{extra}"))
    return 0
