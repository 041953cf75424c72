"""The dock's trained weights, kept with the document they were trained for.

A mixin of TrainingDock (dock.py). The trained weights (`params`) belong to one document,
`weights_owner`: the panel's state is built afresh for every document opened (`_fresh_state`),
a run's events count only while the document it trained is still the one shown, and
`save_weights` writes beside a document only the weights that are that document's. So one
document's weights never reach another's file, whatever went wrong in between.
"""

from __future__ import annotations

from .weights import load_for, save_weights, weights_path


class DocumentWeights:
    """The weights' part of TrainingDock."""

    @property
    def weights_dirty(self) -> bool:
        """Whether the weights differ from those saved beside the file (the window's `*`)."""
        return self._weights_dirty

    @weights_dirty.setter
    def weights_dirty(self, dirty: bool) -> None:
        if dirty != self._weights_dirty:
            self._weights_dirty = dirty
            self.weights_changed.emit(dirty)

    def _keep(self, params: dict | None, dirty: bool) -> None:
        """Make `params` the shown document's weights (None: its initial ones)."""
        self.params = params
        self.snapshot = params
        self.weights_owner = self.doc
        self.weights_version += 1
        self.weights_dirty = dirty
        self._views_stale = True

    def _take_saved_weights(self) -> None:
        """The weights saved beside the document just opened, or fresh ones and why."""
        params, notice = load_for(self.doc)
        self._keep(params, dirty=False)
        if notice:
            self._say(notice, error=True)
            self.message.emit(notice)
        elif params:
            self._say("Loaded the trained weights saved beside the file.")
        else:
            self._say("Press <b>Train</b> to train this graph by its Settings.")

    def reset_weights(self) -> None:
        if self.state != "idle":
            return
        was_trained = self.params is not None  # nothing trained, nothing to forget
        self._keep(None, dirty=self.weights_dirty or was_trained)
        self.snapshot = self._initial_params()
        self._say("Weights reset: the next run starts from the initial weights "
                  f"(seed {self._seed()}).")

    def save_weights(self, doc_path: str, doc=None) -> str | None:
        """Write the trained weights beside `doc` (the document shown unless given), just saved
        as `doc_path`. With none (after Reset weights), take away a file left there, so that
        reopening does not bring them back. Weights that are not `doc`'s are never written,
        and its file is left as it is."""
        doc = self.doc if doc is None else doc
        if doc is not self.weights_owner or doc is not self.doc:
            return None
        if self.params is None:
            stale = weights_path(doc_path)
            if self.weights_dirty and stale.exists():
                stale.unlink()
            self.weights_dirty = False
            return None
        path = save_weights(doc_path, self.params)
        self.weights_dirty = False
        return str(path)

    # -- recovery (app/recovery.py) -----------------------------------------------------------

    def unsaved_weights(self) -> tuple:
        """What autosave keeps of the weights: ("trained", weights) when trained weights are
        not saved beside the file, ("reset", None) after Reset weights, (None, None) when the
        file's stand."""
        if not self.weights_dirty:
            return None, None
        return ("trained", self.params) if self.params is not None else ("reset", None)

    def restore_weights(self, kind: str | None, path) -> None:
        """Take the weights of recovered work, `kind` as `unsaved_weights` gave it, from the
        .npz at `path`; unreadable ones leave the weights as opened, and say so."""
        if kind == "reset":
            self._keep(None, dirty=True)
            self.snapshot = self._initial_params()
            return
        if kind != "trained":
            return
        params, notice = load_for(self.doc, path, "The recovered weights")
        if notice or params is None:
            notice = notice or "The recovered weights were not found; the file's stand."
            self._say(notice, error=True)
            self.message.emit(notice)
            return
        self._keep(params, dirty=True)
        self._say("Restored the trained weights of the recovered work.")
