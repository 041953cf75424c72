"""The application's dark look: a Fusion palette and a few style sheet touches."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

SHEET = """
QMainWindow::separator { background: #15171a; width: 3px; height: 3px; }
QDockWidget { color: #c9ced6; font-weight: 600; }
QDockWidget::title { background: #23262b; padding: 6px 8px; }
QTreeWidget, QListWidget, QUndoView { background: #1f2226; border: none; }
QTreeWidget::item { padding: 3px 2px; }
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox {
    background: #16181b; border: 1px solid #363a41; border-radius: 4px; padding: 3px 6px; }
QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus { border-color: #3f74c9; }
#breadcrumb { background: #23262b; border-bottom: 1px solid #15171a; }
#breadcrumb QToolButton { color: #c9ced6; font-weight: 600; padding: 2px 6px; }
#breadcrumb QToolButton:disabled { color: #ffffff; }
#searchPopup { background: #23262b; border: 1px solid #3b3f47; border-radius: 6px; }
QStatusBar { background: #1b1d21; color: #9aa1ab; }
QMenuBar { background: #1b1d21; }
QMenuBar::item:selected, QMenu::item:selected { background: #3f74c9; }
QMenu { background: #23262b; border: 1px solid #3b3f47; }
QToolTip { background: #2a2d33; color: #e6e8eb; border: 1px solid #3b3f47; padding: 4px; }
"""


def dark_palette() -> QPalette:
    p = QPalette()
    colors = {
        QPalette.Window: "#23262b", QPalette.WindowText: "#e6e8eb", QPalette.Base: "#1b1d21",
        QPalette.AlternateBase: "#23262b", QPalette.ToolTipBase: "#2a2d33",
        QPalette.ToolTipText: "#e6e8eb", QPalette.Text: "#e6e8eb", QPalette.Button: "#2a2d33",
        QPalette.ButtonText: "#e6e8eb", QPalette.Highlight: "#3f74c9",
        QPalette.HighlightedText: "#ffffff", QPalette.PlaceholderText: "#6b7280",
        QPalette.Link: "#5aa9ff",
    }
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    p.setColor(QPalette.Disabled, QPalette.Text, QColor("#6b7280"))
    p.setColor(QPalette.Disabled, QPalette.ButtonText, QColor("#6b7280"))
    return p
