"""The numpy target: a module with init_params, forward and value_and_grad written out.

The forward pass is the graph's nodes in the compiler's order, one assignment per value. The
backward pass of `value_and_grad` walks the same nodes in reverse, accumulating gradients the
way the engine does (core/execute.py), and computes only the gradients that reach a weight.
Loops become Python `for` loops that keep a tape of the values their backward needs, one
entry per step; scalar branches an `if`; select branches `np.where`; blocks a pair of
functions (forward, backward) per definition, called once per instance with its own prefix.
"""

from __future__ import annotations

import ast
import json
import re

import nodes

from .graphs import CONTROL, Carries, Gradients, Program, Site, diff_ports
from .names import NameTable, sanitize
from .rules import RuleContext, helper_source, rule
from .writer import Writer, comment_text, float_literal, literal

MODULE_NAMES = ("np", "json", "math", "os", "sys", "time", "zlib", "argparse", "DTYPE",
                "DOCUMENT_NAME", "PARAM_SPECS", "TRAINING", "init_params", "forward",
                "value_and_grad", "load_weights", "save_weights", "main", "train", "HERE",
                "LOSSES", "WEIGHTS_FILE")


# Names the generated functions themselves use (arguments and loop variables of their own).
FUNCTION_NAMES = ("params", "feeds", "grads", "rng", "train", "seed", "prefix", "saved", "loss",
                  "name", "value", "shape", "kind", "scale")


def q(text: str) -> str:
    """A string literal for names and keys (JSON escaping is valid Python, ASCII only)."""
    return json.dumps(str(text))


def stored_and_loaded(lines: list) -> tuple:
    """(names stored in order of first store, names loaded) in a fragment of statements."""
    tree = ast.parse("\n".join(lines) if lines else "pass")
    stored, loaded = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                if node.id not in stored:
                    stored.append(node.id)
            else:
                loaded.add(node.id)
    return stored, loaded


def tape_names(forward_lines: list, backward_lines: list, extra_stored=(), backward_own=()):
    """Names the backward fragment reads that the forward fragment assigns: what to save."""
    f_stored, _ = stored_and_loaded(forward_lines)
    b_stored, b_loaded = stored_and_loaded(backward_lines)
    own = set(b_stored) | set(backward_own)
    candidates = list(extra_stored) + [n for n in f_stored if n not in extra_stored]
    return [n for n in candidates if n in b_loaded and n not in own]


def tidy(text: str) -> str:
    """Unused names a function assigns become `_` (a result the graph computes but nothing
    reads, such as a saved value of a helper that only backward needs)."""
    tree = ast.parse(text)
    lines = text.splitlines()
    edits = []
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        loaded = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
                  and not isinstance(n.ctx, ast.Store)}
        for node in ast.walk(fn):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                for name in names:
                    if isinstance(name, ast.Name) and name.id not in loaded and name.id != "_":
                        edits.append((name.lineno - 1, name.col_offset, name.end_col_offset))
    for row, start, end in sorted(edits, reverse=True):
        lines[row] = lines[row][:start] + "_" + lines[row][end:]
    return "\n".join(lines) + "\n"


def uses(lines: list, name: str) -> bool:
    """Whether a fragment reads `name`."""
    return name in stored_and_loaded(_dedent_all(lines))[1]


def _dedent_all(lines: list) -> list:
    import textwrap

    return textwrap.dedent("\n".join(lines)).splitlines()


def unpack(names: list) -> str:
    return ", ".join(names) + ("," if len(names) == 1 else "")


def pack(names: list) -> str:
    if not names:
        return "()"
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


class GeneratedFunction:
    """What every generated function keeps: its variable names for the graph's values.

    Both targets' functions derive from it (numpy's Fn, torch's TorchFn).
    """

    def __init__(self, exporter, root: str, reserved: tuple, level: int):
        self.exporter = exporter
        self.program: Program = exporter.program
        self.names = NameTable(reserved=reserved, parent=exporter.names)
        self.w = Writer(level)
        self.root = root  # the path the function's weights are relative to
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

    def source_var(self, site: Site, node_id: str, port: str) -> str:
        src, sport = site.source(node_id, port)
        return self.var[(site.path, src, sport)]


