"""Loops, branches and block calls: instructions that run compiled bodies.

Semantics are format.md's "Bodies" section. Gradients are exact reverse mode through what ran:
every executed step of a loop (backpropagation through time, each step's tape kept), the side
a scalar branch took, both sides of a select branch under their masks. Step counts and the side
taken are decided by the data and not differentiated.
"""

from __future__ import annotations

import numpy as np

import nodes
from nodes import FLOAT, ParamError, TensorType

from .errors import GraphError
from .execute import Function, Instr, backward, forward


def is_batched(t: TensorType) -> bool:
    """Values that flow from data have a leading batch axis of unknown length."""
    return t.ndim >= 1 and t.shape[0] is None


def same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def merge_shape(a: tuple, b: tuple) -> tuple:
    return tuple(y if x is None else x for x, y in zip(a, b))


def _fmt(shape: tuple) -> str:
    return str(TensorType(tuple(shape)))


def _body_inputs(compiler, body, path: str) -> list:
    """(id, params) of a body's Input nodes in file order; records bad params as errors."""
    out = []
    decl = nodes.get("Input")
    for node in body.nodes:
        if node.type != "Input":
            continue
        try:
            out.append((node.id, decl.resolve_params(node.params)))
        except ParamError as exc:
            compiler._error(f"{path}/{node.id}", f"{path}/{node.id}: {exc}")
            return None
    return out


def _check_declared(compiler, where: str, declared, t: TensorType, batched: bool) -> bool:
    """A body Input's given `shape` must match what arrives, without its batch axis."""
    if declared is None:
        return True
    actual = t.shape[1:] if batched else t.shape
    if not same_shape(tuple(declared), actual):
        compiler._error(where, f"{where}: declared shape {_fmt(declared)} but receives "
                        f"{_fmt(actual)} (batch axis left out)")
        return False
    return True


def _output_roles(body) -> dict:
    return {n.id: dict(n.params) for n in body.nodes if n.type == "Output"}


