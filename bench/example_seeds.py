"""How robust each example is: its target figure after training with seeds 0-4, in the engine
and in the torch export (float32).

    python -m bench.example_seeds [EXAMPLE ...] [--seeds 0 1 2 3 4] [--engine-only]
                                  [--torch-only] [--json FILE]

EXAMPLE is a file name in assets/examples/ with or without `.wg.json` (default: every example
with a target in tests/test_examples.py). The seed is the training seed (`wiregrad train
--seed`, the exported script's `--seed`): it draws the initial parameters, the shuffling and
dropout; the dataset and its split keep the document's own seeds. The engine runs
`core.train(doc, seed=S)`; the torch export is `export_source(doc, "torch")` trained by its
own `train_torch(seed=S, device="cpu")` in float32, the loop the exported script runs.

Prints a markdown table: per example and seed, the last epoch's target figure, marked `*`
where it misses the target, and how long each run took. Without torch the export columns
show "-". A script, not a test: tests/test_examples.py trains the cheap ones on a few seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

from wiregrad.core.export import export_source
from wiregrad.core.export.loading import import_text as load_module

from wiregrad import core

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
# name -> (figure, "min" or "max", bound): the targets tests/test_examples.py checks too
TARGETS = {name: (t["figure"], t["sense"], t["bound"]) for name, t in json.loads(
    (EXAMPLES_DIR / "targets.json").read_text(encoding="utf-8")).items() if name != "_about"}


def meets(name: str, value: float) -> bool:
    _, sense, bound = TARGETS[name]
    return value >= bound if sense == "min" else value < bound


def engine_figure(name: str, seed: int) -> float:
    path = EXAMPLES_DIR / name
    result = core.train(core.load(path), seed=seed, base_dir=str(path.parent))
    return float(result.final()[TARGETS[name][0]])


def torch_figure(name: str, seed: int, folder: Path) -> float:
    path = EXAMPLES_DIR / name
    doc = core.load(path)
    module = load_module(export_source(doc, "torch", data_dir=str(path.parent.resolve())),
                         folder, f"wg_seeds_{time.monotonic_ns()}")
    with contextlib.redirect_stdout(io.StringIO()):
        history, _ = module.train_torch(seed=seed, device="cpu", verbose=False,
                                        dtype_name="float32")
    return float(history[-1][TARGETS[name][0]])


def cell(name: str, value: float | None, seconds: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}{'' if meets(name, value) else '*'} ({seconds:.0f} s)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", nargs="*")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--engine-only", action="store_true")
    parser.add_argument("--torch-only", action="store_true")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    names = [n if n.endswith(".wg.json") else f"{n}.wg.json" for n in args.examples] or sorted(
        TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"no target for {', '.join(unknown)} (see tests/test_examples.py)")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    runners = []
    if not args.torch_only:
        runners.append(("engine", engine_figure))
    if not args.engine_only:
        runners.append(("torch", torch_figure if torch is not None else None))

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for kind, run in runners:
                for seed in args.seeds:
                    if run is None:
                        results[name, kind, seed] = (None, None)
                        continue
                    started = time.perf_counter()
                    value = (run(name, seed) if kind == "engine"
                             else run(name, seed, Path(tmp)))
                    seconds = time.perf_counter() - started
                    results[name, kind, seed] = (value, seconds)
                    print(f"{name} {kind} seed {seed}: {value:.4g} ({seconds:.1f} s)",
                          flush=True)

    print()
    print("| example | target | run | " + " | ".join(f"seed {s}" for s in args.seeds) + " |")
    print("|---|---|---|" + "---|" * len(args.seeds))
    for name in names:
        figure, sense, bound = TARGETS[name]
        target = f"{figure} {'>=' if sense == 'min' else '<'} {bound}"
        for kind, _ in runners:
            cells = [cell(name, *results[name, kind, s]) for s in args.seeds]
            print(f"| {name.removesuffix('.wg.json')} | {target} | {kind} | "
                  + " | ".join(cells) + " |")
    missed = [k for k, (v, _) in results.items() if v is not None and not meets(k[0], v)]
    print(f"\n{len(missed)} of {sum(v is not None for v, _ in results.values())} runs miss "
          "their target (marked *)")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"example": n, "run": k, "seed": s, "value": v, "seconds": t}
             for (n, k, s), (v, t) in results.items()], indent=1), encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
