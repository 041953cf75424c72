"""The inspector's field for a Param of kind "pair": an int, or a pair [h, w] (kernel sizes).

Two spin boxes, height and width, and a link toggle. Linked (the usual square kernel), the
width follows the height and the value is one int; unlinked, it is the pair [h, w]. The form
shows what the document holds: an int links the boxes, a pair unlinks them, so toggling the
link is itself an edit (3 becomes [3, 3], [3, 5] becomes 3). A nullable param (a pool's stride,
null: the kernel size) shows null as the boxes' lowest step.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QToolButton, QWidget

INT_LIMIT = 2_000_000_000
NULL_TEXT = "null"


class PairField(QWidget):
    """Emits `edited(value)` after the user changes the value (not when it is loaded)."""

    edited = Signal(object)

    def __init__(self, decl, parent=None):
        super().__init__(parent)
        self.decl = decl
        low = int(decl.minimum) if decl.minimum is not None else 0
        high = int(decl.maximum) if decl.maximum is not None else INT_LIMIT
        # Null is the step below the smallest value, as Qt's special value text has it.
        self.nullable = decl.nullable
        self.null_value = low - 1
        self.h, self.w = QSpinBox(self), QSpinBox(self)
        for box, axis in ((self.h, "height"), (self.w, "width")):
            box.setRange(self.null_value if self.nullable else low, high)
            if self.nullable:
                box.setSpecialValueText(NULL_TEXT)
            box.setKeyboardTracking(False)  # apply on Return, focus-out or an arrow step
            box.setAccessibleName(f"{decl.name} {axis}")
            box.valueChanged.connect(lambda _v, b=box: self._box_changed(b))
        self.link = QToolButton(self)
        self.link.setCheckable(True)
        self.link.setChecked(True)
        self.link.setToolTip("Linked: one number for height and width. "
                             "Unlinked: a pair [h, w].")
        self.link.toggled.connect(self._link_toggled)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.h, 1)
        layout.addWidget(QLabel("×", self))
        layout.addWidget(self.w, 1)
        layout.addWidget(self.link)
        self._loading = False
        self._sync_link()

    # -- the value ----------------------------------------------------------------------------

    def linked(self) -> bool:
        return self.link.isChecked()

    def value(self):
        """What the boxes say: an int when linked, [h, w] when not, None at null."""
        h, w = self.h.value(), self.w.value()
        if self.nullable and self.null_value in (h, w):
            return None
        return h if self.linked() else [h, w]

    def setValue(self, value) -> None:
        """Show a document's value; a value the kind does not take leaves the field as is."""
        if value is None and self.nullable:
            value = self.null_value
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            h, w, linked = value, value, True
        elif (isinstance(value, (list, tuple)) and len(value) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            (h, w), linked = value, False
        else:
            return
        self._loading = True
        try:
            self.link.setChecked(linked)
            self.h.setValue(h)
            self.w.setValue(w)
            self._sync_link()
        finally:
            self._loading = False

    # -- edits ----------------------------------------------------------------------------------

    def _sync_link(self) -> None:
        # The text says the state: the app's style draws a checked tool button as any other.
        self.link.setText("=" if self.linked() else "≠")
        self.w.setEnabled(not self.linked())
        if self.linked() and self.w.value() != self.h.value():
            self.w.blockSignals(True)
            self.w.setValue(self.h.value())
            self.w.blockSignals(False)

    def _box_changed(self, box) -> None:
        if self._loading:
            return
        if self.nullable and box.value() == self.null_value and not self.linked():
            self.link.blockSignals(True)  # a pair holds no null: null is one value again
            self.link.setChecked(True)
            self.link.blockSignals(False)
        self._sync_link()
        self.edited.emit(self.value())

    def _link_toggled(self, _on: bool) -> None:
        if self._loading:
            return
        self._sync_link()
        self.edited.emit(self.value())
