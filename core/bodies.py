"""The shape rules of Loop, Branch and Block nodes: their bodies compiled against what arrives.

Semantics are format.md's "Bodies" section. Each rule compiles the node's bodies through the
compiler (so their nodes are checked and typed like any other, under their own paths) and
returns the node's output types, or None after recording what is wrong. How a body runs is
written by the code generator (core/codegen/loops.py, branches.py, blocks.py).
"""

from __future__ import annotations

import numpy as np

from .. import nodes
from ..nodes import FLOAT, INT, ParamError, TensorType


def is_batched(t: TensorType) -> bool:
    """Values that flow from data have a leading batch axis of unknown length."""
    return t.ndim >= 1 and t.shape[0] is None


def same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def merge_shape(a: tuple, b: tuple) -> tuple:
    return tuple(y if x is None else x for x, y in zip(a, b))


def _fmt(shape: tuple) -> str:
    return str(TensorType(tuple(shape)))


def _body_inputs(compiler, body, path: str) -> list | None:
    """(id, params) of a body's Input nodes in file order; records bad params as errors."""
    out = []
    decl = nodes.get("Input")
    for node in body.nodes:
        if node.type != "Input":
            continue
        try:
            out.append((node.id, decl.resolve_params(node.params)))
        except ParamError as exc:
            compiler._error(f"{path}/{node.id}", f"{path}/{node.id}: {exc}")
            return None
    return out


def _check_declared(compiler, where: str, declared, t: TensorType) -> bool:
    """A body Input's given `shape` must match what arrives, without its batch axis."""
    if declared is None:
        return True
    actual = t.shape[1:] if is_batched(t) else t.shape
    if not same_shape(tuple(declared), actual):
        compiler._error(where, f"{where}: declared shape {_fmt(declared)} but receives "
                        f"{_fmt(actual)} (batch axis left out)")
        return False
    return True


def _output_roles(body) -> dict:
    return {n.id: dict(n.params) for n in body.nodes if n.type == "Output"}


def _per_sample(t: TensorType) -> bool:
    """One value per sample: (B,) or (B, 1)."""
    return is_batched(t) and (t.ndim == 1 or (t.ndim == 2 and t.shape[1] == 1))


def _children_port(compiler, path: str, t: TensorType | None) -> bool:
    """A tree Loop's children: int64 child indices (B, N, K)."""
    if t is not None and t.dtype == INT and t.ndim == 3 and is_batched(t):
        return True
    compiler._error(path, f"{path}.children: expected int64 child indices of shape (B, N, K) "
                    f"(-1 for no child), got {t}")
    return False


def loop_outputs(compiler, node, p, path, in_types) -> dict | None:
    """A Loop (repeat, scan, while or tree): its body's arguments by role, its outputs by
    role."""
    body = node.bodies["body"]
    inputs = _body_inputs(compiler, body, path)
    if inputs is None:
        return None
    mode = p["mode"]
    loop_batched = any(is_batched(t) for t in in_types.values())
    if mode == "tree" and not _children_port(compiler, path, in_types.get("children")):
        return None
    if mode == "while" and p["per_sample"] and not loop_batched:
        compiler._error(path, f"{path}: a per-sample while Loop runs on batched data: none of "
                        "its inputs has a batch axis")
        return None
    args, seq_axes = {}, []
    seq_len = in_types["children"].shape[1] if mode == "tree" else None
    ok = True
    for name, ip in inputs:
        role, where = ip["role"], f"{path}/{name}"
        if role == "children":  # fed by the loop: the named Output's values at K children
            if ip["shape"] is None:
                compiler._error(where, f"{where}: a children Input needs its shape given, "
                                "(K, ...) without the batch axis: the values of "
                                f"{ip['of']!r} at a node's K children")
                ok = False
                continue
            k = in_types["children"].shape[2]
            if ip["shape"] and k is not None and ip["shape"][0] not in (None, k):
                compiler._error(where, f"{where}: declared {ip['shape'][0]} children, but "
                                f"{path}.children has {k} per node")
                ok = False
            args[name] = TensorType((None,) + tuple(ip["shape"]), FLOAT)
            continue
        t = in_types[name]
        if role == "sequence":
            if t.ndim < 1:
                compiler._error(where, f"{where}: a sequence input needs at least one axis")
                ok = False
                continue
            axis = p["axis"]
            if not -t.ndim <= axis < t.ndim:
                compiler._error(path, f"{path}: scan axis {axis} is out of range for input "
                                f"{name!r} of shape {t}")
                ok = False
                continue
            axis %= t.ndim
            seq_axes.append(axis)
            if mode == "tree" and None not in (seq_len, t.shape[axis]) and seq_len != t.shape[axis]:
                compiler._error(where, f"{where}: has {t.shape[axis]} nodes along axis {axis}, "
                                f"but {path}.children has {seq_len}")
                ok = False
            seq_len = seq_len if t.shape[axis] is None else t.shape[axis]
            t = TensorType(t.shape[:axis] + t.shape[axis + 1:], t.dtype)
        elif role == "carry" and loop_batched and not is_batched(t):
            t = TensorType((None,) + t.shape, t.dtype)  # broadcast over the batch
        ok &= _check_declared(compiler, where, ip["shape"], t)
        args[name] = t
    if not ok:
        return None
    if mode == "scan" and not seq_axes:
        compiler._error(path, f"{path}: a scan Loop needs a body Input with role sequence")
        return None
    compiler.loop_modes.append(mode)
    # How many times the body runs, for the memory estimate (core/budget.py): a while Loop
    # may take max_iter steps; a length the data sets counts once.
    steps = {"repeat": p["count"], "scan": seq_len, "while": p["max_iter"], "tree": seq_len}[mode]
    compiler.steps.append(compiler.steps[-1] * (1 if steps is None else max(steps, 1)))
    try:
        out_types = compiler.compile_body(body, path + "/", args)
    finally:
        compiler.loop_modes.pop()
        compiler.steps.pop()
    if out_types is None:
        return None

    roles = _output_roles(body)
    length = {"repeat": p["count"], "scan": seq_len, "while": None, "tree": seq_len}[mode]
    stack_axis = seq_axes[0] if mode == "scan" else p["axis"] if mode == "tree" else 1
    outs = {}
    for out_id, t in out_types.items():
        role = roles[out_id].get("role", "stack")
        where = f"{path}/{out_id}"
        if role == "continue" and p["per_sample"]:
            if not _per_sample(t):
                compiler._error(where, f"{where}: a per-sample while Loop's continue output "
                                f"holds one value per sample, shape (B,) or (B, 1); got {t}")
                ok = False
        elif role == "continue":
            size = np.prod([d for d in t.shape if d is not None]) if t.shape else 1
            if any(d is None for d in t.shape) or size != 1:
                compiler._error(where, f"{where}: a continue output must be a single value, "
                                f"got shape {t} (reduce it, e.g. with Mean)")
                ok = False
        elif role == "carry":
            carry = roles[out_id]["carry"]
            carry_t = args[carry]
            if not same_shape(carry_t.shape, t.shape) or carry_t.dtype != t.dtype:
                compiler._error(where, f"{where}: the carry {carry!r} changes from {carry_t}"
                                f" to {t}; a carry must keep its shape from step to step")
                ok = False
            outs[out_id] = carry_t
        else:
            if (mode == "tree" or p["per_sample"]) and not is_batched(t):
                compiler._error(where, f"{where}: a per-sample loop stacks each sample's own "
                                f"values, so its output needs the batch axis; got {t}")
                ok = False
            pos = min(stack_axis, t.ndim)
            outs[out_id] = TensorType(t.shape[:pos] + (length,) + t.shape[pos:], t.dtype)
    for name, ip in inputs:  # a children Input sees its Output's values: they must agree
        if ip["role"] == "children" and ip["of"] in out_types and name in args and ok:
            want, got = out_types[ip["of"]], args[name]
            if not same_shape(got.shape[:1] + got.shape[2:], want.shape):
                compiler._error(f"{path}/{name}", f"{path}/{name}: declared shape "
                                f"{_fmt(got.shape[1:])}, but {ip['of']!r} is {want} per node "
                                "(a children Input is K of those, without the batch axis)")
                ok = False
    return outs if ok else None


