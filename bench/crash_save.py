"""Kill a process in the middle of saving, again and again: what it leaves must load, old or new.

    python -m bench.crash_save [--kills N] [--dir FOLDER] [--seed S]

A forked child saves a document of a few hundred kB (`core.save`) and a weights file of a few
MB (`atomic_write` of `np.savez` bytes) in a loop, alternating two versions of each. The parent
kills it with SIGKILL at a random moment, then checks that the document loads and is exactly one
of the two versions, and that the weights load with `np.load` and are one of the two. Then it
saves both normally, as the next save of the user would, and counts the temporary files of our
naming still there: there must be none. Prints the figures; exits 1 if any kill lost a file.

This is a benchmark of a promise, not a test (tests/test_atomic_save.py runs a few kills). Its
figures depend on where the kills land; the counts of files lost must be 0 whatever the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from wiregrad.core.atomic import TEMP_MARK, atomic_write
from wiregrad.core.fileio import dumps

from wiregrad import core

LAYERS = 400


def two_documents() -> tuple:
    """Two versions of a document of about 300 kB: a long chain of layers, with a big `ui`."""
    nodes_ = [{"id": "x", "type": "Input", "params": {"shape": [8]}}]
    edges = []
    for i in range(LAYERS):
        nodes_.append({"id": f"fc{i}", "type": "Linear", "params": {"out_features": 8},
                       "label": f"layer {i} ✓", "pos": [i * 40.0, 0.0]})
        edges.append({"from": f"{nodes_[-2]['id']}.y", "to": f"fc{i}.x"})
    nodes_.append({"id": "out", "type": "Output"})
    edges.append({"from": f"fc{LAYERS - 1}.y", "to": "out.x"})
    ui = {"notes": [f"note {i}: " + "lorem ipsum " * 40 for i in range(400)]}
    data = {"format": "wiregrad.graph", "version": 2, "name": "old",
            "graph": {"nodes": nodes_, "edges": edges}, "ui": ui}
    old = core.loads(json.dumps(data))
    new = core.loads(json.dumps(data))
    new.set_name("new")
    return old, new


def two_weights() -> tuple:
    """Two `np.savez` files of about 4 MB each."""
    out = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        buffer = io.BytesIO()
        np.savez(buffer, w=rng.standard_normal((1000, 1000)).astype(np.float32),
                 b=np.full(1000, seed, np.float32))
        out.append(buffer.getvalue())
    return tuple(out)


def _save_forever(doc_path: Path, weights_path: Path, docs: tuple, blobs: tuple, ready: int):
    """The child: saves both versions in turn until it is killed."""
    try:
        os.write(ready, b"r")
        turn = 1
        while True:
            core.save(docs[turn], doc_path)
            atomic_write(weights_path, blobs[turn])
            turn = 1 - turn
    finally:
        os._exit(0)  # never run the parent's clean-up code in the child


def _our_temps(folder: Path) -> list:
    return [p.name for p in folder.iterdir() if TEMP_MARK in p.name]


def _document_is_old_or_new(path: Path, texts: tuple) -> bool:
    try:
        core.load(path)
    except core.GraphError:
        return False
    return path.read_bytes() in texts


def _weights_are_old_or_new(path: Path, blobs: tuple) -> bool:
    try:
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception:  # noqa: BLE001 - any failure to read is what we count
        return False
    return path.read_bytes() in blobs and set(arrays) == {"w", "b"}


def run(kills: int = 100, folder=None, seed: int = 0) -> dict:
    """Kill a saving child `kills` times in `folder`; return the counts."""
    folder = Path(folder or tempfile.mkdtemp(prefix="wg-crash-save-"))
    doc_path, weights_path = folder / "model.wg.json", folder / "model.weights.npz"
    docs, blobs = two_documents(), two_weights()
    texts = tuple(dumps(doc).encode("utf-8") for doc in docs)
    rng = random.Random(seed)
    start = time.perf_counter()
    for doc, blob in (docs[1], blobs[1]), (docs[0], blobs[0]):  # each text is now made once
        core.save(doc, doc_path)
        atomic_write(weights_path, blob)
    cycle = (time.perf_counter() - start) / 2  # one save of each, as the child repeats them
    counts = {"kills": 0, "documents": 0, "weights": 0, "mid_write": 0, "stale_after_save": 0}
    for _ in range(kills):
        ready, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready)
            _save_forever(doc_path, weights_path, docs, blobs, ready_w)
        os.close(ready_w)
        try:
            os.read(ready, 1)
            time.sleep(rng.uniform(0, 2 * cycle))
        finally:  # whatever happens here, no saver is left running
            os.close(ready)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)  # reaped: its pid is gone, as after a real crash
        counts["kills"] += 1
        counts["mid_write"] += bool(_our_temps(folder))
        counts["documents"] += _document_is_old_or_new(doc_path, texts)
        counts["weights"] += _weights_are_old_or_new(weights_path, blobs)
        core.save(docs[0], doc_path)  # the user's next save
        atomic_write(weights_path, blobs[0])
        counts["stale_after_save"] += len(_our_temps(folder))
    counts["seconds"] = time.perf_counter() - start
    counts["document_kb"] = len(texts[0]) // 1024
    counts["weights_kb"] = len(blobs[0]) // 1024
    return counts


def report(counts: dict) -> str:
    n = counts["kills"]
    return (f"{counts['documents']}/{n} kills left a loadable old-or-new document "
            f"({counts['document_kb']} kB); {counts['weights']}/{n} weights "
            f"({counts['weights_kb']} kB); stale temp files after next save: "
            f"{counts['stale_after_save']}\n"
            f"{counts['mid_write']}/{n} kills landed while a temporary file was open; "
            f"{counts['seconds']:.1f} s in all")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_save", description=__doc__)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--dir", default=None, help="folder to save in (default: a new one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wg-crash-save-") as scratch:
        counts = run(args.kills, args.dir or scratch, args.seed)
    print(report(counts))
    n = counts["kills"]
    whole = counts["documents"] == n and counts["weights"] == n
    return 0 if whole and counts["stale_after_save"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
