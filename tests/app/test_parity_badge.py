"""File > Export's parity badge: the exported code of the target chosen is checked against the
engine, one batch (Verify) or N training steps both ways, in a process of its own, and the
largest difference is shown as a badge: green within the target's tolerance, red past it."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QProcess
from wiregrad.app import export_parity
from wiregrad.app.export_dialog import ExportDialog

from wiregrad import core

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")


def dialog_for(qtbot, name: str, target: str = "numpy") -> ExportDialog:
    dialog = ExportDialog(core.load(EXAMPLES / f"{name}.wg.json"))
    qtbot.addWidget(dialog)
    dialog.target.setCurrentText(target)
    return dialog


def wait_done(qtbot, dialog, timeout=120_000) -> None:
    qtbot.waitUntil(lambda: not dialog.parity.job.is_running(), timeout=timeout)


def test_verify_checks_the_numpy_target_when_numpy_is_chosen(qtbot):
    dialog = dialog_for(qtbot, "spiral-mlp", "numpy")
    result = dialog.verify()
    assert result["target"] == "numpy" and result["dtype"] == "float64"
    assert result["outputs"] <= 1e-6 and result["gradients"] <= 1e-6
    badge = dialog.parity.check_badge
    assert badge.isVisibleTo(dialog) and badge.state == "good"
    assert badge.text().startswith("✓ numpy matches the engine: max diff")


@needs_torch
def test_verify_checks_the_torch_code_when_torch_is_chosen(qtbot):
    dialog = dialog_for(qtbot, "sequence-rnn", "torch")
    result = dialog.verify()
    assert result["target"] == "torch" and result["dtype"] == "float32"
    assert result["outputs"] <= 1e-5 and result["gradients"] <= 1e-5  # scale-relative
    assert dialog.parity.check_badge.text().startswith("✓ torch matches the engine")


def test_a_difference_past_the_tolerance_makes_the_badge_red(qtbot, monkeypatch):
    monkeypatch.setitem(export_parity.CHECK_TOLERANCE, "numpy", -1.0)  # nothing is close
    dialog = dialog_for(qtbot, "spiral-mlp", "numpy")
    assert not dialog.verify()["ok"]
    badge = dialog.parity.check_badge
    assert badge.state == "bad" and "differs from the engine" in badge.text()
    assert "tolerance" in badge.text()


def test_the_verify_button_runs_in_the_background_and_leaves_a_badge(qtbot):
    dialog = dialog_for(qtbot, "spiral-mlp", "numpy")
    dialog.show()
    started = time.perf_counter()
    dialog.verify_button.click()
    assert time.perf_counter() - started < 0.5          # the dialog did not wait
    assert dialog.parity.job.is_running() and not dialog.verify_button.isEnabled()
    assert dialog.parity.progress.isVisible() and dialog.parity.cancel_button.isVisible()
    wait_done(qtbot, dialog)
    assert dialog.parity.check["target"] == "numpy"
    assert dialog.parity.check_badge.state == "good"
    assert not dialog.parity.progress.isVisible() and dialog.verify_button.isEnabled()


def test_training_both_ways_overlays_the_exported_scripts_curve_on_the_engines(qtbot):
    dialog = dialog_for(qtbot, "spiral-mlp", "numpy")
    dialog.show()
    assert dialog.parity.steps.value() == 50                # the default
    dialog.train_both_ways(30)
    wait_done(qtbot, dialog)
    result = dialog.parity.curves
    assert result["steps"] == 30 and len(result["engine"]) == len(result["script"]) == 30
    assert result["max_diff"] <= 1e-6                       # the engine's own code, copied
    xs, ys = dialog.parity.engine_curve.getData()
    assert len(xs) == 30 and ys[0] == pytest.approx(result["engine"][0])
    assert len(dialog.parity.script_curve.getData()[0]) == 30
    assert dialog.parity.plot.isVisible()
    badge = dialog.parity.curve_badge
    assert badge.state == "good" and badge.text().startswith("✓ 30 steps both ways")
    assert "same batches" in badge.toolTip()


@needs_torch
def test_training_both_ways_runs_the_torch_script_too(qtbot):
    dialog = dialog_for(qtbot, "sine-regression", "torch")
    dialog.train_both_ways(12)
    wait_done(qtbot, dialog)
    result = dialog.parity.curves
    assert result["target"] == "torch" and result["steps"] == 12
    assert result["max_rel"] <= export_parity.CURVE_TOLERANCE["torch"]
    assert dialog.parity.curve_badge.state == "good"


def test_a_long_comparison_can_be_cancelled(qtbot):
    dialog = dialog_for(qtbot, "spiral-mlp", "numpy")
    dialog.show()
    dialog.train_both_ways(5000)
    process = dialog.parity.job.process
    qtbot.waitUntil(lambda: dialog.parity.progress.value() > 0, timeout=60_000)  # under way
    dialog.parity.cancel_button.click()
    assert not dialog.parity.job.is_running() and process.state() == QProcess.ProcessState.NotRunning
    assert dialog.parity.curve_badge.text() == "Cancelled." and dialog.parity.curves is None
    assert dialog.parity.train_button.isEnabled()


def test_a_badge_speaks_of_one_target(qtbot):
    dialog = dialog_for(qtbot, "spiral-mlp", "numpy")
    dialog.verify()
    assert dialog.parity.check_badge.isVisibleTo(dialog)
    dialog.target.setCurrentText("torch")
    assert not dialog.parity.check_badge.isVisibleTo(dialog) and dialog.parity.check is None


def test_the_checks_say_why_when_they_cannot_run(qtbot):
    doc = core.load(EXAMPLES / "spiral-mlp.wg.json")
    doc.training = None
    dialog = ExportDialog(doc)
    qtbot.addWidget(dialog)
    assert not dialog.parity.train_button.isEnabled()       # nothing to train by
    assert dialog.verify()["ok"]                            # the one-batch check still runs
