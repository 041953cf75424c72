"""How closely each export computes what the engine computes, for every example.

    python -m bench.export_parity [--batch 8] [--seed 3]

For each document in assets/examples: the engine's outputs (core.compile(doc, "float32").run)
on `batch` rows of the example's own data and the parameters init_params(seed), against the
same outputs from the numpy export (export_source(doc, "numpy")), the torch export (its Model,
on the CPU) and the ONNX export (export_onnx, run by onnxruntime's CPU provider), all in
float32. Prints, per example and target, the largest absolute difference over all outputs
(and, in brackets, that difference over the outputs' largest magnitude); "-" where a target's
package is not installed, the error's first line where an export is refused. A figure, not a
test: tests/test_export*.py hold the bounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np
from wiregrad.core.datasets import load_dataset
from wiregrad.core.export import export_source
from wiregrad.core.export.loading import import_text as load_module
from wiregrad.core.export.onnx_target import export_onnx

from wiregrad import core

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def example_feeds(doc, program, path: Path, batch: int) -> dict:
    """`batch` rows spread over the example's own data (valid trees, step counts)."""
    if doc.training is None:
        rng = np.random.default_rng(0)
        return {name: rng.standard_normal([batch] + [4 if d is None else d for d in shape[1:]])
                for name, shape in program.input_shapes.items()}
    arrays = load_dataset(doc.training["dataset"], path.parent).arrays
    names = doc.training.get("feeds", {})
    rows = np.linspace(0, len(next(iter(arrays.values()))) - 1, batch).astype(np.int64)
    return {name: arrays[names.get(name, name)][rows] for name in program.input_shapes}


def typed(program, feeds: dict) -> dict:
    return {name: np.asarray(value, dtype=np.int64 if program.input_dtypes[name] == "int64"
                             else np.float32) for name, value in feeds.items()}


def run_numpy(doc, params, feeds, folder):
    module = load_module(export_source(doc, "numpy", dtype="float32"), folder, "parity_np")
    return module.forward(params, feeds)


def run_torch(doc, params, feeds, folder):
    import torch

    module = load_module(export_source(doc, "torch"), folder, "parity_torch")
    model = module.Model().to(torch.float32)
    module.load_params(model, params)
    model.eval()
    with torch.no_grad():
        got = model(**{name: torch.as_tensor(value) for name, value in feeds.items()})
    return {name: value.numpy() for name, value in got.items()}


def run_onnx(doc, params, feeds, folder):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(export_onnx(doc, params=params), options,
                                   providers=["CPUExecutionProvider"])
    names = [out.name for out in session.get_outputs()]
    args = {arg.name: feeds[arg.name] for arg in session.get_inputs()}
    return dict(zip(names, session.run(names, args)))


TARGETS = {"numpy": (None, run_numpy), "torch": ("torch", run_torch),
           "onnx": ("onnxruntime", run_onnx)}


def difference(expected: dict, got: dict) -> str:
    worst, scale = 0.0, 0.0
    for name, value in expected.items():
        value = np.asarray(value, dtype=np.float64)
        if value.size:
            worst = max(worst, float(np.max(np.abs(value - np.asarray(got[name])))))
            scale = max(scale, float(np.max(np.abs(value))))
    return f"{worst:.2e} ({worst / scale if scale else 0.0:.1e})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="rows of data per example")
    parser.add_argument("--seed", type=int, default=3, help="init_params seed")
    args = parser.parse_args(argv)
    print(f"{'example':<20}" + "".join(f"{name:>22}" for name in TARGETS))
    with tempfile.TemporaryDirectory() as folder:
        for path in sorted(EXAMPLES.glob("*.wg.json")):
            doc = core.load(path)
            program = core.compile(doc, "float32")
            params = program.init_params(args.seed)
            feeds = typed(program, example_feeds(doc, program, path, args.batch))
            expected = program.run(params, feeds)
            cells = []
            for package, run in TARGETS.values():
                if package is not None and importlib.util.find_spec(package) is None:
                    cells.append("-")
                    continue
                try:
                    cells.append(difference(expected, run(doc, params, feeds, Path(folder))))
                except core.GraphError as exc:
                    cells.append(str(exc).splitlines()[0][:22])
            print(f"{path.name.split('.')[0]:<20}" + "".join(f"{c:>22}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