def branch_outputs(compiler, node, p, path, in_types) -> dict | None:
    """A Branch: both sides take the inputs they name and must give the same outputs."""
    out_types = {}
    for side in ("then", "else"):
        body = node.bodies[side]
        inputs = _body_inputs(compiler, body, f"{path}/{side}")
        if inputs is None:
            return None
        args = {}
        for name, ip in inputs:
            if not _check_declared(compiler, f"{path}/{side}/{name}", ip["shape"], in_types[name]):
                return None
            args[name] = in_types[name]
        outs = compiler.compile_body(body, f"{path}/{side}/", args)
        if outs is None:
            return None
        out_types[side] = outs
    then_outs, else_outs = out_types["then"], out_types["else"]
    if sorted(then_outs) != sorted(else_outs):
        compiler._error(path, f"{path}: then and else must have the same outputs")
        return None
    cond = in_types["cond"]
    outs = {}
    for name, a in then_outs.items():
        b = else_outs[name]
        if not same_shape(a.shape, b.shape) or a.dtype != b.dtype:
            compiler._error(path, f"{path}: output {name!r} is {a} from then but {b} from "
                            "else; both sides must give the same shapes")
            return None
        outs[name] = TensorType(merge_shape(a.shape, b.shape), a.dtype)
        if p["mode"] == "select" and cond.ndim > 1 and not same_shape(cond.shape, a.shape):
            compiler._error(path, f"{path}.cond: select needs cond of shape (batch,) or "
                            f"{a}, got {cond}")
            return None
    if p["mode"] == "route":
        if not _per_sample(cond):
            compiler._error(path, f"{path}.cond: a route branch needs one value per sample, "
                            f"shape (B,) or (B, 1); got {cond}")
            return None
        unbatched = [name for name, t in outs.items() if not is_batched(t)]
        if unbatched:
            compiler._error(path, f"{path}: a route branch's outputs come back sample by "
                            f"sample, so each needs the batch axis; {unbatched[0]!r} has none")
            return None
    if p["mode"] == "scalar":
        known = [d for d in cond.shape if d is not None]
        if len(known) == len(cond.shape) and int(np.prod(known)) != 1:
            compiler._error(path, f"{path}.cond: a scalar branch needs one value, got {cond}; "
                            "use mode select to choose per element")
            return None
    return outs


def block_outputs(compiler, node, p, path, in_types) -> dict | None:
    """A Block: its definition compiled for this instance (each instance owns its weights)."""
    definition = compiler.doc.blocks[p["block"]]
    inputs = _body_inputs(compiler, definition, path)
    if inputs is None:
        return None
    args = {}
    for name, ip in inputs:
        if not _check_declared(compiler, f"{path}/{name}", ip["shape"], in_types[name]):
            return None
        args[name] = in_types[name]
    return compiler.compile_body(definition, path + "/", args)
