"""The torch target's per-sample constructs (format.md, version 2): the per-sample `while`
Loop, the `route` Branch and the `tree` Loop, written as the numpy code does them (see
core/codegen/per_sample.py and trees.py) but with out-of-place tensor writes, so that autograd
takes the gradients through them. The helper functions below are copied into the exported
module (it imports torch); they are never called here.
"""

from __future__ import annotations

from ..codegen.layout import Site, is_batched

torch = None  # the exported module's import


def torch_stack_rows(steps, rows, batch):
    """A per-sample loop's stacked output (batch, steps, ...): each step's values at the rows
    that ran it, zeros after a sample stopped."""
    out = steps[0].new_zeros((batch, len(steps)) + tuple(steps[0].shape[1:]))
    for t, (ran, value) in enumerate(zip(rows, steps)):
        out = out.index_put((ran, torch.full_like(ran, t)), value)
    return out


def torch_put_rows(out, value, rows, batch):
    """Write a side's values at its rows of the whole batch's output (made on first use)."""
    if out is None:
        out = value.new_zeros((batch,) + tuple(value.shape[1:]))
    return out.index_put((rows,), value)


def torch_tree_levels(children, nodes):
    """The (sample, node) pairs of each height of a batch of trees, leaves first; children
    (B, N, K) int64, -1 for none, each child before its parent."""
    batch, n, k = children.shape
    if n != nodes:
        raise ValueError(f"the children input describes {n} nodes a tree, the data {nodes}")
    parent = torch.arange(n, device=children.device)[None, :, None]
    if bool(((children < -1) | (children >= parent)).any()):
        raise ValueError("a child index must be smaller than its parent's (or -1 for none)")
    height = torch.zeros((batch, n), dtype=torch.long, device=children.device)
    rows = torch.arange(batch, device=children.device)[:, None]
    for node in range(n):
        kids = children[:, node]
        below = torch.where(kids >= 0, height[rows, kids.clamp(min=0)] + 1,
                            torch.zeros_like(kids))
        height[:, node] = below.max(dim=1).values if k else 0
    top = int(height.max()) if height.numel() else -1
    return [torch.nonzero(height == h, as_tuple=True) for h in range(top + 1)]


def torch_children_values(values, children, b, n, shape):
    """The values (B, N, ...) at the K children of each (sample b, node n): zeros where a
    node has no such child (all zeros before any node has a value)."""
    kids = children[b, n]
    if values is None:
        return torch.zeros(tuple(kids.shape) + tuple(shape[1:]), device=kids.device)
    picked = values[b[:, None], kids.clamp(min=0)]
    keep = (kids >= 0).reshape(tuple(kids.shape) + (1,) * (picked.ndim - 2))
    return picked * keep.to(picked.dtype)


def torch_put_nodes(values, value, b, n, batch, nodes):
    """Write some (sample, node) pairs' values into the whole (B, N, ...)."""
    if values is None:
        values = value.new_zeros((batch, nodes) + tuple(value.shape[1:]))
    return values.index_put((b, n), value)


