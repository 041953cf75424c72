"""The dock's Inside tab: the clicked node's values and gradients, gradient flow on the
wires, and one example run through the graph.

A mixin of TrainingDock (dock.py), which owns the widgets: what is here reads the run model's
latest parameter snapshot (run_model.py) and runs the graph through the probe (probe.py) in the
UI thread.
"""

from __future__ import annotations

import os

import numpy as np

from ...core.document import node_path
from ...core.errors import GraphError
from . import overlay as ov
from . import probe as pr


def base_dir_for(doc) -> str:
    """Where relative data paths start: the folder of the file the document came from (an
    example opened as an unsaved copy keeps its folder), else the working folder."""
    return doc.folder or os.getcwd()


class InsideTab:
    """The Inside tab's part of TrainingDock."""

    def _wants_probe(self) -> bool:
        inside = self.tabs.currentIndex() == 1 and self.isVisible()
        return self.probe is not None and ((inside and self.selected is not None)
                                           or self.flow_box.isChecked())

    def _update_probe(self, params: dict) -> None:
        trace = self.probe.trace(params, self.probe_feeds)
        self._follow_scene_selection()
        if self.selected is not None:
            self._show_selected(trace)
        if self.overlay is not None:
            self.overlay.set_gradients(trace, self.probe.loss)

    def _follow_scene_selection(self) -> None:
        """The node shown is the one selected on the canvas when there is one (a node renamed
        while selected keeps its item and its selection, but not its id)."""
        try:
            ids = self.scene.selected_node_ids() if self.scene is not None else []
        except RuntimeError:  # the scene is being torn down
            return
        if len(ids) == 1:
            self.selected = (tuple(self.scene.ref), ids[0])

    def _show_selected(self, trace) -> None:
        ref, node_id = self.selected
        doc = self.doc
        try:
            node = doc.node_at(ref, node_id)
            paths, port = pr.traced_as(doc, ref, node_id)
        except GraphError:
            self.inspector.show_node(None)
            return
        name = node_path(ref, node_id)
        self.inspector.show_node(name, node.type, trace.ports(paths, port), trace.rows,
                                 trace.runs(paths), len(paths), trace.error or "",
                                 self._buffers_of(paths))

    def _buffers_of(self, paths: list) -> dict:
        """The node's buffers in the latest snapshot (BatchNorm's running statistics): what
        training changes besides the weights, by buffer name (the first instance's)."""
        program = self.probe.program() if self.probe is not None else None
        if program is None or not self.snapshot:
            return {}
        out = {}
        for path in paths:
            for name in sorted(program.buffer_names):
                owner, _, buffer = name.partition(".")
                if owner == path and name in self.snapshot:
                    out.setdefault(buffer, self.snapshot[name])
        return out

    # -- inside the network -------------------------------------------------------------------

    def _selection_changed(self) -> None:
        try:
            ids = self.scene.selected_node_ids()
        except RuntimeError:  # the scene is being torn down
            return
        if len(ids) != 1:
            self.selected = None
            self.inspector.show_node(None)
            return
        self.selected = (tuple(self.scene.ref), ids[0])
        self._views_stale = True
        if self.snapshot is not None and self.probe is not None:
            self._redraw_views(force=True)
        else:
            self.inspector.show_node(node_path(*self.selected))

    def inspect_node(self, node_id: str | None, ref=None) -> None:
        """Show a node of the graph at `ref` (the one on the canvas unless given) in the
        Inside tab: what a click on the canvas does."""
        if node_id is None:
            self.selected = None
        else:
            self.selected = (tuple(self.scene.ref if ref is None else ref), node_id)
            if self.selected[0] == tuple(self.scene.ref):
                self.scene.select_nodes([node_id])  # the inspector shows the same node
        self.tabs.setCurrentIndex(1)
        self._views_stale = True
        self._redraw_views(force=True)

    def show_gradient_flow(self, on: bool) -> None:
        if self.flow_box.isChecked() != on:
            self.flow_box.setChecked(on)
            return
        if self.overlay is not None:
            self.overlay.show_flow(on)
        self._views_stale = True
        self._redraw_views(force=True)

    def run_example(self, row: int | None = None) -> dict:
        """Run one training example through the graph; each node's output shape and values go
        on the canvas (in the graph shown, loop bodies too) and under the button. Returns
        {node path: array}: a node in a loop body gives its steps stacked on a first axis."""
        if self.probe is None:
            self._prepare_probe()  # first: it sets the row box's range from the data
        if row is not None:
            self.example_row.setValue(row)
        if self.probe is None or self.snapshot is None:
            self._say("Run one example needs a graph that compiles and data to feed it: "
                      "train (or Step once) first.", error=True)
            return {}
        r = self.example_row.value()
        feeds = {k: v[r:r + 1] for k, v in self.info.train_feeds.items()}
        trace = self.probe.trace(self.snapshot, feeds, grads=False)
        if trace.error:
            self._say(f"Could not run the example: {trace.error}", error=True)
        example, rows, out = {}, [], {}
        for (path, port), steps in trace.values.items():
            value = pr.stack_runs([s[0] if np.ndim(s) and len(s) == 1 else s for s in steps])
            runs = len(steps)
            example[(path, port)] = (value, runs)
            out.setdefault(path, value)
            one = value[-1] if runs > 1 else value
            steps_text = f" × {runs} steps, last" if runs > 1 else ""
            name = path if port == "y" else f"{path}.{port}"
            rows.append(f"<b>{name}</b> {ov.example_shape(one)}{steps_text} {ov.preview(one)}")
        for edge in self.probe.doc.graph.edges:  # the graph's Outputs: what flows into them
            found = example.get((edge.src, edge.src_port))
            if found is not None and self.probe.doc.graph.node(edge.dst).type == "Output":
                out[edge.dst] = found[0]
        if self.overlay is not None:
            self.overlay.set_example(example)
        self.example_text.setText(f"Example row {r}: " + " &nbsp;·&nbsp; ".join(rows))
        return out

    def clear_example(self) -> None:
        if self.overlay is not None:
            self.overlay.set_example({})
        self.example_text.setText("")

    def _prepare_probe(self) -> None:
        """Data and a probe without training (Run one example before any run): load the data
        in the UI thread, once."""
        if not isinstance(self.doc.training, dict):
            return
        try:
            from ...core.trainer import Session
            from .worker import SessionInfo

            doc = self.doc.copy()
            session = Session(doc, params=self.model.params, base_dir=base_dir_for(self.doc))
        except GraphError as exc:
            self._say(str(exc), error=True)
            return
        model = self.model
        model.run_doc = doc
        model.info = SessionInfo(session.train_feeds, session.val_feeds, session.classes,
                                 list(session.names), session.steps_per_epoch,
                                 session.plan.epochs, session.plan)
        self._on_ready(model.info)
        if model.snapshot is None:
            model.snapshot = session.param_dict(copy=True)
