"""No document can exhaust the machine: bounds checked before work starts, and a stop request
honoured between two loop steps.

- Blocks are counted, never expanded, to refuse a document past 100,000 node instances; bodies
  nest at most 16 deep; a Loop takes at most 10^6 steps. Each is an error naming the node,
  found by `wiregrad check`, the editor's analysis and compile alike, in well under 2 s.
- One training step's memory is estimated from the shapes; past the limit (8 GiB, or
  WIREGRAD_MEMORY_LIMIT) it is an error naming the node that needs the most, past half of it a
  warning.
- A run's stop request (Ctrl+C, the editor's Stop) ends even one very long step within a loop
  step's time; the results are still written, without the interrupted step.

The documents come from tests/bombs.py (`python -m tests.bombs DIR` writes them as files).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from wiregrad.core import budget
from wiregrad.core.cli import main
from wiregrad.core.codegen.stops import StopRequested
from wiregrad.core.compiler import Compiler, analyze
from wiregrad.core.export import export_source
from wiregrad.core.fileio import loads
from wiregrad.core.trainer import Session, run_session

from tests import bombs
from tests.export_check import load_module
from tests.program_check import document, graph
from wiregrad import core

ROOT = Path(__file__).resolve().parent.parent
QUICK = 2.0  # seconds: "refused within 2 s"


def load_bomb(name: str, *args):
    return loads(bombs.text(bombs.BOMBS[name](*args)), source=name)


def refused(doc) -> core.GraphError:
    """The error compiling `doc` raises, checking it came in well under QUICK seconds."""
    started = time.perf_counter()
    with pytest.raises(core.GraphError) as info:
        core.compile(doc)
    assert time.perf_counter() - started < QUICK / 2
    return info.value


# -- block instances ----------------------------------------------------------------------------


def test_blocks_that_each_use_the_next_twice_are_counted_not_expanded():
    error = refused(load_bomb("block-bomb"))
    message = str(error.errors[-1])
    assert "node instances" in message and "limit of 100,000" in message
    # Block Bi has 5 nodes and two uses of B(i+1), B40 three: 2^(43-i) - 5; the top adds 4.
    assert f"{2**43 - 1:,} node instances" in message
    assert "block 'B26' alone expands to 131,067" in message  # where the blow-up crosses
    assert error.errors[-1].node == "top"  # the node the editor badges


def test_the_editor_analysis_refuses_the_bomb_with_errors_not_shapes():
    started = time.perf_counter()
    result = analyze(load_bomb("block-bomb"))  # what app/live_check.py calls on every edit
    assert time.perf_counter() - started < QUICK / 2
    assert any("node instances" in str(e) for e in result.errors)
    assert result.port_types == {}


def test_the_editor_path_itself_refuses_the_bomb():
    pytest.importorskip("PySide6")
    from wiregrad.app.live_check import analyze as editor_analyze

    result = editor_analyze(load_bomb("block-bomb"))
    assert any("node instances" in str(e) for e in result.errors)


def test_many_uses_of_a_moderate_block_are_counted_too():
    chain = [(f"t{i}", "Tanh", {}) for i in range(100)]
    inner = graph([("x", "Input", {}), *chain, ("y", "Output", {})],
                  [("x.y", "t0.x")] + [(f"t{i}.y", f"t{i + 1}.x") for i in range(99)]
                  + [("t99.y", "y.x")])
    uses = budget.INSTANCE_LIMIT // 103 + 1  # each use: the Block node and 102 inside
    nodes_ = [("x", "Input", {"shape": [2]})]
    nodes_ += [(f"b{i}", "Block", {"block": "Chain"}) for i in range(uses)]
    doc = document(nodes_ + [("y", "Output", {})], [("x.y", f"b{i}.x") for i in range(uses)]
                   + [("b0.y", "y.x")], {"Chain": inner})
    message = str(refused(doc))
    assert f"{2 + 103 * uses:,} node instances" in message
    assert "alone" not in message  # no single block is too big: the uses are


# -- nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nested-loops", "nested-blocks"])
def test_bodies_nested_200_deep_load_and_are_refused_with_the_limit(name):
    doc = load_bomb(name)  # loading is fine: nothing is built yet
    error = refused(doc)
    assert "nested 17 deep" in str(error) and "limit of 16" in str(error)
    assert error.node.count("/") == 16  # the node whose body crosses the limit
    assert not analyze(doc).ok


@pytest.mark.parametrize("kind", ["loops", "blocks"])
def test_bodies_nested_to_the_limit_compile_run_and_export(kind):
    make = bombs.nested_loops if kind == "loops" else bombs.nested_blocks
    doc = loads(bombs.text(make(budget.NESTING_LIMIT)))
    program = core.compile(doc, "float64")
    x = np.linspace(-1, 1, 6).reshape(3, 2)
    value, _ = program.value_and_grad(program.init_params(0), {"x": x})
    assert value == pytest.approx(np.mean(np.tanh(x)))
    compile(export_source(doc, "numpy"), "exported", "exec")  # Python nests 20 blocks at most
    with pytest.raises(core.GraphError, match="nested 17 deep"):
        core.compile(loads(bombs.text(make(budget.NESTING_LIMIT + 1))))


# -- loop steps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, param", [("loop-count", "count"), ("loop-max-iter", "max_iter")])
def test_a_loop_of_a_trillion_steps_is_a_parameter_error_on_the_loop(name, param):
    error = refused(load_bomb(name))
    assert error.node == "loop"
    assert str(error) == f"loop: {param} must be at most 1000000, got 1000000000000"


def test_a_loop_of_the_most_steps_allowed_compiles():
    core.compile(loads(bombs.text(bombs.loop_count(budget.LOOP_STEP_LIMIT))))


# -- memory -------------------------------------------------------------------------------------


def test_a_linear_of_a_billion_outputs_is_refused_naming_it():
    error = refused(load_bomb("huge-linear"))
    assert error.node == "fc"
    assert "more than the limit of 8 GiB" in str(error) and "WIREGRAD_MEMORY_LIMIT" in str(error)


def test_train_refuses_it_before_allocating_anything():
    doc = load_bomb("huge-linear")
    tracemalloc.start()
    try:
        with pytest.raises(core.GraphError) as info:
            Session(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.node == "fc"
    assert peak < 64 * 2**20


def _loop_around_linear(count: int, width: int = 4096):
    """A repeat Loop whose body makes a (B, width) value every step."""
    body = graph([("h", "Input", {"role": "carry"}), ("x", "Input", {}),
                  ("fc", "Linear", {"out_features": width}), ("m", "Mean", {}), ("add", "Add", {}),
                  ("next", "Output", {"role": "carry", "carry": "h"})],
                 [("x.y", "fc.x"), ("fc.y", "m.x"), ("h.y", "add.a"), ("m.y", "add.b"),
                  ("add.y", "next.x")])
    doc = document([("x", "Input", {"shape": [2]}),
                    ("loop", "Loop", {"mode": "repeat", "count": count}, {"body": body}),
                    ("s", "Mean", {}), ("loss", "Output", {})],
                   [("x.y", "loop.h"), ("x.y", "loop.x"), ("loop.next", "s.x"), ("s.y", "loss.x")])
    doc.training = {"dataset": "unused.csv", "loss": "loss", "batch_size": 32}
    return doc


def test_what_a_loop_body_makes_counts_once_per_step():
    core.compile(_loop_around_linear(10))
    error = refused(_loop_around_linear(10**6))
    assert error.node == "loop/fc"  # 32 x 4096 floats a step, a million steps


def _estimate(doc) -> int:
    compiler = Compiler(doc)
    compiler.run()
    return budget.estimate(compiler, budget.training_batch(doc)).total


def test_the_limit_is_set_by_an_environment_variable_and_warns_past_half(monkeypatch):
    doc = _loop_around_linear(10)
    total = _estimate(doc)
    monkeypatch.setenv(budget.MEMORY_ENV, str(total * 3))
    assert analyze(doc).ok and not analyze(doc).warnings
    monkeypatch.setenv(budget.MEMORY_ENV, str(int(total * 1.5)))
    result = analyze(doc)
    assert result.ok and [w.node for w in result.warnings] == ["loop/fc"]
    assert core.compile(doc).warnings  # train prints them
    monkeypatch.setenv(budget.MEMORY_ENV, str(int(total * 0.9)))
    assert [e.node for e in analyze(doc).errors] == ["loop/fc"]
    monkeypatch.setenv(budget.MEMORY_ENV, "1T")
    assert core.compile(load_bomb("huge-linear")).param_shapes["fc.weight"] == (2, 10**9)


@pytest.mark.parametrize("text, expected", [("512M", 512 * 2**20), ("16G", 16 * 2**30),
                                            ("16GiB", 16 * 2**30), ("1.5g", 3 * 2**29),
                                            ("1000", 1000)])
def test_the_limit_reads_bytes_or_a_unit(monkeypatch, text, expected):
    monkeypatch.setenv(budget.MEMORY_ENV, text)
    assert budget.memory_limit() == expected


def test_a_bad_limit_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(budget.MEMORY_ENV, "lots")
    with pytest.raises(core.GraphError, match="WIREGRAD_MEMORY_LIMIT must be a number"):
        core.compile(_loop_around_linear(1))


def test_the_examples_are_far_from_every_bound():
    for path in sorted((ROOT / "assets" / "examples").glob("*.wg.json")):
        doc = core.load(path)
        assert _estimate(doc) < 64 * 2**20, path.name
        assert not analyze(doc).warnings, path.name


# -- check on the command line ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(bombs.BOMBS))
def test_check_refuses_every_bomb_within_two_seconds(name, tmp_path, capsys):
    path = tmp_path / f"{name}.wg.json"
    path.write_text(bombs.text(bombs.BOMBS[name]()), encoding="utf-8")
    started = time.perf_counter()
    assert main(["check", str(path)]) == 1
    assert time.perf_counter() - started < QUICK
    err = capsys.readouterr().err
    assert "error:" in err and "internal error" not in err and "Traceback" not in err


def test_check_as_a_process_prints_one_error_per_problem(tmp_path):
    path = tmp_path / "bomb.wg.json"
    path.write_text(bombs.text(bombs.block_bomb()), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "wiregrad.core.cli", "check", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "node instances" in proc.stderr and "Traceback" not in proc.stderr


# -- stopping between loop steps ----------------------------------------------------------------


class _SetOnCall:
    """A stop request that becomes set at its n-th question (counts how often it is asked)."""

    def __init__(self, n: int):
        self.n, self.asked = n, 0

    def is_set(self) -> bool:
        self.asked += 1
        return self.asked >= self.n


def test_every_loop_step_asks_the_stop_request_forward_and_backward():
    program = core.compile(_loop_around_linear(5, width=3))
    params, feeds = program.init_params(0), {"x": np.ones((3, 2), np.float32)}
    asked = _SetOnCall(10**9)
    with program.stopping(asked):
        program.value_and_grad(params, feeds)
    assert asked.asked == 10  # 5 steps forward, 5 back
    with program.stopping(_SetOnCall(8)), pytest.raises(StopRequested):
        program.value_and_grad(params, feeds)  # set during the backward
    program.value_and_grad(params, feeds)  # outside `stopping`, nothing is asked


@pytest.mark.parametrize("name", ["adaptive-while", "ponder", "sequence-rnn", "tree-expressions"])
def test_loops_of_every_mode_stop(name):
    session = Session(core.load(ROOT / "assets" / "examples" / f"{name}.wg.json"), epochs=1)
    result = run_session(session, stop=_SetOnCall(2))  # asked before the step, then in a loop
    assert result.stopped and result.steps == 0


def test_stop_ends_a_step_of_minutes_within_a_second():
    session = Session(loads(bombs.text(bombs.slow_step())))
    before = session.param_dict(copy=True)
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    started = time.perf_counter()
    timer.start()
    try:
        result = run_session(session, stop=stop)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 1.3
    assert result.stopped and result.steps == 0 and result.history == []
    assert all(np.array_equal(result.params[k], before[k]) for k in before)  # step discarded


def test_one_ctrl_c_ends_a_long_step_and_the_results_are_written(tmp_path):
    path = tmp_path / "slow.wg.json"
    path.write_text(bombs.text(bombs.slow_step()), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "wiregrad.core.cli", "train", str(path), "--out",
                             str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        first = proc.stderr.readline()
        assert first.startswith("training:"), first  # Ctrl+C is handled from here on
        time.sleep(0.3)  # inside the first step, which would take minutes
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert took < 2.0
    assert "stopping after this step" in stderr and "stopped: 0 epochs" in stdout
    assert set(np.load(out / "weights.npz").files) == {"w.value"}
    assert (out / "history.csv").exists() and (out / "loss.png").exists()


def test_an_exported_module_carries_a_stop_point_that_does_nothing(tmp_path):
    module = load_module(export_source(loads(bombs.text(bombs.loop_count(5))), "numpy"),
                         tmp_path)
    assert module.stop_point() is None
    params = module.init_params(0)
    value, _ = module.value_and_grad(params, {"x": np.ones((3, 2), np.float32)})
    assert np.isfinite(value)


def test_the_editors_stop_ends_a_step_of_minutes_within_a_second():
    pytest.importorskip("PySide6")
    from multiprocessing import Pipe
    from multiprocessing.sharedctypes import RawArray

    from wiregrad.app.training import child

    ours, theirs = Pipe(duplex=True)
    events: list = []

    def read():  # as the editor's socket notifier does: the pipe must not fill
        while True:
            batch = ours.recv()
            events.extend(batch)
            if batch and batch[-1]["kind"] == "finished":
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    control = RawArray("q", child.SLOTS)
    control[child.BUDGET] = child.NO_BUDGET
    stop = threading.Timer(0.3, control.__setitem__, (child.STOP, 1))  # what Stop writes
    started = time.perf_counter()
    stop.start()
    try:
        child._Run(theirs, control).run(bombs.slow_step(), None, None, None, None)
    finally:
        stop.cancel()
    assert time.perf_counter() - started < 1.3
    reader.join(10)
    finished = events[-1]
    assert finished["kind"] == "finished" and finished["stopped"] and not finished["failed"]
    assert finished["result"].steps == 0
