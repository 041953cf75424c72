"""The numpy target: the engine's own graph functions, with a file around them.

The graph functions (forward, and per loss a function writing its gradients) are written by
the code generator, core/codegen/module.py: the same functions the engine runs. What this
module adds is what a standalone file needs around them: a header and imports, the
initial values (init_params), the helpers the rules call (copied from nodes/kernels/),
`forward(params, feeds)` and `value_and_grad(params, feeds, loss)` taking plain dicts, and
the training script (training.py).

`forward` gives the Outputs its feeds allow (inference without targets, codegen/feeds.py):
the file has one graph function per set of Outputs some feeds allow, the full set first, and
forward calls the largest one whose Inputs are all fed.
"""

from __future__ import annotations

from ..codegen.feeds import output_needs, output_sets, set_inputs
from ..codegen.layout import Layout
from ..codegen.module import MODULE_NAMES, GraphModule
from ..codegen.passes import q
from ..codegen.writer import Writer
from .common import (
    IMPORTS_PLACEHOLDER,
    Exporter,
    graph_comment,
    header,
    imports_for,
    init_code,
    join_parts,
)
from .training import numpy_parts


class NumpyExporter(Exporter):
    """Writes the numpy module for a document."""

    def __init__(self, layout: Layout, weights_file: str | None = None,
                 data_dir: str | None = None):
        super().__init__(layout, weights_file, data_dir, MODULE_NAMES)
        self.module = GraphModule(layout)

    def losses(self) -> list:
        """The Outputs that hold a single number: value_and_grad takes any of them."""
        return [name for name, t in self.layout.output_types.items()
                if all(d is not None for d in t.shape) and _prod(t.shape) == 1]

    def export(self) -> str:
        needs = output_needs(self.layout)
        # One function per set of Outputs some feeds allow (all of them first): forward picks
        # the one its feeds allow, so that {"x": xb} alone gives the predictions.
        forwards = [self.module.graph_function(list(outputs)) for outputs in output_sets(needs)]
        losses = [self.module.graph_function([loss], loss) for loss in self.losses()]
        parts = [header(self.doc, "numpy") + "\n" + IMPORTS_PLACEHOLDER + "\n"
                 + graph_comment(self.doc) + f"DOCUMENT_NAME = {q(self.doc.name or '')}\n"
                 f"DTYPE = np.{self.layout.dtype}\n"]
        parts.append(init_code(self.layout))
        shared = self.layout.compiler.shared
        if shared:
            w = Writer()
            w.line("# Tensors that nodes share (format.md, version 2): a sharing node's name ->")
            w.line("# the owner's; the graph's functions find the owner's arrays under both.")
            w.line("SHARED = {")
            for name, owner in shared.items():
                w.line(f"    {q(name)}: {q(owner)},")
            w.line("}")
            parts.append(w.text())
        parts.extend(self.module.helper_sources())
        parts.extend(w.text() for w in self.module.writers())
        parts.append(self._forward(forwards, needs))
        parts.append(self._value_and_grad(losses))
        parts.extend(numpy_parts(self.layout, self.weights_file, self.data_dir))
        text = join_parts(parts)
        return text.replace(IMPORTS_PLACEHOLDER, imports_for(text, ["numpy as np"]))

    def _feeds(self, ids: list) -> str:
        """The graph function's Input arguments, read from `feeds` and cast as the engine does."""
        out = []
        for input_id in ids:
            dtype = "np.int64" if self.layout.input_types[input_id].dtype == "int64" else "DTYPE"
            out.append(f", np.asarray(feeds[{q(input_id)}], dtype={dtype})")
        return "".join(out)

    def _share(self, w: Writer, table: str) -> None:
        """A sharing node's tensors are its owner's: the same arrays under its names too."""
        if self.layout.compiler.shared:
            w.line(f"{table}.update({{name: {table}[owner] for name, owner in SHARED.items()}})")

    def _forward(self, forwards: list, needs: dict) -> str:
        w = Writer()
        w.line("def forward(params, feeds, train=False, seed=0):")
        with w.indent():
            w.line("\"\"\"The graph's Outputs these feeds allow, as a dict by Output id: every Output")
            w.line("whose Inputs are all fed, so that the Inputs alone give the predictions, without")
            w.line("the loss that needs the targets.\"\"\"")
            known = tuple(self.layout.input_types)
            with w.indent("for name in feeds:"):
                w.line(f"if name not in {_names(known)}:")
                listed = _in_fstring(", ".join(known) or "none")
                w.line(f"    raise KeyError(f\"unknown feed {{name!r}} (the graph's Inputs: {listed})\")")
            w.line("params = {name: np.asarray(value, dtype=DTYPE) for name, value in params.items()}")
            self._share(w, "params")
            w.line("rng = np.random.default_rng(seed)")
            first = True
            for fn in forwards:
                test = " and ".join(f"{q(i)} in feeds" for i in set_inputs(needs, fn.outputs))
                if test or not first:
                    with w.indent(f"{'if' if first else 'elif'} {test}:" if test else "else:"):
                        self._call_forward(w, fn)
                else:
                    self._call_forward(w, fn)
                first = False
                if not test:
                    break  # this one needs no feed: nothing after it is reached
            else:
                wanted = _names(needs[next(iter(needs))]) if needs else "()"
                with w.indent("else:"):
                    w.line(f"missing = [name for name in {wanted} if name not in feeds]")
                    w.line("raise KeyError(f\"missing feed for Input {missing[0]!r}: no Output "
                           "can be computed from these feeds\")")
            w.line("return dict(zip(names, results))")
        return w.text()

    def _call_forward(self, w: Writer, fn) -> None:
        w.line(f"results = {fn.name}(params, train, rng{self._feeds(fn.inputs)})")
        w.line(f"names = {_names(fn.outputs)}")

    def _value_and_grad(self, losses: list) -> str:
        w = Writer()
        w.line("def value_and_grad(params, feeds, loss=\"loss\", train=True, seed=0, out=None):")
        with w.indent():
            w.line("\"\"\"(loss value, gradients): the gradients have the keys and shapes of params")
            w.line("(the buffers' aside: training updates those in params, in place).")
            w.line()
            w.line("`out`, if given, is a dict of arrays to write the gradients into (returned as well).")
            w.line("\"\"\"")
            known = ", ".join(fn.loss for fn in losses) or "none"
            unknown = (f"raise KeyError(f\"no single-number Output named {{loss!r}} (losses: \" + "
                       f"{q(known + ')')})")
            if not losses:
                w.line(unknown)
                return w.text()
            w.line("params = {name: np.asarray(value, dtype=DTYPE) for name, value in params.items()}")
            w.line("grads = out if out is not None else {")
            w.line("    name: np.empty(np.shape(value), dtype=DTYPE) for name, value in params.items()")
            w.line("    if name not in BUFFER_NAMES}")
            w.line("rng = np.random.default_rng(seed)")
            table = "grads"
            if self.layout.compiler.shared:
                self._share(w, "params")
                w.line("table = dict(grads)")
                self._share(w, "table")
                table = "table"
            for k, fn in enumerate(losses):
                with w.indent(f"{'if' if k == 0 else 'elif'} loss == {q(fn.loss)}:"):
                    w.line(f"(value,) = {fn.name}(params, {table}, train, rng"
                           f"{self._feeds(fn.inputs)})")
            with w.indent("else:"):
                w.line(unknown)
            w.line("return float(np.reshape(value, ())), grads")
        return w.text()


def _names(ids) -> str:
    """A tuple of ids as source: `("x", "label")`, `("x",)`."""
    return "(" + ", ".join(q(i) for i in ids) + ("," if len(ids) == 1 else "") + ")"


def _in_fstring(text: str) -> str:
    """Text for the inside of a double-quoted f-string literal: escaped, braces doubled."""
    return q(text)[1:-1].replace("{", "{{").replace("}", "}}")


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
