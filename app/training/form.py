"""The form for a document's `training` section, built from declarations.

What can be set comes from the engine itself: the dataset kinds and their parameters from the
generators' signatures (`core.datasets.GENERATORS`, `FILE_KINDS`), the optimizers' and
schedules' settings from their constructors (`core.optim`), the metrics from `core.metrics`,
and the section's keys, defaults and ranges from its schema (`core.training_section`). The
values live in the document: the form reads them from `doc.training` and every edit is one
undoable `EditTraining` command ("Training: lr = 0.003") pushed through the controller. The
form rebuilds itself when the document says the training section changed (an undo too).
"""

from __future__ import annotations

import copy
import csv
import inspect
import json
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.datasets import FILE_KINDS, GENERATORS, load_dataset
from ...core.document import Subscription
from ...core.metrics import METRICS
from ...core.optim import OPTIMIZERS, SCHEDULES
from ...core.training_section import (
    DEFAULT_LR,
    DEFAULTS,
    DTYPES,
    MINIMUMS,
    setting,
    starter,
)
from ..commands import SetTraining
from .columns import ColumnMapper

_EMPTY = object()
REQUIRED = inspect.Parameter.empty
SCHEDULE_REQUIRED_DEFAULTS = {"step_size": 30, "T_max": 100}
HELP = {
    "n": "How many examples to generate.", "noise": "How much the points are scattered.",
    "classes": "How many classes (spiral arms).", "factor": "Radius of the inner circle.",
    "seed": "The random seed: the same seed gives the same data.",
    "lr": "Learning rate: how big a step each batch takes. Too big diverges, too small crawls.",
    "momentum": "Keep this much of the previous step's direction (0: none).",
    "weight_decay": "Pull the weights towards zero by this much each step.",
    "batch_size": "Examples per gradient step.", "epochs": "Passes over the training data.",
    "validation": "Fraction of the data held out to check the model on unseen examples.",
    "clip_grad_norm": "Scale the gradient down to at most this size (empty: never).",
}


class EditTraining(SetTraining):
    """One edit of the training section, named for the undo history."""

    def __init__(self, doc, training, text: str, parent=None):
        super().__init__(doc, training, parent)
        self.setText(text)


def declared_params(func, skip=("self", "params", "optimizer")) -> list:
    """[(name, default or REQUIRED)] of a generator's or optimizer's signature."""
    out = []
    for name, p in inspect.signature(func).parameters.items():
        if name not in skip and p.kind is not p.VAR_KEYWORD:
            out.append((name, p.default))
    return out


def dataset_params(kind: str) -> list:
    if kind in GENERATORS:
        return declared_params(GENERATORS[kind])
    if kind == "csv":
        return [("path", REQUIRED), ("delimiter", ",")]
    return [("path", REQUIRED)] + ([("name", "x")] if kind == "npy" else [])


def array_names(spec: dict, base_dir: str) -> list:
    """The names of the arrays a dataset entry yields (generators run on a few rows)."""
    if not isinstance(spec, dict):
        return []
    small = dict(spec)
    if small.get("kind") in GENERATORS:
        small["n"] = 8
    try:
        return load_dataset(small, base_dir).names()
    except Exception:  # noqa: BLE001 (the form only suggests; training reports errors)
        if isinstance(spec.get("columns"), dict):
            return list(spec["columns"])
        return []


def csv_header(path: str, delimiter: str = ",") -> list:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [c.strip() for c in next(csv.reader(handle, delimiter=delimiter), [])]
    except (OSError, UnicodeDecodeError):
        return []


def default_section(doc) -> dict:
    """A starting training section for a graph that has none (the schema's starter)."""
    outputs = [n.id for n in doc.graph.nodes if n.type == "Output"]
    loss = "loss" if "loss" in outputs else (outputs[-1] if outputs else "loss")
    return starter(loss)


def _number_text(value) -> str:
    if value is None or value is REQUIRED:
        return ""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parse(text: str, like):
    """A line edit's text as a value of the same kind as `like` (the declared default)."""
    text = text.strip()
    if text == "":
        return _EMPTY
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(like, int) and not isinstance(like, bool):
        return int(float(text))
    if isinstance(like, (list, tuple)):
        value = json.loads(text if text.startswith("[") else f"[{text}]")
        return [float(v) for v in value]
    if isinstance(like, str):
        return text
    value = float(text)
    return int(value) if value.is_integer() and like is REQUIRED and "." not in text \
        and "e" not in text.lower() else value