class Fn(GeneratedFunction):
    """One generated function: its names, its lines, and the values and gradients it holds."""

    def __init__(self, exporter, root: str = "", dynamic: bool = False, level: int = 1):
        super().__init__(exporter, root, FUNCTION_NAMES, level)
        self.dynamic = dynamic  # weights are params[prefix + ...] (block functions)
        self.pending_backward: dict = {}  # (path, node id) -> callable(acc) for control nodes
        self.carries: Carries = exporter.carries
        self.grads: Gradients | None = None

    # -- names --------------------------------------------------------------------------------

    def gname(self, key: tuple) -> str:
        return self.names.of(("g",) + key, "g_" + self.var[key])

    def weight_ref(self, full_name: str, table: str = "params") -> str:
        if self.dynamic:
            return f"{table}[prefix + {q(full_name[len(self.root):])}]"
        return f"{table}[{q(full_name)}]"

    def block_prefix(self, path: str) -> str:
        if self.dynamic:
            return f"prefix + {q(path[len(self.root):])}"
        return q(path)

    @property
    def dtype(self) -> str:
        return "DTYPE"

    # -- forward ------------------------------------------------------------------------------

    def forward(self, site: Site, args: dict, grad: bool, keep: set | None = None) -> dict:
        """Write the forward pass of a site; args: Input id -> variable. Returns Output id ->
        variable. With `grad`, control nodes also prepare their backward."""
        outs = {}
        if keep is None:
            keep = self.program.ancestors(site, [o.id for o in site.outputs()])
        for node in site.order:
            if node.id not in keep:
                continue
            if node.type == "Input":
                self.var[(site.path, node.id, "y")] = args[node.id]
            elif node.type == "Output":
                outs[node.id] = self.source_var(site, node.id, "x")
            else:
                self._comment(node)
                if node.type == "Constant":
                    value = site.params[node.id]["value"]
                    self.w.line(f"{self.value(site, node.id)} = np.array("
                                f"{float_literal(value)}, dtype={self.dtype})")
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
        return outs

    def _comment(self, node) -> None:
        text = f"{node.id}: {node.type}"
        if node.label:
            text += f" ({comment_text(node.label, 60)})"
        self.w.comment(text)

    def context(self, site: Site, node, out: str | None) -> RuleContext:
        node_type = nodes.get(node.type)
        p = site.params[node.id]
        in_ports = node_type.input_ports(p)
        ins = {port: self.source_var(site, node.id, port) for port in in_ports}
        in_types = self.program.in_types(site, node)
        weights = {name: self.weight_ref(f"{site.path}{node.id}.{name}")
                   for name in self.program.weights(site, node)}
        out_type = self.program.type_of(site, node.id, "y")
        e = RuleContext(self, node_type, p, ins, in_types, weights, out, out_type, "numpy")
        e.key = (site.path, node.id)
        return e

    def op_forward(self, site: Site, node) -> None:
        out = self.value(site, node.id)
        e = self.context(site, node, out)
        fwd = rule(e.type, "np_forward")
        if fwd is None:
            raise NotImplementedError(f"{node.type} has no numpy export rule")
        expr = fwd(e.p, e) if callable(fwd) else e.fmt(fwd)
        if expr is not None:
            self.w.line(f"{out} = {expr}")

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
            keep = self.program.ancestors(site, [o.id for o in site.outputs()])
        for out in site.outputs():
            if out.id in out_grads:
                src, sport = site.source(out.id, "x")
                key = (site.path, src, sport)
                if self.carries.value.get(key):
                    self.contribute(acc, key, out_grads[out.id])
        for node in reversed(site.order):
            if node.id not in keep:
                continue
            if node.type in ("Input", "Output", "Constant", "LoopIndex"):
                continue
            if node.type in CONTROL:
                pending = self.pending_backward.get((site.path, node.id))
                if pending is not None and self.grads.active.get((site.path, node.id)):
                    pending(acc)
                continue
            key = (site.path, node.id, "y")
            if key not in acc:
                continue
            self.op_backward(site, node, acc)
        return {n.id: acc[(site.path, n.id, "y")] for n in site.inputs()
                if (site.path, n.id, "y") in acc}

    def op_backward(self, site: Site, node, acc: dict) -> None:
        out = self.var[(site.path, node.id, "y")]
        e = self.context(site, node, out)
        e.gy = acc[(site.path, node.id, "y")]
        ports = [port for port in diff_ports(self.program, site, node)
                 if self.carries.source(site, node.id, port)]
        weights = list(self.program.weights(site, node))
        e.needs = set(ports) | set(weights)
        self._comment_back(node)
        bwd = rule(e.type, "np_backward")
        if bwd is None:
            raise NotImplementedError(f"{node.type} has no numpy gradient rule")
        grads = bwd(e.p, e) if callable(bwd) else {k: e.fmt(v) for k, v in bwd.items()
                                                   if k in e.needs}
        for port in ports:
            src, sport = site.source(node.id, port)
            self.contribute(acc, (site.path, src, sport), grads[port])
        for name in weights:
            ref = self.weight_ref(f"{site.path}{node.id}.{name}", "grads")
            self.w.line(f"{ref} += {grads[name]}")

    def _comment_back(self, node) -> None:
        self.w.comment(f"{node.id}: {node.type}, backward")

    # -- fragments ----------------------------------------------------------------------------

    def fragment(self, write, level: int = 0) -> list:
        """Lines written by `write()` into a fresh writer (relative indentation)."""
        saved = self.w
        self.w = Writer(level)
        try:
            write()
            return self.w.lines
        finally:
            self.w = saved

    # -- loops --------------------------------------------------------------------------------

    def loop_forward(self, site: Site, node, grad: bool) -> None:
        p = site.params[node.id]
        body = self.program.bodies(site, node)["body"]
        ins, out_ports = self.program.ports(node)
        outer = {port: self.source_var(site, node.id, port) for port in ins}
        in_types = self.program.in_types(site, node)
        mode = p["mode"]
        stem = self.stem(site, node.id)
        for port in out_ports:
            self.value(site, node.id, port)
        t = self.names.new("t")
        batched = [port for port in ins if in_types[port].ndim >= 1
                   and in_types[port].shape[0] is None]

        args, carries, seq_axes = {}, [], {}
        init = []
        for inp in body.inputs():
            ip = body.params[inp.id]
            role, src = ip["role"], outer[inp.id]
            if role == "const":
                args[inp.id] = src
            elif role == "carry":
                state = self.value(body, inp.id)
                args[inp.id] = state
                carries.append(inp.id)
                t_in = in_types[inp.id]
                if batched and not (t_in.ndim >= 1 and t_in.shape[0] is None):
                    first = outer[batched[0]]
                    init.append(f"{state} = np.broadcast_to({src}, ({first}.shape[0],) + "
                                f"np.shape({src}))")
                else:
                    init.append(f"{state} = {src}")
            else:
                axis = p["axis"] % in_types[inp.id].ndim
                seq_axes[inp.id] = axis
                args[inp.id] = self.value(body, inp.id)

        roles = {o.id: body.params[o.id] for o in body.outputs()}
        stack_outs = [o for o in out_ports if roles[o]["role"] == "stack"]
        carry_outs = {o: roles[o]["carry"] for o in out_ports if roles[o]["role"] == "carry"}
        cont = [o.id for o in body.outputs() if roles[o.id]["role"] == "continue"]
        if mode == "scan":
            first_seq = next(i for i in seq_axes)
            stack_axis = seq_axes[first_seq]
        else:
            stack_axis = 1
        lists = {o: self.names.new(f"{stem}_{o}_steps") for o in stack_outs}
        tape = self.names.new(f"{stem}_tape") if grad else None

        if mode == "repeat":
            header = f"for {t} in range({p['count']}):"
        elif mode == "scan":
            s = first_seq
            header = f"for {t} in range({outer[s]}.shape[{seq_axes[s]}]):"
        else:
            header = f"for {t} in range({p['max_iter']}):"

        self.loop_steps.append(t)
        body_outs: dict = {}

        def body_forward():
            for name, axis in seq_axes.items():
                index = ":, " * axis + t
                self.w.line(f"{args[name]} = {outer[name]}[{index}]")
            body_outs.update(self.forward(body, args, grad))

        fwd_lines = self.fragment(body_forward, 1)
        update = []
        if carry_outs:
            targets = [args[c] for c in carry_outs.values()]
            values = [body_outs[o] for o in carry_outs]
            update.append(f"{', '.join(targets)} = {', '.join(values)}")
        bwd_plan = None
        if grad:
            bwd_plan = self._loop_backward_plan(site, node, body, args, carries, carry_outs,
                                                stack_outs, seq_axes, stack_axis, outer, t,
                                                tape, body_outs, batched, in_types)
        self.loop_steps.pop()

        # Values the backward reads are saved per step, before the carries move on.
        for line in init:
            self.w.line(line)
        for o in stack_outs:
            self.w.line(f"{lists[o]} = []")
        if grad:
            self.w.line(f"{tape} = []")
        with self.w.indent(header):
            self.w.block([line.removeprefix("    ") for line in fwd_lines])
            if grad:
                saved = tape_names(_dedent(fwd_lines + ["    " + u for u in update]),
                                   bwd_plan["lines"])
                bwd_plan["saved"] = saved
                self.w.line(f"{tape}.append({pack(saved)})")
            for o in stack_outs:
                self.w.line(f"{lists[o]}.append({body_outs[o]})")
            for line in update:
                self.w.line(line)
            if cont:
                self.w.line(f"if not float(np.reshape({body_outs[cont[0]]}, ())) > 0:")
                self.w.line("    break")
        for o in stack_outs:
            var = self.value(site, node.id, o)
            t_out = self.program.type_of(site, node.id, o)
            pos = min(stack_axis, t_out.ndim - 1)
            if mode == "repeat" and p["count"] == 0:
                shape = [0 if d is None else d for d in t_out.shape]
                self.w.line(f"{var} = np.zeros({literal(tuple(shape))}, dtype={self.dtype})")
            else:
                self.w.line(f"{var} = np.stack({lists[o]}, axis={pos})")
        for o, c in carry_outs.items():
            self.w.line(f"{self.value(site, node.id, o)} = {args[c]}")
        if grad:
            self.pending_backward[(site.path, node.id)] = bwd_plan["emit"]

    def _loop_backward_plan(self, site, node, body, args, carries, carry_outs, stack_outs,
                            seq_axes, stack_axis, outer, t, tape, body_outs, batched, in_types):
        """Prepare the loop's backward: the body's backward for one step as lines (so the
        forward knows what to save), and a function that writes the whole of it later."""
        g = self.grads
        roles_out = {o: c for o, c in carry_outs.items()}
        out_g = {}  # body output id -> gradient variable during a step
        step_slices = []
        for o in stack_outs:
            if g.body_outputs.get((body.path, o)):
                key = (site.path, node.id, o)
                whole = self.gname(key)
                var = self.names.new(f"{whole}_t")
                t_out = self.program.type_of(site, node.id, o)
                pos = min(stack_axis, t_out.ndim - 1)
                step_slices.append(f"{var} = {whole}[{':, ' * pos}{t}]")
                out_g[o] = var
        carry_state = {}  # carry input id -> gradient variable flowing back through it
        for o, c in roles_out.items():
            if g.body_outputs.get((body.path, o)):
                carry_state[c] = self.gname((site.path, node.id, o))
                out_g[o] = carry_state[c]
        arg_grads: dict = {}

        def body_backward():
            for line in step_slices:
                self.w.line(line)
            arg_grads.update(self.backward(body, out_g))

        self.loop_steps.append(t)
        lines = self.fragment(body_backward, 0)
        self.loop_steps.pop()
        plan = {"lines": lines, "saved": []}

        def emit(acc):
            stem = self.stem(site, node.id)
            self.w.comment(f"{node.id}: Loop, backward through every step")
            for o, c in roles_out.items():
                key = (site.path, node.id, o)
                if c in carry_state and key not in acc:
                    self.w.line(f"{carry_state[c]} = np.zeros(np.shape("
                                f"{self.var[key]}), dtype={self.dtype})")
            sums, seqs = {}, {}
            for inp in body.inputs():
                name = inp.id
                if name not in arg_grads or name in carries:
                    continue
                if name in seq_axes:
                    seqs[name] = self.names.new(f"g_{stem}_{name}_all")
                    self.w.line(f"{seqs[name]} = np.zeros(np.shape({outer[name]}), "
                                f"dtype={self.dtype})")
                else:
                    sums[name] = self.names.new(f"g_{stem}_{name}_sum")
                    self.w.line(f"{sums[name]} = np.zeros(np.shape({outer[name]}), "
                                f"dtype={self.dtype})")
            with self.w.indent(f"for {t} in reversed(range(len({tape}))):"):
                if plan["saved"]:
                    self.w.line(f"{unpack(plan['saved'])} = {tape}[{t}]")
                self.w.block(lines)
                moves_t, moves_v = [], []
                for c, var in carry_state.items():
                    moves_t.append(var)
                    if c in arg_grads:
                        moves_v.append(arg_grads[c])
                    else:
                        moves_v.append(f"np.zeros_like({var})")
                if moves_t:
                    self.w.line(f"{', '.join(moves_t)} = {', '.join(moves_v)}")
                for name, var in sums.items():
                    self.w.line(f"{var} = {var} + {arg_grads[name]}")
                for name, var in seqs.items():
                    index = ":, " * seq_axes[name] + t
                    self.w.line(f"{var}[{index}] = {arg_grads[name]}")
            for inp in body.inputs():
                name = inp.id
                if not self.carries.source(site, node.id, name):
                    continue
                src, sport = site.source(node.id, name)
                key = (site.path, src, sport)
                if name in carries and name in carry_state:
                    var = carry_state[name]
                    t_in = in_types[name]
                    if batched and not (t_in.ndim >= 1 and t_in.shape[0] is None):
                        var = f"{var}.sum(axis=0)"
                    self.contribute(acc, key, var)
                elif name in sums:
                    self.contribute(acc, key, sums[name])
                elif name in seqs:
                    self.contribute(acc, key, seqs[name])

        plan["emit"] = emit
        return plan

    # -- branches -----------------------------------------------------------------------------

    def branch_forward(self, site: Site, node, grad: bool) -> None:
        p = site.params[node.id]
        bodies = self.program.bodies(site, node)
        ins, out_ports = self.program.ports(node)
        outer = {port: self.source_var(site, node.id, port) for port in ins}
        cond = outer["cond"]
        outs = {port: self.value(site, node.id, port) for port in out_ports}
        side_outs, fwd = {}, {}
        for side in ("then", "else"):
            body = bodies[side]
            args = {n.id: outer[n.id] for n in body.inputs()}
            side_outs[side] = {}
            fwd[side] = self.fragment(lambda b=body, a=args, s=side: side_outs[s].update(
                self.forward(b, a, grad)), 1)
        if p["mode"] == "scalar":
            take = self.names.new(f"{self.stem(site, node.id)}_take_then")
            saved_var = self.names.new(f"{self.stem(site, node.id)}_saved") if grad else None
            plans = {}
            if grad:
                for side in ("then", "else"):
                    plans[side] = self._side_backward_plan(site, node, bodies[side], outer)
            self.w.line(f"{take} = float(np.reshape({cond}, ())) > 0")
            for side, header in (("then", f"if {take}:"), ("else", "else:")):
                with self.w.indent(header):
                    self.w.block([line[4:] for line in fwd[side]] or ["pass"])
                    for port in out_ports:
                        self.w.line(f"{outs[port]} = {side_outs[side][port]}")
                    if grad:
                        saved = tape_names(_dedent(fwd[side]), plans[side]["lines"])
                        saved = [n for n in saved if n not in outer.values()]
                        plans[side]["saved"] = saved
                        self.w.line(f"{saved_var} = {pack(saved)}")
            if grad:
                self.pending_backward[(site.path, node.id)] = lambda acc: self._scalar_back(
                    site, node, plans, take, saved_var, outer, acc)
            return
        # select: both sides run; each output takes then where cond > 0, else per element.
        for side in ("then", "else"):
            self.w.block([line[4:] for line in fwd[side]])
        masks = {}
        for port in out_ports:
            nd = self.program.type_of(site, node.id, port).ndim
            cond_nd = self.program.in_types(site, node)["cond"].ndim
            if nd not in masks:
                masks[nd] = self.names.new(f"{self.stem(site, node.id)}_mask")
                shape = ""
                if cond_nd == 1 and nd > 1:
                    shape = f".reshape((-1,) + (1,) * {nd - 1})"
                self.w.line(f"{masks[nd]} = ({cond} > 0){shape}")
            self.w.line(f"{outs[port]} = np.where({masks[nd]}, {side_outs['then'][port]}, "
                        f"{side_outs['else'][port]})")
        if grad:
            self.pending_backward[(site.path, node.id)] = lambda acc: self._select_back(
                site, node, bodies, masks, outer, acc)

    def _side_backward_plan(self, site, node, body, outer):
        out_g = {o.id: self.gname((site.path, node.id, o.id)) for o in body.outputs()
                 if self.grads.body_outputs.get((body.path, o.id))}
        arg_grads: dict = {}
        lines = self.fragment(lambda: arg_grads.update(self.backward(body, out_g)), 0)
        return {"lines": lines, "args": arg_grads, "saved": []}

    def _scalar_back(self, site, node, plans, take, saved_var, outer, acc) -> None:
        self.w.comment(f"{node.id}: Branch, backward through the side that ran")
        wanted = []
        for port in self.program.ports(node)[0]:
            if port == "cond" or not self.carries.source(site, node.id, port):
                continue
            if any(port in plans[s]["args"] for s in plans):
                wanted.append(port)
        names = {port: self.names.new(f"g_{self.stem(site, node.id)}_{port}") for port in wanted}
        for side, header in (("then", f"if {take}:"), ("else", "else:")):
            with self.w.indent(header):
                saved = plans[side]["saved"]
                if saved:
                    self.w.line(f"{unpack(saved)} = {saved_var}")
                self.w.block(plans[side]["lines"])
                for port, var in names.items():
                    if port in plans[side]["args"]:
                        self.w.line(f"{var} = {plans[side]['args'][port]}")
                    else:
                        self.w.line(f"{var} = np.zeros(np.shape({outer[port]}), dtype={self.dtype})")
                if not saved and not plans[side]["lines"] and not names:
                    self.w.line("pass")
        for port, var in names.items():
            src, sport = site.source(node.id, port)
            self.contribute(acc, (site.path, src, sport), var)

    def _select_back(self, site, node, bodies, masks, outer, acc) -> None:
        self.w.comment(f"{node.id}: Branch (select), backward through both sides")
        side_g = {"then": {}, "else": {}}
        for o in bodies["then"].outputs():
            key = (site.path, node.id, o.id)
            if key not in acc:
                continue
            nd = self.program.type_of(site, node.id, o.id).ndim
            for side in ("then", "else"):
                var = self.names.new(f"{acc[key]}_{side}")
                if side == "then":
                    self.w.line(f"{var} = np.where({masks[nd]}, {acc[key]}, 0)")
                else:
                    self.w.line(f"{var} = np.where({masks[nd]}, 0, {acc[key]})")
                side_g[side][o.id] = var
        results = {}
        for side in ("then", "else"):
            results[side] = self.backward(bodies[side], side_g[side])
        for port in self.program.ports(node)[0]:
            if port == "cond" or not self.carries.source(site, node.id, port):
                continue
            parts = [results[s][port] for s in ("then", "else") if port in results[s]]
            if parts:
                src, sport = site.source(node.id, port)
                self.contribute(acc, (site.path, src, sport), " + ".join(parts))

    # -- blocks -------------------------------------------------------------------------------

    def block_forward(self, site: Site, node, grad: bool) -> None:
        body = self.program.bodies(site, node)["definition"]
        ins, out_ports = self.program.ports(node)
        fn_name, back_name, back_args = self.exporter.block_function(body, site.params[node.id]["block"])
        args = [self.source_var(site, node.id, port) for port in ins]
        outs = [self.value(site, node.id, port) for port in out_ports]
        saved = self.names.new(f"{self.stem(site, node.id)}_saved") if grad else "_"
        prefix = self.block_prefix(body.path)
        call = f"{fn_name}(params, {prefix}, train, rng{''.join(', ' + a for a in args)})"
        self.w.line(f"{', '.join(outs + [saved])} = {call}")
        if grad:
            self.pending_backward[(site.path, node.id)] = lambda acc: self._block_back(
                site, node, body, back_name, back_args, saved, prefix, acc)

    def _block_back(self, site, node, body, back_name, back_args, saved, prefix, acc) -> None:
        self.w.comment(f"{node.id}: Block, backward")
        out_args = []
        for o in back_args["outputs"]:
            key = (site.path, node.id, o)
            out_args.append(acc[key] if key in acc else
                            f"np.zeros(np.shape({self.var[key]}), dtype={self.dtype})")
        call = f"{back_name}(params, grads, {prefix}, {saved}{''.join(', ' + a for a in out_args)})"
        results = [self.names.new(f"g_{self.stem(site, node.id)}_{a}") for a in back_args["inputs"]]
        if not results:
            self.w.line(call)
            return
        self.w.line(f"{', '.join(results)}{',' if len(results) == 1 else ''} = {call}")
        for port, var in zip(back_args["inputs"], results):
            src, sport = site.source(node.id, port)
            if self.carries.value.get((site.path, src, sport)):
                self.contribute(acc, (site.path, src, sport), var)


