"""File > Export: the preview is what `wiregrad export` writes, verify shows the export is faithful."""

from __future__ import annotations

from pathlib import Path

from wiregrad.app.export_dialog import ExportDialog, verify_numpy_export
from wiregrad.core.export import export_source

from wiregrad import core

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"


def test_the_preview_shows_the_exported_code_for_each_target(qtbot):
    doc = core.load(EXAMPLES / "spiral-mlp.wg.json")
    dialog = ExportDialog(doc)
    qtbot.addWidget(dialog)
    assert dialog.preview.toPlainText() == export_source(doc, "numpy")
    dialog.target.setCurrentText("torch")
    assert "class Model(" in dialog.preview.toPlainText()
    assert dialog.preview.isReadOnly()


def test_verify_reports_differences_within_a_millionth(qtbot):
    doc = core.load(EXAMPLES / "sequence-rnn.wg.json")
    dialog = ExportDialog(doc)
    qtbot.addWidget(dialog)
    result = dialog.verify()
    assert result["outputs"] < 1e-6 and result["gradients"] < 1e-6
    assert dialog.status.text().startswith("✓")


def test_verify_works_through_loops_branches_and_blocks():
    for name in ("adaptive-while.wg.json", "blocks-and-gate.wg.json", "parity-rnn.wg.json"):
        result = verify_numpy_export(core.load(EXAMPLES / name))
        assert result["outputs"] < 1e-6, name


def test_save_writes_the_previewed_text(qtbot, tmp_path):
    doc = core.load(EXAMPLES / "spiral-mlp.wg.json")
    dialog = ExportDialog(doc)
    qtbot.addWidget(dialog)
    assert dialog.save(str(tmp_path / "model.py"))
    assert (tmp_path / "model.py").read_text() == dialog.preview.toPlainText()


def test_a_failed_export_says_why_in_a_dialog(qtbot, tmp_path, dialogs):
    doc = core.load(EXAMPLES / "spiral-mlp.wg.json")
    dialog = ExportDialog(doc)
    qtbot.addWidget(dialog)
    target = tmp_path / "model.py"
    target.write_text("# mine\n")
    target.chmod(0o444)  # refused even as root
    assert not dialog.save(str(target))
    assert any("read-only" in text for text in dialogs.texts())
    assert target.read_text() == "# mine\n"


def test_a_broken_graph_says_why_it_cannot_be_exported(qtbot):
    doc = core.load(EXAMPLES / "spiral-mlp.wg.json")
    doc.graph.edges = [e for e in doc.graph.edges if e.dst != "act1"]
    dialog = ExportDialog(doc)
    qtbot.addWidget(dialog)
    assert "Cannot export" in dialog.status.text() and "act1" in dialog.status.text()
    assert not dialog.save_button.isEnabled()
