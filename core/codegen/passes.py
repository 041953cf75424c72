"""Small passes over generated code: what a fragment stores and reads, what a loop step must
save for its backward, gradients written into their buffers, and the finishing passes on a
whole function (unused names become `_`, values are deleted after their last use).

The finishing passes work on a `Writer` holding one `def`, so every line keeps its owner.
"""

from __future__ import annotations

import ast
import json
import textwrap

from .writer import INDENT, Writer

# Names a function never deletes: its tables and run settings.
KEPT = frozenset({"params", "grads", "rng", "train", "prefix", "saved", "R"})


def q(text: str) -> str:
    """A string literal for names and keys (JSON escaping is valid Python, ASCII only)."""
    return json.dumps(str(text))


def pack(names: list) -> str:
    if not names:
        return "()"
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def unpack(names: list) -> str:
    return ", ".join(names) + ("," if len(names) == 1 else "")


def stored_and_loaded(lines: list) -> tuple:
    """(names stored in order of first store, names loaded) in a fragment of statements."""
    tree = ast.parse(textwrap.dedent("\n".join(lines)) if lines else "pass")
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


# -- gradients into their buffers -----------------------------------------------------------

_UFUNCS = {ast.Add: "np.add", ast.Sub: "np.subtract", ast.Mult: "np.multiply",
           ast.Div: "np.divide", ast.MatMult: "np.matmul"}


def assign_into(dest: str, expr: str) -> str:
    """A statement writing `expr` into the existing array `dest` without a temporary where
    numpy allows it: `a @ b` as `np.matmul(a, b, out=dest)`, `x.sum(axis=0)` as
    `np.sum(x, axis=0, out=dest)`; anything else is computed, then copied in."""
    tree = ast.parse(expr, mode="eval").body

    def src(node) -> str:
        return ast.get_source_segment(expr, node)

    if isinstance(tree, ast.BinOp) and type(tree.op) in _UFUNCS:
        return f"{_UFUNCS[type(tree.op)]}({src(tree.left)}, {src(tree.right)}, out={dest})"
    if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.USub):
        return f"np.negative({src(tree.operand)}, out={dest})"
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Attribute) \
            and tree.func.attr == "sum" and not tree.args \
            and all(k.arg == "axis" for k in tree.keywords):
        keywords = "".join(f", {k.arg}={src(k.value)}" for k in tree.keywords)
        return f"np.sum({src(tree.func.value)}{keywords}, out={dest})"
    return f"{dest}[...] = {expr}"


# -- finishing a function -------------------------------------------------------------------


def _unused_names(tree) -> list:
    """(row, start, end) of every name a function assigns but never reads."""
    edits = []
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        loaded = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
                  and not isinstance(n.ctx, ast.Store)}
        loaded |= {n.target.id for n in ast.walk(fn)  # `x += y` reads x
                   if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)}
        for node in ast.walk(fn):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                for name in names:
                    if isinstance(name, ast.Name) and name.id not in loaded and name.id != "_":
                        edits.append((name.lineno - 1, name.col_offset, name.end_col_offset))
    return sorted(set(edits), reverse=True)


def _blank_out(lines: list, edits: list) -> None:
    for row, start, end in edits:
        lines[row] = lines[row][:start] + "_" + lines[row][end:]


def tidy(w: Writer) -> None:
    """Names a function assigns but never reads become `_` (a value the graph computes that
    nothing reads, such as the saved part of a helper's result that only backward needs)."""
    _blank_out(w.lines, _unused_names(ast.parse(w.text())))


def tidy_source(text: str) -> str:
    """`tidy` over every function of a module's text."""
    lines = text.splitlines()
    _blank_out(lines, _unused_names(ast.parse(text)))
    return "\n".join(lines) + "\n"


def free_dead(w: Writer) -> None:
    """Delete each value after the last statement of the function body that reads it, so
    what stays alive is what is still to be used (torch.fx does the same).

    Only names a plain top-level statement assigns are deleted (one assigned inside an `if`
    or a loop might be unbound), never the function's own tables (KEPT) or arguments."""
    (fn,) = [n for n in ast.parse(w.text()).body if isinstance(n, ast.FunctionDef)]
    args = {a.arg for a in fn.args.args}
    bound_at: dict = {}  # name -> first top-level simple statement assigning it
    last_read: dict = {}
    last_write: dict = {}
    for i, stmt in enumerate(fn.body):
        simple = not isinstance(stmt, (ast.For, ast.While, ast.If, ast.With, ast.Try))
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Store):
                    last_write[node.id] = i
                    if simple:
                        bound_at.setdefault(node.id, i)
                else:
                    last_read[node.id] = i
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                last_read[node.target.id] = i
    dead: dict = {}
    last = len(fn.body) - 1
    for name, i in last_read.items():
        if name in KEPT or name in args or name not in bound_at or i >= last:
            continue
        if bound_at[name] <= i and last_write.get(name, -1) <= i:
            dead.setdefault(i, []).append(name)
    indent = INDENT * (fn.col_offset // len(INDENT) + 1)
    for i in sorted(dead, reverse=True):
        row = fn.body[i].end_lineno  # insert after the statement's last line
        owner = w.owners[row - 1]
        w.lines.insert(row, f"{indent}del {', '.join(sorted(dead[i]))}")
        w.owners.insert(row, owner)