def _dedent(lines: list) -> list:
    """Fragment lines written one level in, back to level 0 (for parsing)."""
    return [line.removeprefix("    ") for line in lines]


class Exporter:
    """What both targets' exporters start from: the program, where weights and data are,
    module-level names kept free of the helpers any type may copy in."""

    def __init__(self, program: Program, weights_file: str | None, data_dir: str | None,
                 module_names: tuple):
        from .rules import all_helper_names

        self.program = program
        self.doc = program.doc
        self.weights_file = weights_file
        self.data_dir = data_dir
        self.names = NameTable(reserved=set(module_names) | all_helper_names())
        self.helpers: list = []


class NumpyExporter(Exporter):
    """Writes the numpy module for a document."""

    def __init__(self, program: Program, weights_file: str | None = None,
                 data_dir: str | None = None):
        super().__init__(program, weights_file, data_dir, MODULE_NAMES)
        self.carries = Carries(program)
        self.carries.run(program.top, {})
        self.block_defs: list = []  # (forward text, backward text, names)
        self._block_cache: dict = {}
        self.sections: list = []

    def use_helper(self, fn, family=()) -> str:
        """Include a helper (and, first, the helpers of its family that it calls)."""
        if fn in self.helpers:
            return fn.__name__
        source = helper_source(fn)
        for other in family:
            if other is not fn and re.search(rf"\b{other.__name__}\(", source):
                self.use_helper(other, [f for f in family if f is not fn])
        self.helpers.append(fn)
        return fn.__name__

    # -- blocks -------------------------------------------------------------------------------

    def block_function(self, body: Site, block_name: str):
        """(forward name, backward name, {inputs, outputs}) of the function pair for this
        instance's body, written once per distinct code."""
        fwd = Fn(self, root=body.path, dynamic=True)
        grads = Gradients(self.program, self.carries)
        fwd.grads = grads
        out_carry = {o.id: self.carries.outputs.get((body.path, o.id), False)
                     for o in body.outputs()}
        grads.run(body, out_carry)
        args = {}
        for inp in body.inputs():
            args[inp.id] = fwd.names.new(sanitize(inp.id))
            fwd.var[(body.path, inp.id, "y")] = args[inp.id]
        outs = fwd.forward(body, args, grad=True)
        fwd_lines = list(fwd.w.lines)
        g_params = {}
        for o in body.outputs():
            if out_carry[o.id]:
                g_params[o.id] = fwd.names.new(f"g_{sanitize(o.id)}")
        back_w = Writer(1)
        fwd.w = back_w
        arg_grads = fwd.backward(body, g_params)
        inputs = [i.id for i in body.inputs() if i.id in arg_grads]
        if inputs:
            back_w.line("return " + pack([arg_grads[i] for i in inputs]))
        back_lines = back_w.lines
        saved = tape_names(_dedent(fwd_lines), _dedent(back_lines),
                           extra_stored=list(args.values()),
                           backward_own=["params", "grads", "prefix", "saved", *g_params.values()])
        fwd_text = "\n".join(fwd_lines)
        back_text = "\n".join(back_lines)
        key = (block_name, fwd_text, back_text, tuple(saved), tuple(g_params.items()),
               tuple(args.values()))
        if key in self._block_cache:
            return self._block_cache[key]
        name = self.names.new(f"block_{sanitize(block_name)}")
        back_name = self.names.new(f"{name}_backward")
        out_list = ", ".join([outs[o.id] for o in body.outputs()] + [pack(saved)])
        w = Writer()
        w.comment(f"Block {block_name}")
        w.line(f"def {name}(params, prefix, train, rng{''.join(', ' + a for a in args.values())}):")
        with w.indent():
            w.line("\"\"\"The block's forward: its results and what its backward needs.\"\"\"")
            w.block([line[4:] for line in fwd_lines])
            w.line(f"return {out_list}")
        w.line()
        w.line()
        g_sig = "".join(", " + g for g in g_params.values())
        w.line(f"def {back_name}(params, grads, prefix, saved{g_sig}):")
        with w.indent():
            w.line("\"\"\"Gradients of the block's arguments; weight gradients go into grads.\"\"\"")
            if saved:
                w.line(f"{unpack(saved)} = saved")
            w.block([line[4:] for line in back_lines])
        self.block_defs.append(w.text())
        result = (name, back_name, {"inputs": inputs, "outputs": list(g_params)})
        self._block_cache[key] = result
        return result

    # -- the module ---------------------------------------------------------------------------

    def losses(self) -> list:
        out = []
        for name, t in self.program.output_types.items():
            if all(d is not None for d in t.shape) and _prod(t.shape) == 1:
                out.append(name)
        return out

    def forward_function(self) -> str:
        fn = Fn(self)
        fn.grads = Gradients(self.program, self.carries)
        top = self.program.top
        keep = self.program.ancestors(top, [o.id for o in top.outputs()])
        args = self._feeds(fn, top, [n.id for n in top.inputs() if n.id in keep])
        outs = fn.forward(top, args, grad=False, keep=keep)
        w = Writer()
        w.line("def forward(params, feeds, train=False, seed=0):")
        with w.indent():
            w.line("\"\"\"Every Output of the graph for these feeds, as a dict by Output id.\"\"\"")
            w.line("params = {name: np.asarray(value, dtype=DTYPE) for name, value in params.items()}")
            if uses(fn.w.lines, "rng"):
                w.line("rng = np.random.default_rng(seed)")
            w.block([line[4:] for line in fn.w.lines])
            w.line("return {")
            for name, var in outs.items():
                w.line(f"    {q(name)}: {var},")
            w.line("}")
        return w.text()

    def _feeds(self, fn: Fn, top: Site, ids: list) -> dict:
        args = {}
        for node in top.inputs():
            if node.id not in ids:
                continue
            var = fn.names.new(node.id)
            args[node.id] = var
            t = self.program.input_types[node.id]
            dtype = "np.int64" if t.dtype == "int64" else "DTYPE"
            fn.w.line(f"{var} = np.asarray(feeds[{q(node.id)}], dtype={dtype})")
        return args

    def grad_function(self, loss: str, name: str) -> str:
        fn = Fn(self)
        top = self.program.top
        keep = self.program.ancestors(top, [loss])
        grads = Gradients(self.program, self.carries)
        fn.grads = grads
        grads.run(top, {loss: True}, keep)
        args = self._feeds(fn, top, [i for i in keep])
        outs = fn.forward(top, args, grad=True, keep=keep)
        loss_var = outs[loss]
        fn.w.line()
        fn.w.comment("Backward: gradients accumulate from the loss back to every weight.")
        fn.w.line("grads = {name: np.zeros(np.shape(value), dtype=DTYPE) "
                  "for name, value in params.items()}")
        src, sport = top.source(loss, "x")
        seed_var = fn.gname((top.path, src, sport))
        fn.w.line(f"{seed_var} = np.ones(np.shape({loss_var}), dtype=DTYPE)")
        fn.backward(top, {loss: seed_var}, keep)
        w = Writer()
        w.line(f"def {name}(params, feeds, train, seed):")
        with w.indent():
            w.line("params = {name: np.asarray(value, dtype=DTYPE) for name, value in params.items()}")
            if uses(fn.w.lines, "rng"):
                w.line("rng = np.random.default_rng(seed)")
            w.block([line[4:] for line in fn.w.lines])
            w.line(f"return float(np.reshape({loss_var}, ())), grads")
        return w.text()

    def value_and_grad_function(self, losses: dict) -> str:
        w = Writer()
        w.line("def value_and_grad(params, feeds, loss=\"loss\", train=True, seed=0):")
        with w.indent():
            w.line("\"\"\"(loss value, gradients): the gradients have the keys and shapes of params.\"\"\"")
            for loss, fname in losses.items():
                w.line(f"if loss == {q(loss)}:")
                w.line(f"    return {fname}(params, feeds, train, seed)")
            known = ", ".join(losses) or "none"
            w.line(f"raise KeyError(f\"no single-number Output named {{loss!r}} (losses: \" + "
                   f"{q(known + ')')})")
        return w.text()

    def init_function(self) -> str:
        w = Writer()
        w.line("# Each parameter: name, shape, and how its first value is drawn (uniform:")
        w.line("# U(-scale, scale), normal: N(0, scale^2), constant: all scale).")
        w.line("PARAM_SPECS = [")
        for name, spec in zip(self.program.weight_names, self.program.weight_specs):
            w.line(f"    ({q(name)}, {literal(tuple(spec.shape))}, {q(spec.init.kind)}, "
                   f"{literal(float(spec.init.scale))}),")
        w.line("]")
        w.line()
        w.line()
        w.line("def init_params(seed=0):")
        with w.indent():
            w.line("\"\"\"Fresh parameters: each drawn from its own stream, seeded by (seed, its name).\"\"\"")
            w.line("params = {}")
            w.line("for name, shape, kind, scale in PARAM_SPECS:")
            w.line("    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])")
            w.line("    if kind == \"uniform\":")
            w.line("        value = rng.uniform(-scale, scale, size=shape)")
            w.line("    elif kind == \"normal\":")
            w.line("        value = rng.normal(0.0, scale, size=shape)")
            w.line("    else:")
            w.line("        value = np.full(shape, scale, dtype=np.float64)")
            w.line("    params[name] = np.asarray(value, dtype=DTYPE)")
            w.line("return params")
        return w.text()

    def export(self) -> str:
        from .training import numpy_parts

        forward = self.forward_function()
        losses = {}
        grad_texts = []
        for loss in self.losses():
            fname = self.names.new(f"_loss_and_grads_{sanitize(loss)}")
            losses[loss] = fname
            grad_texts.append(self.grad_function(loss, fname))
        parts = [header(self.doc, "numpy") + "\n" + IMPORTS_PLACEHOLDER + "\n" + graph_comment(self.doc)
                 + f"DOCUMENT_NAME = {q(self.doc.name or '')}\n"
                 f"DTYPE = np.{self.program.dtype}\n"]
        parts.append(self.init_function())
        for fn in self.helpers:
            parts.append(helper_source(fn))
        parts.extend(self.block_defs)
        parts.append(forward)
        parts.append(self.value_and_grad_function(losses))
        parts.extend(grad_texts)
        parts.extend(numpy_parts(self.program, self.weights_file, self.data_dir))
        text = "\n\n".join(part.rstrip("\n") + "\n" for part in parts if part).rstrip("\n") + "\n"
        text = tidy(text)
        return text.replace(IMPORTS_PLACEHOLDER, imports_for(text, ["numpy as np"]))


