"""Two windows and a kill: is anything lost?

    python -m bench.recovery_kill

Starts two real editor processes (offscreen Qt, settings and recovery folder in a temporary
home) on two copies of the spiral example. Each adds a node; the first also trains one batch,
so it has trained weights that are not saved. Both autosave (every 200 ms here instead of 30 s).
Then the first is killed with SIGKILL, and a third editor starts, answering Yes to what it is
offered. Passes when exactly the killed window's work is offered, comes back with its node and
its trained weights, and the live window's recovery files are untouched by the third.

The editors are this file run in `--editor` and `--offer` mode: `app.main.open_window` and the
window's own controller, dock and recovery, driven as a user would; nothing is faked but time.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets" / "examples" / "spiral-mlp.wg.json"
AUTOSAVE_MS = 200
READY_S = 60.0


def checksum(params: dict | None) -> dict:
    """Per array, a sum that tells two sets of weights apart, in JSON."""
    return {k: float(abs(v).sum()) for k, v in sorted((params or {}).items())}


def _report(data: dict) -> None:
    print(json.dumps(data), flush=True)


# -- the editors ----------------------------------------------------------------------------------


def run_editor(path: str, node_type: str, train: bool) -> None:
    """An editor on `path` that adds a `node_type` node (and trains one batch), then says
    "ready" once its autosave holds that work, and runs until killed."""
    from PySide6.QtCore import QTimer
    from wiregrad.app import main as app_main

    app = app_main.make_app()
    window = app_main.open_window([path])
    window.recovery.timer.setInterval(AUTOSAVE_MS)
    dock = window.training
    if train:
        dock.step()
    added = []

    def poll() -> None:
        if train and dock.state == "paused":
            dock.stop()
        if train and (dock.state != "idle" or dock.params is None):
            return
        if not added:  # after training: a node not yet wired stops a graph from training
            added.append(window.controller.add_node(node_type, (400, 0)))
        token = window.recovery.saved_token
        if token != (window.controller.doc.revision, dock.weights_version):
            return  # its autosave does not hold all of it yet
        timer.stop()
        _report({"ready": True, "pid": os.getpid(), "stem": window.recovery.stem,
                 "node": added[0], "weights": checksum(dock.params if train else None)})

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(50)
    app.exec()


def run_offer() -> None:
    """A third editor: records what it is offered, answers Yes, reports what came back."""
    from wiregrad.app import main as app_main
    from wiregrad.app.window import MainWindow

    offered = []
    MainWindow.ask_restore = lambda self, original: offered.append(original) or True
    app_main.make_app()
    window = app_main.open_window([])
    doc = window.controller.doc
    _report({"offered": offered, "path": doc.path, "nodes": [n.id for n in doc.graph.nodes],
             "weights": checksum(window.training.params), "stem": window.recovery.stem})
    os._exit(0)  # as the bench ends it: its own recovery files do not matter here


# -- the bench ------------------------------------------------------------------------------------


def _start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.recovery_kill", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)


def _first_line(proc: subprocess.Popen, timeout: float) -> dict:
    """The process's JSON report (blocking, with the process killed if it takes too long)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([proc.stdout], [], [], left)[0]:
            break
        line = proc.stdout.readline()
        if line.startswith("{"):
            return json.loads(line)
        if not line:
            raise RuntimeError(f"editor {proc.pid} ended without a report")
    proc.kill()
    raise RuntimeError(f"editor {proc.pid} gave no report in {timeout:.0f} s")


def _snapshot(folder: Path, stem: str) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob(f"{stem}.*")}


def bench(home: Path | None = None) -> dict:
    """Run it in `home` (default: a temporary folder, removed after)."""
    keep = home is not None
    home = Path(home) if keep else Path(tempfile.mkdtemp(prefix="wiregrad-recovery-"))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home),
               XDG_CONFIG_HOME=str(home / "config"))
    one, two = home / "one.wg.json", home / "two.wg.json"
    shutil.copy(EXAMPLE, one)
    shutil.copy(EXAMPLE, two)
    editors = []
    try:
        started = time.perf_counter()
        editors = [_start(env, "--editor", str(one), "Tanh", "--train"),
                   _start(env, "--editor", str(two), "Sigmoid")]
        killed, live = (_first_line(p, READY_S) for p in editors)
        folder = home / "config" / "Wiregrad" / "recovery"
        live_before = _snapshot(folder, live["stem"])
        os.kill(killed["pid"], signal.SIGKILL)
        editors[0].wait()
        third = _start(env, "--offer")
        editors.append(third)
        back = _first_line(third, READY_S)
        third.wait()
        checks = {
            "only the killed window's work is offered": back["offered"] == [str(one)],
            "its document comes back": back["path"] == str(one) and killed["node"] in back["nodes"],
            "its trained weights come back": bool(killed["weights"])
            and back["weights"] == killed["weights"],
            "the live window is still running": editors[1].poll() is None,
            "the live window's files are untouched": _snapshot(folder, live["stem"]) == live_before,
            "the killed window's files are taken over":
                not any(folder.glob(f"{killed['stem']}.*")),
        }
        return {"checks": checks, "seconds": time.perf_counter() - started,
                "weights": len(killed["weights"])}
    finally:
        for proc in editors:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--editor", nargs=2, metavar=("FILE", "NODE_TYPE"))
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--offer", action="store_true")
    args = parser.parse_args(argv)
    if args.editor:
        run_editor(*args.editor, train=args.train)
        return 0
    if args.offer:
        run_offer()
        return 0
    result = bench()
    for what, ok in result["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    lost = not all(result["checks"].values())
    print(f"Two windows and a kill: {'WORK LOST' if lost else 'nothing lost'} "
          f"({result['weights']} weight tensors restored; {result['seconds']:.1f} s)")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
