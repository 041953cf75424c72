"""Safe, unique Python identifiers for generated code (the torch.fx way).

A `NameTable` hands out names for one scope. Whatever a document says, the name it returns is
a plain ASCII identifier that is not a keyword, not a builtin, not `self`, not reserved by the
module being written, and not given out before in that scope; a clash gets a numeric suffix.
The same requests in the same order give the same names, so exports are deterministic.
"""

from __future__ import annotations

import builtins
import keyword
import re

_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")

# Never usable as a name a generated module binds: keywords (soft ones too), builtins, `self`.
FORBIDDEN = frozenset(keyword.kwlist) | frozenset(getattr(keyword, "softkwlist", ())) \
    | frozenset(dir(builtins)) | {"self", "cls"}


def sanitize(text: str, fallback: str = "v") -> str:
    """Any text as an ASCII identifier stem: other characters become `_`; a leading digit or
    an empty result gets `fallback` in front. Not yet checked against keywords or clashes."""
    stem = _NOT_IDENT.sub("_", str(text))
    if not stem or stem[0].isdigit():
        stem = f"{fallback}_{stem}" if stem else fallback
    return stem


class NameTable:
    """Unique identifiers within one scope (a module, a function).

    `reserved` are names that scope already uses (module-level functions and imports); `parent`
    makes a nested scope that also avoids every name its parent has handed out or reserved.
    """

    def __init__(self, reserved=(), parent: NameTable | None = None):
        self.parent = parent
        self._taken: set[str] = set(reserved)
        self._memo: dict = {}

    def taken(self, name: str) -> bool:
        if name in FORBIDDEN or name in self._taken:
            return True
        return self.parent is not None and self.parent.taken(name)

    def new(self, wanted: str) -> str:
        """A fresh name close to `wanted`: `wanted` itself if free, else `wanted_1`, ..."""
        stem = sanitize(wanted)
        name = stem
        if self.taken(name):
            if stem in FORBIDDEN and not self.taken(stem + "_"):
                name = stem + "_"
            else:
                k = 1
                while self.taken(f"{stem}_{k}"):
                    k += 1
                name = f"{stem}_{k}"
        self._taken.add(name)
        return name

    def of(self, key, wanted: str) -> str:
        """The name for `key`, made from `wanted` the first time and remembered after."""
        if key not in self._memo:
            self._memo[key] = self.new(wanted)
        return self._memo[key]