IMPORTS_PLACEHOLDER = "# -- imports --\n"
STDLIB = ("argparse", "csv", "json", "math", "os", "sys", "time", "zlib")


def imports_for(text: str, third_party: list) -> str:
    """The standard-library imports a module's text uses, then the third-party ones."""
    used = [m for m in STDLIB if re.search(rf"(?<![\w.]){m}\.", text)]
    lines = [f"import {m}" for m in used]
    if lines:
        lines.append("")
    lines += [f"import {m}" for m in third_party]
    return "\n".join(lines) + "\n"


def header(doc, target: str) -> str:
    lines = ['"""A Wiregrad graph exported as a standalone Python module (target: ' + target + ').',
             "",
             "Generated by `wiregrad export`; the graph's name is DOCUMENT_NAME below."]
    if target == "numpy":
        lines += ["Needs only numpy. init_params(seed), forward(params, feeds) and",
                  "value_and_grad(params, feeds, loss) compute what the Wiregrad engine computes;",
                  "run as a script, it trains by the document's training section."]
    else:
        lines += ["Needs only PyTorch. Model(), load_params(model, params) and, run as a script,",
                  "training on CUDA when present (--device), also under torchrun (DDP)."]
    lines.append('"""')
    return "\n".join(lines) + "\n"


def graph_comment(doc) -> str:
    return f"# Graph: {comment_text(doc.name)}\n" if doc.name else ""


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
