"""`wiregrad train FILE [--weights W.npz]`: train headless with a progress bar, then write what
was learned: the last weights (`weights.npz`), the weights of the epoch with the lowest
validation loss (`best.npz`; the last epoch's without a validation set), the history and a plot.
`--weights` starts from saved weights instead of the initial ones (a run picks up where another
ended).

On a terminal the progress bar redraws one line (epoch, step, loss, val loss, steps/s, ETA);
otherwise a line when training starts and one per epoch. Ctrl+C stops after the current step,
or inside it at the next step of a loop (the interrupted step is discarded), and the weights,
history and plot are still written. A NaN stops training too: the last good weights are
written and the error names the node.
"""

from __future__ import annotations

import csv
import io
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

from .allocator import keep_freed_memory
from .errors import GraphError
from .fileio import atomic_write, load
from .npz import load_arrays, save_arrays
from .terminal import printable
from .trainer import Session, TrainingError, run_session


def cmd_train(args) -> int:
    # Process-wide, so here at the process's entry rather than in the library (allocator.py).
    keep_freed_memory()
    doc = load(args.file)
    start = starting_weights(args.weights, doc) if getattr(args, "weights", None) else None
    session = Session(doc, epochs=args.epochs, seed=args.seed, params=start)
    for warning in session.program.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    out_dir = Path(args.out) if args.out else Path(args.file).resolve().parent / (
        Path(args.file).name.split(".")[0] + "-run")
    stop = threading.Event()
    progress = Progress(sys.stderr, quiet=args.json)
    previous = signal.signal(signal.SIGINT, lambda *_: _interrupt(stop, progress))
    error = None
    try:
        result = run_session(session, progress.event, stop)
    except TrainingError as exc:
        error, result = exc, exc.result
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
    write_outputs(out_dir, session, result)
    if error is not None:
        print(f"error: {printable(error)}", file=sys.stderr)
    final = summary(result)
    if args.json:
        print(json.dumps(final))
    else:
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in final.items() if k not in ("epochs",))
        state = "stopped" if result.stopped else "done"
        print(printable(f"{state}: {final.get('epochs', 0)} epochs, {figures}"))
        print(printable(f"wrote {out_dir / 'weights.npz'}, best.npz, history.csv and loss.png"))
    return 1 if error is not None else 0


def starting_weights(path: str, doc) -> dict:
    """`--weights W.npz`: the arrays to start from, checked as `export --weights` checks them
    (names and shapes; core/export_cli.check_weights) against the graph training runs (the
    document less the nodes it leaves out, core/compiler.compile_for_training)."""
    from .compiler import compile_for_training
    from .export_cli import check_weights

    check_weights(Path(path), compile_for_training(doc).doc)
    return load_arrays(Path(path), f"--weights {path}")


def _interrupt(stop: threading.Event, progress) -> None:
    if stop.is_set():
        raise KeyboardInterrupt  # a second Ctrl+C: the user really wants out
    stop.set()
    progress.note("stopping after this step, or at the next step of a loop inside it "
                  "(Ctrl+C again to abort)")


def summary(result) -> dict:
    """The final JSON object: loss, val_loss, each metric and its val_ form, epochs, seconds."""
    out = {}
    last = result.final()
    for key, value in last.items():
        if key not in ("epoch", "elapsed", "steps_per_s", "lr"):
            out[key] = value
    out["epochs"] = len(result.history)
    out["seconds"] = round(result.seconds, 3)
    return out


def write_outputs(out_dir: Path, session: Session, result) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_arrays(out_dir / "weights.npz", result.params)
    # The epoch of the lowest validation loss (the last epoch without a validation set).
    save_arrays(out_dir / "best.npz", result.best_params or result.params)
    atomic_write(out_dir / "history.csv", history_csv(result.history).encode("utf-8"))
    try:
        from .plot_png import charts_png
    except ImportError:
        return
    charts_png(out_dir / "loss.png", loss_panels(result.history))


