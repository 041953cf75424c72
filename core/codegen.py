"""Straight-line Python for a compiled Function, so running it costs little more than its numpy calls.

The interpreter in execute.py walks a list of instructions, indexing slot lists at every step;
on small nets that bookkeeping costs as much as the arithmetic. Here each Function becomes two
generated Python functions, forward and backward, in which every slot is a local variable and
every instruction one call. Nothing from the document reaches the generated text: it is made of
slot numbers and indices only; instructions and constants are passed in as a namespace. The
source is registered with linecache, so a traceback through it shows the generated lines.
"""

from __future__ import annotations

import linecache

from .errors import GraphError

_ERRORS = (ValueError, IndexError, TypeError, FloatingPointError)
_counter = 0


def build(fn) -> tuple:
    """(forward, backward) functions for `fn`, which must have been planned."""
    namespace = {"_error": _error_for(fn)}
    forward = _forward_source(fn, namespace)
    backward = _backward_source(fn, namespace)
    return _define(forward, namespace, "forward"), _define(backward, namespace, "backward")


def _error_for(fn):
    def error(index: int, exc: Exception, phase: str) -> GraphError:
        path = fn.instrs[index].path
        prefix = "in backward: " if phase == "backward" else ""
        return GraphError(f"{path}: {prefix}{exc}", path)
    return error


def _define(source: str, namespace: dict, name: str):
    global _counter
    _counter += 1
    filename = f"<wiregrad {name} {_counter}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 (our own generated code)
    return namespace.pop(name)


def _forward_source(fn, namespace: dict) -> str:
    lines = ["def forward(args, state, keep):", "    P = state.params"]
    for k, slot in enumerate(fn.arg_slots):
        lines.append(f"    v{slot} = args[{k}]")
    for k, (slot, value) in enumerate(fn.consts):
        namespace[f"K{k}"] = value
        lines.append(f"    v{slot} = K{k}")
    lines += ["    i = 0", "    try:"]
    kept = []
    for index, instr in enumerate(fn.instrs):
        namespace[f"F{index}"] = instr.forward
        xs = ", ".join(f"v{s}" for s in instr.ins)
        ws = ", ".join(f"P[{j}]" for j in instr.w)
        ys = "".join(f"v{s}, " for s in instr.outs)
        lines.append(f"        i = {index}")
        lines.append(f"        ({ys}), s{index} = F{index}([{xs}], [{ws}], state)")
        if instr.active:
            kept.append(f"s{index}")
    lines += ["        pass", "    except _ERRORS as exc:",
              "        raise _error(i, exc, 'forward') from exc"]
    outs = ", ".join(f"v{s}" for s in fn.out_slots)
    lines.append(f"    return [{outs}], ([{', '.join(kept)}] if keep else None)")
    namespace["_ERRORS"] = _ERRORS
    return "\n".join(lines) + "\n"


def _backward_source(fn, namespace: dict) -> str:
    lines = ["def backward(tape, gouts, state):"]
    active = [(index, instr) for index, instr in enumerate(fn.instrs) if instr.active]
    if active:
        names = "".join(f"s{index}, " for index, _ in active)
        lines.append(f"    ({names}) = tape")
    if fn.n_slots:
        lines.append("    " + " = ".join(f"g{s}" for s in range(fn.n_slots)) + " = None")
    for k, slot in enumerate(fn.out_slots):
        lines += [f"    t = gouts[{k}]", "    if t is not None:",
                  f"        g{slot} = t if g{slot} is None else g{slot} + t"]
    lines += ["    i = 0", "    try:"]
    for index, instr in reversed(active):
        namespace[f"B{index}"] = instr.backward
        gys = ", ".join(f"g{s}" for s in instr.outs)
        test = " or ".join(f"g{s} is not None" for s in instr.outs)
        call = f"B{index}(s{index}, [{gys}], state)" if instr.takes_state else \
            f"B{index}(s{index}, [{gys}])"
        lines += [f"        if {test}:", f"            i = {index}", f"            gx = {call}"]
        for k, (slot, need) in enumerate(zip(instr.ins, instr.need)):
            if need:
                lines += [f"            t = gx[{k}]", "            if t is not None:",
                          f"                g{slot} = t if g{slot} is None else g{slot} + t"]
        for k, j in enumerate(instr.w):
            lines += [f"            t = gx[{len(instr.ins) + k}]", "            if t is not None:",
                      f"                state.add_grad({j}, t)"]
    lines.append("        pass")
    lines += ["    except _ERRORS as exc:", "        raise _error(i, exc, 'backward') from exc"]
    args = ", ".join(f"g{s}" for s in fn.arg_slots)
    lines.append(f"    return [{args}]")
    return "\n".join(lines) + "\n"
