"""Blocks: each block definition becomes a pair of module-level functions, forward and backward,
called once per instance with that instance's path as `prefix` (its weights are
`params[prefix + "fc.weight"]`). Instances whose code comes out the same share the pair.

The forward returns the block's results and a tuple of what its backward needs; the backward
takes that tuple and the results' gradients, adds the weights' gradients into `grads` and
returns the arguments' gradients.
"""

from __future__ import annotations

from .layout import Gradients, Site
from .names import sanitize
from .passes import pack, tape_names, unpack
from .writer import Writer


class BlockCalls:
    """The Fn mixin that writes calls of block functions."""

    def block_forward(self, site: Site, node, grad: bool) -> None:
        body = self.layout.bodies(site, node)["definition"]
        ins, out_ports = self.layout.ports(node)
        fn_name, back_name, back_args = self.module.block_functions(
            body, site.params[node.id]["block"])
        args = [self.source_var(site, node.id, port) for port in ins]
        outs = [self.value(site, node.id, port) for port in out_ports]
        saved = self.names.new(f"{self.stem(site, node.id)}_saved") if grad else "_"
        prefix = self.block_prefix(body.path)
        extra = ", R" if self.trace else ""
        call = f"{fn_name}(params, {prefix}, train, rng{extra}{''.join(', ' + a for a in args)})"
        self.w.line(f"{', '.join(outs + [saved])} = {call}")
        if grad:
            self.pending_backward[(site.path, node.id)] = lambda acc: self._block_back(
                site, node, back_name, back_args, saved, prefix, acc)

    def _block_back(self, site, node, back_name, back_args, saved, prefix, acc) -> None:
        self.w.comment(f"{node.id}: Block, backward")
        out_args = []
        for o in back_args["outputs"]:
            key = (site.path, node.id, o)
            out_args.append(acc[key] if key in acc else
                            f"np.zeros(np.shape({self.var[key]}), dtype={self.dtype})")
        extra = ", R" if self.trace else ""
        call = (f"{back_name}(params, grads, {prefix}, {saved}, train{extra}"
                f"{''.join(', ' + a for a in out_args)})")
        results = [self.names.new(f"g_{self.stem(site, node.id)}_{a}") for a in back_args["inputs"]]
        if not results:
            self.w.line(call)
            return
        self.w.line(f"{', '.join(results)}{',' if len(results) == 1 else ''} = {call}")
        for port, var in zip(back_args["inputs"], results):
            src, sport = site.source(node.id, port)
            if self.carries.value.get((site.path, src, sport)):
                self.contribute(acc, (site.path, src, sport), var)


def block_functions(module, body: Site, block_name: str) -> tuple:
    """Write the function pair for one block instance's body (unless an instance before it
    came out the same). Returns (forward name, backward name, {inputs, outputs}): the
    arguments whose gradients the backward returns and the results whose gradients it takes."""
    from .function import Fn

    fwd = Fn(module, root=body.path, dynamic=True)
    carries = module.layout.carries
    grads = Gradients(module.layout, carries)
    fwd.grads = grads
    out_carry = {o.id: carries.outputs.get((body.path, o.id), False) for o in body.outputs()}
    grads.run(body, out_carry)
    args = {}
    for inp in body.inputs():
        args[inp.id] = fwd.names.new(sanitize(inp.id))
        fwd.var[(body.path, inp.id, "y")] = args[inp.id]
    outs = fwd.forward(body, args, grad=True)
    fwd_w = fwd.w
    g_params = {o.id: fwd.names.new(f"g_{sanitize(o.id)}") for o in body.outputs()
                if out_carry[o.id]}
    back_w = Writer(1)
    fwd.w = back_w
    arg_grads = fwd.backward(body, g_params)
    inputs = [i.id for i in body.inputs() if i.id in arg_grads]
    if inputs:
        back_w.line("return " + pack([arg_grads[i] for i in inputs]))
    dedent = [line.removeprefix("    ") for line in fwd_w.lines]
    saved = tape_names(dedent, [line.removeprefix("    ") for line in back_w.lines],
                       extra_stored=list(args.values()),
                       backward_own=["params", "grads", "prefix", "saved", "train", "R",
                                     *g_params.values()])
    key = (block_name, fwd_w.text(), back_w.text(), tuple(saved), tuple(g_params.items()),
           tuple(args.values()))
    if key in module.block_cache:
        return module.block_cache[key]
    name = module.names.new(f"block_{sanitize(block_name)}")
    back_name = module.names.new(f"{name}_backward")
    extra = ", R" if module.trace else ""

    w = Writer()
    w.comment(f"Block {block_name}")
    w.line(f"def {name}(params, prefix, train, rng{extra}{''.join(', ' + a for a in args.values())}):")
    with w.indent():
        w.line("\"\"\"The block's forward: its results and what its backward needs.\"\"\"")
        fwd.bind(w, fwd_w)
        w.splice(fwd_w, strip=1)
        w.line(f"return {', '.join([outs[o.id] for o in body.outputs()] + [pack(saved)])}")
    module.add_function(w)

    w = Writer()
    g_sig = "".join(", " + g for g in g_params.values())
    w.line(f"def {back_name}(params, grads, prefix, saved, train{extra}{g_sig}):")
    with w.indent():
        w.line("\"\"\"Gradients of the block's arguments; weight gradients go into grads.\"\"\"")
        if saved:
            w.line(f"{unpack(saved)} = saved")
        fwd.bind(w, back_w)
        w.splice(back_w, strip=1)
    module.add_function(w)
    result = (name, back_name, {"inputs": inputs, "outputs": list(g_params)})
    module.block_cache[key] = result
    return result
