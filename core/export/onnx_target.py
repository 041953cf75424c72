"""The ONNX target: `export_onnx(doc)` returns an ONNX model of the document's forward pass.

What the model is (docs/onnx.md):

- its inputs are the top-level Inputs the chosen Outputs depend on, named by their ids, with
  a symbolic `batch` length first and a symbolic length for each length the document leaves
  open; int64 Inputs stay int64;
- its outputs are the top-level Outputs, named by their ids: all of them by default (losses
  too, so the target Inputs are inputs of the model), or those named in `outputs` (say, the
  predictions alone, which then need no targets);
- the parameters are initializers named as the engine names them (`hidden.weight`), with the
  buffers (BatchNorm's running statistics); the model computes what the engine's
  `Program.run(params, feeds)` computes, that is inference: Dropout passes its input through
  and BatchNorm uses its running statistics;
- loops are ONNX `Loop`s and branches `If`s (or `Where`s), never unrolled: onnx_flow.py.

It uses opset 18 (IR version 8), which onnxruntime 1.14 and later run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..codegen.layout import Layout
from ..errors import GraphError
from ..fileio import atomic_write
from .onnx_builder import (
    IR_VERSION,
    OPSET,
    ModelBuilder,
    OnnxGraph,
    elem_type,
    helper,
    onnx,
    require_onnx,
    value_info,
)
from .onnx_graph import OnnxWriter


def export_onnx(doc, path=None, params: dict | None = None, dtype: str = "float32",
                outputs=None) -> bytes:
    """The serialized ONNX model (a ModelProto's bytes) of `doc`'s forward pass, also written
    to `path` (atomically) when given. `params` defaults to the document's initial parameters
    (`init_params(seed=0)`); `outputs` names the Outputs to give (default: all of them).

    Raises GraphError for a document that does not compile, a node type with no ONNX rule, or
    a per-sample construct ONNX cannot express, naming the node."""
    require_onnx()
    if dtype not in ("float32", "float64"):
        raise GraphError(f"dtype must be float32 or float64, got {dtype}")
    layout = Layout.of(doc, dtype)
    params = _params(doc, layout, params, dtype)
    model = ModelBuilder(dtype, params)
    top = layout.top
    wanted = _outputs(top, outputs)
    keep = layout.ancestors(top, wanted)
    for name in [n.id for n in top.inputs()] + wanted:
        model.names.reserve(name)

    graph = OnnxGraph(model, "wiregrad")
    writer = OnnxWriter(layout, model)
    args = {}
    for node in top.inputs():
        if node.id in keep:
            t = layout.input_types[node.id]
            dims = ["batch"] + [d if d is not None else f"{node.id}_{axis}"
                                for axis, d in enumerate(t.shape[1:], start=1)]
            graph.inputs.append(value_info(node.id, elem_type(_word(t), dtype), dims))
            args[node.id] = node.id
    with writer.in_graph(graph):
        got = writer.walk(top, args, keep)
        for name in wanted:
            t = layout.output_types[name]
            graph.add_node(helper.make_node("Identity", [got[name]], [name],
                                            name=model.names.new(f"{name}/Identity")))
            graph.outputs.append(value_info(name, elem_type(_word(t), dtype),
                                            [d for d in t.shape]))
    proto = helper.make_model(graph.proto(model.initializers), producer_name="wiregrad",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    if doc.name:
        proto.doc_string = str(doc.name)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    if path is not None:
        atomic_write(Path(path), data)
    return data


def _word(t) -> str:
    return "int64" if t.dtype == "int64" else "float"


def _outputs(top, outputs) -> list:
    names = [o.id for o in top.outputs()]
    if outputs is None:
        return names
    wanted = [outputs] if isinstance(outputs, str) else list(outputs)
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise GraphError(f"no Output named {unknown[0]!r} (Outputs: {', '.join(names)})")
    return wanted


def _params(doc, layout: Layout, params: dict | None, dtype: str) -> dict:
    """The parameter values, checked against the program's tensors."""
    if params is None:
        from ..program import Program

        return Program(doc, layout.compiler).init_params(0)
    names = [name for name, _ in layout.tensors]
    missing = [name for name in names if name not in params]
    if missing:
        raise GraphError(f"params lack {', '.join(missing)}", missing[0].split(".", 1)[0])
    out = {}
    for name, spec in layout.tensors:
        value = np.asarray(params[name], dtype=dtype)
        if value.shape != tuple(spec.shape):
            raise GraphError(f"parameter {name} has shape {value.shape}, the program wants "
                             f"{tuple(spec.shape)}", name.split(".", 1)[0])
        out[name] = value
    return out


__all__ = ["export_onnx"]
