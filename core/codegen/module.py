"""The graph's functions as one module's text: the single code generator of Wiregrad.

`GraphModule(layout)` writes, on request, a graph function that computes some of the graph's
Outputs and, given a loss, the gradient of that loss for every weight:

    def graph_forward(params, train, rng, x, label):
        ...
        return (logits, loss)

    def loss_and_grads_loss(params, grads, train, rng, x, label):
        ...forward, saving what the backward needs...
        ...backward, writing each weight's gradient into grads...
        return (loss,)

The engine executes these functions in memory (load.py); `wiregrad export --target numpy`
writes the same functions into its file, with its header, initialisation, data and training
script around them (core/export/numpy_target.py). Block definitions become function pairs
(blocks.py), constants module-level arrays, and the helper functions a type's rule calls
(nodes/kernels/) are imported by the engine and copied by the export.

A traced module (`trace=True`) has the same functions, each also handing every value and
gradient to a recorder `R` (an extra argument) as it is made.
"""

from __future__ import annotations

from .blocks import block_functions
from .function import Fn
from .layout import Gradients, Layout
from .names import NameTable
from .passes import free_dead, q, tidy
from .rules import all_helper_names, helper_dependencies, helper_source
from .writer import Writer

# Module-level names of an exported numpy module, kept free for it (the graph's functions,
# blocks and constants take other names).
MODULE_NAMES = ("np", "json", "math", "os", "sys", "time", "zlib", "argparse", "csv", "DTYPE",
                "DOCUMENT_NAME", "PARAM_SPECS", "TRAINING", "INPUTS", "DATA_DIR", "init_params",
                "forward", "value_and_grad", "load_weights", "save_weights", "weights_path",
                "main", "train", "HERE", "LOSSES", "WEIGHTS_FILE", "METRICS", "SHARED",
                "EVAL_BATCH", "stop_point")


class GraphFunction:
    """A written graph function: its name, the Input ids it takes (after its fixed arguments),
    the Outputs it returns, and the loss whose gradients it writes (None: forward only)."""

    def __init__(self, name: str, inputs: list, outputs: list, loss: str | None):
        self.name, self.inputs, self.outputs, self.loss = name, inputs, outputs, loss


class GraphModule:
    def __init__(self, layout: Layout, trace: bool = False):
        self.layout = layout
        self.trace = trace
        self.names = NameTable(reserved=set(MODULE_NAMES) | all_helper_names())
        self.helpers: list = []  # helper functions the rules use, dependencies first
        self.constants = Writer()
        self._constant_names: dict = {}
        self.block_cache: dict = {}
        self.functions: list = []  # one Writer per def, finished

    # -- what the functions share ---------------------------------------------------------------

    def use_helper(self, fn) -> str:
        """Include a helper (and, first, the helpers it calls)."""
        if fn not in self.helpers:
            for other in helper_dependencies(fn):
                self.use_helper(other)
            if fn not in self.helpers:
                self.helpers.append(fn)
        return fn.__name__

    def constant(self, literal: str, stem: str) -> str:
        """A module-level array holding a Constant's value (one per distinct value)."""
        name = self._constant_names.get(literal)
        if name is None:
            name = self.names.new(stem.upper())
            self.constants.line(f"{name} = np.array({literal}, dtype=DTYPE)")
            self._constant_names[literal] = name
        return name

    def block_functions(self, body, block_name: str) -> tuple:
        return block_functions(self, body, block_name)

    def add_function(self, w: Writer) -> None:
        tidy(w)
        free_dead(w)
        self.functions.append(w)

    # -- graph functions ------------------------------------------------------------------------

    def graph_function(self, outputs, loss: str | None = None,
                       name: str | None = None) -> GraphFunction:
        """Write a function computing `outputs` (Output ids) and, with `loss`, the loss's
        gradients into its `grads` argument."""
        top = self.layout.top
        outputs = list(outputs)
        wanted = outputs + ([loss] if loss is not None and loss not in outputs else [])
        keep = self.layout.ancestors(top, wanted)
        if name is None:
            name = f"loss_and_grads_{loss}" if loss is not None else "graph_forward"
        name = self.names.new(name)
        fn = Fn(self)
        fn.grads = Gradients(self.layout, self.layout.carries)
        if loss is not None:
            fn.grads.run(top, {loss: True}, keep)
        args = {}
        for node in top.inputs():
            if node.id in keep:
                args[node.id] = fn.names.new(node.id)
        outs = fn.forward(top, args, grad=loss is not None, keep=keep)
        if loss is not None:
            self._backward(fn, outs, loss, keep)

        w = Writer()
        fixed = "params, grads, train, rng" if loss is not None else "params, train, rng"
        if self.trace:
            fixed += ", R"
        w.line(f"def {name}({fixed}{''.join(', ' + a for a in args.values())}):")
        with w.indent():
            if loss is None:
                w.line("\"\"\"The graph's Outputs, in the order asked for.\"\"\"")
            else:
                w.line("\"\"\"The loss and its gradients, written into grads.\"\"\"")
            fn.bind(w, fn.w)
            w.splice(fn.w, strip=1)
            results = [outs[o] for o in outputs]
            w.line(f"return ({', '.join(results)}{',' if len(results) == 1 else ''})")
        self.add_function(w)
        return GraphFunction(name, list(args), outputs, loss)

    def _backward(self, fn: Fn, outs: dict, loss: str, keep: set) -> None:
        back = fn.fragment(lambda: self._seed_and_walk(fn, outs, loss, keep), 1)
        untouched = [n for n in self.layout.weight_names if n not in fn.direct]
        fn.w.line()
        fn.w.comment("Backward: gradients accumulate from the loss back to every weight.")
        if len(untouched) == 1:
            fn.w.line(f"grads[{q(untouched[0])}].fill(0)")
        elif untouched:
            fn.w.line(f"for name in ({', '.join(q(n) for n in untouched)}):")
            fn.w.line("    grads[name].fill(0)")
        fn.w.splice(back, strip=1)

    def _seed_and_walk(self, fn: Fn, outs: dict, loss: str, keep: set) -> None:
        top = self.layout.top
        src, sport = top.source(loss, "x")
        seed = fn.gname((top.path, src, sport))
        fn.w.line(f"{seed} = np.ones(np.shape({outs[loss]}), dtype=DTYPE)")
        fn.backward(top, {loss: seed}, keep)

    # -- the text -------------------------------------------------------------------------------

    def writers(self) -> list:
        """The module's parts after its helpers: constants, then the functions."""
        return ([self.constants] if self.constants.lines else []) + self.functions

    def helper_sources(self) -> list:
        return [helper_source(fn) for fn in self.helpers]


__all__ = ["MODULE_NAMES", "GraphFunction", "GraphModule"]
