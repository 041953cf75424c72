"""What a model makes of sequences: the data the sequence data view draws (seqview.py).

A sequence task feeds an Input of shape (B, steps, features) and predicts one thing for the
whole sequence: a number (regression: a sum, the adding problem) or a class (the parity of a
bit string). `find_sequence_view` recognises one from the training section and the program;
`picture` computes, for one example, the prediction after each step (the model run on the
first t steps, for t = 1 .. the length: what it would say if the sequence ended there) and,
over the validation sequences, each prediction against its target.

Pure numpy and core: it runs in a background thread, never in the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.errors import GraphError

MAX_SAMPLES = 400   # sequences in the prediction-vs-target scatter
CHUNK = 200         # rows per run for the scatter


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(z, nan=0.0, posinf=50.0, neginf=-50.0)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def class_probs(scores: np.ndarray) -> np.ndarray:
    """Class probabilities from a model's scores: (N, C) logits, or (N, 1) for two classes."""
    scores = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    if scores.shape[1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-np.clip(scores[:, 0], -50, 50)))
        return np.stack([1 - p1, p1], axis=1)
    return _softmax(scores)


def find_sequence_view(plan, program, feeds: dict) -> dict | None:
    """{"mode": "seq_regress" | "seq_classify", "input", "output", "target", "prefixes"} (and
    "classes" for classification) when
    the run learns one prediction per sequence from a (B, steps, features) Input alone, else
    None. `prefixes`: the Input takes any number of steps, so a sequence's first t steps can be
    run on their own."""
    def needs_only(output, input_id):
        try:
            return list(program.schedule((output,)).arg_names) == [input_id]
        except GraphError:
            return False

    sequences = [i for i in feeds if program.input_dtypes.get(i) != "int64"
                 and len(program.input_shapes.get(i, ())) == 3]
    candidates = [(m.get("pred"), m.get("target"), m.get("type")) for m in plan.metrics]
    candidates += [(o, t, None) for o in program.output_shapes if o != plan.loss
                   for t in feeds]
    for input_id in sequences:
        for output, target, kind in candidates:
            if output not in program.output_shapes or target not in feeds or target == input_id:
                continue
            if not needs_only(output, input_id):
                continue
            out_shape = tuple(program.output_shapes[output])
            target_shape = tuple(program.input_shapes[target])
            spec = {"input": input_id, "output": output, "target": target,
                    "prefixes": program.input_shapes[input_id][1] is None}
            if program.input_dtypes.get(target) == "int64":
                if len(out_shape) == 2 and len(target_shape) == 1 and kind in (None, "accuracy"):
                    classes = out_shape[1] if out_shape[1] and out_shape[1] > 1 else 2
                    return dict(spec, mode="seq_classify", classes=classes)
            elif len(out_shape) == 2 and out_shape[1:] == target_shape[1:] \
                    and kind in (None, "mse", "mae"):
                return dict(spec, mode="seq_regress")
    return None


@dataclass
class Picture:
    """One example sequence and what the model says of it, and of the validation sequences.

    `after`: the prediction after each step, (steps, outputs) for regression or class
    probabilities (steps, classes) for classification (None when the Input takes only whole
    sequences: then `final` alone); `scatter`: (predictions, targets) over many sequences,
    the first output of each (regression)."""

    mode: str
    row: int
    rows: int
    sequence: np.ndarray              # (steps, features)
    target: np.ndarray                # the example's target (a vector, or a class id)
    final: np.ndarray                 # the prediction on the whole sequence
    after: np.ndarray | None = None
    scatter: tuple | None = None
    accuracy: float | None = None     # classification: over the validation sequences


def picture(program, params: dict, spec: dict, feeds: dict, row: int) -> Picture:
    """Run the model on example `row` of `feeds` (and its prefixes), and on up to
    MAX_SAMPLES sequences for the scatter."""
    seqs, targets = feeds[spec["input"]], feeds[spec["target"]]
    rows = len(seqs)
    row = min(max(int(row), 0), rows - 1)
    run = _runner(program, params, spec)
    sequence = np.asarray(seqs[row:row + 1])
    final = run(sequence)[0]
    after = None
    if spec["prefixes"]:
        after = np.stack([run(sequence[:, :t])[0] for t in range(1, sequence.shape[1] + 1)])
    classify = spec["mode"] == "seq_classify"
    shown = min(rows, MAX_SAMPLES)
    preds = np.concatenate([run(seqs[i:i + CHUNK]) for i in range(0, shown, CHUNK)])
    out = Picture(spec["mode"], row, rows, np.asarray(seqs[row], dtype=np.float64),
                  np.asarray(targets[row]), final, after)
    if classify:
        out.final = class_probs(final[None])[0]
        out.after = None if after is None else class_probs(after)
        truth = np.asarray(targets[:shown]).reshape(-1)
        out.accuracy = float(np.mean(class_probs(preds).argmax(axis=1) == truth))
    else:
        truth = np.asarray(targets[:shown], dtype=np.float64).reshape(shown, -1)
        out.scatter = (preds.reshape(shown, -1)[:, 0], truth[:, 0])
    return out


def _runner(program, params: dict, spec: dict):
    def run(batch):
        value = program.run(params, {spec["input"]: batch}, train=False,
                            outputs=[spec["output"]])[spec["output"]]
        return np.asarray(value, dtype=np.float64)
    return run


def fit_figures(pred: np.ndarray, target: np.ndarray) -> dict:
    """How close predictions are to targets: mean absolute error and r² (1: perfect)."""
    ok = np.isfinite(pred) & np.isfinite(target)
    pred, target = pred[ok], target[ok]
    if not pred.size:
        return {"mae": float("nan"), "r2": float("nan"), "n": 0}
    spread = float(np.sum((target - target.mean()) ** 2))
    r2 = 1.0 - float(np.sum((pred - target) ** 2)) / spread if spread > 0 else float("nan")
    return {"mae": float(np.mean(np.abs(pred - target))), "r2": r2, "n": int(pred.size)}