class LoopInstr(Instr):
    """A Loop node: repeat (count steps), scan (one step per slice), while (until continue <= 0)."""

    @classmethod
    def build(cls, compiler, node, p, path, in_ports, in_types):
        body = node.bodies["body"]
        inputs = _body_inputs(compiler, body, path)
        if inputs is None:
            return None, {}
        mode = p["mode"]
        loop_batched = any(is_batched(t) for t in in_types.values())
        args, kinds, seq_axes, broadcast = {}, [], [], []
        seq_len = None
        ok = True
        for name, ip in inputs:
            t = in_types[name]
            role, where = ip["role"], f"{path}/{name}"
            kinds.append(role)
            seq_axes.append(None)
            broadcast.append(False)
            if role == "sequence":
                if t.ndim < 1:
                    compiler._error(where, f"{where}: a sequence input needs at least one axis")
                    ok = False
                    continue
                axis = p["axis"]
                if not -t.ndim <= axis < t.ndim:
                    compiler._error(path, f"{path}: scan axis {axis} is out of range for input "
                                    f"{name!r} of shape {t}")
                    ok = False
                    continue
                axis %= t.ndim
                seq_axes[-1] = axis
                seq_len = seq_len if t.shape[axis] is None else t.shape[axis]
                t = TensorType(t.shape[:axis] + t.shape[axis + 1:], t.dtype)
                ok &= _check_declared(compiler, where, ip["shape"], t, is_batched(t))
            elif role == "carry":
                if loop_batched and not is_batched(t):
                    broadcast[-1] = True
                    t = TensorType((None,) + t.shape, t.dtype)
                ok &= _check_declared(compiler, where, ip["shape"], t, is_batched(t))
            else:
                ok &= _check_declared(compiler, where, ip["shape"], t, is_batched(t))
            args[name] = t
        if not ok:
            return None, {}
        fn, out_types = compiler.compile_body(body, path + "/", args)
        if fn is None:
            return None, {}

        roles = _output_roles(body)
        names = [name for name, _ in inputs]
        carry_result = {}  # arg index -> result index of its carry Output
        results = []  # per enclosing output: (result index, kind, arg index)
        cont = None
        for r, out_id in enumerate(fn.out_names):
            role = roles[out_id].get("role", "stack")
            t = out_types[out_id]
            where = f"{path}/{out_id}"
            if role == "continue":
                size = np.prod([d for d in t.shape if d is not None]) if t.shape else 1
                if any(d is None for d in t.shape) or size != 1:
                    compiler._error(where, f"{where}: a continue output must be a single value, "
                                    f"got shape {t} (reduce it, e.g. with Mean)")
                    ok = False
                cont = r
            elif role == "carry":
                a = names.index(roles[out_id]["carry"])
                carry_t = args[names[a]]
                if not same_shape(carry_t.shape, t.shape) or carry_t.dtype != t.dtype:
                    compiler._error(where, f"{where}: the carry {names[a]!r} changes from {carry_t}"
                                    f" to {t}; a carry must keep its shape from step to step")
                    ok = False
                carry_result[a] = r
                results.append((r, "carry", a))
            else:
                results.append((r, "stack", None))
        if not ok:
            return None, {}

        length = {"repeat": p["count"], "scan": seq_len, "while": None}[mode]
        stack_axis = (seq_axes[kinds.index("sequence")] if "sequence" in kinds else p["axis"]) \
            if mode == "scan" else 1
        if mode == "scan" and "sequence" not in kinds:
            compiler._error(path, f"{path}: a scan Loop needs a body Input with role sequence")
            return None, {}
        outs = {}
        for r, kind, a in results:
            t = out_types[fn.out_names[r]]
            if kind == "carry":
                outs[fn.out_names[r]] = args[names[a]]
            else:
                pos = min(stack_axis, t.ndim)
                outs[fn.out_names[r]] = TensorType(t.shape[:pos] + (length,) + t.shape[pos:], t.dtype)

        instr = cls()
        instr.fn, instr.mode = fn, mode
        instr.count, instr.max_iter = p["count"], p["max_iter"]
        instr.kinds, instr.seq_axes, instr.broadcast = kinds, seq_axes, broadcast
        instr.carry_result, instr.results, instr.cont = carry_result, results, cont
        instr.stack_axis = stack_axis
        instr.batched_args = [i for i, n in enumerate(names) if is_batched(in_types[n])]
        instr.stack_types = [out_types[fn.out_names[r]] for r, k, _ in results]
        return instr, outs

    # -- planning -----------------------------------------------------------------------------

    def plan(self, in_req):
        arg_req = list(in_req)
        while True:
            out_req = self.fn.plan(arg_req)
            changed = False
            for a, r in self.carry_result.items():
                if out_req[r] and not arg_req[a]:
                    arg_req[a] = True
                    changed = True
            if not changed:
                break
        self.has_weights = self.fn.n_active > 0
        req = [out_req[r] for r, _, _ in self.results]
        self.active = any(req)
        self.need = list(in_req)
        return req

    # -- running ------------------------------------------------------------------------------

    def _steps(self, xs) -> int | None:
        if self.mode == "repeat":
            return self.count
        if self.mode == "while":
            return None
        lengths = {xs[i].shape[ax] for i, ax in enumerate(self.seq_axes) if ax is not None}
        if len(lengths) > 1:
            raise GraphError(f"{self.path}: the sequence inputs of a scan must have the same "
                             f"length, got {sorted(lengths)}", self.path)
        return lengths.pop()

    def forward(self, xs, ws, state):
        keep = state.keep and self.active
        steps = self._steps(xs)
        batch = xs[self.batched_args[0]].shape[0] if self.batched_args else None
        # The arguments of one step: consts stay, carries and sequence slices are replaced.
        args = list(xs)
        for i, flag in enumerate(self.broadcast):
            if flag:
                args[i] = np.broadcast_to(xs[i], (batch,) + xs[i].shape)
        seqs = [(i, xs[i], (slice(None),) * self.seq_axes[i]) for i, k in enumerate(self.kinds)
                if k == "sequence"]
        carry_pairs = list(self.carry_result.items())
        stack_ids = [r for r, kind, _ in self.results if kind == "stack"]
        stacks = {r: [] for r in stack_ids}
        tapes = []
        fn, cont = self.fn, self.cont
        outer_step = state.step
        t = 0
        limit = self.max_iter if steps is None else steps
        try:
            while t < limit:
                state.step = t
                for i, x, lead in seqs:
                    args[i] = x[lead + (t,)]
                outs, tape = forward(fn, state, args, keep)
                if keep:
                    tapes.append(tape)
                for a, r in carry_pairs:
                    args[a] = outs[r]
                for r in stack_ids:
                    stacks[r].append(outs[r])
                t += 1
                if cont is not None and not self._go_on(outs[cont]):
                    break
        finally:
            state.step = outer_step
        results = []
        for k, (r, kind, a) in enumerate(self.results):
            if kind == "carry":
                results.append(args[a])
            elif stacks[r]:
                pos = min(self.stack_axis, stacks[r][0].ndim)
                results.append(np.stack(stacks[r], axis=pos))
            else:
                results.append(self._empty_stack(self.stack_types[k], batch, state.dtype))
        return results, (tapes, t, [np.shape(x) for x in xs])

    def _go_on(self, flag) -> bool:
        if np.size(flag) != 1:
            raise GraphError(f"{self.path}: the continue output must be a single value, got "
                             f"shape {np.shape(flag)}", self.path)
        return float(np.reshape(flag, ())) > 0

    def _empty_stack(self, t: TensorType, batch, dtype) -> np.ndarray:
        shape = [batch if (i == 0 and d is None) else (d or 0) for i, d in enumerate(t.shape)]
        pos = min(self.stack_axis, len(shape))
        shape.insert(pos, 0)
        return np.zeros(shape, dtype=dtype if t.dtype == FLOAT else np.int64)

    def backward(self, saved, gys, state):
        tapes, steps, shapes = saved
        fn, kinds = self.fn, self.kinds
        gouts = [None] * len(fn.out_slots)
        carry_pairs = list(self.carry_result.items())
        stacked = []  # (result index, gradient, leading slices) of each stacked output
        for (r, kind, a), g in zip(self.results, gys):
            if kind == "carry":
                gouts[r] = g
            elif g is not None:
                stacked.append((r, g, (slice(None),) * min(self.stack_axis, g.ndim - 1)))
        consts = [i for i, k in enumerate(kinds) if k == "const" and self.need[i]]
        seq_g = {i: [None] * steps for i, k in enumerate(kinds) if k == "sequence" and self.need[i]}
        g_args = [None] * len(kinds)
        for t in range(steps - 1, -1, -1):
            for r, g, lead in stacked:
                gouts[r] = g[lead + (t,)]
            if not stacked and all(gouts[r] is None for _, r in carry_pairs):
                break  # nothing flows into this step or any before it
            garg = backward(fn, state, tapes[t], gouts)
            for a, r in carry_pairs:
                gouts[r] = garg[a]
            for i in consts:
                g = garg[i]
                if g is not None:
                    g_args[i] = g if g_args[i] is None else g_args[i] + g
            for i, parts in seq_g.items():
                parts[t] = garg[i]
        for a, r in carry_pairs:
            g = gouts[r]  # after the last step back: the gradient of the initial value
            if g is not None and self.broadcast[a]:
                g = g.sum(axis=0)
            g_args[a] = g if self.need[a] else None
        for i, parts in seq_g.items():
            g_args[i] = self._stack_grads(parts, shapes[i], self.seq_axes[i], state.dtype)
        return g_args

    @staticmethod
    def _stack_grads(parts, shape, axis, dtype):
        if all(g is None for g in parts):
            return None
        out = np.zeros(shape, dtype=dtype)
        for t, g in enumerate(parts):
            if g is not None:
                out[(slice(None),) * axis + (t,)] = g
        return out


