"""Branches: `scalar` as an `if` that runs one side, `select` as both sides and `np.where`.

A scalar branch saves what the side it took needs for its backward in one tuple, and its
backward runs that side's backward only; inputs the side did not use get zero gradient. A
select branch's backward sends each side the output gradient where that side was picked, and
exactly zero elsewhere (np.where, so a non-finite value on the side not picked cannot leak).
"""

from __future__ import annotations

from ...nodes import kernels
from .layout import Site
from .passes import pack, q, tape_names, unpack


class Branches:
    """The Fn mixin that writes Branch nodes."""

    def branch_forward(self, site: Site, node, grad: bool) -> None:
        p = site.params[node.id]
        bodies = self.layout.bodies(site, node)
        ins, out_ports = self.layout.ports(node)
        outer = {port: self.source_var(site, node.id, port) for port in ins}
        outs = {port: self.value(site, node.id, port) for port in out_ports}
        route = p["mode"] == "route"
        in_types = self.layout.in_types(site, node)
        side_outs, fwd, side_args = {}, {}, {}
        self.depth += 1
        for side in ("then", "else"):
            body = bodies[side]
            args = {n.id: outer[n.id] for n in body.inputs()}
            side_args[side] = {}
            if route:  # a side sees the rows routed to it of each batched argument
                for name in args:
                    t = in_types[name]
                    if t.ndim and t.shape[0] is None:
                        args[name] = side_args[side][name] = self.value(body, name)
            side_outs[side] = {}
            fwd[side] = self.fragment(lambda b=body, a=args, s=side: side_outs[s].update(
                self.forward(b, a, grad)), 1)
        plans = {}
        if grad and p["mode"] != "select":  # a side's backward runs only if the side did
            for side in ("then", "else"):
                plans[side] = self._side_backward_plan(site, node, bodies[side], own=route)
        self.depth -= 1
        if p["mode"] == "scalar":
            self._scalar_forward(site, node, grad, fwd, side_outs, plans, outer, outs)
        elif route:
            self.route_forward(site, node, grad, fwd, side_outs, side_args, plans, outer, outs)
        else:
            self._select_forward(site, node, grad, fwd, side_outs, outer, outs)

    def _scalar_forward(self, site, node, grad, fwd, side_outs, plans, outer, outs) -> None:
        take = self.names.new(f"{self.stem(site, node.id)}_take_then")
        saved_var = self.names.new(f"{self.stem(site, node.id)}_saved") if grad else None
        check = self.module.use_helper(kernels.single_value)
        message = ".cond: a scalar branch needs one value, got shape {shape}; use mode select " \
                  "to choose per element"
        self.w.line(f"{take} = {check}({outer['cond']}, {q(message)}) > 0")
        for side, header in (("then", f"if {take}:"), ("else", "else:")):
            with self.w.indent(header):
                self.w.splice(fwd[side], strip=1)
                for port, var in outs.items():
                    self.w.line(f"{var} = {side_outs[side][port]}")
                if not fwd[side].lines and not outs:
                    self.w.line("pass")
                if grad:
                    saved = tape_names([line.removeprefix("    ") for line in fwd[side].lines],
                                       plans[side]["lines"].lines)
                    saved = [n for n in saved if n not in outer.values()]
                    plans[side]["saved"] = saved
                    self.w.line(f"{saved_var} = {pack(saved)}")
        if grad:
            self.pending_backward[(site.path, node.id)] = lambda acc: self._scalar_back(
                site, node, plans, take, saved_var, outer, acc)

    def _select_forward(self, site, node, grad, fwd, side_outs, outer, outs) -> None:
        for side in ("then", "else"):
            self.w.splice(fwd[side], strip=1)
        masks = {}
        for port, var in outs.items():
            mask = self.select_mask(site, node, port, outer["cond"], masks)
            self.w.line(f"{var} = np.where({mask}, {side_outs['then'][port]}, "
                        f"{side_outs['else'][port]})")
        if grad:
            self.pending_backward[(site.path, node.id)] = lambda acc: self._select_back(
                site, node, masks, acc)

    def _side_backward_plan(self, site, node, body, own: bool = False):
        """A side's backward as lines, and the gradients it reads and gives. With `own`, the
        side reads its outputs' gradients from variables of its own (a route side: its rows)."""
        out_g = {}
        for o in body.outputs():
            if self.grads.body_outputs.get((body.path, o.id)):
                whole = self.gname((site.path, node.id, o.id))
                out_g[o.id] = self.names.new(f"{whole}_{body.kind}") if own else whole
        arg_grads: dict = {}
        lines = self.fragment(lambda: arg_grads.update(self.backward(body, out_g)), 0)
        return {"lines": lines, "args": arg_grads, "saved": [], "out_g": out_g}

    def _wanted_ports(self, site, node, side_args: list) -> list:
        """Input ports of the branch whose gradient some side computes (cond never)."""
        return [port for port in self.layout.ports(node)[0]
                if port != "cond" and self.carries.source(site, node.id, port)
                and any(port in args for args in side_args)]

    def _scalar_back(self, site, node, plans, take, saved_var, outer, acc) -> None:
        self.w.comment(f"{node.id}: Branch, backward through the side that ran")
        names = {port: self.names.new(f"g_{self.stem(site, node.id)}_{port}")
                 for port in self._wanted_ports(site, node, [pl["args"] for pl in plans.values()])}
        for side, header in (("then", f"if {take}:"), ("else", "else:")):
            with self.w.indent(header):
                saved = plans[side]["saved"]
                if saved:
                    self.w.line(f"{unpack(saved)} = {saved_var}")
                self._zero_missing(site, node, plans[side]["out_g"], acc)
                self.w.splice(plans[side]["lines"])
                for port, var in names.items():
                    if port in plans[side]["args"]:
                        self.w.line(f"{var} = {plans[side]['args'][port]}")
                    else:
                        self.w.line(f"{var} = np.zeros(np.shape({outer[port]}), dtype={self.dtype})")
                if not saved and not plans[side]["lines"].lines and not names:
                    self.w.line("pass")
        for port, var in names.items():
            src, sport = site.source(node.id, port)
            self.contribute(acc, (site.path, src, sport), var)

    def _zero_missing(self, site, node, out_g: dict, acc: dict) -> None:
        """Output gradients a side's backward reads but that never arrived are zeros."""
        for out_id, var in out_g.items():
            key = (site.path, node.id, out_id)
            if key not in acc:
                self.w.line(f"{var} = np.zeros(np.shape({self.var[key]}), dtype={self.dtype})")
            elif acc[key] != var:
                self.w.line(f"{var} = {acc[key]}")

    def _select_back(self, site, node, masks, acc) -> None:
        self.w.comment(f"{node.id}: Branch (select), backward through both sides")
        bodies = self.layout.bodies(site, node)
        side_g = {"then": {}, "else": {}}
        for o in bodies["then"].outputs():
            key = (site.path, node.id, o.id)
            if key not in acc:
                continue
            nd = self.layout.type_of(site, node.id, o.id).ndim
            for side in ("then", "else"):
                var = self.names.new(f"{acc[key]}_{side}")
                picked = f"{acc[key]}, 0" if side == "then" else f"0, {acc[key]}"
                self.w.line(f"{var} = np.where({masks[nd]}, {picked})")
                side_g[side][o.id] = var
        results = {side: self.backward(bodies[side], side_g[side]) for side in ("then", "else")}
        for port in self._wanted_ports(site, node, list(results.values())):
            parts = [results[s][port] for s in ("then", "else") if port in results[s]]
            src, sport = site.source(node.id, port)
            self.contribute(acc, (site.path, src, sport), " + ".join(parts))
