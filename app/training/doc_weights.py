"""The dock's view of the run model's weights: what it holds, and what it says about them.

A mixin of TrainingDock (dock.py). The trained weights belong to one document, the run model's
(run_model.py): the window makes a model per document opened, a run's events count only for
the model that started it, and `save_weights` writes beside a document only the weights that
are that document's. So one document's weights never reach another's file, whatever went
wrong in between. The attributes below read the model (`dock.params` is `dock.model.params`),
so views and tests ask the panel what it shows and get the model's answer.
"""

from __future__ import annotations


class DocumentWeights:
    """The weights' part of TrainingDock."""

    # -- the model's state, as the panel shows it ---------------------------------------------

    @property
    def history(self):
        return self.model.history

    @property
    def params(self) -> dict | None:
        return self.model.params

    @property
    def snapshot(self) -> dict | None:
        return self.model.snapshot

    @property
    def info(self):
        return self.model.info

    @property
    def run_doc(self):
        return self.model.run_doc

    @property
    def weights_owner(self):
        """The document the weights belong to: the model's."""
        return self.model.doc

    @property
    def weights_version(self) -> int:
        return self.model.weights_version

    @property
    def weights_dirty(self) -> bool:
        """Whether the weights differ from those saved beside the file (the window's `*`)."""
        return self.model.dirty

    # -- what the panel says ------------------------------------------------------------------

    def _say_opened(self) -> None:
        """What the model found beside the document just opened: why its weights could not
        be used, or what there is."""
        notice = self.model.opening_notice
        past = sum(1 for run in self.model.history.runs if run.past)
        runs = (f" {past} earlier run{'s are' if past > 1 else ' is'} on the plot, greyed: "
                "right-click a curve to fork from it.") if past else ""
        if notice:
            self._say(notice, error=True)
            self.message.emit(notice)
        elif self.model.params:
            self._say("Loaded the trained weights saved beside the file." + runs)
        else:
            self._say("Press <b>Train</b> to train this graph by its Settings." + runs)

    def reset_weights(self) -> None:
        if self.model.reset():
            self._views_stale = True
            self._say("Weights reset: the next run starts from the initial weights "
                      f"(seed {self.model.seed()}).")

    def save_weights(self, doc_path: str, doc=None) -> str | None:
        """Write the trained weights beside `doc` (the document shown unless given), just saved
        as `doc_path`, and move its runs there (run_model.py). Weights that are not `doc`'s
        are never written, and its file is left as it is."""
        doc = self.doc if doc is None else doc
        if doc is not self.model.doc or doc is not self.doc:
            return None
        return self.model.save_weights(doc_path)

    # -- recovery (app/recovery.py) -----------------------------------------------------------

    def unsaved_weights(self) -> tuple:
        """What autosave keeps of the weights (run_model.RunModel.unsaved_weights)."""
        return self.model.unsaved_weights()

    def restore_weights(self, kind: str | None, path) -> None:
        """Take the weights of recovered work; unreadable ones leave the weights as opened,
        and say so."""
        notice = self.model.restore_weights(kind, path)
        if notice:
            self._say(notice, error=True)
            self.message.emit(notice)
        elif kind == "trained":
            self._say("Restored the trained weights of the recovered work.")