class BranchInstr(Instr):
    """A Branch node: `scalar` runs one side; `select` runs both and picks per element."""

    @classmethod
    def build(cls, compiler, node, p, path, in_ports, in_types):
        sides, side_args, out_types = {}, {}, {}
        for side in ("then", "else"):
            body = node.bodies[side]
            inputs = _body_inputs(compiler, body, f"{path}/{side}")
            if inputs is None:
                return None, {}
            args = {}
            for name, ip in inputs:
                t = in_types[name]
                where = f"{path}/{side}/{name}"
                if not _check_declared(compiler, where, ip["shape"], t, is_batched(t)):
                    return None, {}
                args[name] = t
            fn, outs = compiler.compile_body(body, f"{path}/{side}/", args)
            if fn is None:
                return None, {}
            sides[side] = fn
            side_args[side] = [in_ports.index(name) for name, _ in inputs]
            out_types[side] = outs
        then_fn, else_fn = sides["then"], sides["else"]
        if sorted(then_fn.out_names) != sorted(else_fn.out_names):
            compiler._error(path, f"{path}: then and else must have the same outputs")
            return None, {}
        cond = in_types["cond"]
        outs = {}
        for name in then_fn.out_names:
            a, b = out_types["then"][name], out_types["else"][name]
            if not same_shape(a.shape, b.shape) or a.dtype != b.dtype:
                compiler._error(path, f"{path}: output {name!r} is {a} from then but {b} from "
                                "else; both sides must give the same shapes")
                return None, {}
            outs[name] = TensorType(merge_shape(a.shape, b.shape), a.dtype)
            if p["mode"] == "select" and cond.ndim > 1 and not same_shape(cond.shape, a.shape):
                compiler._error(path, f"{path}.cond: select needs cond of shape (batch,) or "
                                f"{a}, got {cond}")
                return None, {}
        if p["mode"] == "scalar":
            known = [d for d in cond.shape if d is not None]
            if len(known) == len(cond.shape) and int(np.prod(known)) != 1:
                compiler._error(path, f"{path}.cond: a scalar branch needs one value, got {cond}; "
                                "use mode select to choose per element")
                return None, {}
        instr = cls()
        instr.mode = p["mode"]
        instr.sides = (then_fn, else_fn)
        instr.side_args = (side_args["then"], side_args["else"])
        instr.else_order = [else_fn.out_names.index(n) for n in then_fn.out_names]
        instr.n_in = len(in_ports)
        return instr, outs

    def plan(self, in_req):
        reqs = []
        for fn, idx in zip(self.sides, self.side_args):
            reqs.append(fn.plan([in_req[i] for i in idx]))
        then_req, else_req = reqs
        req = [a or else_req[j] for a, j in zip(then_req, self.else_order)]
        self.has_weights = any(fn.n_active for fn in self.sides)
        self.active = any(req)
        self.need = [False] + list(in_req[1:])
        return req

    def forward(self, xs, ws, state):
        keep = state.keep and self.active
        cond = xs[0]
        if self.mode == "scalar":
            if np.size(cond) != 1:
                raise GraphError(f"{self.path}.cond: a scalar branch needs one value, got shape "
                                 f"{np.shape(cond)}; use mode select to choose per element",
                                 self.path)
            side = 0 if float(np.reshape(cond, ())) > 0 else 1
            outs, tape = forward(self.sides[side], state,
                                 [xs[i] for i in self.side_args[side]], keep)
            if side == 1:
                outs = [outs[j] for j in self.else_order]
            return outs, (side, tape)
        then_outs, then_tape = forward(self.sides[0], state, [xs[i] for i in self.side_args[0]], keep)
        else_outs, else_tape = forward(self.sides[1], state, [xs[i] for i in self.side_args[1]], keep)
        outs, masks = [], []
        for k, a in enumerate(then_outs):
            b = else_outs[self.else_order[k]]
            mask = cond > 0
            if mask.ndim == 1 and np.ndim(a) > 1:
                mask = mask.reshape((-1,) + (1,) * (np.ndim(a) - 1))
            outs.append(np.where(mask, a, b))
            masks.append(mask)
        return outs, (then_tape, else_tape, masks)

    def backward(self, saved, gys, state):
        grads = [None] * self.n_in
        if self.mode == "scalar":
            side, tape = saved
            gouts = gys if side == 0 else _reorder_back(gys, self.else_order)
            self._collect(grads, side, backward(self.sides[side], state, tape, gouts))
            return grads
        then_tape, else_tape, masks = saved
        g_then = [None if g is None else np.where(m, g, 0) for g, m in zip(gys, masks)]
        g_else = [None if g is None else np.where(m, 0, g) for g, m in zip(gys, masks)]
        self._collect(grads, 0, backward(self.sides[0], state, then_tape, g_then))
        self._collect(grads, 1, backward(self.sides[1], state, else_tape,
                                         _reorder_back(g_else, self.else_order)))
        return grads

    def _collect(self, grads, side, gargs):
        for i, g in zip(self.side_args[side], gargs):
            if g is not None and self.need[i]:
                grads[i] = g if grads[i] is None else grads[i] + g


