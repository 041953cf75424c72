"""Loops in tree mode: one body, folded over each sample's tree, children before parents
(format.md, version 2).

Nodes of the same height (a leaf has height 0) run together, across the whole batch: the
body runs once per height on the (sample, node) pairs of that height, its sequence inputs
sliced at those pairs and its `children` Inputs given the values its Output took at their
children (nodes/kernels/flow.py: tree_levels, children_values). Each height's results go into the
whole (B, N, ...) outputs. The backward walks the heights back, root first: each pair's
output gradient, with what its parents sent down, goes through the body, and what reaches its
children Inputs is added into its children's output gradients.
"""

from __future__ import annotations

from ...nodes import kernels
from .layout import Site, is_batched
from .passes import pack, tape_names, unpack


class Trees:
    """The Fn mixin that writes Loops in tree mode."""

    def tree_forward(self, site: Site, node, grad: bool) -> None:
        p, body, _ins, out_ports, outer, in_types, stem = self.loop_frame(site, node)
        for port in out_ports:
            self.value(site, node.id, port)
        children = outer["children"]
        levels = self.names.new(f"{stem}_levels")
        level, b, n = self.names.new("level"), self.names.new(f"{stem}_b"), self.names.new(f"{stem}_n")
        values = {o: self.names.new(f"{stem}_{o}_nodes") for o in out_ports}

        args, seqs, rows, kids = {}, {}, {}, {}
        for inp in body.inputs():
            ip = body.params[inp.id]
            if ip["role"] == "children":
                kids[inp.id] = ip["of"]
                args[inp.id] = self.value(body, inp.id)
            elif ip["role"] == "sequence":
                seqs[inp.id] = p["axis"] % in_types[inp.id].ndim
                args[inp.id] = self.value(body, inp.id)
            elif is_batched(in_types[inp.id]):
                rows[inp.id] = outer[inp.id]
                args[inp.id] = self.value(body, inp.id)
            else:
                args[inp.id] = outer[inp.id]
        count = (f"{outer[next(iter(seqs))]}.shape[{seqs[next(iter(seqs))]}]" if seqs
                 else f"{children}.shape[1]")
        tape = self.names.new(f"{stem}_tape") if grad else None

        picks = []
        pick = self.module.use_helper(kernels.node_rows)
        for name, axis in seqs.items():
            picks.append(f"{args[name]} = {pick}({outer[name]}, {b}, {n}, {axis})")
        for name, src in rows.items():
            picks.append(f"{args[name]} = {src}[{b}]")
        gather = self.module.use_helper(kernels.children_values)
        for name, of in kids.items():
            shape = tuple(self.layout.types[(body.path + name, "y")].shape[1:])
            picks.append(f"{args[name]} = {gather}({values[of]}, {children}, {b}, {n}, "
                         f"{shape!r}, {self.dtype})")

        self.loop_steps.append(f"{n}[:, None]")  # LoopIndex: each pair's node index
        self.depth += 1
        body_outs: dict = {}

        def body_forward():
            for line in picks:
                self.w.line(line)
            body_outs.update(self.forward(body, args, grad))

        fwd = self.fragment(body_forward, 1)
        plan = self._tree_plan(site, node, body, args, seqs, rows, kids, values, levels, level,
                               children, tape, outer) if grad else None
        self.depth -= 1
        self.loop_steps.pop()

        batch = f"{children}.shape[0]"
        self.w.line(f"{levels} = {self.module.use_helper(kernels.tree_levels)}({children}, {count})")
        for o in out_ports:
            self.w.line(f"{values[o]} = None")
        if grad:
            self.w.line(f"{tape} = []")
        put = self.module.use_helper(kernels.put_nodes)
        with self.w.indent(f"for {level}, ({b}, {n}) in enumerate({levels}):"):
            self.step_begins()
            self.w.splice(fwd, strip=1)
            if grad:
                saved = tape_names(picks + [line.removeprefix("    ") for line in fwd.lines],
                                   plan["lines"].lines)
                plan["saved"] = saved
                self.w.line(f"{tape}.append({pack(saved)})")
            for o in out_ports:
                self.w.line(f"{values[o]} = {put}({values[o]}, {body_outs[o]}, {b}, {n}, "
                            f"{batch}, {count})")
        for o in out_ports:
            t_out = self.layout.type_of(site, node.id, o)
            shape = [0 if d is None else d for d in t_out.shape]
            self.w.line(f"if {values[o]} is None:  # no node at all")
            self.w.line(f"    {values[o]} = np.zeros({tuple(shape)!r}, dtype={self.dtype})")
            moved = values[o] if p["axis"] == 1 else f"np.moveaxis({values[o]}, 1, {p['axis']})"
            self.w.line(f"{self.value(site, node.id, o)} = {moved}")
        if grad:
            self.pending_backward[(site.path, node.id)] = plan["emit"]

    def _tree_plan(self, site, node, body, args, seqs, rows, kids, values, levels, level,
                   children, tape, outer):
        """A tree loop's backward: the body's backward for one height as lines (so the forward
        knows what to save), and a function that writes the whole of it later."""
        g = self.grads
        stem = self.stem(site, node.id)
        b, n = self.names.new(f"{stem}_b_back"), self.names.new(f"{stem}_n_back")
        g_values = {o: self.names.new(f"g_{stem}_{o}_nodes") for o in values
                    if g.body_outputs.get((body.path, o))}
        out_g = {o: self.names.new(f"g_{stem}_{o}_here") for o in g_values}
        arg_grads: dict = {}

        def body_backward():
            for o, var in out_g.items():
                self.w.line(f"{var} = {g_values[o]}[{b}, {n}]")
            arg_grads.update(self.backward(body, out_g))

        lines = self.fragment(body_backward, 0)
        plan = {"lines": lines, "saved": []}
        axis = site.params[node.id]["axis"]

        def emit(acc):
            self.w.comment(f"{node.id}: Loop (tree), backward from the roots to the leaves")
            for o, var in g_values.items():
                key = (site.path, node.id, o)
                if key in acc:
                    whole = acc[key] if axis == 1 else f"np.moveaxis({acc[key]}, {axis}, 1)"
                    self.w.line(f"{var} = np.array({whole}, dtype={self.dtype})")
                else:
                    self.w.line(f"{var} = np.zeros(np.shape({values[o]}), dtype={self.dtype})")
            sums = {}
            for inp in body.inputs():
                if inp.id in arg_grads and inp.id not in kids:
                    sums[inp.id] = self.names.new(f"g_{stem}_{inp.id}_sum")
                    self.w.line(f"{sums[inp.id]} = np.zeros(np.shape({outer[inp.id]}), "
                                f"dtype={self.dtype})")
            down = self.module.use_helper(kernels.children_backward)
            with self.w.indent(f"for {level} in reversed(range(len({levels}))):"):
                self.step_begins()
                self.w.line(f"{b}, {n} = {levels}[{level}]")
                if plan["saved"]:
                    self.w.line(f"{unpack(plan['saved'])} = {tape}[{level}]")
                self.w.splice(lines)
                for name, of in kids.items():
                    if name in arg_grads and of in g_values:
                        self.w.line(f"{down}({g_values[of]}, {arg_grads[name]}, {children}, "
                                    f"{b}, {n})")
                for name, var in sums.items():
                    if name in seqs:
                        self.w.line(f"np.moveaxis({var}, {seqs[name]}, 1)[{b}, {n}] += "
                                    f"{arg_grads[name]}")
                    elif name in rows:
                        self.w.line(f"np.add.at({var}, {b}, {arg_grads[name]})")
                    else:
                        self.w.line(f"{var} = {var} + {arg_grads[name]}")
            for name, var in sums.items():
                if self.carries.source(site, node.id, name):
                    src, sport = site.source(node.id, name)
                    self.contribute(acc, (site.path, src, sport), var)

        plan["emit"] = emit
        return plan
