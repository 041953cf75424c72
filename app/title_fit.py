"""Fitting a node's title into its box: a little wider, or onto a second line, never cut mid-word.

A title that still does not fit ends with "…" after its last whole word, and the node's tooltip
holds the full text. Only a single word longer than the widest box is cut inside the word: there
is nowhere else to cut it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt

ELLIPSIS = "…"


@dataclass(frozen=True)
class FittedTitle:
    width: float          # the node's width
    lines: tuple          # one or two lines of text, as drawn
    complete: bool        # False when words were left out


def fit_title(title: str, metrics, widths, padding: float, max_lines: int = 2) -> FittedTitle:
    """The narrowest of `widths` (ascending) that shows the whole title on one line; else the
    narrowest that shows it on `max_lines`; else the widest, the last line ending in "…".

    `padding` is the part of the node's width that text cannot use (margins, the body icon)."""
    for width in widths:
        if metrics.horizontalAdvance(title) <= width - padding:
            return FittedTitle(width, (title,), True)
    for width in widths:
        lines, complete = wrap_words(title, metrics, width - padding, max_lines)
        if complete:
            return FittedTitle(width, lines, True)
    widest = widths[-1]
    lines, _ = wrap_words(title, metrics, widest - padding, max_lines)
    return FittedTitle(widest, lines, False)


def wrap_words(text: str, metrics, room: float, max_lines: int) -> tuple:
    """(lines, complete): the words of `text` laid greedily into lines at most `room` wide.

    When they need more than `max_lines` lines, the last line keeps the words that fit before
    an "…"."""
    words = text.split()
    if not words:
        return ("",), True
    lines, current = [], ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and metrics.horizontalAdvance(candidate) > room:
            lines.append(current)
            current = word
        else:
            current = candidate
    lines.append(current)
    complete = len(lines) <= max_lines
    if not complete:
        lines = _shorten(lines, metrics, room, max_lines)
    fitted = [line if metrics.horizontalAdvance(line) <= room else _elide_chars(line, metrics, room)
              for line in lines]
    return tuple(fitted), complete and fitted == lines


def _shorten(lines: list, metrics, room: float, max_lines: int) -> list:
    """The first `max_lines` lines, the last ending in "…" after a whole word. When not even
    one word of the last line fits before the "…", the line before it takes the "…"."""
    kept, rest = lines[:max_lines - 1], " ".join(lines[max_lines - 1:])
    while True:
        last = _elide_at_word(rest, metrics, room)
        if last is not None:
            return kept + [last]
        if not kept:
            return [_elide_chars(rest.split()[0] + ELLIPSIS, metrics, room)]  # nowhere else to cut
        rest = f"{kept.pop()} {rest}"


def _elide_at_word(text: str, metrics, room: float):
    """`text` shortened to its first words and "…", within `room`; None when no word fits."""
    words = text.split()
    for count in range(len(words) - 1, 0, -1):
        candidate = " ".join(words[:count]) + ELLIPSIS
        if metrics.horizontalAdvance(candidate) <= room:
            return candidate
    return None


def _elide_chars(text: str, metrics, room: float) -> str:
    return metrics.elidedText(text, Qt.ElideRight, room)
