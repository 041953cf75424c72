"""The parts of an exported module that load weights and train (run as a script).

Data, metrics and (numpy target) the optimizer are the engine's own code, copied
(copying.py): the dataset generators from core.generators, the readers, split_rows and batches
from core.datasets,
the metrics from core.metrics, the optimizers and schedules from core.optim. What only a
script needs (its training loop, reading weights, main) is in runtime.py and runtime_torch.py.
So an exported numpy script reads, splits, batches and updates exactly as the engine's
trainer does, to the bit.

A torch script also says whether a training step can leave a weight without a gradient, which
DistributedDataParallel must be told: the export decides it from the graph
(unused_weights_reason).
"""

from __future__ import annotations

import inspect
import os
import textwrap

from .. import datasets, generators, metrics, npz, optim
from ..codegen.layout import CONTROL, Gradients
from ..codegen.writer import Writer, data_literal
from ..errors import GraphError
from ..trainer import eval_rows
from ..training_section import filled, read
from . import runtime, runtime_torch
from .common import init_code
from .copying import Copies

FILE_READERS = {"csv": "csv_arrays", "npz": "npz_arrays", "npy": "npy_arrays"}


def source_of(obj) -> str:
    return textwrap.dedent(inspect.getsource(obj)).rstrip() + "\n"


def plan_of(doc):
    """The checked training section with its defaults written in (the script has none of its
    own: training_section.py owns them), or None if the document has none."""
    if doc.training is None:
        return None
    read(doc)
    spec = doc.training["dataset"]
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in generators.GENERATORS and kind not in FILE_READERS and \
            kind not in datasets.BUNDLED:
        raise GraphError(f"training.dataset: unknown kind {kind!r}")
    if kind in generators.GENERATORS:
        # settings reach the script as escaped literals (a name like `of` as a string)
        bad = [k for k, v in spec.items() if k != "kind" and (
            isinstance(v, bool) or not isinstance(v, (int, float, str)))]
        if bad:
            raise GraphError(f"training.dataset: {bad[0]!r} must be a number or a name")
    return filled(doc.training)


def data_code(copies: Copies, training: dict, doc) -> list:
    """The engine's data code the script runs, and make_dataset(spec) for the document's kind."""
    spec = training["dataset"]
    kind = spec["kind"]
    if kind in generators.GENERATORS:
        copies.add(generators, kind)
    elif kind == "digits":
        copies.add(datasets, "digits_arrays")
    else:
        copies.add(datasets, FILE_READERS[kind])
    copies.add(datasets, "split_rows")
    copies.add(datasets, "batches")
    names = list(dict.fromkeys(m["type"] for m in training["metrics"]))
    for name in names:
        copies.add(metrics, name)
    w = Writer()
    w.line("def make_dataset(spec):")
    if kind in generators.GENERATORS:
        w.line(f"    \"\"\"The document's dataset: the {kind} generator.\"\"\"")
        w.line("    options = {k: v for k, v in spec.items() if k != \"kind\"}")
        w.line(f"    return {kind}(**options)")
    elif kind == "digits":
        # Wiregrad's own copy of the digits, found from the document's folder as from any
        # dataset file (an absolute path for a document never saved).
        folder = getattr(doc, "folder", None)
        path = os.path.relpath(datasets.DIGITS_FILE, folder) if folder else datasets.DIGITS_FILE
        w.line("    \"\"\"The document's dataset: Wiregrad's 8x8 handwritten digits.\"\"\"")
        w.line(f"    path = os.path.join(HERE, DATA_DIR, {data_literal(path)})")
        w.line("    return digits_arrays(path, \"digits.npz\")")
    else:
        w.line(f"    \"\"\"The document's dataset: a {kind} file, relative to the document.\"\"\"")
        w.line("    path = os.path.join(HERE, DATA_DIR, spec[\"path\"])")
        if kind == "csv":
            w.line("    return csv_arrays(path, spec.get(\"columns\"), spec.get(\"delimiter\", \",\"), "
                   "spec[\"path\"])[0]")
        elif kind == "npz":
            w.line("    return npz_arrays(path, spec[\"path\"])[0]")
        else:
            w.line("    return npy_arrays(path, spec.get(\"name\", \"x\"), spec[\"path\"])[0]")
    metric_table = "METRICS = {" + ", ".join(f"\"{n}\": {n}" for n in names) + "}\n"
    return [w.text(), metric_table]


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
        rows = eval_rows(read(program.doc), program.compiler)
        why = "results depend on the batch" if program.compiler.batch_level else "any grouping"
        w.line(f"EVAL_BATCH = {rows}  # rows per evaluation pass ({why})")
    return w.text()


