"""Loops as Python `for` loops: forward, and backward through every step that ran.

Semantics are format.md's "Bodies" section (docs/engine.md records the choices it leaves):
`repeat` runs `count` steps, `scan` one step per slice of its sequence inputs, `while` up to
`max_iter` steps, stopping after the first whose continue output is <= 0. Carries move from
step to step; stacked outputs collect one value per step.

With gradients, each step appends to a tape the values its backward reads (found by comparing
the body's forward and backward code, passes.tape_names), and the backward walks the tape in
reverse: backpropagation through time, exact through the steps that ran.
"""

from __future__ import annotations

from ...nodes import kernels
from .layout import Site
from .passes import pack, q, tape_names, unpack
from .writer import literal


def _batched(t) -> bool:
    return t.ndim >= 1 and t.shape[0] is None


class Loops:
    """The Fn mixin that writes Loop nodes."""

    def loop_forward(self, site: Site, node, grad: bool) -> None:
        p = site.params[node.id]
        if p["mode"] == "while" and p["per_sample"]:
            self.per_sample_forward(site, node, grad)
            return
        if p["mode"] == "tree":
            self.tree_forward(site, node, grad)
            return
        body = self.layout.bodies(site, node)["body"]
        ins, out_ports = self.layout.ports(node)
        outer = {port: self.source_var(site, node.id, port) for port in ins}
        in_types = self.layout.in_types(site, node)
        mode = p["mode"]
        stem = self.stem(site, node.id)
        for port in out_ports:
            self.value(site, node.id, port)
        t = self.names.new("t")
        batched = [port for port in ins if _batched(in_types[port])]

        args, carries, seq_axes, init = {}, [], {}, []
        for inp in body.inputs():
            role, src = body.params[inp.id]["role"], outer[inp.id]
            if role == "const":
                args[inp.id] = src
            elif role == "carry":
                state = self.value(body, inp.id)
                args[inp.id] = state
                carries.append(inp.id)
                if batched and not _batched(in_types[inp.id]):
                    first = outer[batched[0]]
                    init.append(f"{state} = np.broadcast_to({src}, ({first}.shape[0],) + "
                                f"np.shape({src}))")
                else:
                    init.append(f"{state} = {src}")
            else:
                seq_axes[inp.id] = p["axis"] % in_types[inp.id].ndim
                args[inp.id] = self.value(body, inp.id)

        roles = {o.id: body.params[o.id] for o in body.outputs()}
        stack_outs = [o for o in out_ports if roles[o]["role"] == "stack"]
        carry_outs = {o: roles[o]["carry"] for o in out_ports if roles[o]["role"] == "carry"}
        cont = [o.id for o in body.outputs() if roles[o.id]["role"] == "continue"]
        stack_axis = next(iter(seq_axes.values())) if mode == "scan" else 1
        lists = {o: self.names.new(f"{stem}_{o}_steps") for o in stack_outs}
        tape = self.names.new(f"{stem}_tape") if grad else None

        if mode == "repeat":
            header = f"for {t} in range({p['count']}):"
        elif mode == "scan":
            first_seq = next(iter(seq_axes))
            header = f"for {t} in range({outer[first_seq]}.shape[{seq_axes[first_seq]}]):"
        else:
            header = f"for {t} in range({p['max_iter']}):"

        self.loop_steps.append(t)
        self.depth += 1
        body_outs: dict = {}

        def body_forward():
            for name, axis in seq_axes.items():
                self.w.line(f"{args[name]} = {outer[name]}[{':, ' * axis}{t}]")
            body_outs.update(self.forward(body, args, grad))

        fwd = self.fragment(body_forward, 1)
        update = []
        if carry_outs:
            targets = [args[c] for c in carry_outs.values()]
            values = [body_outs[o] for o in carry_outs]
            update.append(f"{', '.join(targets)} = {', '.join(values)}")
        plan = None
        if grad:
            plan = self._loop_backward_plan(site, node, body, args, carries, carry_outs,
                                            stack_outs, seq_axes, stack_axis, outer, t, tape,
                                            batched, in_types)
        self.depth -= 1
        self.loop_steps.pop()

        if mode == "scan" and len(seq_axes) > 1:
            self._same_lengths(outer, seq_axes)
        for line in init:
            self.w.line(line)
        for o in stack_outs:
            self.w.line(f"{lists[o]} = []")
        if grad:
            self.w.line(f"{tape} = []")
            for info in plan["deferred"]:
                for _, steps in info["inputs"].values():
                    self.w.line(f"{steps} = []")
        with self.w.indent(header):
            self.step_begins()
            self.w.splice(fwd, strip=1)
            if grad:
                for info in plan["deferred"]:  # what the weight gradients read, every step
                    for var, steps in info["inputs"].values():
                        self.w.line(f"{steps}.append({var})")
                # Values the backward reads are saved per step, before the carries move on.
                saved = tape_names([line.removeprefix("    ") for line in fwd.lines] + update,
                                   plan["lines"].lines)
                plan["saved"] = saved
                self.w.line(f"{tape}.append({pack(saved)})")
            for o in stack_outs:
                self.w.line(f"{lists[o]}.append({body_outs[o]})")
            for line in update:
                self.w.line(line)
            if cont:
                check = self.module.use_helper(kernels.single_value)
                message = ": the continue output must be a single value, got shape {shape}"
                self.w.line(f"if not {check}({body_outs[cont[0]]}, {q(message)}) > 0:")
                self.w.line("    break")
        for o in stack_outs:
            self._stack(site, node, o, lists[o], stack_axis, outer, batched, mode, p)
        for o, c in carry_outs.items():
            self.w.line(f"{self.value(site, node.id, o)} = {args[c]}")
        if grad:
            self.pending_backward[(site.path, node.id)] = plan["emit"]

    def _same_lengths(self, outer: dict, seq_axes: dict) -> None:
        """A scan over several sequences needs them to be equally long."""
        lengths = [f"{outer[name]}.shape[{axis}]" for name, axis in seq_axes.items()]
        self.w.line(f"if len({{{', '.join(lengths)}}}) > 1:")
        self.w.line(f"    raise ValueError(\"the sequence inputs of a scan must have the same "
                    f"length, got \" + str(sorted({{{', '.join(lengths)}}})))")

    def _stack(self, site, node, o, steps: str, stack_axis, outer, batched, mode, p) -> None:
        """A stacked output from its list of steps; zero steps give a zero-length axis."""
        var = self.value(site, node.id, o)
        t_out = self.layout.type_of(site, node.id, o)
        pos = min(stack_axis, t_out.ndim - 1)
        dims = [literal(0 if d is None else d) for d in t_out.shape]
        batch_axis = 1 if pos == 0 else 0  # where a step's batch axis lands once stacked
        if batched and t_out.ndim > batch_axis and t_out.shape[batch_axis] is None:
            dims[batch_axis] = f"{outer[batched[0]]}.shape[0]"
        empty = f"np.zeros(({', '.join(dims)}{',' if len(dims) == 1 else ''}), dtype={self.dtype})"
        stacked = f"np.stack({steps}, axis={pos})"
        if mode == "repeat":
            self.w.line(f"{var} = {stacked if p['count'] else empty}")
        else:
            self.w.line(f"{var} = {stacked} if {steps} else {empty}")

    def _loop_backward_plan(self, site, node, body, args, carries, carry_outs, stack_outs,
                            seq_axes, stack_axis, outer, t, tape, batched, in_types):
        """Prepare the loop's backward: the body's backward for one step as lines (so the
        forward knows what to save), and a function that writes the whole of it later."""
        g = self.grads
        out_g = {}  # body output id -> gradient variable during a step
        step_slices = []
        for o in stack_outs:
            if g.body_outputs.get((body.path, o)):
                whole = self.gname((site.path, node.id, o))
                var = self.names.new(f"{whole}_t")
                t_out = self.layout.type_of(site, node.id, o)
                pos = min(stack_axis, t_out.ndim - 1)
                step_slices.append(f"{var} = {whole}[{':, ' * pos}{t}]")
                out_g[o] = var
        carry_state = {}  # carry input id -> gradient variable flowing back through it
        for o, c in carry_outs.items():
            if g.body_outputs.get((body.path, o)):
                carry_state[c] = self.gname((site.path, node.id, o))
                out_g[o] = carry_state[c]
        arg_grads: dict = {}

        def body_backward():
            for line in step_slices:
                self.w.line(line)
            arg_grads.update(self.backward(body, out_g))

        self.deferring.append({"path": body.path, "nodes": []})
        try:
            lines = self.fragment(body_backward, 0)
        finally:
            deferred = self.deferring.pop()["nodes"]
        plan = {"lines": lines, "saved": [], "deferred": deferred}

        def emit(acc):
            stem = self.stem(site, node.id)
            self.w.comment(f"{node.id}: Loop, backward through every step")
            for o, c in carry_outs.items():
                key = (site.path, node.id, o)
                if c in carry_state and key not in acc:
                    self.w.line(f"{carry_state[c]} = np.zeros(np.shape("
                                f"{self.var[key]}), dtype={self.dtype})")
            sums, seqs = {}, {}
            for inp in body.inputs():
                name = inp.id
                if name not in arg_grads or name in carries:
                    continue
                if name in seq_axes:  # one slice a step, stacked when the steps are done
                    seqs[name] = self.names.new(f"g_{stem}_{name}_steps")
                    self.w.line(f"{seqs[name]} = []")
                else:
                    sums[name] = self.names.new(f"g_{stem}_{name}_sum")
                    self.w.line(f"{sums[name]} = np.zeros(np.shape({outer[name]}), "
                                f"dtype={self.dtype})")
            for info in deferred:
                self.w.line(f"{info['gy']} = []")
            with self.w.indent(f"for {t} in reversed(range(len({tape}))):"):
                self.step_begins()
                if plan["saved"]:
                    self.w.line(f"{unpack(plan['saved'])} = {tape}[{t}]")
                self.w.splice(lines)
                moves_t, moves_v = [], []
                for c, var in carry_state.items():
                    moves_t.append(var)
                    moves_v.append(arg_grads.get(c, f"np.zeros_like({var})"))
                if moves_t:
                    self.w.line(f"{', '.join(moves_t)} = {', '.join(moves_v)}")
                for name, var in sums.items():
                    self.w.line(f"{var} = {var} + {arg_grads[name]}")
                for name, var in seqs.items():
                    self.w.line(f"{var}.append({arg_grads[name]})")
            if deferred:
                with self.w.indent(f"if {tape}:"):
                    for info in deferred:
                        self.stacked_weight_grads(info)
            for name, steps in list(seqs.items()):
                seqs[name] = self.names.new(f"g_{stem}_{name}_all")
                self.w.line(f"{seqs[name]} = np.stack({steps}[::-1], axis={seq_axes[name]}) "
                            f"if {steps} else np.zeros(np.shape({outer[name]}), dtype={self.dtype})")
            for inp in body.inputs():
                name = inp.id
                if not self.carries.source(site, node.id, name):
                    continue
                src, sport = site.source(node.id, name)
                key = (site.path, src, sport)
                if name in carries and name in carry_state:
                    var = carry_state[name]
                    if batched and not _batched(in_types[name]):
                        var = f"{var}.sum(axis=0)"
                    self.contribute(acc, key, var)
                elif name in sums:
                    self.contribute(acc, key, sums[name])
                elif name in seqs:
                    self.contribute(acc, key, seqs[name])

        plan["emit"] = emit
        return plan
