"""The parts of an exported module that load weights and train (run as a script).

The code is copied from core/export/runtime.py (and, for a generated dataset, the generator
itself from core/datasets.py), so an exported script reads, splits, batches and updates
exactly as the engine's trainer does.
"""

from __future__ import annotations

import inspect
import textwrap

from .. import datasets
from ..errors import GraphError
from ..trainer import read_plan
from . import runtime, runtime_torch
from .common import init_code
from ..codegen.writer import Writer, data_literal

GENERATOR_HELPERS = {
    "spiral": (), "moons": (), "circles": (), "xor": (), "sine": (),
    "seq_sum": ("_lengths", "_step_mask", "_sequences"),
    "seq_parity": ("_lengths", "_step_mask", "_sequences"),
    "copy_first": ("_lengths", "_step_mask", "_sequences"),
}
FILE_READERS = {
    "csv": ("looks_numeric", "class_ids", "read_csv"),
    "npz": ("text_to_ids", "read_npz"),
    "npy": ("text_to_ids", "read_npy"),
}
COMMON = ("split_rows", "batches", "feeds_from", "Adam", "SGD", "clip_grad_norm", "next_lr",
          "make_optimizer", "evaluate", "train")


def source_of(obj) -> str:
    return textwrap.dedent(inspect.getsource(obj)).rstrip() + "\n"


def plan_of(doc):
    """The checked training section, or None if the document has none."""
    if doc.training is None:
        return None
    read_plan(doc)
    spec = doc.training["dataset"]
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in datasets.GENERATORS and kind not in FILE_READERS:
        raise GraphError(f"training.dataset: unknown kind {kind!r}")
    if kind in datasets.GENERATORS:
        bad = [k for k, v in spec.items() if k != "kind" and (
            isinstance(v, bool) or not isinstance(v, (int, float)))]
        if bad:
            raise GraphError(f"training.dataset: {bad[0]!r} must be a number")
    return doc.training


def dataset_code(spec: dict) -> list:
    """Source parts that define make_dataset(spec) for this dataset kind."""
    kind = spec["kind"]
    parts = []
    if kind in datasets.GENERATORS:
        parts.append("class DataError(ValueError):\n    \"\"\"Bad generator settings.\"\"\"\n")
        for name in ("_int", "_float", "_rng", *GENERATOR_HELPERS[kind]):
            parts.append(source_of(getattr(datasets, name)))
        parts.append(source_of(datasets.GENERATORS[kind]))
        w = Writer()
        w.line("def make_dataset(spec):")
        w.line(f"    \"\"\"The document's dataset: the {kind} generator.\"\"\"")
        w.line("    options = {k: v for k, v in spec.items() if k != \"kind\"}")
        w.line(f"    return {kind}(**options)")
        parts.append(w.text())
        return parts
    for name in FILE_READERS[kind]:
        parts.append(source_of(getattr(runtime, name)))
    w = Writer()
    w.line("def make_dataset(spec):")
    w.line(f"    \"\"\"The document's dataset: a {kind} file, relative to the document.\"\"\"")
    w.line("    path = os.path.join(HERE, DATA_DIR, spec[\"path\"])")
    if kind == "csv":
        w.line("    return read_csv(path, spec.get(\"columns\"), spec.get(\"delimiter\", \",\"))")
    elif kind == "npz":
        w.line("    return read_npz(path)")
    else:
        w.line("    return read_npy(path, spec.get(\"name\", \"x\"))")
    parts.append(w.text())
    return parts


def settings(program, weights_file, data_dir, training) -> str:
    """Module constants the copied functions read."""
    w = Writer()
    w.line("HERE = os.path.dirname(os.path.abspath(__file__))")
    w.line(f"WEIGHTS_FILE = {data_literal(weights_file)}  # trained weights beside this file")
    if training is not None:
        w.line(f"DATA_DIR = {data_literal(data_dir or '.')}  # dataset paths are relative to it")
        inputs = {name: ("int64" if t.dtype == "int64" else "float")
                  for name, t in program.input_types.items()}
        w.line(f"INPUTS = {data_literal(inputs)}")
        w.line("# The document's training section.")
        w.line(f"TRAINING = {data_literal(training)}")
    return w.text()


def metric_code(training: dict) -> list:
    """The metric functions the training section uses, and the METRICS table naming them."""
    names = list(dict.fromkeys(m["type"] for m in training.get("metrics", [])))
    parts = [source_of(getattr(runtime, name)) for name in names]
    parts.append("METRICS = {" + ", ".join(f"\"{n}\": {n}" for n in names) + "}\n")
    return parts


def numpy_parts(program, weights_file, data_dir) -> list:
    """Everything after the graph's functions: settings, weights, data, training, main."""
    training = plan_of(program.doc)
    parts = [settings(program, weights_file, data_dir, training)]
    parts.append(source_of(runtime.weights_path))
    parts.append(source_of(runtime.load_weights))
    if training is None:
        return parts
    parts.extend(dataset_code(training["dataset"]))
    parts.extend(metric_code(training))
    for name in COMMON:
        parts.append(source_of(getattr(runtime, name)))
    parts.append(source_of(runtime.main))
    parts.append("if __name__ == \"__main__\":\n    sys.exit(main())\n")
    return parts


TORCH_COMMON = ("make_torch_optimizer", "to_device", "evaluate_torch", "train_torch",
                "export_params", "main")


def torch_parts(exporter) -> list:
    """A torch module's training half: engine-equal initial values, data, torch.optim loop."""
    program = exporter.layout
    training = plan_of(program.doc)
    parts = [settings(program, exporter.weights_file, exporter.data_dir, training)
             + "DTYPE = \"float32\"  # numpy dtype of initial values and data\n"]
    parts.append(init_code(program))
    parts.append(source_of(runtime.weights_path))
    parts.append(source_of(runtime.load_weights))
    if training is None:
        return parts
    parts.extend(dataset_code(training["dataset"]))
    parts.extend(metric_code(training))
    for name in ("split_rows", "batches", "feeds_from"):
        parts.append(source_of(getattr(runtime, name)))
    for name in TORCH_COMMON:
        parts.append(source_of(getattr(runtime_torch, name)))
    parts.append("if __name__ == \"__main__\":\n    sys.exit(main())\n")
    return parts
