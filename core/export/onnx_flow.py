"""Loops and branches in ONNX: `Loop` with the body as a subgraph, `If` with both sides as
subgraphs, and masked forms of the constructs that decide per sample.

- repeat, scan and (batch-level) while Loops are one ONNX `Loop`: carries are its loop-carried
  values, stacked outputs its scan outputs (stacked on a new axis 0, then moved where the
  engine puts them), a scan's sequences sliced in the body by the iteration number, a while's
  continue output its condition (tested after each step, as the engine does).
- a scalar Branch is an `If`; a select Branch both sides and `Where`.
- the per-sample while Loop carries a mask of the samples still running: every step runs the
  body on the whole batch and keeps the new carries of the running samples only (`Where`),
  stacked outputs get zeros after a sample's stop, and the loop ends when no sample runs.
- a route Branch runs both sides on the whole batch and picks each sample's row (`Where`).
- a tree Loop runs its body once per node index n, for all samples at once, children first
  (a child's index is below its parent's), carrying each output's values (B, N, ...): a
  node's children's values are gathered from them (`GatherND`, zeros for no child).

The masked forms run a body on samples the engine would not run it on, and discard what those
give. That is exact for every node that treats samples apart, and wrong for one whose result
for a sample depends on the others (a reduction over the batch axis, BatchNorm): such a node
in a per-sample body is refused, naming it.
"""

from __future__ import annotations

from ..codegen.layout import Site
from ..errors import GraphError
from .onnx_builder import OnnxGraph, elem_type, helper

_KIND = {"per_sample": "per-sample while Loop", "route": "route Branch", "tree": "tree Loop"}


def _batched(t) -> bool:
    return t.ndim >= 1 and t.shape[0] is None


def _move_axis(ndim: int, src: int, dst: int) -> list:
    perm = [a for a in range(ndim) if a != src]
    perm.insert(dst, src)
    return perm


