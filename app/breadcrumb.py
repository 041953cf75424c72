"""The breadcrumb above the canvas: `main › rnn › body`; click a crumb to go back up."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

SEPARATOR = " › "


class Breadcrumb(QWidget):
    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("breadcrumb")
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(8, 2, 8, 2)
        self.row.setSpacing(2)
        controller.ref_changed.connect(lambda _ref: self.refresh())
        controller.document_replaced.connect(self.refresh)
        self.refresh()

    def text(self) -> str:
        return SEPARATOR.join(text for text, _ in self.controller.breadcrumb())

    def refresh(self) -> None:
        while self.row.count():
            widget = self.row.takeAt(0).widget()
            if widget is not None:
                widget.hide()
                widget.setParent(None)
        crumbs = self.controller.breadcrumb()
        for i, (text, ref) in enumerate(crumbs):
            if i:
                self.row.addWidget(QLabel(SEPARATOR.strip(), self))
            button = QToolButton(self)
            button.setText(text)
            button.setAutoRaise(True)
            button.setEnabled(i < len(crumbs) - 1)
            button.clicked.connect(lambda _=False, r=ref: self.controller.open_graph(r))
            self.row.addWidget(button)
        self.row.addStretch(1)
