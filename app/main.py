"""Entry point: `wiregrad [FILE]` (or `python -m wiregrad [FILE]`) opens the editor."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication

from . import style_sheet
from .window import EXAMPLES, MainWindow

FIRST_EXAMPLE = "spiral-mlp.wg.json"


def default_file():
    """What a newcomer sees first: the spiral classifier, or any bundled example."""
    first = EXAMPLES / FIRST_EXAMPLE
    if first.exists():
        return first
    others = sorted(EXAMPLES.glob("*.wg.json"))
    return others[0] if others else None


def make_app(argv=None) -> QApplication:
    QCoreApplication.setOrganizationName("Wiregrad")
    QCoreApplication.setApplicationName("Wiregrad")
    app = QApplication.instance() or QApplication(["wiregrad", *(argv or [])])
    if app.styleSheet() != style_sheet.SHEET:  # once: restyling visits every widget there is
        app.setStyle("Fusion")
        app.setPalette(style_sheet.dark_palette())
        app.setStyleSheet(style_sheet.SHEET)
    return app


def open_window(argv: list) -> MainWindow:
    window = MainWindow()
    recovered = window.offer_recovery()
    if not recovered:
        path = Path(argv[0]) if argv else default_file()
        if path is not None:
            window.open_path(path, example=not argv)
    window.show()
    return window


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print("usage: wiregrad [FILE]   open the editor with FILE, or an example")
        return 0
    app = make_app()
    window = open_window(argv)  # noqa: F841 (kept alive while the loop runs)
    return app.exec()