def _reorder_back(values, order):
    """Values in then-side result order, put back into else-side result order."""
    out = [None] * len(order)
    for k, j in enumerate(order):
        out[j] = values[k]
    return out


class BlockInstr(Instr):
    """A Block node: a call of a definition, compiled for this instance and its weights."""

    @classmethod
    def build(cls, compiler, node, p, path, in_ports, in_types):
        definition = compiler.doc.blocks[p["block"]]
        inputs = _body_inputs(compiler, definition, path)
        if inputs is None:
            return None, {}
        args = {}
        for name, ip in inputs:
            t = in_types[name]
            if not _check_declared(compiler, f"{path}/{name}", ip["shape"], t, is_batched(t)):
                return None, {}
            args[name] = t
        fn, outs = compiler.compile_body(definition, path + "/", args)
        if fn is None:
            return None, {}
        instr = cls()
        instr.fn = fn
        return instr, outs

    def plan(self, in_req):
        req = self.fn.plan(list(in_req))
        self.has_weights = self.fn.n_active > 0
        self.active = any(req)
        self.need = list(in_req)
        return req

    def forward(self, xs, ws, state):
        return forward(self.fn, state, xs, state.keep and self.active)

    def backward(self, saved, gys, state):
        return backward(self.fn, state, saved, gys)


__all__ = ["BlockInstr", "BranchInstr", "Function", "LoopInstr"]
