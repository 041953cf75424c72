"""Help: the keyboard shortcuts and the About box.

The shortcut list is read from the window's menus each time it opens, so it shows the keys the
actions really have; only the canvas's own gestures, which are not actions, are listed here.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy
import PySide6
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMessageBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

README = Path(__file__).resolve().parent.parent / "README.md"

# What the canvas does with keys and the mouse outside any menu (app/view.py, app/scene.py).
CANVAS_KEYS = (
    ("Search blocks to add at the cursor", "Tab, or double-click empty canvas"),
    ("Add a block", "Drag it from the palette"),
    ("Connect two ports", "Drag from one port to the other"),
    ("Add a block connected to a port", "Drop a wire on empty canvas"),
    ("Select several", "Drag a box around them"),
    ("Add to the selection", "Ctrl+click, or Ctrl+drag a box"),
    ("Open a node's body", "Double-click it, or Enter"),
    ("Pan", "Space+drag, or middle-button drag"),
    ("Zoom at the cursor", "Mouse wheel"),
    ("Edit a note", "Double-click it"),
)


def plain(text: str) -> str:
    """A menu text without its mnemonic ampersands or trailing dots."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…")


def keys_text(action) -> str:
    return ", ".join(k.toString(QKeySequence.NativeText) for k in action.shortcuts() if not k.isEmpty())


def shortcut_rows(window) -> list:
    """(section, what, keys) for every menu action of `window` that has a key, in menu order,
    then the canvas's gestures."""
    rows = []
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        for action in _actions_in(menu):
            keys = keys_text(action)
            if keys:
                rows.append((plain(menu.title()), plain(_base_text(window, action)), keys))
    rows += [("Canvas", what, keys) for what, keys in CANVAS_KEYS]
    return rows


def _actions_in(menu) -> list:
    out = []
    for action in menu.actions():
        if action.menu() is not None:
            out += _actions_in(action.menu())
        elif not action.isSeparator():
            out.append(action)
    return out


def _base_text(window, action) -> str:
    """Undo and Redo rename themselves after the command they would undo ("Undo Move"): list
    them by what they are."""
    if action is getattr(window, "act_undo", None):
        return "Undo"
    if action is getattr(window, "act_redo", None):
        return "Redo"
    return action.text()


class ShortcutsDialog(QDialog):
    """A list of the shortcuts, grouped by menu; it stays open beside the window."""

    def __init__(self, window):
        super().__init__(window)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Action", "Keys"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QTreeWidget.NoSelection)
        self.tree.setFocusPolicy(Qt.NoFocus)  # a list to read: no current row to highlight
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        self.resize(560, 560)
        self.refresh(window)

    def refresh(self, window) -> None:
        self.tree.clear()
        heading = None
        for section, what, keys in shortcut_rows(window):
            if section != heading:
                heading = section
                head = QTreeWidgetItem([section, ""])
                font = head.font(0)
                font.setBold(True)
                head.setFont(0, font)
                self.tree.addTopLevelItem(head)
            self.tree.addTopLevelItem(QTreeWidgetItem([f"    {what}", keys]))
        self.tree.resizeColumnToContents(0)

    def rows(self) -> list:
        """(action, keys) as shown, section headings included with empty keys."""
        return [(self.tree.topLevelItem(i).text(0).strip(), self.tree.topLevelItem(i).text(1))
                for i in range(self.tree.topLevelItemCount())]


def show_shortcuts(window) -> ShortcutsDialog:
    """Open (or bring forward, brought up to date) the window's shortcut list."""
    dialog = window.findChild(ShortcutsDialog, "shortcutsDialog")
    if dialog is None:
        dialog = ShortcutsDialog(window)
    else:
        dialog.refresh(window)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def version() -> str:
    try:
        return importlib.metadata.version("wiregrad")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def licence() -> str:
    try:
        meta = importlib.metadata.metadata("wiregrad")
    except importlib.metadata.PackageNotFoundError:
        return "MIT"
    return meta.get("License-Expression") or meta.get("License") or "MIT"


def about_text() -> str:
    readme = (f'<a href="{QUrl.fromLocalFile(str(README)).toString()}">README</a>'
              if README.exists() else "the README")
    return (f"<h3>Wiregrad {version()}</h3>"
            "<p>Wire blocks into differentiable programs, train them and watch the loss fall, "
            "then export plain numpy or PyTorch Python.</p>"
            f"<p>Qt {qVersion()} · PySide6 {PySide6.__version__} · numpy {numpy.__version__}</p>"
            f"<p>Licence: {licence()}. Start with {readme}.</p>")


def show_about(window) -> None:
    QMessageBox.about(window, "About Wiregrad", about_text())