class OnnxFlow:
    """The OnnxWriter mixin for Loop and Branch nodes."""

    # -- shared pieces ------------------------------------------------------------------------

    def _ports(self, site: Site, node):
        ins, out_ports = self.layout.ports(node)
        outer = {port: self.source_var(site, node.id, port) for port in ins}
        return outer, out_ports, self.layout.in_types(site, node)

    def _body_graph(self, stem: str):
        """A new Loop body: its iteration number and condition inputs come first."""
        graph = OnnxGraph(self.model, stem)
        step = self.model.names.new(f"{stem}/step")
        cond = self.model.names.new(f"{stem}/cond_in")
        graph.input(step, "int64", [])
        graph.input(cond, "bool", [])
        return graph, step, cond

    def _state(self, graph: OnnxGraph, stem: str, dtype: str) -> str:
        name = self.model.names.new(stem)
        graph.input(name, dtype)
        return name

    def _yield(self, graph: OnnxGraph, stem: str, value: str, dtype: str) -> None:
        """A body output; always a new name (an output may not be a body input as it is)."""
        name = self.tmp(stem, "Identity", value)
        graph.output(name, dtype)

    def _loop_node(self, stem: str, trips: str, cond: str | None, initial: list, body,
                   n_out: int) -> list:
        names = [self.model.names.new(f"{stem}/out") for _ in range(n_out)]
        self.graph.add_node(helper.make_node("Loop", [trips, cond or ""] + initial, names,
                                             name=self.model.names.new(f"{stem}/Loop"),
                                             body=body.proto()))
        return names

    def _expand_batch(self, stem: str, value: str, batch: str) -> str:
        """A value without the batch axis broadcast to (B, ...), as a batched carry starts."""
        shape = self.tmp(stem, "Concat", batch, self.tmp(stem, "Shape", value), axis=0)
        return self.tmp(stem, "Expand", value, shape)

    def _rows(self, stem: str, mask: str, ndim: int) -> str:
        """A (B,) mask shaped (B, 1, ...) to pick rows of an ndim-axis value."""
        if ndim <= 1:
            return mask
        return self.tmp(stem, "Unsqueeze", mask, self.model.const(list(range(1, ndim)), "int64"))

    def _check_per_sample(self, site: Site, node, kind: str) -> None:
        """Refuse what the masked form cannot give: a body node whose result for a sample
        depends on the others (it would see samples the engine leaves out), and a per-sample
        while's stacked output in use (as long as the longest run among all samples, not among
        those the engine runs it on)."""
        where = f"inside the {_KIND[kind]} {site.path + node.id!r} (ONNX runs the body on the " \
                f"whole batch); move it out of the body, or export to numpy or torch"
        inner = {body.path + n.id: (body, n) for body, n in self._inner_nodes(site, node)}
        for path in self.layout.compiler.batch_level:
            if path in inner:
                raise GraphError(f"node {path!r} ({inner[path][1].type}): its result for a "
                                 f"sample depends on the other samples of the batch, which the "
                                 f"ONNX export cannot reproduce {where}", path)
        for path, (body, n) in inner.items():
            p = body.params[n.id]
            if n.type != "Loop" or p["mode"] != "while" or not p["per_sample"]:
                continue
            loop_body = self.layout.bodies(body, n)["body"]
            used = {e.src_port for e in body.graph.edges if e.src == n.id}
            if any(loop_body.params[o.id]["role"] == "stack" and o.id in used
                   for o in loop_body.outputs()):
                raise GraphError(f"node {path!r} (Loop): the length of a per-sample while's "
                                 f"stacked outputs depends on which samples run it, which the "
                                 f"ONNX export cannot reproduce {where}", path)

    def _inner_nodes(self, site: Site, node):
        """(body site, node) of every node in the bodies of `node`, at any depth."""
        sites = list(self.layout.bodies(site, node).values())
        while sites:
            body = sites.pop()
            for inner in body.graph.nodes:
                yield body, inner
                if inner.type in ("Loop", "Branch", "Block"):
                    sites.extend(self.layout.bodies(body, inner).values())

    def _out_type(self, body: Site, out_id: str):
        """The type of what a body's Output gives."""
        return self.layout.type_of(body, *body.source(out_id, "x"))

    def _single(self, stem: str, value: str, zero: str) -> str:
        """A single value > 0, as the bool scalar Loop and If test."""
        return self.tmp(stem, "Greater", self.tmp(stem, "Reshape", value,
                                                  self.model.const([], "int64")), zero)

    # -- loops --------------------------------------------------------------------------------

    def loop(self, site: Site, node) -> None:
        p = site.params[node.id]
        if p["mode"] == "tree":
            self.tree_loop(site, node)
            return
        if p["mode"] == "while" and p["per_sample"]:
            self.per_sample_loop(site, node)
            return
        body = self.layout.bodies(site, node)["body"]
        outer, out_ports, in_types = self._ports(site, node)
        stem = site.path + node.id
        mode = p["mode"]
        batched = [port for port in outer if _batched(in_types[port])]
        batch = self.tmp(stem, "Shape", outer[batched[0]], start=0, end=1) if batched else None
        roles = {o.id: body.params[o.id] for o in body.outputs()}
        carries = [i.id for i in body.inputs() if body.params[i.id]["role"] == "carry"]
        seqs = {i.id: p["axis"] % in_types[i.id].ndim for i in body.inputs()
                if body.params[i.id]["role"] == "sequence"}
        stack_outs = [o for o in out_ports if roles[o]["role"] == "stack"]
        stack_axis = next(iter(seqs.values())) if mode == "scan" else 1
        initial = []
        for c in carries:
            value = outer[c]
            if batched and not _batched(in_types[c]):
                value = self._expand_batch(stem, value, batch)
            initial.append(value)

        if mode == "repeat" and not p["count"]:  # no steps: the engine's zeros, no Loop
            outs = initial + [self._zeros(stem, self.layout.type_of(site, node.id, o),
                                          stack_axis, batch) for o in stack_outs]
        else:
            cond0 = None
            if mode == "repeat":
                trips = self.model.const(p["count"], "int64")
            elif mode == "scan":
                first = next(iter(seqs))
                trips = self.tmp(stem, "Squeeze", self.tmp(
                    stem, "Shape", outer[first], start=seqs[first], end=seqs[first] + 1))
            else:
                trips = self.model.const(p["max_iter"], "int64")
                cond0 = self.model.const(True, "bool")
            graph = self._loop_body(stem, body, outer, carries, seqs, stack_outs, roles)
            outs = self._loop_node(stem, trips, cond0, initial, graph,
                                   len(carries) + len(stack_outs))
        finals = dict(zip(carries, outs))
        for o, scanned in zip(stack_outs, outs[len(carries):]):
            t_out = self.layout.type_of(site, node.id, o)
            pos = min(stack_axis, t_out.ndim - 1)
            if mode == "scan":  # over no steps: the engine's zeros (a Loop gives no shape)
                value = self._unless_empty(stem, trips, t_out, stack_axis, batch, scanned, pos)
            elif mode == "repeat" and not p["count"]:
                value = scanned
            else:  # a while runs at least once
                value = self._place_steps(stem, scanned, t_out.ndim, pos)
            self.var[(site.path, node.id, o)] = value
        for o in out_ports:
            if roles[o]["role"] == "carry":
                self.var[(site.path, node.id, o)] = finals[roles[o]["carry"]]

    def _loop_body(self, stem: str, body: Site, outer: dict, carries: list, seqs: dict,
                   stack_outs: list, roles: dict) -> OnnxGraph:
        """The body of a repeat, scan or while Loop: (step, cond, carries) in, (cond, next
        carries, this step's stacked values) out."""
        next_of = {roles[o]["carry"]: o for o in roles if roles[o]["role"] == "carry"}
        cont = [o for o in roles if roles[o]["role"] == "continue"]
        graph, step, cond_in = self._body_graph(stem + "/body")
        with self.in_graph(graph):
            self.steps.append(self.tmp(stem, "Cast", step, to=self._float_elem()))
            args = {}
            for inp in body.inputs():
                role = body.params[inp.id]["role"]
                if role == "carry":
                    args[inp.id] = self._state(graph, body.path + inp.id, in_types_of(
                        self.layout, body, inp.id))
                elif role == "sequence":
                    args[inp.id] = self.tmp(body.path + inp.id, "Gather", outer[inp.id], step,
                                            axis=seqs[inp.id])
                else:
                    args[inp.id] = outer[inp.id]
            got = self.walk(body, args)
            self.steps.pop()
            if cont:  # tested after the step, as the engine does: a while runs at least once
                zero = self.model.const(0, _dtype(self._out_type(body, cont[0])))
                cond_out = self._single(stem, got[cont[0]], zero)
            else:
                cond_out = self.tmp(stem, "Identity", cond_in)
            graph.output(cond_out, "bool")
            for c in carries:
                value = got[next_of[c]] if c in next_of else args[c]
                self._yield(graph, body.path + c, value, in_types_of(self.layout, body, c))
            for o in stack_outs:
                self._yield(graph, body.path + o, got[o], _dtype(self._out_type(body, o)))
        return graph

    def _place_steps(self, stem: str, scanned: str, ndim: int, pos: int) -> str:
        """A scan output (steps, ...) with its step axis moved to `pos`."""
        if pos == 0:
            return scanned
        return self.tmp(stem, "Transpose", scanned, perm=_move_axis(ndim, 0, pos))

    def _zeros(self, stem: str, t_out, stack_axis: int, batch: str | None) -> str:
        """A stacked output of no steps, as the engine makes it: zeros, the batch axis as
        long as the batch, other open lengths 0."""
        pos = min(stack_axis, t_out.ndim - 1)
        batch_axis = 1 if pos == 0 else 0
        dims = []
        for axis, d in enumerate(t_out.shape):
            if d is None and axis == batch_axis and batch is not None:
                dims.append(batch)
            else:
                dims.append(self.model.const([d or 0], "int64"))
        shape = self.tmp(stem, "Concat", *dims, axis=0) if dims else \
            self.model.const([], "int64")
        return self.tmp(stem, "Expand", self.model.const(0, _dtype(t_out)), shape)

    def _unless_empty(self, stem: str, trips: str, t_out, stack_axis: int, batch, scanned: str,
                      pos: int) -> str:
        """If the loop ran no step, zeros; else its scan output placed (an If: a Loop of no
        steps gives its scan outputs no shape to move axes in)."""
        sides = {}
        for side in ("then", "else"):
            graph = OnnxGraph(self.model, f"{stem}/{side}_steps")
            with self.in_graph(graph):
                value = self._zeros(stem, t_out, stack_axis, batch) if side == "then" else \
                    self._place_steps(stem, scanned, t_out.ndim, pos)
                self._yield(graph, stem, value, _dtype(t_out))
            sides[side] = graph.proto()
        none = self.tmp(stem, "Equal", trips, self.model.const(0, "int64"))
        name = self.model.names.new(f"{stem}/stacked")
        self.graph.add_node(helper.make_node("If", [none], [name],
                                             name=self.model.names.new(f"{stem}/If"),
                                             then_branch=sides["then"],
                                             else_branch=sides["else"]))
        return name

    def _float_elem(self) -> int:
        return elem_type("float", self.model.float_type)

    def per_sample_loop(self, site: Site, node) -> None:
        self._check_per_sample(site, node, "per_sample")
        p = site.params[node.id]
        body = self.layout.bodies(site, node)["body"]
        outer, out_ports, in_types = self._ports(site, node)
        stem = site.path + node.id
        batched = [port for port in outer if _batched(in_types[port])]
        batch = self.tmp(stem, "Shape", outer[batched[0]], start=0, end=1)
        roles = {o.id: body.params[o.id] for o in body.outputs()}
        carries = [i.id for i in body.inputs() if body.params[i.id]["role"] == "carry"]
        stack_outs = [o for o in out_ports if roles[o]["role"] == "stack"]
        next_of = {roles[o]["carry"]: o for o in out_ports if roles[o]["role"] == "carry"}
        cont = next(o.id for o in body.outputs() if roles[o.id]["role"] == "continue")

        everyone = self.tmp(stem, "Expand", self.model.const(True, "bool"), batch)
        initial = [everyone]
        for c in carries:
            value = outer[c]
            if not _batched(in_types[c]):
                value = self._expand_batch(stem, value, batch)
            initial.append(value)
        graph, step, _ = self._body_graph(stem + "/body")
        with self.in_graph(graph):
            active = self._state(graph, stem + "/active", "bool")
            self.steps.append(self.tmp(stem, "Cast", step, to=self._float_elem()))
            args = {}
            for inp in body.inputs():
                if body.params[inp.id]["role"] == "carry":
                    args[inp.id] = self._state(graph, body.path + inp.id, in_types_of(
                        self.layout, body, inp.id))
                else:
                    args[inp.id] = outer[inp.id]
            got = self.walk(body, args)
            self.steps.pop()
            zero = self.model.const(0, _dtype(self._out_type(body, cont)))
            goes_on = self.tmp(stem, "Greater", self.tmp(
                stem, "Reshape", got[cont], self.model.const([-1], "int64")), zero)
            still = self.tmp(stem, "And", active, goes_on)
            running = self.tmp(stem, "Cast", still, to=self._float_elem())
            any_left = self.tmp(stem, "ReduceMax", running, keepdims=0)
            cond_out = self.tmp(stem, "Greater", any_left, self.model.const(0.0))
            graph.output(cond_out, "bool")
            graph.output(still, "bool")
            for c in carries:
                dtype = in_types_of(self.layout, body, c)
                value = args[c]
                if c in next_of:
                    ndim = self._out_type(body, next_of[c]).ndim
                    value = self.tmp(stem, "Where", self._rows(stem, active, ndim),
                                     got[next_of[c]], args[c])
                self._yield(graph, body.path + c, value, dtype)
            for o in stack_outs:
                t = self._out_type(body, o)
                kept = self.tmp(stem, "Where", self._rows(stem, active, t.ndim), got[o],
                                self.model.const(0, _dtype(t)))
                self._yield(graph, body.path + o, kept, _dtype(t))
        trips = self.model.const(p["max_iter"], "int64")
        cond0 = self.model.const(True, "bool")
        outs = self._loop_node(stem, trips, cond0, initial, graph,
                               1 + len(carries) + len(stack_outs))
        finals = dict(zip(carries, outs[1:]))
        for o, scanned in zip(stack_outs, outs[1 + len(carries):]):
            ndim = self.layout.type_of(site, node.id, o).ndim
            self.var[(site.path, node.id, o)] = self._place_steps(stem, scanned, ndim, 1)
        for o in out_ports:
            if roles[o]["role"] == "carry":
                self.var[(site.path, node.id, o)] = finals[roles[o]["carry"]]

    def tree_loop(self, site: Site, node) -> None:
        self._check_per_sample(site, node, "tree")
        p = site.params[node.id]
        body = self.layout.bodies(site, node)["body"]
        outer, out_ports, in_types = self._ports(site, node)
        stem = site.path + node.id
        children = outer["children"]
        batch = self.tmp(stem, "Shape", children, start=0, end=1)
        count = self.tmp(stem, "Shape", children, start=1, end=2)  # N, the nodes of a tree
        seqs = {i.id: p["axis"] % in_types[i.id].ndim for i in body.inputs()
                if body.params[i.id]["role"] == "sequence"}
        initial = []
        for o in out_ports:
            t = self._out_type(body, o)
            if any(d is None for d in t.shape[1:]):
                raise GraphError(f"node {stem!r} (Loop): the ONNX export of a tree Loop needs "
                                 f"the lengths of its output {o!r} per node, got {t}",
                                 stem)
            full = self.tmp(stem, "Concat", batch, count,
                            self.model.const(list(t.shape[1:]), "int64"), axis=0)
            initial.append(self.tmp(stem, "Expand", self.model.const(0, _dtype(t)), full))
        graph, step, cond_in = self._body_graph(stem + "/body")
        with self.in_graph(graph):
            values = {o: self._state(graph, f"{stem}/{o}_nodes", _dtype(self._out_type(
                body, o))) for o in out_ports}
            index = self.tmp(stem, "Cast", step, to=self._float_elem())
            column = self.tmp(stem, "Concat", batch, self.model.const([1], "int64"), axis=0)
            self.steps.append(self.tmp(stem, "Expand", index, column))
            kids = self.tmp(stem, "Gather", children, step, axis=1)  # (B, K)
            has_kid = self.tmp(stem, "GreaterOrEqual", kids, self.model.const(0, "int64"))
            kid_at = self.tmp(stem, "Unsqueeze", self.tmp(
                stem, "Max", kids, self.model.const(0, "int64")), self.model.const([-1], "int64"))
            args = {}
            for inp in body.inputs():
                ip = body.params[inp.id]
                if ip["role"] == "children":
                    t = self.layout.type_of(body, inp.id)
                    picked = self.tmp(stem, "GatherND", values[ip["of"]], kid_at, batch_dims=1)
                    args[inp.id] = self.tmp(stem, "Where", self._rows_k(stem, has_kid, t.ndim),
                                            picked, self.model.const(0, _dtype(t)))
                elif ip["role"] == "sequence":
                    args[inp.id] = self.tmp(body.path + inp.id, "Gather", outer[inp.id], step,
                                            axis=seqs[inp.id])
                else:
                    args[inp.id] = outer[inp.id]
            got = self.walk(body, args)
            self.steps.pop()
            graph.output(self.tmp(stem, "Identity", cond_in), "bool")
            every = self.tmp(stem, "Range", self.model.const(0, "int64"),
                             self.tmp(stem, "Squeeze", count), self.model.const(1, "int64"))
            here = self.tmp(stem, "Equal", every, step)  # (N,): this node
            for o in out_ports:
                t = self._out_type(body, o)
                at = self.tmp(stem, "Unsqueeze", here, self.model.const(
                    [0] + list(range(2, t.ndim + 1)), "int64"))  # (1, N, 1, ...)
                value = self.tmp(stem, "Where", at, self.tmp(
                    stem, "Unsqueeze", got[o], self.model.const([1], "int64")), values[o])
                self._yield(graph, f"{stem}/{o}_nodes", value, _dtype(t))
        trips = self.tmp(stem, "Squeeze", count)
        outs = self._loop_node(stem, trips, None, initial, graph, len(out_ports))
        for o, whole in zip(out_ports, outs):
            ndim = self.layout.type_of(site, node.id, o).ndim
            axis = p["axis"] % ndim
            if axis != 1:
                whole = self.tmp(stem, "Transpose", whole, perm=_move_axis(ndim, 1, axis))
            self.var[(site.path, node.id, o)] = whole

    def _rows_k(self, stem: str, mask: str, ndim: int) -> str:
        """A (B, K) mask shaped (B, K, 1, ...) for a children value of ndim axes."""
        if ndim <= 2:
            return mask
        return self.tmp(stem, "Unsqueeze", mask, self.model.const(list(range(2, ndim)),
                                                                  "int64"))

    # -- branches -----------------------------------------------------------------------------

    def branch(self, site: Site, node) -> None:
        p = site.params[node.id]
        if p["mode"] == "route":
            self._check_per_sample(site, node, "route")
        bodies = self.layout.bodies(site, node)
        outer, out_ports, in_types = self._ports(site, node)
        stem = site.path + node.id
        cond_zero = self.model.const(0, _dtype(in_types["cond"]))
        if p["mode"] == "scalar":
            self._if(site, node, bodies, outer, out_ports,
                     self._single(stem, outer["cond"], cond_zero))
            return
        got = {side: self.walk(bodies[side], {n.id: outer[n.id] for n in bodies[side].inputs()})
               for side in ("then", "else")}
        if p["mode"] == "route":
            rows = self.tmp(stem, "Reshape", outer["cond"], self.tmp(
                stem, "Concat", self.tmp(stem, "Shape", outer["cond"], start=0, end=1),
                self.model.const([-1], "int64"), axis=0))
            first = self.tmp(stem, "Gather", rows, self.model.const(0, "int64"), axis=1)
            take = self.tmp(stem, "Greater", first, cond_zero)
        else:
            take = self.tmp(stem, "Greater", outer["cond"], cond_zero)
        cond_nd = 1 if p["mode"] == "route" else in_types["cond"].ndim
        for port in out_ports:
            nd = self.layout.type_of(site, node.id, port).ndim
            mask = self._rows(stem, take, nd) if cond_nd == 1 else take
            self.var[(site.path, node.id, port)] = self.tmp(
                stem, "Where", mask, got["then"][port], got["else"][port])

    def _if(self, site: Site, node, bodies: dict, outer: dict, out_ports, cond: str) -> None:
        stem = site.path + node.id
        if not out_ports:
            return
        branches = {}
        for side in ("then", "else"):
            body = bodies[side]
            graph = OnnxGraph(self.model, f"{stem}/{side}")
            with self.in_graph(graph):
                got = self.walk(body, {n.id: outer[n.id] for n in body.inputs()})
                for port in out_ports:
                    self._yield(graph, f"{body.path}{port}", got[port],
                                _dtype(self.layout.type_of(site, node.id, port)))
            branches[side] = graph.proto()
        names = [self.model.names.new(f"{stem}/{port}") for port in out_ports]
        self.graph.add_node(helper.make_node("If", [cond], names,
                                             name=self.model.names.new(f"{stem}/If"),
                                             then_branch=branches["then"],
                                             else_branch=branches["else"]))
        for port, name in zip(out_ports, names):
            self.var[(site.path, node.id, port)] = name


def _dtype(t) -> str:
    return "int64" if t.dtype == "int64" else "float"


def in_types_of(layout, body: Site, input_id: str) -> str:
    """The dtype word of a body Input's value."""
    return _dtype(layout.type_of(body, input_id))
