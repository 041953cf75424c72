"""`wiregrad export FILE --target numpy|torch|onnx [-o OUT.py|OUT.onnx] [--weights W.npz]`.

Writes one standalone Python module. With `--weights`, the trained weights are copied beside
the module and the module loads them from there (never as inline arrays). Problems are
GraphErrors, which the command line prints as one line each.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .codegen.layout import Layout
from .errors import GraphError
from .export import export_source
from .fileio import atomic_write, load
from .npz import load_arrays
from .terminal import printable


def default_output(doc_path: str, target: str) -> Path:
    """Beside the document, named so that it can be imported: `models/spiral-mlp.wg.json` ->
    `models/spiral_mlp_numpy.py` (`_torch.py`, or `spiral_mlp.onnx`)."""
    stem = Path(doc_path).name
    for suffix in (".wg.json", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = re.sub(r"\W", "_", stem, flags=re.ASCII) or "graph"
    if stem[0].isdigit():
        stem = "graph_" + stem
    folder = Path(doc_path).parent
    if target == "onnx":
        return folder / f"{stem}.onnx"
    return folder / f"{stem}_{target}.py"


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
    if args.target == "onnx":
        return cmd_export_onnx(args, doc, out)
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
            # Through atomic_write, so a full disk is named and a crash leaves no half file.
            atomic_write(target, Path(args.weights).read_bytes())
    atomic_write(out, text.encode("utf-8"))
    extra = f" (weights: {weights_name} beside it)" if weights_name else ""
    print(printable(f"wrote {out}{extra}"))
    return 0


def cmd_export_onnx(args, doc, out: Path) -> int:
    """An ONNX model of the forward pass (docs/onnx.md): the weights are inside it, from
    --weights, else the document's initial ones (init_params(seed=0))."""
    from .export.onnx_target import export_onnx

    if out.suffix != ".onnx":
        raise GraphError(f"-o: the output must be a .onnx file, got {str(out)!r}")
    if not out.parent.resolve().is_dir():
        raise GraphError(f"-o: folder {str(out.parent)!r} does not exist")
    params = None
    if args.weights:
        weights = Path(args.weights)
        check_weights(weights, doc)
        params = load_arrays(weights, f"--weights {weights}")
    export_onnx(doc, out, params=params)
    print(printable(f"wrote {out}"))
    return 0