class TorchPerSample:
    """The TorchFn mixin for per-sample while Loops, route Branches and tree Loops."""

    def per_sample_loop(self, site: Site, node) -> None:
        frame = self.loop_frame(site, node)
        p, body, ins, out_ports, outer, in_types, stem = frame
        batched = [port for port in ins if is_batched(in_types[port])]
        batch = f"{outer[batched[0]]}.shape[0]"
        active, rows = self.names.new(f"{stem}_active"), self.names.new(f"{stem}_rows")
        t = self.names.new("t")

        def carry(state: str, src: str, per_row: bool) -> None:
            whole = src if per_row else f"{src}.expand([{batch}] + list({src}.shape))"
            self.w.line(f"{state} = {whole}.clone()")

        args, states, picks = self.while_inputs(frame, carry)
        stack_outs, carry_outs, cont = self.while_outputs(body, out_ports)
        lists = {o: self.names.new(f"{stem}_{o}_steps") for o in stack_outs}
        self.w.line(f"{active} = torch.arange({batch}, device={outer[batched[0]]}.device)")
        self.w.line(f"{rows} = []")
        for o in stack_outs:
            self.w.line(f"{lists[o]} = []")
        self.loop_steps.append(t)
        with self.w.indent(f"for {t} in range({p['max_iter']}):"):
            for name, state in states.items():
                self.w.line(f"{args[name]} = {state}[{active}]")
            for name, src in picks.items():
                self.w.line(f"{args[name]} = {src}[{active}]")
            got = self.forward(body, args)
            self.w.line(f"{rows}.append({active})")
            for o in stack_outs:
                self.w.line(f"{lists[o]}.append({got[o]})")
            for o, c in carry_outs.items():
                self.w.line(f"{states[c]} = {states[c]}.index_put(({active},), {got[o]})")
            self.w.line(f"{active} = {active}[{got[cont]}.reshape(-1) > 0]")
            self.w.line(f"if {active}.numel() == 0:")
            self.w.line("    break")
        self.loop_steps.pop()
        stack = self.module.use_helper(torch_stack_rows)
        for o in stack_outs:
            self.w.line(f"{self.value(site, node.id, o)} = {stack}({lists[o]}, {rows}, {batch})")
        for o, c in carry_outs.items():
            self.w.line(f"{self.value(site, node.id, o)} = {states[c]}")

    def route(self, site: Site, node, outer: dict, outs: dict) -> None:
        bodies = self.layout.bodies(site, node)
        in_types = self.layout.in_types(site, node)
        stem = self.stem(site, node.id)
        take = self.names.new(f"{stem}_take_then")
        self.w.line(f"{take} = {outer['cond']}.reshape({outer['cond']}.shape[0], -1)[:, 0] > 0")
        put = self.module.use_helper(torch_put_rows)
        for var in outs.values():
            self.w.line(f"{var} = None")
        for side, chosen in (("then", take), ("else", f"~{take}")):
            rows = self.names.new(f"{stem}_{side}_rows")
            self.w.line(f"{rows} = torch.nonzero({chosen}).flatten()")
            body = bodies[side]
            with self.w.indent(f"if {rows}.numel():"):
                args = {}
                for inp in body.inputs():
                    if is_batched(in_types[inp.id]):
                        args[inp.id] = self.value(body, inp.id)
                        self.w.line(f"{args[inp.id]} = {outer[inp.id]}[{rows}]")
                    else:
                        args[inp.id] = outer[inp.id]
                got = self.forward(body, args)
                for port, var in outs.items():
                    self.w.line(f"{var} = {put}({var}, {got[port]}, {rows}, {take}.shape[0])")

    def tree_loop(self, site: Site, node) -> None:
        p, body, _ins, out_ports, outer, in_types, stem = self.loop_frame(site, node)
        children = outer["children"]
        levels, b, n = (self.names.new(f"{stem}_levels"), self.names.new(f"{stem}_b"),
                        self.names.new(f"{stem}_n"))
        values = {o: self.names.new(f"{stem}_{o}_nodes") for o in out_ports}
        seqs = {i.id: p["axis"] % in_types[i.id].ndim for i in body.inputs()
                if body.params[i.id]["role"] == "sequence"}
        count = (f"{outer[next(iter(seqs))]}.shape[{seqs[next(iter(seqs))]}]" if seqs
                 else f"{children}.shape[1]")
        self.w.line(f"{levels} = {self.module.use_helper(torch_tree_levels)}({children}, {count})")
        for o in out_ports:
            self.w.line(f"{values[o]} = None")
        gather = self.module.use_helper(torch_children_values)
        put = self.module.use_helper(torch_put_nodes)
        self.loop_steps.append(f"{n}[:, None]")
        with self.w.indent(f"for {b}, {n} in {levels}:"):
            args = {}
            for inp in body.inputs():
                ip = body.params[inp.id]
                if ip["role"] == "children":
                    args[inp.id] = self.value(body, inp.id)
                    shape = tuple(self.layout.types[(body.path + inp.id, "y")].shape[1:])
                    self.w.line(f"{args[inp.id]} = {gather}({values[ip['of']]}, {children}, "
                                f"{b}, {n}, {shape!r})")
                elif ip["role"] == "sequence":
                    args[inp.id] = self.value(body, inp.id)
                    moved = outer[inp.id] if seqs[inp.id] == 1 else \
                        f"{outer[inp.id]}.movedim({seqs[inp.id]}, 1)"
                    self.w.line(f"{args[inp.id]} = {moved}[{b}, {n}]")
                elif is_batched(in_types[inp.id]):
                    args[inp.id] = self.value(body, inp.id)
                    self.w.line(f"{args[inp.id]} = {outer[inp.id]}[{b}]")
                else:
                    args[inp.id] = outer[inp.id]
            got = self.forward(body, args)
            for o in out_ports:
                self.w.line(f"{values[o]} = {put}({values[o]}, {got[o]}, {b}, {n}, "
                            f"{children}.shape[0], {count})")
        self.loop_steps.pop()
        for o in out_ports:
            moved = values[o] if p["axis"] == 1 else f"{values[o]}.movedim(1, {p['axis']})"
            self.w.line(f"{self.value(site, node.id, o)} = {moved}")
