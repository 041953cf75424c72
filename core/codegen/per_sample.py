"""Constructs that decide per sample: the per-sample `while` Loop and the `route` Branch
(format.md, version 2). Each runs its body on the rows of the samples it concerns, and only
those: a sample gives what it would give run alone, and body nodes that mix the batch see
only the samples running there.

Per-sample while: every step runs the body on the samples still going (`active`, their row
numbers), writes their new carries into whole-batch arrays, and keeps the samples whose own
continue value is > 0. A stopped sample's carries stay as they were; stacked outputs are as
long as the longest run, zeros after a sample's stop. The backward walks the steps back, each
on the rows that ran it: the gradient of a stopped sample's carry passes through unchanged.

Route: the samples with cond > 0 go through `then`, the others through `else`, each side on
its rows only (a side with none does not run); the outputs are put back in the samples' order.
"""

from __future__ import annotations

from ...nodes import kernels
from .layout import Site, is_batched
from .passes import pack, q, tape_names, unpack

# What a traced per-sample while hands the recorder every step: the rows that ran it (a name no
# port can take: ids are identifiers).
STEP_ROWS = "#rows"


class PerSample:
    """The Fn mixin that writes per-sample while Loops and route Branches."""

    # -- per-sample while ---------------------------------------------------------------------

    def per_sample_forward(self, site: Site, node, grad: bool) -> None:
        frame = self.loop_frame(site, node)
        p, body, ins, out_ports, outer, in_types, stem = frame
        for port in out_ports:
            self.value(site, node.id, port)
        batched = [port for port in ins if is_batched(in_types[port])]
        batch = f"{outer[batched[0]]}.shape[0]"
        t = self.names.new("t")
        active = self.names.new(f"{stem}_active")
        actives = self.names.new(f"{stem}_rows")

        init = []

        def carry(state: str, src: str, per_row: bool) -> None:
            source = src if per_row else f"np.broadcast_to({src}, ({batch},) + np.shape({src}))"
            init.append(f"{state} = np.array({source}, dtype={self.dtype})")

        args, states, rows = self.while_inputs(frame, carry)
        stack_outs, carry_outs, cont = self.while_outputs(body, out_ports)
        lists = {o: self.names.new(f"{stem}_{o}_steps") for o in stack_outs}
        tape = self.names.new(f"{stem}_tape") if grad else None

        self.loop_steps.append(t)
        self.depth += 1
        body_outs: dict = {}

        def body_forward():
            for name, state in states.items():
                self.w.line(f"{args[name]} = {state}[{active}]")
            for name, src in rows.items():
                self.w.line(f"{args[name]} = {src}[{active}]")
            body_outs.update(self.forward(body, args, grad))

        fwd = self.fragment(body_forward, 1)
        plan = self._per_sample_plan(site, node, body, args, states, rows, stack_outs,
                                     carry_outs, actives, t, tape, outer, in_types) if grad else None
        self.depth -= 1
        self.loop_steps.pop()

        for line in init:
            self.w.line(line)
        self.w.line(f"{active} = np.arange({batch})")
        self.w.line(f"{actives} = []")
        for o in stack_outs:
            self.w.line(f"{lists[o]} = []")
        if grad:
            self.w.line(f"{tape} = []")
        going = self.module.use_helper(kernels.still_going)
        with self.w.indent(f"for {t} in range({p['max_iter']}):"):
            self.step_begins()
            self.w.splice(fwd, strip=1)
            if grad:
                saved = tape_names([line.removeprefix("    ") for line in fwd.lines],
                                   plan["lines"].lines, backward_own=[active])
                plan["saved"] = saved
                self.w.line(f"{tape}.append({pack(saved)})")
            self.w.line(f"{actives}.append({active})")
            self.record("value", site, node.id, STEP_ROWS, active)
            for o in stack_outs:
                self.w.line(f"{lists[o]}.append({body_outs[o]})")
            for o, c in carry_outs.items():
                self.w.line(f"{states[c]}[{active}] = {body_outs[o]}")
            self.w.line(f"{active} = {active}[{going}({body_outs[cont]}, len({active}))]")
            self.w.line(f"if not len({active}):")
            self.w.line("    break")
        stack = self.module.use_helper(kernels.stack_rows)
        for o in stack_outs:
            self.w.line(f"{self.value(site, node.id, o)} = {stack}({lists[o]}, {actives}, {batch})")
        for o, c in carry_outs.items():
            self.w.line(f"{self.value(site, node.id, o)} = {states[c]}")
        if grad:
            self.pending_backward[(site.path, node.id)] = plan["emit"]

    def _per_sample_plan(self, site, node, body, args, states, rows, stack_outs, carry_outs,
                         actives, t, tape, outer, in_types):
        """The backward of a per-sample while: the body's backward for one step as lines (so
        the forward knows what to save), and a function that writes the whole of it."""
        g = self.grads
        stem = self.stem(site, node.id)
        active = self.names.new(f"{stem}_ran")
        out_g, g_states, picks = {}, {}, []
        for o in stack_outs:
            if g.body_outputs.get((body.path, o)):
                out_g[o] = self.names.new(f"g_{stem}_{o}_t")
                given = self.gname((site.path, node.id, o))
                picks.append((o, f"{out_g[o]} = {given}[{active}, {t}]"))
        for o, c in carry_outs.items():
            if g.body_outputs.get((body.path, o)):
                g_states[c] = self.names.new(f"g_{stem}_{c}_all")
                out_g[o] = self.names.new(f"g_{stem}_{o}_t")
                picks.append((o, f"{out_g[o]} = {g_states[c]}[{active}]"))
        arg_grads: dict = {}

        def body_backward():
            for _, line in picks:
                self.w.line(line)
            arg_grads.update(self.backward(body, out_g))

        lines = self.fragment(body_backward, 0)
        plan = {"lines": lines, "saved": []}

        def emit(acc):
            self.w.comment(f"{node.id}: Loop (per sample), backward through the steps each "
                           "sample ran")
            for o, c in carry_outs.items():
                if c not in g_states:
                    continue
                key = (site.path, node.id, o)
                start = f"np.array({acc[key]})" if key in acc else \
                    f"np.zeros(np.shape({states[c]}), dtype={self.dtype})"
                self.w.line(f"{g_states[c]} = {start}")  # its own: rows are written into it
            for o in stack_outs:
                key = (site.path, node.id, o)
                if o in out_g and key not in acc:
                    self.w.line(f"{self.gname(key)} = np.zeros(np.shape({self.var[key]}), "
                                f"dtype={self.dtype})")
            sums = {}
            for inp in body.inputs():
                if inp.id in arg_grads and inp.id not in states:
                    sums[inp.id] = self.names.new(f"g_{stem}_{inp.id}_sum")
                    self.w.line(f"{sums[inp.id]} = np.zeros(np.shape({outer[inp.id]}), "
                                f"dtype={self.dtype})")
            with self.w.indent(f"for {t} in reversed(range(len({tape}))):"):
                self.step_begins()
                self.w.line(f"{active} = {actives}[{t}]")
                if plan["saved"]:
                    self.w.line(f"{unpack(plan['saved'])} = {tape}[{t}]")
                self.w.splice(lines)
                for c, var in g_states.items():
                    value = arg_grads.get(c, "0")
                    self.w.line(f"{var}[{active}] = {value}")  # stopped rows pass theirs on
                for name, var in sums.items():
                    if name in rows:
                        self.w.line(f"{var}[{active}] += {arg_grads[name]}")
                    else:
                        self.w.line(f"{var} = {var} + {arg_grads[name]}")
            for inp in body.inputs():
                name = inp.id
                if not self.carries.source(site, node.id, name):
                    continue
                src, sport = site.source(node.id, name)
                if name in g_states:
                    var = g_states[name]
                    if not is_batched(in_types[name]):
                        var = f"{var}.sum(axis=0)"
                    self.contribute(acc, (site.path, src, sport), var)
                elif name in sums:
                    self.contribute(acc, (site.path, src, sport), sums[name])

        plan["emit"] = emit
        return plan

    # -- route --------------------------------------------------------------------------------

    def route_forward(self, site: Site, node, grad: bool, fwd: dict, side_outs: dict,
                      side_args: dict, plans: dict, outer: dict, outs: dict) -> None:
        """Write a route Branch, given each side's forward written for its rows (branches.py
        does the sides; `side_args` maps each batched argument to its per-side variable)."""
        stem = self.stem(site, node.id)
        rows = {side: self.names.new(f"{stem}_{side}_rows") for side in ("then", "else")}
        take = self.names.new(f"{stem}_take_then")
        routes = self.module.use_helper(kernels.route_rows)
        self.w.line(f"{take}, {rows['then']}, {rows['else']} = {routes}({outer['cond']})")
        for var in outs.values():
            self.w.line(f"{var} = None")
        saved_var = self.names.new(f"{stem}_saved") if grad else None
        if grad:
            self.w.line(f"{saved_var} = {{}}")
        put = self.module.use_helper(kernels.put_rows)
        for side in ("then", "else"):
            with self.w.indent(f"if len({rows[side]}):"):
                picks = [f"{var} = {outer[name]}[{rows[side]}]"
                         for name, var in side_args[side].items()]
                for line in picks:
                    self.w.line(line)
                self.w.splice(fwd[side], strip=1)
                for port, var in outs.items():
                    self.w.line(f"{var} = {put}({var}, {side_outs[side][port]}, "
                                f"{rows[side]}, len({take}))")
                if grad:
                    saved = tape_names(picks + [line.removeprefix("    ")
                                                for line in fwd[side].lines],
                                       plans[side]["lines"].lines)
                    saved = [n for n in saved if n not in outer.values()]
                    plans[side]["saved"] = saved
                    self.w.line(f"{saved_var}[{q(side)}] = {pack(saved)}")
        for port, var in outs.items():  # no sample at all (an empty batch)
            shape = [0 if d is None else d for d in self.layout.type_of(site, node.id, port).shape]
            self.w.line(f"if {var} is None:")
            self.w.line(f"    {var} = np.zeros({tuple(shape)!r}, dtype={self.dtype})")
        if grad:
            self.pending_backward[(site.path, node.id)] = lambda acc: self._route_back(
                site, node, plans, rows, saved_var, side_args, outer, acc)

    def _route_back(self, site, node, plans, rows, saved_var, side_args, outer, acc) -> None:
        self.w.comment(f"{node.id}: Branch (route), backward through each sample's side")
        names = {port: self.names.new(f"g_{self.stem(site, node.id)}_{port}")
                 for port in self._wanted_ports(site, node, [pl["args"] for pl in plans.values()])}
        for port, var in names.items():
            self.w.line(f"{var} = np.zeros(np.shape({outer[port]}), dtype={self.dtype})")
        for side in ("then", "else"):
            with self.w.indent(f"if len({rows[side]}):"):
                if plans[side]["saved"]:
                    self.w.line(f"{unpack(plans[side]['saved'])} = {saved_var}[{q(side)}]")
                for out_id, var in plans[side]["out_g"].items():
                    key = (site.path, node.id, out_id)
                    whole = acc[key] if key in acc else \
                        f"np.zeros(np.shape({self.var[key]}), dtype={self.dtype})"
                    self.w.line(f"{var} = {whole}[{rows[side]}]")
                self.w.splice(plans[side]["lines"])
                for port, var in names.items():
                    if port not in plans[side]["args"]:
                        continue
                    g = plans[side]["args"][port]
                    if port in side_args[side]:
                        self.w.line(f"{var}[{rows[side]}] += {g}")
                    else:  # an argument without a batch axis reached every routed sample
                        self.w.line(f"{var} = {var} + {g}")
        for port, var in names.items():
            src, sport = site.source(node.id, port)
            self.contribute(acc, (site.path, src, sport), var)
