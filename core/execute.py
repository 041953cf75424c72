"""Compiled functions and how they run forward and backward.

A `Function` is one compiled graph (the top level, a loop body, a branch side, a block
instance): a list of `Instr`s in topological order over numbered value slots. Running it
forward, every instruction on the way to a gradient records what its backward needs on a tape;
backward walks the tape in reverse, accumulating gradients into slots and into the run's
gradient buffers for weights. Each Function runs as generated straight-line Python
(codegen.py), made once per plan. No recursion over the user's graph happens here: bodies of
loops and branches are separate Functions that their instruction runs in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from nodes import Context


@dataclass
class RunState(Context):
    """A forward/backward run: the Context node types see, plus the weights and their gradients.

    `grads[j]` accumulates the gradient of `params[j]`; `owned[j]` says whether that array
    belongs to the run (so it may be added into in place) or is borrowed from a backward rule.
    """

    params: list = field(default_factory=list)
    keep: bool = False  # record tapes for backward
    grads: list = field(default_factory=list)
    owned: list = field(default_factory=list)
    targets: list | None = None  # arrays the gradients are to end up in, when given
    record: dict | None = None  # {"values": {}, "grads": {}} to trace every value; see trace()

    def add_grad(self, j: int, g) -> None:
        current = self.grads[j]
        if current is None:
            target = self.targets[j] if self.targets is not None else None
            if target is None:
                self.grads[j] = g
            else:  # the first contribution goes straight into its final place
                np.copyto(target, g)
                self.grads[j] = target
                self.owned[j] = True
        elif self.owned[j]:
            current += g
        else:
            self.grads[j] = current + g
            self.owned[j] = True


class Instr:
    """One step of a Function. Subclasses: OpInstr (a node type) and the control instructions.

    `ins`/`outs` are slots, `w` indices of the run's params. After `plan`, `active` says whether
    backward must visit it, `need` which of its inputs (then weights) want a gradient.
    """

    path: str = ""
    takes_state: bool = True  # backward(saved, gys, state); ops take (saved, gys)
    out_ports: tuple = ()
    ins: tuple = ()
    outs: tuple = ()
    w: tuple = ()
    active: bool = False
    need: tuple = ()
    has_weights: bool = False

    def forward(self, xs: list, ws: list, state: RunState):
        raise NotImplementedError

    def backward(self, saved, gys: list, state: RunState) -> list:
        raise NotImplementedError

    def plan(self, in_req: list) -> list:
        """Given which inputs carry gradients, decide which outputs do; set active/need."""
        out_req = bool(self.w) or self.has_weights or any(in_req)
        self.active = out_req
        self.need = list(in_req) + [True] * len(self.w)
        return [out_req] * len(self.outs)


class OpInstr(Instr):
    """A node of an ordinary type: its forward/backward come from the node library.

    Both are bound to the node's params once (functools.partial), so running one costs a single
    Python call: on small nets that call overhead is a good part of a step.
    """

    takes_state = False

    def __init__(self, path, node_type, p, ins, outs, w):
        self.path, self.type, self.p = path, node_type, p
        self.ins, self.outs, self.w = tuple(ins), tuple(outs), tuple(w)
        self.nondiff = tuple(i for i, port in enumerate(node_type.input_ports(p))
                             if port in node_type.nondiff_inputs)
        self.forward = partial(node_type.forward, p)

    def plan(self, in_req):
        in_req = [r and i not in self.nondiff for i, r in enumerate(in_req)]
        out = super().plan(in_req)
        if not any(self.need):
            self.active = False
            return [False] * len(self.outs)
        # Called as backward(saved, gys): what is needed is fixed from here on.
        self.backward = partial(self.type.backward, self.p, need=self.need)
        return out


@dataclass
class Function:
    """A compiled graph: its argument slots, constants, instructions and result slots."""

    path: str
    n_slots: int
    arg_slots: list  # one per argument (body Input / top-level Input), in order
    out_slots: list  # one per result (Output), in order
    instrs: list
    consts: list = field(default_factory=list)  # (slot, value) filled before the instructions
    arg_req: list = field(default_factory=list)
    slot_req: list = field(default_factory=list)
    n_active: int = 0
    code: tuple | None = None  # generated (forward, backward); see codegen.py
    traced_code: tuple | None = None

    def plan(self, arg_req: list) -> list:
        """Propagate which slots carry gradients from the arguments and the weights.

        Returns, per result, whether a gradient can flow back from it.
        """
        req = [False] * self.n_slots
        for slot, r in zip(self.arg_slots, arg_req):
            req[slot] = req[slot] or bool(r)
        for instr in self.instrs:
            for slot, r in zip(instr.outs, instr.plan([req[s] for s in instr.ins])):
                req[slot] = r
        self.arg_req = list(arg_req)
        self.slot_req = req
        self.n_active = sum(1 for i in self.instrs if i.active)
        self.code = self.traced_code = None  # generated again on the next run, for this plan

        return [req[s] for s in self.out_slots]

    def generate(self) -> tuple:
        from .codegen import build

        self.code = build(self)
        return self.code

    def traced(self) -> tuple:
        """The variant of the generated code that records every value and gradient."""
        from .codegen import build

        if self.traced_code is None:
            self.traced_code = build(self, traced=True)
        return self.traced_code


def forward(fn: Function, state: RunState, args: list, keep: bool):
    """Run a function. Returns (results, tape); the tape is None unless `keep`."""
    if state.record is not None:
        return fn.traced()[0](args, state, keep)
    code = fn.code or fn.generate()
    return code[0](args, state, keep)


def backward(fn: Function, state: RunState, tape: list, gouts: list) -> list:
    """Walk the tape in reverse. `gouts` has one gradient (or None) per result.

    Weight gradients go into `state`; returns one gradient (or None) per argument.
    """
    if state.record is not None:
        return fn.traced()[1](tape, gouts, state)
    code = fn.code or fn.generate()
    return code[1](tape, gouts, state)
