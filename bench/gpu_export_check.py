"""The torch export of a small convnet, trained on CUDA and on the CPU from the same start.

    python bench/gpu_export_check.py            # CUDA (if present) and CPU, a few hundred steps
    python bench/gpu_export_check.py --epochs 2 --cpu-only

Builds a convnet document (Conv2D, ReLU, MaxPool2D, Conv2D, ReLU, AvgPool2D, Flatten, Linear,
CrossEntropyLoss) over synthetic 1x12x12 images whose class is the quadrant holding a bright
blob, writes the data as an .npz beside the document, exports the document with
`wiregrad export --target torch`, and runs the exported script's `train_torch` twice with the
same seed and data: on CUDA and on the CPU. TF32 is switched off so both compute in float32.
Prints every epoch's loss on both devices, the largest loss difference, and the largest
difference between the trained parameters; exits 1 if the final losses differ by more than
1e-3 relative (float32 kernels on the two devices round differently, and a few hundred Adam
steps amplify that a little; a real bug gives differences of order 1).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def images(n: int, seed: int = 0) -> dict:
    """n noisy 1x12x12 images; class = the quadrant (0..3) with a bright 3x3 blob."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, size=(n, 1, 12, 12))
    y = rng.integers(0, 4, size=n)
    for i, c in enumerate(y):
        r0 = (c // 2) * 6 + rng.integers(0, 4)
        c0 = (c % 2) * 6 + rng.integers(0, 4)
        x[i, 0, r0:r0 + 3, c0:c0 + 3] += 1.5
    return {"x": x.astype(np.float32), "y": y.astype(np.int64)}


def convnet_document(epochs: int) -> dict:
    layers = [
        ("x", "Input", {"shape": [1, 12, 12]}),
        ("conv1", "Conv2D", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
        ("act1", "ReLU", {}),
        ("pool1", "MaxPool2D", {"kernel_size": 2}),
        ("conv2", "Conv2D", {"out_channels": 16, "kernel_size": 3}),
        ("act2", "ReLU", {}),
        ("pool2", "AvgPool2D", {"kernel_size": 2}),
        ("flat", "Flatten", {}),
        ("head", "Linear", {"out_features": 4}),
    ]
    nodes = [{"id": i, "type": t, "params": p} for i, t, p in layers]
    edges = [{"from": f"{a[0]}.y", "to": f"{b[0]}.x"} for a, b in itertools.pairwise(layers)]
    nodes += [{"id": "logits", "type": "Output"},
              {"id": "label", "type": "Input", "params": {"shape": [], "dtype": "int64"}},
              {"id": "ce", "type": "CrossEntropyLoss"}, {"id": "loss", "type": "Output"}]
    edges += [{"from": "head.y", "to": "logits.x"}, {"from": "head.y", "to": "ce.logits"},
              {"from": "label.y", "to": "ce.target"}, {"from": "ce.y", "to": "loss.x"}]
    return {
        "format": "wiregrad.graph", "version": 1, "name": "GPU check convnet",
        "graph": {"nodes": nodes, "edges": edges},
        "training": {
            "dataset": {"kind": "npz", "path": "quadrants.npz"},
            "feeds": {"x": "x", "label": "y"},
            "split": {"validation": 0.2, "seed": 0}, "loss": "loss",
            "metrics": [{"type": "accuracy", "pred": "logits", "target": "label"}],
            "optimizer": {"type": "adam", "lr": 0.003},
            "batch_size": 32, "epochs": epochs, "seed": 0,
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6, help="6 epochs = 300 steps")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args(argv)

    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    folder = Path(tempfile.mkdtemp(prefix="wg_gpu_check_"))
    np.savez(folder / "quadrants.npz", **images(args.n))
    doc_path = folder / "convnet.wg.json"
    doc_path.write_text(json.dumps(convnet_document(args.epochs), indent=1))
    out = folder / "convnet_torch.py"
    subprocess.run([sys.executable, "-m", "wiregrad.core.cli", "export", str(doc_path), "--target",
                    "torch", "-o", str(out)], check=True, cwd=ROOT)
    sys.path.insert(0, str(folder))
    import convnet_torch as exported

    devices = ["cpu"] if args.cpu_only or not torch.cuda.is_available() else ["cuda", "cpu"]
    if devices == ["cpu"] and not args.cpu_only:
        print("no CUDA device: running the CPU half only")
    if "cuda" in devices:
        print("CUDA device:", torch.cuda.get_device_name(0))
    runs = {}
    for device in devices:
        started = time.perf_counter()
        history, model = exported.train_torch(device=device, verbose=False)
        seconds = time.perf_counter() - started
        runs[device] = (history, exported.export_params(model.cpu()), seconds)
        steps = len(history) * int(np.ceil(args.n * 0.8 / 32))
        print(f"{device}: {steps} steps in {seconds:.1f} s; final loss {history[-1]['loss']:.6f}, "
              f"val_loss {history[-1]['val_loss']:.6f}, val_accuracy "
              f"{history[-1]['val_accuracy']:.3f}")
    if len(runs) < 2:
        return 0
    (h_gpu, p_gpu, _), (h_cpu, p_cpu, _) = runs["cuda"], runs["cpu"]
    print(f"{'epoch':>5} {'loss cuda':>12} {'loss cpu':>12} {'difference':>12}")
    worst = 0.0
    for a, b in zip(h_gpu, h_cpu):
        diff = abs(a["loss"] - b["loss"])
        worst = max(worst, diff / abs(b["loss"]))
        print(f"{a['epoch']:>5} {a['loss']:>12.6f} {b['loss']:>12.6f} {diff:>12.3g}")
    param_diff = max(float(np.max(np.abs(p_gpu[k] - p_cpu[k]))) for k in p_cpu)
    final = abs(h_gpu[-1]["loss"] - h_cpu[-1]["loss"]) / abs(h_cpu[-1]["loss"])
    print(f"largest relative loss difference {worst:.3g}; final {final:.3g}; "
          f"largest parameter difference {param_diff:.3g}")
    return 0 if final <= 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