def numpy_parts(program, weights_file, data_dir) -> list:
    """Everything after the graph's functions: settings, weights, data, training, main."""
    training = plan_of(program.doc)
    parts = [settings(program, weights_file, data_dir, training)]
    parts.append(source_of(runtime.weights_path))
    parts.append(source_of(runtime.load_weights))
    copies = Copies()
    copies.add(npz, "load_arrays")  # weights are read by the engine's own checked reader
    if training is None:
        return parts + copies.parts
    own = data_code(copies, training, program.doc)
    copies.add(optim, "make_optimizer")
    parts.extend(copies.parts)
    parts.extend(own)
    for name in ("feeds_from", "evaluate", "train", "main"):
        parts.append(source_of(getattr(runtime, name)))
    parts.append("if __name__ == \"__main__\":\n    sys.exit(main())\n")
    return parts


TORCH_COMMON = ("make_torch_optimizer", "to_device", "process_ranks", "per_process_batch",
                "join_processes", "sum_over_processes", "rank_rows", "evaluate_torch",
                "train_epoch", "share_buffers", "leave_processes", "train_torch", "export_params", "main")


class StepGradients(Gradients):
    """Which values a training step's backward reaches, as autograd sees it: unlike the
    written-out backward (which gives every result of a block a gradient, zeros where the
    caller has none), a block's results the caller does not use reach nothing."""

    def _control(self, site, node, got):
        if node.type != "Block":
            return super()._control(site, node, got)
        body = self.program.bodies(site, node)["definition"]
        args = self.run(body, {o.id: bool(got.get(o.id)) for o in body.outputs()})
        return [k for k, v in args.items() if v]


def holds_weights(layout, site) -> bool:
    """Whether a graph, or a body inside it, has weights."""
    return any(layout.weights(site, node) or (node.type in CONTROL and any(
        holds_weights(layout, body) for body in layout.bodies(site, node).values()))
        for node in site.order)


def sites_nodes(layout, site):
    """(site, node) of every node of a graph and of the bodies inside it."""
    for node in site.order:
        yield site, node
        if node.type in CONTROL:
            for body in layout.bodies(site, node).values():
                yield from sites_nodes(layout, body)


def unused_weights_reason(layout, loss: str) -> str | None:
    """Why a training step may leave a weight without a gradient, or None when every step
    reaches every weight. DDP must be told of the first (find_unused_parameters), and then
    walks the autograd graph after every forward; told without need, it warns at every run.
    A scalar Branch runs one side, a route Branch skips a side no sample takes, a repeat Loop
    of 0 steps never runs its body, and a weight may not lead to the loss at all."""
    for site, node in sites_nodes(layout, layout.top):
        p = site.params[node.id]
        skips = (node.type == "Branch" and p["mode"] in ("scalar", "route")) or (
            node.type == "Loop" and p["mode"] == "repeat" and p["count"] == 0)
        if skips and any(holds_weights(layout, body)
                         for body in layout.bodies(site, node).values()):
            return ("a scalar or route Branch, or an empty Loop, can leave weights out of "
                    "a step")
    gradients = StepGradients(layout, layout.carries)
    gradients.run(layout.top, {loss: True})
    shared, reached = layout.compiler.shared, set()
    for site, node in sites_nodes(layout, layout.top):
        if gradients.active.get((site.path, node.id)):
            for name in layout.weights(site, node):
                full = f"{site.path}{node.id}.{name}"
                reached.add(shared.get(full, full))
    if set(layout.weight_names) - reached:
        return "some weights do not lead to the loss"
    return None


def ddp_setting(layout, loss: str) -> str:
    """FIND_UNUSED_PARAMETERS for DistributedDataParallel, with why (fixed text only)."""
    why = unused_weights_reason(layout, loss)
    if why is None:
        return ("FIND_UNUSED_PARAMETERS = False  # DDP: every training step reaches every "
                "weight\n")
    return f"FIND_UNUSED_PARAMETERS = True  # DDP: {why}\n"


def torch_parts(exporter) -> list:
    """A torch module's training half: engine-equal initial values, data, torch.optim loop."""
    program = exporter.layout
    training = plan_of(program.doc)
    parts = [settings(program, exporter.weights_file, exporter.data_dir, training)
             + f"DTYPE = \"{program.dtype}\"  # numpy dtype of initial values and data\n"]
    parts.append(init_code(program))
    parts.append(source_of(runtime.weights_path))
    parts.append(source_of(runtime.load_weights))
    copies = Copies()
    copies.add(npz, "load_arrays")  # weights are read by the engine's own checked reader
    if training is None:
        return parts + copies.parts
    parts[0] += ddp_setting(program, training["loss"])
    own = data_code(copies, training, program.doc)
    parts.extend(copies.parts)
    parts.extend(own)
    parts.append(source_of(runtime.feeds_from))
    for name in TORCH_COMMON:
        parts.append(source_of(getattr(runtime_torch, name)))
    parts.append("if __name__ == \"__main__\":\n    sys.exit(main())\n")
    return parts
