"""One generated function: the forward pass of a graph, and with gradients, its backward pass.

The forward pass is the graph's nodes in the compiler's order, one assignment per value, each
node's code written by its numpy rule (nodes/*.py, read through rules.py). The backward pass
walks the same nodes in reverse, accumulating gradients (a value used twice gets the sum of
both), and computes only the gradients that reach a weight (layout.Gradients). Loops, branches
and block calls are written by the mixins in loops.py, branches.py and blocks.py.

Every line is tagged with the node it was written for (`Writer.owning`), so an error raised on
a generated line can name that node, and in traced functions every value and gradient is
handed to a recorder `R` as it is made (for the editor's look inside a network).

Weight gradients go into a `grads` dict of arrays the caller owns. A weight whose gradient is
written exactly once, by a node of the top-level graph, is written there whole (with `out=`
where its expression allows, see passes.assign_into); every other weight is zeroed at the start
of the backward pass and accumulated into.
"""

from __future__ import annotations

from typing import NamedTuple

from ... import nodes
from ...nodes import TensorType
from .blocks import BlockCalls
from .branches import Branches
from .layout import CONTROL, Gradients, Layout, Site, diff_ports, is_batched
from .loops import Loops
from .names import NameTable
from .passes import assign_into, q, stored_and_loaded
from .per_sample import PerSample
from .rules import RuleContext, rule
from .stops import stop_point
from .trees import Trees
from .walk import SiteWalk
from .writer import Writer, comment_text, float_literal

# Names a generated function binds itself (its arguments and loop variables).
FUNCTION_NAMES = ("params", "feeds", "grads", "rng", "train", "seed", "prefix", "saved", "loss",
                  "name", "value", "shape", "kind", "scale", "R")


class LoopFrame(NamedTuple):
    """Where writing a per-sample while Loop or a tree Loop starts, for either target."""

    params: dict     # the Loop's parameters
    body: Site
    ins: list        # the Loop's input ports, connected
    out_ports: list
    outer: dict      # input port -> the variable feeding it
    in_types: dict   # input port -> its TensorType
    stem: str        # the Loop's name stem for new variables


class GeneratedFunction(SiteWalk):
    """What every generated function keeps: its variable names for the graph's values.

    Both targets' functions derive from it (numpy's Fn here, torch's TorchFn).
    """

    def __init__(self, module, root: str, reserved: tuple, level: int):
        self.module = module  # the module being written: its layout, names and helpers
        self.layout: Layout = module.layout
        self.names = NameTable(reserved=reserved, parent=module.names)
        self.w = Writer(level)
        self.root = root  # the path the function's weights and nodes are relative to
        self.var: dict = {}  # (path, node id, port) -> variable
        self.loop_steps: list = []  # loop counter variables, innermost last

    def stem(self, site: Site, node_id: str, port: str = "y") -> str:
        rel = site.path[len(self.root):] + node_id
        return rel.replace("/", "_") + ("" if port == "y" else "_" + port)

    def value(self, site: Site, node_id: str, port: str = "y") -> str:
        key = (site.path, node_id, port)
        if key not in self.var:
            self.var[key] = self.names.new(self.stem(site, node_id, port))
        return self.var[key]

    def loop_frame(self, site: Site, node) -> LoopFrame:
        ins, out_ports = self.layout.ports(node)
        return LoopFrame(site.params[node.id], self.layout.bodies(site, node)["body"], ins,
                         out_ports, {port: self.source_var(site, node.id, port) for port in ins},
                         self.layout.in_types(site, node), self.stem(site, node.id))

    def while_inputs(self, frame: LoopFrame, carry) -> tuple:
        """A per-sample while body's arguments: (args, states, rows). A carry gets a whole-batch
        state variable, which `carry(state, source, batched)` initialises in the target's
        code; a batched input is taken by the active rows (`rows`: id -> its source); anything
        else is passed as it is."""
        args, states, rows = {}, {}, {}
        for inp in frame.body.inputs():
            role, src = frame.body.params[inp.id]["role"], frame.outer[inp.id]
            batched = is_batched(frame.in_types[inp.id])
            if role == "carry":
                states[inp.id] = self.names.new(f"{frame.stem}_{inp.id}_all")
                carry(states[inp.id], src, batched)
                args[inp.id] = self.value(frame.body, inp.id)
            elif batched:
                rows[inp.id] = src
                args[inp.id] = self.value(frame.body, inp.id)
            else:
                args[inp.id] = src
        return args, states, rows

    @staticmethod
    def while_outputs(body: Site, out_ports) -> tuple:
        """(stacked outputs, carry output -> its carry Input, the continue output) of a
        per-sample while body."""
        roles = {o.id: body.params[o.id] for o in body.outputs()}
        stack_outs = [o for o in out_ports if roles[o]["role"] == "stack"]
        carry_outs = {o: roles[o]["carry"] for o in out_ports if roles[o]["role"] == "carry"}
        cont = next(o.id for o in body.outputs() if roles[o.id]["role"] == "continue")
        return stack_outs, carry_outs, cont

    def comment(self, node) -> None:
        text = f"{node.id}: {node.type}"
        if node.label:
            text += f" ({comment_text(node.label, 60)})"
        self.w.comment(text)

    def select_mask(self, site: Site, node, port: str, cond: str, masks: dict) -> str:
        """A select branch's mask for its output `port`: cond > 0, shaped to broadcast over
        that output (one mask per number of axes)."""
        nd = self.layout.type_of(site, node.id, port).ndim
        if nd not in masks:
            masks[nd] = self.names.new(f"{self.stem(site, node.id)}_mask")
            cond_nd = self.layout.in_types(site, node)["cond"].ndim
            shape = f".reshape((-1,) + (1,) * {nd - 1})" if cond_nd == 1 and nd > 1 else ""
            self.w.line(f"{masks[nd]} = ({cond} > 0){shape}")
        return masks[nd]

    def owner(self, site: Site, node_id: str, phase: str = "forward") -> tuple:
        """What a node's lines are tagged with: its path relative to the function (the
        document node's, for a node a loop rewrite made), and the phase."""
        return (site.path[len(self.root):] + self.layout.real_id(site, node_id), phase)


