"""File > Export: the code each target writes, previewed, checked against the engine, saved.

The preview is the exact text `wiregrad export` writes. Below it, the parity checks for the
target chosen (parity_panel.py): Verify runs the exported module and the engine on the same
parameters and a batch of example inputs and shows the largest difference as a badge; "train
N steps both ways" overlays the exported script's loss curve on the engine's. A user sees that
the export is faithful without leaving the editor, and the dialog never waits for it.
"""

from __future__ import annotations

from pathlib import Path

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

from ..core.errors import GraphError
from ..core.export import TARGETS, export_source
from ..core.fileio import atomic_write
from .export_parity import check_export, example_feeds  # noqa: F401 (part of this API)
from .parity_panel import ParityPanel

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
    """Run the exported numpy module and the engine on the same params and example feeds, in
    float64. Returns {"outputs": largest relative difference, "gradients": ... (None without
    a single-valued Output)} and the rest of export_parity.check_export's answer."""
    return check_export(doc, "numpy", batch, seed)


class ExportDialog(QDialog):
    def __init__(self, doc, parent=None, directory: str = ""):
        super().__init__(parent)
        self.doc = doc
        self.directory = directory
        self.setWindowTitle("Export to Python")
        self.resize(900, 720)

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
        self.parity = ParityPanel(doc, self.target.currentText, self)
        self.verify_button = self.parity.verify_button
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.save_button = QPushButton("Save…")
        close = QPushButton("Close")

        top = QHBoxLayout()
        top.addWidget(QLabel("Target:"))
        top.addWidget(self.target)
        top.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.save_button)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.parity)
        layout.addLayout(bottom)

        self.target.currentTextChanged.connect(self.refresh)
        self.save_button.clicked.connect(self.save)
        close.clicked.connect(self.reject)
        self.text = ""
        self.refresh()

    def refresh(self) -> None:
        self.parity.target_changed()
        try:
            self.text = export_source(self.doc, self.target.currentText())
        except GraphError as exc:
            self.text = ""
            self.preview.setPlainText("")
            self.status.setText("Cannot export: " + "; ".join(str(e) for e in exc.errors))
            self.save_button.setEnabled(False)
            self.parity.set_exportable(False)
            return
        self.preview.setPlainText(self.text)
        lines = self.text.count("\n")
        self.status.setText(f"{lines} lines of {self.target.currentText()} code.")
        self.save_button.setEnabled(True)
        self.parity.set_exportable(True)

    def verify(self) -> dict | None:
        """Check the selected target's code against the engine now (the Verify button does it
        in the background); the badge, and the status line, say how it went."""
        result = self.parity.verify()
        if result is not None:
            self.status.setText(self.parity.check_badge.text())
        return result

    def train_both_ways(self, steps: int | None = None) -> None:
        """Start training `steps` (the spin box's) steps both ways, in the background."""
        if steps is not None:
            self.parity.steps.setValue(steps)
        self.parity.start_training()

    def done(self, result: int) -> None:
        self.parity.cancel()  # a check still running ends with the dialog
        super().done(result)

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
