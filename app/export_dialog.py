"""File > Export: the code each target writes, previewed, verified against the engine, saved.

The preview is the exact text `wiregrad export` writes. "Verify" imports the exported numpy
module and runs it and the engine on the same parameters and a batch of example inputs, in
float64, and shows the largest difference of outputs and gradients: a user sees that the export
is faithful without leaving the editor.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

import core
from core.errors import GraphError
from core.export import TARGETS, export_source
from core.fileio import atomic_write

KEYWORDS = ["and", "as", "assert", "break", "class", "continue", "def", "del", "elif", "else", "except", "False", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "None", "nonlocal", "not", "or", "pass", "raise", "return", "True", "try", "while", "with", "yield", "self"]


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, strings, numbers and comments, in the canvas's colours."""

    def __init__(self, document):
        super().__init__(document)

        def fmt(colour: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
            f = QTextCharFormat()
            f.setForeground(QColor(colour))
            if bold:
                f.setFontWeight(QFont.Bold)
            f.setFontItalic(italic)
            return f

        word = "|".join(KEYWORDS)
        self.rules = [
            (QRegularExpression(rf"\b({word})\b"), fmt("#c792ea", bold=True)),
            (QRegularExpression(r"\b(def|class)\s+(\w+)"), fmt("#82aaff")),
            (QRegularExpression(r"\b[0-9][0-9_]*(\.[0-9]*)?([eE][-+]?[0-9]+)?\b"), fmt("#f78c6c")),
            (QRegularExpression(r"\"[^\"\\]*(\\.[^\"\\]*)*\"|'[^'\\]*(\\.[^'\\]*)*'"), fmt("#c3e88d")),
            (QRegularExpression(r"#[^\n]*"), fmt("#7f8c98", italic=True)),
        ]
        self.docstring = fmt("#c3e88d", italic=True)

    def highlightBlock(self, text: str) -> None:
        for pattern, style in self.rules:
            matches = pattern.globalMatch(text)
            while matches.hasNext():
                m = matches.next()
                self.setFormat(m.capturedStart(), m.capturedLength(), style)
        # Triple-quoted strings span lines: the block state says whether one is still open.
        inside = self.previousBlockState() == 1
        start = 0 if inside else text.find('"""')
        self.setCurrentBlockState(0)
        while start >= 0:
            end = text.find('"""', start if inside else start + 3)
            if end < 0:
                self.setCurrentBlockState(1)
                self.setFormat(start, len(text) - start, self.docstring)
                break
            self.setFormat(start, end + 3 - start, self.docstring)
            inside = False
            start = text.find('"""', end + 3)


def verify_numpy_export(doc, batch: int = 4, seed: int = 0) -> dict:
    """Run the exported numpy module and the engine on the same params and example feeds.

    Returns {"outputs": largest relative difference, "gradients": ... (None without a loss)}.
    """
    program = core.compile(doc, "float64")
    params = program.init_params(seed)
    feeds = example_feeds(program, batch, seed)
    text = export_source(doc, "numpy", dtype="float64")
    module = _import_source(text)
    ours = program.run(params, feeds)
    theirs = module.forward(params, feeds)
    result = {"outputs": max((_rel(ours[k], theirs[k]) for k in ours), default=0.0),
              "gradients": None}
    if "loss" in program.output_shapes and program.output_shapes["loss"] == ():
        _, g_ours = program.value_and_grad(params, feeds, loss="loss", train=False)
        _, g_theirs = module.value_and_grad(params, feeds, loss="loss", train=False)
        result["gradients"] = max((_rel(g_ours[k], g_theirs[k]) for k in g_ours), default=0.0)
    return result


def example_feeds(program, batch: int, seed: int) -> dict:
    """Random inputs of the right shapes: class ids 0 or 1, lengths set by data 5."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in program.input_shapes.items():
        full = tuple(batch if i == 0 else (5 if d is None else d) for i, d in enumerate(shape))
        if program.input_dtypes[name] == "int64":
            feeds[name] = rng.integers(0, 2, size=full)
        else:
            feeds[name] = rng.normal(size=full)
    return feeds


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.abs(a).max(initial=0.0)), 1e-12)
    return float(np.abs(a - b).max(initial=0.0)) / scale


def _import_source(text: str):
    """Import generated code from a temporary file (the module runs nothing at import)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wiregrad_export_check.py"
        path.write_text(text, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("wiregrad_export_check", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules.pop(spec.name, None)
        spec.loader.exec_module(module)
    return module


class ExportDialog(QDialog):
    def __init__(self, doc, parent=None, directory: str = ""):
        super().__init__(parent)
        self.doc = doc
        self.directory = directory
        self.setWindowTitle("Export to Python")
        self.resize(900, 680)

        self.target = QComboBox()
        self.target.addItems(list(TARGETS))
        self.target.setToolTip("numpy: needs only numpy, with the backward written out.\n"
                               "torch: an nn.Module and a training script (CUDA when present).")
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setLineWrapMode(QPlainTextEdit.NoWrap)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.Monospace)
        self.preview.setFont(mono)
        self.highlighter = PythonHighlighter(self.preview.document())
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.verify_button = QPushButton("Verify against the engine")
        self.verify_button.setToolTip("Run the exported numpy code and the engine on the same "
                                      "inputs and show the largest difference.")
        self.save_button = QPushButton("Save…")
        close = QPushButton("Close")

        top = QHBoxLayout()
        top.addWidget(QLabel("Target:"))
        top.addWidget(self.target)
        top.addStretch(1)
        top.addWidget(self.verify_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.save_button)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.preview, 1)
        layout.addLayout(bottom)

        self.target.currentTextChanged.connect(self.refresh)
        self.verify_button.clicked.connect(self.verify)
        self.save_button.clicked.connect(self.save)
        close.clicked.connect(self.reject)
        self.text = ""
        self.refresh()

    def refresh(self) -> None:
        try:
            self.text = export_source(self.doc, self.target.currentText())
        except GraphError as exc:
            self.text = ""
            self.preview.setPlainText("")
            self.status.setText("Cannot export: " + "; ".join(str(e) for e in exc.errors))
            self.save_button.setEnabled(False)
            self.verify_button.setEnabled(False)
            return
        self.preview.setPlainText(self.text)
        lines = self.text.count("\n")
        self.status.setText(f"{lines} lines of {self.target.currentText()} code.")
        self.save_button.setEnabled(True)
        self.verify_button.setEnabled(True)

    def verify(self) -> dict | None:
        try:
            result = verify_numpy_export(self.doc)
        except GraphError as exc:
            self.status.setText(f"Cannot verify: {exc}")
            return None
        grads = result["gradients"]
        text = f"Exported numpy code vs the engine (float64): outputs differ by at most " \
               f"{result['outputs']:.1e} (relative)"
        text += f", gradients by at most {grads:.1e}." if grads is not None else \
            " (no 'loss' Output, so no gradients to compare)."
        faithful = result["outputs"] < 1e-6 and (grads is None or grads < 1e-6)
        self.status.setText(("✓ " if faithful else "✗ ") + text)
        return result

    def save(self, path: str | None = None) -> bool:
        if path is None:
            suggested = str(Path(self.directory or ".") / f"model_{self.target.currentText()}.py")
            path, _ = QFileDialog.getSaveFileName(self, "Export as", suggested,
                                                  "Python files (*.py)",
                                                  options=QFileDialog.DontUseNativeDialog)
            if not path:
                return False
        try:
            atomic_write(Path(path), self.text.encode("utf-8"))
        except (GraphError, OSError) as exc:  # SaveError says what happened, with the path
            QMessageBox.warning(self, "Export failed", str(exc))
            self.status.setText("Not written")
            return False
        self.status.setText(f"Wrote {path}")
        return True
