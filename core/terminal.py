"""Text from documents and files, made safe to print on a terminal.

A document's name, an id in a message or a file's path can hold control characters: ESC
starts sequences that recolour, move the cursor, retitle the window or hide text that follows,
and a carriage return lets a line overwrite what was printed before it. `printable` writes
each such character as a visible escape, as Python writes them (`\\x1b`, `\\r`), so what
reaches the terminal is what the file says and nothing more.

Escaped: the C0 controls (tab and newline too: a name is one line), DEL, the C1 controls,
lone surrogates (which no terminal encoding can write) and the bidirectional overrides that
can make text read in a different order than it runs.
"""

from __future__ import annotations

import re

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text) -> str:
    """`text` (anything; str() of it) with every control character escaped."""
    return _UNSAFE.sub(_escape, str(text))


def _escape(match) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


__all__ = ["printable"]
