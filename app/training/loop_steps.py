"""Which Loop is unrolled, for which example, at which step: the model the step views share.

Select a Loop and the inspector's step panel asks this model to unroll it; the canvas, showing
that loop's body, labels its wires with the step's values. There is one model per editor
(`shared(controller)`, a child of the controller), so the inspector and the canvas need not know
each other.

The run it unrolls comes from a training source: the training dock (or anything with its
attributes: `run_doc`, the document copy the last run trained or "Run one example" prepared;
`snapshot`, its latest weights; `info`, the run's data and plan; `state_changed`; and, when it
has them, `example_row` and `example_button`, to follow Run one example). The window
attaches it; until then the model looks for the window's `training`. The work (compiling the
run's document, one traced example, the per-sample step counts) happens in a background
thread; each answer carries a token, and an answer to an older request is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from ... import core
from ...core.errors import GraphError
from . import unroll
from .background import Background

NO_RUN = "Train, or Run one example, to unroll this loop step by step."


@dataclass
class RunContext:
    """What the last run trained: the document copy, its weights, its data and plan."""

    doc: object
    params: dict
    feeds: dict
    loss: str | None
    dtype: str

    @property
    def rows(self) -> int:
        return len(next(iter(self.feeds.values()))) if self.feeds else 0


def run_context(source) -> RunContext | None:
    """The run a training source holds, or None before any run (or Run one example)."""
    if source is None:
        return None
    info = getattr(source, "info", None)
    doc = getattr(source, "run_doc", None)
    params = getattr(source, "snapshot", None) or getattr(source, "params", None)
    if info is None or doc is None or not params or not info.train_feeds:
        return None
    plan = info.plan
    return RunContext(doc, params, info.train_feeds, plan.loss, plan.dtype)


def _same(request: tuple, before: tuple | None) -> bool:
    """The same run document and weights (the objects: a new run makes new ones), row and
    loop."""
    return before is not None and request[0] is before[0] and request[1] is before[1] \
        and request[2:] == before[2:]


def shared(controller) -> StepModel:
    """The editor's one StepModel (made on first use, owned by the controller)."""
    for child in controller.children():
        if isinstance(child, StepModel):
            return child
    return StepModel(controller)


