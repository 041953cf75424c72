"""Adding and editing notes and frames on the canvas (comments.py draws them).

A mixin of MainWindow (window.py), like clipboard.py: each edit is one undoable change of the
document's `ui["comments"]`.
"""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog

from . import comments

NOTE_SIZE = (220, 90)      # a new note at the centre of the view
FRAME_SIZE = (420, 260)    # a new frame with nothing selected to surround
FRAME_MARGIN = (30, 50)    # around the selected nodes: the sides and bottom, and the title


class CommentEditing:
    """The comments' part of MainWindow."""

    def add_comment(self, kind: str) -> str:
        """A note at the centre of the view, or a frame around the selected nodes (else at the
        centre); returns its id."""
        doc = self.controller.doc
        rect = self.scene.nodes_rect(self.selected_ids()) if kind == "frame" else None
        if rect is None or rect.isNull():
            centre = self.view.mapToScene(self.view.viewport().rect().center())
            w, h = NOTE_SIZE if kind == "note" else FRAME_SIZE
            rect_list = [round(centre.x() - w / 2), round(centre.y() - h / 2), w, h]
        else:
            side, top = FRAME_MARGIN
            rect = rect.adjusted(-side, -top, side, side)
            rect_list = [round(rect.x()), round(rect.y()), round(rect.width()),
                         round(rect.height())]
        entry = {"id": comments.new_comment_id(doc), "kind": kind,
                 "graph": list(self.controller.ref),
                 "text": "Note" if kind == "note" else "Frame", "rect": rect_list}
        self.controller.set_ui(comments.KEY, comments.with_comment(doc, entry),
                               f"Add {'note' if kind == 'note' else 'frame'}")
        return entry["id"]

    def edit_comment(self, comment_id: str) -> None:
        entry = next((c for c in self.controller.doc.ui.get(comments.KEY, [])
                      if c.get("id") == comment_id), None)
        if entry is None:
            return
        text, ok = QInputDialog.getMultiLineText(self, "Comment", "Text:", entry.get("text", ""))
        if ok:
            self.set_comment_text(comment_id, text)

    def set_comment_text(self, comment_id: str, text: str) -> None:
        doc = self.controller.doc
        for entry in doc.ui.get(comments.KEY, []):
            if entry.get("id") == comment_id and entry.get("text") != text:
                changed = dict(entry, text=text)
                self.controller.set_ui(comments.KEY, comments.with_comment(doc, changed),
                                       "Edit comment")

    def delete_comments(self, ids: list, text: str = "Delete comments") -> None:
        self.controller.set_ui(comments.KEY,
                               comments.without_comments(self.controller.doc, ids), text)
