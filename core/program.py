"""A compiled document: run it, differentiate it, initialise its parameters.

The API is interfaces.md's: `run`, `value_and_grad`, `init_params`, `input_shapes`,
`output_shapes`. Feeds and params are checked at the door (a wrong shape or dtype is a
GraphError naming the Input or the parameter, never a numpy traceback) and never modified.

Each set of requested results gets its own function, written by the code generator
(core/codegen/) the first time it is asked for and kept: a run computes only what those
results need, and a loss's function only the gradients that reach a parameter. These are the
functions `wiregrad export --target numpy` writes into its file.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager

import numpy as np

from ..nodes import INT
from .codegen.feeds import allowed, output_needs
from .codegen.layout import Layout
from .codegen.load import ERRORS, load, node_error
from .codegen.module import GraphModule
from .codegen.per_sample import STEP_ROWS
from .codegen.stops import checker, stop_point
from .errors import GraphError


class Compiled:
    """One generated graph function, ready to call: the Input ids it takes (`arg_names`),
    the Outputs it returns, and with `loss`, the loss whose gradients it writes."""

    def __init__(self, layout: Layout, outputs: tuple, loss: str | None, trace: bool = False):
        module = GraphModule(layout, trace=trace)
        fn = module.graph_function(outputs, loss)
        self.arg_names = fn.inputs
        self.outputs = fn.outputs
        self.loss = loss
        namespace = load(module, layout.dtype)
        self.namespace = namespace  # where Program.stopping binds its stop_point
        self.call = namespace[fn.name]
        self.source = namespace["__source__"].text  # the module's text, for a reader


class Recorder:
    """What a traced run hands over: every value and gradient, one per time it was made."""

    def __init__(self):
        self.values: dict = {}
        self.grads: dict = {}
        self.order: list = []

    def value(self, path: str, port: str, array) -> None:
        key = (path, port)
        self.values.setdefault(key, []).append(array)
        self.order.append(key)

    def grad(self, path: str, port: str, array) -> None:
        self.grads.setdefault((path, port), []).append(array)


class Program:
    def __init__(self, doc, compiler):
        # Training and runs use the code written from scan loops rewritten to do less per step
        # (codegen/lower.py); a traced run, which records every node, the document as it is.
        self.doc, self._compiler = doc, compiler
        self._layouts: dict = {}
        self.dtype = compiler.dtype
        # Every tensor the program keeps: the trainable ones first, then the buffers (saved
        # and updated by training, never trained: BatchNorm's running statistics).
        self.param_names: list = list(compiler.weight_names) + list(compiler.buffer_names)
        self._specs = list(compiler.weight_specs) + list(compiler.buffer_specs)
        self.trainable_names: list = list(compiler.weight_names)
        self.buffer_names: set = set(compiler.buffer_names)
        self.param_shapes = {n: tuple(s.shape) for n, s in zip(self.param_names, self._specs)}
        self._index = {n: j for j, n in enumerate(self.param_names)}
        self._input_types = dict(compiler.input_types)
        self._output_types = dict(compiler.output_types)
        self.output_names = list(compiler.output_types)
        self.input_shapes = {k: t.shape for k, t in self._input_types.items()}
        self.output_shapes = {k: t.shape for k, t in self._output_types.items()}
        self.input_dtypes = {k: ("int64" if t.dtype == INT else str(self.dtype))
                             for k, t in self._input_types.items()}
        self._compiled: dict = {}
        self._by_feeds: dict = {}  # frozenset of feed ids -> the function for what they allow
        self._needs = None  # Output id -> the Inputs it needs (codegen/feeds.py), when asked
        self.shared = compiler.shared  # a sharing node's tensor name -> the owner's
        # Nodes that make a sample's result depend on its batch (compiler.batch_level).
        self.batch_level = list(compiler.batch_level)
        # What the compiler noticed without refusing (a large memory estimate, core/budget.py).
        self.warnings = list(compiler.warnings)
        self._stop_point = stop_point  # what the loops of every function call each step

    @contextmanager
    def stopping(self, stop):
        """While inside, every loop step of this program's functions asks `stop.is_set()`
        (an Event, or anything with that method), and a set request ends the call with
        StopRequested (codegen/stops.py): a long step ends within one loop step's time."""
        previous = self._stop_point
        self._bind_stop_point(stop_point if stop is None else checker(stop))
        try:
            yield
        finally:
            self._bind_stop_point(previous)

    def _bind_stop_point(self, fn) -> None:
        self._stop_point = fn
        for compiled in self._compiled.values():
            compiled.namespace["stop_point"] = fn

    def _add(self, key, compiled: Compiled) -> Compiled:
        """Keep a function made for `key`, bound to the current stop request."""
        compiled.namespace["stop_point"] = self._stop_point
        self._compiled[key] = compiled
        return compiled

    def layout(self, traced: bool = False) -> Layout:
        if traced not in self._layouts:
            self._layouts[traced] = Layout(self.doc, self._compiler) if traced else \
                Layout.lower(self.doc, self._compiler)
        return self._layouts[traced]

    # -- parameters ---------------------------------------------------------------------------

    def init_params(self, seed: int = 0) -> dict:
        """Fresh parameters. Each tensor draws from its own stream, seeded by (seed, its name),
        so adding a node elsewhere does not change the others' initial values."""
        out = {}
        for name, spec in zip(self.param_names, self._specs):
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])
            out[name] = np.asarray(spec.init(rng, tuple(spec.shape)), dtype=self.dtype)
        return out

    def param_list(self, params: dict) -> list:
        """The params dict as a list in program order, checked and cast to the program dtype."""
        if not isinstance(params, dict):
            raise GraphError("params must be a dict of arrays keyed by parameter name")
        missing = [n for n in self.param_names if n not in params]
        extra = [n for n in params if n not in self._index]
        if missing or extra:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if extra:
                parts.append("unknown " + ", ".join(map(str, extra)))
            raise GraphError("params do not match the program: " + "; ".join(parts),
                             _node_of(missing[0]) if missing else None)
        out = []
        for name in self.param_names:
            value = np.asarray(params[name])
            if value.shape != self.param_shapes[name] or value.dtype.kind not in "fiu":
                raise GraphError(f"param {name} has shape {value.shape} ({value.dtype}), expected "
                                 f"{self.param_shapes[name]}", _node_of(name))
            out.append(value.astype(self.dtype, copy=False))
        return out

    # -- running ------------------------------------------------------------------------------

    def run(self, params: dict, feeds: dict, train: bool = False, seed: int = 0,
            outputs=None) -> dict:
        """The graph's results for these feeds: those named in `outputs`, or with None, every
        Output whose Inputs are all fed (`{"x": xb}` alone gives the predictions, not the loss
        that needs the labels)."""
        fn = self.schedule(tuple(outputs)) if outputs is not None else self._allowed(feeds)
        plist = self.param_list(params)
        results = self._call(fn, self._table(plist), None, train, seed, self.feed_list(fn, feeds))
        if train:
            self._keep_buffers(params, plist)
        return dict(zip(fn.outputs, results))

    def value_and_grad(self, params: dict, feeds: dict, loss: str = "loss", train: bool = True,
                       seed: int = 0, out: dict | None = None):
        """(loss value, gradients): the gradients have the keys and shapes of the trainable
        params (buffers have none). Training (`train`) updates the buffers in `params`.

        `out`, if given, is a dict of arrays to write the gradients into (returned as well).
        """
        plist = self.param_list(params)
        grads = [out[n] for n in self.trainable_names] if out is not None else None
        value, glist = self.loss_and_grads(plist, feeds, loss, train, seed, grads)
        if train:
            self._keep_buffers(params, plist)
        return value, dict(zip(self.trainable_names, glist))

    def _keep_buffers(self, params: dict, plist: list) -> None:
        """A training run updated the buffers in place; where one had to be cast (a float64
        array given to a float32 program) the caller's dict gets the updated copy."""
        for name, value in zip(self.param_names[len(self.trainable_names):],
                               plist[len(self.trainable_names):]):
            if params[name] is not value:
                params[name] = value

    def loss_and_grads(self, plist: list, feeds: dict, loss: str = "loss", train: bool = True,
                       seed=0, grads: list | None = None, checked: bool = False):
        """The trainer's entry: params as a checked list in program order, gradients written into
        `grads` (arrays of the params' shapes) when given. Returns (loss, gradient list).

        `checked` says the feeds were already checked and cast (the trainer does it once for a
        whole dataset), so that a step spends nothing on it.
        """
        fn = self.loss_schedule(loss)
        if grads is None:
            grads = [np.empty(p.shape, self.dtype) for p in plist[:len(self.trainable_names)]]
        args = [feeds[name] for name in fn.arg_names] if checked else self.feed_list(fn, feeds)
        (value,) = self._call(fn, self._table(plist), self._table(grads), train, seed, args)
        if np.size(value) != 1:
            raise GraphError(f"{loss}: the loss must be a single number, got shape "
                             f"{np.shape(value)}", loss)
        return float(np.reshape(value, ())), grads

    def _table(self, arrays: list) -> dict:
        """Arrays in program order as the dict generated code reads, by tensor name; a node
        that shares another's tensors finds them under its own names too."""
        table = dict(zip(self.param_names, arrays))  # gradients: of the trainable ones only
        for name, owner in self.shared.items():
            if owner in table:
                table[name] = table[owner]
        return table

    def _call(self, fn: Compiled, pdict: dict, gdict: dict | None, train, seed, args: list,
              recorder: Recorder | None = None):
        """Call a generated function; an error on one of its lines names the node."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        fixed = (pdict, train, rng) if gdict is None else (pdict, gdict, train, rng)
        if recorder is not None:
            fixed += (recorder,)
        with np.errstate(all="ignore"):
            try:
                return fn.call(*fixed, *args)
            except ERRORS as exc:
                raise node_error(exc) from exc

    def loss_schedule(self, loss: str) -> Compiled:
        """The function for a loss Output, checked once to give a single number."""
        key = ("loss", loss)
        fn = self._compiled.get(key)
        if fn is None:
            self._known((loss,))
            shape = self.output_shapes[loss]
            if any(d is None for d in shape) or int(np.prod(shape)) != 1:
                shown = "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
                raise GraphError(f"{loss}: the loss must be a single number, but it has shape "
                                 f"{shown}; reduce it with Mean or Sum", loss)
            fn = self._add(key, Compiled(self.layout(), (loss,), loss))
        return fn

    def schedule(self, outputs: tuple) -> Compiled:
        """The function computing the named Outputs and what they need (made once)."""
        key = ("run", tuple(outputs))
        fn = self._compiled.get(key)
        if fn is None:
            self._known(outputs)
            fn = self._add(key, Compiled(self.layout(), tuple(outputs), None))
        return fn

    def _allowed(self, feeds) -> Compiled:
        """The function for every Output these feeds allow, chosen once per set of feed ids."""
        if not isinstance(feeds, dict):
            raise GraphError("feeds must be a dict of arrays keyed by Input id")
        key = frozenset(feeds)
        fn = self._by_feeds.get(key)
        if fn is None:
            if self._needs is None:
                self._needs = output_needs(self.layout())
            outputs = allowed(self._needs, key)
            if not outputs and self.output_names:  # say what the first Output misses
                self._no_unknown(feeds)
                missing = [i for i in self._needs[self.output_names[0]] if i not in key]
                raise GraphError(f"missing feed for Input {missing[0]!r}: no Output can be "
                                 "computed from these feeds", missing[0])
            fn = self.schedule(outputs)
            self._by_feeds[key] = fn
        return fn

    def _known(self, outputs) -> None:
        for name in outputs:
            if name not in self._output_types:
                raise GraphError(f"no Output named {name!r} (outputs: "
                                 f"{', '.join(self.output_names)})")

    def trace(self, params: dict, feeds: dict, loss: str | None = None, train: bool = False,
              seed: int = 0) -> dict:
        """Every value the graph computes on these feeds, and with `loss`, the gradient of the
        loss with respect to each value on the way to a parameter.

        Returns {"values": {(node path, port): [array, ...]}, "grads": {...}}: one array per
        time the node ran, so a node in a loop body has one per step, in step order. Slower than
        `run`: for looking inside a network (the editor's inspector), not for training.
        """
        if loss is not None:
            self.loss_schedule(loss)  # checks that it names a single-number Output
        record = self._traced(params, feeds, loss, train, seed)
        for steps in record.grads.values():
            steps.reverse()  # recorded walking back through the steps
        return {"values": record.values, "grads": record.grads}

    def loop_steps(self, params: dict, feeds: dict) -> dict:
        """How many steps each sample ran in each top-level per-sample `while` Loop:
        {loop id: int64 array (B,)}. For showing adaptive computation (the editor's data
        view); it traces a whole run, so it is slower than `run`."""
        loops = [n.id for n in self.doc.graph.nodes if n.type == "Loop"
                 and n.params.get("mode") == "while" and n.params.get("per_sample")]
        if not loops:
            return {}
        outputs = [o for o in self.output_names
                   if set(self.schedule((o,)).arg_names) <= set(feeds)]  # those it can run
        record = self._traced(params, feeds, None, False, 0, outputs)
        batch = len(next(iter(feeds.values())))
        out = {}
        for loop in loops:
            rows = record.values.get((loop, STEP_ROWS), [])
            ran = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
            out[loop] = np.bincount(ran, minlength=batch).astype(np.int64)
        return out

    def first_nonfinite(self, params: dict, feeds: dict, outputs=None, train=False, seed=0):
        """The path of the first node whose output is NaN or Inf on these feeds, or None.

        Inside a loop the first step that went wrong counts, so the node named is where the
        trouble started, not where it spread to. For error reports: it traces a whole run.
        """
        try:
            record = self._traced(params, feeds, None, train, seed, outputs)
        except GraphError as exc:  # a run that fails outright names its node itself
            return exc.node
        seen: dict = {}
        for key in record.order:
            k = seen.get(key, 0)
            seen[key] = k + 1
            value = record.values[key][k]
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and \
                    not np.isfinite(value).all():
                return key[0]
        return None

    def _traced(self, params, feeds, loss, train, seed, outputs=None) -> Recorder:
        outputs = tuple(self.output_names if outputs is None else outputs)
        self._known(outputs)
        key = ("trace", outputs, loss)
        fn = self._compiled.get(key)
        if fn is None:
            fn = self._add(key, Compiled(self.layout(traced=True), outputs, loss, trace=True))
        plist = self.param_list(params)
        grads = [np.empty(p.shape, self.dtype) for p in plist[:len(self.trainable_names)]] \
            if loss is not None else None
        recorder = Recorder()
        self._call(fn, self._table(plist), None if grads is None else self._table(grads),
                   train, seed, self.feed_list(fn, feeds), recorder)
        return recorder

    def feed_list(self, fn: Compiled, feeds: dict) -> list:
        """The feeds a function needs, checked and cast, in its argument order."""
        self._no_unknown(feeds)
        out, batch = [], None
        for name in fn.arg_names:
            if name not in feeds:
                raise GraphError(f"missing feed for Input {name!r}", name)
            value = self._check_feed(name, feeds[name])
            if batch is None:
                batch = (name, value.shape[0])
            elif value.shape[0] != batch[1]:
                raise GraphError(f"feed {name!r} has a batch of {value.shape[0]} but "
                                 f"{batch[0]!r} has {batch[1]}; feeds must share the batch axis",
                                 name)
            out.append(value)
        return out

    def _no_unknown(self, feeds) -> None:
        if not isinstance(feeds, dict):
            raise GraphError("feeds must be a dict of arrays keyed by Input id")
        unknown = [k for k in feeds if k not in self._input_types]
        if unknown:
            raise GraphError(f"unknown feed {unknown[0]!r} (the graph's Inputs: "
                             f"{', '.join(self._input_types) or 'none'})", None)

    def _check_feed(self, name: str, value) -> np.ndarray:
        t = self._input_types[name]
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            raise GraphError(f"feed {name!r} is not an array", name) from None
        if t.dtype == INT:
            if arr.dtype.kind not in "iub":
                raise GraphError(f"feed {name!r} must hold integers (int64 class ids), got "
                                 f"{arr.dtype}", name)
            arr = arr.astype(np.int64, copy=False)
        else:
            if arr.dtype.kind not in "fiub":
                raise GraphError(f"feed {name!r} must hold numbers, got {arr.dtype}", name)
            arr = arr.astype(self.dtype, copy=False)
        expected = t.shape
        if arr.ndim != len(expected) or any(
                d is not None and d != a for d, a in zip(expected, arr.shape)):
            shown = "(B" + "".join(f", {'?' if d is None else d}" for d in expected[1:]) + ")"
            raise GraphError(f"feed {name!r} has shape {arr.shape}, but Input {name!r} takes "
                             f"{shown} (B: the batch)", name)
        return arr


def _node_of(param_name: str) -> str:
    """The node path of a tensor name: ids have no dots, tensor names may
    (`attn.out_proj.weight`)."""
    return param_name.split(".", 1)[0]