def history_csv(history: list) -> str:
    columns = []
    for record in history:
        for key in record:
            if key not in columns:
                columns.append(key)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for record in history:
        writer.writerow([_csv_value(record.get(k)) for k in columns])
    return text.getvalue()


def _csv_value(value):
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else value


def loss_panels(history: list) -> list:
    epochs = [r["epoch"] for r in history]
    loss = [("train loss", epochs, [r["loss"] for r in history], (31, 119, 180))]
    if any("val_loss" in r for r in history):
        loss.append(("validation loss", epochs, [r.get("val_loss", math.nan) for r in history],
                     (255, 127, 14)))
    panels = [{"series": loss, "title": "Loss", "ylabel": "loss",
               "log_y": bool(history) and min(r["loss"] for r in history) > 0}]
    metrics = [k for k in (history[0] if history else {}) if k not in
               ("epoch", "loss", "lr", "elapsed", "steps_per_s") and not k.startswith("val_")]
    colours = [(44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
    series = []
    for i, name in enumerate(metrics):
        series.append((name, epochs, [r.get(name, math.nan) for r in history], colours[i % 4]))
        series.append((f"val {name}", epochs, [r.get(f"val_{name}", math.nan) for r in history],
                       tuple(min(255, c + 70) for c in colours[i % 4])))
    if series:
        panels.append({"series": series, "title": "Metrics", "ylabel": ", ".join(metrics)})
    return panels


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_METRIC_KEYS = ("accuracy", "mse", "mae")


class Progress:
    """A progress bar on a terminal, plain lines elsewhere; redraws at most 10 times a second."""

    def __init__(self, stream, quiet: bool = False):
        self.stream = stream
        self.quiet = quiet
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_draw = 0.0
        self.total = 0
        self.epochs = 0
        self.last_epoch: dict = {}
        self.drawn = False

    def event(self, event: dict) -> None:
        kind = event["kind"]
        if kind == "start":
            self.total, self.epochs = event["total_steps"], event["epochs"]
            if not self.quiet and not self.tty:  # a log says what follows; Ctrl+C works now
                self.stream.write(f"training: {self.epochs} epochs of {event['steps_per_epoch']} "
                                  "steps (Ctrl+C stops)\n")
                self.stream.flush()
        elif kind == "step" and self.tty and not self.quiet:
            now = time.monotonic()
            if now - self.last_draw >= 0.1 or event["step"] == self.total:
                self.last_draw = now
                self._draw(event)
        elif kind == "epoch":
            self.last_epoch = event
            if not self.quiet and not self.tty:
                self.stream.write(self._line(event) + "\n")
                self.stream.flush()

    def _draw(self, event: dict) -> None:
        width = 24
        done = event["step"] / self.total if self.total else 1.0
        bar = "#" * int(done * width) + "." * (width - int(done * width))
        self.stream.write("\r" + self._line(event, bar) + "\x1b[K")
        self.stream.flush()
        self.drawn = True

    def _line(self, event: dict, bar: str = "") -> str:
        epoch = event.get("epoch", 0)
        parts = [f"epoch {epoch}/{self.epochs}"]
        if bar:
            parts.append(f"[{bar}]")
        parts.append(f"step {event.get('step', 0)}/{self.total}")
        parts.append(f"loss {event['loss']:.4g}")
        source = event if "val_loss" in event else self.last_epoch
        if "val_loss" in source:
            parts.append(f"val {source['val_loss']:.4g}")
        for key, value in source.items():
            if key in _METRIC_KEYS or (key.startswith("val_") and key[4:] in _METRIC_KEYS):
                parts.append(f"{key.replace('_', ' ')} {value:.4g}")
        rate = event.get("steps_per_s", 0.0)
        parts.append(f"{rate:,.0f} steps/s")
        if rate > 0 and self.total:
            left = (self.total - event.get("step", 0)) / rate
            parts.append(f"ETA {int(left // 60)}:{int(left % 60):02d}")
        return "  ".join(parts)

    def note(self, text: str) -> None:
        if self.drawn:
            self.stream.write("\n")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


__all__ = ["GraphError", "cmd_train", "history_csv", "summary", "write_outputs"]
