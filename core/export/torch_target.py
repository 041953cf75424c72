"""The PyTorch target: `class Model(nn.Module)` whose forward returns the Outputs its feeds allow.

forward takes the top-level Inputs as optional arguments, by name or by position
(`INPUT_ORDER`: the predictions' Inputs first, the targets last; codegen/feeds.py), typed for
TorchScript, and runs each node under a test that the Inputs the Outputs needing it need were
given: `model(x=xb)` or `model(xb)` gives the predictions, `model(xb, yb)` the loss too.

Nodes with weights become submodules or parameters named after their ids (`self.hidden1`,
a body node `cell` of loop `rnn` as `self.rnn_cell`); block definitions become their own
`nn.Module` classes, one instance per Block node. Loops are Python loops in forward, scalar
branches `if`, select branches `torch.where`. Autograd does the backward. `load_params`
takes the engine's parameter names (format.md) and transposes Linear weights (the engine's
is (in, out), PyTorch's (out, in)).
"""

from __future__ import annotations

import ast
import keyword
import textwrap
from contextlib import ExitStack

from ... import nodes
from ..codegen.feeds import guards, input_order, nested, output_needs
from ..codegen.function import GeneratedFunction
from ..codegen.layout import Layout, Site
from ..codegen.names import NameTable, sanitize
from ..codegen.passes import q, tidy_source
from ..codegen.rules import RuleContext, helper_source, rule
from ..codegen.writer import Writer, comment_text, float_literal
from .common import (
    IMPORTS_PLACEHOLDER,
    Exporter,
    graph_comment,
    header,
    imports_for,
    join_parts,
)
from .torch_flow import TorchPerSample
from .training import torch_parts

MODULE_ATTRS = (
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr",
    "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule",
    "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children",
    "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook",
    "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule",
    "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad", "step_ref")
MODULE_NAMES = ("torch", "nn", "F", "np", "math", "os", "sys", "time", "zlib", "argparse",
                "csv", "DTYPE", "DOCUMENT_NAME", "PARAM_SPECS", "PARAM_NAMES", "Model",
                "load_params", "init_params", "main", "train", "HERE", "TRAINING", "INPUTS",
                "DATA_DIR", "WEIGHTS_FILE", "EVAL_BATCH", "torch_stack_rows", "torch_put_rows",
                "torch_tree_levels", "torch_children_values", "torch_put_nodes", "INPUT_ORDER")
FUNCTION_NAMES = ("self", "feeds", "args", "name", "value", "t")
MODEL_DOC = ("The graph as a module: forward takes the top-level Inputs by name, or by position "
             "in INPUT_ORDER, each optional, and returns a dict of the Outputs they allow (the "
             "Inputs alone give the predictions, without the loss that needs the targets).")


