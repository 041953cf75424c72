"""The main window: canvas in the centre; palette, inspector and problems docks; menus; files.

Dialogs that ask the user something go through small methods (questions.py: `ask_open_path`,
`ask_save_path`, `ask_unsaved`, `ask_restore`, `show_load_errors`, `show_save_error`) so tests
can answer them. A save that fails says why in a dialog and leaves the window modified; the
window's unsaved work is autosaved to files of its own (recovery.py). The clipboard is
clipboard.py's, notes and frames are comment_editing.py's, Open Recent is recent.py's, and
Help's dialogs are help.py's.

An opened document is framed whole (the view keeps it framed as the window settles into its
size); one written without positions is laid out first (app.arrange).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QPointF, QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from .. import core
from ..core.document import Document, GraphError
from . import doc_ops, help, recent
from .breadcrumb import Breadcrumb
from .clipboard import CLIP_MIME, Clipboard  # noqa: F401 (CLIP_MIME: the window's format)
from .comment_editing import CommentEditing
from .controller import EditorController
from .inspector import Inspector
from .live_check import Validator
from .palette import Palette
from .problems import ProblemsList
from .questions import SAVE_ERRORS, Questions, save_error_text
from .recovery import INTERVAL_MS, Recovery
from .scene import CanvasScene
from .training import loop_steps
from .training.dock import TrainingDock
from .training.run_model import RunModel
from .view import CanvasView

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
# Bumped when the default dock layout changes, so that a layout saved by an older version
# (Problems squeezed to a 70 px column) gives way to the new one once.
STATE_VERSION = 1
# The docks' first sizes at 1280x800: the canvas gets the most, and Problems is wide enough to
# read a message or two.
DOCK_WIDTHS = {"paletteDock": 190, "inspectorDock": 270, "problemsDock": 320}
DOCK_MIN_WIDTHS = {"paletteDock": 140, "inspectorDock": 220, "problemsDock": 200}
BOTTOM_HEIGHT = 340


class MainWindow(Questions, Clipboard, CommentEditing, QMainWindow):
    def __init__(self, autosave_ms: int | None = None):
        super().__init__()
        self.setObjectName("wiregradMain")
        self.controller = EditorController(Document(), self)
        self.scene = CanvasScene(self.controller, self)
        self.view = CanvasView(self.scene, self.controller, self)
        self.validator = Validator(self.controller, parent=self)
        self.breadcrumb = Breadcrumb(self.controller, self)
        self.restored_dirty = False
        self.example_file = None  # the example's file name, while an example's copy is open

        centre = QWidget(self)
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.breadcrumb)
        layout.addWidget(self.view)
        self.setCentralWidget(centre)

        self.palette = Palette(self._add_from_palette, self)
        self.inspector = Inspector(self.controller, self)
        self.problems = ProblemsList(self)
        self.history = QUndoView(self.controller.stack)
        self.history.setEmptyLabel("<opened>")
        self.palette_dock = self._dock("Palette", "paletteDock", self.palette, Qt.LeftDockWidgetArea)
        self.inspector_dock = self._dock("Inspector", "inspectorDock", self.inspector,
                                         Qt.RightDockWidgetArea)
        self.problems_dock = self._dock("Problems", "problemsDock", self.problems,
                                        Qt.BottomDockWidgetArea)
        self.history_dock = self._dock("History", "historyDock", self.history, Qt.RightDockWidgetArea)
        self.history_dock.hide()
        self.run_model = RunModel(self.controller.doc, self)  # a new one for every document
        self.training = TrainingDock(self.controller, self.scene, self, self.run_model)
        loop_steps.shared(self.controller).attach(self.training)  # the Loop view's runs
        self.training_dock = self._dock("Training", "trainingDock", self.training,
                                        Qt.BottomDockWidgetArea)
        # Bound methods, not lambdas: Qt drops those connections when the window is deleted,
        # while the controller's signals can still fire at exit.
        self.training.message.connect(self._show_long_message)
        self.run_model.weights_changed.connect(self._refresh_title)
        self.controller.document_replaced.connect(self._new_run_model)

        self.scene.selectionChanged.connect(self._selection_changed)
        self.validator.updated.connect(self._analysis_ready)
        self.problems.jump.connect(self.jump_to)
        self.controller.stack.cleanChanged.connect(self._refresh_title)
        self.controller.message.connect(self._show_message)
        self.controller.ref_changed.connect(self._after_navigation)
        self.view.comment_double_clicked.connect(self.edit_comment)

        self._build_actions()
        self._build_menus()
        self.recovery = Recovery(self, autosave_ms or INTERVAL_MS)
        self.recovery.failed.connect(self._show_long_message)
        self.statusBar()  # there from the start: the first message does not shift the layout
        self.resize(1280, 800)
        self.layout_pending = not self._restore_settings()
        self.update_title()

    def _dock(self, title, name, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setMinimumWidth(DOCK_MIN_WIDTHS.get(name, 0))
        self.addDockWidget(area, dock)
        return dock

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.layout_pending:
            self.layout_pending = False
            self.size_docks()

    def size_docks(self) -> None:
        """The default dock sizes. Set once the window is shown: before that its layout has
        no size to share out, and resizeDocks leaves Problems at its narrowest."""
        widths = [self.palette_dock, self.inspector_dock]
        self.resizeDocks(widths, [DOCK_WIDTHS[d.objectName()] for d in widths], Qt.Horizontal)
        bottom = [self.problems_dock, self.training_dock]
        self.resizeDocks(bottom, [BOTTOM_HEIGHT, BOTTOM_HEIGHT], Qt.Vertical)
        problems = DOCK_WIDTHS["problemsDock"]
        self.resizeDocks(bottom, [problems, max(self.width() - problems, problems)], Qt.Horizontal)

    # -- actions and menus ----------------------------------------------------------------

    def _action(self, text, slot, shortcut=None, tip="") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_actions(self) -> None:
        S = QKeySequence.StandardKey
        a = self._action
        self.act_new = a("&New", self.new_document, S.New)
        self.act_open = a("&Open…", self.open_dialog, S.Open)
        self.act_save = a("&Save", self.save, S.Save)
        self.act_save_as = a("Save &As…", self.save_as, S.SaveAs)
        self.act_export = a("&Export…", self.export_dialog, "Ctrl+E",
                            "Write the graph as a numpy or PyTorch module")
        self.act_quit = a("&Quit", self.close, S.Quit)
        self.act_undo = self.controller.stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence(S.Undo))
        self.act_redo = self.controller.stack.createRedoAction(self, "&Redo")
        # Both common keys, each once: the platform's standard Redo is one of them, and a key
        # bound twice is an "ambiguous shortcut" that does nothing.
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.act_cut = a("Cu&t", self.cut, S.Cut)
        self.act_copy = a("&Copy", self.copy, S.Copy)
        self.act_paste = a("&Paste", self.paste, S.Paste)
        self.act_duplicate = a("D&uplicate", self.duplicate, "Ctrl+D")
        self.act_delete = a("&Delete", self.delete_selection)
        self.act_delete.setShortcuts([QKeySequence(S.Delete), QKeySequence(Qt.Key_Backspace)])
        self.act_select_all = a("Select &All", self.select_all, S.SelectAll)
        self.act_history = a("&History", self.show_history, "Ctrl+H")
        self.act_frame_all = a("Frame &All", self.view.frame_all, "Home")
        self.act_frame_sel = a("&Frame Selection", self.view.frame_selection, "F")
        self.act_zoom_in = a("Zoom &In", lambda: self.view.zoom_by(1.25), S.ZoomIn)
        self.act_zoom_out = a("Zoom &Out", lambda: self.view.zoom_by(0.8), S.ZoomOut)
        self.act_up = a("Go &Up", self.go_up, "Alt+Up")
        self.act_group = a("&Group into Block", self.group_selection, "Ctrl+G")
        self.act_ungroup = a("&Ungroup", self.ungroup_selection, "Ctrl+Shift+G")
        self.act_arrange = a("&Arrange", self.arrange_graph, "Ctrl+Shift+L",
                             "Lay out this graph, and the bodies in it, in layers")
        self.act_open_body = a("&Open Body", self.open_selected)
        self.act_note = a("Add &Note", lambda: self.add_comment("note"))
        self.act_frame = a("Add F&rame", lambda: self.add_comment("frame"))
        t = self.training
        self.act_train = a("&Train", self.train, "Ctrl+Return", "Train the graph by its settings")
        self.act_pause = a("&Pause / Resume", t.toggle_pause, "Ctrl+.")
        self.act_step = a("&Step One Batch", t.step)
        self.act_stop = a("St&op", t.stop, "Ctrl+Shift+.")
        self.act_reset_weights = a("&Reset Weights", t.reset_weights)
        self.act_gradient_flow = QAction("Show &Gradient Flow", self)
        self.act_gradient_flow.setCheckable(True)
        self.act_gradient_flow.toggled.connect(t.show_gradient_flow)
        t.flow_box.toggled.connect(self.act_gradient_flow.setChecked)
        self.act_run_example = a("Run &One Example", lambda: t.run_example())
        self.act_shortcuts = a("&Keyboard Shortcuts", lambda: help.show_shortcuts(self), "Ctrl+/",
                               "Every shortcut of the menus and the canvas")
        self.act_about = a("&About Wiregrad", lambda: help.show_about(self))
        for action in (self.act_undo, self.act_redo, self.act_cut, self.act_copy, self.act_paste,
                       self.act_duplicate, self.act_delete, self.act_select_all, self.act_frame_sel,
                       self.act_frame_all):
            action.setShortcutContext(Qt.WindowShortcut)
            self.addAction(action)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_new, self.act_open])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.examples_menu = file_menu.addMenu("E&xamples")
        for path in sorted(EXAMPLES.glob("*.wg.json")):
            self.examples_menu.addAction(self._action(path.name.removesuffix(".wg.json"),
                                                      lambda p=path: self.open_path(p, example=True)))
        file_menu.addSeparator()
        file_menu.addActions([self.act_save, self.act_save_as, self.act_export])
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit = bar.addMenu("&Edit")
        edit.addActions([self.act_undo, self.act_redo])
        edit.addSeparator()
        edit.addActions([self.act_cut, self.act_copy, self.act_paste, self.act_duplicate,
                         self.act_delete, self.act_select_all])
        edit.addSeparator()
        edit.addAction(self.act_history)
        view = bar.addMenu("&View")
        view.addActions([self.act_frame_all, self.act_frame_sel, self.act_zoom_in, self.act_zoom_out])
        view.addSeparator()
        for dock in (self.palette_dock, self.inspector_dock, self.problems_dock, self.history_dock,
                     self.training_dock):
            view.addAction(dock.toggleViewAction())
        graph = bar.addMenu("&Graph")
        graph.addActions([self.act_open_body, self.act_up, self.act_group, self.act_ungroup])
        graph.addSeparator()
        graph.addAction(self.act_arrange)
        graph.addSeparator()
        graph.addActions([self.act_note, self.act_frame])
        train = bar.addMenu("&Training")
        train.addActions([self.act_train, self.act_pause, self.act_step, self.act_stop,
                          self.act_reset_weights])
        train.addSeparator()
        train.addActions([self.act_gradient_flow, self.act_run_example])
        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.act_shortcuts, self.act_about])
        self._refresh_recent()

    # -- files ----------------------------------------------------------------------------

    def is_dirty(self) -> bool:
        """Unsaved edits, restored work, or trained (or reset) weights not yet saved."""
        return (self.restored_dirty or not self.controller.stack.isClean()
                or self.run_model.dirty)

    def _new_run_model(self) -> None:
        """A document opened: a run model of its own, which every training view follows."""
        old, self.run_model = self.run_model, RunModel(self.controller.doc, self)
        self.run_model.weights_changed.connect(self._refresh_title)
        self.training.set_model(self.run_model)  # the dock hands it to the canvas overlay
        old.retire()
        old.deleteLater()

    def _refresh_title(self, *_signal_args) -> None:
        self.update_title()

    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def _show_long_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def update_title(self) -> None:
        doc = self.controller.doc
        name = Path(doc.path).name if doc.path else (doc.name or "Untitled")
        self.setWindowTitle(f"{name}[*] — Wiregrad")
        self.setWindowModified(self.is_dirty())

    def set_document(self, doc: Document, dirty: bool = False) -> None:
        self.controller.set_document(doc)
        self._arrange_if_unplaced()
        self.controller.stack.setClean()
        self.restored_dirty = dirty
        self.recovery.clear()  # the last document's work was saved or discarded before
        self.validator.start()  # shapes and errors arrive from a worker a moment later
        self.view.fit_to_window()  # and again as the window takes its final size
        self.update_title()

    def _arrange_if_unplaced(self) -> None:
        """A document written without positions (by hand, or by a script) opens laid out.

        This is part of opening, not an edit: the undo stack forgets it and the window is not
        marked modified. The layout follows from the file alone, so opening it again gives the
        same picture, and nothing is lost by not saving; the positions are written with the
        next save the user makes."""
        arrange = _arrange_module()
        if arrange is None or not arrange.lacks_positions(self.controller.doc):
            return
        arrange.arrange(self.controller, ())
        self.controller.stack.clear()

    def arrange_graph(self) -> None:
        """Graph > Arrange: lay out the graph shown and each body in it, as one undoable step."""
        arrange = _arrange_module()
        if arrange is None:
            self._show_message("Arrange is not available in this installation")
            return
        arrange.arrange(self.controller, self.controller.ref)
        self.view.fit_to_window()

    def new_document(self) -> None:
        if self.maybe_keep_changes():
            self.example_file = None
            self.set_document(Document())

    def open_dialog(self) -> None:
        if not self.maybe_keep_changes():
            return
        path = self.ask_open_path()
        if path:
            self.open_path(path)

    def open_path(self, path, example: bool = False) -> bool:
        """Open a file; a file that fails to load shows its errors and changes nothing."""
        try:
            doc = core.load(path)
        except GraphError as exc:
            self.show_load_errors(str(path), list(exc.errors))
            return False
        if example:
            doc.path = None  # an example opens as a new, unsaved copy
            doc.name = doc.name or Path(path).name
        else:
            doc.path = os.path.abspath(str(path))
        self.example_file = Path(path).name if example else None
        self.set_document(doc)
        if not example:
            self._add_recent(doc.path)
        return True

    def save(self) -> bool:
        if not self.controller.doc.path:
            return self.save_as()
        return self._write(self.controller.doc.path)

    def save_as(self, path=None) -> bool:
        path = path or self.ask_save_path()
        if not path:
            return False
        if not str(path).endswith(".json"):
            path = f"{path}.wg.json"
        return self._write(str(path))

    def _write(self, path: str) -> bool:
        """Save the document, then its trained weights beside it. What fails is shown in a
        dialog, and whatever was not written keeps the window modified."""
        doc = self.controller.doc
        try:
            core.save(doc, path)
        except SAVE_ERRORS as exc:
            self.show_save_error(f"Could not save the graph: {save_error_text(path, exc)}")
            return False
        self.controller.stack.setClean()
        self.restored_dirty = False
        self._add_recent(path)
        try:
            self.training.save_weights(path, doc)  # the trained weights go beside the file
        except SAVE_ERRORS as exc:
            self.update_title()
            self.show_save_error("The graph was saved, but not its trained weights: "
                                 + save_error_text(path, exc))
            return False
        self.recovery.clear()
        self.update_title()
        self.statusBar().showMessage(f"Saved {path}", 3000)
        return True

    def maybe_keep_changes(self) -> bool:
        """Before the document goes away: True to go on (saved or discarded), False to stay."""
        if not self.is_dirty():
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def offer_recovery(self) -> bool:
        """Offer the work of windows that ended without closing (never a live window's): the
        first one accepted comes back here; those not reached wait for the next window."""
        for orphan in self.recovery.orphans():
            if self.ask_restore(orphan.path):
                return self._restore(orphan)
            orphan.discard()
        return False

    def _restore(self, orphan) -> bool:
        try:
            doc = core.loads(orphan.text(), source="recovered work")
        except GraphError as exc:
            self.show_load_errors("recovered work", list(exc.errors))
            orphan.discard()
            return False
        doc.path = orphan.path
        doc.folder = orphan.data_folder or (os.path.dirname(os.path.abspath(orphan.path))
                                            if orphan.path else None)
        self.set_document(doc, dirty=True)
        self.training.restore_weights(orphan.weights, orphan.weights_file)
        if self.recovery.autosave():  # safe in this window's own files before the orphan's go
            orphan.discard()
        return True

    def _add_recent(self, path: str) -> None:
        recent.remember(path)
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        recent.fill_menu(self.recent_menu, self.open_recent)

    def open_recent(self, path: str) -> bool:
        return self.maybe_keep_changes() and self.open_path(path)

    # -- window state ---------------------------------------------------------------------

    def _restore_settings(self) -> bool:
        """The last window's size and dock layout; False when there was no layout to restore."""
        settings = QSettings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = settings.value("window/state")
        return isinstance(state, QByteArray) and self.restoreState(state, STATE_VERSION)

    def closeEvent(self, event) -> None:
        if not self.maybe_keep_changes():
            event.ignore()
            return
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState(STATE_VERSION))
        self.recovery.close()
        self.training.shutdown()  # a run ends after its current step; its thread is joined
        self.run_model.retire()
        event.accept()

    # -- editing --------------------------------------------------------------------------

    def _add_from_palette(self, type_name: str) -> None:
        self.view.add_node_at(type_name, self.view.mapToScene(self.view.viewport().rect().center()))

    def selected_ids(self) -> list:
        return self.scene.selected_node_ids()

    def delete_selection(self) -> None:
        ids, notes = self.selected_ids(), self.scene.selected_comment_ids()
        if ids and notes:
            with self.controller.macro("Delete"):
                self.controller.remove_nodes(ids)
                self.delete_comments(notes, "Edit comments")
        elif ids:
            self.controller.remove_nodes(ids)
        elif notes:
            self.delete_comments(notes)

    def select_all(self) -> None:
        for item in self.scene.items():
            if item.flags() & item.GraphicsItemFlag.ItemIsSelectable:
                item.setSelected(True)

    def group_selection(self) -> None:
        instance = self.controller.group(self.selected_ids())
        if instance:
            self.scene.select_nodes([instance])

    def ungroup_selection(self) -> None:
        new = []
        ids = [i for i in self.selected_ids()
               if self.controller.doc.graph_at(self.controller.ref).node(i).type == "Block"]
        for node_id in ids:
            new += self.controller.ungroup(node_id)
        self.scene.select_nodes(new)

    def open_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            self.controller.open_node(ids[0])

    def go_up(self) -> None:
        crumbs = self.controller.breadcrumb()
        if len(crumbs) > 1:
            self.controller.open_graph(crumbs[-2][1] if len(crumbs[-2][1]) < len(self.controller.ref)
                                       else crumbs[-3][1])

    def train(self) -> None:
        self.training_dock.show()
        self.training_dock.raise_()
        self.training.train()

    def export_dialog(self) -> None:
        from .export_dialog import ExportDialog

        path = self.controller.doc.path
        ExportDialog(self.controller.doc, self, str(Path(path).parent) if path else "").exec()

    def show_history(self) -> None:
        self.history_dock.show()
        self.history_dock.raise_()

    # -- analysis and navigation ----------------------------------------------------------

    def _analysis_ready(self, result) -> None:
        self.scene.apply_analysis(result)
        self.problems.show_errors(result.errors, self.label_of,
                                  getattr(result, "ignored_by_training", set()))
        count = len(result.errors)
        self.problems_dock.setWindowTitle(f"Problems ({count})" if count else "Problems")

    def _selection_changed(self) -> None:
        self.inspector.show_nodes(self.selected_ids())

    def _after_navigation(self, *_signal_args) -> None:
        self.view.fit_to_window()

    def label_of(self, path: str):
        """The label a node path's node shows on the canvas, or None (no label, or no node)."""
        found = doc_ops.resolve_path(self.controller.doc, path)
        if found is None or found[1] is None:
            return None
        node = self.controller.doc.graph_at(found[0]).node(found[1])
        return node.label if node is not None else None

    def jump_to(self, path: str) -> bool:
        """Show the node a path names (opening its body if needed), selected and centred."""
        found = doc_ops.resolve_path(self.controller.doc, path)
        if found is None:
            return False
        ref, node_id = found
        self.controller.open_graph(ref)
        if node_id is not None:
            self.scene.select_nodes([node_id])
            item = self.scene.node_items.get(node_id)
            if item is not None:
                self.view.auto_fit = False
                self.view.centerOn(item)
        return True

    def scene_center(self) -> QPointF:
        return self.view.mapToScene(self.view.viewport().rect().center())


def _arrange_module():
    """app.arrange (the layered layout), imported when first used; None where it is missing."""
    try:
        return importlib.import_module(".arrange", __package__)
    except ModuleNotFoundError as exc:
        if exc.name not in (f"{__package__}.arrange", "grandalf"):
            raise
        return None
