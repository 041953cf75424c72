"""Straight-line Python for a compiled Function, so running it costs little more than its numpy calls.

The interpreter a list of instructions needs (indexing slot lists at every step) costs as much
as the arithmetic on small nets. Here each Function becomes two generated Python functions,
forward and backward, in which every slot is a local variable and every instruction one call.
A value is deleted after its last use, so what stays alive is what backward needs (torch.fx
does the same). Nothing from the document reaches the generated text: it is made of slot
numbers and indices only; instructions, constants and node paths are passed in through the
namespace. The source is registered with linecache, so a traceback shows the generated lines.

`build(fn, traced=True)` makes a variant that also records every value (and, in backward, every
gradient) into `state.record`, for the editor's look inside a network; the plain variant
carries no cost for it.
"""

from __future__ import annotations

import linecache

from .errors import GraphError

_ERRORS = (ValueError, IndexError, TypeError, FloatingPointError)
_counter = 0


def build(fn, traced: bool = False) -> tuple:
    """(forward, backward) functions for `fn`, which must have been planned."""
    namespace = {"_error": _error_for(fn), "_ERRORS": _ERRORS}
    forward = _forward_source(fn, namespace, traced)
    backward = _backward_source(fn, namespace, traced)
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


def _last_uses(fn) -> dict:
    """Instruction index -> slots whose value nothing reads after it (results excepted)."""
    last: dict = {}
    for index, instr in enumerate(fn.instrs):
        for slot in instr.outs:
            last[slot] = index  # a value nobody reads dies where it is made
        for slot in instr.ins:
            last[slot] = index
    keep = set(fn.out_slots)
    out: dict = {}
    for slot, index in last.items():
        if slot not in keep:
            out.setdefault(index, []).append(slot)
    return out


def _record(lines: list, indent: str, key: str, value: str, order: bool = False) -> None:
    lines.append(f"{indent}R.setdefault({key}, []).append({value})")
    if order:  # values also keep the order they were made in, for first_nonfinite
        lines.append(f"{indent}S.append({key})")


def _forward_source(fn, namespace: dict, traced: bool) -> str:
    lines = ["def forward(args, state, keep):", "    P = state.params"]
    if traced:
        lines.append("    R = state.record['values']")
        lines.append("    S = state.record['order']")
    for k, slot in enumerate(fn.arg_slots):
        lines.append(f"    v{slot} = args[{k}]")
        if traced:
            namespace[f"A{k}"] = (_join(fn.path, fn.arg_names[k]), "y")
            _record(lines, "    ", f"A{k}", f"v{slot}", order=True)
    for k, (slot, value) in enumerate(fn.consts):
        namespace[f"K{k}"] = value
        lines.append(f"    v{slot} = K{k}")
    dead = _last_uses(fn)
    lines += ["    i = 0", "    try:"]
    kept = []
    for index, instr in enumerate(fn.instrs):
        namespace[f"F{index}"] = instr.forward
        xs = ", ".join(f"v{s}" for s in instr.ins)
        ws = ", ".join(f"P[{j}]" for j in instr.w)
        ys = "".join(f"v{s}, " for s in instr.outs)
        lines.append(f"        i = {index}")
        lines.append(f"        ({ys}), s{index} = F{index}([{xs}], [{ws}], state)")
        if traced:
            for port, slot in zip(instr.out_ports, instr.outs):
                namespace[f"O{index}_{port}"] = (instr.path, port)
                _record(lines, "        ", f"O{index}_{port}", f"v{slot}", order=True)
        if instr.active:
            kept.append(f"s{index}")
        else:
            lines.append(f"        del s{index}")
        if index in dead:
            lines.append("        del " + ", ".join(f"v{s}" for s in sorted(dead[index])))
    lines += ["        pass", "    except _ERRORS as exc:",
              "        raise _error(i, exc, 'forward') from exc"]
    outs = ", ".join(f"v{s}" for s in fn.out_slots)
    lines.append(f"    return [{outs}], ([{', '.join(kept)}] if keep else None)")
    return "\n".join(lines) + "\n"


def _backward_source(fn, namespace: dict, traced: bool) -> str:
    lines = ["def backward(tape, gouts, state):"]
    if traced:
        lines.append("    R = state.record['grads']")
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
        lines += [f"        if {test}:", f"            i = {index}"]
        if traced:
            for port, slot in zip(instr.out_ports, instr.outs):
                namespace[f"O{index}_{port}"] = (instr.path, port)
                _record(lines, "            ", f"O{index}_{port}", f"g{slot}")
        lines.append(f"            gx = {call}")
        for k, (slot, need) in enumerate(zip(instr.ins, instr.need)):
            if need:
                lines += [f"            t = gx[{k}]", "            if t is not None:",
                          f"                g{slot} = t if g{slot} is None else g{slot} + t"]
        for k, j in enumerate(instr.w):
            lines += [f"            t = gx[{len(instr.ins) + k}]", "            if t is not None:",
                      f"                state.add_grad({j}, t)"]
    lines.append("        pass")
    lines += ["    except _ERRORS as exc:", "        raise _error(i, exc, 'backward') from exc"]
    if traced:
        for k, slot in enumerate(fn.arg_slots):
            namespace[f"A{k}"] = (_join(fn.path, fn.arg_names[k]), "y")
            lines += [f"    if g{slot} is not None:"]
            _record(lines, "        ", f"A{k}", f"g{slot}")
    args = ", ".join(f"g{s}" for s in fn.arg_slots)
    lines.append(f"    return [{args}]")
    return "\n".join(lines) + "\n"


def _join(prefix: str, node_id: str) -> str:
    return f"{prefix}/{node_id}" if prefix else node_id