class TorchFn(TorchPerSample, GeneratedFunction):
    """The forward method of one nn.Module class, and the submodules its __init__ makes."""

    def __init__(self, exporter, root: str = ""):
        super().__init__(exporter, root, FUNCTION_NAMES, 0)
        self.exporter = exporter
        self.attrs = NameTable(reserved=MODULE_ATTRS)
        self.init: list = []  # lines of __init__ after super().__init__()
        self.init_shared: list = []  # then: submodules that are another node's (shares)
        self.param_map: list = []  # (engine name relative to root, torch key, transposed)
        self.uses_step = False

    def attr(self, site: Site, node_id: str) -> str:
        return self.attrs.of((site.path, node_id), self.stem(site, node_id))

    # -- forward ------------------------------------------------------------------------------

    def forward(self, site: Site, args: dict, keep: set | None = None) -> dict:
        return self.walk(site, args, keep, lambda node: self._write(site, node))

    def _write(self, site: Site, node) -> None:
        self.comment(node)
        if node.type == "Constant":
            name = self.attr(site, node.id)
            value = float_literal(site.params[node.id]["value"])
            self.init.append(f"self.register_buffer({q(name)}, torch.tensor({value}), "
                             "persistent=False)")
            self.w.line(f"{self.value(site, node.id)} = self.{name}")
        elif node.type == "LoopIndex":
            self.uses_step = True
            step = self.loop_steps[-1] if self.loop_steps else "0"
            if step.endswith("[:, None]"):  # a tree loop: each node's own index
                self.w.line(f"{self.value(site, node.id)} = {step}.to(self.step_ref.dtype)")
            else:
                self.w.line(f"{self.value(site, node.id)} = self.step_ref.new_full((), {step})")
        elif node.type == "Loop":
            self.loop(site, node)
        elif node.type == "Branch":
            self.branch(site, node)
        elif node.type == "Block":
            self.block(site, node)
        else:
            self.op(site, node)

    def op(self, site: Site, node) -> None:
        node_type = nodes.get(node.type)
        p = site.params[node.id]
        out_ports = self.layout.ports(node)[1]
        out = self.value(site, node.id) if out_ports == ("y",) else None
        in_types = self.layout.in_types(site, node)  # the connected ports
        ins = {port: self.source_var(site, node.id, port) for port in in_types}
        weights = [*self.layout.weights(site, node), *self.layout.buffers(site, node)]
        e = RuleContext(self, node_type, p, ins, in_types, {}, out,
                        self.layout.types.get((site.path + node.id, "y")), "torch")
        if out is None:
            e.outs = {port: self.value(site, node.id, port) for port in out_ports}
        e.key = (site.path, node.id)
        rel = f"{site.path}{node.id}"[len(self.root):]
        if node.shares is not None:  # the owner's submodule (or parameter), not one of its own
            name = self.share(site, node)
            e.module = f"self.{name}"
            if node.type == "Parameter":
                self.w.line(f"{out} = self.{name}")
                return
        elif node.type == "Parameter":
            name = self.attr(site, node.id)
            shape = "(" + "".join(f"{d}, " for d in p["shape"]).rstrip(" ") + ")"  # () too
            self.init.append(f"self.{name} = nn.Parameter(torch.zeros({shape}))")
            self.param_map.append((f"{rel}.value", name, False))
            self.w.line(f"{out} = self.{name}")
            return
        ctor = rule(node_type, "torch_module")
        if node.shares is not None:
            pass
        elif ctor is not None:
            name = self.attr(site, node.id)
            self.init.append(f"self.{name} = {ctor(p, e)}")
            e.module = f"self.{name}"
            mapping = rule(node_type, "torch_weights") or {}
            for wname in weights:
                attr, transposed = mapping[wname]
                self.param_map.append((f"{rel}.{wname}", f"{name}.{attr}", transposed))
        elif weights:
            raise NotImplementedError(f"{node.type} has weights but no torch module rule")
        fwd = rule(node_type, "torch_forward")
        if fwd is None:
            raise NotImplementedError(f"{node.type} has no torch export rule")
        expr = fwd(p, e) if callable(fwd) else e.fmt(fwd)
        if expr is not None:
            self.w.line(f"{out} = {expr}")

    def loop(self, site: Site, node) -> None:
        p = site.params[node.id]
        if p["mode"] == "while" and p["per_sample"]:
            self.per_sample_loop(site, node)
            return
        if p["mode"] == "tree":
            self.tree_loop(site, node)
            return
        body = self.layout.bodies(site, node)["body"]
        ins, out_ports = self.layout.ports(node)
        outer = {port: self.source_var(site, node.id, port) for port in ins}
        in_types = self.layout.in_types(site, node)
        stem = self.stem(site, node.id)
        t = self.names.new("t")
        batched = [port for port in ins if in_types[port].ndim >= 1
                   and in_types[port].shape[0] is None]
        args, seq_axes = {}, {}
        for inp in body.inputs():
            role = body.params[inp.id]["role"]
            src = outer[inp.id]
            if role == "const":
                args[inp.id] = src
            elif role == "carry":
                state = self.value(body, inp.id)
                args[inp.id] = state
                t_in = in_types[inp.id]
                if batched and not (t_in.ndim >= 1 and t_in.shape[0] is None):
                    self.w.line(f"{state} = {src}.expand([{outer[batched[0]]}.shape[0]] + "
                                f"list({src}.shape))")
                else:
                    self.w.line(f"{state} = {src}")
            else:
                seq_axes[inp.id] = p["axis"] % in_types[inp.id].ndim
                args[inp.id] = self.value(body, inp.id)
        roles = {o.id: body.params[o.id] for o in body.outputs()}
        used = self._used_ports(site, node)
        stack_outs = [o for o in out_ports if roles[o]["role"] == "stack" and o in used]
        carry_outs = {o: roles[o]["carry"] for o in out_ports if roles[o]["role"] == "carry"}
        cont = [o.id for o in body.outputs() if roles[o.id]["role"] == "continue"]
        stack_axis = next(iter(seq_axes.values())) if p["mode"] == "scan" else 1
        lists = {o: self.names.new(f"{stem}_{o}_steps") for o in stack_outs}
        for o in stack_outs:
            self.w.line(f"{lists[o]} = []")
        if p["mode"] == "repeat":
            header_line = f"for {t} in range({p['count']}):"
        elif p["mode"] == "scan":
            s = next(iter(seq_axes))
            header_line = f"for {t} in range({outer[s]}.shape[{seq_axes[s]}]):"
        else:
            header_line = f"for {t} in range({p['max_iter']}):"
        self.loop_steps.append(t)
        with self.w.indent(header_line):
            for name, axis in seq_axes.items():
                self.w.line(f"{args[name]} = {outer[name]}[{':, ' * axis}{t}]")
            body_outs = self.forward(body, args)
            for o in stack_outs:
                self.w.line(f"{lists[o]}.append({body_outs[o]})")
            if carry_outs:
                targets = ", ".join(args[c] for c in carry_outs.values())
                self.w.line(f"{targets} = {', '.join(body_outs[o] for o in carry_outs)}")
            if cont:
                self.w.line(f"if not {body_outs[cont[0]]}.item() > 0:")
                self.w.line("    break")
        self.loop_steps.pop()
        for o in stack_outs:
            t_out = self.layout.type_of(site, node.id, o)
            pos = min(stack_axis, t_out.ndim - 1)
            self.w.line(f"{self.value(site, node.id, o)} = torch.stack({lists[o]}, dim={pos})")
        for o, c in carry_outs.items():
            if o in used:
                self.w.line(f"{self.value(site, node.id, o)} = {args[c]}")

    def _used_ports(self, site: Site, node) -> set:
        return {e.src_port for e in site.graph.edges if e.src == node.id}

    def branch(self, site: Site, node) -> None:
        p = site.params[node.id]
        bodies = self.layout.bodies(site, node)
        ins, out_ports = self.layout.ports(node)
        outer = {port: self.source_var(site, node.id, port) for port in ins}
        cond = outer["cond"]
        outs = {port: self.value(site, node.id, port) for port in out_ports}
        if p["mode"] == "route":
            self.route(site, node, outer, outs)
            return
        if p["mode"] == "scalar":
            for side, header_line in (("then", f"if {cond}.item() > 0:"), ("else", "else:")):
                body = bodies[side]
                with self.w.indent(header_line):
                    got = self.forward(body, {n.id: outer[n.id] for n in body.inputs()})
                    for port in out_ports:
                        self.w.line(f"{outs[port]} = {got[port]}")
            return
        got = {}
        for side in ("then", "else"):
            body = bodies[side]
            got[side] = self.forward(body, {n.id: outer[n.id] for n in body.inputs()})
        masks = {}
        for port in out_ports:
            mask = self.select_mask(site, node, port, cond, masks)
            self.w.line(f"{outs[port]} = torch.where({mask}, {got['then'][port]}, "
                        f"{got['else'][port]})")

    def share(self, site: Site, node) -> str:
        """A sharing node's submodule: the owner's own, under the sharing node's name too."""
        owner = node
        while owner.shares is not None:
            owner = site.by_id[owner.shares]
        name = self.attr(site, node.id)
        self.init_shared.append(f"self.{name} = self.{self.attr(site, owner.id)}")
        return name

    def block(self, site: Site, node) -> None:
        body = self.layout.bodies(site, node)["definition"]
        ins, out_ports = self.layout.ports(node)
        class_name, mapping = self.module.block_class(body, site.params[node.id]["block"])
        if node.shares is not None:
            name = self.share(site, node)
        else:
            name = self.attr(site, node.id)
            self.init.append(f"self.{name} = {class_name}()")
            rel = f"{site.path}{node.id}/"[len(self.root):]
            for sub, key, transposed in mapping:
                self.param_map.append((rel + sub, f"{name}.{key}", transposed))
        args = ", ".join(self.source_var(site, node.id, port) for port in ins)
        outs = [self.value(site, node.id, port) for port in out_ports]
        self.w.line(f"{', '.join(outs)} = self.{name}({args})")

    def class_text(self, class_name: str, signature: str, returns: str, doc: str,
                   annotation: str = "") -> str:
        w = Writer()
        w.line(f"class {class_name}(nn.Module):")
        with w.indent():
            lines = textwrap.wrap(f"\"\"\"{doc}", 88) or ["\"\"\""]
            lines[-1] += "\"\"\""
            w.extend(lines)
            w.line()
            w.line("def __init__(self):")
            with w.indent():
                w.line("super().__init__()")
                for line in self.init + self.init_shared:
                    w.line(line)
                if self.uses_step:
                    w.line("self.register_buffer(\"step_ref\", torch.zeros(()), persistent=False)")
                if class_name == "Model" and self.layout.dtype != "float32":
                    w.line(f"self.to(torch.{self.layout.dtype})  # the document's dtype")
            w.line()
            header = f"def forward(self{signature}){annotation}:"
            if len(header) > 92 and signature.startswith(", ") and ": " in signature:
                w.line("def forward(")  # one argument a line
                for argument in ["self"] + signature[2:].split(", "):
                    w.line(f"    {argument},")
                w.line(f"){annotation}:")
            else:
                w.line(header)
            with w.indent():
                w.block(self.w.lines)
                w.line(f"return {returns}")
        return w.text()