class TrainingForm(QWidget):
    """The training section as a form; every change is an undoable command."""

    edited = Signal()

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.editors: dict = {}    # dotted key -> widget (tests and focus)
        self._loading = False
        self._listening = Subscription(self._on_event)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(4, 4, 4, 4)
        self.host = None
        controller.document_replaced.connect(self._bind)
        self._bind()

    # -- document -----------------------------------------------------------------------------

    @property
    def doc(self):
        return self.controller.doc

    def _bind(self) -> None:
        self._listening.follow(self.doc)
        self.rebuild()

    def _on_event(self, event) -> None:
        if event.kind in ("training_changed", "reset") or (
                event.kind in ("node_added", "node_removed", "node_renamed")
                and tuple(event.graph) == ()):
            self.rebuild()

    def section(self) -> dict:
        return copy.deepcopy(self.doc.training) if isinstance(self.doc.training, dict) else {}

    def base_dir(self) -> str:
        """Where a relative data path starts: the folder of the document's file (an example
        opened as an unsaved copy keeps its folder), else the working folder."""
        return self.doc.folder or os.getcwd()

    def push(self, training: dict, text: str) -> None:
        if training == self.doc.training:
            return
        self.controller.push(EditTraining(self.doc, training, text))
        self.edited.emit()

    def set_value(self, path: str, value, text: str | None = None) -> None:
        """Set one dotted key ("optimizer.lr") to a value (_EMPTY removes it)."""
        training = self.section()
        keys = path.split(".")
        node = training
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value is _EMPTY:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
        shown = "default" if value is _EMPTY else json.dumps(value)
        self.push(training, text or f"Training: {keys[-1]} = {shown}")

    # -- building -----------------------------------------------------------------------------

    def rebuild(self) -> None:
        if self._loading:
            return
        if self.host is not None:
            self.host.setParent(None)
            self.host.deleteLater()
        self.editors = {}
        self.host = QWidget(self)
        self.layout_.addWidget(self.host)
        outer = QVBoxLayout(self.host)
        outer.setContentsMargins(0, 0, 0, 0)
        training = self.doc.training
        if not isinstance(training, dict):
            note = QLabel("This graph has no training section yet: it says which data to learn "
                          "from, which Output to minimise and how.", self.host)
            note.setWordWrap(True)
            add = QPushButton("Add a training section", self.host)
            add.clicked.connect(lambda: self.push(default_section(self.doc),
                                                  "Add training section"))
            outer.addWidget(note)
            outer.addWidget(add)
            outer.addStretch(1)
            return
        self._loading = True
        try:
            columns = QHBoxLayout()
            outer.addLayout(columns)
            data, model, run = (QFormLayout() for _ in range(3))
            for form in (data, model, run):
                form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
                form.setLabelAlignment(Qt.AlignRight)
                columns.addLayout(form, 1)
            self._data_rows(data, training)
            self._model_rows(model, training)
            self._run_rows(run, training)
        finally:
            self._loading = False

    def _title(self, form: QFormLayout, text: str) -> None:
        label = QLabel(f"<b>{text}</b>", self.host)
        form.addRow(label)

    def _combo(self, path: str, items: list, current, text_of=str, allow_none: str | None = None):
        box = QComboBox(self.host)
        values = ([None] if allow_none else []) + list(items)
        for v in values:
            box.addItem(allow_none if v is None else text_of(v))
        if current not in values:
            values.append(current)
            box.addItem(f"{current} (unknown)")
        box.setCurrentIndex(values.index(current))
        box.activated.connect(lambda i, p=path, vs=values: self._choose(p, vs[i]))
        self.editors[path] = box
        return box

    def _choose(self, path: str, value) -> None:
        if self._loading:
            return
        self.set_value(path, _EMPTY if value is None else value)

    def _line(self, path: str, value, like, tip: str = ""):
        edit = QLineEdit(_number_text(value), self.host)
        edit.setPlaceholderText(_number_text(like) if like is not REQUIRED else "required")
        edit.setToolTip(tip)
        edit.editingFinished.connect(lambda p=path, e=edit, lk=like: self._typed(p, e, lk))
        self.editors[path] = edit
        return edit

    def _typed(self, path: str, edit: QLineEdit, like) -> None:
        if self._loading:
            return
        try:
            value = _parse(edit.text(), like)
        except (ValueError, TypeError):
            edit.setStyleSheet("border: 1px solid #e5484d;")
            edit.setToolTip(f"Cannot read {edit.text()!r} as a {type(like).__name__}")
            return
        edit.setStyleSheet("")
        self.set_value(path, value)

    def _spin(self, path: str, value: int, low: int, high: int, tip: str = ""):
        box = QSpinBox(self.host)
        box.setRange(low, high)
        box.setValue(int(value))
        box.setKeyboardTracking(False)
        box.setToolTip(tip)
        box.editingFinished.connect(lambda p=path, b=box: None if self._loading
                                    else self.set_value(p, b.value()))
        self.editors[path] = box
        return box

    def _data_rows(self, form: QFormLayout, training: dict) -> None:
        self._title(form, "Data")
        spec = training.get("dataset") if isinstance(training.get("dataset"), dict) else {}
        kind = spec.get("kind", "spiral")
        kinds = sorted(GENERATORS) + sorted(FILE_KINDS)
        box = self._combo("dataset.kind", kinds, kind)
        box.activated.disconnect()
        box.activated.connect(lambda i, ks=kinds: self._set_kind(ks[i]))
        box.setToolTip("Generated data (spiral, moons, sine, ...) or a file (csv, npz, npy)")
        form.addRow("dataset", box)
        for name, default in dataset_params(kind):
            if name == "path":
                form.addRow("file", self._path_row(spec))
                continue
            form.addRow(name, self._line(f"dataset.{name}", spec.get(name), default,
                                         HELP.get(name, "")))
        if kind == "csv":
            self._column_rows(form, spec)
        split = training.get("split") if isinstance(training.get("split"), dict) else {}
        form.addRow("validation", self._line("split.validation", split.get("validation"),
                                             DEFAULTS["split"]["validation"], HELP["validation"]))
        names = array_names(spec, self.base_dir())
        inputs = [n.id for n in self.doc.graph.nodes if n.type == "Input"]
        feeds = training.get("feeds") if isinstance(training.get("feeds"), dict) else {}
        for input_id in inputs:
            current = feeds.get(input_id)
            combo = self._combo(f"feeds.{input_id}", names, current,
                                allow_none=f"({input_id}: same name)")
            combo.setToolTip(f"Which dataset array the Input {input_id!r} receives")
            form.addRow(f"→ {input_id}", combo)

    def _set_kind(self, kind: str) -> None:
        if self._loading:
            return
        training = self.section()
        old = training.get("dataset") if isinstance(training.get("dataset"), dict) else {}
        if old.get("kind") == kind:
            return
        new = {"kind": kind}
        for name, default in dataset_params(kind):
            if name in old:
                new[name] = old[name]
            elif default is REQUIRED and name == "n":
                new[name] = 600
        training["dataset"] = new
        self.push(training, f"Training: dataset {kind}")

    def _path_row(self, spec: dict) -> QWidget:
        row = QWidget(self.host)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        edit = self._line("dataset.path", spec.get("path"), "", "A file, relative to the graph file")
        browse = QPushButton("…", row)
        browse.setToolTip("Choose a data file")
        browse.setFixedWidth(28)
        browse.clicked.connect(self.browse)
        layout.addWidget(edit, 1)
        layout.addWidget(browse)
        return row

    def ask_data_path(self) -> str:
        dialog = QFileDialog(self, "Data file", self.base_dir(),
                             "Data (*.csv *.npz *.npy);;All files (*)")
        dialog.setOption(QFileDialog.DontUseNativeDialog, True)
        dialog.setFileMode(QFileDialog.ExistingFile)
        return dialog.selectedFiles()[0] if dialog.exec() else ""

    def browse(self) -> None:
        path = self.ask_data_path()
        if path:
            relative = os.path.relpath(path, self.base_dir())
            self.set_value("dataset.path", relative.replace(os.sep, "/"), "Training: data file")

    def _column_rows(self, form: QFormLayout, spec: dict) -> None:
        """The CSV column mapper: a table of the dataset's arrays and the file's columns."""
        path = os.path.join(self.base_dir(), spec.get("path") or "")
        header = csv_header(path, spec.get("delimiter", ","))
        mapper = ColumnMapper(header, spec.get("columns"), self._array_candidates(), self.host)
        mapper.changed.connect(self._set_columns)
        self.editors["dataset.columns"] = mapper
        hint = QLabel("<span style='color:#9aa1ab'>Tick the columns each array is made of; a "
                      "<b>target</b> (the answer) takes one column, text becomes classes.</span>",
                      self.host)
        hint.setWordWrap(True)
        form.addRow(hint)
        form.addRow(mapper)

    def _array_candidates(self) -> list:
        """[(array name, is a target)]: the arrays the graph wants (its Inputs, or the arrays
        the feeds name instead); a target is what a metric compares with or an int Input."""
        training = self.doc.training if isinstance(self.doc.training, dict) else {}
        feeds = training.get("feeds") if isinstance(training.get("feeds"), dict) else {}
        metrics = training.get("metrics") if isinstance(training.get("metrics"), list) else []
        targets = {m.get("target") for m in metrics if isinstance(m, dict)}
        out = []
        for node in self.doc.graph.nodes:
            if node.type == "Input":
                name = feeds.get(node.id, node.id)
                is_target = node.id in targets or node.params.get("dtype") == "int64"
                out.append((name, is_target))
        return out

    def _set_columns(self, columns: dict) -> None:
        if self._loading:
            return
        training = self.section()
        spec = training.setdefault("dataset", {"kind": "csv"})
        old = spec.get("columns") if isinstance(spec.get("columns"), dict) else {}
        changed = [n for n in {**old, **columns} if old.get(n) != columns.get(n)]
        if columns:
            spec["columns"] = columns
        else:
            spec.pop("columns", None)
        self.push(training, f"Training: columns of {', '.join(changed) or 'the arrays'}")

    def _model_rows(self, form: QFormLayout, training: dict) -> None:
        self._title(form, "Objective")
        outputs = [n.id for n in self.doc.graph.nodes if n.type == "Output"]
        inputs = [n.id for n in self.doc.graph.nodes if n.type == "Input"]
        loss = self._combo("loss", outputs, training.get("loss"))
        loss.setToolTip("The Output holding one number that training makes small")
        form.addRow("minimise", loss)
        metrics = training.get("metrics") if isinstance(training.get("metrics"), list) else []
        for i, metric in enumerate(metrics):
            form.addRow(f"metric {i + 1}", self._metric_row(i, metric, outputs, inputs))
        add = QPushButton("+ metric", self.host)
        add.setToolTip("Report a figure (accuracy, mse, mae) after every epoch")
        add.clicked.connect(lambda: self._add_metric(outputs, inputs))
        form.addRow("", add)
        self._title(form, "Optimizer")
        optimizer = setting(training, "optimizer")
        if not isinstance(optimizer, dict):
            optimizer = DEFAULTS["optimizer"]
        kind = str(optimizer.get("type", DEFAULTS["optimizer"]["type"])).lower()
        kinds = sorted(OPTIMIZERS)
        box = self._combo("optimizer.type", kinds, kind)
        box.activated.disconnect()
        box.activated.connect(lambda i: self._set_optimizer(kinds[i]))
        form.addRow("type", box)
        for name, default in declared_params(OPTIMIZERS.get(kind, OPTIMIZERS["adam"]).__init__):
            default = DEFAULT_LR if name == "lr" else default  # the section's, for every type
            form.addRow(name.replace("_", " "), self._line(f"optimizer.{name}",
                                                           optimizer.get(name), default,
                                                           HELP.get(name, "")))
        schedule = optimizer.get("schedule") if isinstance(optimizer.get("schedule"), dict) else None
        sbox = self._combo("optimizer.schedule", sorted(SCHEDULES),
                           schedule.get("type") if schedule else None, allow_none="constant lr")
        sbox.activated.disconnect()
        schedules = [None, *sorted(SCHEDULES)]
        sbox.activated.connect(lambda i: self._set_schedule(schedules[i]))
        sbox.setToolTip("Change the learning rate once per epoch")
        form.addRow("schedule", sbox)
        if schedule and schedule.get("type") in SCHEDULES:
            for name, default in declared_params(SCHEDULES[schedule["type"]].__init__):
                form.addRow(f"  {name}", self._line(f"optimizer.schedule.{name}",
                                                    schedule.get(name), default))

    def _metric_row(self, index: int, metric: dict, outputs: list, inputs: list) -> QWidget:
        row = QWidget(self.host)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        for key, items in (("type", sorted(METRICS)), ("pred", outputs), ("target", inputs)):
            box = QComboBox(row)
            values = list(items)
            current = metric.get(key)
            if current not in values:
                values.append(current)
            box.addItems([str(v) for v in values])
            box.setCurrentIndex(values.index(current))
            box.setToolTip({"type": "what to compute", "pred": "the Output with the prediction",
                            "target": "the Input with the right answer"}[key])
            box.activated.connect(lambda i, k=key, vs=values, n=index: self._set_metric(n, k, vs[i]))
            self.editors[f"metrics.{index}.{key}"] = box
            layout.addWidget(box, 1)
        remove = QPushButton("×", row)
        remove.setFixedWidth(24)
        remove.setToolTip("Remove this metric")
        remove.clicked.connect(lambda _c=False, n=index: self._remove_metric(n))
        layout.addWidget(remove)
        return row

    def _set_metric(self, index: int, key: str, value) -> None:
        if self._loading:
            return
        training = self.section()
        training["metrics"][index][key] = value
        self.push(training, f"Training: metric {index + 1} {key} = {value}")

    def _add_metric(self, outputs: list, inputs: list) -> None:
        training = self.section()
        loss = training.get("loss")
        pred = next((o for o in outputs if o != loss), outputs[0] if outputs else "")
        metric = {"type": "accuracy", "pred": pred, "target": inputs[-1] if inputs else ""}
        training["metrics"] = list(training.get("metrics") or []) + [metric]
        self.push(training, "Training: add metric")

    def _remove_metric(self, index: int) -> None:
        training = self.section()
        del training["metrics"][index]
        if not training["metrics"]:
            del training["metrics"]
        self.push(training, f"Training: remove metric {index + 1}")

    def _set_optimizer(self, kind: str) -> None:
        if self._loading:
            return
        training = self.section()
        old = training.get("optimizer") if isinstance(training.get("optimizer"), dict) else {}
        allowed = {n for n, _ in declared_params(OPTIMIZERS[kind].__init__)}
        new = {"type": kind, **{k: v for k, v in old.items() if k in allowed or k == "schedule"}}
        training["optimizer"] = new
        self.push(training, f"Training: optimizer {kind}")

    def _set_schedule(self, kind) -> None:
        if self._loading:
            return
        training = self.section()
        optimizer = training.setdefault("optimizer", copy.deepcopy(DEFAULTS["optimizer"]))
        if kind is None:
            optimizer.pop("schedule", None)
        else:
            schedule = {"type": kind}
            for name, default in declared_params(SCHEDULES[kind].__init__):
                if default is REQUIRED:
                    schedule[name] = setting(training, "epochs") if name == "T_max" \
                        else SCHEDULE_REQUIRED_DEFAULTS.get(name, 10)
            optimizer["schedule"] = schedule
        self.push(training, f"Training: schedule {kind or 'none'}")

    def _run_rows(self, form: QFormLayout, training: dict) -> None:
        self._title(form, "Run")
        for key, label, high, tip in (
                ("batch_size", "batch size", 1_000_000, HELP["batch_size"]),
                ("epochs", "epochs", 10_000_000, HELP["epochs"]),
                ("seed", "seed", 2**31 - 1, "Initial weights, shuffling and dropout")):
            form.addRow(label, self._spin(key, setting(training, key), MINIMUMS[key], high, tip))
        # 1.0 is the suggestion shown in the empty field; the default is no clipping
        form.addRow("clip grad", self._line("clip_grad_norm", training.get("clip_grad_norm"),
                                            1.0, HELP["clip_grad_norm"]))
        box = self._combo("dtype", list(DTYPES), setting(training, "dtype"))
        box.setToolTip("float64 is slower; for checking numbers")
        form.addRow("dtype", box)


__all__ = ["EditTraining", "TrainingForm", "array_names", "dataset_params", "default_section"]