class StepModel(QObject):
    changed = Signal()          # a new unrolled example, another loop, a status, or nothing
    step_changed = Signal(int)

    def __init__(self, controller):
        super().__init__(controller)
        self.controller = controller
        self.loop: tuple | None = None        # (graph ref, loop id) of the loop unrolled
        self.record: unroll.LoopSteps | None = None
        self.step = 0
        self.row = 0
        self.rows = 0                         # training rows of the run (the example range)
        self.status = ""                      # what the panel says instead of, or with, steps
        self.working = False
        self._source = None
        self._bound = None                    # the source whose signals reach us
        self._token = 0
        self._made_from = None                # (run doc, weights, row, loop) of the request
        self._compiled = (None, None, None)   # (doc, dtype, program): the worker thread's
        self.background = Background(self)
        self.background.done.connect(self._on_done)
        controller.document_replaced.connect(self.clear)

    # -- the training source ------------------------------------------------------------------

    def attach(self, source) -> None:
        """Take runs from this source (the training dock)."""
        self._source = source
        self._bind(source)

    def source(self):
        if self._source is None:  # not attached: the window's training dock, if it has one
            window = self.controller.parent()
            found = getattr(window, "training", None) if window is not None else None
            if found is not None:
                self._bind(found)
            return found
        return self._source

    def _bind(self, source) -> None:
        if source is self._bound:
            return
        self._bound = source
        signal = getattr(source, "state_changed", None)
        if signal is not None:
            signal.connect(self._on_run_state)
        row_box = getattr(source, "example_row", None)
        if row_box is not None:
            self.row = row_box.value()
            row_box.valueChanged.connect(self._follow_row)
        button = getattr(source, "example_button", None)
        if button is not None:  # Run one example may be what brings the first weights and data
            button.clicked.connect(self._example_ran)

    def _on_run_state(self, state: str) -> None:
        if state in ("idle", "paused") and self.loop is not None:
            self.refresh()  # the weights the run ended (or paused) with

    def _example_ran(self, *_signal_args) -> None:
        if self.loop is not None:
            self.refresh(only_if_changed=True)

    def _follow_row(self, row: int) -> None:
        if row != self.row:
            self.set_row(row)

    # -- what is shown ------------------------------------------------------------------------

    def show_loop(self, ref, loop_id: str) -> None:
        """Unroll this Loop (nothing new if it is the one shown and nothing changed)."""
        loop = (tuple(ref), loop_id)
        if loop != self.loop:
            self.loop = loop
            self.record = None
            self.step = 0
        self.refresh(only_if_changed=True)

    def set_row(self, row: int) -> None:
        self.row = max(0, int(row))
        if self.loop is not None:
            self.refresh()

    def set_step(self, step: int) -> None:
        steps = self.record.steps if self.record is not None else 0
        step = max(0, min(int(step), steps - 1)) if steps else 0
        if step != self.step:
            self.step = step
            self.step_changed.emit(step)

    def clear(self) -> None:
        self._token += 1
        self.background.discard()
        self.loop, self.record, self._made_from = None, None, None
        self.step, self.status, self.working = 0, "", False
        self.changed.emit()

    def body_ref(self) -> tuple | None:
        """The graph ref of the unrolled loop's body (what the canvas shows inside it)."""
        if self.loop is None:
            return None
        ref, loop_id = self.loop
        return ref + (loop_id, "body")

    def at_step(self, node_id: str, port: str):
        """(value, gradient) a body node's port gave at the current step, or None."""
        if self.record is None:
            return None
        value = self.record.value(node_id, port, self.step)
        if value is None:
            return None
        return value, self.record.grad(node_id, port, self.step)

    # -- unrolling ----------------------------------------------------------------------------

    def refresh(self, only_if_changed: bool = False) -> None:
        """Unroll the loop again from the source's latest run, in the background."""
        if self.loop is None:
            return
        ctx = run_context(self.source())
        if ctx is None:
            self._token += 1  # an answer on its way is for a run no longer there
            self._settle(None, NO_RUN)
            return
        ref, loop_id = self.loop
        try:
            node = ctx.doc.node_at(ref, loop_id)
        except GraphError:
            node = None
        if node is None or node.type != "Loop":
            self._token += 1
            self._settle(None, f"The last run's graph has no Loop {loop_id!r} here: train "
                               "again (or Run one example) to unroll it.")
            return
        self.rows = ctx.rows
        row = min(self.row, max(ctx.rows - 1, 0))
        made_from = (ctx.doc, ctx.params, row, self.loop)
        if only_if_changed and _same(made_from, self._made_from):
            return
        self._made_from = made_from
        path = unroll.loop_path(ctx.doc, ref, loop_id)
        kind = unroll.loop_kind(node.params)
        self._token += 1
        self.working = True
        self.status = f"Running example {row} through {loop_id}…"
        self.changed.emit()
        self.background.submit(lambda: self._unroll(ctx, path, kind, row), self._token)

    def _unroll(self, ctx: RunContext, path: str, kind: str, row: int) -> unroll.LoopSteps:
        """In the worker thread: the program of the run's document (kept while it is the
        same), then one example traced through it."""
        doc, dtype, program = self._compiled
        if doc is not ctx.doc or dtype != ctx.dtype:
            program = core.compile(ctx.doc, ctx.dtype)
            self._compiled = (ctx.doc, ctx.dtype, program)
        return unroll.unroll(program, ctx.params, ctx.feeds, ctx.loss, path, kind, row)

    def _on_done(self, token, result) -> None:
        if token != self._token:
            return  # an older request's answer
        if isinstance(result, Exception):
            self._made_from = None
            self._settle(None, f"Could not run the example: {result}")
            return
        if result.error:
            self._settle(None, f"Could not run the example: {result.error}")
            return
        if result.steps == 0:
            self._settle(result, f"The loop did not run for example {result.row}.")
            return
        self._settle(result, "")

    def _settle(self, record, status: str) -> None:
        self.working = False
        self.record = record
        self.status = status
        steps = record.steps if record is not None else 0
        self.step = min(self.step, steps - 1) if steps else 0
        self.changed.emit()