class TorchExporter(Exporter):
    def __init__(self, layout: Layout, weights_file: str | None = None,
                 data_dir: str | None = None):
        super().__init__(layout, weights_file, data_dir, MODULE_NAMES)
        self.classes: list = []
        self._class_cache: dict = {}

    def use_helper(self, fn) -> str:
        if fn not in self.helpers:
            self.helpers.append(fn)
        return fn.__name__

    def block_class(self, body: Site, block_name: str):
        fn = TorchFn(self, root=body.path)
        args = {}
        for inp in body.inputs():
            args[inp.id] = fn.names.new(sanitize(inp.id))
        outs = fn.forward(body, args)
        out_vars = [outs[o.id] for o in body.outputs()]
        returns = out_vars[0] if len(out_vars) == 1 else ", ".join(out_vars)
        signature = "".join(", " + a for a in args.values())
        body_text = fn.class_text("CLASS", signature, returns, "")
        key = (block_name, body_text)
        if key not in self._class_cache:
            class_name = self.names.new(f"Block{sanitize(block_name)}")
            text = fn.class_text(class_name, signature, returns,
                                 "A block definition; each instance has its own weights.")
            self.classes.append(f"# Block {comment_text(block_name)}\n" + text)
            self._class_cache[key] = (class_name, fn.param_map)
        return self._class_cache[key]

    def model_class(self) -> tuple:
        """The Model class: forward takes the top-level Inputs by name or position (every one
        optional) and returns the Outputs they allow; each node runs under a test that the
        Inputs the Outputs needing it need are there (codegen/feeds.py)."""
        fn = TorchFn(self)
        top = self.layout.top
        needs = output_needs(self.layout)
        order = input_order(self.layout, needs)
        args = {i: fn.names.new(i) for i in order}
        results = fn.names.new("results")
        fn.w.line(f"{results}: dict[str, torch.Tensor] = {{}}")
        self._guarded_body(fn, top, needs, args, results)
        first = next(iter(needs), None)
        missing = list(needs[first]) if first is not None else []
        if missing:  # feeds that allow no Output: say what the first Output misses
            with fn.w.indent(f"if len({results}) == 0:"):
                fn.w.line(f"raise TypeError(\"missing feed for Input {_in_str(missing[0])}: no "
                          "Output can be computed from the feeds given\")")
        head = Writer()
        if _plain_names(order, args, fn.w.lines):
            signature = "".join(f", {i}: torch.Tensor | None = None" for i in order)
            for i in order:
                if args[i] != i:
                    head.line(f"{args[i]} = {i}")
        else:  # an Input id Python cannot take as an argument name: **feeds, checked here
            signature = ", *args, **feeds"
            self._bind_feeds(head, order, args)
        fn.w.lines[:0] = head.lines
        fn.w.owners[:0] = head.owners
        return (fn.class_text("Model", signature, results, MODEL_DOC,
                              " -> dict[str, torch.Tensor]"), fn.param_map, order)

    def _guarded_body(self, fn: TorchFn, top: Site, needs: dict, args: dict,
                      results: str) -> None:
        """The top graph's nodes, each where its Inputs are known to be there: as nested
        `if`s when the guards grow one from the next (TorchScript follows those), else one
        `if` per run of nodes with the same guard."""
        node_guards = guards(self.layout, needs)
        for node in top.inputs():
            fn.var[(top.path, node.id, "y")] = args[node.id]
        steps = [n for n in top.order if n.id in node_guards and n.type != "Input"]

        def write(node) -> None:
            if node.type == "Output":
                fn.w.line(f"{results}[{q(node.id)}] = {fn.source_var(top, node.id, 'x')}")
            else:
                fn._write(top, node)

        def test(inputs) -> str:
            return " and ".join(f"{args[i]} is not None" for i in sorted(
                inputs, key=list(args).index))

        chain = nested(node_guards[n.id] for n in steps)
        with ExitStack() as stack:
            if chain is not None:
                before = frozenset()
                for guard in chain:
                    if guard - before:
                        stack.enter_context(fn.w.indent(f"if {test(guard - before)}:"))
                    for node in steps:
                        if node_guards[node.id] == guard:
                            write(node)
                    before = guard
                return
            current = None
            for node in steps:
                guard = node_guards[node.id]
                if guard != current:
                    stack.close()
                    if guard:
                        stack.enter_context(fn.w.indent(f"if {test(guard)}:"))
                    current = guard
                write(node)

    def _bind_feeds(self, w: Writer, order: list, args: dict) -> None:
        """forward(*args, **feeds): positional feeds in INPUT_ORDER, every name checked."""
        w.line(f"if len(args) > {len(order)}:")
        w.line(f"    raise TypeError(f\"forward takes at most {len(order)} feeds by position "
               "(INPUT_ORDER), got {len(args)}\")")
        with w.indent("for name, value in zip(INPUT_ORDER, args):"):
            w.line("if name in feeds:")
            w.line("    raise TypeError(f\"feed {name!r} given by position and by name\")")
            w.line("feeds[name] = value")
        with w.indent("for name in feeds:"):
            w.line("if name not in INPUT_ORDER:")
            w.line("    raise TypeError(f\"unknown feed {name!r} (the graph's Inputs: \" + "
                   "\", \".join(INPUT_ORDER) + \")\")")
        for i in order:
            w.line(f"{args[i]} = feeds.get({q(i)})")

    def export(self) -> str:
        model, param_map, order = self.model_class()
        if len(param_map) != len(self.layout.tensors):
            raise NotImplementedError("some weights have no place in the torch model")
        parts = [header(self.doc, "torch") + "\n" + IMPORTS_PLACEHOLDER + "\n"
                 + graph_comment(self.doc)
                 + f"DOCUMENT_NAME = {q(self.doc.name or '')}\n"]
        for fn in self.helpers:
            parts.append(helper_source(fn))
        parts.extend(self.classes)
        parts.append("# The top-level Inputs in the order Model.forward takes them by position: those the\n"
                     "# predictions need first, then the targets (labels only a loss or metric reads).\n"
                     f"INPUT_ORDER = {_tuple(order)}\n")
        parts.append(model)
        w = Writer()
        w.line("# Engine parameter name -> (state_dict key, transposed): Linear weights are (in, out)")
        w.line("# in the engine and (out, in) in PyTorch. Buffers (running statistics) are here too.")
        w.line("PARAM_NAMES = {")
        by_name = {name: (key, tr) for name, key, tr in param_map}
        for name, _ in self.layout.tensors:
            key, tr = by_name[name]
            w.line(f"    {q(name)}: ({q(key)}, {tr}),")
        w.line("}")
        parts.append(w.text())
        parts.append(LOAD_PARAMS)
        parts.extend(torch_parts(self))
        text = tidy_source(join_parts(parts))
        block = imports_for(text, []).rstrip("\n") + "\n\n"
        block += "import torch\n"
        if "F." in text:
            block += "import torch.nn.functional as F\n"
        block += "from torch import nn\n"
        if "np." in text:
            block += ("\ntry:\n    import numpy as np\nexcept ImportError:  # the model needs "
                      "only torch; initial values and data use numpy\n    np = None\n")
        return text.replace(IMPORTS_PLACEHOLDER, block)


