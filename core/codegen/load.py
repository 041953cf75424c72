"""The engine's side of the generator: a GraphModule's functions made callable in memory.

`load(module, dtype)` executes the module's text (the very functions `wiregrad export` writes)
in a fresh namespace holding numpy, DTYPE and the helper functions the rules call, as imported
from nodes/kernels/. Nothing from the document becomes code: ids and names only ever appear
in escaped string literals and comments (writer.py, passes.q).

A traceback through generated code shows its lines: the text is registered with linecache
for as long as the functions live. `node_error(exc)` turns an exception raised on a generated line
into a GraphError naming the node that line was written for.
"""

from __future__ import annotations

import itertools
import linecache
import math
import weakref

import numpy as np

from ..errors import GraphError

# Failures of a run that come from the data or the graph, reported as a GraphError naming
# the node; anything else is a bug and keeps its traceback.
ERRORS = (ValueError, IndexError, TypeError, FloatingPointError, ZeroDivisionError)

_OWNERS = "__wiregrad_owners__"
_counter = itertools.count(1)


class _Source:
    """Held by a generated module's namespace: when the last of its functions is gone, so is
    the namespace, and this takes the text out of linecache."""

    def __init__(self, filename: str, text: str):
        self.text = text
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        weakref.finalize(self, linecache.cache.pop, filename, None)


def module_text(writers: list) -> tuple:
    """(text, owners): writers joined with two blank lines, and each line's owner."""
    lines, owners = [], []
    for w in writers:
        if lines:
            lines += ["", ""]
            owners += [None, None]
        lines += w.lines
        owners += w.owners
    return "\n".join(lines) + "\n", owners


def load(module, dtype) -> dict:
    """Execute a GraphModule's functions; returns the namespace they live in."""
    text, owners = module_text(module.writers())
    name = f"wiregrad_graph_{next(_counter)}"
    filename = f"<{name}>"
    namespace = {"__name__": name, "__source__": _Source(filename, text), _OWNERS: owners,
                 "np": np, "math": math, "DTYPE": np.dtype(dtype).type}
    for fn in module.helpers:
        namespace[fn.__name__] = fn
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102 (our own generated code)
    return namespace


def node_error(exc: Exception) -> GraphError:
    """A GraphError naming the node whose generated line raised `exc` (the innermost one, when
    block functions call each other); `node` is None if no generated line is on the stack."""
    path = phase = None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        owners = frame.f_globals.get(_OWNERS)
        if owners is not None and 0 < tb.tb_lineno <= len(owners) and owners[tb.tb_lineno - 1]:
            path, phase = owners[tb.tb_lineno - 1]
            if "prefix" in frame.f_code.co_varnames:  # a block function: path is relative
                path = frame.f_locals.get("prefix", "") + path
        tb = tb.tb_next
    if path is None:
        return GraphError(str(exc))
    message = str(exc)
    if message.startswith((".", ":")):  # the message names a port, or speaks of the node itself
        return GraphError(f"{path}{message}", path)
    where = "in backward: " if phase == "backward" else ""
    return GraphError(f"{path}: {where}{message}", path)
