"""The CSV column mapper of the training form: which of a file's columns make each array."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
)

INDICATORS = """
QTableWidget::indicator { width: 12px; height: 12px; border: 1px solid #6b7280;
                          border-radius: 3px; background: #16181b; }
QTableWidget::indicator:checked { background: #3f74c9; border-color: #8fb3ee; }
"""


class ColumnMapper(QTableWidget):
    """Which CSV columns each dataset array is made of: one row per array, a first column
    saying whether the array is a target, then one check box per column of the file's header.

    A target takes one column as a 1-D array (text becomes class ids: the labels); any other
    array takes its columns, in the header's order, as a 2-D array of numbers (the features).
    `changed` gives the whole new `columns` mapping; the form pushes it as one command.
    """

    changed = Signal(dict)

    def __init__(self, header: list, columns, candidates: list, parent=None):
        super().__init__(parent)
        columns = dict(columns) if isinstance(columns, dict) else {}
        self.header = list(header)
        self.arrays: list = []      # array names, one per row
        self.targets: dict = {}     # array name -> is a target
        self.chosen: dict = {}      # array name -> [column names]
        for name, cols in columns.items():
            self._add_array(name, not isinstance(cols, list),
                            cols if isinstance(cols, list) else [cols])
        for name, is_target in candidates:
            if name not in self.targets:
                self._add_array(name, is_target, [])
        self.setColumnCount(len(self.header) + 1)
        self.setRowCount(len(self.arrays))
        self.setHorizontalHeaderLabels(["target"] + self.header)
        self.setStyleSheet(INDICATORS)
        self.setVerticalHeaderLabels(self.arrays)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.setSelectionMode(QAbstractItemView.NoSelection)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setToolTip("Tick the CSV columns each array is made of. A target (the right "
                        "answer: a label or a value to predict) is one column; text in it "
                        "becomes class ids. Other arrays are 2-D, one column per tick.")
        for row, name in enumerate(self.arrays):
            self._check_item(row, 0, self.targets[name],
                             f"{name!r} is a target (the answer): one column, a 1-D array")
            for col, column in enumerate(self.header, start=1):
                self._check_item(row, col, column in self.chosen[name],
                                 f"array {name!r} takes column {column!r}")
        missing = sorted({c for cols in self.chosen.values() for c in cols} - set(self.header))
        if missing or not self.header:
            why = (f"not in the file: {', '.join(missing)}" if self.header and missing
                   else "choose a CSV file with a header row to see its columns")
            self.setToolTip(f"{why}\n\n{self.toolTip()}")
        self.itemChanged.connect(self._item_changed)
        height = self.horizontalHeader().sizeHint().height() + \
            sum(self.rowHeight(r) for r in range(self.rowCount())) + 2 * self.frameWidth() + 4
        self.setMinimumHeight(min(height, 220))
        self.setMaximumHeight(max(height + 16, 60))

    def _add_array(self, name: str, is_target: bool, cols: list) -> None:
        self.arrays.append(name)
        self.targets[name] = is_target
        self.chosen[name] = list(cols)

    def _check_item(self, row: int, col: int, checked: bool, tip: str) -> None:
        item = QTableWidgetItem("")
        item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsUserCheckable)
        item.setCheckState(Qt.Checked if checked else Qt.Unchecked)
        item.setToolTip(tip)
        self.setItem(row, col, item)

    def set_checked(self, array: str, column: str, checked: bool = True) -> None:
        """Tick (or untick) a column of an array, as a click on its box does; `column`
        "target" is the target box."""
        col = 0 if column == "target" else self.header.index(column) + 1
        self.item(self.arrays.index(array), col).setCheckState(
            Qt.Checked if checked else Qt.Unchecked)

    def _item_changed(self, item) -> None:
        name = self.arrays[item.row()]
        checked = item.checkState() == Qt.Checked
        if item.column() == 0:
            self.targets[name] = checked
            if checked:
                del self.chosen[name][1:]  # a target is one column
        else:
            column = self.header[item.column() - 1]
            cols = self.chosen[name]
            if checked and column not in cols:
                if self.targets[name]:
                    cols.clear()  # a target's one column is replaced
                cols.append(column)
                order = {c: i for i, c in enumerate(self.header)}
                cols.sort(key=lambda c: order.get(c, len(order)))
            elif not checked and column in cols:
                cols.remove(column)
        self.changed.emit(self.mapping())

    def mapping(self) -> dict:
        """The `columns` entry: {array: "column"} for targets, {array: [columns]} otherwise;
        arrays with no column ticked are left out."""
        out = {}
        for name in self.arrays:
            cols = self.chosen[name]
            if cols:
                out[name] = cols[0] if self.targets[name] else list(cols)
        return out