def _plain_names(order: list, args: dict, body: list) -> bool:
    """Whether every Input id can be an argument name of forward: an identifier that is no
    keyword nor `self`, and, unless it is the body's own name for the Input, no name the body
    reads (a module or a builtin it would hide)."""
    read = {n.id for n in ast.walk(ast.parse("\n".join(body))) if isinstance(n, ast.Name)}
    return all(i.isidentifier() and not keyword.iskeyword(i) and i != "self"
               and (args[i] == i or i not in read) for i in order)


def _tuple(ids) -> str:
    return "(" + ", ".join(q(i) for i in ids) + ("," if len(ids) == 1 else "") + ")"


def _in_str(text: str) -> str:
    """An id quoted for the inside of a double-quoted string literal (escaped)."""
    return q(repr(text))[1:-1]


LOAD_PARAMS = '''def load_params(model, params):
    """Load parameters named as the engine names them (a dict or an .npz archive)."""
    state = {}
    for name, (key, transposed) in PARAM_NAMES.items():
        value = torch.as_tensor(params[name])
        state[key] = value.T if transposed else value
    reference = model.state_dict()
    for key, value in state.items():
        state[key] = value.to(dtype=reference[key].dtype, device=reference[key].device)
    result = model.load_state_dict(state, strict=False)
    # A submodule two nodes share is in the state dict under both names: loaded under one.
    loaded = {reference[key].data_ptr() for key in state}
    # BatchNorm's num_batches_tracked is PyTorch's own count, which the engine does not keep.
    missing = [key for key in result.missing_keys if reference[key].data_ptr() not in loaded
               and not key.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise KeyError(f"parameters do not fit the model: missing {missing}, "
                       f"unexpected {result.unexpected_keys}")
    return model
'''