class Fn(Loops, PerSample, Trees, Branches, BlockCalls, GeneratedFunction):
    """A numpy function: names, lines, and the values and gradients it holds."""

    def __init__(self, module, root: str = "", dynamic: bool = False, level: int = 1):
        super().__init__(module, root, FUNCTION_NAMES, level)
        self.dynamic = dynamic  # weights are params[prefix + ...] (block functions)
        self.trace = module.trace
        self.pending_backward: dict = {}  # (path, node id) -> callable(acc) for control nodes
        self.carries = self.layout.carries
        self.grads: Gradients | None = None
        self.depth = 0  # bodies (loop steps, branch sides) being written around the current line
        self.direct: set = set()  # weights whose gradient is written whole, once
        # Per loop whose backward is being written (innermost last): its body's path, and the
        # nodes whose weight gradients it computes once after its steps (see loops.py).
        self.deferring: list = []
        self.bindings: dict = {}  # local name -> the weight (or gradient) it is bound to

    # -- names --------------------------------------------------------------------------------

    def gname(self, key: tuple) -> str:
        return self.names.of(("g",) + key, "g_" + self.var[key])

    def full_name(self, relative: str) -> str:
        return f"prefix + {q(relative)}" if self.dynamic else q(relative)

    def weight_ref(self, site: Site, node_id: str, name: str, table: str = "params") -> str:
        """A node's weight `name` as code: params[...] (or grads[...]), a row range of it for
        the nodes a loop rewrite made."""
        full, rows = self.layout.weight_view(site, node_id, name)
        ref = f"{table}[{self.full_name(full[len(self.root):])}]{rows}"
        if not self.loop_steps:
            return ref
        # Inside a loop: a local bound once, before the function's work (bindings).
        stem = ("w_" if table == "params" else "gw_") + full[len(self.root):]
        local = self.names.of(("bound", ref), stem.replace("/", "_").replace(".", "_"))
        self.bindings[local] = ref
        return local

    def block_prefix(self, path: str) -> str:
        return self.full_name(path[len(self.root):])

    @property
    def dtype(self) -> str:
        return "DTYPE"

    def bind(self, w: Writer, body: Writer) -> None:
        """Write, into w, the bindings of the weights that `body`'s lines use inside loops."""
        stored, loaded = stored_and_loaded(body.lines)
        used = loaded | set(stored)  # `gw += ...` reads the bound gradient as it stores it
        for local, ref in self.bindings.items():
            if local in used:
                w.line(f"{local} = {ref}")

    def step_begins(self) -> None:
        """The first line of every loop step, forward or backward: where a run may be asked
        to stop (stops.py)."""
        self.w.line(f"{self.module.use_helper(stop_point)}()")

    def fragment(self, write, level: int = 0) -> Writer:
        """A writer holding the lines `write()` writes (indented `level` from 0)."""
        saved = self.w
        self.w = Writer(level)
        self.w.owner = saved.owner
        try:
            write()
            return self.w
        finally:
            self.w = saved

    # -- recording (traced functions only) ------------------------------------------------------

    def record(self, kind: str, site: Site, node_id: str, port: str, var: str) -> None:
        """In a traced function, hand a value (kind "value") or gradient ("grad") to R."""
        if self.trace:
            path = self.full_name(site.path[len(self.root):] + node_id)
            self.w.line(f"R.{kind}({path}, {q(port)}, {var})")

    # -- forward ------------------------------------------------------------------------------

    def forward(self, site: Site, args: dict, grad: bool, keep: set | None = None) -> dict:
        """Write the forward pass of a site; args: Input id -> variable. Returns Output id ->
        variable. With `grad`, control nodes also prepare their backward."""

        def write(node):
            with self.w.owning(self.owner(site, node.id)):
                self.comment(node)
                if node.type == "Constant":
                    value = float_literal(site.params[node.id]["value"])
                    name = self.module.constant(value, self.stem(site, node.id))
                    self.var[(site.path, node.id, "y")] = name
                elif node.type == "LoopIndex":
                    step = self.loop_steps[-1] if self.loop_steps else "0"
                    self.w.line(f"{self.value(site, node.id)} = np.array({step}, dtype={self.dtype})")
                elif node.type == "Loop":
                    self.loop_forward(site, node, grad)
                elif node.type == "Branch":
                    self.branch_forward(site, node, grad)
                elif node.type == "Block":
                    self.block_forward(site, node, grad)
                else:
                    self.op_forward(site, node)
                for port in self.layout.ports(node)[1]:
                    if (site.path, node.id, port) in self.var:
                        self.record("value", site, node.id, port, self.var[(site.path, node.id, port)])

        return self.walk(site, args, keep, write)

    def input_bound(self, site: Site, node) -> None:
        with self.w.owning(self.owner(site, node.id)):
            self.record("value", site, node.id, "y", self.var[(site.path, node.id, "y")])

    def context(self, site: Site, node, out: str | None) -> RuleContext:
        node_type = nodes.get(node.type)
        p = site.params[node.id]
        in_types = self.layout.in_types(site, node)  # the connected ports
        ins = {port: self.source_var(site, node.id, port) for port in in_types}
        weights = {name: self.weight_ref(site, node.id, name)
                   for name in (*self.layout.weights(site, node), *self.layout.buffers(site, node))}
        out_ports = self.layout.ports(node)[1]
        out_type = self.layout.types.get((site.path + node.id, "y"))
        e = RuleContext(self, node_type, p, ins, in_types, weights, out, out_type, "numpy")
        if out_ports != ("y",):
            e.outs = {port: self.value(site, node.id, port) for port in out_ports}
        e.key = (site.path, node.id)
        return e

    def op_forward(self, site: Site, node) -> None:
        single = self.layout.ports(node)[1] == ("y",)
        e = self.context(site, node, self.value(site, node.id) if single else None)
        write_forward(e)

    # -- backward -----------------------------------------------------------------------------

    def contribute(self, acc: dict, key: tuple, expr: str) -> None:
        if key in acc:
            self.w.line(f"{acc[key]} = {acc[key]} + {expr}")
        else:
            name = self.gname(key)
            if expr != name:
                self.w.line(f"{name} = {expr}")
            acc[key] = name

    def backward(self, site: Site, out_grads: dict, keep: set | None = None) -> dict:
        """Write the backward pass of a site. out_grads: Output id -> gradient variable.
        Returns Input id -> gradient variable (only those that receive one)."""
        acc: dict = {}
        if keep is None:
            keep = self.layout.ancestors(site, [o.id for o in site.outputs()])
        for out in site.outputs():
            if out.id in out_grads:
                src, sport = site.source(out.id, "x")
                key = (site.path, src, sport)
                if self.carries.value.get(key):
                    self.contribute(acc, key, out_grads[out.id])
        for node in reversed(site.order):
            if node.id not in keep or node.type in ("Input", "Output", "Constant", "LoopIndex"):
                continue
            with self.w.owning(self.owner(site, node.id, "backward")):
                if node.type in CONTROL:
                    pending = self.pending_backward.get((site.path, node.id))
                    if pending is not None and self.grads.active.get((site.path, node.id)):
                        for port in self.layout.ports(node)[1]:
                            if (site.path, node.id, port) in acc:
                                self.record("grad", site, node.id, port, acc[(site.path, node.id, port)])
                        pending(acc)
                    continue
                got = [port for port in self.layout.ports(node)[1]
                       if (site.path, node.id, port) in acc]
                if not got:
                    continue
                for port in got:
                    self.record("grad", site, node.id, port, acc[(site.path, node.id, port)])
                self.op_backward(site, node, acc)
        grads = {}
        for n in site.inputs():
            key = (site.path, n.id, "y")
            if key in acc:
                grads[n.id] = acc[key]
                with self.w.owning(self.owner(site, n.id, "backward")):
                    self.record("grad", site, n.id, "y", acc[key])
        return grads

    def op_backward(self, site: Site, node, acc: dict) -> None:
        out = self.var.get((site.path, node.id, "y"))
        e = self.context(site, node, out)
        e.gys = {port: acc.get((site.path, node.id, port)) for port in self.layout.ports(node)[1]}
        e.gy = e.gys.get("y")
        ports = [port for port in diff_ports(self.layout, site, node)
                 if self.carries.source(site, node.id, port)]
        weights = list(self.layout.weights(site, node))
        if weights and self._defer_weight_grads(site, e):
            weights = []
        e.needs = set(ports) | set(weights)
        self.w.comment(f"{node.id}: {node.type}, backward")
        grads = write_backward(e) if e.needs else {}
        for port in ports:
            src, sport = site.source(node.id, port)
            self.contribute(acc, (site.path, src, sport), grads[port])
        for name in weights:
            self.weight_grad(site, node.id, name, grads[name])

    def _defer_weight_grads(self, site: Site, e: RuleContext) -> bool:
        """In a loop body, leave a stackable type's weight gradients to the loop, which
        computes them once from every step's inputs and output gradient (loops.py)."""
        if not self.deferring or not e.type.stacked_weight_grads:
            return False
        scope = self.deferring[-1]
        if scope["path"] != site.path:  # deeper in: a branch side may not run every step
            return False
        node_id = e.key[1]
        stem = self.stem(site, node_id)
        gy_steps = self.names.new(f"{stem}_gy_steps")
        inputs = {port: (var, self.names.new(f"{stem}_{port}_steps"))
                  for port, var in e.ins.items()}
        scope["nodes"].append({"site": site, "node": site.by_id[node_id], "gy": gy_steps,
                               "inputs": inputs})
        self.w.line(f"{gy_steps}.append({e.gy})")
        return True

    def stacked_weight_grads(self, info: dict) -> None:
        """A loop body node's weight gradients over all the steps at once: its rule written
        for its inputs and output gradient stacked along a new leading axis."""
        site, node = info["site"], info["node"]
        with self.w.owning(self.owner(site, node.id, "backward")):
            self.w.comment(f"{node.id}: {node.type}, weight gradients of every step at once")
            e = self.context(site, node, None)
            stacked_ins = {}
            for port, (_, steps) in info["inputs"].items():
                stacked_ins[port] = self.names.new(f"{steps}_all")
                self.w.line(f"{stacked_ins[port]} = np.stack({steps})")
            e.ins = stacked_ins
            e.in_types = {port: TensorType((None,) + t.shape, t.dtype)
                          for port, t in e.in_types.items()}
            e.out_type = TensorType((None,) + e.out_type.shape, e.out_type.dtype)
            e.gy = self.names.new(f"{info['gy']}_all")
            self.w.line(f"{e.gy} = np.stack({info['gy']}[::-1])")  # walked back: reversed
            weights = list(self.layout.weights(site, node))
            e.needs = set(weights)
            grads = write_backward(e)
            self.depth += 1  # added to what the other steps of enclosing loops gave
            for name in weights:
                self.weight_grad(site, node.id, name, grads[name])
            self.depth -= 1

    def weight_grad(self, site: Site, node_id: str, name: str, expr: str) -> None:
        """Put a weight's gradient into `grads`: written whole when this is the one write it
        gets (a top-level node of the document's own, not shared), else added to what the
        zeroed buffer holds."""
        dest = self.weight_ref(site, node_id, name, "grads")
        full, rows = self.layout.weight_view(site, node_id, name)
        if self.dynamic or self.depth or rows or full in self.layout.shared_weights:
            self.w.line(f"{dest} += {expr}")
        else:
            self.direct.add(full)
            self.w.line(assign_into(dest, expr))


def write_forward(e: RuleContext) -> None:
    """A node's forward by its numpy rule: the lines it needs, then `y = expression`."""
    fwd = rule(e.type, "np_forward")
    if fwd is None:
        raise NotImplementedError(f"{e.type.name} has no numpy rule")
    expr = fwd(e.p, e) if callable(fwd) else e.fmt(fwd)
    if expr is not None:
        e.emit(f"{e.y} = {expr}")


def write_backward(e: RuleContext) -> dict:
    """A node's gradients by its numpy rule: port or weight name -> expression, for e.needs."""
    bwd = rule(e.type, "np_backward")
    if bwd is None:
        raise NotImplementedError(f"{e.type.name} has no numpy gradient rule")
    if callable(bwd):
        return bwd(e.p, e)
    return {k: e.fmt(v) for k, v in bwd.items() if k in e.needs}
