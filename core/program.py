"""A compiled document: run it, differentiate it, initialise its parameters.

The API is interfaces.md's: `run`, `value_and_grad`, `init_params`, `input_shapes`,
`output_shapes`. Feeds and params are checked at the door (a wrong shape or dtype is a
GraphError naming the Input or the parameter, never a numpy traceback) and never modified.
Each set of requested results gets its own pruned schedule, made once and cached, so a run
computes only what those results need, and backward only the gradients that reach a parameter.
"""

from __future__ import annotations

import zlib

import numpy as np

from nodes import INT

from .errors import GraphError
from .execute import Function, RunState, backward, forward


class Program:
    def __init__(self, compiler):
        self.dtype = compiler.dtype
        self._fn: Function = compiler.top
        self.param_names: list = list(compiler.weight_names)
        self._specs = list(compiler.weight_specs)
        self.param_shapes = {n: tuple(s.shape) for n, s in zip(self.param_names, self._specs)}
        self._index = {n: j for j, n in enumerate(self.param_names)}
        self._input_types = dict(compiler.input_types)
        self._output_types = dict(compiler.output_types)
        self.input_shapes = {k: t.shape for k, t in self._input_types.items()}
        self.output_shapes = {k: t.shape for k, t in self._output_types.items()}
        self.input_dtypes = {k: ("int64" if t.dtype == INT else str(self.dtype))
                             for k, t in self._input_types.items()}
        self._pruned: dict = {}
        self._losses: dict = {}

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
        """The graph's results (all Outputs, or those named in `outputs`) for these feeds."""
        names = tuple(self._fn.out_names if outputs is None else outputs)
        fn = self.schedule(names)
        state = self._state(self.param_list(params), train, seed, keep=False)
        with np.errstate(all="ignore"):
            results, _ = forward(fn, state, self.feed_list(fn, feeds), False)
        return dict(zip(names, results))

    def value_and_grad(self, params: dict, feeds: dict, loss: str = "loss", train: bool = True,
                       seed: int = 0, out: dict | None = None):
        """(loss value, gradients): the gradients have exactly the keys and shapes of params.

        `out`, if given, is a dict of arrays to write the gradients into (returned as well).
        """
        plist = self.param_list(params)
        grads = [out[n] for n in self.param_names] if out is not None else None
        value, glist = self.loss_and_grads(plist, feeds, loss, train, seed, grads)
        return value, dict(zip(self.param_names, glist))

    def loss_and_grads(self, plist: list, feeds: dict, loss: str = "loss", train: bool = True,
                       seed=0, grads: list | None = None, checked: bool = False):
        """The trainer's entry: params as a checked list in program order, gradients written into
        `grads` (arrays of the params' shapes) when given. Returns (loss, gradient list).

        `checked` says the feeds were already checked and cast (the trainer does it once for a
        whole dataset), so that a step spends nothing on it.
        """
        fn = self.loss_schedule(loss)
        state = self._state(plist, train, seed, keep=True)
        state.targets = grads
        args = [feeds[name] for name in fn.arg_names] if checked else self.feed_list(fn, feeds)
        with np.errstate(all="ignore"):
            (value,), tape = forward(fn, state, args, True)
            if value.size != 1:
                raise GraphError(f"{loss}: the loss must be a single number, got shape "
                                 f"{np.shape(value)}", loss)
            backward(fn, state, tape, [np.ones(value.shape, dtype=self.dtype)])
        if grads is None:
            grads = [np.zeros(p.shape, self.dtype) if g is None else np.asarray(g, self.dtype)
                     for p, g in zip(plist, state.grads)]
        elif any(g is None for g in state.grads):  # parameters the loss does not reach
            for target, g in zip(grads, state.grads):
                if g is None:
                    target.fill(0)
        return float(value.reshape(())), grads

    def loss_schedule(self, loss: str) -> Function:
        """The schedule for a loss Output, checked once to give a single number."""
        fn = self._losses.get(loss)
        if fn is None:
            fn = self.schedule((loss,))
            shape = self.output_shapes[loss]
            if any(d is None for d in shape) or int(np.prod(shape)) != 1:
                shown = "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
                raise GraphError(f"{loss}: the loss must be a single number, but it has shape "
                                 f"{shown}; reduce it with Mean or Sum", loss)
            self._losses[loss] = fn
        return fn

    def trace(self, params: dict, feeds: dict, loss: str | None = None, train: bool = False,
              seed: int = 0) -> dict:
        """Every value the graph computes on these feeds, and with `loss`, the gradient of the
        loss with respect to each value on the way to a parameter.

        Returns {"values": {(node path, port): [array, ...]}, "grads": {...}}: one array per
        time the node ran, so a node in a loop body has one per step, in step order. Slower than
        `run`: for looking inside a network (the editor's inspector), not for training.
        """
        names = tuple(self._fn.out_names)
        fn = self.schedule(names)
        state = self._state(self.param_list(params), train, seed, keep=loss is not None)
        state.record = {"values": {}, "grads": {}, "order": []}
        with np.errstate(all="ignore"):
            results, tape = forward(fn, state, self.feed_list(fn, feeds), loss is not None)
            if loss is not None:
                if loss not in names:
                    raise GraphError(f"no Output named {loss!r}")
                self.loss_schedule(loss)  # checks that it is a single number
                value = results[names.index(loss)]
                gouts = [np.ones(value.shape, self.dtype) if n == loss else None for n in names]
                backward(fn, state, tape, gouts)
        for steps in state.record["grads"].values():
            steps.reverse()  # recorded walking back through the steps
        return {"values": state.record["values"], "grads": state.record["grads"]}

    def first_nonfinite(self, params: dict, feeds: dict, outputs=None, train=False, seed=0):
        """The path of the first node whose output is NaN or Inf on these feeds, or None.

        Inside a loop the first step that went wrong counts, so the node named is where the
        trouble started, not where it spread to. For error reports: it traces a whole run.
        """
        names = tuple(self._fn.out_names if outputs is None else outputs)
        fn = self.schedule(names)
        state = self._state(self.param_list(params), train, seed, keep=False)
        state.record = {"values": {}, "grads": {}, "order": []}
        with np.errstate(all="ignore"):
            try:
                forward(fn, state, self.feed_list(fn, feeds), False)
            except GraphError as exc:  # a run that fails outright names its node itself
                return exc.node
        seen: dict = {}
        for key in state.record["order"]:
            k = seen.get(key, 0)
            seen[key] = k + 1
            value = state.record["values"][key][k]
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and \
                    not np.isfinite(value).all():
                return key[0]
        return None

    def _state(self, plist, train, seed, keep) -> RunState:
        n = len(plist)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return RunState(dtype=self.dtype, train=train, rng=rng, params=plist, keep=keep,
                        grads=[None] * n, owned=[False] * n)

    # -- schedules and feeds ------------------------------------------------------------------

    def schedule(self, outputs: tuple) -> Function:
        """The top-level function cut down to what the named Outputs need (cached)."""
        fn = self._pruned.get(outputs)
        if fn is None:
            fn = self._prune(outputs)
            self._pruned[outputs] = fn
        return fn

    def _prune(self, outputs: tuple) -> Function:
        top = self._fn
        for name in outputs:
            if name not in top.out_names:
                raise GraphError(f"no Output named {name!r} (outputs: {', '.join(top.out_names)})")
        wanted = {top.out_slots[top.out_names.index(n)] for n in outputs}
        keep = []
        for instr in reversed(top.instrs):
            if wanted.intersection(instr.outs):
                keep.append(instr)
                wanted.update(instr.ins)
        keep.reverse()
        args = [(name, slot) for name, slot in zip(top.arg_names, top.arg_slots) if slot in wanted]
        fn = Function(top.path, top.n_slots, [s for _, s in args],
                      [top.out_slots[top.out_names.index(n)] for n in outputs], keep,
                      [(s, v) for s, v in top.consts if s in wanted])
        fn.arg_names = [n for n, _ in args]
        fn.out_names = list(outputs)
        fn.plan([False] * len(fn.arg_slots))
        return fn

    def feed_list(self, fn: Function, feeds: dict) -> list:
        """The feeds a schedule needs, checked and cast, in its argument order."""
        if not isinstance(feeds, dict):
            raise GraphError("feeds must be a dict of arrays keyed by Input id")
        unknown = [k for k in feeds if k not in self._input_types]
        if unknown:
            raise GraphError(f"unknown feed {unknown[0]!r} (the graph's Inputs: "
                             f"{', '.join(self._input_types) or 'none'})", None)
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
    return param_name.rsplit(".", 1)[0]
