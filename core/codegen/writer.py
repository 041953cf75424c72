"""Writing Python source: indented lines, comments and literals that cannot carry code.

Document text (labels, names, block names) only ever reaches generated code through
`comment()` (one line, control characters and line breaks of every kind removed) or
`string()` (a Python string literal written by `repr`, with non-ASCII escaped), so no text in a
document can end a comment or a literal and become code.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

INDENT = "    "


def comment_text(text, limit: int = 90) -> str:
    """Text made safe and short for a `#` comment: one line of printable ASCII."""
    text = str(text)
    out = []
    for ch in text:
        if ch.isprintable() and ord(ch) < 128:
            out.append(ch)
        elif ch.isspace() or not ch.isprintable():
            out.append(" ")
        else:
            out.append(ch.encode("ascii", "backslashreplace").decode("ascii"))
    flat = " ".join("".join(out).split())
    if len(flat) > limit:
        flat = flat[: limit - 3].rstrip() + "..."
    return flat


def string(text) -> str:
    """A Python string literal for `text`, ASCII only (repr escapes quotes and line breaks)."""
    return ascii(str(text))


def number(value) -> str:
    """A finite int or float as a literal; anything else is refused."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} as a literal")
        return repr(float(value))
    raise TypeError(f"not a number: {value!r}")


def literal(value) -> str:
    """None, bools, numbers and (nested) lists or tuples of them, as Python source."""
    if value is None or isinstance(value, (bool, int, float)):
        return "None" if value is None else number(value)
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def float_literal(value) -> str:
    """A number or nested list of numbers with every entry written as a float."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(float_literal(v) for v in value) + "]"
    return number(float(value))


class Writer:
    """Lines of source with an indentation level, each line tagged with its owner.

    The owner is whatever was current (`owning`) when the line was written: the generator tags
    each node's lines with the node, so that an error raised on a generated line can name the
    node it came from. Lines keep their owners when spliced into another writer.
    """

    def __init__(self, level: int = 0):
        self.lines: list[str] = []
        self.owners: list = []
        self.level = level
        self.owner = None

    def line(self, text: str = "") -> None:
        self.lines.append(INDENT * self.level + text if text else "")
        self.owners.append(self.owner)

    def extend(self, lines) -> None:
        for text in lines:
            self.line(text)

    def comment(self, text) -> None:
        safe = comment_text(text)
        if safe:
            self.line("# " + safe)

    def block(self, lines: list[str]) -> None:
        """Lines already indented relative to this writer's level."""
        for text in lines:
            self.lines.append(INDENT * self.level + text if text else "")
            self.owners.append(self.owner)

    def splice(self, other: Writer, strip: int = 0) -> None:
        """Another writer's lines, `strip` levels less indented, at this writer's level; each
        keeps its owner."""
        cut = INDENT * strip
        for text, owner in zip(other.lines, other.owners):
            text = text.removeprefix(cut)
            self.lines.append(INDENT * self.level + text if text else "")
            self.owners.append(owner)

    @contextmanager
    def indent(self, header: str | None = None):
        if header is not None:
            self.line(header)
        self.level += 1
        try:
            yield self
        finally:
            self.level -= 1

    @contextmanager
    def owning(self, owner):
        """Tag the lines written inside with `owner`."""
        saved, self.owner = self.owner, owner
        try:
            yield self
        finally:
            self.owner = saved

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def data_literal(value) -> str:
    """JSON-like data (dicts with text keys, lists, text, numbers, bools, None) as a Python
    literal; text is JSON-escaped ASCII, so it cannot end the literal."""
    import json

    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))}: {data_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(data_literal(v) for v in value) + "]"
    return literal(value)
