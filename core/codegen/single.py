"""One node type run on its own: its numpy rule as a forward and a backward function.

The registry-wide gradient checks (tests/gradcheck.py) run every type this way, through the
same rule and the same code writing as a whole graph (function.write_forward / write_backward):

    node = NodeRun(nodes.get("Linear"), p, in_types, dtype=np.float64)
    ys = node.forward(xs, ws, train=False, rng=np.random.default_rng(0))
    ys, grads = node.grads(xs, ws, gys, need)   # one per input port, then per weight
                                               # (None where need says no)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .function import FUNCTION_NAMES, write_backward, write_forward
from .load import load
from .module import GraphModule
from .names import NameTable
from .passes import pack, q, tape_names, unpack
from .rules import RuleContext
from .writer import Writer


class _Module(GraphModule):
    """A module of two functions for one node, with no graph around them."""

    def __init__(self):
        super().__init__(layout=None)


class NodeRun:
    """One node of `node_type` with params `p` (resolved) and inputs of `in_types` (port ->
    TensorType, shapes given in full), compiled from its numpy rule."""

    def __init__(self, node_type, p: dict, in_types: dict, dtype=np.float64):
        self.type, self.p, self.in_types, self.dtype = node_type, p, in_types, dtype
        self.ports = list(node_type.input_ports(p))
        self.weights = list(node_type.weights(p, in_types))
        # Buffers are the node's own state, as in a module: made at their initial values, and
        # updated by every run in training mode.
        self.buffers = {name: np.asarray(spec.init(np.random.default_rng(0), spec.shape), dtype)
                        for name, spec in node_type.buffers(p, in_types).items()}
        self.out_types = node_type.infer(p, in_types)
        self.out_type = self.out_types.get("y")
        self._compiled: dict = {}

    def _functions(self, need: tuple):
        if need not in self._compiled:
            self._compiled[need] = _write(self.type, self.p, self.in_types, self.ports,
                                          self.weights, list(self.buffers), self.out_types, need,
                                          self.dtype)
        return self._compiled[need]

    def forward(self, xs: list, ws: list, train: bool = False, rng=None) -> list:
        """The outputs, as a list."""
        fwd, _ = self._functions(tuple([True] * (len(self.ports) + len(self.weights))))
        rng = np.random.default_rng(0) if rng is None else rng
        ys, _ = fwd({**dict(zip(self.weights, ws)), **self.buffers}, train, rng, *xs)
        return ys

    def grads(self, xs: list, ws: list, gys: list, need: list | None = None, train=False,
              rng=None) -> tuple:
        """(outputs, gradients) for upstream gradients `gys`: one gradient per input port then
        per weight, None where `need` says it is not wanted (or none flows)."""
        if need is None:
            need = [True] * (len(self.ports) + len(self.weights))
        fwd, bwd = self._functions(tuple(bool(n) for n in need))
        rng = np.random.default_rng(0) if rng is None else rng
        params = {**dict(zip(self.weights, ws)), **self.buffers}
        ys, saved = fwd(params, train, rng, *xs)
        return ys, bwd(params, saved, train, *gys)


def _write(node_type, p, in_types, ports, weights, buffers, out_types, need, dtype):
    module = _Module()
    names = NameTable(reserved=FUNCTION_NAMES, parent=module.names)
    fn = SimpleNamespace(names=names, w=Writer(1), module=module)
    ins = {port: names.new(port) for port in ports}
    refs = {name: f"params[{q(name)}]" for name in weights + buffers}
    out_ports = tuple(node_type.output_ports(p))
    single = out_ports == ("y",)
    e = RuleContext(fn, node_type, p, ins, in_types, refs, names.new("y") if single else None,
                    out_types.get("y"), "numpy")
    if not single:
        e.outs = {port: names.new(port) for port in out_ports}
    e.key = ("", "node")
    write_forward(e)
    fwd_w = fn.w

    fn.w = Writer(1)
    e.gys = {port: names.new("g" + port) for port in out_ports}
    e.gy = e.gys.get("y")
    wanted = [name for name, n in zip(ports + weights, need) if n]
    e.needs = set(wanted) - set(node_type.nondiff_inputs)
    grads = write_backward(e) if e.needs else {}
    results = [grads.get(name, "None") if name in e.needs else "None" for name in ports + weights]
    back_w = fn.w
    back_w.line(f"return [{', '.join(results)}]")

    dedent = [line.removeprefix("    ") for line in fwd_w.lines]
    saved = tape_names(dedent, [line.removeprefix("    ") for line in back_w.lines],
                       extra_stored=list(ins.values()) + list(e.outs.values()),
                       backward_own=["params", "train", *e.gys.values()])
    w = Writer()
    w.line(f"def node_forward(params, train, rng{''.join(', ' + v for v in ins.values())}):")
    with w.indent():
        w.splice(fwd_w, strip=1)
        w.line(f"return [{', '.join(e.outs.values())}], {pack(saved)}")
    module.add_function(w)
    w = Writer()
    w.line(f"def node_backward(params, saved, train, {', '.join(e.gys.values())}):")
    with w.indent():
        if saved:
            w.line(f"{unpack(saved)} = saved")
        w.splice(back_w, strip=1)
    module.add_function(w)
    namespace = load(module, dtype)
    return namespace["node_forward"], namespace["node_backward"]
